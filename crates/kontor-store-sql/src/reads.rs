//! The typed read path: the reads the API serves most (a page of transactions, an account, its
//! balances, a user) run on a pool of the backend's own driver — PostgreSQL connections in the
//! store's own pool (`conns.rs`: no ping after each statement), or a `SqlitePool` — and
//! decode each `PgRow` / `SqliteRow` straight into the store's row types, borrowing its text.
//! The `Any` driver copies every value of every row into an owned `AnyRow` first (one `String`
//! per text column, a vector of owned column names per row); on a page of 50 transactions that
//! copy, and freeing it, was the largest share of the hub's CPU after the allocator itself
//! (docs/BENCHMARKS.md, issue 12).
//!
//! The SQL is the same text on every backend (`$1`… placeholders, which sqlx's SQLite driver
//! accepts too), and a row decoder is written once, generic over [`Columns`]: [`decoder!`] makes
//! its PostgreSQL, SQLite and `Any` instances, so the typed path and the `Any` path can never
//! decode a row differently. A database without a typed pool (see [`ReadPool`]) runs the same
//! statement on its `Any` pool.

use std::sync::Arc;

use kontor_store::{StoreError, StoreResult};
use sqlx::any::AnyRow;
use sqlx::postgres::{PgConnection, PgRow};
use sqlx::sqlite::{SqlitePool, SqliteRow};
use sqlx::{AssertSqlSafe, Database, Encode, Row, Type};

use crate::conns::ConnPool;
use crate::database::SqlDatabase;

/// Where a database's typed reads run.
#[derive(Debug, Clone)]
pub(crate) enum ReadPool {
    Postgres(Arc<ConnPool<PgConnection>>),
    Sqlite(SqlitePool),
    /// No pool of its own: the database's `Any` pool (a control or key database, whose reads
    /// are not on the hot path, or a pool too small to split).
    Shared,
}

impl ReadPool {
    pub(crate) async fn close(&self) {
        match self {
            ReadPool::Postgres(pool) => pool.close().await,
            ReadPool::Sqlite(pool) => pool.close().await,
            ReadPool::Shared => {}
        }
    }
}

/// How a row is read, column by name, on any backend. Text is borrowed from the row.
pub(crate) trait Columns {
    fn text(&self, name: &str) -> StoreResult<&str>;
    fn opt_text(&self, name: &str) -> StoreResult<Option<&str>>;
    fn int(&self, name: &str) -> StoreResult<i64>;
    fn opt_int(&self, name: &str) -> StoreResult<Option<i64>>;
}

/// A column that did not decode: corrupt data, not a driver fault.
fn corrupt(name: &str, err: &sqlx::Error) -> StoreError {
    StoreError::corrupt(format!("column {name}: {err}"))
}

impl<R> Columns for R
where
    R: Row,
    for<'n> &'n str: sqlx::ColumnIndex<R>,
    for<'r> &'r str: sqlx::Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + Type<R::Database>,
{
    fn text(&self, name: &str) -> StoreResult<&str> {
        self.try_get(name).map_err(|e| corrupt(name, &e))
    }
    fn opt_text(&self, name: &str) -> StoreResult<Option<&str>> {
        self.try_get(name).map_err(|e| corrupt(name, &e))
    }
    fn int(&self, name: &str) -> StoreResult<i64> {
        self.try_get(name).map_err(|e| corrupt(name, &e))
    }
    fn opt_int(&self, name: &str) -> StoreResult<Option<i64>> {
        self.try_get(name).map_err(|e| corrupt(name, &e))
    }
}

/// One row decoder, instantiated for each backend's row type (see [`decoder!`]).
pub(crate) struct Decoder<T> {
    pub(crate) postgres: fn(&PgRow) -> StoreResult<T>,
    pub(crate) sqlite: fn(&SqliteRow) -> StoreResult<T>,
    pub(crate) any: fn(&AnyRow) -> StoreResult<T>,
}

/// The [`Decoder`] of a function generic over [`Columns`]: `decoder!(account_from_row)`.
macro_rules! decoder {
    ($decode:ident) => {
        crate::reads::Decoder {
            postgres: $decode::<sqlx::postgres::PgRow>,
            sqlite: $decode::<sqlx::sqlite::SqliteRow>,
            any: $decode::<sqlx::any::AnyRow>,
        }
    };
}
pub(crate) use decoder;

/// A statement's argument, borrowed.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Param<'a> {
    Text(&'a str),
    Int(i64),
    Null,
}

/// `sql` with `params` bound in order, for any backend.
fn bound<'q, DB>(sql: &str, params: &[Param<'_>]) -> sqlx::query::Query<'q, DB, DB::Arguments>
where
    DB: Database,
    for<'t> &'t str: Encode<'t, DB> + Type<DB>,
    for<'t> i64: Encode<'t, DB> + Type<DB>,
    for<'t> Option<&'t str>: Encode<'t, DB> + Type<DB>,
{
    let mut query = sqlx::query(AssertSqlSafe(sql));
    for param in params {
        query = match *param {
            Param::Text(value) => query.bind(value),
            Param::Int(value) => query.bind(value),
            Param::Null => query.bind(None::<&str>),
        };
    }
    query
}

/// Runs `read` on a connection of `pool`, and gives the connection back when the read finished
/// with the connection in a known state: an answer, or an error the server sent. Any other
/// error (the socket, TLS, the protocol) closes it.
async fn on_postgres<T>(
    pool: &ConnPool<PgConnection>,
    read: impl AsyncFnOnce(&mut PgConnection) -> Result<T, sqlx::Error>,
) -> Result<T, sqlx::Error> {
    let mut lease = pool.acquire().await?;
    let result = read(lease.conn()).await;
    if matches!(&result, Ok(_) | Err(sqlx::Error::Database(_))) {
        lease.release();
    }
    result
}

impl SqlDatabase {
    /// Every row a read answers, decoded straight from the backend's rows; retried like
    /// [`SqlDatabase::read`] when its connection died.
    pub(crate) async fn typed_rows<T>(
        &self,
        sql: &str,
        params: &[Param<'_>],
        decode: &Decoder<T>,
    ) -> StoreResult<Vec<T>> {
        match self.read_pool() {
            ReadPool::Postgres(pool) => self
                .retry_read(|| on_postgres(pool, async |c| bound(sql, params).fetch_all(c).await))
                .await?
                .iter()
                .map(decode.postgres)
                .collect(),
            ReadPool::Sqlite(pool) => self
                .retry_read(|| bound(sql, params).fetch_all(pool))
                .await?
                .iter()
                .map(decode.sqlite)
                .collect(),
            ReadPool::Shared => self
                .read(|pool| bound(sql, params).fetch_all(pool))
                .await?
                .iter()
                .map(decode.any)
                .collect(),
        }
    }

    /// The one row a read answers, decoded; [`StoreError::NotFound`] when it answers none.
    pub(crate) async fn typed_row<T>(
        &self,
        sql: &str,
        params: &[Param<'_>],
        decode: &Decoder<T>,
    ) -> StoreResult<T> {
        match self.read_pool() {
            ReadPool::Postgres(pool) => self
                .retry_read(|| {
                    on_postgres(pool, async |c| bound(sql, params).fetch_optional(c).await)
                })
                .await?
                .as_ref()
                .map(decode.postgres),
            ReadPool::Sqlite(pool) => self
                .retry_read(|| bound(sql, params).fetch_optional(pool))
                .await?
                .as_ref()
                .map(decode.sqlite),
            ReadPool::Shared => self
                .read(|pool| bound(sql, params).fetch_optional(pool))
                .await?
                .as_ref()
                .map(decode.any),
        }
        .unwrap_or(Err(StoreError::NotFound))
    }
}
