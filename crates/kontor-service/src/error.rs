//! What the services report to their callers (the API and the worker), who turn it into a
//! response or a retry. Codes are [`ErrorCode`]s, never strings; a store error becomes a service
//! error in exactly one place, the `From` impl below.

use kontor_banks::BankError;
use kontor_crypto::CryptoError;
use kontor_store::StoreError;

pub use crate::error_code::ErrorCode;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// No such record for this tenant (or at all).
    #[error("not found")]
    NotFound,
    /// The request names something invalid.
    #[error("{message}")]
    Invalid { code: ErrorCode, message: String },
    /// The request conflicts with the record's state.
    #[error("{message}")]
    Conflict { code: ErrorCode, message: String },
    #[error("bank: {0}")]
    Bank(#[from] BankError),
    /// A store failure the service does not turn into an answer of its own: unavailable,
    /// contended, corrupt, or a refused write it did not expect.
    #[error("store: {0}")]
    Store(StoreError),
    #[error("crypto: {0}")]
    Crypto(#[from] CryptoError),
    /// Something the hub wrote cannot be read back (a sealed session that does not parse).
    #[error("internal: {0}")]
    Internal(String),
}

impl ServiceError {
    pub fn invalid(code: ErrorCode, message: impl Into<String>) -> Self {
        ServiceError::Invalid {
            code,
            message: message.into(),
        }
    }

    pub fn conflict(code: ErrorCode, message: impl Into<String>) -> Self {
        ServiceError::Conflict {
            code,
            message: message.into(),
        }
    }

    /// The code the error is answered with.
    pub fn code(&self) -> ErrorCode {
        match self {
            ServiceError::NotFound => ErrorCode::NotFound,
            ServiceError::Invalid { code, .. } | ServiceError::Conflict { code, .. } => *code,
            ServiceError::Bank(bank) => ErrorCode::of_bank(bank),
            ServiceError::Store(StoreError::Moving { .. }) => ErrorCode::SubjectMoving,
            ServiceError::Store(store) if store.is_unavailable() => ErrorCode::ServiceUnavailable,
            ServiceError::Store(_) | ServiceError::Crypto(_) | ServiceError::Internal(_) => {
                ErrorCode::InternalError
            }
        }
    }
}

/// The one conversion from the store: a record that is not there (or a region with no cell) is
/// the service's `NotFound`; anything else stays a store error, for the caller to log.
impl From<StoreError> for ServiceError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound | StoreError::UnknownRegion(_) | StoreError::UnknownCell(_) => {
                ServiceError::NotFound
            }
            other => ServiceError::Store(other),
        }
    }
}

pub type ServiceResult<T> = Result<T, ServiceError>;

#[cfg(test)]
mod tests {
    use super::*;

    /// `?` and an explicit conversion are the same conversion.
    #[test]
    fn a_missing_record_is_not_found_however_it_is_converted() {
        fn through_question_mark() -> ServiceResult<()> {
            Err(StoreError::NotFound)?
        }
        assert!(matches!(
            through_question_mark(),
            Err(ServiceError::NotFound)
        ));
        let region = kontor_domain::Region::parse("de").unwrap();
        assert!(matches!(
            ServiceError::from(StoreError::UnknownRegion(region)),
            ServiceError::NotFound
        ));
        let refused = ServiceError::from(StoreError::StateRefused {
            reason: "payment is final".into(),
        });
        assert!(matches!(
            refused,
            ServiceError::Store(StoreError::StateRefused { .. })
        ));
        assert_eq!(refused.code(), ErrorCode::InternalError);
        let down = ServiceError::from(StoreError::Contention { attempts: 3 });
        assert_eq!(down.code(), ErrorCode::ServiceUnavailable);
    }
}
