//! The one routing table of the API, and what wraps every route.

pub mod accounts;
pub mod banks;
pub mod changes;
pub mod connections;
pub mod deliveries;
pub mod event_types;
pub mod events;
pub mod lists;
pub mod oauth;
pub mod ops;
pub mod payments;
pub mod user_export;
pub mod users;
pub mod webhook_endpoints;
pub mod webhook_test;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tower_http::catch_panic::CatchPanicLayer;
use utoipa_swagger_ui::SwaggerUi;

use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;
use crate::{limits, observe, openapi, pages, request_id, request_limits, security_headers};

pub fn router(state: AppState) -> Router {
    // Install the recorder before the first request, so no early metric is lost.
    observe::prometheus();
    let body_limit = state.settings().body_limit_bytes;
    let banks = state.hub().directory().list(None);
    let document = openapi::Served::new(
        state.hub().regions().cloned().collect(),
        banks
            .iter()
            .map(|bank| bank.profile.id.as_str().to_owned())
            .collect(),
    );
    let docs = SwaggerUi::new("/docs").config(utoipa_swagger_ui::Config::from(OPENAPI_PATH));
    Router::new()
        .route("/v1/oauth/token", post(oauth::token))
        .route("/v1/users", post(users::create).get(users::list))
        .route("/v1/users/{id}", get(users::get).delete(users::delete))
        .route("/v1/users/{id}/export", get(user_export::export))
        .route("/v1/banks", get(banks::list))
        .route(
            "/v1/connections",
            post(connections::create).get(lists::connections),
        )
        .route(
            "/v1/connections/{id}",
            get(connections::get).delete(connections::delete),
        )
        .route("/v1/connections/{id}/refresh", post(connections::refresh))
        .route(
            "/v1/connections/{id}/reconfirm",
            post(connections::reconfirm),
        )
        .route(
            "/v1/connections/{id}/transactions/changes",
            get(changes::list),
        )
        .route("/v1/accounts", get(accounts::list))
        .route("/v1/accounts/{id}", get(accounts::get))
        .route("/v1/accounts/{id}/balances", get(accounts::balances))
        .route(
            "/v1/accounts/{id}/transactions",
            get(accounts::transactions),
        )
        .route("/v1/event-types", get(event_types::list))
        .route("/v1/events", get(events::list))
        .route("/v1/events/{id}", get(events::get))
        .route("/v1/events/{id}/redeliver", post(events::redeliver))
        .route(
            "/v1/webhook-endpoints",
            post(webhook_endpoints::create).get(webhook_endpoints::list),
        )
        .route(
            "/v1/webhook-endpoints/{id}",
            get(webhook_endpoints::get)
                .patch(webhook_endpoints::update)
                .delete(webhook_endpoints::delete),
        )
        .route(
            "/v1/webhook-endpoints/{id}/rotate-secret",
            post(webhook_endpoints::rotate_secret),
        )
        .route("/v1/webhook-endpoints/{id}/test", post(webhook_test::send))
        .route(
            "/v1/webhook-endpoints/{id}/deliveries",
            get(deliveries::list),
        )
        .route("/v1/payments", post(payments::create).get(lists::payments))
        .route("/v1/payments/{id}", get(payments::get))
        .route("/v1/payments/{id}/cancel", post(payments::cancel))
        .route("/connect/callback", get(pages::callback))
        .route("/connect/{id}", get(pages::connect))
        .route("/connect/{id}/start", post(pages::start))
        .route("/connect/{id}/cancel", post(pages::cancel))
        .route("/connect/{id}/wait", get(pages::wait))
        .route("/pay/callback", get(pages::pay::callback))
        .route("/pay/{id}", get(pages::pay::page))
        .route("/pay/{id}/start", post(pages::pay::start))
        .route("/pay/{id}/cancel", post(pages::pay::cancel))
        .route(
            "/favicon.ico",
            get(|| async { axum::http::StatusCode::NO_CONTENT }),
        )
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route(OPENAPI_PATH, get(move || api_document(document.clone())))
        .merge(docs)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), bank_deadline))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::moving::middleware,
        ))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(CatchPanicLayer::custom(panicked))
        .layer(middleware::from_fn(limits::headers))
        .layer(middleware::from_fn(request_limits::middleware))
        .layer(middleware::from_fn(observe::middleware))
        .layer(middleware::from_fn(request_id::middleware))
        .layer(middleware::from_fn(security_headers::middleware))
        .with_state(state)
}

/// Where the API's OpenAPI document is served (and where `/docs` reads it).
const OPENAPI_PATH: &str = "/openapi.json";

async fn api_document(document: openapi::Served) -> Response {
    match document.json() {
        Ok(json) => ([(CONTENT_TYPE, "application/json")], json).into_response(),
        Err(err) => ApiError::internal(&err).into_response(),
    }
}

/// The operations endpoints alone (`/healthz`, `/readyz`, `/metrics`), for `kontor worker`:
/// Kubernetes probes it and Prometheus scrapes it like the API, and nothing else is served.
pub fn ops_router(state: ops::OpsState) -> Router {
    observe::prometheus();
    Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::worker_readyz))
        .route("/metrics", get(ops::metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(CatchPanicLayer::custom(panicked))
        .layer(middleware::from_fn(observe::middleware))
        .layer(middleware::from_fn(request_id::middleware))
        .layer(middleware::from_fn(security_headers::middleware))
        .with_state(state)
}

/// Bounds the time every request waits on banks (`ApiSettings::bank_deadline`). Work a request
/// starts in the background (the first sync after linking) is not bounded by it.
async fn bank_deadline(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let limit = state.settings().bank_deadline;
    kontor_service::within_bank_deadline(limit, next.run(request)).await
}

async fn not_found() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        "this route does not support the method",
    )
}

/// A panic in a handler is a bug: answer 500 in the usual envelope and keep serving.
fn panicked(_payload: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("handler panicked");
    ApiError::new(ErrorCode::InternalError, "internal error").into_response()
}
