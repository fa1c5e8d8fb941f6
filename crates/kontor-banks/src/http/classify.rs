//! What a failed call means: transport errors and HTTP statuses mapped to [`BankError`], with
//! the bank's error body read in its standard's format (Berlin Group `tppMessages`, UK
//! `OBErrorResponse1`, OAuth2 `error`).

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde::Deserialize;

use super::backoff::retry_after;
use crate::BankError;

/// Which error vocabulary a bank endpoint speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// NextGenPSD2: `tppMessages[]` (or `application/problem+json`), codes such as
    /// `CONSENT_EXPIRED`.
    BerlinGroup,
    /// Read/Write API: `OBErrorResponse1`, codes such as `UK.OBIE.Resource.InvalidConsentStatus`.
    UkOpenBanking,
    /// An OAuth2 token endpoint: RFC 6749 §5.2 `error`.
    OAuth,
}

/// What to do about a failed attempt.
#[derive(Debug)]
pub(crate) enum Verdict {
    /// May succeed if repeated (when the request is safe to repeat), no sooner than `after`.
    Transient {
        error: BankError,
        after: Option<Duration>,
    },
    Final(BankError),
}

/// A connection refused, reset or timed out, or an answer cut off: the bank was not reached
/// usefully. The detail leaves the URL out, which may carry account ids.
pub(crate) fn transport(err: &reqwest::Error) -> Verdict {
    let kind = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "could not connect"
    } else if err.is_body() || err.is_decode() {
        "connection broken while reading the answer"
    } else {
        "connection failed"
    };
    // The innermost cause says what happened ("connection reset by peer"); the layers above
    // it only say which library noticed.
    let mut detail = kind.to_owned();
    let mut cause = std::error::Error::source(err);
    let mut innermost = None;
    while let Some(current) = cause {
        innermost = Some(current);
        cause = current.source();
    }
    if let Some(innermost) = innermost {
        detail.push_str(": ");
        detail.push_str(&innermost.to_string());
    }
    Verdict::Transient {
        error: BankError::Unavailable {
            status: None,
            detail,
        },
        after: None,
    }
}

/// A non-2xx answer.
pub(crate) fn status(
    dialect: Dialect,
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    unattended: bool,
    max_retry_after: Duration,
) -> Verdict {
    let code = status.as_u16();
    if status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT {
        return Verdict::Transient {
            error: BankError::Unavailable {
                status: Some(code),
                detail: format!("the bank answered {code}"),
            },
            after: retry_after(headers),
        };
    }
    if !status.is_client_error() {
        return Verdict::Final(BankError::protocol(format!("unexpected status {code}")));
    }
    let info = match ErrorInfo::parse(dialect, body) {
        Ok(info) => info,
        Err(detail) => return Verdict::Final(BankError::protocol(detail)),
    };
    if status == StatusCode::TOO_MANY_REQUESTS {
        return too_many_requests(dialect, &info, headers, unattended, max_retry_after);
    }
    Verdict::Final(client_error(dialect, code, info))
}

/// A 429 is either the consent's daily allowance of unattended reads being used up, or the
/// bank throttling. Berlin Group has a code for the first (`ACCESS_EXCEEDED`, also the only 429
/// code it defines); UK Open Banking has none, so there a 429 on an unattended read that asks to
/// wait longer than any throttling would is taken as the allowance. Either way, a read with the
/// user present is never over the allowance.
fn too_many_requests(
    dialect: Dialect,
    info: &ErrorInfo,
    headers: &HeaderMap,
    unattended: bool,
    max_retry_after: Duration,
) -> Verdict {
    let after = retry_after(headers);
    let waits_long = after.is_some_and(|d| d > max_retry_after);
    let allowance = unattended
        && match dialect {
            Dialect::BerlinGroup => {
                info.code.as_deref() == Some("ACCESS_EXCEEDED") && (after.is_none() || waits_long)
            }
            Dialect::UkOpenBanking | Dialect::OAuth => waits_long,
        };
    if allowance {
        Verdict::Final(BankError::AccessExceeded)
    } else if waits_long {
        Verdict::Final(BankError::RateLimited { retry_after: after })
    } else {
        Verdict::Transient {
            error: BankError::RateLimited { retry_after: after },
            after,
        }
    }
}

fn client_error(dialect: Dialect, status: u16, info: ErrorInfo) -> BankError {
    let code = info.code.unwrap_or_else(|| format!("HTTP_{status}"));
    let consent = match dialect {
        Dialect::BerlinGroup => match code.as_str() {
            "CONSENT_EXPIRED" => Some(BankError::ConsentExpired),
            "CONSENT_INVALID" | "CONSENT_UNKNOWN" => {
                Some(BankError::ConsentInvalid { code: code.clone() })
            }
            _ => None,
        },
        Dialect::UkOpenBanking => match code.as_str() {
            "UK.OBIE.Resource.InvalidConsentStatus" | "UK.OBIE.Reauthenticate" => {
                Some(BankError::ConsentInvalid { code: code.clone() })
            }
            _ => None,
        },
        // The refresh token or authorisation code is no longer good: the consent behind it
        // was revoked, expired, or the code was used.
        Dialect::OAuth => {
            (code == "invalid_grant").then(|| BankError::ConsentInvalid { code: code.clone() })
        }
    };
    consent.unwrap_or(BankError::Rejected {
        status,
        code,
        message: info.message.map(|m| scrub(&m)).unwrap_or_default(),
    })
}

/// The code and text of a bank's error body.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct ErrorInfo {
    pub code: Option<String>,
    pub message: Option<String>,
}

#[derive(Deserialize)]
struct BgError {
    #[serde(rename = "tppMessages", default)]
    tpp_messages: Vec<TppMessage>,
    /// `application/problem+json` (RFC 7807 with NextGenPSD2 codes).
    code: Option<String>,
    detail: Option<String>,
    title: Option<String>,
}

#[derive(Deserialize)]
struct TppMessage {
    category: String,
    code: String,
    text: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UkError {
    code: String,
    message: String,
    #[serde(default)]
    errors: Vec<UkErrorItem>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UkErrorItem {
    error_code: String,
    message: Option<String>,
}

#[derive(Deserialize)]
struct OAuthError {
    error: String,
    error_description: Option<String>,
}

impl ErrorInfo {
    /// Reads an error body. No body is allowed (several statuses have none); a body that is
    /// not the standard's error format is a protocol error.
    pub(crate) fn parse(dialect: Dialect, body: &[u8]) -> Result<Self, String> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self::default());
        }
        let bad = |what: &str| format!("error body is not {what}");
        match dialect {
            Dialect::BerlinGroup => {
                let parsed: BgError =
                    serde_json::from_slice(body).map_err(|_| bad("NextGenPSD2 tppMessages"))?;
                // The first ERROR says what went wrong; WARNINGs only add to it.
                let chosen = parsed
                    .tpp_messages
                    .iter()
                    .find(|m| m.category == "ERROR")
                    .or_else(|| parsed.tpp_messages.first());
                Ok(match chosen {
                    Some(m) => Self {
                        code: Some(m.code.clone()),
                        message: m.text.clone(),
                    },
                    None => Self {
                        code: parsed.code,
                        message: parsed.detail.or(parsed.title),
                    },
                })
            }
            Dialect::UkOpenBanking => {
                let parsed: UkError =
                    serde_json::from_slice(body).map_err(|_| bad("an OBErrorResponse1"))?;
                // `Code` is free text for the whole response; the standard's code is per error.
                let first = parsed.errors.into_iter().next();
                Ok(Self {
                    code: Some(first.as_ref().map_or(parsed.code, |e| e.error_code.clone())),
                    message: first.and_then(|e| e.message).or(Some(parsed.message)),
                })
            }
            Dialect::OAuth => {
                let parsed: OAuthError =
                    serde_json::from_slice(body).map_err(|_| bad("an OAuth2 error"))?;
                Ok(Self {
                    code: Some(parsed.error),
                    message: parsed.error_description,
                })
            }
        }
    }
}

/// A bank's error text may quote what it was sent, an IBAN or an account number among it: runs
/// of six or more digits are masked, and the text is cut short.
pub(crate) fn scrub(text: &str) -> String {
    let mut out = String::new();
    for word in text.split_inclusive(char::is_whitespace) {
        if word.chars().filter(char::is_ascii_digit).count() >= 6 {
            out.push('…');
            if word.ends_with(char::is_whitespace) {
                out.push(' ');
            }
        } else {
            out.push_str(word);
        }
    }
    out.chars().take(200).collect()
}

#[cfg(test)]
#[path = "classify_tests.rs"]
mod tests;
