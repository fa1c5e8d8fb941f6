//! `GET /v1/webhook-endpoints/{id}/deliveries`: the delivery log of an endpoint, each delivery
//! with every attempt's status and latency. Deliveries live next to their events, in every
//! region's cell; the list walks the cells like the event log does.

use std::collections::HashMap;

use axum::Json;
use axum::extract::State;
use kontor_domain::list::DeliveryFilter;
use kontor_domain::webhook::{Attempt, Delivery, DeliveryState};
use kontor_domain::{CellId, DeliveryId, EventId, TenantId, WebhookEndpointId};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::{Scoped, scoped};
use crate::error::{ApiError, ApiResult, ErrorCode, ErrorEnvelope};
use crate::extract::{Listing, PageParams, PathId, parse_id};
use crate::openapi::schemas;
use crate::pagination;
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptResponse {
    /// 1 for the first attempt.
    pub number: u32,
    pub at: String,
    /// The receiver's HTTP status; null when no answer came.
    pub status_code: Option<u16>,
    /// What went wrong: `timeout`, `dns_failed`, `address_not_allowed`, `connection_failed`,
    /// `redirect` (3xx answers are not followed) or `http_status` (any other non-2xx).
    #[schema(value_type = Option<schemas::AttemptErrorWord>)]
    pub error: Option<String>,
    /// From sending the request to the answer's status (or giving up), rounded up.
    pub latency_ms: u64,
}

impl From<Attempt> for AttemptResponse {
    fn from(a: Attempt) -> Self {
        let micros = u64::try_from(a.latency_us).unwrap_or(0);
        Self {
            number: a.number,
            at: a.at.to_rfc3339(),
            status_code: a.status_code,
            error: a.error.map(|e| e.as_str().to_owned()),
            latency_ms: micros.div_ceil(1000),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryResponse {
    #[schema(value_type = schemas::DeliveryIdString)]
    pub id: String,
    #[schema(value_type = schemas::WebhookEndpointIdString)]
    pub endpoint_id: String,
    /// Also the `webhook-id` header of every attempt.
    #[schema(value_type = schemas::EventIdString)]
    pub event_id: String,
    #[schema(value_type = schemas::EventTypeWord)]
    pub event_type: String,
    #[schema(value_type = Option<schemas::UserIdString>)]
    pub user_id: Option<String>,
    #[schema(value_type = schemas::DeliveryStateWord)]
    pub state: String,
    /// Once failed: `retries_exhausted`, `endpoint_disabled` or `endpoint_deleted`.
    #[schema(value_type = Option<schemas::DeliveryFailureWord>)]
    pub failure_reason: Option<String>,
    /// Made by `POST /v1/events/{id}/redeliver`.
    pub redelivery: bool,
    pub next_attempt_at: Option<String>,
    pub delivered_at: Option<String>,
    pub created_at: String,
    /// Every attempt so far, oldest first.
    pub attempts: Vec<AttemptResponse>,
}

impl DeliveryResponse {
    pub(crate) fn new(d: Delivery, attempts: Vec<Attempt>) -> Self {
        Self {
            id: d.id.to_string(),
            endpoint_id: d.endpoint_id.to_string(),
            event_id: d.event_id.to_string(),
            event_type: d.event_type.as_str().to_owned(),
            user_id: d.user_id.map(|u| u.to_string()),
            state: d.state.as_str().to_owned(),
            failure_reason: d.failure.map(|f| f.as_str().to_owned()),
            redelivery: d.redelivery,
            next_attempt_at: d.next_attempt_at.map(|t| t.to_rfc3339()),
            delivered_at: d.delivered_at.map(|t| t.to_rfc3339()),
            created_at: d.created_at.to_rfc3339(),
            attempts: attempts.into_iter().map(Into::into).collect(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryList {
    pub data: Vec<DeliveryResponse>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListDeliveriesQuery {
    /// Only deliveries in this state: `pending`, `succeeded` or `failed`.
    #[param(value_type = Option<schemas::DeliveryStateWord>)]
    pub state: Option<String>,
    /// Only deliveries of this event.
    #[param(value_type = Option<schemas::EventIdString>)]
    pub event_id: Option<String>,
}

/// List an endpoint's deliveries, oldest first, with their attempts.
#[utoipa::path(
    get, path = "/v1/webhook-endpoints/{id}/deliveries", tag = "webhooks", operation_id = "listWebhookDeliveries",
    params(("id" = schemas::WebhookEndpointIdString, Path, description = "A webhook endpoint id, e.g. whe_…"), ListDeliveriesQuery, PageParams),
    security(("bearer" = ["webhooks:manage"])),
    responses(
        (status = 200, description = "A page of deliveries", body = DeliveryList),
        (status = 400, description = "Malformed id, query or cursor", body = ErrorEnvelope),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorEnvelope),
        (status = 403, description = "Token lacks webhooks:manage", body = ErrorEnvelope),
        (status = 404, description = "No such endpoint for this tenant", body = ErrorEnvelope),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    auth: Scoped<scoped::WebhooksManage>,
    PathId(endpoint): PathId<WebhookEndpointId>,
    Listing { page, query }: Listing<ListDeliveriesQuery>,
) -> ApiResult<Json<DeliveryList>> {
    let filter = DeliveryFilter {
        state: query
            .state
            .as_deref()
            .map(|raw| {
                DeliveryState::parse(raw).ok_or_else(|| {
                    ApiError::new(
                        ErrorCode::InvalidQuery,
                        "state must be pending, succeeded or failed",
                    )
                })
            })
            .transpose()?,
        event: query
            .event_id
            .as_deref()
            .map(parse_id::<EventId>)
            .transpose()?,
    };
    // 404 for another tenant's endpoint, before any cell is read.
    state
        .hub()
        .webhook_endpoint(&auth.tenant, &endpoint)
        .await?;
    let cells = state
        .hub()
        .list_cells(&auth.tenant, filter.event.as_ref().map(|e| e.cell()));
    let tenant = &auth.tenant;
    let (filter, endpoint) = (&filter, &endpoint);
    let (deliveries, next_cursor) =
        pagination::across_cells(&cells, page.cursor, page.limit, |cell, after, n| {
            let hub = state.hub();
            async move {
                Ok(hub
                    .deliveries_in(&cell, tenant, endpoint, filter, after.as_ref(), n)
                    .await?)
            }
        })
        .await?;
    let mut attempts = attempts_of(&state, tenant, &deliveries).await?;
    let data = deliveries
        .into_iter()
        .map(|d| {
            let tried = attempts.remove(&d.id).unwrap_or_default();
            DeliveryResponse::new(d, tried)
        })
        .collect();
    Ok(Json(DeliveryList { data, next_cursor }))
}

/// The attempts of a page of deliveries, read from each delivery's cell.
async fn attempts_of(
    state: &AppState,
    tenant: &TenantId,
    deliveries: &[Delivery],
) -> ApiResult<HashMap<DeliveryId, Vec<Attempt>>> {
    // A delivery whose user or tenant moved lives in the route's target: each cell that may
    // hold it is asked, and the first that has its attempts answers for it.
    let mut cells: Vec<(CellId, Vec<DeliveryId>)> = Vec::new();
    for d in deliveries.iter().filter(|d| d.attempts > 0) {
        for cell in state.hub().list_cells(tenant, Some(d.id.cell())) {
            match cells.iter_mut().find(|(c, _)| *c == cell) {
                Some((_, ids)) => ids.push(d.id.clone()),
                None => cells.push((cell, vec![d.id.clone()])),
            }
        }
    }
    let mut out: HashMap<DeliveryId, Vec<Attempt>> = HashMap::new();
    for (cell, ids) in cells {
        let mut found: HashMap<DeliveryId, Vec<Attempt>> = HashMap::new();
        for (id, attempt) in state.hub().delivery_attempts_in(&cell, &ids).await? {
            found.entry(id).or_default().push(attempt);
        }
        for (id, attempts) in found {
            out.entry(id).or_insert(attempts);
        }
    }
    Ok(out)
}
