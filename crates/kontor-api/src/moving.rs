//! A write that meets a move's freeze (its tenant or user is being moved between cells, see
//! docs/OPERATIONS.md "Moving a tenant or user between cells") is tried again here: the routes
//! are re-read and the request run again after a short, growing pause, for at most the hub's
//! `routes.write_wait`. So the client sees the freeze as latency; only past that bound does it
//! get `503 subject_moving` with `Retry-After`. A write refused this way wrote nothing (the
//! cell refuses the whole transaction), so running it again is safe. Reads are not fenced and
//! pass straight through.

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
    ) {
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
