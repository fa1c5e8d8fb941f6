//! The four operations of `kontor-bench users`, each a closure the load generator calls once per
//! request: the two API calls, and the SQL the store runs for them, sent directly through sqlx.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use kontor_domain::time::Timestamp;
use kontor_domain::{Region, UserId};
use rand::Rng;
use serde::Deserialize;
use sqlx::PgPool;

use crate::direct::Direct;
use crate::hub::Hub;
use crate::load::Failure;

/// What the store runs for `create_user` and `user`, character for character
/// (`kontor-store-sql/src/cell.rs`, `kontor-store-sql/src/backend/postgres.rs`'s `BEGIN_WRITE`).
const BEGIN_WRITE: &str = "BEGIN ISOLATION LEVEL SERIALIZABLE";
const INSERT_USER: &str =
    "INSERT INTO users (id, tenant_id, external_id, created_at) VALUES ($1, $2, $3, $4)";
const SELECT_USER: &str =
    "SELECT id, tenant_id, external_id, created_at FROM users WHERE tenant_id = $1 AND id = $2";

/// The cell every operation works in.
pub const REGION: &str = "uk";

#[derive(Debug, Deserialize)]
struct UserBody {
    id: String,
}

pub(crate) fn transport_failure(err: &reqwest::Error) -> Failure {
    if err.is_timeout() {
        "HTTP timeout".to_owned()
    } else if err.is_connect() {
        "HTTP connect error".to_owned()
    } else if err.is_decode() {
        "unreadable response body".to_owned()
    } else {
        "HTTP transport error".to_owned()
    }
}

/// `HTTP <status> <error code>` for an answer that was not the expected one.
pub(crate) async fn status_failure(response: reqwest::Response) -> Failure {
    let status = response.status().as_u16();
    let code = response
        .json::<serde_json::Value>()
        .await
        .ok()
        .and_then(|body| body["error"]["code"].as_str().map(str::to_owned))
        .unwrap_or_default();
    format!("HTTP {status} {code}").trim_end().to_owned()
}

pub(crate) fn sql_failure(err: &sqlx::Error) -> Failure {
    match err {
        sqlx::Error::Database(db) => {
            format!("SQLSTATE {}", db.code().as_deref().unwrap_or("?"))
        }
        sqlx::Error::PoolTimedOut => "pool timed out".to_owned(),
        sqlx::Error::Io(_) => "I/O error".to_owned(),
        other => format!(
            "sqlx: {}",
            other.to_string().chars().take(60).collect::<String>()
        ),
    }
}

pub type OpFuture = std::pin::Pin<Box<dyn Future<Output = Result<(), Failure>> + Send>>;

pub fn api_create(
    hub: &Hub,
    http: &reqwest::Client,
    bearer: &Arc<String>,
    ids: &Arc<Mutex<Vec<String>>>,
    sequence: &Arc<AtomicU64>,
) -> impl Fn() -> OpFuture + Send + Sync + 'static {
    let url = Arc::new(hub.url("/v1/users"));
    let http = http.clone();
    let bearer = Arc::clone(bearer);
    let ids = Arc::clone(ids);
    let sequence = Arc::clone(sequence);
    move || {
        let n = sequence.fetch_add(1, Ordering::Relaxed);
        let request = http.post(url.as_str()).bearer_auth(bearer.as_str()).json(
            &serde_json::json!({ "external_id": format!("bench-api-{n}"), "region": REGION }),
        );
        let ids = Arc::clone(&ids);
        Box::pin(async move {
            let response = request.send().await.map_err(|e| transport_failure(&e))?;
            if response.status() != reqwest::StatusCode::CREATED {
                return Err(status_failure(response).await);
            }
            let user: UserBody = response.json().await.map_err(|e| transport_failure(&e))?;
            ids.lock()
                .map_err(|_| "id list poisoned".to_owned())?
                .push(user.id);
            Ok(())
        })
    }
}

pub fn api_get(
    hub: &Hub,
    http: &reqwest::Client,
    bearer: &Arc<String>,
    ids: &Arc<Vec<String>>,
) -> impl Fn() -> OpFuture + Send + Sync + 'static {
    let base = Arc::new(hub.url("/v1/users/"));
    let http = http.clone();
    let bearer = Arc::clone(bearer);
    let ids = Arc::clone(ids);
    move || {
        let id = ids[rand::rng().random_range(0..ids.len())].clone();
        let request = http.get(format!("{base}{id}")).bearer_auth(bearer.as_str());
        Box::pin(async move {
            let response = request.send().await.map_err(|e| transport_failure(&e))?;
            if response.status() != reqwest::StatusCode::OK {
                return Err(status_failure(response).await);
            }
            let user: UserBody = response.json().await.map_err(|e| transport_failure(&e))?;
            if user.id == id {
                Ok(())
            } else {
                Err("answered another user".to_owned())
            }
        })
    }
}

pub fn sql_insert(
    region: &Region,
    pool: &PgPool,
    tenant: &Arc<String>,
    sequence: &Arc<AtomicU64>,
) -> impl Fn() -> OpFuture + Send + Sync + 'static {
    let pool = pool.clone();
    let tenant = Arc::clone(tenant);
    let sequence = Arc::clone(sequence);
    let region = region.clone();
    move || {
        let n = sequence.fetch_add(1, Ordering::Relaxed);
        let id = UserId::generate(&region).to_string();
        let external_id = format!("bench-sql-{n}");
        let pool = pool.clone();
        let tenant = Arc::clone(&tenant);
        Box::pin(async move {
            let mut tx = pool
                .begin_with(BEGIN_WRITE)
                .await
                .map_err(|e| sql_failure(&e))?;
            sqlx::query(INSERT_USER)
                .bind(id)
                .bind(tenant.as_str())
                .bind(external_id)
                .bind(Timestamp::now().unix_micros())
                .execute(&mut *tx)
                .await
                .map_err(|e| sql_failure(&e))?;
            tx.commit().await.map_err(|e| sql_failure(&e))
        })
    }
}

pub fn sql_select(
    direct: &Direct,
    tenant: &Arc<String>,
    ids: &Arc<Vec<String>>,
) -> impl Fn() -> OpFuture + Send + Sync + 'static {
    let direct = direct.clone();
    let tenant = Arc::clone(tenant);
    let ids = Arc::clone(ids);
    move || {
        let id = ids[rand::rng().random_range(0..ids.len())].clone();
        let direct = direct.clone();
        let tenant = Arc::clone(&tenant);
        Box::pin(async move {
            let row: Option<(String, String, String, i64)> = direct
                .run(async |c| {
                    sqlx::query_as(SELECT_USER)
                        .bind(tenant.as_str())
                        .bind(id.as_str())
                        .fetch_optional(c)
                        .await
                })
                .await
                .map_err(|e| sql_failure(&e))?;
            match row {
                Some((found, ..)) if found == id => Ok(()),
                Some(_) => Err("answered another user".to_owned()),
                None => Err("not found".to_owned()),
            }
        })
    }
}
