//! What a service error means to a caller that does not know the stores and connectors behind
//! it (the API): whether the database was unavailable, whether a bank asked to be left alone
//! for a while. The API answers from these instead of matching store or bank error types.

use std::time::Duration;

use kontor_banks::BankError;
use kontor_store::StoreError;

use crate::error::ServiceError;

/// What a store's failure means to the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreFailure {
    /// No such record (or no such region here): a 404.
    NotFound,
    /// The database could not be reached, lost the connection or stayed too busy: retry later.
    Unavailable,
    /// Anything else: a fault of the hub's, logged.
    Internal,
}

impl ServiceError {
    /// For a store error, what it means; `None` for every other kind.
    pub fn store_failure(&self) -> Option<StoreFailure> {
        let ServiceError::Store(err) = self else {
            return None;
        };
        Some(match err {
            StoreError::NotFound | StoreError::UnknownRegion(_) => StoreFailure::NotFound,
            StoreError::Unavailable { .. }
            | StoreError::ConnectionLost { .. }
            | StoreError::Contention { .. } => StoreFailure::Unavailable,
            _ => StoreFailure::Internal,
        })
    }

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
