//! Online moves of a tenant's rows, or one user's, from one cell to another of the same region
//! (docs/ARCHITECTURE.md, "Moving a tenant or user between cells").
//!
//! A move is a journal entry in the control database (`cell_moves`) whose phase is recorded
//! before its step runs, so [`Mover::resume`] carries on from the phase after a crash:
//!
//! | phase | step (every one safe to run again) |
//! |---|---|
//! | `planned` | nothing yet; the checks passed (same region, another cell, no other move of the subject) |
//! | `copying` | the target's `incoming` fence; one diff pass (the target is empty: a copy), keyset-batched, upserts |
//! | `catching_up` | diff passes until one changes at most `settle_rows` rows, or no fewer than the one before (at most `max_passes`) |
//! | `frozen` | the target's rows read where the passes left them unknown; the source's `outgoing` fence (writes refused: [`StoreError::Moving`]); beside each other, the users' keys marked moved in the source key store and copied, and the final pass in one snapshot; verification per table (rows the final pass wrote or deleted read back from the target, every table counted) |
//! | `verified` | the switch: routes and phase `switched` in one control transaction |
//! | `switched` | the target's fence lifted, the source's becomes `gone`; wait the grace period |
//! | `cleaning` | shreds made in the source carried to the target; the source's keys and rows deleted in batches, then its fence |
//! | `done` | — |
//! | `failed` | the verification differed twice (the final pass and verification run once more on a mismatch); recorded with every table's checks, then undone as an abort: the target's keys forgotten and the source's unmarked, the target's rows deleted, both fences lifted; `finished_at` once undone |
//!
//! The integrator's two entry points are [`Mover::start`] and [`Mover::resume`] (and
//! [`Mover::abort`] before the switch); routes are loaded with [`SqlControl::cell_routes`] and
//! applied with [`current_cell`].

mod journal;
mod locate;
mod sync;
pub(crate) mod tables;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kontor_domain::time::Timestamp;
use kontor_domain::{Region, TenantId, UserId};
use kontor_store::{Schema, StoreError, StoreResult, UserKeyStore};

pub use journal::MoveRecord;
pub use sync::PassStats;

use crate::database::SqlDatabase;
use crate::{SqlCell, SqlControl, SqlKeyStore};

pub(crate) const FENCE_OUTGOING: &str = "outgoing";
pub(crate) const FENCE_GONE: &str = "gone";
pub(crate) const FENCE_INCOMING: &str = "incoming";

/// What moves: a tenant's rows in the source cell, or one user's with everything hanging off
/// them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    Tenant(TenantId),
    User { tenant: TenantId, user: UserId },
}

impl Subject {
    pub fn tenant(&self) -> &TenantId {
        match self {
            Subject::Tenant(t) | Subject::User { tenant: t, .. } => t,
        }
    }
    pub fn user(&self) -> Option<&UserId> {
        match self {
            Subject::Tenant(_) => None,
            Subject::User { user, .. } => Some(user),
        }
    }
    pub(crate) fn of_user(&self) -> bool {
        self.user().is_some()
    }
    /// The id the tables' conditions take as `$1`.
    pub(crate) fn id(&self) -> &str {
        match self {
            Subject::Tenant(t) => t.as_str(),
            Subject::User { user, .. } => user.as_str(),
        }
    }
    /// `tenant:<id>` or `user:<id>`: one unfinished move per key.
    pub fn key(&self) -> String {
        match self {
            Subject::Tenant(t) => format!("tenant:{t}"),
            Subject::User { user, .. } => format!("user:{user}"),
        }
    }
}

/// A move's phase; see the module's table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MovePhase {
    Planned,
    Copying,
    CatchingUp,
    Frozen,
    Verified,
    Switched,
    Cleaning,
    Done,
    Failed,
    Aborted,
}

impl MovePhase {
    pub const ALL: [MovePhase; 10] = [
        MovePhase::Planned,
        MovePhase::Copying,
        MovePhase::CatchingUp,
        MovePhase::Frozen,
        MovePhase::Verified,
        MovePhase::Switched,
        MovePhase::Cleaning,
        MovePhase::Done,
        MovePhase::Failed,
        MovePhase::Aborted,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            MovePhase::Planned => "planned",
            MovePhase::Copying => "copying",
            MovePhase::CatchingUp => "catching_up",
            MovePhase::Frozen => "frozen",
            MovePhase::Verified => "verified",
            MovePhase::Switched => "switched",
            MovePhase::Cleaning => "cleaning",
            MovePhase::Done => "done",
            MovePhase::Failed => "failed",
            MovePhase::Aborted => "aborted",
        }
    }
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == raw)
    }
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            MovePhase::Done | MovePhase::Failed | MovePhase::Aborted
        )
    }
}

pub use kontor_store::{CellRoute, current_cell};

/// One cell as a move sees it: its configuration name (`de-1`), its database and its key store.
#[derive(Debug, Clone)]
pub struct MoveCell {
    pub name: String,
    pub cell: SqlCell,
    pub keys: SqlKeyStore,
}

impl MoveCell {
    fn region(&self) -> &Region {
        kontor_store::CellStore::region(&self.cell)
    }
    fn db(&self) -> &SqlDatabase {
        self.cell.database()
    }
}

/// What to move, from where to where.
#[derive(Debug, Clone)]
pub struct MoveRequest {
    pub subject: Subject,
    pub from: String,
    pub to: String,
    /// How long every process is given to load the new routes before the source's rows are
    /// deleted (at least the routes' refresh interval).
    pub grace: Duration,
}

/// A hook a test uses to make the move fail at a named step (`phase:<phase>`,
/// `batch:<table>`, `fenced`, `applied`, `keys`, `switched`, `cleaned:<table>`); `true` fails it
/// there.
pub type FailureHook = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// How a move runs.
#[derive(Clone)]
pub struct MoveOptions {
    /// Rows per read page and per upsert batch.
    pub batch: usize,
    /// Catching up stops when a pass changes at most this many rows, or no fewer than the pass
    /// before it.
    pub settle_rows: u64,
    /// At most this many catch-up passes before freezing anyway.
    pub max_passes: u32,
    pub hook: Option<FailureHook>,
}

impl Default for MoveOptions {
    fn default() -> Self {
        Self {
            batch: 500,
            settle_rows: 100,
            max_passes: 10,
            hook: None,
        }
    }
}

impl std::fmt::Debug for MoveOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MoveOptions")
            .field("batch", &self.batch)
            .field("settle_rows", &self.settle_rows)
            .field("max_passes", &self.max_passes)
            .finish_non_exhaustive()
    }
}

/// One table's verification under the freeze.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableCheck {
    pub table: &'static str,
    pub source_rows: u64,
    pub target_rows: u64,
    pub source_hash: String,
    pub target_hash: String,
}

impl TableCheck {
    pub fn matches(&self) -> bool {
        self.source_rows == self.target_rows && self.source_hash == self.target_hash
    }

    /// Both sides and whether they are `equal` (the journal of a failed move, `--json`).
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "table": self.table,
            "source_rows": self.source_rows,
            "target_rows": self.target_rows,
            "source_hash": self.source_hash,
            "target_hash": self.target_hash,
            "equal": self.matches(),
        })
    }
}

/// What a run of a move did.
#[derive(Debug, Clone)]
pub struct MoveReport {
    pub id: String,
    pub phase: MovePhase,
    /// The copy and each catch-up pass.
    pub passes: Vec<PassStats>,
    pub final_pass: Option<PassStats>,
    pub tables: Vec<TableCheck>,
    pub keys_copied: u64,
    /// From the source's fence to the target's fence lifted (this run, when it saw both).
    pub pause: Option<Duration>,
    /// Where the pause went (this run, when it froze): `keys`, `final_diff`, `apply`, `verify`,
    /// `switch`.
    pub freeze_steps: Vec<(&'static str, Duration)>,
    pub source_rows_deleted: u64,
}

impl MoveReport {
    /// A report of `record` where it stands, before this run did anything.
    fn of(record: &MoveRecord) -> Self {
        MoveReport {
            id: record.id.clone(),
            phase: record.phase,
            passes: Vec::new(),
            final_pass: None,
            tables: Vec::new(),
            keys_copied: 0,
            pause: None,
            freeze_steps: Vec::new(),
            source_rows_deleted: 0,
        }
    }
}

/// Why a move was refused or stopped. [`MoveError::code`] is stable.
#[derive(Debug)]
pub enum MoveError {
    AcrossRegions {
        from: Region,
        to: Region,
    },
    SameCell,
    UnknownCell(String),
    InProgress {
        move_id: String,
    },
    /// The target already holds rows of the subject (a tenant spread over cells moves user by
    /// user).
    TargetHoldsSubject,
    SubjectNotFound,
    SchemaMismatch,
    NotFound,
    /// The copy still differed from the source after the final pass ran twice: the move was
    /// recorded `failed` and undone (the subject serves from the source again). `tables` are the
    /// differing tables' checks.
    VerificationFailed {
        move_id: String,
        tables: Vec<TableCheck>,
    },
    /// The move switched already; it can only be finished.
    AlreadySwitched,
    /// The move is over (done, failed or aborted).
    Finished(MovePhase),
    Injected(String),
    Store(StoreError),
}

impl MoveError {
    pub fn code(&self) -> &'static str {
        match self {
            MoveError::AcrossRegions { .. } => "move_across_regions",
            MoveError::SameCell => "move_to_same_cell",
            MoveError::UnknownCell(_) => "unknown_cell",
            MoveError::InProgress { .. } => "move_in_progress",
            MoveError::TargetHoldsSubject => "move_target_not_empty",
            MoveError::SubjectNotFound => "move_subject_not_found",
            MoveError::SchemaMismatch => "move_schema_mismatch",
            MoveError::NotFound => "move_not_found",
            MoveError::VerificationFailed { .. } => "move_verification_failed",
            MoveError::AlreadySwitched => "move_already_switched",
            MoveError::Finished(_) => "move_finished",
            MoveError::Injected(_) => "move_injected_failure",
            MoveError::Store(e) if e.is_unavailable() => "service_unavailable",
            MoveError::Store(_) => "internal_error",
        }
    }
}

impl std::fmt::Display for MoveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MoveError::AcrossRegions { from, to } => write!(
                f,
                "a move from region {from} to region {to} is refused (residency)"
            ),
            MoveError::SameCell => f.write_str("the source and the target are the same cell"),
            MoveError::UnknownCell(name) => write!(f, "no cell is named {name:?}"),
            MoveError::InProgress { move_id } => {
                write!(f, "another move of these rows is unfinished ({move_id})")
            }
            MoveError::TargetHoldsSubject => {
                f.write_str("the target cell already holds rows of this tenant or user")
            }
            MoveError::SubjectNotFound => f.write_str("the user is not in the source cell"),
            MoveError::SchemaMismatch => {
                f.write_str("the two cells have not applied the same migrations")
            }
            MoveError::NotFound => f.write_str("no such move"),
            MoveError::VerificationFailed { move_id, tables } => {
                let names: Vec<&str> = tables.iter().map(|t| t.table).collect();
                write!(
                    f,
                    "move {move_id} failed verification (differing: {}); it was undone, the \
                     rows serve from the source again",
                    names.join(", ")
                )
            }
            MoveError::AlreadySwitched => {
                f.write_str("the move has switched; it can only be finished")
            }
            MoveError::Finished(phase) => write!(f, "the move is over ({})", phase.as_str()),
            MoveError::Injected(step) => write!(f, "injected failure at {step}"),
            MoveError::Store(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for MoveError {}

impl From<StoreError> for MoveError {
    fn from(e: StoreError) -> Self {
        MoveError::Store(e)
    }
}

/// Runs moves between the cells it knows.
#[derive(Debug, Clone)]
pub struct Mover {
    control: SqlControl,
    cells: Vec<MoveCell>,
    options: MoveOptions,
}

impl Mover {
    pub fn new(control: SqlControl, cells: Vec<MoveCell>, options: MoveOptions) -> Self {
        Self {
            control,
            cells,
            options,
        }
    }

    fn cell(&self, name: &str) -> Result<&MoveCell, MoveError> {
        self.cells
            .iter()
            .find(|c| c.name == name)
            .ok_or_else(|| MoveError::UnknownCell(name.to_owned()))
    }

    fn checkpoint(&self, step: &str) -> Result<(), MoveError> {
        match &self.options.hook {
            Some(hook) if hook(step) => Err(MoveError::Injected(step.to_owned())),
            _ => Ok(()),
        }
    }

    /// Checks the request and records the move in phase `planned`; nothing moves yet.
    pub async fn plan(&self, request: &MoveRequest) -> Result<MoveRecord, MoveError> {
        let from = self.cell(&request.from)?;
        let to = self.cell(&request.to)?;
        if from.name == to.name {
            return Err(MoveError::SameCell);
        }
        if from.region() != to.region() {
            return Err(MoveError::AcrossRegions {
                from: from.region().clone(),
                to: to.region().clone(),
            });
        }
        let (a, b) = (
            from.cell.migration_status().await?,
            to.cell.migration_status().await?,
        );
        let (mut a, mut b) = (a.applied, b.applied);
        a.sort_unstable();
        b.sort_unstable();
        if a != b {
            return Err(MoveError::SchemaMismatch);
        }
        if let Subject::User { tenant, user } = &request.subject {
            let owner: Option<String> = from
                .db()
                .optional_scalar(|| {
                    sqlx::query_scalar("SELECT tenant_id FROM users WHERE id = $1")
                        .bind(user.as_str())
                })
                .await?;
            if owner.as_deref() != Some(tenant.as_str()) {
                return Err(MoveError::SubjectNotFound);
            }
        }
        let subject = &request.subject;
        let users_in_target = count_in(to.db(), &tables::TABLES[0], subject).await?;
        let events_in_target = count_in(to.db(), &tables::TABLES[8], subject).await?;
        if users_in_target + events_in_target > 0 {
            return Err(MoveError::TargetHoldsSubject);
        }
        let record = MoveRecord {
            id: format!("mov_{}", random_suffix()),
            subject: request.subject.clone(),
            region: from.region().to_string(),
            from_cell: from.name.clone(),
            to_cell: to.name.clone(),
            phase: MovePhase::Planned,
            grace_us: i64::try_from(request.grace.as_micros()).unwrap_or(i64::MAX),
            last_error: None,
            verification: None,
            frozen_at: None,
            switched_at: None,
            finished_at: None,
        };
        journal::insert(self.control.database(), &record).await?;
        Ok(record)
    }

    /// Plans the move and runs it to the end.
    pub async fn start(&self, request: &MoveRequest) -> Result<MoveReport, MoveError> {
        let record = self.plan(request).await?;
        self.run(record).await
    }

    /// Carries a move on from its recorded phase (after a crash, a refused step, or an injected
    /// failure). A finished move is reported as it is.
    pub async fn resume(&self, move_id: &str) -> Result<MoveReport, MoveError> {
        let record = journal::load(self.control.database(), move_id).await?;
        self.run(record).await
    }

    async fn run(&self, record: MoveRecord) -> Result<MoveReport, MoveError> {
        let id = record.id.clone();
        let outcome = self.drive(record).await;
        if let Err(e) = &outcome {
            let note = format!("{}: {e}", e.code());
            if let Err(noted) = journal::note_error(self.control.database(), &id, &note).await {
                tracing::warn!(move_id = %id, error = %noted, "could not note a move's error");
            }
        }
        outcome
    }

    async fn drive(&self, mut record: MoveRecord) -> Result<MoveReport, MoveError> {
        let from = self.cell(&record.from_cell)?;
        let to = self.cell(&record.to_cell)?;
        let subject = record.subject.clone();
        let batch = self.options.batch.max(1);
        let mut report = MoveReport::of(&record);
        let control = self.control.database();
        let checkpoint = |step: &str| self.checkpoint(step);
        let mut frozen_here: Option<Instant> = None;
        let mut target_state = sync::TargetState::new();
        loop {
            report.phase = record.phase;
            if record.phase == MovePhase::Failed {
                // Recorded before the undo: finish it (again, after a crash), then say so.
                if record.finished_at.is_none() {
                    report.source_rows_deleted += self.undo(&mut record).await?;
                }
                return Err(failure(&record));
            }
            if record.phase.is_finished() {
                return Ok(report);
            }
            self.checkpoint(&format!("phase:{}", record.phase.as_str()))?;
            match record.phase {
                MovePhase::Planned => {
                    journal::advance(control, &mut record, MovePhase::Copying).await?;
                }
                MovePhase::Copying => {
                    fence(to.db(), &record, FENCE_INCOMING).await?;
                    let stats = self.pass(from, to, &subject, &mut target_state).await?;
                    report.passes.push(stats);
                    journal::advance(control, &mut record, MovePhase::CatchingUp).await?;
                }
                MovePhase::CatchingUp => {
                    let mut last: Option<u64> = None;
                    for _ in 0..self.options.max_passes {
                        let stats = self.pass(from, to, &subject, &mut target_state).await?;
                        report.passes.push(stats);
                        let changed = stats.changed();
                        // Settled, or the writes keep pace with the passes: another pass would
                        // leave as much to the final one.
                        if changed <= self.options.settle_rows || last.is_some_and(|l| changed >= l)
                        {
                            break;
                        }
                        last = Some(changed);
                    }
                    journal::advance(control, &mut record, MovePhase::Frozen).await?;
                }
                MovePhase::Frozen => {
                    // What the target holds, read before the freeze where the passes did not.
                    sync::complete(to.db(), &subject, batch, &mut target_state).await?;
                    fence(from.db(), &record, FENCE_OUTGOING).await?;
                    frozen_here = Some(Instant::now());
                    self.checkpoint("fenced")?;
                    let state = std::mem::take(&mut target_state);
                    let (keys, pass) = tokio::join!(
                        timed(copy_keys(from, to, &record)),
                        final_pass(
                            from,
                            to,
                            &record,
                            batch,
                            state,
                            &mut report.freeze_steps,
                            &checkpoint
                        )
                    );
                    let (copied, took) = keys;
                    report.keys_copied = copied?;
                    report.freeze_steps.insert(0, ("keys", took));
                    self.checkpoint("keys")?;
                    let (mut stats, mut checks) = pass?;
                    if checks.iter().any(|c| !c.matches()) {
                        // Once more, the target read afresh; then the move fails and is undone.
                        tracing::warn!(move_id = %record.id, "verification differs; once more");
                        let fresh = sync::TargetState::new();
                        let steps = &mut report.freeze_steps;
                        let again;
                        (again, checks) =
                            final_pass(from, to, &record, batch, fresh, steps, &checkpoint).await?;
                        stats.upserted += again.upserted;
                        stats.deleted += again.deleted;
                    }
                    report.final_pass = Some(stats);
                    if checks.iter().any(|c| !c.matches()) {
                        record.verification = Some(checks_json(&checks));
                        report.tables = checks;
                        journal::advance(control, &mut record, MovePhase::Failed).await?;
                        continue;
                    }
                    record.verification = Some(verification_json(&checks));
                    report.tables = checks;
                    journal::advance(control, &mut record, MovePhase::Verified).await?;
                }
                MovePhase::Verified => {
                    let started = Instant::now();
                    journal::switch(control, &mut record).await?;
                    report.freeze_steps.push(("switch", started.elapsed()));
                }
                MovePhase::Switched => {
                    unfence(to.db(), &record.id).await?;
                    set_fence_state(from.db(), &record.id, FENCE_GONE).await?;
                    if let Some(at) = frozen_here {
                        report.pause = Some(at.elapsed());
                    }
                    self.checkpoint("switched")?;
                    let switched = record.switched_at.unwrap_or_default();
                    let due = switched.saturating_add(record.grace_us);
                    let now = Timestamp::now().unix_micros();
                    if due > now {
                        let wait = u64::try_from(due - now).unwrap_or_default();
                        tokio::time::sleep(Duration::from_micros(wait)).await;
                    }
                    journal::advance(control, &mut record, MovePhase::Cleaning).await?;
                }
                MovePhase::Cleaning => {
                    clean_keys(from, to, &record).await?;
                    report.source_rows_deleted +=
                        clean_source(from.db(), &subject, batch, &checkpoint).await?;
                    unfence(from.db(), &record.id).await?;
                    journal::advance(control, &mut record, MovePhase::Done).await?;
                }
                MovePhase::Done | MovePhase::Failed | MovePhase::Aborted => {
                    return Ok(report);
                }
            }
        }
    }

    /// Abandons a move that has not switched: the target's copy (rows and keys) is deleted, both
    /// fences are lifted, the source key store makes keys for the users again, and the journal
    /// says `aborted`. Safe to run again after a crash; run it only when no process is driving
    /// the move (a driver still running would place its fences again). A move that switched is
    /// refused (`move_already_switched`): it can only be finished, or moved back. A `failed` move
    /// not yet undone is undone and stays `failed`.
    pub async fn abort(&self, move_id: &str) -> Result<MoveReport, MoveError> {
        let mut record = journal::load(self.control.database(), move_id).await?;
        if record.finished_at.is_some() {
            return Err(MoveError::Finished(record.phase));
        }
        if matches!(record.phase, MovePhase::Switched | MovePhase::Cleaning) {
            return Err(MoveError::AlreadySwitched);
        }
        let deleted = self.undo(&mut record).await?;
        Ok(MoveReport {
            source_rows_deleted: deleted,
            ..MoveReport::of(&record)
        })
    }

    /// Undoes an unswitched move (an abort, or a failed verification): the target's keys of the
    /// subject's users forgotten and the source's unmarked (a key is in one key store), the
    /// target's copy deleted, both fences lifted (the subject writes in the source again), and
    /// the journal finished (`failed` stays `failed`, else `aborted`). Every step is safe to run
    /// again after a crash. How many of the target's rows it deleted.
    async fn undo(&self, record: &mut MoveRecord) -> Result<u64, MoveError> {
        let from = self.cell(&record.from_cell)?;
        let to = self.cell(&record.to_cell)?;
        let checkpoint = |step: &str| self.checkpoint(step);
        let batch = self.options.batch.max(1);
        for user in users_of(from.db(), &record.subject).await? {
            to.keys.forget_moved_key(&user).await?;
            unmark_moved(from.keys.database(), &user).await?;
        }
        checkpoint("undo:keys")?;
        let deleted = clean_source(to.db(), &record.subject, batch, &checkpoint).await?;
        unfence(to.db(), &record.id).await?;
        unfence(from.db(), &record.id).await?;
        let end = match record.phase {
            MovePhase::Failed => MovePhase::Failed,
            _ => MovePhase::Aborted,
        };
        journal::finish(self.control.database(), record, end).await?;
        Ok(deleted)
    }

    /// One diff pass of the subject from `from` to `to` (copy or catch-up).
    async fn pass(
        &self,
        from: &MoveCell,
        to: &MoveCell,
        subject: &Subject,
        state: &mut sync::TargetState,
    ) -> Result<PassStats, MoveError> {
        let checkpoint = |step: &str| self.checkpoint(step);
        let batch = self.options.batch.max(1);
        sync::pass(from.db(), to.db(), subject, batch, state, &checkpoint).await
    }

    /// Verifies a subject's rows in two cells now: per table, rows and content hash on each
    /// side. For tests and operators; under a move's freeze the source does not change.
    pub async fn compare(
        &self,
        subject: &Subject,
        from: &str,
        to: &str,
    ) -> Result<Vec<TableCheck>, MoveError> {
        let (from, to) = (self.cell(from)?, self.cell(to)?);
        let mut checks = Vec::new();
        for table in tables::TABLES {
            let a = sync::hashes(from.db(), table, subject, self.options.batch.max(1)).await?;
            let b = sync::hashes(to.db(), table, subject, self.options.batch.max(1)).await?;
            checks.push(check(table.name, &a, &b));
        }
        Ok(checks)
    }
}

fn check(table: &'static str, a: &sync::Hashes, b: &sync::Hashes) -> TableCheck {
    TableCheck {
        table,
        source_rows: a.len() as u64,
        target_rows: b.len() as u64,
        source_hash: tables::table_hash(a.values()),
        target_hash: tables::table_hash(b.values()),
    }
}

/// A failed verification as the journal keeps it: every table's both sides.
fn checks_json(checks: &[TableCheck]) -> String {
    serde_json::Value::Array(checks.iter().map(TableCheck::json).collect()).to_string()
}

/// The error a failed move ends with: its differing tables, from the journal's checks.
fn failure(record: &MoveRecord) -> MoveError {
    MoveError::VerificationFailed {
        move_id: record.id.clone(),
        tables: record.differing_tables(),
    }
}

fn verification_json(checks: &[TableCheck]) -> String {
    let tables: Vec<serde_json::Value> = checks
        .iter()
        .map(|c| {
            serde_json::json!({
                "table": c.table,
                "rows": c.target_rows,
                "hash": c.target_hash,
            })
        })
        .collect();
    serde_json::Value::Array(tables).to_string()
}

/// The final pass under the freeze, run again (up to 5 times) when the source's snapshot is
/// aborted by a concurrent writer, then the verification: per table, the source's rows (from the
/// snapshot; the source is frozen) against the target's as read from the target. The target's
/// rows were read before the freeze (`state`, read by the passes); under the freeze only the rows
/// this pass wrote or deleted are read back, and every table's rows are counted.
async fn final_pass(
    from: &MoveCell,
    to: &MoveCell,
    record: &MoveRecord,
    batch: usize,
    mut state: sync::TargetState,
    steps: &mut Vec<(&'static str, Duration)>,
    checkpoint: &(dyn Fn(&str) -> Result<(), MoveError> + Send + Sync),
) -> Result<(PassStats, Vec<TableCheck>), MoveError> {
    let mut attempt = 0;
    let started = Instant::now();
    let diff = loop {
        attempt += 1;
        let known = std::mem::take(&mut state);
        match sync::final_diff(
            from.db(),
            to.db(),
            &record.subject,
            &record.id,
            batch,
            known,
        )
        .await
        {
            Ok(diff) => break diff,
            Err(MoveError::Store(e)) if e.is_retryable() && attempt < 5 => {
                tracing::info!(move_id = %record.id, error = %e, "final pass aborted; again");
            }
            Err(e) => return Err(e),
        }
    };
    steps.push(("final_diff", started.elapsed()));
    let started = Instant::now();
    let stats = diff.apply(to.db()).await?;
    steps.push(("apply", started.elapsed()));
    checkpoint("applied")?;
    let started = Instant::now();
    let sides = diff.target_sides(to.db(), &record.subject).await?;
    let checks = tables::TABLES
        .iter()
        .zip(&diff.source)
        .zip(sides)
        .map(|((table, source), target)| TableCheck {
            table: table.name,
            source_rows: source.len() as u64,
            target_rows: target.rows,
            source_hash: tables::table_hash(source.iter()),
            target_hash: target.hash,
        })
        .collect();
    steps.push(("verify", started.elapsed()));
    Ok((stats, checks))
}

/// Places the move's fence in a cell (idempotent: an existing fence keeps its state).
///
/// The source's (`outgoing`) fence also locks the subject's webhook deliveries, its payments
/// and its undated transactions in the same transaction. The delivery queue's bookkeeping, a
/// payment's steps and the transaction date backfill run
/// at READ COMMITTED on PostgreSQL, not serializable, so the SSI argument of the final pass does
/// not cover them; instead each of their transactions locks its row first and reads the fence
/// after (`cell::deliveries`, `cell::payments`). One that locked the row before this one commits
/// before the fence does; one that comes after waits for the fence's commit and then sees it.
async fn fence(db: &SqlDatabase, record: &MoveRecord, state: &str) -> StoreResult<()> {
    let tenant = record.subject.tenant().as_str();
    let user = record.subject.user().map(UserId::as_str);
    let id = record.id.as_str();
    let lock_queue = (state == FENCE_OUTGOING).then(|| {
        let of_user = record.subject.of_user();
        [
            // Every delivery, not only pending ones: an attempt is recorded on a delivery
            // another worker already finished (a success counts whoever sent it).
            format!(
                "UPDATE webhook_deliveries SET updated_at = updated_at WHERE {}",
                tables::condition(&tables::TABLES[tables::DELIVERIES], of_user)
            ),
            format!(
                "UPDATE payments SET updated_at = updated_at WHERE {}",
                tables::condition(&tables::TABLES[tables::PAYMENTS], of_user)
            ),
            // The only rows the date backfill writes (`cell::accounts`, READ COMMITTED too).
            format!(
                "UPDATE transactions SET transaction_date = transaction_date \
                 WHERE transaction_date IS NULL AND {}",
                tables::condition(&tables::TABLES[tables::TRANSACTIONS], of_user)
            ),
        ]
    });
    let lock_queue = &lock_queue;
    let subject_id = record.subject.id();
    db.write_idempotent("place_move_fence", |tx| {
        Box::pin(async move {
            for sql in lock_queue.iter().flatten() {
                tx.execute(sqlx::query(sqlx::AssertSqlSafe(sql.clone())).bind(subject_id))
                    .await?;
            }
            tx.execute(
                sqlx::query(
                    "INSERT INTO move_fences (move_id, tenant_id, user_id, state, created_at) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (move_id) DO NOTHING",
                )
                .bind(id)
                .bind(tenant)
                .bind(user)
                .bind(state)
                .bind(Timestamp::now().unix_micros()),
            )
            .await?;
            Ok(())
        })
    })
    .await
}

async fn set_fence_state(db: &SqlDatabase, id: &str, state: &str) -> StoreResult<()> {
    db.write_idempotent("set_move_fence", |tx| {
        Box::pin(async move {
            tx.execute(
                sqlx::query("UPDATE move_fences SET state = $2 WHERE move_id = $1")
                    .bind(id)
                    .bind(state),
            )
            .await?;
            Ok(())
        })
    })
    .await
}

async fn unfence(db: &SqlDatabase, id: &str) -> StoreResult<()> {
    db.write_idempotent("lift_move_fence", |tx| {
        Box::pin(async move {
            tx.execute(sqlx::query("DELETE FROM move_fences WHERE move_id = $1").bind(id))
                .await?;
            Ok(())
        })
    })
    .await
}

/// The subject's users in a cell.
async fn users_of(db: &SqlDatabase, subject: &Subject) -> StoreResult<Vec<UserId>> {
    let sql = format!(
        "SELECT id FROM users WHERE {} ORDER BY id",
        tables::condition(&tables::TABLES[0], subject.of_user())
    );
    let ids: Vec<String> = db
        .scalars(|| {
            sqlx::query_scalar(sqlx::AssertSqlSafe(sql.clone())).bind(subject.id().to_owned())
        })
        .await?;
    ids.iter()
        .map(|id| UserId::parse(id).map_err(StoreError::corrupt))
        .collect()
}

/// Under the freeze: marks each of the subject's users moved in the source key store (no key is
/// made there for them any more) and copies their keys, and what was shredded, to the target's.
async fn copy_keys(from: &MoveCell, to: &MoveCell, record: &MoveRecord) -> StoreResult<u64> {
    let mut copied = 0;
    let (source, target) = (from.keys.database(), to.keys.database());
    for user in users_of(from.db(), &record.subject).await? {
        let (uid, move_id, to_cell) = (user.as_str(), record.id.as_str(), to.name.as_str());
        source
            .write_idempotent("mark_key_moved", |tx| {
                Box::pin(async move {
                    tx.execute(
                        sqlx::query(
                            "INSERT INTO moved_user_keys (user_id, move_id, to_cell, moved_at) \
                             VALUES ($1, $2, $3, $4) ON CONFLICT (user_id) DO UPDATE SET \
                             move_id = excluded.move_id, to_cell = excluded.to_cell, \
                             moved_at = excluded.moved_at",
                        )
                        .bind(uid)
                        .bind(move_id)
                        .bind(to_cell)
                        .bind(Timestamp::now().unix_micros()),
                    )
                    .await?;
                    Ok(())
                })
            })
            .await?;
        let shredded: i64 = source
            .scalar(|| {
                sqlx::query_scalar("SELECT COUNT(*) FROM shredded_user_keys WHERE user_id = $1")
                    .bind(uid)
            })
            .await?;
        // Coming back to a key store it once left: it may hold keys again.
        unmark_moved(target, &user).await?;
        if shredded > 0 {
            to.keys.shred_user_key(&user).await?;
            continue;
        }
        if let Some(key) = from.keys.user_key(&user).await? {
            to.keys.import_user_key(&user, &key).await?;
            copied += 1;
        }
    }
    Ok(copied)
}

/// Forgets that a user's key moved away from this key store (it may hold their key again).
async fn unmark_moved(keys: &SqlDatabase, user: &UserId) -> StoreResult<()> {
    let uid = user.as_str();
    keys.write_idempotent("unmark_key_moved", |tx| {
        Box::pin(async move {
            tx.execute(sqlx::query("DELETE FROM moved_user_keys WHERE user_id = $1").bind(uid))
                .await?;
            Ok(())
        })
    })
    .await
}

/// After the switch: a key shredded in the source since it was copied (an erasure that reached
/// the source before the routes changed) is shredded in the target too; then the source's keys
/// are overwritten and deleted, so no key is in two key stores once the move is done.
async fn clean_keys(from: &MoveCell, to: &MoveCell, record: &MoveRecord) -> StoreResult<()> {
    let source = from.keys.database();
    for user in users_of(from.db(), &record.subject).await? {
        let uid = user.as_str();
        let shredded: i64 = source
            .scalar(|| {
                sqlx::query_scalar("SELECT COUNT(*) FROM shredded_user_keys WHERE user_id = $1")
                    .bind(uid)
            })
            .await?;
        if shredded > 0 {
            to.keys.shred_user_key(&user).await?;
        }
        from.keys.forget_moved_key(&user).await?;
    }
    Ok(())
}

/// Deletes the subject's rows from the source, children first, a batch a transaction.
async fn clean_source(
    db: &SqlDatabase,
    subject: &Subject,
    batch: usize,
    checkpoint: &(dyn Fn(&str) -> Result<(), MoveError> + Send + Sync),
) -> Result<u64, MoveError> {
    let mut deleted = 0;
    for table in tables::TABLES.iter().rev() {
        loop {
            let rows = sync::hashes_page(db, table, subject, batch).await?;
            if rows.is_empty() {
                break;
            }
            deleted += sync::delete(db, table, &rows).await?;
            checkpoint(&format!("cleaned:{}", table.name))?;
        }
    }
    Ok(deleted)
}

/// A future's output and how long it took.
async fn timed<T>(work: impl std::future::Future<Output = T>) -> (T, Duration) {
    let started = Instant::now();
    let out = work.await;
    (out, started.elapsed())
}

fn random_suffix() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"0123456789abcdefghjkmnpqrstvwxyz";
    let mut rng = rand::rng();
    (0..26)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

/// The cell tables a move carries (in copy order) and those that belong to no tenant and stay.
/// Every table of a migrated cell is in one of the two lists (a conformance test checks it).
pub fn table_attribution() -> (Vec<&'static str>, &'static [&'static str]) {
    (
        tables::TABLES.iter().map(|t| t.name).collect(),
        tables::UNMOVED,
    )
}

/// The subject's rows of one table in a cell.
async fn count_in(db: &SqlDatabase, table: &tables::Table, subject: &Subject) -> StoreResult<i64> {
    let sql = format!(
        "SELECT COUNT(*) FROM {} WHERE {}",
        table.name,
        tables::condition(table, subject.of_user())
    );
    db.scalar(|| sqlx::query_scalar(sqlx::AssertSqlSafe(sql.clone())).bind(subject.id().to_owned()))
        .await
}

/// The subject's row counts per table in a cell (for tests and reports).
pub async fn row_counts(
    cell: &SqlCell,
    subject: &Subject,
) -> StoreResult<HashMap<&'static str, i64>> {
    let mut out = HashMap::new();
    for table in tables::TABLES {
        out.insert(table.name, count_in(cell.database(), table, subject).await?);
    }
    Ok(out)
}
