//! A write that meets a move's freeze (its tenant or user is being moved between cells, see
//! docs/OPERATIONS.md "Moving a tenant or user between cells") is tried again here: the routes
//! are re-read and the request run again after a short, growing pause, for at most the hub's
//! `routes.write_wait`. So the client sees the freeze as latency; only past that bound does it
//! get `503 subject_moving` with `Retry-After`. The refused cell transaction wrote nothing, but
//! a handler may have called the bank before it (cancelling a payment, starting a consent,
//! revoking a connection): those requests are run once and their 503 passed on, so the bank is
//! never called twice for one request ([`runs_once`]). Reads are not fenced and pass straight
//! through.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;

/// The first pause before a write is tried again; it doubles up to [`LONGEST_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(25);
const LONGEST_PAUSE: Duration = Duration::from_millis(400);

pub async fn middleware(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) || runs_once(request.method(), request.uri().path())
    {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, state.settings().body_limit_bytes).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return ApiError::new(
                ErrorCode::PayloadTooLarge,
                "the request body exceeds the configured size limit",
            )
            .into_response();
        }
    };
    let wait = state.hub().settings().routes.write_wait;
    let started = Instant::now();
    let mut pause = FIRST_PAUSE;
    loop {
        let mut again = Request::new(Body::from(bytes.clone()));
        *again.method_mut() = parts.method.clone();
        *again.uri_mut() = parts.uri.clone();
        *again.version_mut() = parts.version;
        *again.headers_mut() = parts.headers.clone();
        *again.extensions_mut() = parts.extensions.clone();
        let response = next.clone().run(again).await;
        let moving = response.extensions().get::<ErrorCode>() == Some(&ErrorCode::SubjectMoving);
        if !moving || started.elapsed() + pause > wait {
            return response;
        }
        tokio::time::sleep(pause).await;
        if let Err(error) = state.hub().refresh_routes().await {
            tracing::warn!(%error, "could not re-read the cells' routes");
        }
        pause = (pause * 2).min(LONGEST_PAUSE);
    }
}

/// Requests whose handler may call the bank before its last cell write: running them again after
/// that write was refused would call the bank twice.
fn runs_once(method: &Method, path: &str) -> bool {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    matches!(
        (method, parts.as_slice()),
        (&Method::POST, ["v1", "payments", _, "cancel"])
            | (&Method::POST, ["connect", _, "start"])
            | (&Method::DELETE, ["v1", "connections", _])
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_that_may_call_the_bank_first_run_once() {
        assert!(runs_once(&Method::POST, "/v1/payments/pay_de_x/cancel"));
        assert!(runs_once(&Method::POST, "/connect/con_de_x/start"));
        assert!(runs_once(&Method::DELETE, "/v1/connections/con_de_x"));
        assert!(!runs_once(&Method::POST, "/v1/payments"));
        assert!(!runs_once(&Method::POST, "/v1/connections"));
        assert!(!runs_once(&Method::DELETE, "/v1/users/usr_de_x"));
    }
}
