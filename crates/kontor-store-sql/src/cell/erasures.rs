//! Erasures in a cell (`erasures`, `erasure_revocations`) and the event log's retention. One
//! worker at a time works a cell's erasures (under the cell's named job lease), so the
//! revocation queue needs no per-row lease.

use async_trait::async_trait;
use kontor_domain::event::NewEvent;
use kontor_domain::time::Timestamp;
use kontor_domain::{ConnectionId, PaymentId, TenantId, UserId};
use kontor_store::{
    ErasurePhase, ErasureStore, NewRevocation, Revocation, RevocationOutcome, RevocationTally,
    StoreError, StoreResult, UserErasure,
};
use sqlx::any::AnyRow;

use super::SqlCell;
use super::events::insert_event;
use super::users::ERASE_USER;
use crate::database::column;
use crate::query::{Arg, Filtered, limit_arg};

fn erasure_from_row(row: &AnyRow) -> StoreResult<UserErasure> {
    let phase: String = column(row, "phase")?;
    Ok(UserErasure {
        user_id: UserId::parse(&column::<String>(row, "user_id")?).map_err(StoreError::corrupt)?,
        tenant_id: TenantId::parse(&column::<String>(row, "tenant_id")?)
            .map_err(StoreError::corrupt)?,
        phase: ErasurePhase::parse(&phase)
            .ok_or_else(|| StoreError::corrupt(format!("erasure phase {phase}")))?,
        requested_at: Timestamp::from_unix_micros(column(row, "requested_at")?),
        updated_at: Timestamp::from_unix_micros(column(row, "updated_at")?),
    })
}

fn revocation_from_row(row: &AnyRow) -> StoreResult<Revocation> {
    Ok(Revocation {
        id: column(row, "id")?,
        user_id: UserId::parse(&column::<String>(row, "user_id")?).map_err(StoreError::corrupt)?,
        tenant_id: TenantId::parse(&column::<String>(row, "tenant_id")?)
            .map_err(StoreError::corrupt)?,
        connection_id: ConnectionId::parse(&column::<String>(row, "connection_id")?)
            .map_err(StoreError::corrupt)?,
        bank_id: column(row, "bank_id")?,
        ticket: column(row, "ticket")?,
        attempts: u32::try_from(column::<i64>(row, "attempts")?).map_err(StoreError::corrupt)?,
    })
}

macro_rules! erasure_columns {
    () => {
        "user_id, tenant_id, phase, requested_at, updated_at"
    };
}

#[async_trait]
impl ErasureStore for SqlCell {
    async fn record_erasure(
        &self,
        tenant: &TenantId,
        user: &UserId,
        revocations: &[NewRevocation],
        at: Timestamp,
    ) -> StoreResult<bool> {
        self.ensure_home("user", user.region())?;
        self.db
            .write_idempotent("record_erasure", |tx| {
                Box::pin(async move {
                    super::fences::guard(tx, tenant.as_str(), Some(user.as_str())).await?;
                    super::users::require_user(tx, tenant, user).await?;
                    let inserted = tx.execute(sqlx::query(
                "INSERT INTO erasures (user_id, tenant_id, phase, requested_at, updated_at) \
                 VALUES ($1, $2, 'recorded', $3, $3) ON CONFLICT (user_id) DO NOTHING",
            )
            .bind(user.as_str())
            .bind(tenant.as_str())
            .bind(at.unix_micros())).await?;
                    if inserted == 0 {
                        return Ok(false);
                    }
                    for revocation in revocations {
                        tx.execute(sqlx::query(
                    "INSERT INTO erasure_revocations (id, user_id, tenant_id, connection_id, \
                     bank_id, ticket, state, attempts, next_attempt_at, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, 'pending', 0, $7, $7, $7)",
                )
                .bind(revocation.id.as_str())
                .bind(user.as_str())
                .bind(tenant.as_str())
                .bind(revocation.connection_id.as_str())
                .bind(revocation.bank_id.as_str())
                .bind(revocation.ticket.as_str())
                .bind(at.unix_micros())).await?;
                    }

                    Ok(true)
                })
            })
            .await
    }

    async fn erasure(&self, user: &UserId) -> StoreResult<Option<UserErasure>> {
        let sql = concat!(
            "SELECT ",
            erasure_columns!(),
            " FROM erasures WHERE user_id = $1"
        );
        self.db
            .fetch_optional(|| sqlx::query(sql).bind(user.as_str()))
            .await?
            .as_ref()
            .map(erasure_from_row)
            .transpose()
    }

    async fn user_payment_ids(&self, user: &UserId) -> StoreResult<Vec<PaymentId>> {
        let ids: Vec<String> = self
            .db
            .scalars(|| {
                sqlx::query_scalar("SELECT id FROM payments WHERE user_id = $1").bind(user.as_str())
            })
            .await?;
        ids.iter()
            .map(|id| PaymentId::parse(id).map_err(StoreError::corrupt))
            .collect()
    }

    async fn erase_user_data(
        &self,
        user: &UserId,
        event: &NewEvent,
        at: Timestamp,
    ) -> StoreResult<bool> {
        self.ensure_home("user", user.region())?;
        self.db
            .write_idempotent("erase_user_data", |tx| {
                Box::pin(async move {
                    super::fences::guard_row(tx, super::fences::Row::Erasure, user.as_str())
                        .await?;
                    let moved = tx
                        .execute(
                            sqlx::query(
                                "UPDATE erasures SET phase = 'erased', updated_at = $2 \
                 WHERE user_id = $1 AND phase = 'recorded'",
                            )
                            .bind(user.as_str())
                            .bind(at.unix_micros()),
                        )
                        .await?;
                    if moved == 0 {
                        return Ok(false);
                    }
                    for &sql in ERASE_USER {
                        tx.execute(sqlx::query(sql).bind(user.as_str())).await?;
                    }
                    insert_event(tx, event).await?;

                    Ok(true)
                })
            })
            .await
    }

    async fn erasures_to_finish(
        &self,
        stale_before: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<UserErasure>> {
        let sql = concat!(
            "SELECT ",
            erasure_columns!(),
            " FROM erasures e \
             WHERE ((e.phase = 'recorded' AND e.updated_at < $1) \
                OR (e.phase = 'erased' AND NOT EXISTS (SELECT 1 FROM erasure_revocations r \
                    WHERE r.user_id = e.user_id AND r.state = 'pending'))) AND ",
            unfenced!("e"),
            " ORDER BY e.requested_at, e.user_id LIMIT $2"
        );
        self.db
            .rows(
                || {
                    sqlx::query(sql)
                        .bind(stale_before.unix_micros())
                        .bind(limit_arg(limit))
                },
                erasure_from_row,
            )
            .await
    }

    async fn revocations_due(&self, now: Timestamp, limit: usize) -> StoreResult<Vec<Revocation>> {
        self.db
            .rows(
                || {
                    sqlx::query(
                    "SELECT r.id, r.user_id, r.tenant_id, r.connection_id, r.bank_id, r.ticket, \
                     r.attempts FROM erasure_revocations r \
                     JOIN erasures e ON e.user_id = r.user_id AND e.phase = 'erased' \
                     WHERE r.state = 'pending' AND r.next_attempt_at <= $1 AND \
                     NOT EXISTS (SELECT 1 FROM move_fences f WHERE f.tenant_id = r.tenant_id \
                     AND (f.user_id IS NULL OR f.user_id = r.user_id)) \
                     ORDER BY r.next_attempt_at, r.id LIMIT $2",
                )
                .bind(now.unix_micros())
                .bind(limit_arg(limit))
                },
                revocation_from_row,
            )
            .await
    }

    async fn record_revocation(
        &self,
        id: &str,
        outcome: &RevocationOutcome,
        event: Option<&NewEvent>,
        at: Timestamp,
    ) -> StoreResult<()> {
        let (state, next, error) = match outcome {
            RevocationOutcome::Revoked => ("revoked", None, None),
            RevocationOutcome::Retry {
                next_attempt_at,
                error,
            } => ("pending", Some(*next_attempt_at), Some(error.as_str())),
            RevocationOutcome::Failed { error } => ("failed", None, Some(error.as_str())),
        };
        self.db
            .write_idempotent("record_revocation", |tx| {
                Box::pin(async move {
                    super::fences::guard_row(tx, super::fences::Row::Revocation, id).await?;
                    let changed = tx.execute(sqlx::query(
                "UPDATE erasure_revocations SET state = $2, attempts = attempts + 1, \
                 next_attempt_at = COALESCE($3, next_attempt_at), last_error = $4, \
                 updated_at = $5 WHERE id = $1 AND state = 'pending'",
            )
            .bind(id)
            .bind(state)
            .bind(next.map(Timestamp::unix_micros))
            .bind(error)
            .bind(at.unix_micros())).await?;
                    if changed == 1
                        && let Some(event) = event
                    {
                        insert_event(tx, event).await?;
                    }
                    Ok(())
                })
            })
            .await
    }

    async fn close_erasure(
        &self,
        user: &UserId,
        event: &(dyn Fn(RevocationTally) -> NewEvent + Send + Sync),
    ) -> StoreResult<Option<RevocationTally>> {
        self.db
            .write_idempotent("close_erasure", |tx| {
                Box::pin(async move {
                    super::fences::guard_row(tx, super::fences::Row::Erasure, user.as_str())
                        .await?;
                    let phase: Option<String> = tx
                        .optional_scalar(
                            sqlx::query_scalar("SELECT phase FROM erasures WHERE user_id = $1")
                                .bind(user.as_str()),
                        )
                        .await?;
                    if phase.as_deref() != Some(ErasurePhase::Erased.as_str()) {
                        return Ok(None);
                    }
                    let rows = tx.fetch_all(sqlx::query(
                "SELECT state, COUNT(*) AS n FROM erasure_revocations WHERE user_id = $1 \
                 GROUP BY state",
            )
            .bind(user.as_str())).await?;
                    let mut tally = RevocationTally::default();
                    for row in &rows {
                        let state: String = column(row, "state")?;
                        let n =
                            u64::try_from(column::<i64>(row, "n")?).map_err(StoreError::corrupt)?;
                        match state.as_str() {
                            "pending" => return Ok(None),
                            "revoked" => tally.revoked += n,
                            _ => tally.failed += n,
                        }
                    }
                    for sql in [
                        "DELETE FROM erasure_revocations WHERE user_id = $1",
                        "DELETE FROM erasures WHERE user_id = $1",
                    ] {
                        tx.execute(sqlx::query(sql).bind(user.as_str())).await?;
                    }
                    insert_event(tx, &event(tally)).await?;

                    Ok(Some(tally))
                })
            })
            .await
    }

    async fn purge_events(&self, before: Timestamp, limit: usize) -> StoreResult<u64> {
        self.db
            .write_idempotent("purge_events", |tx| {
                Box::pin(async move {
                    let ids: Vec<String> = tx.scalars(sqlx::query_scalar(
                "SELECT id FROM events WHERE created_at < $1 ORDER BY created_at, id LIMIT $2",
            )
            .bind(before.unix_micros())
            .bind(limit_arg(limit))).await?;
                    for chunk in ids.chunks(PURGE_CHUNK) {
                        for (table, sql) in [
                            (
                                "webhook_attempts",
                                "DELETE FROM webhook_attempts WHERE delivery_id IN \
                         (SELECT id FROM webhook_deliveries WHERE event_id IN (",
                            ),
                            (
                                "webhook_deliveries",
                                "DELETE FROM webhook_deliveries WHERE event_id IN (",
                            ),
                            ("events", "DELETE FROM events WHERE id IN ("),
                        ] {
                            let mut q = Filtered::new(sql);
                            for (i, id) in chunk.iter().enumerate() {
                                let p = q.arg(Arg::Text(id.clone()));
                                q.push(if i == 0 { "" } else { ", " });
                                q.push(&p);
                            }
                            q.push(if table == "webhook_attempts" {
                                "))"
                            } else {
                                ")"
                            });
                            tx.execute(q.build()).await?;
                        }
                    }

                    Ok(u64::try_from(ids.len()).unwrap_or(u64::MAX))
                })
            })
            .await
    }
}

/// Ids bound per DELETE: well under every backend's limit on bound parameters.
const PURGE_CHUNK: usize = 200;
