//! Diff passes: a subject's rows in the source compared with the target by primary key and row
//! hash, changed and new rows upserted into the target, rows gone at the source deleted from it.
//! The copy is the first pass (the target holds nothing yet); catching up is more passes while
//! the source keeps changing; the final pass runs under the freeze, reading the source in one
//! snapshot (see [`final_pass`]).

use std::collections::HashMap;

use sqlx::AnyConnection;
use sqlx::any::AnyRow;

use kontor_store::{StoreError, StoreResult};

use super::tables::{self, StoredRow, TABLES, Table, Value};
use super::{MoveError, Subject};
use crate::database::SqlDatabase;

/// At most this many bound values per statement (SQLite allows 32,766, PostgreSQL 65,535).
const MAX_PARAMS: usize = 3_000;

/// What a pass changed in the target.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PassStats {
    pub upserted: u64,
    pub deleted: u64,
    /// Rows the target refused this pass (a child read before its parent was copied, while the
    /// source kept changing); a later pass copies them.
    pub deferred: u64,
}

impl PassStats {
    pub fn changed(&self) -> u64 {
        self.upserted + self.deleted + self.deferred
    }
    fn add(&mut self, other: PassStats) {
        self.upserted += other.upserted;
        self.deleted += other.deleted;
        self.deferred += other.deferred;
    }
}

/// A table's rows by encoded key: their hash and key values.
pub(crate) type Hashes = HashMap<Vec<u8>, ([u8; 32], Vec<Value>)>;

/// One page of the subject's rows after `after`, on `conn`.
async fn page(
    conn: &mut AnyConnection,
    db: &SqlDatabase,
    table: &Table,
    subject: &Subject,
    after: Option<&[Value]>,
    limit: usize,
) -> StoreResult<Vec<StoredRow>> {
    let sql = tables::page_sql(table, subject.of_user(), after.is_some(), limit);
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(subject.id().to_owned());
    for value in after.unwrap_or_default() {
        query = tables::bind(query, value);
    }
    let rows: Vec<AnyRow> = query
        .fetch_all(&mut *conn)
        .await
        .map_err(|e| db.classify(e))?;
    rows.iter().map(StoredRow::from_any).collect()
}

/// Every row of the subject in `table`, page by page on `conn`, handed to `each`.
async fn scan(
    conn: &mut AnyConnection,
    db: &SqlDatabase,
    table: &Table,
    subject: &Subject,
    batch: usize,
    mut each: impl AsyncPage,
) -> Result<(), MoveError> {
    let mut after: Option<Vec<Value>> = None;
    loop {
        let rows = page(conn, db, table, subject, after.as_deref(), batch).await?;
        let Some(last) = rows.last() else {
            return Ok(());
        };
        after = Some(last.key_values(table)?);
        let full = rows.len() == batch;
        each.page(rows).await?;
        if !full {
            return Ok(());
        }
    }
}

/// What [`scan`] does with each page (an async closure with a borrow, spelled out).
trait AsyncPage {
    fn page(
        &mut self,
        rows: Vec<StoredRow>,
    ) -> impl std::future::Future<Output = Result<(), MoveError>> + Send;
}

struct Collect<'a> {
    table: &'a Table,
    into: &'a mut Hashes,
}

impl AsyncPage for Collect<'_> {
    async fn page(&mut self, rows: Vec<StoredRow>) -> Result<(), MoveError> {
        for row in rows {
            let key = row.key(self.table)?;
            self.into
                .insert(key, (row.hash(), row.key_values(self.table)?));
        }
        Ok(())
    }
}

/// The hashes of the subject's rows of `table` in `db` (read on the pool).
pub(crate) async fn hashes(
    db: &SqlDatabase,
    table: &Table,
    subject: &Subject,
    batch: usize,
) -> Result<Hashes, MoveError> {
    let mut conn = db.pool().acquire().await.map_err(|e| db.classify(e))?;
    let mut out = Hashes::new();
    scan(
        &mut conn,
        db,
        table,
        subject,
        batch,
        Collect {
            table,
            into: &mut out,
        },
    )
    .await?;
    Ok(out)
}

/// Upserts `rows` of one table into `db`, in statements of at most [`MAX_PARAMS`] values. When
/// `lenient`, a statement the target refuses is retried row by row and a refused row is counted
/// as deferred instead of failing the pass.
pub(crate) async fn upsert(
    db: &SqlDatabase,
    table: &Table,
    rows: &[StoredRow],
    lenient: bool,
) -> Result<PassStats, MoveError> {
    let mut stats = PassStats::default();
    let Some(first) = rows.first() else {
        return Ok(stats);
    };
    let width = first.columns.len().max(1);
    let per_statement = (MAX_PARAMS / width).max(1);
    for chunk in rows.chunks(per_statement) {
        match write_chunk(db, table, chunk).await {
            Ok(()) => stats.upserted += chunk.len() as u64,
            Err(e) if lenient && chunk.len() > 1 => {
                tracing::debug!(table = table.name, error = %e, "batch refused; row by row");
                for row in chunk {
                    match write_chunk(db, table, std::slice::from_ref(row)).await {
                        Ok(()) => stats.upserted += 1,
                        Err(_) => stats.deferred += 1,
                    }
                }
            }
            Err(_) if lenient => stats.deferred += chunk.len() as u64,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(stats)
}

async fn write_chunk(db: &SqlDatabase, table: &Table, chunk: &[StoredRow]) -> StoreResult<()> {
    let Some(first) = chunk.first() else {
        return Ok(());
    };
    let columns: Vec<&str> = first.columns.iter().map(|(n, _)| n.as_str()).collect();
    for row in chunk {
        if row.columns.len() != columns.len()
            || row.columns.iter().zip(&columns).any(|((n, _), c)| n != c)
        {
            return Err(StoreError::corrupt(format!(
                "{}: rows of one table with different columns",
                table.name
            )));
        }
    }
    let sql = tables::upsert_sql(table, &columns, chunk.len());
    db.write_idempotent("move_upsert", |tx| {
        let sql = sql.clone();
        Box::pin(async move {
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for row in chunk {
                for (_, value) in &row.columns {
                    query = tables::bind(query, value);
                }
            }
            tx.execute(query).await?;
            Ok(())
        })
    })
    .await
}

/// Deletes rows by key from `db`, a few hundred a transaction.
pub(crate) async fn delete(
    db: &SqlDatabase,
    table: &Table,
    keys: &[Vec<Value>],
) -> Result<u64, MoveError> {
    let sql = tables::delete_sql(table);
    let mut deleted = 0;
    for chunk in keys.chunks(500) {
        deleted += db
            .write_idempotent("move_delete", |tx| {
                let sql = sql.clone();
                Box::pin(async move {
                    let mut n = 0;
                    for key in chunk {
                        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.clone()));
                        for value in key {
                            query = tables::bind(query, value);
                        }
                        n += tx.execute(query).await?;
                    }
                    Ok(n)
                })
            })
            .await?;
    }
    Ok(deleted)
}

struct Apply<'a> {
    target: &'a SqlDatabase,
    table: &'a Table,
    known: &'a mut Hashes,
    /// The source's rows seen: what the target holds after the pass unless a row was deferred.
    seen: Hashes,
    stats: PassStats,
    checkpoint: &'a (dyn Fn(&str) -> Result<(), MoveError> + Send + Sync),
}

impl AsyncPage for Apply<'_> {
    async fn page(&mut self, rows: Vec<StoredRow>) -> Result<(), MoveError> {
        let mut changed = Vec::new();
        for row in rows {
            let key = row.key(self.table)?;
            let hash = row.hash();
            self.seen
                .insert(key.clone(), (hash, row.key_values(self.table)?));
            match self.known.remove(&key) {
                Some((stored, _)) if stored == hash => {}
                _ => changed.push(row),
            }
        }
        let done = upsert(self.target, self.table, &changed, true).await?;
        self.stats.add(done);
        (self.checkpoint)(&format!("batch:{}", self.table.name))
    }
}

/// What the target holds of each table after a pass, where the pass knows it exactly (no row of
/// the table was deferred). Only the move writes the subject's rows in the target (the
/// `incoming` fence refuses everyone else), so the next pass may start from it instead of
/// reading the target again.
pub(crate) type TargetState = Vec<Option<Hashes>>;

/// One pass over every table while the source still changes: pages of the source read on its
/// pool, each page's changed rows upserted into the target at once, and after each table the
/// rows gone at the source deleted from the target. Safe to run any number of times.
pub(crate) async fn pass(
    source: &SqlDatabase,
    target: &SqlDatabase,
    subject: &Subject,
    batch: usize,
    state: &mut TargetState,
    checkpoint: &(dyn Fn(&str) -> Result<(), MoveError> + Send + Sync),
) -> Result<PassStats, MoveError> {
    let mut total = PassStats::default();
    state.resize_with(TABLES.len(), || None);
    for (table, cached) in TABLES.iter().zip(state.iter_mut()) {
        let mut known = match cached.take() {
            Some(known) => known,
            None => hashes(target, table, subject, batch).await?,
        };
        let mut conn = source
            .pool()
            .acquire()
            .await
            .map_err(|e| source.classify(e))?;
        let mut apply = Apply {
            target,
            table,
            known: &mut known,
            seen: Hashes::new(),
            stats: PassStats::default(),
            checkpoint,
        };
        scan(&mut conn, source, table, subject, batch, &mut apply).await?;
        let (stats, seen) = (apply.stats, apply.seen);
        total.add(stats);
        let gone: Vec<Vec<Value>> = known.into_values().map(|(_, key)| key).collect();
        total.deleted += delete(target, table, &gone).await?;
        *cached = (stats.deferred == 0).then_some(seen);
    }
    Ok(total)
}

impl<T: AsyncPage + Send> AsyncPage for &mut T {
    async fn page(&mut self, rows: Vec<StoredRow>) -> Result<(), MoveError> {
        (**self).page(rows).await
    }
}

/// What the final pass found: per table the source's row hashes (for verification) and the
/// changes the target needs.
pub(crate) struct FinalDiff {
    pub source: Vec<Hashes>,
    upserts: Vec<Vec<StoredRow>>,
    deletes: Vec<Vec<Vec<Value>>>,
}

struct Diff<'a> {
    table: &'a Table,
    known: &'a mut Hashes,
    source: &'a mut Hashes,
    upserts: &'a mut Vec<StoredRow>,
}

impl AsyncPage for Diff<'_> {
    async fn page(&mut self, rows: Vec<StoredRow>) -> Result<(), MoveError> {
        for row in rows {
            let key = row.key(self.table)?;
            let hash = row.hash();
            match self.known.remove(&key) {
                Some((stored, _)) if stored == hash => {}
                _ => self.upserts.push(row),
            }
            // The source's side is only hashed for verification: no key values kept.
            self.source.insert(key, (hash, Vec::new()));
        }
        Ok(())
    }
}

/// Reads the frozen subject in ONE snapshot of the source that also reads the move's fence, and
/// diffs it against the target.
///
/// Why this is sound on PostgreSQL (SERIALIZABLE, i.e. SSI): every write transaction of a subject
/// reads `move_fences` (`cell::fences`). Take a writer W that read "no fence" and so began its
/// writes before the fence F committed. W read what F wrote: W →rw F. This pass D reads the fence
/// (it must see it, or it fails) and so began after F committed, and it reads the subject's rows.
/// If W commits after D's snapshot, D did not see W's writes: D →rw W. Then W is the pivot of
/// D →rw W →rw F with F committed first, the structure SSI refuses: W (or D) is aborted. So a
/// write either committed before D's snapshot (and D copies it) or never commits. D runs
/// READ ONLY: PostgreSQL may abort it instead, in which case the pass runs again.
/// `postgres::moves::a_writer_that_began_before_the_fence_is_not_lost` proves it.
///
/// On SQLite every write transaction holds the single write lock from its `BEGIN IMMEDIATE`
/// and reads the fence under it, so none commits after the fence without having seen it; the
/// snapshot (a deferred `BEGIN` in WAL mode) only makes the pass one consistent read.
pub(crate) async fn final_diff(
    source: &SqlDatabase,
    target: &SqlDatabase,
    subject: &Subject,
    move_id: &str,
    batch: usize,
    mut state: TargetState,
) -> Result<FinalDiff, MoveError> {
    state.resize_with(TABLES.len(), || None);
    let mut known = Vec::new();
    for (table, cached) in TABLES.iter().zip(state) {
        known.push(match cached {
            Some(cached) => cached,
            None => hashes(target, table, subject, batch).await?,
        });
    }
    let mut tx = source
        .pool()
        .begin_with(source.dialect().begin_snapshot())
        .await
        .map_err(|e| source.classify(e))?;
    let fence: Option<String> =
        sqlx::query_scalar("SELECT state FROM move_fences WHERE move_id = $1")
            .bind(move_id.to_owned())
            .fetch_optional(&mut *tx)
            .await
            .map_err(|e| source.classify(e))?;
    if fence.as_deref() != Some(super::FENCE_OUTGOING) {
        return Err(MoveError::Store(StoreError::state_refused(
            "the source's fence is not in place",
        )));
    }
    let mut diff = FinalDiff {
        source: Vec::new(),
        upserts: Vec::new(),
        deletes: Vec::new(),
    };
    for (table, known) in TABLES.iter().zip(known.iter_mut()) {
        let mut source_rows = Hashes::new();
        let mut upserts = Vec::new();
        scan(
            &mut tx,
            source,
            table,
            subject,
            batch,
            Diff {
                table,
                known,
                source: &mut source_rows,
                upserts: &mut upserts,
            },
        )
        .await?;
        diff.source.push(source_rows);
        diff.upserts.push(upserts);
    }
    source.commit(tx).await?;
    for known in known {
        diff.deletes
            .push(known.into_values().map(|(_, key)| key).collect());
    }
    Ok(diff)
}

impl FinalDiff {
    /// Applies the diff to the target: deletions children first, then upserts parents first.
    pub(crate) async fn apply(&self, target: &SqlDatabase) -> Result<PassStats, MoveError> {
        let mut stats = PassStats::default();
        for (table, keys) in TABLES.iter().zip(&self.deletes).rev() {
            stats.deleted += delete(target, table, keys).await?;
        }
        for (table, rows) in TABLES.iter().zip(&self.upserts) {
            stats.add(upsert(target, table, rows, false).await?);
        }
        Ok(stats)
    }
}

/// The keys of the first `limit` rows of the subject in `table` (cleanup deletes page by page).
pub(crate) async fn hashes_page(
    db: &SqlDatabase,
    table: &Table,
    subject: &Subject,
    limit: usize,
) -> Result<Vec<Vec<Value>>, MoveError> {
    let mut conn = db.pool().acquire().await.map_err(|e| db.classify(e))?;
    let rows = page(&mut conn, db, table, subject, None, limit).await?;
    rows.iter()
        .map(|row| row.key_values(table).map_err(MoveError::from))
        .collect()
}
