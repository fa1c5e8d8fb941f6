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
    /// The bank refused the request itself (4xx): a bug on one side or the other.
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

impl BankError {
    /// Whether repeating the same read later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            BankError::Unavailable { .. } | BankError::RateLimited { .. }
        )
    }

    pub fn protocol(detail: impl Into<String>) -> Self {
        BankError::Protocol {
            detail: detail.into(),
        }
    }
}
