//! The baseline of `kontor-bench ingest`: the rows a sync wrote, read back from the cell and
//! written again into a scratch table of the same shape (`LIKE transactions INCLUDING ALL`:
//! the same columns, primary key, unique constraint and index) in the same database, by raw
//! multi-row `INSERT`s of `batch_rows` rows each inside one transaction — as fast as
//! PostgreSQL takes these rows from a client here, with nothing else to do.
//!
//! A second measure writes the sync's whole bulk the same way: those rows and the change-log
//! rows the sync recorded for them (`transaction_changes`, read back too, into a scratch table
//! `LIKE transaction_changes INCLUDING ALL`) in one transaction. The hub must write both (the
//! changes feed reads the log), the first baseline only the former; the second shows how much
//! of the gap is the log rather than the hub.

use std::time::{Duration, Instant};

use anyhow::Context;
use sqlx::postgres::PgPoolOptions;
use sqlx::{FromRow, PgPool, Postgres, QueryBuilder};

/// A row of `transactions`, as stored.
#[derive(Debug, Clone, FromRow)]
pub struct Row {
    id: String,
    tenant_id: String,
    account_id: String,
    dedup_key: String,
    status: String,
    booking_date: Option<String>,
    value_date: Option<String>,
    sort_date: String,
    amount_minor: i64,
    currency: String,
    details: String,
    created_at: i64,
    updated_at: i64,
}

/// A row of `transaction_changes`, as stored.
#[derive(Debug, Clone, FromRow)]
pub struct ChangeRow {
    connection_id: String,
    seq: i64,
    account_id: String,
    transaction_id: String,
    kind: String,
    created_at: i64,
}

#[derive(Debug)]
pub struct Baseline {
    pool: PgPool,
    batch_rows: usize,
}

impl Baseline {
    /// Connects to the cell and creates the scratch table (dropped with the run's databases).
    pub async fn create(cell_url: &str, batch_rows: usize) -> anyhow::Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(Duration::from_secs(30))
            .connect(cell_url)
            .await
            .context("connecting the baseline to the cell")?;
        sqlx::query("CREATE TABLE bench_ingest_rows (LIKE transactions INCLUDING ALL)")
            .execute(&pool)
            .await
            .context("creating the scratch table")?;
        sqlx::query("CREATE TABLE bench_ingest_changes (LIKE transaction_changes INCLUDING ALL)")
            .execute(&pool)
            .await
            .context("creating the scratch table of changes")?;
        Ok(Self { pool, batch_rows })
    }

    /// The `limit` rows of a connection's accounts the hub wrote last (all of them for `None`).
    pub async fn rows_of(
        &self,
        connection_id: &str,
        limit: Option<u64>,
    ) -> anyhow::Result<Vec<Row>> {
        sqlx::query_as(
            "SELECT t.id, t.tenant_id, t.account_id, t.dedup_key, t.status, t.booking_date, \
             t.value_date, t.sort_date, t.amount_minor, t.currency, t.details, t.created_at, \
             t.updated_at FROM transactions t JOIN accounts a ON a.id = t.account_id \
             WHERE a.connection_id = $1 ORDER BY t.updated_at DESC, t.id LIMIT $2",
        )
        .bind(connection_id)
        .bind(limit.map_or(i64::MAX, |n| i64::try_from(n).unwrap_or(i64::MAX)))
        .fetch_all(&self.pool)
        .await
        .context("reading back the rows the hub wrote")
    }

    /// The change-log rows of a connection's latest recorded sync (the hub stamps them all
    /// with the sync's moment).
    pub async fn changes_of(&self, connection_id: &str) -> anyhow::Result<Vec<ChangeRow>> {
        sqlx::query_as(
            "SELECT connection_id, seq, account_id, transaction_id, kind, created_at \
             FROM transaction_changes WHERE connection_id = $1 AND created_at = \
             (SELECT MAX(created_at) FROM transaction_changes WHERE connection_id = $1) \
             ORDER BY seq",
        )
        .bind(connection_id)
        .fetch_all(&self.pool)
        .await
        .context("reading back the change log the hub wrote")
    }

    /// Empties the scratch tables (not timed), then writes `rows`, and `changes` after them,
    /// in one transaction of multi-row INSERTs; returns how long that transaction took, from
    /// `BEGIN` to `COMMIT`.
    pub async fn insert(&self, rows: &[Row], changes: &[ChangeRow]) -> anyhow::Result<Duration> {
        sqlx::query("TRUNCATE bench_ingest_rows, bench_ingest_changes")
            .execute(&self.pool)
            .await
            .context("emptying the scratch tables")?;
        let mut conn = self.pool.acquire().await.context("a baseline connection")?;
        let started = Instant::now();
        let mut tx = sqlx::Connection::begin(&mut *conn).await.context("BEGIN")?;
        for batch in rows.chunks(self.batch_rows.max(1)) {
            let mut insert = QueryBuilder::<Postgres>::new(
                "INSERT INTO bench_ingest_rows (id, tenant_id, account_id, dedup_key, status, \
                 booking_date, value_date, sort_date, amount_minor, currency, details, \
                 created_at, updated_at) ",
            );
            insert.push_values(batch, |mut values, row| {
                values
                    .push_bind(&row.id)
                    .push_bind(&row.tenant_id)
                    .push_bind(&row.account_id)
                    .push_bind(&row.dedup_key)
                    .push_bind(&row.status)
                    .push_bind(&row.booking_date)
                    .push_bind(&row.value_date)
                    .push_bind(&row.sort_date)
                    .push_bind(row.amount_minor)
                    .push_bind(&row.currency)
                    .push_bind(&row.details)
                    .push_bind(row.created_at)
                    .push_bind(row.updated_at);
            });
            insert
                .build()
                .execute(&mut *tx)
                .await
                .context("a batched INSERT")?;
        }
        for batch in changes.chunks(self.batch_rows.max(1)) {
            let mut insert = QueryBuilder::<Postgres>::new(
                "INSERT INTO bench_ingest_changes (connection_id, seq, account_id, \
                 transaction_id, kind, created_at) ",
            );
            insert.push_values(batch, |mut values, change| {
                values
                    .push_bind(&change.connection_id)
                    .push_bind(change.seq)
                    .push_bind(&change.account_id)
                    .push_bind(&change.transaction_id)
                    .push_bind(&change.kind)
                    .push_bind(change.created_at);
            });
            insert
                .build()
                .execute(&mut *tx)
                .await
                .context("a batched INSERT of changes")?;
        }
        tx.commit().await.context("COMMIT")?;
        Ok(started.elapsed())
    }

    pub async fn close(self) {
        self.pool.close().await;
    }
}
