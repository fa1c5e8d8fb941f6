//! The control database's side of a move: the journal (`cell_moves`, each phase recorded before
//! its step runs) and the routes (`cell_routes`), written with the `switched` phase in one
//! transaction.

use kontor_domain::time::Timestamp;
use kontor_domain::{TenantId, UserId};
use kontor_store::{StoreError, StoreResult};
use sqlx::any::AnyRow;

use super::tables::TABLES;
use super::{CellRoute, MoveError, MovePhase, Subject, TableCheck};
use crate::SqlControl;
use crate::database::{SqlDatabase, column};

/// One move as the journal holds it.
#[derive(Debug, Clone)]
pub struct MoveRecord {
    pub id: String,
    pub subject: Subject,
    pub region: String,
    pub from_cell: String,
    pub to_cell: String,
    pub phase: MovePhase,
    pub grace_us: i64,
    pub last_error: Option<String>,
    pub verification: Option<String>,
    pub frozen_at: Option<i64>,
    pub switched_at: Option<i64>,
    /// Set once the move is over; a `failed` move without it is still being undone.
    pub finished_at: Option<i64>,
}

impl MoveRecord {
    /// The tables a failed move found different, as its journal recorded them (none for a move
    /// that did not fail).
    pub fn differing_tables(&self) -> Vec<TableCheck> {
        if self.phase != MovePhase::Failed {
            return Vec::new();
        }
        let checks: Vec<serde_json::Value> = self
            .verification
            .as_deref()
            .and_then(|v| serde_json::from_str(v).ok())
            .unwrap_or_default();
        checks
            .iter()
            .filter(|c| c["equal"] == serde_json::Value::Bool(false))
            .filter_map(|c| {
                let name = c["table"].as_str()?;
                let text = |k: &str| c[k].as_str().unwrap_or_default().to_owned();
                Some(TableCheck {
                    table: TABLES.iter().find(|t| t.name == name)?.name,
                    source_rows: c["source_rows"].as_u64().unwrap_or_default(),
                    target_rows: c["target_rows"].as_u64().unwrap_or_default(),
                    source_hash: text("source_hash"),
                    target_hash: text("target_hash"),
                })
            })
            .collect()
    }
}

pub(super) const COLUMNS: &str = "id, tenant_id, user_id, region, from_cell, to_cell, phase, grace_us, \
                       last_error, verification, frozen_at, switched_at, finished_at";

pub(super) fn record_from_row(row: &AnyRow) -> StoreResult<MoveRecord> {
    let tenant =
        TenantId::parse(&column::<String>(row, "tenant_id")?).map_err(StoreError::corrupt)?;
    let user: Option<String> = column(row, "user_id")?;
    let subject = match user {
        None => Subject::Tenant(tenant),
        Some(user) => Subject::User {
            tenant,
            user: UserId::parse(&user).map_err(StoreError::corrupt)?,
        },
    };
    let phase: String = column(row, "phase")?;
    Ok(MoveRecord {
        id: column(row, "id")?,
        subject,
        region: column(row, "region")?,
        from_cell: column(row, "from_cell")?,
        to_cell: column(row, "to_cell")?,
        phase: MovePhase::parse(&phase)
            .ok_or_else(|| StoreError::corrupt(format!("move phase {phase:?}")))?,
        grace_us: column(row, "grace_us")?,
        last_error: column(row, "last_error")?,
        verification: column(row, "verification")?,
        frozen_at: column(row, "frozen_at")?,
        switched_at: column(row, "switched_at")?,
        finished_at: column(row, "finished_at")?,
    })
}

/// Records a new move in phase `planned`, refused while another unfinished move covers the same
/// rows (the tenant's, or one of its users'). Serializable: two racing starts cannot both pass.
pub(crate) async fn insert(db: &SqlDatabase, record: &MoveRecord) -> Result<(), MoveError> {
    let tenant = record.subject.tenant().as_str();
    let user = record.subject.user().map(UserId::as_str);
    let outcome = db
        .write("plan_move", |tx| {
            Box::pin(async move {
                let open: Option<String> = tx
                    .optional_scalar(
                        sqlx::query_scalar(
                            "SELECT id FROM cell_moves WHERE tenant_id = $1 \
                             AND finished_at IS NULL \
                             AND (user_id IS NULL OR CAST($2 AS TEXT) IS NULL OR user_id = $2) \
                             ORDER BY created_at LIMIT 1",
                        )
                        .bind(tenant)
                        .bind(user),
                    )
                    .await?;
                if let Some(open) = open {
                    return Ok(Err(open));
                }
                let now = Timestamp::now().unix_micros();
                tx.execute(
                    sqlx::query(
                        "INSERT INTO cell_moves (id, subject, tenant_id, user_id, region, \
                         from_cell, to_cell, phase, grace_us, created_at, updated_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)",
                    )
                    .bind(record.id.as_str())
                    .bind(record.subject.key())
                    .bind(tenant)
                    .bind(user)
                    .bind(record.region.as_str())
                    .bind(record.from_cell.as_str())
                    .bind(record.to_cell.as_str())
                    .bind(MovePhase::Planned.as_str())
                    .bind(record.grace_us)
                    .bind(now),
                )
                .await?;
                Ok(Ok(()))
            })
        })
        .await;
    match outcome {
        Ok(Ok(())) => Ok(()),
        Ok(Err(open)) => Err(MoveError::InProgress { move_id: open }),
        Err(StoreError::Conflict { .. }) => Err(MoveError::InProgress {
            move_id: String::new(),
        }),
        Err(e) => Err(e.into()),
    }
}

pub(crate) async fn load(db: &SqlDatabase, id: &str) -> Result<MoveRecord, MoveError> {
    let sql = format!("SELECT {COLUMNS} FROM cell_moves WHERE id = $1");
    match db
        .row(
            || sqlx::query(sqlx::AssertSqlSafe(sql.clone())).bind(id.to_owned()),
            record_from_row,
        )
        .await
    {
        Err(StoreError::NotFound) => Err(MoveError::NotFound),
        other => Ok(other?),
    }
}

/// Records the next phase, only from the phase the caller holds (a second process resuming the
/// same move finds the phase changed and stops).
pub(crate) async fn advance(
    db: &SqlDatabase,
    record: &mut MoveRecord,
    next: MovePhase,
) -> Result<(), MoveError> {
    let now = Timestamp::now().unix_micros();
    let from = record.phase.as_str();
    let frozen_at = (next == MovePhase::Frozen).then_some(now);
    // A failed move is over only once it is undone (`finish`).
    let finished_at = (next.is_finished() && next != MovePhase::Failed).then_some(now);
    let verification = record.verification.as_deref();
    let id = record.id.as_str();
    let updated = db
        .write("advance_move", |tx| {
            Box::pin(async move {
                tx.execute(
                    sqlx::query(
                        "UPDATE cell_moves SET phase = $2, updated_at = $3, \
                         frozen_at = COALESCE(frozen_at, $4), finished_at = $5, \
                         verification = COALESCE($6, verification), last_error = NULL \
                         WHERE id = $1 AND phase = $7",
                    )
                    .bind(id)
                    .bind(next.as_str())
                    .bind(now)
                    .bind(frozen_at)
                    .bind(finished_at)
                    .bind(verification)
                    .bind(from),
                )
                .await
            })
        })
        .await?;
    if updated == 0 {
        return Err(MoveError::Store(StoreError::state_refused(
            "the move's phase changed under this process",
        )));
    }
    record.phase = next;
    if record.frozen_at.is_none() {
        record.frozen_at = frozen_at;
    }
    record.finished_at = finished_at;
    Ok(())
}

/// Ends an unfinished move in `phase` (aborted, or failed once undone), from whatever phase it
/// was in.
pub(crate) async fn finish(
    db: &SqlDatabase,
    record: &mut MoveRecord,
    phase: MovePhase,
) -> Result<(), MoveError> {
    let now = Timestamp::now().unix_micros();
    let id = record.id.as_str();
    db.write("finish_move", |tx| {
        Box::pin(async move {
            tx.execute(
                sqlx::query(
                    "UPDATE cell_moves SET phase = $2, updated_at = $3, finished_at = $3 \
                     WHERE id = $1 AND finished_at IS NULL",
                )
                .bind(id)
                .bind(phase.as_str())
                .bind(now),
            )
            .await?;
            Ok(())
        })
    })
    .await?;
    record.phase = phase;
    record.finished_at = Some(now);
    Ok(())
}

/// Notes what went wrong, keeping the phase (the move is resumed from it).
pub(crate) async fn note_error(db: &SqlDatabase, id: &str, error: &str) -> StoreResult<()> {
    db.write("note_move_error", |tx| {
        Box::pin(async move {
            tx.execute(
                sqlx::query("UPDATE cell_moves SET last_error = $2, updated_at = $3 WHERE id = $1")
                    .bind(id)
                    .bind(error)
                    .bind(Timestamp::now().unix_micros()),
            )
            .await?;
            Ok(())
        })
    })
    .await
}

/// The switch: in one control transaction, the routes now send the subject's rows to the target
/// and the journal says `switched`. A route already pointing at the source (the subject moved
/// before) is bent to the target, so a chain of moves is always one hop from the home cell.
pub(crate) async fn switch(db: &SqlDatabase, record: &mut MoveRecord) -> Result<(), MoveError> {
    let now = Timestamp::now().unix_micros();
    let tenant = record.subject.tenant().as_str();
    let user = record.subject.user().map(UserId::as_str);
    let (from, to, id) = (
        record.from_cell.as_str(),
        record.to_cell.as_str(),
        record.id.as_str(),
    );
    // A tenant's route covers its rows whose home is the source; a user's covers all of the
    // user's rows (a user has one home), so its `from_cell` is ''.
    let home = if user.is_some() { "" } else { from };
    let updated = db
        .write("switch_move", |tx| {
            Box::pin(async move {
                if user.is_none() {
                    // Every route of the tenant into the source: its own, and its users' (whose
                    // rows are in the source with the tenant's).
                    tx.execute(
                        sqlx::query(
                            "UPDATE cell_routes SET to_cell = $3, move_id = $4, updated_at = $5 \
                                 WHERE tenant_id = $1 AND to_cell = $2",
                        )
                        .bind(tenant)
                        .bind(from)
                        .bind(to)
                        .bind(id)
                        .bind(now),
                    )
                    .await?;
                }
                tx.execute(
                    sqlx::query(
                        "INSERT INTO cell_routes (tenant_id, user_id, from_cell, to_cell, move_id, \
                         updated_at) VALUES ($1, $2, $3, $4, $5, $6) \
                         ON CONFLICT (tenant_id, user_id, from_cell) DO UPDATE SET \
                         to_cell = excluded.to_cell, move_id = excluded.move_id, \
                         updated_at = excluded.updated_at",
                    )
                    .bind(tenant)
                    .bind(user.unwrap_or(""))
                    .bind(home)
                    .bind(to)
                    .bind(id)
                    .bind(now),
                )
                .await?;
                tx.execute(
                    sqlx::query(
                        "UPDATE cell_moves SET phase = $2, switched_at = $3, updated_at = $3, \
                         last_error = NULL WHERE id = $1 AND phase = $4",
                    )
                    .bind(id)
                    .bind(MovePhase::Switched.as_str())
                    .bind(now)
                    .bind(MovePhase::Verified.as_str()),
                )
                .await
            })
        })
        .await?;
    if updated == 0 {
        return Err(MoveError::Store(StoreError::state_refused(
            "the move's phase changed under this process",
        )));
    }
    record.phase = MovePhase::Switched;
    record.switched_at = Some(now);
    Ok(())
}

impl SqlControl {
    /// Every route of moved tenants and users; see [`super::current_cell`]. A process loads
    /// them at start and again at least once per move grace period.
    pub async fn cell_routes(&self) -> StoreResult<Vec<CellRoute>> {
        self.database()
            .rows(
                || {
                    sqlx::query(
                        "SELECT tenant_id, user_id, from_cell, to_cell FROM cell_routes \
                         ORDER BY tenant_id, user_id, from_cell",
                    )
                },
                |row| {
                    let user: String = column(row, "user_id")?;
                    Ok(CellRoute {
                        tenant_id: TenantId::parse(&column::<String>(row, "tenant_id")?)
                            .map_err(StoreError::corrupt)?,
                        user_id: if user.is_empty() {
                            None
                        } else {
                            Some(UserId::parse(&user).map_err(StoreError::corrupt)?)
                        },
                        from_cell: column(row, "from_cell")?,
                        to_cell: column(row, "to_cell")?,
                    })
                },
            )
            .await
    }

    /// One move's journal entry.
    pub async fn cell_move(&self, id: &str) -> Result<MoveRecord, MoveError> {
        load(self.database(), id).await
    }
}

#[async_trait::async_trait]
impl kontor_store::RouteStore for SqlControl {
    async fn cell_routes(&self) -> StoreResult<Vec<CellRoute>> {
        SqlControl::cell_routes(self).await
    }
}
