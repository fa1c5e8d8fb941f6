//! Writing events into the outbox the way the hub does: one row in a cell's `events` table per
//! event, committed by its own transaction (or in batches, to fill a backlog fast). The commit
//! time of each event is noted when its COMMIT returns — the start of the delay measured.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use rand::RngCore;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

/// An id shaped like the hub's: `prefix_region_` and 26 random Crockford base32 characters.
pub fn hub_id(prefix: &str, region: &str) -> String {
    const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    let value = u128::from_be_bytes(bytes);
    let random: String = (0..26)
        .rev()
        .map(|i| {
            let index = usize::from(u8::try_from((value >> (5 * i)) & 0x1f).unwrap_or(0));
            char::from(ALPHABET[index])
        })
        .collect();
    format!("{prefix}_{region}_{random}")
}

fn micros(at: SystemTime) -> i64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// The `events` tables of the cells, and users to write events about.
pub struct Outbox {
    tenant: String,
    /// (region, pool, users of that region)
    cells: Vec<(String, PgPool, Vec<String>)>,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox")
            .field("cells", &self.cells.len())
            .finish()
    }
}

impl Outbox {
    /// `users` users per cell, spread over `urls` (region → database URL).
    pub async fn connect(
        tenant: &str,
        urls: &[(String, String)],
        users: usize,
    ) -> anyhow::Result<Self> {
        let mut cells = Vec::new();
        for (region, url) in urls {
            let pool = PgPoolOptions::new()
                .max_connections(4)
                .connect(url)
                .await
                .with_context(|| format!("connecting to the {region} cell"))?;
            let ids = (0..users.max(1)).map(|_| hub_id("usr", region)).collect();
            cells.push((region.clone(), pool, ids));
        }
        Ok(Self {
            tenant: tenant.to_owned(),
            cells,
        })
    }

    fn event_row(&self, n: usize) -> (usize, String, String) {
        let cell = n % self.cells.len();
        let (region, _, users) = &self.cells[cell];
        let user = users[(n / self.cells.len()) % users.len()].clone();
        (cell, hub_id("evt", region), user)
    }

    /// Writes `count` events in batches; returns how many.
    pub async fn backlog(&self, count: usize) -> anyhow::Result<usize> {
        const BATCH: usize = 500;
        let mut written = 0;
        let mut rows: Vec<Vec<(String, String)>> = vec![Vec::new(); self.cells.len()];
        for n in 0..count {
            let (cell, id, user) = self.event_row(n);
            rows[cell].push((id, user));
        }
        for (cell, events) in rows.iter().enumerate() {
            let pool = &self.cells[cell].1;
            for chunk in events.chunks(BATCH) {
                let mut sql = String::from(
                    "INSERT INTO events (id, tenant_id, user_id, type, data, created_at) VALUES ",
                );
                for i in 0..chunk.len() {
                    let p = i * 3;
                    if i > 0 {
                        sql.push_str(", ");
                    }
                    sql.push_str(&format!(
                        "(${}, ${}, ${}, 'transactions.updated', '{{\"accounts\":[]}}', ${})",
                        p + 1,
                        p + 2,
                        p + 3,
                        chunk.len() * 3 + 1
                    ));
                }
                let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
                for (id, user) in chunk {
                    query = query.bind(id).bind(&self.tenant).bind(user);
                }
                query
                    .bind(micros(SystemTime::now()))
                    .execute(pool)
                    .await
                    .context("writing the backlog")?;
                written += chunk.len();
            }
        }
        Ok(written)
    }

    /// Writes one event every `1/rate` seconds for `duration`, each in its own transaction;
    /// returns each event's commit time.
    pub async fn steady(
        &self,
        rate: u32,
        duration: Duration,
    ) -> anyhow::Result<HashMap<String, SystemTime>> {
        let mut committed = HashMap::new();
        let every = Duration::from_micros(1_000_000 / u64::from(rate.max(1)));
        let mut ticker = tokio::time::interval(every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let end = tokio::time::Instant::now() + duration;
        let mut n = 0;
        while tokio::time::Instant::now() < end {
            ticker.tick().await;
            let (cell, id, user) = self.event_row(n);
            n += 1;
            sqlx::query(
                "INSERT INTO events (id, tenant_id, user_id, type, data, created_at) \
                 VALUES ($1, $2, $3, 'transactions.updated', '{\"accounts\":[]}', $4)",
            )
            .bind(&id)
            .bind(&self.tenant)
            .bind(&user)
            .bind(micros(SystemTime::now()))
            .execute(&self.cells[cell].1)
            .await
            .context("writing an event")?;
            committed.insert(id, SystemTime::now());
        }
        Ok(committed)
    }

    /// Deliveries per state, and attempts made, over every cell.
    pub async fn tally(&self) -> anyhow::Result<(HashMap<String, i64>, i64)> {
        let mut states = HashMap::new();
        let mut attempts = 0;
        for (_, pool, _) in &self.cells {
            let rows: Vec<(String, i64, i64)> = sqlx::query_as(
                "SELECT state, COUNT(*), CAST(COALESCE(SUM(attempts), 0) AS BIGINT) \
                 FROM webhook_deliveries GROUP BY state",
            )
            .fetch_all(pool)
            .await
            .context("counting deliveries")?;
            for (state, count, tried) in rows {
                *states.entry(state).or_insert(0) += count;
                attempts += tried;
            }
        }
        Ok((states, attempts))
    }

    pub async fn close(&self) {
        for (_, pool, _) in &self.cells {
            pool.close().await;
        }
    }
}
