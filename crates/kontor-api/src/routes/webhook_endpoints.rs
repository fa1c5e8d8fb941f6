//! `/v1/webhook-endpoints`: where a tenant's events are delivered. The signing secret is shown
//! in the responses that create it (creation and rotation) and never again.

use axum::Json;
use axum::extract::State;
use axum::http::header::LOCATION;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use kontor_domain::WebhookEndpointId;
use kontor_domain::time::Timestamp;
use kontor_domain::webhook::WebhookEndpoint;
use kontor_service::webhooks::{CreatedEndpoint, EndpointUpdate, NewEndpointRequest};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use crate::auth::{Scoped, scoped};
use crate::error::{ApiResult, ErrorEnvelope};
use crate::extract::{ApiJson, PathId};
use crate::openapi::schemas;
use crate::state::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhookEndpointRequest {
    /// Where deliveries are POSTed: an https URL whose host resolves to public addresses.
    #[schema(
        example = "https://example.com/webhooks/kontor",
        max_length = 2048,
        pattern = "^https://(?:[A-Za-z0-9-]{1,63}\\.){0,4}[A-Za-z][A-Za-z0-9-]{0,62}(?::[1-9][0-9]{0,3})?(?:/[A-Za-z0-9._~/-]*)?(?:\\?[A-Za-z0-9._~=&-]*)?$"
    )]
    pub url: String,
    /// The event types to deliver, or `["*"]` for all (including types added later).
    #[schema(
        value_type = schemas::EventSelection,
        example = json!(["connection.active", "transactions.updated"])
    )]
    pub events: Vec<String>,
    /// A note for yourself, at most 500 characters.
    #[schema(max_length = 500, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")]
    pub description: Option<String>,
}

/// Only the fields sent change. `description: null` clears the description.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateWebhookEndpointRequest {
    #[schema(value_type = Option<schemas::HttpsUrl>)]
    pub url: Option<String>,
    #[schema(value_type = Option<schemas::EventSelection>)]
    pub events: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 500, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")]
    pub description: Option<Option<String>>,
    /// `enabled` or `disabled`. Enabling an endpoint the hub disabled resumes deliveries of
    /// events recorded from then on; replay missed ones with `POST /v1/events/{id}/redeliver`.
    #[schema(value_type = Option<schemas::EndpointStatusWord>, example = "enabled")]
    pub status: Option<String>,
}

/// Tells a field sent as `null` (`Some(None)`) from one left out (`None`).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

#[derive(Serialize, ToSchema)]
pub struct WebhookEndpointResponse {
    #[schema(value_type = schemas::WebhookEndpointIdString)]
    pub id: String,
    pub url: String,
    pub description: Option<String>,
    #[schema(value_type = schemas::EventSelection)]
    pub events: Vec<String>,
    #[schema(value_type = schemas::EndpointStatusWord)]
    pub status: String,
    /// Why it is disabled: `tenant` (you did) or `failing` (every attempt of a delivery failed
    /// for its whole retry schedule, about three days, and nothing else got through).
    #[schema(value_type = Option<schemas::DisabledReasonWord>)]
    pub disabled_reason: Option<String>,
    pub disabled_at: Option<String>,
    /// After a rotation: until when the previous secret still signs deliveries (each carries
    /// both signatures until then); absent once that has passed.
    pub previous_secret_expires_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// The signing secret (`whsec_…`): only in the responses of creation and rotation. Keep it
    /// secret; it verifies the `webhook-signature` header.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]
    pub secret: Option<String>,
}

/// Never prints the secret.
impl std::fmt::Debug for WebhookEndpointResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookEndpointResponse")
            .field("id", &self.id)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

impl From<WebhookEndpoint> for WebhookEndpointResponse {
    fn from(e: WebhookEndpoint) -> Self {
        Self {
            id: e.id.to_string(),
            url: e.url,
            description: e.description.map(|d| d.as_str().to_owned()),
            events: e.events.names(),
            status: e.status.as_str().to_owned(),
            disabled_reason: e.disabled_reason.map(|r| r.as_str().to_owned()),
            disabled_at: e.disabled_at.map(|t| t.to_rfc3339()),
            previous_secret_expires_at: e
                .previous_secret_expires_at
                .filter(|until| *until > Timestamp::now())
                .map(|t| t.to_rfc3339()),
            created_at: e.created_at.to_rfc3339(),
            updated_at: e.updated_at.to_rfc3339(),
            secret: None,
        }
    }
}

impl From<CreatedEndpoint> for WebhookEndpointResponse {
    fn from(created: CreatedEndpoint) -> Self {
        Self {
            secret: Some(created.secret.reveal().to_owned()),
            ..created.endpoint.into()
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookEndpointList {
    pub data: Vec<WebhookEndpointResponse>,
    /// Always null: a tenant has few endpoints, all on one page.
    pub next_cursor: Option<String>,
}

/// Create a webhook endpoint; the response shows its signing secret, once.
#[utoipa::path(
    post, path = "/v1/webhook-endpoints", tag = "webhooks", operation_id = "createWebhookEndpoint",
    request_body = CreateWebhookEndpointRequest,
    security(("bearer" = ["webhooks:manage"])),
    responses(
        (status = 201, description = "Created, with its secret", body = WebhookEndpointResponse),
        (status = 400, description = "Invalid body, URL or event types; or a URL to a private address", body = ErrorEnvelope),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorEnvelope),
        (status = 403, description = "Token lacks webhooks:manage", body = ErrorEnvelope),
        (status = 409, description = "The tenant has as many endpoints as allowed", body = ErrorEnvelope),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    auth: Scoped<scoped::WebhooksManage>,
    ApiJson(body): ApiJson<CreateWebhookEndpointRequest>,
) -> ApiResult<Response> {
    let created = state
        .hub()
        .create_webhook_endpoint(
            &auth.tenant,
            NewEndpointRequest {
                url: body.url,
                events: body.events,
                description: body.description,
            },
        )
        .await?;
    let location =
        HeaderValue::from_str(&format!("/v1/webhook-endpoints/{}", created.endpoint.id)).ok();
    let mut response = (
        StatusCode::CREATED,
        Json(WebhookEndpointResponse::from(created)),
    )
        .into_response();
    if let Some(location) = location {
        response.headers_mut().insert(LOCATION, location);
    }
    Ok(response)
}

/// List the tenant's webhook endpoints, oldest first.
#[utoipa::path(
    get, path = "/v1/webhook-endpoints", tag = "webhooks", operation_id = "listWebhookEndpoints",
    security(("bearer" = ["webhooks:manage"])),
    responses(
        (status = 200, description = "All the tenant's endpoints", body = WebhookEndpointList),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorEnvelope),
        (status = 403, description = "Token lacks webhooks:manage", body = ErrorEnvelope),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    auth: Scoped<scoped::WebhooksManage>,
) -> ApiResult<Json<WebhookEndpointList>> {
    let endpoints = state.hub().webhook_endpoints(&auth.tenant).await?;
    Ok(Json(WebhookEndpointList {
        data: endpoints.into_iter().map(Into::into).collect(),
        next_cursor: None,
    }))
}

/// Read a webhook endpoint (without its secret).
#[utoipa::path(
    get, path = "/v1/webhook-endpoints/{id}", tag = "webhooks", operation_id = "getWebhookEndpoint",
    params(("id" = schemas::WebhookEndpointIdString, Path, description = "A webhook endpoint id, e.g. whe_…")),
    security(("bearer" = ["webhooks:manage"])),
    responses(
        (status = 200, description = "The endpoint", body = WebhookEndpointResponse),
        (status = 400, description = "Malformed id", body = ErrorEnvelope),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorEnvelope),
        (status = 403, description = "Token lacks webhooks:manage", body = ErrorEnvelope),
        (status = 404, description = "No such endpoint for this tenant", body = ErrorEnvelope),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    auth: Scoped<scoped::WebhooksManage>,
    PathId(id): PathId<WebhookEndpointId>,
) -> ApiResult<Json<WebhookEndpointResponse>> {
    let endpoint = state.hub().webhook_endpoint(&auth.tenant, &id).await?;
    Ok(Json(endpoint.into()))
}

/// Change an endpoint: its URL, events, description, or whether it is enabled.
#[utoipa::path(
    patch, path = "/v1/webhook-endpoints/{id}", tag = "webhooks", operation_id = "updateWebhookEndpoint",
    params(("id" = schemas::WebhookEndpointIdString, Path, description = "A webhook endpoint id, e.g. whe_…")),
    request_body = UpdateWebhookEndpointRequest,
    security(("bearer" = ["webhooks:manage"])),
    responses(
        (status = 200, description = "The changed endpoint", body = WebhookEndpointResponse),
        (status = 400, description = "Invalid body, id, URL, event types or status", body = ErrorEnvelope),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorEnvelope),
        (status = 403, description = "Token lacks webhooks:manage", body = ErrorEnvelope),
        (status = 404, description = "No such endpoint for this tenant", body = ErrorEnvelope),
    )
)]
pub async fn update(
    State(state): State<AppState>,
    auth: Scoped<scoped::WebhooksManage>,
    PathId(id): PathId<WebhookEndpointId>,
    ApiJson(body): ApiJson<UpdateWebhookEndpointRequest>,
) -> ApiResult<Json<WebhookEndpointResponse>> {
    let endpoint = state
        .hub()
        .update_webhook_endpoint(
            &auth.tenant,
            &id,
            EndpointUpdate {
                url: body.url,
                events: body.events,
                description: body.description,
                status: body.status,
            },
        )
        .await?;
    Ok(Json(endpoint.into()))
}

/// Delete an endpoint. Its pending deliveries are given up.
#[utoipa::path(
    delete, path = "/v1/webhook-endpoints/{id}", tag = "webhooks", operation_id = "deleteWebhookEndpoint",
    params(("id" = schemas::WebhookEndpointIdString, Path, description = "A webhook endpoint id, e.g. whe_…")),
    security(("bearer" = ["webhooks:manage"])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "Malformed id", body = ErrorEnvelope),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorEnvelope),
        (status = 403, description = "Token lacks webhooks:manage", body = ErrorEnvelope),
        (status = 404, description = "No such endpoint for this tenant", body = ErrorEnvelope),
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    auth: Scoped<scoped::WebhooksManage>,
    PathId(id): PathId<WebhookEndpointId>,
) -> ApiResult<StatusCode> {
    state
        .hub()
        .delete_webhook_endpoint(&auth.tenant, &id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Rotate the signing secret. The new secret is in the response; the old one keeps signing,
/// next to it (two signatures per delivery), for 24 hours, so receivers can switch over.
#[utoipa::path(
    post, path = "/v1/webhook-endpoints/{id}/rotate-secret", tag = "webhooks", operation_id = "rotateWebhookEndpointSecret",
    params(("id" = schemas::WebhookEndpointIdString, Path, description = "A webhook endpoint id, e.g. whe_…")),
    security(("bearer" = ["webhooks:manage"])),
    responses(
        (status = 200, description = "The endpoint with its new secret", body = WebhookEndpointResponse),
        (status = 400, description = "Malformed id", body = ErrorEnvelope),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorEnvelope),
        (status = 403, description = "Token lacks webhooks:manage", body = ErrorEnvelope),
        (status = 404, description = "No such endpoint for this tenant", body = ErrorEnvelope),
    )
)]
pub async fn rotate_secret(
    State(state): State<AppState>,
    auth: Scoped<scoped::WebhooksManage>,
    PathId(id): PathId<WebhookEndpointId>,
) -> ApiResult<Json<WebhookEndpointResponse>> {
    let rotated = state.hub().rotate_webhook_secret(&auth.tenant, &id).await?;
    Ok(Json(rotated.into()))
}
