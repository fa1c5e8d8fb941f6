//! `GET /v1/event-types`: the event catalogue — every type an endpoint may select, what it
//! means and the schema of its `data` in the OpenAPI document (`webhooks` describes each
//! delivery whole), and the test event.

use axum::Json;
use kontor_domain::event::payload::WebhookTest;
use kontor_domain::event::{EventType, WEBHOOK_TEST};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::{Scoped, scoped};
use crate::error::{ApiResult, ErrorEnvelope};

/// Where the document keeps the schemas of events' `data`.
const SCHEMAS: &str = "/openapi.json#/components/schemas/";

#[derive(Debug, Serialize, ToSchema)]
pub struct EventTypeResponse {
    /// The type, as in an event's `type` and an endpoint's `events`.
    #[schema(example = "connection.active")]
    pub name: &'static str,
    pub description: &'static str,
    /// The schema of the event's `data`: a JSON reference into `/openapi.json`.
    #[schema(example = "/openapi.json#/components/schemas/ConnectionActivated")]
    pub data_schema: String,
    /// Whether an endpoint can select it; false only for `webhook.test`, which is sent on
    /// request to one endpoint and never recorded.
    pub selectable: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventTypeList {
    pub data: Vec<EventTypeResponse>,
    /// Always null: the catalogue fits one page.
    pub next_cursor: Option<String>,
}

/// The catalogue: each event type, its meaning and its schema.
pub fn catalogue() -> Vec<EventTypeResponse> {
    let mut all: Vec<_> = EventType::ALL
        .iter()
        .map(|t| EventTypeResponse {
            name: t.as_str(),
            description: t.description(),
            data_schema: format!("{SCHEMAS}{}", t.payload_name()),
            selectable: true,
        })
        .collect();
    all.push(EventTypeResponse {
        name: WEBHOOK_TEST,
        description: "Sent by POST /v1/webhook-endpoints/{id}/test to that endpoint alone, signed like a delivery; never recorded.",
        data_schema: format!("{SCHEMAS}{}", WebhookTest::name()),
        selectable: false,
    });
    all
}

/// List the event types.
#[utoipa::path(
    get, path = "/v1/event-types", tag = "events", operation_id = "listEventTypes",
    security(("bearer" = ["events:read"])),
    responses(
        (status = 200, description = "Every event type", body = EventTypeList),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorEnvelope),
        (status = 403, description = "Token lacks events:read", body = ErrorEnvelope),
    )
)]
pub async fn list(_auth: Scoped<scoped::EventsRead>) -> ApiResult<Json<EventTypeList>> {
    Ok(Json(EventTypeList {
        data: catalogue(),
        next_cursor: None,
    }))
}
