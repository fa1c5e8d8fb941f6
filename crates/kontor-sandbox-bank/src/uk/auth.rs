//! Bearer tokens and request headers of the UK API: client-credentials tokens for consent
//! endpoints, PSU tokens (bound to one consent) for data and payments, `x-fapi-*` headers,
//! `x-idempotency-key` and `x-jws-signature` as the spec constrains them.

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use serde::de::DeserializeOwned;
use time::OffsetDateTime;

use super::error::{UkError, UkResult};
use crate::state::BankState;
use crate::state::uk::TokenGrant;

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = header(headers, "authorization")?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// The TPP behind a client-credentials token that has `scope`.
pub fn client_token(
    state: &BankState,
    headers: &HeaderMap,
    scope: &str,
    now: OffsetDateTime,
) -> UkResult<String> {
    let token = bearer(headers)
        .and_then(|t| state.access_tokens.get(t))
        .filter(|t| t.expires_at > now)
        .ok_or_else(UkError::unauthorized)?;
    match &token.grant {
        TokenGrant::Client { scopes } if scopes.iter().any(|s| s == scope) => {
            Ok(token.client_id.clone())
        }
        TokenGrant::Client { .. } => Err(UkError::forbidden(
            "UK.OBIE.Resource.ConsentMismatch",
            format!("the access token lacks the `{scope}` scope"),
        )),
        TokenGrant::Psu { .. } => Err(UkError::forbidden(
            "UK.OBIE.Resource.ConsentMismatch",
            "this endpoint needs a client-credentials token, not a PSU token",
        )),
    }
}

/// The TPP and consent behind a PSU (authorization-code) token.
pub fn psu_token(
    state: &BankState,
    headers: &HeaderMap,
    scope: &str,
    now: OffsetDateTime,
) -> UkResult<(String, String)> {
    let token = bearer(headers)
        .and_then(|t| state.access_tokens.get(t))
        .filter(|t| t.expires_at > now)
        .ok_or_else(UkError::unauthorized)?;
    match &token.grant {
        TokenGrant::Psu { consent_id, scopes } if scopes.iter().any(|s| s == scope) => {
            Ok((token.client_id.clone(), consent_id.clone()))
        }
        TokenGrant::Psu { .. } => Err(UkError::forbidden(
            "UK.OBIE.Resource.ConsentMismatch",
            format!("the access token lacks the `{scope}` scope"),
        )),
        TokenGrant::Client { .. } => Err(UkError::forbidden(
            "UK.OBIE.Resource.ConsentMismatch",
            "this endpoint needs the PSU's access token (authorization code grant)",
        )),
    }
}

const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `x-fapi-auth-date` must look like `Sun, 10 Sep 2017 19:43:31 UTC` (RFC 7231, GMT/UTC).
fn is_fapi_date(text: &str) -> bool {
    let parts: Vec<&str> = text.split(' ').collect();
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    parts.len() == 6
        && parts[0]
            .strip_suffix(',')
            .is_some_and(|d| DAYS.contains(&d))
        && digits(parts[1], 2)
        && MONTHS.contains(&parts[2])
        && digits(parts[3], 4)
        && parts[4].split(':').count() == 3
        && parts[4].split(':').all(|p| digits(p, 2))
        && (parts[5] == "GMT" || parts[5] == "UTC")
}

/// Checks the optional FAPI headers every endpoint takes.
pub fn check_fapi_headers(headers: &HeaderMap) -> UkResult<()> {
    if let Some(date) = headers.get("x-fapi-auth-date")
        && !date.to_str().is_ok_and(is_fapi_date)
    {
        {
            return Err(UkError::bad_request(
                "UK.OBIE.Header.Invalid",
                "x-fapi-auth-date must be an RFC 7231 date like `Sun, 10 Sep 2017 19:43:31 UTC`",
            )
            .at("x-fapi-auth-date"));
        }
    }
    if let Some(ip) = headers.get("x-fapi-customer-ip-address")
        && !ip
            .to_str()
            .is_ok_and(|v| v.trim().parse::<std::net::IpAddr>().is_ok())
    {
        return Err(UkError::bad_request(
            "UK.OBIE.Header.Invalid",
            "x-fapi-customer-ip-address must be an IP address",
        )
        .at("x-fapi-customer-ip-address"));
    }
    Ok(())
}

/// True when the PSU is present (the TPP forwards their IP address).
pub fn psu_present(headers: &HeaderMap) -> bool {
    headers.contains_key("x-fapi-customer-ip-address")
}

/// `x-idempotency-key`: required, at most 40 characters, no leading or trailing whitespace.
pub fn idempotency_key(headers: &HeaderMap) -> UkResult<String> {
    let Some(raw) = headers.get("x-idempotency-key") else {
        return Err(UkError::bad_request(
            "UK.OBIE.Header.Missing",
            "x-idempotency-key is required",
        )
        .at("x-idempotency-key"));
    };
    let key = raw.to_str().unwrap_or("");
    let valid = !key.is_empty()
        && key.chars().count() <= 40
        && !key.starts_with(char::is_whitespace)
        && !key.ends_with(char::is_whitespace);
    if !valid {
        return Err(UkError::bad_request(
            "UK.OBIE.Header.Invalid",
            "x-idempotency-key must be 1..40 characters without surrounding whitespace",
        )
        .at("x-idempotency-key"));
    }
    Ok(key.to_string())
}

/// `x-jws-signature`: required; must be a detached JWS (`header..signature`). The sandbox
/// cannot verify it (it has no TPP keys), but refuses what could never be one.
pub fn jws_signature(headers: &HeaderMap) -> UkResult<()> {
    let Some(value) = header(headers, "x-jws-signature") else {
        return Err(UkError::bad_request(
            "UK.OBIE.Signature.Missing",
            "x-jws-signature is required",
        )
        .at("x-jws-signature"));
    };
    let b64 = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    match value.split_once("..") {
        Some((h, s)) if b64(h) && b64(s) => Ok(()),
        _ => Err(UkError::bad_request(
            "UK.OBIE.Signature.Malformed",
            "x-jws-signature must be a detached JWS: <header>..<signature>",
        )
        .at("x-jws-signature")),
    }
}

/// Parses a JSON body: other media types get 415, schema problems the matching field code.
pub fn json_body<T: DeserializeOwned>(headers: &HeaderMap, body: &Bytes) -> UkResult<T> {
    // No content has no media type to refuse (415 is about the content's format).
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(UkError::bad_request(
            "UK.OBIE.Field.Missing",
            "a JSON body is required",
        ));
    }
    let content_type = header(headers, "content-type").unwrap_or("");
    if !content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .eq_ignore_ascii_case("application/json")
    {
        return Err(UkError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "", ""));
    }
    crate::web::json::from_slice(body).map_err(|error| {
        let message = error.message;
        let code = if message.starts_with("unknown field") {
            "UK.OBIE.Field.Unexpected"
        } else if message.starts_with("missing field") {
            "UK.OBIE.Field.Missing"
        } else {
            "UK.OBIE.Field.Invalid"
        };
        UkError::bad_request(code, format!("invalid request body: {message}")).at(error.path)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fapi_dates() {
        assert!(is_fapi_date("Sun, 10 Sep 2017 19:43:31 UTC"));
        assert!(!is_fapi_date("Sun, 10 Sep 2017 19:43:31 CET"));
        assert!(!is_fapi_date("2017-09-10T19:43:31Z"));
    }
}
