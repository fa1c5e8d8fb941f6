//! A read-only look into the hub's cell databases for the payments a run could not explain:
//! the phase, the worker lease (owner and until when) and the next poll, which the API does not
//! show. SQLite files are opened read-only; PostgreSQL through the run's own databases.

use std::collections::BTreeMap;

use serde::Serialize;
use sqlx::{AnyConnection, Connection, Row};

/// What the store says about one payment.
#[derive(Debug, Clone, Serialize)]
pub struct StoreRow {
    pub phase: String,
    pub status: String,
    pub lease_owner: Option<String>,
    /// Seconds from the moment of the look until the lease lapses (negative: lapsed).
    pub lease_left_seconds: Option<i64>,
    pub next_poll_in_seconds: Option<i64>,
    pub poll_attempts: i64,
    pub seconds_since_update: i64,
}

/// The store rows of `ids`, by id. `cells` maps a region (`de`, `uk`) to its database URL.
/// Whatever cannot be read is left out: this only adds evidence.
pub async fn store_rows(
    cells: &BTreeMap<String, String>,
    ids: &[String],
) -> BTreeMap<String, StoreRow> {
    sqlx::any::install_default_drivers();
    let mut out = BTreeMap::new();
    for (region, url) in cells {
        let mine: Vec<&String> = ids
            .iter()
            .filter(|id| id.starts_with(&format!("pay_{region}_")))
            .collect();
        if mine.is_empty() {
            continue;
        }
        let Ok(mut conn) = AnyConnection::connect(url).await else {
            continue;
        };
        let now = kontor_domain::time::Timestamp::now().unix_micros();
        for id in mine {
            let row = sqlx::query(
                "SELECT phase, status, lease_owner, lease_until, next_poll_at, poll_attempts, updated_at \
                 FROM payments WHERE id = $1",
            )
            .bind(id.as_str())
            .fetch_optional(&mut conn)
            .await;
            let Ok(Some(row)) = row else { continue };
            let seconds = |micros: Option<i64>| micros.map(|m| (m - now) / 1_000_000);
            let get = |name: &str| row.try_get::<Option<i64>, _>(name).ok().flatten();
            out.insert(
                id.clone(),
                StoreRow {
                    phase: row.try_get("phase").unwrap_or_default(),
                    status: row.try_get("status").unwrap_or_default(),
                    lease_owner: row.try_get("lease_owner").ok().flatten(),
                    lease_left_seconds: seconds(get("lease_until")),
                    next_poll_in_seconds: seconds(get("next_poll_at")),
                    poll_attempts: get("poll_attempts").unwrap_or(0),
                    seconds_since_update: get("updated_at").map_or(0, |u| (now - u) / 1_000_000),
                },
            );
        }
        let _ = conn.close().await;
    }
    out
}

/// How many payments are mid-step toward the bank (`initiating` or `submitting`), over all
/// cells; `None` when a cell cannot be read.
pub async fn mid_step(cells: &BTreeMap<String, String>) -> Option<i64> {
    sqlx::any::install_default_drivers();
    let mut total = 0;
    for url in cells.values() {
        let mut conn = AnyConnection::connect(url).await.ok()?;
        let count: i64 = sqlx::query_scalar(
            "SELECT CAST(COUNT(*) AS BIGINT) FROM payments \
             WHERE phase IN ('initiating', 'submitting')",
        )
        .fetch_one(&mut conn)
        .await
        .ok()?;
        total += count;
        let _ = conn.close().await;
    }
    Some(total)
}
