//! A cell's gauges: a handful of aggregate reads, each served by an index the queues already
//! have (`payments_by_phase`, `webhook_deliveries_pending_due`, `events_undispatched`,
//! `connections_due`), so that the worker can take them every few seconds.

use async_trait::async_trait;
use kontor_domain::payment::PaymentPhase;
use kontor_domain::time::Timestamp;
use kontor_store::{CellGauges, GaugeStore, PhaseGauge, StoreError, StoreResult};

use super::SqlCell;
use crate::database::{column, optional_timestamp};

fn count(raw: i64) -> u64 {
    u64::try_from(raw).unwrap_or(0)
}

fn earliest(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Timestamp> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

impl SqlCell {
    async fn payment_phases(&self) -> StoreResult<Vec<PhaseGauge>> {
        let rows = self
            .db
            .fetch_all(|| {
                sqlx::query(
                    "SELECT phase, COUNT(*) AS n, MIN(updated_at) AS oldest FROM payments \
                     WHERE phase <> 'done' GROUP BY phase",
                )
            })
            .await?;
        let mut phases: Vec<PhaseGauge> = PaymentPhase::ALL
            .into_iter()
            .filter(|phase| *phase != PaymentPhase::Done)
            .map(|phase| PhaseGauge {
                phase,
                count: 0,
                oldest_change: None,
            })
            .collect();
        for row in &rows {
            let raw: String = column(row, "phase")?;
            let phase = PaymentPhase::parse(&raw).ok_or_else(|| StoreError::corrupt(raw))?;
            if let Some(gauge) = phases.iter_mut().find(|g| g.phase == phase) {
                gauge.count = count(column(row, "n")?);
                gauge.oldest_change = optional_timestamp(row, "oldest")?;
            }
        }
        Ok(phases)
    }

    /// The earliest value of one column over the rows a condition with `$1 = now` selects.
    async fn earliest(&self, sql: &'static str, now: Timestamp) -> StoreResult<Option<Timestamp>> {
        let row = self
            .db
            .fetch_one(|| sqlx::query(sql).bind(now.unix_micros()))
            .await?;
        optional_timestamp(&row, "oldest")
    }
}

#[async_trait]
impl GaugeStore for SqlCell {
    async fn gauges(&self, now: Timestamp, expiring_before: Timestamp) -> StoreResult<CellGauges> {
        let payments = self.payment_phases().await?;
        let pending = self
            .db
            .fetch_one(|| {
                sqlx::query(
                    "SELECT COUNT(*) AS n, MIN(queued_at) AS oldest FROM webhook_deliveries \
                     WHERE state = 'pending'",
                )
            })
            .await?;
        let due = self
            .earliest(
                "SELECT MIN(next_attempt_at) AS oldest FROM webhook_deliveries \
                 WHERE state = 'pending' AND next_attempt_at <= $1",
                now,
            )
            .await?;
        let undispatched = self
            .earliest(
                "SELECT MIN(created_at) AS oldest FROM events \
                 WHERE dispatched_at IS NULL AND created_at <= $1",
                now,
            )
            .await?;
        let overdue_sync = self
            .earliest(
                "SELECT MIN(next_sync_at) AS oldest FROM connections \
                 WHERE status = 'active' AND next_sync_at <= $1",
                now,
            )
            .await?;
        let expiring: i64 = self
            .db
            .scalar(|| {
                sqlx::query_scalar(
                    "SELECT COUNT(*) FROM connections WHERE status = 'active' AND valid_until < $1",
                )
                .bind(expiring_before.unix_micros())
            })
            .await?;
        Ok(CellGauges {
            payments,
            deliveries_pending: count(column(&pending, "n")?),
            oldest_pending_queued_at: optional_timestamp(&pending, "oldest")?,
            oldest_due_at: earliest(due, undispatched),
            oldest_overdue_sync_at: overdue_sync,
            consents_expiring: count(expiring),
        })
    }

    async fn user_count(&self) -> StoreResult<u64> {
        self.count_users().await
    }

    async fn size(&self) -> StoreResult<kontor_store::CellSize> {
        self.measure().await
    }
}
