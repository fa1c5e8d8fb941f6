//! `GET /v1/connections` and `GET /v1/payments`: one user's, or the whole tenant's across every
//! region, filtered by status, bank and creation time. The service reads every cell and merges
//! the pages in `(created_at, id)` order; the cursor is the position in that order.

use std::str::FromStr;

use axum::Json;
use axum::extract::State;
use kontor_domain::UserId;
use kontor_domain::bank::BankId;
use kontor_domain::connection::ConnectionStatus;
use kontor_domain::list::ListFilter;
use kontor_domain::payment::PaymentStatus;
use kontor_domain::time::Timestamp;
use serde::Deserialize;
use utoipa::IntoParams;

use super::connections::{ConnectionList, ConnectionResponse};
use super::payments::PaymentList;
use crate::auth::{Scoped, scoped};
use crate::error::{ApiError, ApiResult, ErrorCode, ErrorEnvelope};
use crate::extract::{Listing, PageParams, parse_id};
use crate::openapi::schemas;
use crate::pagination;
use crate::state::AppState;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListConnectionsQuery {
    /// Only this user's connections; without it, the whole tenant's, from every region.
    #[param(value_type = Option<schemas::UserIdString>)]
    pub user_id: Option<String>,
    /// Only connections in this status.
    #[param(value_type = Option<schemas::ConnectionStatusWord>)]
    pub status: Option<String>,
    /// Only connections at this bank.
    #[param(value_type = Option<schemas::BankIdString>)]
    pub bank_id: Option<String>,
    /// Only connections created at or after this instant (RFC 3339).
    #[param(format = DateTime)]
    pub created_after: Option<String>,
    /// Only connections created before this instant (RFC 3339).
    #[param(format = DateTime)]
    pub created_before: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListPaymentsQuery {
    /// Only this user's payments; without it, the whole tenant's, from every region.
    #[param(value_type = Option<schemas::UserIdString>)]
    pub user_id: Option<String>,
    /// Only payments in this status.
    #[param(value_type = Option<schemas::PaymentStatusWord>)]
    pub status: Option<String>,
    /// Only payments at this bank.
    #[param(value_type = Option<schemas::BankIdString>)]
    pub bank_id: Option<String>,
    /// Only payments created at or after this instant (RFC 3339).
    #[param(format = DateTime)]
    pub created_after: Option<String>,
    /// Only payments created before this instant (RFC 3339).
    #[param(format = DateTime)]
    pub created_before: Option<String>,
}

fn instant(name: &str, raw: Option<&str>) -> ApiResult<Option<Timestamp>> {
    super::events::instant(ErrorCode::InvalidTimeRange, name, raw)
}

/// The filter the query asks for, each part checked: a malformed user id, a status that is not
/// one of the record's, a bank not in the directory or an empty time range is refused.
fn filter<S: FromStr>(
    state: &AppState,
    user_id: Option<&str>,
    status: Option<&str>,
    bank_id: Option<&str>,
    created_after: Option<&str>,
    created_before: Option<&str>,
) -> ApiResult<ListFilter<S>> {
    let user = user_id.map(parse_id::<UserId>).transpose()?;
    let status = status
        .map(|raw| {
            raw.parse::<S>().map_err(|_| {
                ApiError::new(
                    ErrorCode::InvalidStatus,
                    "status is not a status of this list",
                )
            })
        })
        .transpose()?;
    let bank = bank_id
        .map(|raw| {
            BankId::parse(raw)
                .ok()
                .filter(|bank| state.hub().directory().get(bank).is_some())
                .ok_or_else(|| ApiError::new(ErrorCode::UnknownBank, "no such bank"))
        })
        .transpose()?;
    let created_after = instant("created_after", created_after)?;
    let created_before = instant("created_before", created_before)?;
    if let (Some(after), Some(before)) = (created_after, created_before)
        && after >= before
    {
        return Err(ApiError::new(
            ErrorCode::InvalidTimeRange,
            "created_after must be before created_before",
        ));
    }
    Ok(ListFilter {
        user,
        status,
        bank,
        created_after,
        created_before,
    })
}

/// List connections: one user's, or the whole tenant's.
#[utoipa::path(
    get, path = "/v1/connections", tag = "connections", operation_id = "listConnections",
    params(ListConnectionsQuery, PageParams),
    security(("bearer" = ["connections:read"])),
    responses(
        (status = 200, description = "A page of connections, oldest first", body = ConnectionList),
        (status = 400, description = "Invalid filter, query or cursor", body = ErrorEnvelope),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorEnvelope),
    )
)]
pub async fn connections(
    State(state): State<AppState>,
    auth: Scoped<scoped::ConnectionsRead>,
    Listing { page, query }: Listing<ListConnectionsQuery>,
) -> ApiResult<Json<ConnectionList>> {
    let filter = filter::<ConnectionStatus>(
        &state,
        query.user_id.as_deref(),
        query.status.as_deref(),
        query.bank_id.as_deref(),
        query.created_after.as_deref(),
        query.created_before.as_deref(),
    )?;
    // The position the cursor names, in whichever region: the order is the same in every cell.
    let after = page.cursor.and_then(|cursor| cursor.after);
    let page = state
        .hub()
        .list_connections(&auth.tenant, &filter, after.as_ref(), page.limit)
        .await?;
    let next_cursor =
        pagination::next_after(page.items.last().map(|c| c.connection.id.cell()), page.next);
    let data = page
        .items
        .into_iter()
        .map(|listed| {
            let ids = listed.account_ids.iter().map(|a| a.to_string()).collect();
            ConnectionResponse::from_connection(listed.connection, ids, None)
        })
        .collect();
    Ok(Json(ConnectionList { data, next_cursor }))
}

/// List payments: one user's, or the whole tenant's.
#[utoipa::path(
    get, path = "/v1/payments", tag = "payments", operation_id = "listPayments",
    params(ListPaymentsQuery, PageParams),
    security(("bearer" = ["payments:read"])),
    responses(
        (status = 200, description = "A page of payments, oldest first", body = PaymentList),
        (status = 400, description = "Invalid filter, query or cursor", body = ErrorEnvelope),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorEnvelope),
    )
)]
pub async fn payments(
    State(state): State<AppState>,
    auth: Scoped<scoped::PaymentsRead>,
    Listing { page, query }: Listing<ListPaymentsQuery>,
) -> ApiResult<Json<PaymentList>> {
    let filter = filter::<PaymentStatus>(
        &state,
        query.user_id.as_deref(),
        query.status.as_deref(),
        query.bank_id.as_deref(),
        query.created_after.as_deref(),
        query.created_before.as_deref(),
    )?;
    // The position the cursor names, in whichever region: the order is the same in every cell.
    let after = page.cursor.and_then(|cursor| cursor.after);
    let page = state
        .hub()
        .list_payments(&auth.tenant, &filter, after.as_ref(), page.limit)
        .await?;
    let next_cursor =
        pagination::next_after(page.items.last().map(|p| p.payment.id.cell()), page.next);
    Ok(Json(PaymentList {
        data: page.items.into_iter().map(Into::into).collect(),
        next_cursor,
    }))
}
