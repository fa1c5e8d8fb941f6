//! `/v1/accounts`: accounts, balances and transactions read under a user's connections.

use axum::Json;
use axum::extract::State;
use kontor_domain::account::BalanceRow;
use kontor_domain::list::TransactionFilter;
use kontor_domain::money::Money;
use kontor_domain::transaction::TransactionStatus;
use kontor_domain::{AccountId, UserId};
use kontor_service::{AccountView, TransactionView};
use serde::{Deserialize, Serialize};
use time::Date;
use utoipa::{IntoParams, ToSchema};

use crate::auth::{Scoped, scoped};
use crate::error::{ApiError, ApiResult, ErrorCode, ErrorEnvelope};
use crate::extract::{Listing, PageParams, PathId, parse_id};
use crate::openapi::schemas;
use crate::pagination;
use crate::state::AppState;

/// An exact amount: a decimal string with the currency's number of decimals.
#[derive(Debug, Serialize, ToSchema)]
pub struct Amount {
    #[schema(example = "-12.30")]
    pub value: String,
    #[schema(example = "EUR")]
    pub currency: String,
}

impl From<Money> for Amount {
    fn from(money: Money) -> Self {
        Self {
            value: money.to_decimal_string(),
            currency: money.currency().code().to_owned(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccountResponse {
    #[schema(value_type = schemas::AccountIdString)]
    pub id: String,
    #[schema(value_type = schemas::UserIdString)]
    pub user_id: String,
    #[schema(value_type = schemas::ConnectionIdString)]
    pub connection_id: String,
    #[schema(example = "EUR")]
    pub currency: String,
    #[schema(value_type = schemas::AccountKindWord)]
    pub kind: String,
    #[schema(example = "DE89370400440532013000")]
    pub iban: Option<String>,
    /// Other identification when there is no IBAN (a UK sort code and account number, a masked
    /// card number).
    pub other_identification: Option<String>,
    pub name: Option<String>,
    pub product: Option<String>,
    pub owner_name: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<AccountView> for AccountResponse {
    fn from(view: AccountView) -> Self {
        let AccountView { row, details } = view;
        Self {
            id: row.id.to_string(),
            user_id: row.user_id.to_string(),
            connection_id: row.connection_id.to_string(),
            currency: row.currency.code().to_owned(),
            kind: row.kind.as_str().to_owned(),
            iban: details.iban,
            other_identification: details.other_identification,
            name: details.name,
            product: details.product,
            owner_name: details.owner_name,
            created_at: row.created_at.to_rfc3339(),
            updated_at: row.updated_at.to_rfc3339(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccountList {
    pub data: Vec<AccountResponse>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BalanceResponse {
    /// `closing_booked`, `closing_available`, `expected`, `interim_available`, `interim_booked`,
    /// `opening_booked`, `forward_available`, `non_invoiced`, `information` or `other`.
    #[serde(rename = "type")]
    #[schema(value_type = schemas::BalanceKindWord)]
    pub kind: String,
    pub amount: Amount,
    pub credit_limit_included: Option<bool>,
    pub reference_date: Option<String>,
    pub last_change_at: Option<String>,
    /// When the hub read it from the bank.
    pub fetched_at: String,
}

impl From<BalanceRow> for BalanceResponse {
    fn from(row: BalanceRow) -> Self {
        let b = row.balance;
        Self {
            kind: b.kind.as_str().to_owned(),
            amount: b.amount.into(),
            credit_limit_included: b.credit_limit_included,
            reference_date: b.reference_date.map(|d| d.to_string()),
            last_change_at: b.last_change.map(|t| t.to_rfc3339()),
            fetched_at: row.fetched_at.to_rfc3339(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BalanceList {
    pub data: Vec<BalanceResponse>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Counterparty {
    pub name: Option<String>,
    /// IBAN or other account identification.
    pub account: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct References {
    /// The bank's transaction id (it may change when a pending transaction books; `id` does not).
    pub transaction_id: Option<String>,
    pub entry_reference: Option<String>,
    pub end_to_end_id: Option<String>,
    pub mandate_id: Option<String>,
    pub creditor_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TransactionResponse {
    /// Stable across syncs, also when the transaction books.
    #[schema(example = "txn_de_01h8x3k4q9c2m7v5t6r8w0y1z2")]
    pub id: String,
    #[schema(value_type = schemas::AccountIdString)]
    pub account_id: String,
    #[schema(value_type = schemas::TransactionStatusWord)]
    pub status: String,
    pub booking_date: Option<String>,
    pub value_date: Option<String>,
    /// The date the transaction happened, always present: the bank's booking date, else its
    /// transaction date, else the value date, else the day the hub first saw the transaction
    /// (a pending entry with no date at all). A Berlin Group pending entry with only a value
    /// date in the future has that date here until it books.
    #[schema(example = "2026-03-14", format = Date)]
    pub transaction_date: String,
    /// Negative for money out.
    pub amount: Amount,
    pub counterparty: Counterparty,
    pub remittance: Option<String>,
    pub references: References,
    pub bank_transaction_code: Option<String>,
    pub merchant_category_code: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<TransactionView> for TransactionResponse {
    fn from(view: TransactionView) -> Self {
        let TransactionView { row, details } = view;
        Self {
            id: row.id.to_string(),
            account_id: row.account_id.to_string(),
            status: row.status.as_str().to_owned(),
            booking_date: row.booking_date.map(|d| d.to_string()),
            value_date: row.value_date.map(|d| d.to_string()),
            transaction_date: row.happened_on().to_string(),
            amount: row.amount.into(),
            counterparty: Counterparty {
                name: details.counterparty_name,
                account: details.counterparty_account,
            },
            remittance: details.remittance,
            references: References {
                transaction_id: details.transaction_id,
                entry_reference: details.entry_reference,
                end_to_end_id: details.end_to_end_id,
                mandate_id: details.mandate_id,
                creditor_id: details.creditor_id,
            },
            bank_transaction_code: details.bank_transaction_code,
            merchant_category_code: details.merchant_category_code,
            created_at: row.created_at.to_rfc3339(),
            updated_at: row.updated_at.to_rfc3339(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TransactionList {
    pub data: Vec<TransactionResponse>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListAccountsQuery {
    /// The user whose accounts to list.
    #[param(value_type = schemas::UserIdString)]
    pub user_id: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListTransactionsQuery {
    /// Earliest date (booking date, else value date), `YYYY-MM-DD`, inclusive.
    #[param(format = Date)]
    pub from: Option<String>,
    /// Latest date, inclusive; not before `from`.
    #[param(format = Date)]
    pub to: Option<String>,
    /// `booked` or `pending`; both when absent.
    #[param(value_type = Option<schemas::TransactionStatusWord>)]
    pub status: Option<String>,
}

fn date(name: &str, raw: Option<&str>) -> ApiResult<Option<Date>> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    raw.map(|value| {
        Date::parse(value, format).map_err(|_| {
            ApiError::new(
                ErrorCode::InvalidDate,
                format!("{name} must be a date as YYYY-MM-DD"),
            )
        })
    })
    .transpose()
}

/// List a user's accounts.
#[utoipa::path(
    get, path = "/v1/accounts", tag = "accounts", operation_id = "listAccounts",
    params(ListAccountsQuery, PageParams),
    security(("bearer" = ["accounts:read"])),
    responses(
        (status = 200, description = "A page of accounts", body = AccountList),
        (status = 400, description = "Invalid query or cursor", body = ErrorEnvelope),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorEnvelope),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    auth: Scoped<scoped::AccountsRead>,
    Listing { page, query }: Listing<ListAccountsQuery>,
) -> ApiResult<Json<AccountList>> {
    let user: UserId = parse_id(&query.user_id)?;
    let after = pagination::in_cell(user.cell(), page.cursor)?;
    if !state.hub().serves(user.region()) {
        return Ok(Json(AccountList {
            data: Vec::new(),
            next_cursor: None,
        }));
    }
    let page = state
        .hub()
        .accounts_of(&auth.tenant, &user, after.as_ref(), page.limit)
        .await?;
    Ok(Json(AccountList {
        data: page.items.into_iter().map(AccountResponse::from).collect(),
        next_cursor: pagination::next_in_cell(user.cell(), page.next),
    }))
}

/// Read an account.
#[utoipa::path(
    get, path = "/v1/accounts/{id}", tag = "accounts", operation_id = "getAccount",
    params(("id" = schemas::AccountIdString, Path, description = "An account id, e.g. acc_de_…")),
    security(("bearer" = ["accounts:read"])),
    responses(
        (status = 200, description = "The account", body = AccountResponse),
        (status = 400, description = "Malformed id", body = ErrorEnvelope),
        (status = 404, description = "No such account for this tenant", body = ErrorEnvelope),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    auth: Scoped<scoped::AccountsRead>,
    PathId(id): PathId<AccountId>,
) -> ApiResult<Json<AccountResponse>> {
    Ok(Json(state.hub().account(&auth.tenant, &id).await?.into()))
}

/// An account's balances, as of the last sync.
#[utoipa::path(
    get, path = "/v1/accounts/{id}/balances", tag = "accounts", operation_id = "listAccountBalances",
    params(("id" = schemas::AccountIdString, Path, description = "An account id")),
    security(("bearer" = ["accounts:read"])),
    responses(
        (status = 200, description = "The balances", body = BalanceList),
        (status = 404, description = "No such account for this tenant", body = ErrorEnvelope),
    )
)]
pub async fn balances(
    State(state): State<AppState>,
    auth: Scoped<scoped::AccountsRead>,
    PathId(id): PathId<AccountId>,
) -> ApiResult<Json<BalanceList>> {
    let rows = state.hub().balances(&auth.tenant, &id).await?;
    Ok(Json(BalanceList {
        data: rows.into_iter().map(BalanceResponse::from).collect(),
    }))
}

/// An account's transactions, newest first.
#[utoipa::path(
    get, path = "/v1/accounts/{id}/transactions", tag = "accounts", operation_id = "listAccountTransactions",
    params(("id" = schemas::AccountIdString, Path, description = "An account id"), ListTransactionsQuery, PageParams),
    security(("bearer" = ["accounts:read"])),
    responses(
        (status = 200, description = "A page of transactions", body = TransactionList),
        (status = 400, description = "Invalid dates, status, limit or cursor", body = ErrorEnvelope),
        (status = 404, description = "No such account for this tenant", body = ErrorEnvelope),
    )
)]
pub async fn transactions(
    State(state): State<AppState>,
    auth: Scoped<scoped::AccountsRead>,
    PathId(id): PathId<AccountId>,
    Listing { page, query }: Listing<ListTransactionsQuery>,
) -> ApiResult<Json<TransactionList>> {
    let from = date("from", query.from.as_deref())?;
    let to = date("to", query.to.as_deref())?;
    if let (Some(from), Some(to)) = (from, to)
        && from > to
    {
        return Err(ApiError::new(
            ErrorCode::InvalidDate,
            "from must not be after to",
        ));
    }
    let status = query
        .status
        .as_deref()
        .map(|raw| {
            TransactionStatus::parse(raw).ok_or_else(|| {
                ApiError::new(ErrorCode::InvalidQuery, "status must be booked or pending")
            })
        })
        .transpose()?;
    let after = pagination::in_cell(id.cell(), page.cursor)?;
    let filter = TransactionFilter { from, to, status };
    let page = state
        .hub()
        .transactions(&auth.tenant, &id, &filter, after.as_ref(), page.limit)
        .await?;
    Ok(Json(TransactionList {
        data: page
            .items
            .into_iter()
            .map(TransactionResponse::from)
            .collect(),
        next_cursor: pagination::next_in_cell(id.cell(), page.next),
    }))
}
