//! One database (the control database or a cell): its pool, its dialect, and the two ways work
//! reaches it — reads on the pool ([`SqlDatabase::read`], retried once when their connection
//! died), and write transactions through the retry helper.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use kontor_store::{DatabaseRole, MigrationStatus, RetryPolicy, Schema, StoreError, StoreResult};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::migrate::Migrator;
use sqlx::pool::{PoolConnectionMetadata, PoolOptions};
use sqlx::{Any, AnyPool, Connection, Row, Transaction};

use crate::dialect::Dialect;
use crate::lease::MigrationLease;
use crate::reads::{Columns, ReadPool};

#[derive(Debug, Clone)]
pub struct PoolSettings {
    pub max_connections: u32,
    pub acquire_timeout: Duration,
    /// How long a SQLite writer waits for the lock before the retry helper takes over.
    pub sqlite_busy_timeout: Duration,
    pub retry: RetryPolicy,
    /// A connection older than this is closed rather than reused (`None`: kept for ever), so
    /// that new connections pick up what changed: a rotated TLS client certificate, a new
    /// server behind the same name.
    pub max_lifetime: Option<Duration>,
    /// A pooled connection idle at least this long is pinged before it is handed out (a dead one
    /// is closed and another taken); one used more recently is handed out as it is, and a read
    /// that finds it dead runs again on another (see [`SqlDatabase::read`]). Zero pings every
    /// time, which is sqlx's default and costs a round trip per statement outside a
    /// transaction.
    pub ping_after_idle: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_connections: 10,
            acquire_timeout: Duration::from_secs(5),
            sqlite_busy_timeout: Duration::from_secs(5),
            retry: RetryPolicy::default(),
            max_lifetime: Some(Duration::from_secs(30 * 60)),
            ping_after_idle: Duration::from_secs(1),
        }
    }
}

#[derive(Debug, Clone)]
pub struct SqlDatabase {
    pool: AnyPool,
    /// Where the typed reads run (`reads.rs`): a cell's own PostgreSQL or SQLite pool, which
    /// takes half of `max_connections` from the `Any` pool rather than adding to it.
    reads: ReadPool,
    dialect: Dialect,
    role: DatabaseRole,
    retry: RetryPolicy,
    losses: Arc<Losses>,
}

/// When this pool last saw a connection lost. A lost connection usually means the server went
/// away (a restart, a failover): every connection opened before that moment is suspect — it
/// may still lead to the old primary — so the pool closes each of them the next time it would
/// hand it out or take it back, instead of waiting for each one to fail on its own.
#[derive(Debug)]
struct Losses {
    origin: Instant,
    /// Milliseconds after `origin` of the last loss, plus one; 0 when none was seen.
    last: AtomicU64,
}

impl Losses {
    fn new() -> Self {
        Self {
            origin: Instant::now(),
            last: AtomicU64::new(0),
        }
    }

    fn since_origin(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn record(&self) {
        self.last
            .store(self.since_origin().saturating_add(1), Ordering::Relaxed);
    }

    /// Whether a connection of this age was opened before (or at) the last loss.
    fn is_suspect(&self, age: Duration) -> bool {
        let last = self.last.load(Ordering::Relaxed);
        if last == 0 {
            return false;
        }
        let age = u64::try_from(age.as_millis()).unwrap_or(u64::MAX);
        let opened = self.since_origin().saturating_sub(age);
        opened < last
    }
}

/// The pool's check on a connection it is about to hand out: keep it unless it predates the last
/// loss, and, when it rested at least `ping_after` (or `ping_after` is zero), unless it does not
/// answer a ping. A connection of a busy pool was used a moment ago: pinging it before every
/// statement would double the round trips of a read.
fn check_before_use<'c, C: Connection>(
    losses: &Losses,
    ping_after: Duration,
    conn: &'c mut C,
    meta: &PoolConnectionMetadata,
) -> Pin<Box<dyn Future<Output = Result<bool, sqlx::Error>> + Send + 'c>> {
    if losses.is_suspect(meta.age) {
        metrics::counter!("kontor_db_connections_dropped_total").increment(1);
        return Box::pin(std::future::ready(Ok(false)));
    }
    if meta.idle_for < ping_after {
        return Box::pin(std::future::ready(Ok(true)));
    }
    Box::pin(async move {
        match conn.ping().await {
            Ok(()) => Ok(true),
            Err(error) => {
                // The other end hung up; the pool closes it and takes (or opens) another.
                tracing::info!(%error, "ping on an idle connection failed");
                Ok(false)
            }
        }
    })
}

/// The pool's check on a connection it takes back: keep it unless it predates the last loss.
fn keep_connection(
    losses: &Losses,
    meta: &PoolConnectionMetadata,
) -> Pin<Box<dyn Future<Output = Result<bool, sqlx::Error>> + Send + 'static>> {
    let keep = !losses.is_suspect(meta.age);
    if !keep {
        metrics::counter!("kontor_db_connections_dropped_total").increment(1);
    }
    Box::pin(std::future::ready(Ok(keep)))
}

/// How many times a read runs at most while its connection keeps being lost under it.
pub const READ_ATTEMPTS: u32 = 3;

/// How a database's `max_connections` is shared between its `Any` pool (writes, and the reads
/// not typed yet) and its typed read pool (`reads.rs`): a cell gives half to each (the `Any`
/// pool the odd one), so the database never sees more connections than configured; a cell of
/// one connection, a control or a key database keeps them all on the `Any` pool.
fn split_connections(role: DatabaseRole, max_connections: u32) -> (u32, u32) {
    match role {
        DatabaseRole::Cell if max_connections >= 2 => {
            let reads = max_connections / 2;
            (max_connections - reads, reads)
        }
        _ => (max_connections, 0),
    }
}

/// The settings every pool of a database shares, whichever its driver: size, timeouts, the
/// check before a connection is handed out and the one when it comes back (see `Losses`).
fn pool_options<DB: sqlx::Database>(
    options: PoolOptions<DB>,
    size: u32,
    settings: &PoolSettings,
    losses: &Arc<Losses>,
) -> PoolOptions<DB> {
    let (on_acquire, on_release) = (losses.clone(), losses.clone());
    let ping_after = settings.ping_after_idle;
    options
        .max_connections(size)
        .acquire_timeout(settings.acquire_timeout)
        // Pinged in `check_before_use` instead, only after a rest.
        .test_before_acquire(false)
        .before_acquire(move |conn, meta| check_before_use(&on_acquire, ping_after, conn, &meta))
        .after_release(move |_, meta| keep_connection(&on_release, &meta))
        .max_lifetime(settings.max_lifetime)
}

impl SqlDatabase {
    /// Opens a pool for `url` without connecting yet: a database that is down at start shows up
    /// in `/readyz` instead of keeping the process from starting.
    pub fn open(url: &str, role: DatabaseRole, settings: &PoolSettings) -> StoreResult<Self> {
        sqlx::any::install_default_drivers();
        let dialect = Dialect::of_url(url).ok_or_else(|| StoreError::Other {
            source: "unsupported database URL: expected postgres:// or sqlite:".into(),
        })?;
        let url = match dialect {
            Dialect::Postgres => url.to_owned(),
            Dialect::Sqlite => crate::backend::sqlite::prepare_url(url)
                .map_err(|msg| StoreError::Other { source: msg.into() })?,
        };
        let losses = Arc::new(Losses::new());
        let (any_connections, read_connections) = split_connections(role, settings.max_connections);
        let options = pool_options(AnyPoolOptions::new(), any_connections, settings, &losses);
        let options = match dialect {
            Dialect::Postgres => crate::backend::postgres::configure(options),
            Dialect::Sqlite => {
                crate::backend::sqlite::configure(options, settings.sqlite_busy_timeout)
            }
        };
        let pool = options
            .connect_lazy(&url)
            .map_err(|e| classify(dialect, e))?;
        let reads = match (read_connections, dialect) {
            (0, _) => ReadPool::Shared,
            (size, Dialect::Postgres) => {
                let options = sqlx::postgres::PgConnectOptions::from_str(&url)
                    .map_err(|e| classify(dialect, e))?;
                let suspect = losses.clone();
                ReadPool::Postgres(Arc::new(crate::conns::ConnPool::new(
                    options,
                    size,
                    crate::conns::Checks {
                        acquire_timeout: settings.acquire_timeout,
                        ping_after_idle: settings.ping_after_idle,
                        max_lifetime: settings.max_lifetime,
                        suspect: Box::new(move |age| suspect.is_suspect(age)),
                    },
                )))
            }
            (size, Dialect::Sqlite) => ReadPool::Sqlite(
                crate::backend::sqlite::configure_typed(
                    pool_options(PoolOptions::new(), size, settings, &losses),
                    settings.sqlite_busy_timeout,
                )
                .connect_lazy(&url)
                .map_err(|e| classify(dialect, e))?,
            ),
        };
        Ok(Self {
            pool,
            reads,
            dialect,
            role,
            retry: settings.retry.clone(),
            losses,
        })
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }

    /// Starts a write transaction at the backend's serializable level. Run it inside
    /// [`kontor_store::retry_serializable`] so conflicts are retried.
    pub async fn begin_write(&self) -> StoreResult<Transaction<'static, Any>> {
        self.pool
            .begin_with(self.dialect.begin_write())
            .await
            .map_err(|e| self.classify(e))
    }

    /// Runs a read on the pool: every read outside a write transaction goes through here. A read
    /// whose connection died under it (the server restarted or terminated its backend, the
    /// network dropped it) runs again, on a connection the pool has just pinged — or a new one.
    /// When the server ends every connection at once (a restart, a failover) the pinged one may
    /// be ended a moment later too, so a read is run up to [`READ_ATTEMPTS`] times while it
    /// keeps losing its connection, and never again after any other outcome. Reads change
    /// nothing, so running one again is safe; writes are never retried this way.
    pub async fn read<'p, T, F, Fut>(&'p self, run: F) -> StoreResult<T>
    where
        F: Fn(&'p AnyPool) -> Fut,
        Fut: Future<Output = Result<T, sqlx::Error>>,
    {
        self.retry_read(|| run(&self.pool)).await
    }

    /// The typed pool's reads, when this database has one (`reads.rs`).
    pub(crate) fn read_pool(&self) -> &ReadPool {
        &self.reads
    }

    /// [`SqlDatabase::read`] for a read on any of this database's pools.
    pub(crate) async fn retry_read<T, F, Fut>(&self, run: F) -> StoreResult<T>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, sqlx::Error>>,
    {
        let mut attempt = 1;
        loop {
            match run().await {
                Err(err) if attempt < READ_ATTEMPTS && self.dialect.is_connection_lost(&err) => {
                    // The next attempt must not be handed another connection of the same
                    // generation: without a ping before each use it would be dead too.
                    self.losses.record();
                    tracing::warn!(error = %err, attempt, "a read lost its database connection; running it again");
                    metrics::counter!("kontor_db_read_retries_total").increment(1);
                    attempt += 1;
                }
                other => return other.map_err(|e| self.classify(e)),
            }
        }
    }

    /// Lifts a driver error into the store's vocabulary. A lost connection also marks every
    /// connection opened before now for closing (see `Losses`).
    pub fn classify(&self, err: sqlx::Error) -> StoreError {
        let classified = classify(self.dialect, err);
        if classified.is_connection_lost() {
            self.losses.record();
        }
        classified
    }

    /// Commits a write transaction. A connection lost *during* COMMIT leaves the outcome
    /// unknown — the server may have committed before it went away — so this is not retried:
    /// it surfaces as [`StoreError::Unavailable`] (a 503 the client may retry with its
    /// Idempotency-Key). Operations that are safe to run twice use [`Self::commit_idempotent`].
    pub async fn commit(&self, tx: Transaction<'static, Any>) -> StoreResult<()> {
        match tx.commit().await.map_err(|e| self.classify(e)) {
            Err(StoreError::ConnectionLost { source }) => {
                metrics::counter!("kontor_db_commit_outcome_unknown_total").increment(1);
                Err(StoreError::Unavailable { source })
            }
            other => other,
        }
    }

    /// Commits a transaction whose effect is the same when it runs twice (it sets a state
    /// rather than adding to one): a connection lost during COMMIT is left to the retry helper
    /// like any loss before it.
    pub async fn commit_idempotent(&self, tx: Transaction<'static, Any>) -> StoreResult<()> {
        tx.commit().await.map_err(|e| self.classify(e))
    }

    pub async fn close(&self) {
        self.pool.close().await;
        self.reads.close().await;
    }
}

pub(crate) fn classify(dialect: Dialect, err: sqlx::Error) -> StoreError {
    if dialect.is_lost_before_commit(&err) {
        return StoreError::ConnectionLost {
            source: Box::new(err),
        };
    }
    if let sqlx::Error::Database(db) = &err {
        if dialect.is_retryable(db.as_ref()) {
            return StoreError::SerializationFailure {
                source: Box::new(err),
            };
        }
        if dialect.is_unavailable(db.as_ref()) {
            return StoreError::Unavailable {
                source: Box::new(err),
            };
        }
        if db.is_unique_violation() {
            let constraint = db.constraint().unwrap_or("unique").to_owned();
            return StoreError::Conflict { constraint };
        }
    }
    match err {
        sqlx::Error::RowNotFound => StoreError::NotFound,
        sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => StoreError::Unavailable {
            source: Box::new(err),
        },
        other => StoreError::Other {
            source: Box::new(other),
        },
    }
}

/// Reads a column, calling a failure to decode what it is: corrupt data, not a driver fault.
pub(crate) fn column<T>(row: &AnyRow, name: &str) -> StoreResult<T>
where
    T: for<'r> sqlx::Decode<'r, Any> + sqlx::Type<Any>,
{
    row.try_get(name)
        .map_err(|e| StoreError::corrupt(format!("column {name}: {e}")))
}

#[async_trait]
impl Schema for SqlDatabase {
    fn backend(&self) -> &'static str {
        self.dialect.name()
    }

    fn role(&self) -> DatabaseRole {
        self.role
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(|e| self.classify(e))
    }

    async fn migration_status(&self) -> StoreResult<MigrationStatus> {
        let migrator = self.dialect.migrator(self.role);
        let known = migrator.iter().map(|m| m.version).collect();
        let exists: i64 = sqlx::query_scalar(self.dialect.migrations_table_exists())
            .fetch_one(&self.pool)
            .await
            .map_err(|e| self.classify(e))?;
        let applied = if exists > 0 {
            sqlx::query_scalar(
                "SELECT version FROM _sqlx_migrations WHERE success ORDER BY version",
            )
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.classify(e))?
        } else {
            Vec::new()
        };
        Ok(MigrationStatus { known, applied })
    }

    fn migration_description(&self, version: i64) -> Option<String> {
        self.dialect
            .migrator(self.role)
            .iter()
            .find(|m| m.version == version)
            .map(|m| m.description.to_string())
    }

    /// Applies pending migrations while holding the migration lease, so that processes
    /// starting at once migrate one after the other: the first applies them, the others find
    /// nothing left to do. Nothing pending means no lease is taken at all.
    async fn migrate(&self) -> StoreResult<Vec<i64>> {
        if self.migration_status().await?.is_current() {
            return Ok(Vec::new());
        }
        let lease = MigrationLease::acquire(self).await?;
        let result = self.migrate_holding_lease().await;
        lease.release().await;
        result
    }
}

impl SqlDatabase {
    /// Applies what is pending: through sqlx, except migrations marked `-- no-transaction`,
    /// which run statement by statement (`stepwise.rs`) after everything before them.
    async fn migrate_holding_lease(&self) -> StoreResult<Vec<i64>> {
        let before = self.migration_status().await?;
        let embedded = self.dialect.migrator(self.role);
        let all = &embedded.migrations[..];
        for (at, migration) in all.iter().enumerate() {
            if migration.no_tx && !before.applied.contains(&migration.version) {
                self.run_sqlx(embedded, &all[..at]).await?;
                crate::stepwise::apply(self, migration).await?;
            }
        }
        self.run_sqlx(embedded, all).await?;
        Ok(before.pending())
    }

    async fn run_sqlx(
        &self,
        embedded: &Migrator,
        migrations: &[sqlx::migrate::Migration],
    ) -> StoreResult<()> {
        // The lease serialises migrating processes; sqlx's own lock (an advisory lock on
        // PostgreSQL) is not portable and not needed under it.
        let migrator = Migrator {
            migrations: Cow::Owned(migrations.to_vec()),
            // A run of the migrations before a non-transactional one sees it applied later.
            ignore_missing: true,
            locking: false,
            no_tx: embedded.no_tx,
            table_name: embedded.table_name.clone(),
            create_schemas: embedded.create_schemas.clone(),
        };
        migrator.run(&self.pool).await.map_err(|e| match e {
            sqlx::migrate::MigrateError::Execute(inner) => self.classify(inner),
            other => StoreError::Other {
                source: Box::new(other),
            },
        })
    }
}

/// Dates are stored as `YYYY-MM-DD` text, which sorts and compares correctly everywhere.
pub(crate) fn date_text(date: time::Date) -> String {
    let (year, month, day) = (date.year(), u8::from(date.month()), date.day());
    format!("{year:04}-{month:02}-{day:02}")
}

pub(crate) fn parse_date(raw: &str) -> StoreResult<time::Date> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(raw, format).map_err(|e| StoreError::corrupt(format!("date {raw:?}: {e}")))
}

pub(crate) fn optional_date(row: &impl Columns, name: &str) -> StoreResult<Option<time::Date>> {
    row.opt_text(name)?.map(parse_date).transpose()
}

pub(crate) fn optional_timestamp(
    row: &impl Columns,
    name: &str,
) -> StoreResult<Option<kontor_domain::time::Timestamp>> {
    Ok(row
        .opt_int(name)?
        .map(kontor_domain::time::Timestamp::from_unix_micros))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cells_two_pools_share_its_connections_and_other_databases_keep_one() {
        for max in 1..=64 {
            let (any, reads) = split_connections(DatabaseRole::Cell, max);
            assert_eq!(any + reads, max, "{max}");
            assert!(any >= 1, "{max}");
            assert_eq!(reads == 0, max == 1, "{max}");
            for role in [DatabaseRole::Control, DatabaseRole::Keys] {
                assert_eq!(split_connections(role, max), (max, 0));
            }
        }
        assert_eq!(split_connections(DatabaseRole::Cell, 10), (5, 5));
    }
}
