//! Retention: the event log (with its deliveries and attempts) and the changes feed's log are
//! kept for `retention.events_days`, then deleted in batches by the worker.

use kontor_domain::time::Timestamp;

use crate::hub::Hub;

/// How long events, webhook deliveries and attempts are kept (`[retention]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionSettings {
    pub events_days: u32,
    /// Events deleted per transaction.
    pub batch: usize,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        Self {
            events_days: 90,
            batch: 1000,
        }
    }
}

impl Hub {
    /// Retention: deletes events (with their deliveries and attempts) older than
    /// `retention.events_days`, in batches, in every cell; returns how many events went.
    pub async fn enforce_retention(&self, now: Timestamp) -> u64 {
        let retention = &self.settings().retention;
        let before = now.plus_seconds(-i64::from(retention.events_days) * 86_400);
        let mut total = 0;
        for (region, cell) in self.cells().iter() {
            loop {
                match cell.purge_events(before, retention.batch.max(1)).await {
                    Ok(n) => {
                        total += n;
                        if n < u64::try_from(retention.batch.max(1)).unwrap_or(u64::MAX) {
                            break;
                        }
                    }
                    Err(err) => {
                        tracing::warn!(%region, error = %err, "event retention failed; retried next round");
                        break;
                    }
                }
            }
        }
        total
    }

    /// Retention of the changes feed's log: entries are kept as long as events
    /// (`retention.events_days`), so that a tenant who can still read a `transactions.updated`
    /// can still fetch its changes. Returns how many went, in every cell.
    pub async fn enforce_change_retention(&self, now: Timestamp) -> u64 {
        let retention = &self.settings().retention;
        let before = now.plus_seconds(-i64::from(retention.events_days) * 86_400);
        let batch = retention.batch.max(1);
        let mut total = 0;
        for (region, cell) in self.cells().iter() {
            loop {
                match cell.purge_changes(before, batch).await {
                    Ok(n) => {
                        total += n;
                        if n < u64::try_from(batch).unwrap_or(u64::MAX) {
                            break;
                        }
                    }
                    Err(err) => {
                        tracing::warn!(%region, error = %err, "change log retention failed; retried next round");
                        break;
                    }
                }
            }
        }
        total
    }
}
