//! `POST /v1/webhook-endpoints/{id}/test`: a signed `webhook.test` sent to one endpoint now, and
//! what its receiver answered. Nothing is recorded and no other endpoint hears of it.

use axum::Json;
use axum::extract::{Request, State};
use kontor_domain::WebhookEndpointId;
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::{Scoped, scoped};
use crate::error::{ApiResult, ErrorEnvelope};
use crate::extract::PathId;
use crate::openapi::schemas;
use crate::state::AppState;

/// What the receiver made of the test event.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookTestResponse {
    /// The `webhook-id` the test event was sent with; it names no recorded event.
    #[schema(value_type = schemas::EventIdString)]
    pub event_id: String,
    #[serde(rename = "type")]
    #[schema(value_type = schemas::TestEventTypeWord)]
    pub event_type: &'static str,
    pub sent_at: String,
    /// Whether the receiver answered 2xx (what a delivery counts as delivered).
    pub delivered: bool,
    /// The receiver's status; null when no answer came.
    pub status_code: Option<u16>,
    /// What went wrong; null for a 2xx.
    #[schema(value_type = Option<schemas::AttemptErrorWord>)]
    pub error: Option<&'static str>,
    /// From sending the request to having the answer's status (or giving up).
    pub latency_ms: u64,
    /// The start of the answer's body (at most 1024 bytes, as UTF-8 with invalid bytes
    /// replaced); null when no answer came.
    pub body_excerpt: Option<String>,
    /// Whether the body was longer than the excerpt.
    pub body_truncated: bool,
}

/// Send a test event. A `webhook.test` event is signed with the endpoint's secret(s) exactly
/// like a delivery and sent to this endpoint alone, now; the answer reports what the receiver
/// said. Nothing is recorded: no event, no delivery. Disabled endpoints are tested too. Limited
/// per tenant (`rate_limits.webhook_tests_per_tenant`); the request lasts at most the webhook
/// timeout.
#[utoipa::path(
    post, path = "/v1/webhook-endpoints/{id}/test", tag = "webhooks", operation_id = "testWebhookEndpoint",
    params(("id" = schemas::WebhookEndpointIdString, Path, description = "A webhook endpoint id, e.g. whe_…")),
    security(("bearer" = ["webhooks:manage"])),
    responses(
        (status = 200, description = "Sent; what the receiver answered (which may be an error)", body = WebhookTestResponse),
        (status = 400, description = "Malformed id", body = ErrorEnvelope),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorEnvelope),
        (status = 403, description = "Token lacks webhooks:manage", body = ErrorEnvelope),
        (status = 404, description = "No such endpoint for this tenant", body = ErrorEnvelope),
        (status = 429, description = "Too many test events; retry after Retry-After", body = ErrorEnvelope),
    )
)]
pub async fn send(
    State(state): State<AppState>,
    auth: Scoped<scoped::WebhooksManage>,
    PathId(id): PathId<WebhookEndpointId>,
    request: Request,
) -> ApiResult<Json<WebhookTestResponse>> {
    state
        .limits()
        .webhook_test(&auth.tenant, request.extensions())?;
    let report = state.hub().test_webhook_endpoint(&auth.tenant, &id).await?;
    Ok(Json(WebhookTestResponse {
        event_id: report.event_id.to_string(),
        event_type: kontor_domain::event::WEBHOOK_TEST,
        sent_at: report.sent_at.to_rfc3339(),
        delivered: report.delivered,
        status_code: report.status_code,
        error: report.error.map(|e| e.as_str()),
        latency_ms: u64::try_from(report.latency.as_millis()).unwrap_or(u64::MAX),
        body_excerpt: report.body_excerpt,
        body_truncated: report.body_truncated,
    }))
}
