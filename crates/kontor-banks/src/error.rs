//! What can go wrong talking to a bank, in terms the hub acts on.

use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BankError {
    /// The bank did not answer usefully: connection refused or reset, timeout, 5xx. Transient.
    #[error("bank unavailable: {detail}")]
    Unavailable { status: Option<u16>, detail: String },
    /// The bank asks to slow down (429 other than the daily allowance).
    #[error("bank rate limit")]
    RateLimited { retry_after: Option<Duration> },
    /// The consent's unattended reads for today are used up (Berlin Group `ACCESS_EXCEEDED`).
    #[error("the consent's daily access allowance is used up")]
    AccessExceeded,
    #[error("the consent has expired")]
    ConsentExpired,
    /// Revoked, rejected or unknown at the bank.
    #[error("the consent is no longer valid at the bank ({code})")]
    ConsentInvalid { code: String },
    /// The bank refused the request itself (4xx): a bug on one side or the other. With
    /// `status` 0 and `code` [`INVALID_REQUEST`], the connector refused it before sending,
    /// because the standard forbids it (see [`BankError::invalid_request`]): nothing reached
    /// the bank.
    #[error("the bank rejected the request: {status} {code}: {message}")]
    Rejected {
        status: u16,
        code: String,
        message: String,
    },
    /// The bank's answer does not follow the standard.
    #[error("unexpected answer from the bank: {detail}")]
    Protocol { detail: String },
}

/// The `code` of a [`BankError::Rejected`] that the connector raised itself, before sending.
pub const INVALID_REQUEST: &str = "KONTOR_INVALID_REQUEST";

impl BankError {
    /// Whether repeating the same read later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            BankError::Unavailable { .. } | BankError::RateLimited { .. }
        )
    }

    /// A request the connector will not send because the standard (or the bank's standard
    /// profile) forbids it: a field too long, a missing debtor account, a currency the product
    /// does not carry. `field` names the [`crate::PaymentRequest`] field; `problem` says what
    /// is wrong without quoting the value, which may be personal data.
    ///
    /// A [`BankError::Rejected`] rather than a variant of its own, so that callers matching on
    /// `BankError` keep compiling; [`BankError::is_invalid_request`] tells it apart.
    pub fn invalid_request(field: &str, problem: &str) -> Self {
        BankError::Rejected {
            status: 0,
            code: INVALID_REQUEST.to_owned(),
            message: format!("{field}: {problem}"),
        }
    }

    /// Whether the connector refused the request before sending it.
    pub fn is_invalid_request(&self) -> bool {
        matches!(self, BankError::Rejected { status: 0, code, .. } if code == INVALID_REQUEST)
    }

    pub fn protocol(detail: impl Into<String>) -> Self {
        BankError::Protocol {
            detail: detail.into(),
        }
    }
}
