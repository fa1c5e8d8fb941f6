//! Extractors that turn every way a request can be malformed into an [`ApiError`] with its own
//! code, instead of axum's plain-text rejections.

mod strict;
mod typed;

pub use typed::{Listing, PageParams, PageRequest, PathId, parse_id};

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::error::Category;

use crate::error::{ApiError, ErrorCode};

/// Longest excerpt of client input an error message repeats.
const ECHO_LIMIT: usize = 200;

fn bounded(message: &str) -> String {
    match message.char_indices().nth(ECHO_LIMIT) {
        Some((cut, _)) => format!("{}…", &message[..cut]),
        None => message.to_owned(),
    }
}

/// Whether the request's content type is `mime` (parameters such as `charset` allowed).
pub fn has_content_type(headers: &HeaderMap, mime: &str) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case(mime))
}

/// The raw body, within the configured size limit.
pub async fn body_bytes(request: Request) -> Result<Bytes, ApiError> {
    Bytes::from_request(request, &())
        .await
        .map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(ErrorCode::PayloadTooLarge, "the request body is too large")
            } else {
                ApiError::new(
                    ErrorCode::MalformedJson,
                    "the request body could not be read",
                )
            }
        })
}

/// A JSON body, parsed strictly: `application/json` only, no unknown fields, no trailing data.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, ApiError> {
        if !has_content_type(request.headers(), "application/json") {
            return Err(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                "send the body as Content-Type: application/json",
            ));
        }
        let bytes = body_bytes(request).await?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// Parses a request body, which is always a JSON object here (or `null`, where a body is
/// optional). serde's derived structs would also accept an array of field values in declaration
/// order, at any depth; [`strict::Strict`] refuses that as a type error.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        return Err(
            match serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
                Ok(_) => ApiError::new(ErrorCode::InvalidType, "the body must be a JSON object"),
                Err(err) => ApiError::new(
                    ErrorCode::MalformedJson,
                    bounded(&format!("the body is not valid JSON: {err}")),
                ),
            },
        );
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value: T =
        serde_path_to_error::deserialize(strict::Strict(&mut deserializer)).map_err(json_error)?;
    deserializer.end().map_err(|_| {
        ApiError::new(
            ErrorCode::MalformedJson,
            "the body has data after the JSON value",
        )
    })?;
    Ok(value)
}

fn json_error(err: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let path = err.path().to_string();
    let inner = err.into_inner();
    let message = inner.to_string();
    // serde_json appends " at line L column C"; the position is kept for syntax errors only.
    let reason = message.split(" at line ").next().unwrap_or(&message);
    match inner.classify() {
        Category::Syntax | Category::Eof | Category::Io => ApiError::new(
            ErrorCode::MalformedJson,
            bounded(&format!("the body is not valid JSON: {message}")),
        ),
        Category::Data => {
            let code = if reason.starts_with("unknown field") {
                ErrorCode::UnknownField
            } else if reason.starts_with("missing field") {
                ErrorCode::MissingField
            } else {
                ErrorCode::InvalidType
            };
            let located = if path == "." {
                reason.to_owned()
            } else {
                format!("{path}: {reason}")
            };
            ApiError::new(code, bounded(&located))
        }
    }
}

/// Query parameters, parsed strictly (unknown parameters are refused by the target type).
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or_default();
        serde_urlencoded::from_str(query)
            .map(ApiQuery)
            .map_err(|err| {
                ApiError::new(
                    ErrorCode::InvalidQuery,
                    bounded(&format!("invalid query: {err}")),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[expect(dead_code, reason = "fields only exercise deserialization")]
    struct Body {
        name: String,
        count: u32,
    }

    fn code_of(raw: &str) -> ErrorCode {
        parse_json::<Body>(raw.as_bytes()).unwrap_err().code()
    }

    #[test]
    fn each_kind_of_bad_json_has_its_code() {
        assert_eq!(code_of("{"), ErrorCode::MalformedJson);
        assert_eq!(code_of(""), ErrorCode::MalformedJson);
        assert_eq!(
            code_of(r#"{"name":"a","count":1} {}"#),
            ErrorCode::MalformedJson
        );
        assert_eq!(
            code_of(r#"{"name":"a","count":1,"x":2}"#),
            ErrorCode::UnknownField
        );
        assert_eq!(code_of(r#"{"name":"a"}"#), ErrorCode::MissingField);
        assert_eq!(code_of(r#"{"name":1,"count":1}"#), ErrorCode::InvalidType);
        assert_eq!(
            code_of(r#"{"name":"a","count":-1}"#),
            ErrorCode::InvalidType
        );
        assert_eq!(code_of("[]"), ErrorCode::InvalidType);
        assert_eq!(code_of(r#"  ["a", 1]"#), ErrorCode::InvalidType);
        assert_eq!(code_of("[1,"), ErrorCode::MalformedJson);
        assert_eq!(code_of("42"), ErrorCode::InvalidType);
        assert!(parse_json::<Body>(br#"{"name":"a","count":1}"#).is_ok());
    }

    #[test]
    fn messages_name_the_field_and_stay_bounded() {
        let err = parse_json::<Body>(br#"{"name":1,"count":1}"#).unwrap_err();
        assert!(err.message().starts_with("name:"), "{}", err.message());
        let long = format!(r#"{{"{}":1}}"#, "x".repeat(5000));
        let err = parse_json::<Body>(long.as_bytes()).unwrap_err();
        assert!(err.message().chars().count() <= ECHO_LIMIT + 1);
    }
}

/// The peer's socket address, when the server was started with connect info (as `kontor serve`
/// and the test app are); `None` otherwise.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub Option<std::net::SocketAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let info = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>();
        Ok(Peer(info.map(|c| c.0)))
    }
}
