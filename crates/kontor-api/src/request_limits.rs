//! Limits on what comes before the body: the length of the path and query, the size of the
//! headers, and that the path and query decode to UTF-8. hyper enforces its own, much larger,
//! limits and answers them bare; these sit below hyper's, so that what a client is likely to hit
//! is answered in the API's envelope with a request id. hyper's stay as the backstop.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use percent_encoding::percent_decode_str;

use crate::error::{ApiError, ErrorCode};

/// Longest path and query accepted, in bytes (hyper's own limit is about 64 KiB).
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// Largest header section accepted: names, values and their separators, in bytes (hyper's own
/// limit is about 400 KiB).
pub const MAX_HEADER_BYTES: usize = 32 * 1024;
/// Most header fields accepted. hyper's own default is 100, answered bare; the server raises
/// hyper's to [`HEADER_COUNT_BACKSTOP`], so this one answers first, in the envelope.
pub const MAX_HEADER_COUNT: usize = 100;
/// hyper's limit on header fields, above ours: what a request past it gets is hyper's bare 431.
pub const HEADER_COUNT_BACKSTOP: usize = 1000;

/// Why a request's head is refused, if it is.
fn check(request: &Request) -> Result<(), ApiError> {
    let uri = request
        .uri()
        .path_and_query()
        .map_or(request.uri().path(), |pq| pq.as_str());
    if uri.len() > MAX_URI_BYTES {
        return Err(ApiError::new(
            ErrorCode::UriTooLong,
            format!("the path and query may be at most {MAX_URI_BYTES} bytes"),
        ));
    }
    let header_bytes: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if header_bytes > MAX_HEADER_BYTES || request.headers().len() > MAX_HEADER_COUNT {
        return Err(ApiError::new(
            ErrorCode::HeadersTooLarge,
            format!(
                "the headers may be at most {MAX_HEADER_BYTES} bytes in at most {MAX_HEADER_COUNT} fields"
            ),
        ));
    }
    let decodes = |raw: &str| percent_decode_str(raw).decode_utf8().is_ok();
    if !decodes(request.uri().path()) {
        return Err(ApiError::new(
            ErrorCode::InvalidEncoding,
            "the path is not valid UTF-8 once percent-decoded",
        ));
    }
    if let Some(query) = request.uri().query()
        && !query.split(['&', '=']).all(decodes)
    {
        return Err(ApiError::new(
            ErrorCode::InvalidEncoding,
            "the query is not valid UTF-8 once percent-decoded",
        ));
    }
    Ok(())
}

pub async fn middleware(request: Request, next: Next) -> Response {
    match check(&request) {
        Ok(()) => next.run(request).await,
        Err(err) => {
            tracing::info!(code = err.code().as_str(), "request head refused");
            err.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;

    fn code(uri: &str, header: Option<(&str, String)>) -> Option<ErrorCode> {
        let mut builder = Request::builder().uri(uri);
        if let Some((name, value)) = header {
            builder = builder.header(name, value);
        }
        let request = builder.body(Body::empty()).unwrap();
        check(&request).err().map(|e| e.code())
    }

    #[test]
    fn heads_within_the_limits_pass() {
        assert_eq!(code("/v1/users?external_id=M%C3%BCller", None), None);
        assert_eq!(code("/v1/users/usr_uk_x", None), None);
        let uri = format!("/v1/users?external_id={}", "a".repeat(MAX_URI_BYTES - 30));
        assert_eq!(code(&uri, None), None);
        assert_eq!(
            code("/", Some(("x-note", "a".repeat(MAX_HEADER_BYTES - 100)))),
            None
        );
    }

    #[test]
    fn each_limit_has_its_code() {
        let uri = format!("/v1/users?external_id={}", "a".repeat(MAX_URI_BYTES));
        assert_eq!(code(&uri, None), Some(ErrorCode::UriTooLong));
        assert_eq!(
            code("/", Some(("x-note", "a".repeat(MAX_HEADER_BYTES)))),
            Some(ErrorCode::HeadersTooLarge)
        );
        assert_eq!(
            code("/v1/users/%FF", None),
            Some(ErrorCode::InvalidEncoding)
        );
        assert_eq!(
            code("/v1/users?external_id=%C3%28", None),
            Some(ErrorCode::InvalidEncoding)
        );
        assert_eq!(
            code("/v1/users?%FE=1", None),
            Some(ErrorCode::InvalidEncoding)
        );
    }
}
