//! Headers every response carries. API answers hold personal data (names, IBANs, transactions)
//! and, once, a webhook signing secret: no cache on the way (a shared proxy, the browser's disk)
//! may keep them, and no browser may guess a type other than the one declared.
//!
//! The API document and the `/docs` page's assets are public and the same for everyone, so they
//! stay cacheable; a handler that sets its own `Cache-Control` keeps it.

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::http::header::{CACHE_CONTROL, X_CONTENT_TYPE_OPTIONS};
use axum::middleware::Next;
use axum::response::Response;

/// The public, static documents: the OpenAPI document and the Swagger UI's files.
fn is_public_document(path: &str) -> bool {
    path == "/openapi.json" || path == "/docs" || path.starts_with("/docs/")
}

pub async fn middleware(request: Request, next: Next) -> Response {
    let cacheable = is_public_document(request.uri().path());
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if !cacheable && !headers.contains_key(CACHE_CONTROL) {
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_documents_are_cacheable() {
        for path in ["/openapi.json", "/docs", "/docs/", "/docs/swagger-ui.css"] {
            assert!(is_public_document(path), "{path}");
        }
        for path in [
            "/v1/users",
            "/docsx",
            "/v1/docs/x",
            "/connect/con_x",
            "/readyz",
        ] {
            assert!(!is_public_document(path), "{path}");
        }
    }
}
