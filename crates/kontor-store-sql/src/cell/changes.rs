//! A connection's change log (cell migration 0013): numbered inside the sync's own transaction
//! from the connection row's counter, read by the changes feed, pruned by retention.

use async_trait::async_trait;
use kontor_domain::time::Timestamp;
use kontor_domain::{AccountId, ConnectionId, TenantId, TransactionId};
use kontor_store::{ChangeKind, ChangeRow, ChangeStore, StoreError, StoreResult, TransactionRow};
use sqlx::any::AnyRow;

use super::SqlCell;
use super::accounts::transactions_by_ids;
use crate::database::column;
use crate::query::{Arg, Filtered, limit_arg, rows_per_statement, runs};
use crate::tx::Tx;

/// Changes per multi-row INSERT, at most, where the backend takes that many bound parameters
/// (PostgreSQL; SQLite's 999 allows 128).
const CHANGES_PER_INSERT: usize = 512;
/// Bound parameters a row of that `INSERT`.
const CHANGE_PARAMS: usize = 6;

/// What one sync did to one transaction, before it is numbered.
pub(crate) struct Change<'a> {
    pub account_id: &'a AccountId,
    pub transaction_id: &'a TransactionId,
    pub kind: ChangeKind,
}

/// Numbers and records a sync's changes inside its transaction. The connection row's counter
/// is raised by as many numbers as there are changes, plus one left unused when a sync since the
/// last recorded one wrote no log (the previous release's, during a rollout): that gap makes
/// cursors from before it `cursor_expired`, as they cannot be told what that sync changed. The
/// counter, the stamp of the last recorded sync and the check are one `UPDATE`, whose right-hand
/// sides all see the row as it was.
pub(crate) async fn record(
    tx: &mut Tx<'_>,
    connection: &ConnectionId,
    synced_at: Timestamp,
    changes: &[Change<'_>],
) -> StoreResult<()> {
    let count = i64::try_from(changes.len()).map_err(StoreError::corrupt)?;
    let head: Option<i64> = tx
        .optional_scalar(
            sqlx::query_scalar(
                "UPDATE connections SET \
         change_seq = change_seq + $2 + CASE WHEN last_synced_at IS NOT NULL \
           AND (changes_synced_at IS NULL OR changes_synced_at <> last_synced_at) \
           THEN 1 ELSE 0 END, \
         changes_synced_at = $3 \
         WHERE id = $1 RETURNING change_seq",
            )
            .bind(connection.as_str())
            .bind(count)
            .bind(synced_at.unix_micros()),
        )
        .await?;
    let head = head.ok_or(StoreError::NotFound)?;
    let first = head - count + 1;
    // One multi-row INSERT per run: a first sync logs a change per transaction it adds.
    let numbered: Vec<(i64, &Change<'_>)> = (first..).zip(changes).collect();
    let per_insert = rows_per_statement(tx.dialect(), CHANGE_PARAMS, CHANGES_PER_INSERT);
    for run in runs(&numbered, per_insert) {
        let mut q = Filtered::new(
            "INSERT INTO transaction_changes (connection_id, seq, account_id, transaction_id, \
             kind, created_at) VALUES ",
        );
        for (i, (seq, change)) in run.iter().enumerate() {
            let values = [
                q.arg(Arg::Text(connection.to_string())),
                q.arg(Arg::Int(*seq)),
                q.arg(Arg::Text(change.account_id.to_string())),
                q.arg(Arg::Text(change.transaction_id.to_string())),
                q.arg(Arg::Text(change.kind.as_str().to_owned())),
                q.arg(Arg::Int(synced_at.unix_micros())),
            ];
            q.push(if i == 0 { "(" } else { ", (" });
            q.push(&values.join(", "));
            q.push(")");
        }
        tx.execute(q.build()).await?;
    }
    Ok(())
}

fn change_from_row(row: &AnyRow) -> StoreResult<ChangeRow> {
    let kind: String = column(row, "kind")?;
    Ok(ChangeRow {
        seq: column(row, "seq")?,
        account_id: AccountId::parse(&column::<String>(row, "account_id")?)
            .map_err(StoreError::corrupt)?,
        transaction_id: TransactionId::parse(&column::<String>(row, "transaction_id")?)
            .map_err(StoreError::corrupt)?,
        kind: ChangeKind::parse(&kind).ok_or_else(|| StoreError::corrupt(kind))?,
        created_at: Timestamp::from_unix_micros(column(row, "created_at")?),
    })
}

#[async_trait]
impl ChangeStore for SqlCell {
    async fn change_head(&self, tenant: &TenantId, connection: &ConnectionId) -> StoreResult<i64> {
        self.db
            .optional_scalar(|| {
                sqlx::query_scalar(
                    "SELECT change_seq FROM connections WHERE tenant_id = $1 AND id = $2",
                )
                .bind(tenant.as_str())
                .bind(connection.as_str())
            })
            .await?
            .ok_or(StoreError::NotFound)
    }

    async fn changes_after(
        &self,
        connection: &ConnectionId,
        after: i64,
        limit: usize,
    ) -> StoreResult<Vec<ChangeRow>> {
        let limit = limit_arg(limit);
        self.db
            .rows(
                || {
                    sqlx::query(
                        "SELECT seq, account_id, transaction_id, kind, created_at \
                     FROM transaction_changes WHERE connection_id = $1 AND seq > $2 \
                     ORDER BY seq LIMIT $3",
                    )
                    .bind(connection.as_str())
                    .bind(after)
                    .bind(limit)
                },
                change_from_row,
            )
            .await
    }

    async fn connection_transactions(
        &self,
        connection: &ConnectionId,
        ids: &[TransactionId],
    ) -> StoreResult<Vec<TransactionRow>> {
        transactions_by_ids(&self.db, connection, ids).await
    }

    async fn purge_changes(&self, before: Timestamp, limit: usize) -> StoreResult<u64> {
        let limit = i64::try_from(limit.max(1)).unwrap_or(i64::MAX);
        self.db
            .write("purge_changes", |tx| {
                Box::pin(async move {
                    let done = tx
                        .execute(
                            sqlx::query(
                                "DELETE FROM transaction_changes WHERE (connection_id, seq) IN \
                 (SELECT connection_id, seq FROM transaction_changes WHERE created_at < $1 \
                 ORDER BY created_at LIMIT $2)",
                            )
                            .bind(before.unix_micros())
                            .bind(limit),
                        )
                        .await?;

                    Ok(done)
                })
            })
            .await
    }
}
