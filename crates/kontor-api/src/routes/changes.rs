//! `/v1/connections/{id}/transactions/changes`: the changes feed — what a connection's syncs
//! added, modified and removed since a cursor, so that a tenant keeps an exact copy of the
//! transactions with one call after each `transactions.updated` webhook.

use axum::Json;
use axum::extract::State;
use kontor_domain::ConnectionId;
use kontor_service::RemovedTransaction;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::{Scoped, scoped};
use crate::error::{ApiResult, ErrorEnvelope};
use crate::extract::{ApiQuery, PathId};
use crate::openapi::schemas;
use crate::pagination;
use crate::routes::accounts::TransactionResponse;
use crate::state::AppState;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ChangesQuery {
    /// The `next_cursor` of your last call for this connection; absent on the first call,
    /// which lists every transaction as `added`.
    pub cursor: Option<String>,
    /// At most this many changes per call.
    #[param(minimum = 1, maximum = 200, default = 50)]
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RemovedTransactionResponse {
    #[schema(example = "txn_de_01h8x3k4q9c2m7v5t6r8w0y1z2")]
    pub id: String,
    #[schema(value_type = schemas::AccountIdString)]
    pub account_id: String,
}

impl From<RemovedTransaction> for RemovedTransactionResponse {
    fn from(removed: RemovedTransaction) -> Self {
        Self {
            id: removed.id.to_string(),
            account_id: removed.account_id.to_string(),
        }
    }
}

/// What changed since the cursor. Apply it in this order: upsert `added` and `modified` by
/// `id`, delete `removed`; then store `next_cursor`.
#[derive(Debug, Serialize, ToSchema)]
pub struct TransactionChangesResponse {
    /// Transactions new since the cursor, as the transaction list shows them.
    pub added: Vec<TransactionResponse>,
    /// Transactions that changed since the cursor, in their current form. A pending
    /// transaction that booked is here, with the same `id` and `status: booked`.
    pub modified: Vec<TransactionResponse>,
    /// Transactions that are gone: pending entries the bank no longer reports (also one whose
    /// booking differs from it, e.g. in amount: then the booked entry is in `added`). May name
    /// a transaction you never received, added and removed between two calls; ignore it.
    pub removed: Vec<RemovedTransactionResponse>,
    /// Where your next call starts, also when nothing changed. Opaque, bound to this
    /// connection and your tenant.
    pub next_cursor: String,
    /// More changes are waiting now: call again at once with `next_cursor`.
    pub has_more: bool,
}

/// Changes to a connection's transactions since a cursor.
///
/// The first call (without a cursor) lists every transaction of the connection as `added`,
/// page by page while `has_more`; every later call lists what syncs added, modified and
/// removed since. Several changes of one transaction between two calls come as one. A cursor
/// is kept as long as events (`retention.events_days`); an older one is answered
/// `410 cursor_expired`: start again without a cursor and replace your copy.
#[utoipa::path(
    get, path = "/v1/connections/{id}/transactions/changes", tag = "accounts",
    operation_id = "listTransactionChanges",
    params(("id" = schemas::ConnectionIdString, Path, description = "A connection id, e.g. con_de_…"), ChangesQuery),
    security(("bearer" = ["accounts:read"])),
    responses(
        (status = 200, description = "The changes since the cursor", body = TransactionChangesResponse),
        (status = 400, description = "Malformed id or limit, or a cursor not issued for this connection", body = ErrorEnvelope),
        (status = 404, description = "No such connection for this tenant", body = ErrorEnvelope),
        (status = 410, description = "The changes since the cursor are no longer all kept", body = ErrorEnvelope),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    auth: Scoped<scoped::AccountsRead>,
    PathId(id): PathId<ConnectionId>,
    ApiQuery(query): ApiQuery<ChangesQuery>,
) -> ApiResult<Json<TransactionChangesResponse>> {
    let limit = pagination::limit(query.limit)?;
    let changes = state
        .hub()
        .transaction_changes(&auth.tenant, &id, query.cursor.as_deref(), limit)
        .await?;
    Ok(Json(TransactionChangesResponse {
        added: changes
            .added
            .into_iter()
            .map(TransactionResponse::from)
            .collect(),
        modified: changes
            .modified
            .into_iter()
            .map(TransactionResponse::from)
            .collect(),
        removed: changes
            .removed
            .into_iter()
            .map(RemovedTransactionResponse::from)
            .collect(),
        next_cursor: changes.next_cursor,
        has_more: changes.has_more,
    }))
}
