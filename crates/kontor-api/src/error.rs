//! The one error type of the API. Each error has an HTTP status and a stable snake_case `code`
//! that clients match on; the message is for people. Internal causes are logged once, with their
//! chain, and answered as an opaque 500.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::request_id;

pub use kontor_service::ErrorCode;

/// `Retry-After` (seconds) for answers that say "later" without knowing how much later: a
/// database failover or a bank's blip is usually over within seconds.
pub fn default_retry_after(code: ErrorCode) -> Option<u64> {
    match code {
        ErrorCode::ServiceUnavailable => Some(2),
        ErrorCode::BankUnavailable => Some(5),
        ErrorCode::NoOpenCell => Some(30),
        ErrorCode::SubjectMoving => Some(1),
        _ => None,
    }
}

#[derive(Debug)]
pub struct ApiError {
    code: ErrorCode,
    message: String,
    /// Sent as `WWW-Authenticate` on 401s.
    challenge: Option<&'static str>,
    /// Sent as `Retry-After` (seconds) when known.
    retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            challenge: None,
            retry_after: None,
        }
    }

    pub fn code(&self) -> ErrorCode {
        self.code
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    pub fn with_challenge(mut self, challenge: &'static str) -> Self {
        self.challenge = Some(challenge);
        self
    }

    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    pub fn not_found() -> Self {
        Self::new(ErrorCode::NotFound, "no such resource")
    }

    /// An unexpected failure: the cause is logged here, once, and the client sees no detail.
    pub fn internal(cause: &(dyn std::error::Error + 'static)) -> Self {
        tracing::error!(error = %ErrorChain(cause), "internal error");
        Self::new(ErrorCode::InternalError, "internal error")
    }
}

/// Formats an error with all its sources, for the one log line an internal error gets.
struct ErrorChain<'a>(&'a (dyn std::error::Error + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

/// The services' errors as answers. Every kind is matched by name (no catch-all), so a new kind
/// of service error does not compile until it is answered here; its code comes from the one
/// [`ErrorCode`] table.
impl From<kontor_service::ServiceError> for ApiError {
    fn from(err: kontor_service::ServiceError) -> Self {
        use kontor_service::ServiceError as S;
        let code = err.code();
        let retry_after = err.bank_retry_after();
        match err {
            S::NotFound => ApiError::not_found(),
            S::Invalid { message, .. } | S::Conflict { message, .. } => {
                ApiError::new(code, message)
            }
            S::Bank(bank) => {
                tracing::info!(error = %bank, code = code.as_str(), "bank error answered to the tenant");
                let answer = ApiError::new(code, bank.to_string());
                match retry_after {
                    Some(wait) => answer.with_retry_after(wait.as_secs().max(1)),
                    None => answer,
                }
            }
            S::Store(store) if code == ErrorCode::SubjectMoving => {
                tracing::info!(error = %store, "a write met a move's freeze");
                ApiError::new(
                    code,
                    "the tenant or user is being moved between cells; nothing was written; retry shortly",
                )
            }
            S::Store(store) if code == ErrorCode::ServiceUnavailable => {
                tracing::warn!(error = %ErrorChain(&store), "database unavailable");
                ApiError::new(code, "the database is unavailable; retry later")
            }
            S::Store(_) | S::Crypto(_) | S::Internal(_) => ApiError::internal(&err),
        }
    }
}

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorEnvelope {
    pub error: ErrorBody,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    #[schema(value_type = crate::openapi::schemas::ErrorCodeWord)]
    pub code: ErrorCode,
    pub message: String,
    /// The id of the request, also in the `x-request-id` response header.
    pub request_id: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.code.status();
        let body = ErrorEnvelope {
            error: ErrorBody {
                code: self.code,
                message: self.message,
                request_id: request_id::current().unwrap_or_default(),
            },
        };
        let mut response = (status, axum::Json(body)).into_response();
        // For the layers around the handlers (a write meeting a move's freeze is retried).
        response.extensions_mut().insert(self.code);
        if let Some(seconds) = self.retry_after.or_else(|| default_retry_after(self.code))
            && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        if let Some(challenge) = self.challenge {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    /// Codes the services raise are answered as themselves, never as an unmapped 500.
    #[test]
    fn service_codes_are_answered_as_themselves() {
        for code in [
            ErrorCode::PaymentBusy,
            ErrorCode::InvalidState,
            ErrorCode::DecoupledStartsUsed,
        ] {
            let err = ApiError::from(kontor_service::ServiceError::invalid(code, "refused"));
            assert_eq!(err.code(), code);
            let err = ApiError::from(kontor_service::ServiceError::conflict(code, "refused"));
            assert_eq!(err.code(), code);
        }
    }

    #[test]
    fn every_503_says_when_to_retry() {
        for code in ErrorCode::ALL {
            let response = ApiError::new(*code, "later").into_response();
            if response.status() == StatusCode::SERVICE_UNAVAILABLE {
                let wait = response.headers().get(header::RETRY_AFTER);
                let seconds: u64 = wait
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| panic!("{} has no Retry-After", code.as_str()));
                assert!((1..=30).contains(&seconds), "{}", code.as_str());
            }
        }
        // A known wait (the bank's) wins over the default.
        let response = ApiError::new(ErrorCode::BankUnavailable, "later")
            .with_retry_after(42)
            .into_response();
        assert_eq!(response.headers()[header::RETRY_AFTER], "42");
    }
}
