//! What the services report to their callers (the API and the worker), who turn it into a
//! response or a retry.

use kontor_banks::BankError;
use kontor_crypto::CryptoError;
use kontor_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// No such record for this tenant (or at all).
    #[error("not found")]
    NotFound,
    /// The request names something invalid; `code` is the API's error code.
    #[error("{message}")]
    Invalid { code: &'static str, message: String },
    /// The request conflicts with the record's state; `code` is the API's error code.
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("bank: {0}")]
    Bank(#[from] BankError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("crypto: {0}")]
    Crypto(#[from] CryptoError),
    /// Something the hub wrote cannot be read back (a sealed session that does not parse).
    #[error("internal: {0}")]
    Internal(String),
}

impl ServiceError {
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        ServiceError::Invalid {
            code,
            message: message.into(),
        }
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        ServiceError::Conflict {
            code,
            message: message.into(),
        }
    }

    /// `NotFound` from the store is the service's `NotFound`; anything else stays a store error.
    pub fn from_store(err: StoreError) -> Self {
        match err {
            StoreError::NotFound | StoreError::UnknownRegion(_) => ServiceError::NotFound,
            other => ServiceError::Store(other),
        }
    }
}

pub type ServiceResult<T> = Result<T, ServiceError>;
