//! Berlin Group errors: `tppMessages` with the code lists of the spec, per service (AIS/PIS),
//! and no body for the statuses the spec gives none.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Which of the spec's error families applies (their code lists differ).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Ais,
    Pis,
}

/// An error answered in the spec's format.
#[derive(Debug, Clone)]
pub struct BgError {
    pub status: StatusCode,
    pub code: &'static str,
    pub text: String,
    pub path: Option<String>,
    pub service: Service,
    pub retry_after: Option<u32>,
    /// `Allow` of a 405 raised by a handler (the router sets it on its own 405s).
    pub allow: Option<&'static str>,
}

#[derive(Serialize)]
struct TppMessage<'a> {
    category: &'static str,
    code: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<&'a str>,
    text: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ErrorBody<'a> {
    tpp_messages: Vec<TppMessage<'a>>,
}

impl BgError {
    pub fn new(
        service: Service,
        status: StatusCode,
        code: &'static str,
        text: impl Into<String>,
    ) -> Self {
        let mut text = text.into();
        // tppMessageText is at most 500 characters.
        if text.len() > 500 {
            let mut cut = 497;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
            text.push_str("...");
        }
        Self {
            status,
            code,
            text,
            path: None,
            service,
            retry_after: None,
            allow: None,
        }
    }

    pub fn format(service: Service, text: impl Into<String>) -> Self {
        Self::new(service, StatusCode::BAD_REQUEST, "FORMAT_ERROR", text)
    }

    pub fn at_path(mut self, path: impl Into<String>) -> Self {
        self.path = Some(path.into());
        self
    }

    /// Whether the spec defines a body for this status in this service.
    fn has_body(&self) -> bool {
        let status = self.status.as_u16();
        match self.service {
            Service::Ais => matches!(status, 400 | 401 | 403 | 404 | 405 | 406 | 409 | 429),
            Service::Pis => matches!(status, 400 | 401 | 403 | 404 | 405 | 409),
        }
    }
}

impl IntoResponse for BgError {
    fn into_response(self) -> Response {
        let mut response = if self.has_body() {
            let body = ErrorBody {
                tpp_messages: vec![TppMessage {
                    category: "ERROR",
                    code: self.code,
                    path: self.path.as_deref(),
                    text: &self.text,
                }],
            };
            (self.status, axum::Json(body)).into_response()
        } else {
            self.status.into_response()
        };
        if let Some(methods) = self.allow {
            response
                .headers_mut()
                .insert("allow", HeaderValue::from_static(methods));
        }
        if let Some(seconds) = self.retry_after
            && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
        {
            response.headers_mut().insert("retry-after", value);
        }
        response
    }
}

pub type BgResult<T> = Result<T, BgError>;
