//! A connection's sync bookkeeping: the day's unattended reads (counted in SQL, so that every
//! process sees one count), the run of failures and the last error, the schedule, and the first
//! sync a user started.

use kontor_domain::ConnectionId;
use kontor_domain::time::Timestamp;
use kontor_store::{ReadsChange, StoreError, StoreResult, SyncBookkeeping, SyncCounters};
use time::Date;

use crate::database::{SqlDatabase, column, date_text, optional_date};
use crate::tx::Tx;

pub(crate) async fn counters(db: &SqlDatabase, id: &ConnectionId) -> StoreResult<SyncCounters> {
    let row = db
        .fetch_optional(|| {
            sqlx::query(
                "SELECT reads_day, unattended_reads, sync_failures FROM connections WHERE id = $1",
            )
            .bind(id.as_str())
        })
        .await?
        .ok_or(StoreError::NotFound)?;
    Ok(SyncCounters {
        reads_day: optional_date(&row, "reads_day")?,
        unattended_reads: u32::try_from(column::<i64>(&row, "unattended_reads")?)
            .map_err(StoreError::corrupt)?,
        sync_failures: u32::try_from(column::<i64>(&row, "sync_failures")?)
            .map_err(StoreError::corrupt)?,
    })
}

/// One read more on `day`, unless `allowance` reads were counted on it. A counter of an earlier
/// day starts again from one.
pub(crate) async fn reserve_read(
    db: &SqlDatabase,
    id: &ConnectionId,
    day: Date,
    allowance: u32,
) -> StoreResult<bool> {
    let day = &date_text(day);
    db.write("reserve_read", |tx| {
        Box::pin(async move {
            super::fences::guard_row(tx, super::fences::Row::Connection, id.as_str()).await?;
            let exists: i64 = tx
                .scalar(
                    sqlx::query_scalar("SELECT COUNT(*) FROM connections WHERE id = $1")
                        .bind(id.as_str()),
                )
                .await?;
            if exists == 0 {
                return Err(StoreError::NotFound);
            }
            let result = tx
                .execute(
                    sqlx::query(
                        "UPDATE connections SET \
             unattended_reads = CASE WHEN reads_day = $2 THEN unattended_reads + 1 ELSE 1 END, \
             reads_day = $2 \
             WHERE id = $1 AND (reads_day IS NULL OR reads_day <> $2 OR unattended_reads < $3)",
                    )
                    .bind(id.as_str())
                    .bind(day.as_str())
                    .bind(i64::from(allowance)),
                )
                .await?;

            Ok(result == 1)
        })
    })
    .await
}

pub(crate) async fn start_first_sync(
    db: &SqlDatabase,
    id: &ConnectionId,
    psu_ip: &str,
    at: Timestamp,
) -> StoreResult<()> {
    db.write("start_first_sync", |tx| {
        Box::pin(async move {
            super::fences::guard_row(tx, super::fences::Row::Connection, id.as_str()).await?;
            tx.execute(
                sqlx::query(
                    "UPDATE connections SET first_sync_psu_ip = $2, first_sync_started_at = $3 \
             WHERE id = $1 AND last_synced_at IS NULL",
                )
                .bind(id.as_str())
                .bind(psu_ip)
                .bind(at.unix_micros()),
            )
            .await?;
            Ok(())
        })
    })
    .await
}

/// Writes a sync's bookkeeping inside an open transaction. A success (`synced_at`) also ends a
/// first sync the user started.
pub(crate) async fn write(
    tx: &mut Tx<'_>,
    id: &ConnectionId,
    b: &SyncBookkeeping,
) -> StoreResult<()> {
    let error = b.error.as_ref();
    tx.execute(sqlx::query(
        "UPDATE connections SET last_synced_at = COALESCE($2, last_synced_at), next_sync_at = $3, \
         sync_failures = $4, session = COALESCE($5, session), \
         last_sync_error_code = COALESCE($6, last_sync_error_code), \
         last_sync_error_message = COALESCE($7, last_sync_error_message), \
         last_sync_error_at = COALESCE($8, last_sync_error_at), \
         first_sync_psu_ip = CASE WHEN $2 IS NULL THEN first_sync_psu_ip ELSE NULL END, \
         first_sync_started_at = CASE WHEN $2 IS NULL THEN first_sync_started_at ELSE NULL END \
         WHERE id = $1",
    )
    .bind(id.as_str())
    .bind(b.synced_at.map(Timestamp::unix_micros))
    .bind(b.next_sync_at.map(Timestamp::unix_micros))
    .bind(i64::from(b.sync_failures))
    .bind(b.session.as_deref())
    .bind(error.map(|e| e.code.as_str()))
    .bind(error.map(|e| e.message.as_str()))
    .bind(error.map(|e| e.at.unix_micros()))).await?;
    match b.reads {
        ReadsChange::Keep => Ok(()),
        ReadsChange::GiveBack(day) => tx
            .execute(
                sqlx::query(
                    "UPDATE connections SET unattended_reads = unattended_reads - 1 \
             WHERE id = $1 AND reads_day = $2 AND unattended_reads > 0",
                )
                .bind(id.as_str())
                .bind(date_text(day)),
            )
            .await
            .map(drop),
        ReadsChange::UsedUp { day, allowance } => tx
            .execute(
                sqlx::query(
                    "UPDATE connections SET reads_day = $2, unattended_reads = $3 WHERE id = $1 \
             AND (reads_day IS NULL OR reads_day <> $2 OR unattended_reads < $3)",
                )
                .bind(id.as_str())
                .bind(date_text(day))
                .bind(i64::from(allowance)),
            )
            .await
            .map(drop),
    }
}
