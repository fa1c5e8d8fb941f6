//! The gauges that need the database: payments waiting in each phase, the webhook backlog and
//! how long its oldest work has waited, how late the most overdue sync is, consents about to
//! lapse. The worker reads them from every cell every `gauges_every` (not per scrape: a scrape
//! must not put load on the databases, and several Prometheus servers may scrape). Labels are
//! the region and the phase: bounded, and nothing about anyone.

use std::time::Duration;

use kontor_domain::CellId;
use kontor_domain::gauges::CellGauges;
use kontor_domain::time::Timestamp;
use kontor_service::Hub;
use tokio::sync::watch;

/// How long ago `then` was, seen from `now`; zero for none or for the future.
fn age(now: Timestamp, then: Option<Timestamp>) -> Duration {
    then.map_or(Duration::ZERO, |then| {
        let micros = now.unix_micros().saturating_sub(then.unix_micros());
        Duration::from_micros(u64::try_from(micros).unwrap_or(0))
    })
}

/// Counts as gauge values (an `f64` holds every count a cell can have exactly).
fn amount(count: u64) -> f64 {
    count as f64
}

/// Sets one cell's gauges, labelled with its region and its name.
pub(crate) fn record(cell: &CellId, now: Timestamp, gauges: &CellGauges) {
    let region = cell.region().to_string();
    let name = cell.to_string();
    for phase in &gauges.payments {
        let labels = [
            ("region", region.clone()),
            ("cell", name.clone()),
            ("phase", phase.phase.as_str().to_owned()),
        ];
        metrics::gauge!("kontor_payments", &labels).set(amount(phase.count));
        metrics::gauge!("kontor_payments_oldest_in_phase_seconds", &labels)
            .set(age(now, phase.oldest_change));
    }
    let labels = [("region", region), ("cell", name)];
    metrics::gauge!("kontor_webhook_backlog", &labels).set(amount(gauges.deliveries_pending));
    metrics::gauge!("kontor_webhook_oldest_undelivered_seconds", &labels)
        .set(age(now, gauges.oldest_pending_queued_at));
    metrics::gauge!("kontor_webhook_backlog_oldest_due_seconds", &labels)
        .set(age(now, gauges.oldest_due_at));
    metrics::gauge!("kontor_sync_oldest_overdue_seconds", &labels)
        .set(age(now, gauges.oldest_overdue_sync_at));
    metrics::gauge!("kontor_consents_expiring", &labels).set(amount(gauges.consents_expiring));
}

/// Reads and sets every cell's gauges once, and when all answered, the time of the round
/// (`kontor_worker_gauges_timestamp_seconds`); how many cells answered.
pub async fn report(hub: &Hub, now: Timestamp) -> usize {
    let mut answered = 0;
    for (region, gauges) in hub.cell_gauges(now).await {
        match gauges {
            Ok(gauges) => {
                record(&region, now, &gauges);
                answered += 1;
            }
            // The previous values stay; the failure shows in the log and in /readyz.
            Err(err) => {
                tracing::warn!(cell = %region, error = %err, "cannot read the cell's gauges");
            }
        }
    }
    // Only a complete round counts: a cell that cannot answer makes the gauges stale.
    if answered == hub.cells().len() {
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        metrics::gauge!("kontor_worker_gauges_timestamp_seconds").set(since_epoch);
    }
    answered
}

pub(crate) async fn run(hub: Hub, every: Duration, mut shutdown: watch::Receiver<bool>) {
    let mut ticker = tokio::time::interval(every.max(Duration::from_secs(1)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
        report(&hub, hub.clock().now()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_are_never_negative_and_zero_without_a_moment() {
        let now = Timestamp::from_unix_micros(10_000_000);
        assert_eq!(age(now, None), Duration::ZERO);
        assert_eq!(
            age(now, Some(Timestamp::from_unix_micros(7_500_000))),
            Duration::from_millis(2500)
        );
        assert_eq!(
            age(now, Some(Timestamp::from_unix_micros(20_000_000))),
            Duration::ZERO
        );
    }
}
