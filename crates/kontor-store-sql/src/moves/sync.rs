//! Diff passes: a subject's rows in the source compared with the target by primary key and row
//! hash, changed and new rows upserted into the target, rows gone at the source deleted from it.
//! The copy is the first pass (the target holds nothing yet); catching up is more passes while
//! the source keeps changing; the final pass runs under the freeze, reading the source in one
//! snapshot (see [`final_pass`]).

use std::collections::HashMap;

use sqlx::AnyConnection;
use sqlx::any::AnyRow;

use kontor_store::{StoreError, StoreResult};

use super::tables::{self, Shape, StoredRow, TABLES, Table, Value};
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

/// A table's rows as read from a cell: their hashes by encoded key ([`tables::decode_key`]
/// gives the key's values back).
pub(crate) type Hashes = HashMap<Vec<u8>, [u8; 32]>;

/// Read-back statements take at most this many keys.
const READ_BACK_KEYS: usize = 200;

/// A pass that wrote or deleted more rows of a table than this reads the whole table of the
/// target again at its next pass instead of reading those rows back by key.
const READ_BACK_LIMIT: usize = 5_000;

/// One page of the subject's rows after `after`, on `conn`.
async fn page(
    conn: &mut AnyConnection,
    db: &SqlDatabase,
    table: &Table,
    subject: &Subject,
    after: Option<&[Value]>,
    limit: usize,
) -> StoreResult<Vec<AnyRow>> {
    let sql = tables::page_sql(table, subject.of_user(), after.is_some(), limit);
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(subject.id().to_owned());
    for value in after.unwrap_or_default() {
        query = tables::bind(query, value);
    }
    query
        .fetch_all(&mut *conn)
        .await
        .map_err(|e| db.classify(e))
}

/// Every row of the subject in `table`, page by page on `conn`, handed to `each` with the
/// page's [`Shape`].
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
        let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
            return Ok(());
        };
        let shape = Shape::of(table, first)?;
        after = Some(tables::decode_key(table, &shape.key(last)?)?);
        let full = rows.len() == batch;
        each.page(&shape, rows).await?;
        if !full {
            return Ok(());
        }
    }
}

/// What [`scan`] does with each page (an async closure with a borrow, spelled out).
trait AsyncPage {
    fn page(
        &mut self,
        shape: &Shape,
        rows: Vec<AnyRow>,
    ) -> impl std::future::Future<Output = Result<(), MoveError>> + Send;
}

impl<T: AsyncPage + Send> AsyncPage for &mut T {
    async fn page(&mut self, shape: &Shape, rows: Vec<AnyRow>) -> Result<(), MoveError> {
        (**self).page(shape, rows).await
    }
}

struct Collect<'a> {
    into: &'a mut Hashes,
}

impl AsyncPage for Collect<'_> {
    async fn page(&mut self, shape: &Shape, rows: Vec<AnyRow>) -> Result<(), MoveError> {
        let mut buf = Vec::new();
        for row in &rows {
            self.into
                .insert(shape.key(row)?, shape.hash(row, &mut buf)?);
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
        Collect { into: &mut out },
    )
    .await?;
    Ok(out)
}

/// The subject's rows of `table` in `db` with one of these keys, read back (rows a pass wrote or
/// deleted): their hashes as `db` holds them now; a key without a row is absent.
pub(crate) async fn read_back(
    db: &SqlDatabase,
    table: &Table,
    subject: &Subject,
    keys: &[&[u8]],
) -> Result<Hashes, MoveError> {
    let mut out = Hashes::new();
    if keys.is_empty() {
        return Ok(out);
    }
    let mut conn = db.pool().acquire().await.map_err(|e| db.classify(e))?;
    let mut buf = Vec::new();
    for chunk in keys.chunks(READ_BACK_KEYS) {
        let sql = tables::by_keys_sql(table, subject.of_user(), chunk.len());
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(subject.id().to_owned());
        for key in chunk {
            for value in tables::decode_key(table, key)? {
                query = tables::bind(query, &value);
            }
        }
        let rows: Vec<AnyRow> = query
            .fetch_all(&mut *conn)
            .await
            .map_err(|e| db.classify(e))?;
        if let Some(first) = rows.first() {
            let shape = Shape::of(table, first)?;
            for row in &rows {
                out.insert(shape.key(row)?, shape.hash(row, &mut buf)?);
            }
        }
    }
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
    let width = first.values.len().max(1);
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
    let columns: Vec<&str> = first.names.iter().map(String::as_str).collect();
    for row in chunk {
        if row.values.len() != columns.len() || row.names != first.names {
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
                for value in &row.values {
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

/// Deletes rows by encoded key from `db`.
async fn delete_keys(db: &SqlDatabase, table: &Table, keys: &[Vec<u8>]) -> Result<u64, MoveError> {
    let keys = keys
        .iter()
        .map(|k| tables::decode_key(table, k))
        .collect::<StoreResult<Vec<_>>>()?;
    delete(db, table, &keys).await
}

/// A page of the source against what the target holds (`known`, as read from the target): a
/// row whose hash the target has is kept (moved from `known` into `kept`), any other is to be
/// written; what is left in `known` afterwards is gone at the source.
struct Compare<'a> {
    known: &'a mut Hashes,
    kept: Hashes,
    /// The rows to write and their encoded keys.
    changed: Vec<StoredRow>,
    written: Vec<Vec<u8>>,
    /// The source's row hashes (the final pass keeps them for the verification).
    source: Option<Vec<[u8; 32]>>,
    buf: Vec<u8>,
}

impl<'a> Compare<'a> {
    fn new(known: &'a mut Hashes, keep_source: bool) -> Self {
        Self {
            kept: Hashes::with_capacity(known.len()),
            known,
            changed: Vec::new(),
            written: Vec::new(),
            source: keep_source.then(Vec::new),
            buf: Vec::new(),
        }
    }

    fn compare(&mut self, shape: &Shape, rows: &[AnyRow]) -> Result<(), MoveError> {
        for row in rows {
            let key = shape.key(row)?;
            let hash = shape.hash(row, &mut self.buf)?;
            if let Some(source) = &mut self.source {
                source.push(hash);
            }
            match self.known.remove_entry(&key) {
                Some((key, stored)) if stored == hash => {
                    self.kept.insert(key, stored);
                }
                _ => {
                    self.changed.push(shape.owned(row)?);
                    self.written.push(key);
                }
            }
        }
        Ok(())
    }
}

struct Apply<'a> {
    target: &'a SqlDatabase,
    table: &'a Table,
    compare: Compare<'a>,
    stats: PassStats,
    checkpoint: &'a (dyn Fn(&str) -> Result<(), MoveError> + Send + Sync),
}

impl AsyncPage for Apply<'_> {
    async fn page(&mut self, shape: &Shape, rows: Vec<AnyRow>) -> Result<(), MoveError> {
        self.compare.compare(shape, &rows)?;
        let changed = std::mem::take(&mut self.compare.changed);
        let done = upsert(self.target, self.table, &changed, true).await?;
        self.stats.add(done);
        (self.checkpoint)(&format!("batch:{}", self.table.name))
    }
}

/// What the target holds of each table, **as read from the target**: the hashes of a full read,
/// with every row a pass wrote or deleted since read back by key. Only the move writes the
/// subject's rows in the target (the `incoming` fence refuses everyone else), so the next pass
/// may start from it instead of reading the whole target again; `None` for a table: read it.
pub(crate) type TargetState = Vec<Option<Hashes>>;

/// Reads, for every table the state does not know, the subject's rows in the target.
pub(crate) async fn complete(
    target: &SqlDatabase,
    subject: &Subject,
    batch: usize,
    state: &mut TargetState,
) -> Result<(), MoveError> {
    state.resize_with(TABLES.len(), || None);
    for (table, cached) in TABLES.iter().zip(state.iter_mut()) {
        if cached.is_none() {
            *cached = Some(hashes(target, table, subject, batch).await?);
        }
    }
    Ok(())
}

/// One pass over every table while the source still changes: pages of the source read on its
/// pool, each page's changed rows upserted into the target at once, and after each table the
/// rows gone at the source deleted from it; then what it wrote or deleted is read back from the
/// target. Safe to run any number of times.
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
            compare: Compare::new(&mut known, false),
            stats: PassStats::default(),
            checkpoint,
        };
        scan(&mut conn, source, table, subject, batch, &mut apply).await?;
        drop(conn);
        let Apply { compare, stats, .. } = apply;
        let (mut kept, written) = (compare.kept, compare.written);
        total.add(stats);
        let gone: Vec<Vec<u8>> = known.into_keys().collect();
        total.deleted += delete_keys(target, table, &gone).await?;
        if written.len() + gone.len() <= READ_BACK_LIMIT {
            let touched: Vec<&[u8]> = written.iter().chain(&gone).map(Vec::as_slice).collect();
            kept.extend(read_back(target, table, subject, &touched).await?);
            *cached = Some(kept);
        }
    }
    Ok(total)
}

/// What the final pass found: per table the source's row hashes (for verification), what the
/// target holds unchanged (as read from it before), and the changes the target needs.
pub(crate) struct FinalDiff {
    pub source: Vec<Vec<[u8; 32]>>,
    kept: Vec<Hashes>,
    upserts: Vec<Vec<StoredRow>>,
    written: Vec<Vec<Vec<u8>>>,
    deletes: Vec<Vec<Vec<u8>>>,
}

struct Diff<'a> {
    compare: Compare<'a>,
}

impl AsyncPage for Diff<'_> {
    async fn page(&mut self, shape: &Shape, rows: Vec<AnyRow>) -> Result<(), MoveError> {
        self.compare.compare(shape, &rows)
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
    complete(target, subject, batch, &mut state).await?;
    let mut known: Vec<Hashes> = state.into_iter().map(Option::unwrap_or_default).collect();
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
        kept: Vec::new(),
        upserts: Vec::new(),
        written: Vec::new(),
        deletes: Vec::new(),
    };
    for (table, known) in TABLES.iter().zip(known.iter_mut()) {
        let mut each = Diff {
            compare: Compare::new(known, true),
        };
        scan(&mut tx, source, table, subject, batch, &mut each).await?;
        let compare = each.compare;
        diff.source.push(compare.source.unwrap_or_default());
        diff.kept.push(compare.kept);
        diff.upserts.push(compare.changed);
        diff.written.push(compare.written);
    }
    source.commit(tx).await?;
    for known in known {
        diff.deletes.push(known.into_keys().collect());
    }
    Ok(diff)
}

/// The target's side of one table under the freeze: its rows (counted) and their content hash.
pub(crate) struct TargetSide {
    pub rows: u64,
    pub hash: String,
}

impl FinalDiff {
    /// Applies the diff to the target: deletions children first, then upserts parents first.
    pub(crate) async fn apply(&self, target: &SqlDatabase) -> Result<PassStats, MoveError> {
        let mut stats = PassStats::default();
        for (table, keys) in TABLES.iter().zip(&self.deletes).rev() {
            stats.deleted += delete_keys(target, table, keys).await?;
        }
        for (table, rows) in TABLES.iter().zip(&self.upserts) {
            stats.add(upsert(target, table, rows, false).await?);
        }
        Ok(stats)
    }

    /// The target's rows after [`FinalDiff::apply`], per table, as read from the target: the
    /// rows this pass left alone as read before the freeze, every row it wrote or deleted read
    /// back now, and the rows counted now (a row another writer added or removed since the
    /// earlier read shows in the count).
    pub(crate) async fn target_sides(
        &self,
        target: &SqlDatabase,
        subject: &Subject,
    ) -> Result<Vec<TargetSide>, MoveError> {
        let mut sides = Vec::with_capacity(TABLES.len());
        for (i, table) in TABLES.iter().enumerate() {
            let touched: Vec<&[u8]> = self.written[i]
                .iter()
                .chain(&self.deletes[i])
                .map(Vec::as_slice)
                .collect();
            let read = read_back(target, table, subject, &touched).await?;
            // `kept` holds no key this pass wrote or deleted.
            let hash = tables::table_hash(self.kept[i].values().chain(read.values()));
            let rows = super::count_in(target, table, subject).await?;
            sides.push(TargetSide {
                rows: u64::try_from(rows).unwrap_or_default(),
                hash,
            });
        }
        Ok(sides)
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
    let Some(first) = rows.first() else {
        return Ok(Vec::new());
    };
    let shape = Shape::of(table, first)?;
    rows.iter()
        .map(|row| tables::decode_key(table, &shape.key(row)?).map_err(MoveError::from))
        .collect()
}
