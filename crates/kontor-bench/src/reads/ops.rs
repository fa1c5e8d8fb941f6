//! The operations of `kontor-bench reads`, each a closure the load generators call once per
//! request: the account endpoints through the hub, and the SQL the store runs for them sent
//! directly through sqlx, rows decoded. (`GET /v1/users/{id}` and its SELECT come from
//! `users::ops`.)

use std::sync::Arc;

use rand::Rng;
use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::direct::Direct;
use crate::hub::Hub;
use crate::users::OpFuture;
use crate::users::ops::{sql_failure, status_failure, transport_failure};

/// Transactions per page, as tenants ask for them.
pub const PAGE_ROWS: usize = 50;

/// What `kontor-store-sql` runs (`cell/accounts.rs`), character for character: the store's
/// `list_transactions` without filters or cursor — the keyset page, one row more than asked
/// for to know whether a next page exists; `account`; and `balances`, which reads the account
/// first to scope the balances by tenant.
const PAGE_QUERY: &str = "SELECT id, tenant_id, account_id, dedup_key, status, booking_date, \
     value_date, sort_date, transaction_date, amount_minor, currency, details, created_at, \
     updated_at \
     FROM transactions WHERE tenant_id = $1 AND account_id = $2 \
     ORDER BY sort_date DESC, id DESC LIMIT $3";
const ACCOUNT_QUERY: &str = "SELECT id, tenant_id, user_id, connection_id, bank_account_id, \
     currency, kind, details, created_at, updated_at FROM accounts WHERE tenant_id = $1 AND id = $2";
const BALANCES_QUERY: &str = "SELECT account_id, kind, amount_minor, currency, \
     credit_limit_included, reference_date, last_change_at, fetched_at FROM balances \
     WHERE account_id = $1 ORDER BY kind";

type TransactionRow = (
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    String,
    Option<String>,
    i64,
    String,
    String,
    i64,
    i64,
);
type AccountRow = (
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    i64,
    i64,
);
type BalanceRow = (
    String,
    String,
    i64,
    String,
    Option<i64>,
    Option<String>,
    Option<i64>,
    i64,
);

#[derive(Debug, Deserialize)]
struct List {
    data: Vec<IgnoredAny>,
}

#[derive(Debug, Deserialize)]
struct Identified {
    id: String,
}

/// What the API operations share.
#[derive(Debug, Clone)]
pub struct Api {
    pub http: reqwest::Client,
    pub base: Arc<String>,
    pub bearer: Arc<String>,
}

impl Api {
    pub fn new(hub: &Hub, http: &reqwest::Client, bearer: &Arc<String>) -> Self {
        Self {
            http: http.clone(),
            base: Arc::new(hub.url("")),
            bearer: Arc::clone(bearer),
        }
    }

    async fn get<T: for<'de> Deserialize<'de>>(&self, path: String) -> Result<T, String> {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(self.bearer.as_str())
            .send()
            .await
            .map_err(|e| transport_failure(&e))?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(status_failure(response).await);
        }
        response.json().await.map_err(|e| transport_failure(&e))
    }
}

fn pick(ids: &[String]) -> String {
    ids[rand::rng().random_range(0..ids.len())].clone()
}

/// `GET /v1/accounts/{id}/transactions?limit=50`, the first page; the body decoded and
/// counted.
pub fn api_page(api: &Api, account: &Arc<String>) -> impl Fn() -> OpFuture + Send + Sync + 'static {
    let api = api.clone();
    let path = format!("/v1/accounts/{account}/transactions?limit={PAGE_ROWS}");
    move || {
        let api = api.clone();
        let path = path.clone();
        Box::pin(async move {
            let page: List = api.get(path).await?;
            if page.data.len() == PAGE_ROWS {
                Ok(())
            } else {
                Err(format!("a page of {} rows", page.data.len()))
            }
        })
    }
}

/// `GET` of `path(id)` for one of `accounts` at random, the body decoded as `T` and checked.
fn per_account<T>(
    api: &Api,
    accounts: &Arc<Vec<String>>,
    path: fn(&str) -> String,
    check: fn(&T, &str) -> Result<(), String>,
) -> impl Fn() -> OpFuture + Send + Sync + 'static
where
    T: for<'de> Deserialize<'de> + Send + 'static,
{
    let api = api.clone();
    let accounts = Arc::clone(accounts);
    move || {
        let api = api.clone();
        let id = pick(&accounts);
        Box::pin(async move {
            let body: T = api.get(path(&id)).await?;
            check(&body, &id)
        })
    }
}

/// `GET /v1/accounts/{id}` for one of `accounts` at random.
pub fn api_account(
    api: &Api,
    accounts: &Arc<Vec<String>>,
) -> impl Fn() -> OpFuture + Send + Sync + 'static {
    per_account(
        api,
        accounts,
        |id| format!("/v1/accounts/{id}"),
        |account: &Identified, id| {
            if account.id == id {
                Ok(())
            } else {
                Err("answered another account".to_owned())
            }
        },
    )
}

/// `GET /v1/accounts/{id}/balances` for one of `accounts` at random.
pub fn api_balances(
    api: &Api,
    accounts: &Arc<Vec<String>>,
) -> impl Fn() -> OpFuture + Send + Sync + 'static {
    per_account(
        api,
        accounts,
        |id| format!("/v1/accounts/{id}/balances"),
        |list: &List, _| {
            if list.data.is_empty() {
                Err("no balances".to_owned())
            } else {
                Ok(())
            }
        },
    )
}

/// What the SQL operations share: connections to the cell and the tenant.
#[derive(Debug, Clone)]
pub struct Sql {
    pub direct: Direct,
    pub tenant: Arc<String>,
}

/// The keyset page query, as the hub's store sends it for a first page of 50.
pub fn sql_page(sql: &Sql, account: &Arc<String>) -> impl Fn() -> OpFuture + Send + Sync + 'static {
    let sql = sql.clone();
    let account = Arc::clone(account);
    move || {
        let sql = sql.clone();
        let account = Arc::clone(&account);
        Box::pin(async move {
            let rows: Vec<TransactionRow> = sql
                .direct
                .run(async |c| {
                    sqlx::query_as(PAGE_QUERY)
                        .bind(sql.tenant.as_str())
                        .bind(account.as_str())
                        .bind(i64::try_from(PAGE_ROWS + 1).unwrap_or(i64::MAX))
                        .fetch_all(c)
                        .await
                })
                .await
                .map_err(|e| sql_failure(&e))?;
            if rows.len() > PAGE_ROWS {
                Ok(())
            } else {
                Err(format!("a page of {} rows", rows.len()))
            }
        })
    }
}

async fn account_row(sql: &Sql, id: &str) -> Result<AccountRow, String> {
    let row: Option<AccountRow> = sql
        .direct
        .run(async |c| {
            sqlx::query_as(ACCOUNT_QUERY)
                .bind(sql.tenant.as_str())
                .bind(id)
                .fetch_optional(c)
                .await
        })
        .await
        .map_err(|e| sql_failure(&e))?;
    match row {
        Some(row) if row.0 == id => Ok(row),
        Some(_) => Err("answered another account".to_owned()),
        None => Err("not found".to_owned()),
    }
}

/// The account query for one of `accounts` at random.
pub fn sql_account(
    sql: &Sql,
    accounts: &Arc<Vec<String>>,
) -> impl Fn() -> OpFuture + Send + Sync + 'static {
    let sql = sql.clone();
    let accounts = Arc::clone(accounts);
    move || {
        let sql = sql.clone();
        let id = pick(&accounts);
        Box::pin(async move { account_row(&sql, &id).await.map(drop) })
    }
}

/// The account query, then the balances query, as the store's `balances` runs them.
pub fn sql_balances(
    sql: &Sql,
    accounts: &Arc<Vec<String>>,
) -> impl Fn() -> OpFuture + Send + Sync + 'static {
    let sql = sql.clone();
    let accounts = Arc::clone(accounts);
    move || {
        let sql = sql.clone();
        let id = pick(&accounts);
        Box::pin(async move {
            account_row(&sql, &id).await?;
            let rows: Vec<BalanceRow> = sql
                .direct
                .run(async |c| {
                    sqlx::query_as(BALANCES_QUERY)
                        .bind(id.as_str())
                        .fetch_all(c)
                        .await
                })
                .await
                .map_err(|e| sql_failure(&e))?;
            if rows.is_empty() {
                Err("no balances".to_owned())
            } else {
                Ok(())
            }
        })
    }
}
