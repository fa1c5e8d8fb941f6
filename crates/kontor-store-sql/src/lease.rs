//! The migration lease: one row in a small table that a process must hold while it migrates a
//! database, so that processes starting at once (`serve`, `worker`, several `migrate` jobs) do
//! not run the same migrations side by side. Portable on purpose — an `INSERT … ON CONFLICT DO
//! NOTHING` and a conditional `UPDATE`, no advisory locks (which CockroachDB lacks and SQLite
//! does not have at all).
//!
//! The row names its holder and when the lease expires. The holder renews it while it migrates;
//! a holder that dies stops renewing, and once the lease has expired the next process takes it
//! over. Expiry is judged by each process's own clock, so the lease is generous
//! ([`LEASE_TTL`]) next to any clock difference between hosts.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kontor_store::StoreResult;
use rand::Rng;
use tokio::sync::oneshot;

use kontor_domain::time::Timestamp;

use crate::cell::lease::MIGRATIONS as MIGRATION_LEASES;
use crate::database::SqlDatabase;

/// How long a lease lasts without renewal.
pub const LEASE_TTL: Duration = Duration::from_secs(30);
/// How often a waiting process looks at the lease again.
const POLL: Duration = Duration::from_millis(200);
/// The one lease this table holds today.
const MIGRATIONS: &str = "migrations";

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS kontor_migration_lease (\
     name TEXT PRIMARY KEY, \
     holder TEXT NOT NULL, \
     expires_at BIGINT NOT NULL)";

fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn ttl_micros() -> i64 {
    i64::try_from(LEASE_TTL.as_micros()).unwrap_or(i64::MAX)
}

/// Who this process is, as written into the lease row: readable in a log, unique per attempt.
fn holder_name() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "host".to_owned());
    format!(
        "{host}:{}:{:08x}",
        std::process::id(),
        rand::rng().random::<u32>()
    )
}

/// A held migration lease; renewed in the background until [`MigrationLease::release`].
pub(crate) struct MigrationLease {
    db: SqlDatabase,
    holder: String,
    stop_renewing: Option<oneshot::Sender<()>>,
}

impl MigrationLease {
    /// Waits until this process holds the lease. Creates the lease table if it is missing.
    pub(crate) async fn acquire(db: &SqlDatabase) -> StoreResult<Self> {
        create_table(db).await?;
        let holder = holder_name();
        let mut last_report = std::time::Instant::now();
        loop {
            match try_take(db, &holder).await {
                Ok(true) => break,
                Ok(false) => {
                    if last_report.elapsed() >= Duration::from_secs(5) {
                        last_report = std::time::Instant::now();
                        let other = current_holder(db).await.unwrap_or_default();
                        tracing::info!(holder = %other, "waiting for another process's migrations");
                    }
                }
                // A busy SQLite file or a conflicting transaction: look again shortly.
                Err(err) if err.is_retryable() => {}
                Err(err) => return Err(err),
            }
            tokio::time::sleep(POLL).await;
        }
        tracing::debug!(%holder, "took the migration lease");
        let (stop_tx, stop_rx) = oneshot::channel();
        tokio::spawn(renew(db.clone(), holder.clone(), stop_rx));
        Ok(Self {
            db: db.clone(),
            holder,
            stop_renewing: Some(stop_tx),
        })
    }

    /// Stops renewing and gives the lease up, so a waiting process need not wait for expiry.
    pub(crate) async fn release(mut self) {
        if let Some(stop) = self.stop_renewing.take() {
            let _ = stop.send(());
        }
        let released = MIGRATION_LEASES
            .release(&self.db, MIGRATIONS, &self.holder)
            .await;
        if let Err(err) = released {
            // It expires on its own.
            tracing::warn!(error = %err, "could not release the migration lease");
        }
    }
}

impl Drop for MigrationLease {
    fn drop(&mut self) {
        if let Some(stop) = self.stop_renewing.take() {
            let _ = stop.send(());
        }
    }
}

/// Creates the lease table. Two sessions creating it at once on PostgreSQL can both pass the
/// `IF NOT EXISTS` check and one then fails on the catalog's unique index: if the table exists
/// afterwards, that is success.
async fn create_table(db: &SqlDatabase) -> StoreResult<()> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match sqlx::query(CREATE_TABLE).execute(db.pool()).await {
            Ok(_) => return Ok(()),
            Err(err) if attempt < 20 => {
                tracing::debug!(error = %err, "creating the lease table; trying again");
                tokio::time::sleep(POLL).await;
            }
            Err(err) => return Err(db.classify(err)),
        }
    }
}

/// Takes the lease if it is free, expired, or already ours.
async fn try_take(db: &SqlDatabase, holder: &str) -> StoreResult<bool> {
    let now = now_micros();
    MIGRATION_LEASES
        .claim(
            db,
            MIGRATIONS,
            holder,
            Timestamp::from_unix_micros(now.saturating_add(ttl_micros())),
            Timestamp::from_unix_micros(now),
        )
        .await
}

async fn current_holder(db: &SqlDatabase) -> StoreResult<String> {
    db.scalar(|| {
        sqlx::query_scalar("SELECT holder FROM kontor_migration_lease WHERE name = $1")
            .bind(MIGRATIONS)
    })
    .await
}

/// Extends the lease every third of its time until told to stop.
async fn renew(db: SqlDatabase, holder: String, mut stop: oneshot::Receiver<()>) {
    loop {
        tokio::select! {
            _ = &mut stop => return,
            () = tokio::time::sleep(LEASE_TTL / 3) => {}
        }
        let until = now_micros().saturating_add(ttl_micros());
        let renewed = MIGRATION_LEASES
            .renew(&db, MIGRATIONS, &holder, Timestamp::from_unix_micros(until))
            .await;
        match renewed {
            Ok(true) => {}
            Ok(false) => {
                tracing::error!(%holder, "the migration lease was taken over while migrating");
                return;
            }
            Err(err) => tracing::warn!(error = %err, "could not renew the migration lease"),
        }
    }
}
