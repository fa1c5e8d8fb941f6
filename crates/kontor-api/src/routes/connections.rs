//! `/v1/connections`: start linking a user's bank account, follow the connection's state, revoke
//! it, sync it now, and (UK) reconfirm it.

use std::net::IpAddr;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use kontor_domain::bank::BankId;
use kontor_domain::connection::{Access, Connection, Language};
use kontor_domain::{ConnectionId, UserId};
use kontor_service::{LinkRequest, SyncReport, SyncTrigger};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::{Scoped, scoped};
use crate::error::{ApiError, ApiResult, ErrorCode, ErrorEnvelope};
use crate::extract::{ApiJson, PathId, parse_id};
use crate::openapi::schemas;
use crate::state::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateConnectionRequest {
    #[schema(value_type = schemas::UserIdString, example = "usr_de_01h8x3k4q9c2m7v5t6r8w0y1z2")]
    pub user_id: String,
    /// The bank to link; when absent, the user picks one on the connect page.
    #[schema(value_type = Option<schemas::BankIdString>)]
    pub bank_id: Option<String>,
    /// Where the user is sent back to, with `connection_id`, `status` and (on failure)
    /// `reason` added to the query.
    #[schema(value_type = schemas::HttpsUrl)]
    pub redirect_uri: String,
    /// What to share; default all of `accounts`, `balances`, `transactions`.
    #[schema(value_type = Option<Vec<schemas::AccessWord>>, min_items = 1)]
    pub access: Option<Vec<String>>,
    /// The connect page's language, `en` or `de`; default from the browser.
    #[schema(value_type = Option<schemas::LanguageWord>)]
    pub language: Option<String>,
    /// The user's login name at the bank, from your own KYC (1-100 characters). Binds the
    /// connection to it: approval in the banking app (decoupled SCA) is requested for this
    /// login only, and the connect page does not ask the user for it. Never shown back.
    #[schema(example = "alice")]
    pub psu_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionResponse {
    #[schema(value_type = schemas::ConnectionIdString)]
    pub id: String,
    #[schema(value_type = schemas::UserIdString)]
    pub user_id: String,
    #[schema(value_type = Option<schemas::BankIdString>)]
    pub bank_id: Option<String>,
    #[schema(value_type = schemas::ConnectionStatusWord)]
    pub status: String,
    /// Why a connection failed or ended early: `user_cancelled` (at the bank or on the
    /// connect page; banks do not tell a cancel from failed authentication), `sca_failed`,
    /// `bank_rejected`, `bank_unavailable`, `link_expired`, `consent_invalid`, or, for an
    /// expired one, `superseded` (the bank ended the consent when the same person authorised a
    /// newer one for the same third party).
    #[schema(value_type = Option<schemas::FailureReasonWord>)]
    pub failure_reason: Option<String>,
    #[schema(value_type = Vec<schemas::AccessWord>)]
    pub access: Vec<String>,
    /// When access ends (RFC 3339): 180 days after authorisation under EU rules; 90 days in the
    /// UK unless reconfirmed.
    pub valid_until: Option<String>,
    pub created_at: String,
    pub authorised_at: Option<String>,
    /// The last successful sync (also `sync.last_success_at`).
    pub last_synced_at: Option<String>,
    /// The next sync without the user (also `sync.next_attempt_at`).
    pub next_sync_at: Option<String>,
    pub sync: SyncStateResponse,
    /// The accounts read under this connection.
    #[schema(value_type = Vec<schemas::AccountIdString>)]
    pub account_ids: Vec<String>,
    /// Only in the response that created the connection: where to send the user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connect_url: Option<String>,
}

/// How syncing goes: whether the last sync worked, what failed, and when the hub tries next.
#[derive(Debug, Serialize, ToSchema)]
pub struct SyncStateResponse {
    /// The last successful sync (RFC 3339); null before the first.
    pub last_success_at: Option<String>,
    /// Syncs that failed in a row; 0 once one succeeds.
    #[schema(example = 0)]
    pub consecutive_failures: u32,
    /// How the last failed sync ended; kept after a success, so compare its `at` with
    /// `last_success_at`. Null if no sync ever failed.
    pub last_error: Option<SyncErrorResponse>,
    /// When the hub syncs next without the user, as it will really happen: the next of the
    /// day's slots, a retry after a failure, or tomorrow when today's unattended reads are used
    /// up. Null when the connection is not active.
    pub next_attempt_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SyncErrorResponse {
    /// `bank_unavailable`, `bank_rate_limited`, `access_exceeded`, `bank_rejected` or
    /// `bank_protocol_error` (an ended consent ends the connection instead).
    #[schema(example = "bank_unavailable")]
    pub code: String,
    #[schema(example = "bank unavailable: the bank answered 503")]
    pub message: String,
    /// When it failed (RFC 3339).
    pub at: String,
}

impl ConnectionResponse {
    pub(crate) fn from_connection(
        c: Connection,
        account_ids: Vec<String>,
        connect_url: Option<String>,
    ) -> Self {
        Self {
            id: c.id.to_string(),
            user_id: c.user_id.to_string(),
            bank_id: c.bank_id.map(|b| b.to_string()),
            status: c.status.as_str().to_owned(),
            failure_reason: c.failure_reason.map(|r| r.as_str().to_owned()),
            access: c.access.to_words().split(' ').map(str::to_owned).collect(),
            valid_until: c.valid_until.map(|t| t.to_rfc3339()),
            created_at: c.created_at.to_rfc3339(),
            authorised_at: c.authorised_at.map(|t| t.to_rfc3339()),
            last_synced_at: c.last_synced_at.map(|t| t.to_rfc3339()),
            next_sync_at: c.next_sync_at.map(|t| t.to_rfc3339()),
            sync: SyncStateResponse {
                last_success_at: c.last_synced_at.map(|t| t.to_rfc3339()),
                consecutive_failures: c.sync_failures,
                last_error: c.last_sync_error.map(|e| SyncErrorResponse {
                    code: e.code,
                    message: e.message,
                    at: e.at.to_rfc3339(),
                }),
                next_attempt_at: c.next_sync_at.map(|t| t.to_rfc3339()),
            },
            account_ids,
            connect_url,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionList {
    pub data: Vec<ConnectionResponse>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// The user's IP address: a refresh happens with the user present (in your app), which the
    /// bank is told so that it does not count against the consent's daily allowance.
    #[schema(value_type = schemas::IpAddress, example = "203.0.113.7")]
    pub psu_ip_address: String,
}

async fn respond(state: &AppState, connection: Connection) -> ApiResult<ConnectionResponse> {
    let accounts = state.hub().connection_account_ids(&connection.id).await?;
    let ids = accounts.iter().map(ToString::to_string).collect();
    Ok(ConnectionResponse::from_connection(connection, ids, None))
}

/// Start linking a user's bank account.
#[utoipa::path(
    post, path = "/v1/connections", tag = "connections", operation_id = "createConnection",
    request_body = CreateConnectionRequest,
    security(("bearer" = ["connections:write"])),
    responses(
        (status = 201, description = "Pending; send the user to connect_url", body = ConnectionResponse),
        (status = 400, description = "Invalid body, bank, redirect_uri, access, language or psu_id", body = ErrorEnvelope),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorEnvelope),
        (status = 403, description = "Token lacks connections:write", body = ErrorEnvelope),
        (status = 404, description = "No such user", body = ErrorEnvelope),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    auth: Scoped<scoped::ConnectionsWrite>,
    ApiJson(body): ApiJson<CreateConnectionRequest>,
) -> ApiResult<Response> {
    let user_id: UserId = parse_id(&body.user_id)?;
    let bank_id = body
        .bank_id
        .as_deref()
        .map(BankId::parse)
        .transpose()
        .map_err(|err| ApiError::new(ErrorCode::UnknownBank, err.to_string()))?;
    let access = match &body.access {
        None => Access::ALL,
        Some(words) => Access::from_words(words.iter().map(String::as_str)).map_err(|bad| {
            ApiError::new(ErrorCode::InvalidAccess, format!("unknown access {bad}"))
        })?,
    };
    let language = body
        .language
        .as_deref()
        .map(|raw| {
            Language::parse(raw).ok_or_else(|| {
                ApiError::new(ErrorCode::InvalidLanguage, "language must be en or de")
            })
        })
        .transpose()?;
    let request = LinkRequest {
        user_id,
        bank_id,
        redirect_uri: body.redirect_uri,
        access,
        language,
        psu_id: body.psu_id,
    };
    let created = state.hub().create_link(&auth.tenant, request).await?;
    let body = ConnectionResponse::from_connection(
        created.connection,
        Vec::new(),
        Some(created.connect_url.to_string()),
    );
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// Read a connection: status, bank, validity, accounts.
#[utoipa::path(
    get, path = "/v1/connections/{id}", tag = "connections", operation_id = "getConnection",
    params(("id" = schemas::ConnectionIdString, Path, description = "A connection id, e.g. con_de_…")),
    security(("bearer" = ["connections:read"])),
    responses(
        (status = 200, description = "The connection", body = ConnectionResponse),
        (status = 400, description = "Malformed id", body = ErrorEnvelope),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorEnvelope),
        (status = 404, description = "No such connection for this tenant", body = ErrorEnvelope),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    auth: Scoped<scoped::ConnectionsRead>,
    PathId(id): PathId<ConnectionId>,
) -> ApiResult<Json<ConnectionResponse>> {
    let connection = state.hub().connection(&auth.tenant, &id).await?;
    Ok(Json(respond(&state, connection).await?))
}

/// Revoke a connection: the consent is withdrawn at the bank, then here.
#[utoipa::path(
    delete, path = "/v1/connections/{id}", tag = "connections", operation_id = "revokeConnection",
    params(("id" = schemas::ConnectionIdString, Path, description = "A connection id")),
    security(("bearer" = ["connections:write"])),
    responses(
        (status = 200, description = "Revoked (or already ended)", body = ConnectionResponse),
        (status = 404, description = "No such connection for this tenant", body = ErrorEnvelope),
        (status = 503, description = "The bank could not be reached; nothing changed", body = ErrorEnvelope),
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    auth: Scoped<scoped::ConnectionsWrite>,
    PathId(id): PathId<ConnectionId>,
) -> ApiResult<Json<ConnectionResponse>> {
    let connection = state.hub().revoke(&auth.tenant, &id).await?;
    Ok(Json(respond(&state, connection).await?))
}

/// Sync a connection now, with the user present.
#[utoipa::path(
    post, path = "/v1/connections/{id}/refresh", tag = "connections", operation_id = "refreshConnection",
    params(("id" = schemas::ConnectionIdString, Path, description = "A connection id")),
    request_body = RefreshRequest,
    security(("bearer" = ["connections:write"])),
    responses(
        (status = 200, description = "What the sync changed, per account", body = SyncReportResponse),
        (status = 404, description = "No such connection for this tenant", body = ErrorEnvelope),
        (status = 409, description = "Not active, already syncing, or the consent ended", body = ErrorEnvelope),
        (status = 429, description = "The bank rate-limits (`bank_rate_limited`, with the bank's Retry-After)", body = ErrorEnvelope),
        (status = 503, description = "The bank did not answer within `server.bank_deadline_ms` (`bank_unavailable`, with Retry-After)", body = ErrorEnvelope),
    )
)]
pub async fn refresh(
    State(state): State<AppState>,
    auth: Scoped<scoped::ConnectionsWrite>,
    PathId(id): PathId<ConnectionId>,
    ApiJson(body): ApiJson<RefreshRequest>,
) -> ApiResult<Json<SyncReportResponse>> {
    let ip: IpAddr = body.psu_ip_address.parse().map_err(|_| {
        ApiError::new(
            ErrorCode::InvalidIpAddress,
            "psu_ip_address is not an IP address",
        )
    })?;
    state.hub().connection(&auth.tenant, &id).await?;
    let report = state.hub().sync(&id, SyncTrigger::UserPresent(ip)).await?;
    Ok(Json(SyncReportResponse::from(report)))
}

/// Record that the user reconfirmed access (UK Open Banking, every 90 days).
#[utoipa::path(
    post, path = "/v1/connections/{id}/reconfirm", tag = "connections", operation_id = "reconfirmConnection",
    params(("id" = schemas::ConnectionIdString, Path, description = "A connection id")),
    security(("bearer" = ["connections:write"])),
    responses(
        (status = 200, description = "Valid for another 90 days", body = ConnectionResponse),
        (status = 404, description = "No such connection for this tenant", body = ErrorEnvelope),
        (status = 409, description = "Not active, or not a UK Open Banking connection", body = ErrorEnvelope),
    )
)]
pub async fn reconfirm(
    State(state): State<AppState>,
    auth: Scoped<scoped::ConnectionsWrite>,
    PathId(id): PathId<ConnectionId>,
) -> ApiResult<Json<ConnectionResponse>> {
    let connection = state.hub().reconfirm(&auth.tenant, &id).await?;
    Ok(Json(respond(&state, connection).await?))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SyncReportResponse {
    pub connection_id: String,
    pub initial: bool,
    pub accounts: Vec<AccountChangesResponse>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccountChangesResponse {
    pub account_id: String,
    pub added: usize,
    pub updated: usize,
    /// Pending transactions that booked (also counted in `updated`).
    pub booked: usize,
    pub removed: usize,
}

impl From<SyncReport> for SyncReportResponse {
    fn from(report: SyncReport) -> Self {
        Self {
            connection_id: report.connection_id,
            initial: report.initial,
            accounts: report
                .accounts
                .into_iter()
                .map(|a| AccountChangesResponse {
                    account_id: a.account_id,
                    added: a.added,
                    updated: a.updated,
                    booked: a.booked,
                    removed: a.removed,
                })
                .collect(),
        }
    }
}
