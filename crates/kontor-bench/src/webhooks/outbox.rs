//! Writing events into the outbox the way the hub does: one row in a cell's `events` table per
//! event, committed by its own transaction (or in batches, to fill a backlog fast). The commit
//! time of each event is noted when its COMMIT returns — the start of the delay measured.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use kontor_domain::time::Timestamp;
use kontor_domain::{EventId, Region, UserId};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

/// The `events` tables of the cells, and users to write events about.
pub struct Outbox {
    tenant: String,
    /// (region, pool, users of that region)
    cells: Vec<(Region, PgPool, Vec<String>)>,
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
            let region = Region::parse(region).with_context(|| format!("cell {region}"))?;
            let ids = (0..users.max(1))
                .map(|_| UserId::generate(&region).to_string())
                .collect();
            cells.push((region, pool, ids));
        }
        Ok(Self {
            tenant: tenant.to_owned(),
            cells,
        })
    }

    /// Runs `ANALYZE` on every cell's queue tables every `every` until the handle is aborted
    /// (or dropped with the runtime). A failed `ANALYZE` is reported and tried again next time.
    pub fn analyze_every(&self, every: Duration) -> AbortOnDrop {
        let pools: Vec<PgPool> = self.cells.iter().map(|(_, pool, _)| pool.clone()).collect();
        AbortOnDrop(tokio::spawn(async move {
            loop {
                for pool in &pools {
                    for table in ["ANALYZE webhook_deliveries", "ANALYZE events"] {
                        if let Err(err) = sqlx::query(table).execute(pool).await {
                            eprintln!("kontor-bench webhooks: {table} failed: {err}");
                        }
                    }
                }
                tokio::time::sleep(every).await;
            }
        }))
    }

    fn event_row(&self, n: usize) -> (usize, String, String) {
        let cell = n % self.cells.len();
        let (region, _, users) = &self.cells[cell];
        let user = users[(n / self.cells.len()) % users.len()].clone();
        (cell, EventId::generate(region).to_string(), user)
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
                    .bind(Timestamp::now().unix_micros())
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
            .bind(Timestamp::now().unix_micros())
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

/// A background task that ends when this handle is dropped.
#[derive(Debug)]
pub struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
