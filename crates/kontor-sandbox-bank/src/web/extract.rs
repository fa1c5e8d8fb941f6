//! Extractors that never answer on their own: axum's built-in rejections would bypass the
//! standards' error formats, so handlers get raw values and report problems themselves.

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::request::Parts;

/// Path parameters in route order (empty if they could not be decoded).
#[derive(Debug, Clone, Default)]
pub struct Params(pub Vec<String>);

impl Params {
    pub fn get(&self, index: usize) -> &str {
        self.0.get(index).map_or("", String::as_str)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Ok(
            match RawPathParams::from_request_parts(parts, state).await {
                Ok(raw) => Params(raw.iter().map(|(_, v)| v.to_string()).collect()),
                Err(_) => Params::default(),
            },
        )
    }
}

/// Largest request body any endpoint accepts.
pub const BODY_LIMIT: usize = 256 * 1024;

/// Reads a request body; `None` when it is too large or broken.
pub async fn read_body(body: Body) -> Option<Bytes> {
    axum::body::to_bytes(body, BODY_LIMIT).await.ok()
}

/// Decodes `application/x-www-form-urlencoded` (also query strings) into pairs.
pub fn form_pairs(bytes: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(bytes).into_owned().collect()
}

/// The first value of a form or query field.
pub fn field<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}
