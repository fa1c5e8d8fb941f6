//! What a service error means to a caller that does not know the connectors behind it (the
//! API): whether a bank asked to be left alone for a while. The API answers from this instead of
//! matching bank error types; every other meaning is in the error's [`crate::ErrorCode`].

use std::time::Duration;

use kontor_banks::BankError;

use crate::error::ServiceError;

impl ServiceError {
    /// How long a bank that rate-limited the request asked to wait, when it said.
    pub fn bank_retry_after(&self) -> Option<Duration> {
        match self {
            ServiceError::Bank(BankError::RateLimited {
                retry_after: Some(wait),
            }) => Some(*wait),
            _ => None,
        }
    }
}
