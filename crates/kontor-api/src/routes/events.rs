//! `/v1/events`: the event log, across every region's cell (`GET /v1/events`, filtered by type,
//! time and user; `GET /v1/events/{id}`), and replaying an event to webhook endpoints
//! (`POST /v1/events/{id}/redeliver`).

use axum::Json;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use kontor_domain::event::{Event, EventType};
use kontor_domain::list::EventFilter;
use kontor_domain::time::Timestamp;
use kontor_domain::{EventId, UserId, WebhookEndpointId};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::deliveries::DeliveryResponse;
use crate::auth::{Scoped, scoped};
use crate::error::{ApiError, ApiResult, ErrorCode, ErrorEnvelope};
use crate::extract::{
    Listing, PageParams, PathId, body_bytes, has_content_type, parse_id, parse_json,
};
use crate::openapi::schemas;
use crate::pagination;
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct EventResponse {
    /// Also the `webhook-id` of its deliveries.
    #[schema(value_type = schemas::EventIdString)]
    pub id: String,
    #[serde(rename = "type")]
    #[schema(value_type = schemas::EventTypeWord)]
    pub event_type: String,
    #[schema(value_type = Option<schemas::UserIdString>)]
    pub user_id: Option<String>,
    /// Ids and counts; never personal data.
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    pub created_at: String,
}

impl From<Event> for EventResponse {
    fn from(event: Event) -> Self {
        Self {
            id: event.id.to_string(),
            event_type: event.event_type.as_str().to_owned(),
            user_id: event.user_id.map(|u| u.to_string()),
            data: event.data,
            created_at: event.created_at.to_rfc3339(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventList {
    pub data: Vec<EventResponse>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListEventsQuery {
    /// Only events of this type, e.g. `connection.active`.
    #[serde(rename = "type")]
    #[param(value_type = Option<schemas::EventTypeWord>)]
    pub event_type: Option<String>,
    /// Only events about this user.
    #[param(value_type = Option<schemas::UserIdString>)]
    pub user_id: Option<String>,
    /// Only events at or after this instant (RFC 3339).
    #[param(format = DateTime)]
    pub since: Option<String>,
    /// Only events before this instant (RFC 3339).
    #[param(format = DateTime)]
    pub until: Option<String>,
}

/// An optional RFC 3339 instant of the query named `name`; malformed is `code`.
pub(crate) fn instant(
    code: ErrorCode,
    name: &str,
    raw: Option<&str>,
) -> ApiResult<Option<Timestamp>> {
    raw.map(|value| {
        Timestamp::parse_rfc3339(value)
            .map_err(|_| ApiError::new(code, format!("{name} must be an RFC 3339 instant")))
    })
    .transpose()
}

/// List events, oldest first.
#[utoipa::path(
    get, path = "/v1/events", tag = "events", operation_id = "listEvents",
    params(ListEventsQuery, PageParams),
    security(("bearer" = ["events:read"])),
    responses(
        (status = 200, description = "A page of events", body = EventList),
        (status = 400, description = "Invalid query or cursor", body = ErrorEnvelope),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorEnvelope),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    auth: Scoped<scoped::EventsRead>,
    Listing { page, query }: Listing<ListEventsQuery>,
) -> ApiResult<Json<EventList>> {
    let event_type = query
        .event_type
        .as_deref()
        .map(|raw| {
            EventType::parse(raw)
                .ok_or_else(|| ApiError::new(ErrorCode::InvalidQuery, "unknown event type"))
        })
        .transpose()?;
    let user = query
        .user_id
        .as_deref()
        .map(parse_id::<UserId>)
        .transpose()?;
    let filter = EventFilter {
        event_type,
        user: user.clone(),
        since: instant(ErrorCode::InvalidQuery, "since", query.since.as_deref())?,
        until: instant(ErrorCode::InvalidQuery, "until", query.until.as_deref())?,
    };
    // A user's events live in their region; the tenant's whole log spans every cell.
    let cells = state
        .hub()
        .list_cells(&auth.tenant, user.as_ref().map(|u| u.cell()));
    let tenant = &auth.tenant;
    let filter = &filter;
    let (events, next_cursor) =
        pagination::across_cells(&cells, page.cursor, page.limit, |cell, after, n| {
            let hub = state.hub();
            async move {
                Ok(hub
                    .events_in(&cell, tenant, filter, after.as_ref(), n)
                    .await?)
            }
        })
        .await?;
    Ok(Json(EventList {
        data: events.into_iter().map(EventResponse::from).collect(),
        next_cursor,
    }))
}

/// Read one event.
#[utoipa::path(
    get, path = "/v1/events/{id}", tag = "events", operation_id = "getEvent",
    params(("id" = schemas::EventIdString, Path, description = "An event id, e.g. evt_uk_…")),
    security(("bearer" = ["events:read"])),
    responses(
        (status = 200, description = "The event", body = EventResponse),
        (status = 400, description = "Malformed id", body = ErrorEnvelope),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorEnvelope),
        (status = 403, description = "Token lacks events:read", body = ErrorEnvelope),
        (status = 404, description = "No such event for this tenant", body = ErrorEnvelope),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    auth: Scoped<scoped::EventsRead>,
    PathId(id): PathId<EventId>,
) -> ApiResult<Json<EventResponse>> {
    Ok(Json(state.hub().event(&auth.tenant, &id).await?.into()))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RedeliverRequest {
    /// Deliver to this endpoint only (whichever events it selects); by default to every enabled
    /// endpoint that selects the event's type.
    #[schema(value_type = Option<schemas::WebhookEndpointIdString>)]
    pub endpoint_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RedeliveryList {
    /// The new deliveries, one per endpoint.
    pub data: Vec<DeliveryResponse>,
}

/// Deliver an event again. Each new delivery carries the event id as its `webhook-id`, like the
/// first, and queues behind what is pending for the same user at its endpoint. The body is
/// optional.
#[utoipa::path(
    post, path = "/v1/events/{id}/redeliver", tag = "events", operation_id = "redeliverEvent",
    params(("id" = schemas::EventIdString, Path, description = "An event id, e.g. evt_uk_…")),
    request_body(content = Option<RedeliverRequest>, description = "Optional: the endpoint to deliver to"),
    security(("bearer" = ["webhooks:manage"])),
    responses(
        (status = 202, description = "Queued", body = RedeliveryList),
        (status = 400, description = "Malformed id or body", body = ErrorEnvelope),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorEnvelope),
        (status = 403, description = "Token lacks webhooks:manage", body = ErrorEnvelope),
        (status = 404, description = "No such event or endpoint for this tenant", body = ErrorEnvelope),
        (status = 409, description = "The endpoint is disabled, or no enabled endpoint selects the event", body = ErrorEnvelope),
    )
)]
pub async fn redeliver(
    State(state): State<AppState>,
    auth: Scoped<scoped::WebhooksManage>,
    PathId(id): PathId<EventId>,
    request: Request,
) -> ApiResult<(StatusCode, Json<RedeliveryList>)> {
    let has_type = request.headers().contains_key(CONTENT_TYPE);
    let json = has_content_type(request.headers(), "application/json");
    let bytes = body_bytes(request).await?;
    // The body is optional: none, `null` and an object are what the document declares.
    let body: RedeliverRequest = if bytes.iter().all(u8::is_ascii_whitespace) {
        RedeliverRequest::default()
    } else if has_type && !json {
        return Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "send the body as Content-Type: application/json",
        ));
    } else {
        parse_json::<Option<RedeliverRequest>>(&bytes)?.unwrap_or_default()
    };
    let endpoint = body
        .endpoint_id
        .as_deref()
        .map(parse_id::<WebhookEndpointId>)
        .transpose()?;
    let deliveries = state
        .hub()
        .redeliver(&auth.tenant, &id, endpoint.as_ref())
        .await?;
    let data = deliveries
        .into_iter()
        .map(|d| DeliveryResponse::new(d, Vec::new()))
        .collect();
    Ok((StatusCode::ACCEPTED, Json(RedeliveryList { data })))
}
