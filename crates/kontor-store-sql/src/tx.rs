//! The one way SQL runs against a database: writes through [`SqlDatabase::write`] (begin, retry,
//! commit), reads through the fetch helpers on [`SqlDatabase`] (retried when their connection
//! died), and every driver error classified once, here, into the store's vocabulary.

use std::future::Future;
use std::pin::Pin;

use kontor_store::{StoreError, StoreResult, retry_serializable};
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::query::{Query, QueryScalar};
use sqlx::{Any, FromRow, Transaction};

use crate::database::SqlDatabase;

/// A statement answering rows.
pub(crate) type Sql<'q> = Query<'q, Any, AnyArguments>;
/// A statement answering one column.
pub(crate) type Scalar<'q, O> = QueryScalar<'q, Any, O, AnyArguments>;

/// The future a transaction's body returns; `Box::pin(async move { … })` makes one.
pub(crate) type Body<'t, T> = Pin<Box<dyn Future<Output = StoreResult<T>> + Send + 't>>;

/// How a write transaction begins and commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Serializable; a connection lost during COMMIT leaves the outcome unknown and surfaces as
    /// unavailable (see [`SqlDatabase::commit`]).
    Write,
    /// Serializable, and safe to run twice: a connection lost during COMMIT is retried like any
    /// loss before it.
    Idempotent,
    /// A queue's own transaction (claiming rows, recording what became of one): READ COMMITTED on
    /// PostgreSQL, made safe by row locks rather than serializability.
    Queue,
}

/// An open write transaction on one database. Every statement run through it has its errors
/// classified; [`SqlDatabase::write`] begins and commits it.
pub(crate) struct Tx<'d> {
    db: &'d SqlDatabase,
    tx: Transaction<'static, Any>,
}

impl<'d> Tx<'d> {
    /// The backend this transaction runs on.
    pub(crate) fn dialect(&self) -> crate::dialect::Dialect {
        self.db.dialect()
    }

    /// Runs a statement; how many rows it changed.
    pub(crate) async fn execute(&mut self, query: Sql<'_>) -> StoreResult<u64> {
        let done = query.execute(&mut *self.tx).await.classified(self.db)?;
        Ok(done.rows_affected())
    }

    /// The one row a statement answers; [`StoreError::NotFound`] when it answers none.
    pub(crate) async fn fetch_one(&mut self, query: Sql<'_>) -> StoreResult<AnyRow> {
        self.fetch_optional(query)
            .await?
            .ok_or(StoreError::NotFound)
    }

    pub(crate) async fn fetch_optional(&mut self, query: Sql<'_>) -> StoreResult<Option<AnyRow>> {
        query
            .fetch_optional(&mut *self.tx)
            .await
            .classified(self.db)
    }

    pub(crate) async fn fetch_all(&mut self, query: Sql<'_>) -> StoreResult<Vec<AnyRow>> {
        query.fetch_all(&mut *self.tx).await.classified(self.db)
    }

    /// The one value a statement answers; [`StoreError::NotFound`] when it answers no row.
    pub(crate) async fn scalar<O>(&mut self, query: Scalar<'_, O>) -> StoreResult<O>
    where
        O: Send + Unpin,
        (O,): Send + Unpin + for<'r> FromRow<'r, AnyRow>,
    {
        query.fetch_one(&mut *self.tx).await.classified(self.db)
    }

    pub(crate) async fn optional_scalar<O>(
        &mut self,
        query: Scalar<'_, O>,
    ) -> StoreResult<Option<O>>
    where
        O: Send + Unpin,
        (O,): Send + Unpin + for<'r> FromRow<'r, AnyRow>,
    {
        query
            .fetch_optional(&mut *self.tx)
            .await
            .classified(self.db)
    }

    pub(crate) async fn scalars<O>(&mut self, query: Scalar<'_, O>) -> StoreResult<Vec<O>>
    where
        O: Send + Unpin,
        (O,): Send + Unpin + for<'r> FromRow<'r, AnyRow>,
    {
        query.fetch_all(&mut *self.tx).await.classified(self.db)
    }

    /// The one row a statement answers, decoded; [`StoreError::NotFound`] when it answers none.
    pub(crate) async fn row<T>(
        &mut self,
        query: Sql<'_>,
        decode: impl FnOnce(&AnyRow) -> StoreResult<T>,
    ) -> StoreResult<T> {
        decode(&self.fetch_one(query).await?)
    }
}

/// Classifies a driver result by the database it came from.
pub(crate) trait Classify<T> {
    fn classified(self, db: &SqlDatabase) -> StoreResult<T>;
}

impl<T> Classify<T> for Result<T, sqlx::Error> {
    fn classified(self, db: &SqlDatabase) -> StoreResult<T> {
        self.map_err(|e| db.classify(e))
    }
}

impl SqlDatabase {
    /// Runs `body` in a serializable write transaction: begins it, commits it when `body`
    /// succeeds, and runs the whole of it again after a serialization failure or a connection
    /// lost before COMMIT (see [`kontor_store::retry_serializable`]). `body` must do nothing but
    /// SQL on the transaction: it may run more than once, and nothing from a failed run is kept.
    pub(crate) async fn write<'d, T, F>(&'d self, op: &'static str, body: F) -> StoreResult<T>
    where
        F: for<'t> Fn(&'t mut Tx<'d>) -> Body<'t, T>,
    {
        self.transaction(Mode::Write, op, body).await
    }

    /// [`SqlDatabase::write`] for a transaction whose effect is the same when it runs twice.
    pub(crate) async fn write_idempotent<'d, T, F>(
        &'d self,
        op: &'static str,
        body: F,
    ) -> StoreResult<T>
    where
        F: for<'t> Fn(&'t mut Tx<'d>) -> Body<'t, T>,
    {
        self.transaction(Mode::Idempotent, op, body).await
    }

    /// Runs `body` in a transaction of the given mode, retried as [`SqlDatabase::write`] says.
    pub(crate) async fn transaction<'d, T, F>(
        &'d self,
        mode: Mode,
        op: &'static str,
        body: F,
    ) -> StoreResult<T>
    where
        F: for<'t> Fn(&'t mut Tx<'d>) -> Body<'t, T>,
    {
        let body = &body;
        retry_serializable(self.retry_policy(), op, move |_| async move {
            let begin = match mode {
                Mode::Write | Mode::Idempotent => self.dialect().begin_write(),
                Mode::Queue => self.dialect().begin_queue(),
            };
            let tx = self.pool().begin_with(begin).await.classified(self)?;
            let mut tx = Tx { db: self, tx };
            let value = body(&mut tx).await?;
            match mode {
                Mode::Idempotent => self.commit_idempotent(tx.tx).await?,
                Mode::Write | Mode::Queue => self.commit(tx.tx).await?,
            }
            Ok(value)
        })
        .await
    }

    /// The one row a read answers; [`StoreError::NotFound`] when it answers none. `query`
    /// builds the statement, again for each attempt (see [`SqlDatabase::read`]).
    pub(crate) async fn fetch_one<'q>(&self, query: impl Fn() -> Sql<'q>) -> StoreResult<AnyRow> {
        self.fetch_optional(query)
            .await?
            .ok_or(StoreError::NotFound)
    }

    pub(crate) async fn fetch_optional<'q>(
        &self,
        query: impl Fn() -> Sql<'q>,
    ) -> StoreResult<Option<AnyRow>> {
        self.read(|pool| query().fetch_optional(pool)).await
    }

    pub(crate) async fn fetch_all<'q>(
        &self,
        query: impl Fn() -> Sql<'q>,
    ) -> StoreResult<Vec<AnyRow>> {
        self.read(|pool| query().fetch_all(pool)).await
    }

    /// The one value a read answers; [`StoreError::NotFound`] when it answers no row.
    pub(crate) async fn scalar<'q, O>(&self, query: impl Fn() -> Scalar<'q, O>) -> StoreResult<O>
    where
        O: Send + Unpin,
        (O,): Send + Unpin + for<'r> FromRow<'r, AnyRow>,
    {
        self.read(|pool| query().fetch_one(pool)).await
    }

    pub(crate) async fn optional_scalar<'q, O>(
        &self,
        query: impl Fn() -> Scalar<'q, O>,
    ) -> StoreResult<Option<O>>
    where
        O: Send + Unpin,
        (O,): Send + Unpin + for<'r> FromRow<'r, AnyRow>,
    {
        self.read(|pool| query().fetch_optional(pool)).await
    }

    pub(crate) async fn scalars<'q, O>(
        &self,
        query: impl Fn() -> Scalar<'q, O>,
    ) -> StoreResult<Vec<O>>
    where
        O: Send + Unpin,
        (O,): Send + Unpin + for<'r> FromRow<'r, AnyRow>,
    {
        self.read(|pool| query().fetch_all(pool)).await
    }

    /// The one row a read answers, decoded; [`StoreError::NotFound`] when it answers none.
    pub(crate) async fn row<'q, T>(
        &self,
        query: impl Fn() -> Sql<'q>,
        decode: impl FnOnce(&AnyRow) -> StoreResult<T>,
    ) -> StoreResult<T> {
        decode(&self.fetch_one(query).await?)
    }

    pub(crate) async fn rows<'q, T>(
        &self,
        query: impl Fn() -> Sql<'q>,
        decode: impl FnMut(&AnyRow) -> StoreResult<T>,
    ) -> StoreResult<Vec<T>> {
        self.fetch_all(query).await?.iter().map(decode).collect()
    }
}
