//! One database (the control database or a cell): its pool, its dialect, and the two ways work
//! reaches it — reads on the pool ([`SqlDatabase::read`], retried once when their connection
//! died), and write transactions through the retry helper.

use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use kontor_store::{DatabaseRole, MigrationStatus, RetryPolicy, Schema, StoreError, StoreResult};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{Any, AnyPool, Row, Transaction};

use crate::dialect::Dialect;

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
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_connections: 10,
            acquire_timeout: Duration::from_secs(5),
            sqlite_busy_timeout: Duration::from_secs(5),
            retry: RetryPolicy::default(),
            max_lifetime: Some(Duration::from_secs(30 * 60)),
        }
    }
}

#[derive(Debug, Clone)]
pub struct SqlDatabase {
    pool: AnyPool,
    dialect: Dialect,
    role: DatabaseRole,
    retry: RetryPolicy,
}

/// How many times a read runs at most while its connection keeps being lost under it.
pub const READ_ATTEMPTS: u32 = 3;

impl SqlDatabase {
    /// Opens a pool for `url` without connecting yet: a database that is down at start shows up
    /// in `/readyz` instead of keeping the process from starting.
    pub fn open(url: &str, role: DatabaseRole, settings: &PoolSettings) -> StoreResult<Self> {
        sqlx::any::install_default_drivers();
        let dialect = Dialect::of_url(url).ok_or_else(|| StoreError::Other {
            source: "unsupported database URL: expected postgres:// or sqlite:".into(),
        })?;
        let options = AnyPoolOptions::new()
            .max_connections(settings.max_connections)
            .acquire_timeout(settings.acquire_timeout)
            .max_lifetime(settings.max_lifetime);
        let (options, url) = match dialect {
            Dialect::Postgres => (kontor_store_postgres::configure(options), url.to_owned()),
            Dialect::Sqlite => {
                let url = kontor_store_sqlite::prepare_url(url)
                    .map_err(|msg| StoreError::Other { source: msg.into() })?;
                (
                    kontor_store_sqlite::configure(options, settings.sqlite_busy_timeout),
                    url,
                )
            }
        };
        let pool = options
            .connect_lazy(&url)
            .map_err(|e| classify(dialect, e))?;
        Ok(Self {
            pool,
            dialect,
            role,
            retry: settings.retry.clone(),
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
        let mut attempt = 1;
        loop {
            match run(&self.pool).await {
                Err(err) if attempt < READ_ATTEMPTS && self.dialect.is_connection_lost(&err) => {
                    tracing::warn!(error = %err, attempt, "a read lost its database connection; running it again");
                    metrics::counter!("kontor_db_read_retries_total").increment(1);
                    attempt += 1;
                }
                other => return other.map_err(|e| self.classify(e)),
            }
        }
    }

    /// Lifts a driver error into the store's vocabulary.
    pub fn classify(&self, err: sqlx::Error) -> StoreError {
        classify(self.dialect, err)
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

pub(crate) fn classify(dialect: Dialect, err: sqlx::Error) -> StoreError {
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
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
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

    async fn migrate(&self) -> StoreResult<Vec<i64>> {
        let before = self.migration_status().await?;
        let migrator = self.dialect.migrator(self.role);
        migrator.run(&self.pool).await.map_err(|e| match e {
            sqlx::migrate::MigrateError::Execute(inner) => self.classify(inner),
            other => StoreError::Other {
                source: Box::new(other),
            },
        })?;
        Ok(before.pending())
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

pub(crate) fn optional_date(row: &AnyRow, name: &str) -> StoreResult<Option<time::Date>> {
    column::<Option<String>>(row, name)?
        .map(|raw| parse_date(&raw))
        .transpose()
}

pub(crate) fn optional_timestamp(
    row: &AnyRow,
    name: &str,
) -> StoreResult<Option<kontor_domain::time::Timestamp>> {
    Ok(column::<Option<i64>>(row, name)?.map(kontor_domain::time::Timestamp::from_unix_micros))
}
