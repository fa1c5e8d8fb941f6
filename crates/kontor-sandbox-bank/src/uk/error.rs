//! UK Open Banking errors: `OBErrorResponse1` with `Errors[].ErrorCode` from the spec's
//! enumeration for 400/403/500, and no body for the statuses the spec gives none.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// An error answered in the spec's format.
#[derive(Debug, Clone)]
pub struct UkError {
    pub status: StatusCode,
    pub error_code: &'static str,
    pub message: String,
    pub path: Option<String>,
    pub retry_after: Option<u32>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ObError<'a> {
    error_code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ObErrorResponse<'a> {
    code: String,
    message: &'a str,
    errors: Vec<ObError<'a>>,
}

fn clip(text: String, max: usize) -> String {
    if text.chars().count() <= max {
        text
    } else {
        text.chars().take(max).collect()
    }
}

impl UkError {
    pub fn new(status: StatusCode, error_code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            error_code,
            message: clip(message.into(), 500),
            path: None,
            retry_after: None,
        }
    }

    pub fn bad_request(error_code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, error_code, message)
    }

    pub fn forbidden(error_code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, error_code, message)
    }

    /// 401: no body (the spec defines none), the bearer token is missing, unknown or expired.
    pub fn unauthorized() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "", "")
    }

    pub fn at(mut self, path: impl Into<String>) -> Self {
        self.path = Some(clip(path.into(), 500));
        self
    }

    fn has_body(&self) -> bool {
        matches!(self.status.as_u16(), 400 | 403 | 500)
    }
}

impl IntoResponse for UkError {
    fn into_response(self) -> Response {
        let mut response = if self.has_body() {
            let body = ObErrorResponse {
                code: clip(
                    format!(
                        "{} {}",
                        self.status.as_u16(),
                        self.status.canonical_reason().unwrap_or("Error")
                    ),
                    40,
                ),
                message: &self.message,
                errors: vec![ObError {
                    error_code: self.error_code,
                    message: &self.message,
                    path: self.path.as_deref(),
                }],
            };
            (self.status, axum::Json(body)).into_response()
        } else {
            self.status.into_response()
        };
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                "www-authenticate",
                HeaderValue::from_static("Bearer error=\"invalid_token\""),
            );
        }
        if let Some(seconds) = self.retry_after
            && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
        {
            response.headers_mut().insert("retry-after", value);
        }
        response
    }
}

pub type UkResult<T> = Result<T, UkError>;
