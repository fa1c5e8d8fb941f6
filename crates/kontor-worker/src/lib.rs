//! The worker: the hub's jobs that run without a request. Several workers (and the API
//! processes' embedded workers) may run at once: a connection is synced under a lease, a webhook
//! delivery is attempted under a lease, and every state change is a checked transition, so no
//! job does its work twice at once.

mod gauges;
mod webhooks;

pub use gauges::report as report_gauges;

use std::time::Duration;

use futures_util::stream::{self, StreamExt};
use kontor_domain::time::Timestamp;
use kontor_service::{Hub, ServiceError, SyncTrigger};
use tokio::sync::watch;
use tracing::Instrument;

#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// How often the worker looks for due syncs.
    pub tick: Duration,
    /// How often the lifecycle jobs (expiry, notices, abandoned links) run.
    pub lifecycle_every: Duration,
    /// Due connections taken per cell per tick.
    pub batch: usize,
    /// Syncs running at once in this process.
    pub concurrency: usize,
    /// How often the gauges that need the database (payments per phase, webhook backlog,
    /// overdue syncs, expiring consents) are read from every cell.
    pub gauges_every: Duration,
    /// Rows per backfill transaction (`transactions.transaction_date`, cell migration 0012).
    pub backfill_batch: usize,
    /// Backfill transactions per cell per round at most, so that a large backlog is worked off
    /// over many rounds beside the other jobs.
    pub backfill_batches_per_round: usize,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Self {
            tick: Duration::from_secs(5),
            lifecycle_every: Duration::from_secs(60),
            batch: 50,
            concurrency: 4,
            gauges_every: Duration::from_secs(15),
            backfill_batch: 500,
            backfill_batches_per_round: 20,
        }
    }
}

/// What one round of work did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Round {
    pub synced: usize,
    pub sync_failures: usize,
    /// Payments resumed, polled or closed.
    pub payments: usize,
    pub payment_failures: usize,
    pub expired: usize,
    pub announced: usize,
    pub abandoned: usize,
    /// Events deleted by retention (with their deliveries and attempts).
    pub events_purged: u64,
    /// Entries of the changes feed's log deleted by retention.
    pub changes_purged: u64,
    /// Rows the backfill filled.
    pub backfilled: u64,
}

#[derive(Debug, Clone)]
pub struct Worker {
    hub: Hub,
    settings: WorkerSettings,
}

impl Worker {
    pub fn new(hub: Hub, settings: WorkerSettings) -> Self {
        Self { hub, settings }
    }

    /// Runs the due scheduled syncs once, across every cell.
    pub async fn sync_due(&self, now: Timestamp) -> Round {
        let due = self.hub.due_syncs(now, self.settings.batch).await;
        let results: Vec<bool> = stream::iter(due)
            .map(|id| {
                let hub = self.hub.clone();
                let span = job_span("sync", id.region());
                let job = span.clone();
                async move {
                    let ok = match hub.sync(&id, SyncTrigger::Scheduled).await {
                        Ok(_) => true,
                        // Another worker has it, or today's allowance is used: not a failure.
                        Err(ServiceError::Conflict { .. }) => true,
                        Err(err) => {
                            tracing::info!(connection.id = %id, error = %err, "scheduled sync failed");
                            false
                        }
                    };
                    job_done(&job, ok);
                    ok
                }
                .instrument(span)
            })
            .buffer_unordered(self.settings.concurrency.max(1))
            .collect()
            .await;
        let synced = results.iter().filter(|ok| **ok).count();
        Round {
            synced,
            sync_failures: results.len() - synced,
            ..Round::default()
        }
    }

    /// Moves payments on: resumes steps a crash interrupted, polls submitted payments whose poll
    /// is due, closes authorisations nobody finished.
    pub async fn progress_payments(&self, now: Timestamp) -> Round {
        let settings = &self.hub.settings().payments;
        let stale = now.plus_seconds(-settings.stale_seconds);
        let abandoned = now.plus_seconds(-settings.authorisation_ttl_seconds);
        let due = self
            .hub
            .due_payments(now, stale, abandoned, self.settings.batch)
            .await;
        let results: Vec<bool> = stream::iter(due)
            .map(|id| {
                let hub = self.hub.clone();
                let span = job_span("payment step", id.region());
                let job = span.clone();
                async move {
                    let ok = match hub.progress_payment(&id, now).await {
                        Ok(_) | Err(ServiceError::Conflict { .. }) => true,
                        Err(err) => {
                            tracing::info!(payment.id = %id, error = %err, "payment step failed; retried later");
                            false
                        }
                    };
                    job_done(&job, ok);
                    ok
                }
                .instrument(span)
            })
            .buffer_unordered(self.settings.concurrency.max(1))
            .collect()
            .await;
        let done = results.iter().filter(|ok| **ok).count();
        Round {
            payments: done,
            payment_failures: results.len() - done,
            ..Round::default()
        }
    }

    /// Expires lapsed consents, tells tenants about soon-to-lapse ones, closes abandoned links.
    pub async fn lifecycle(&self, now: Timestamp) -> Round {
        let span = tracing::info_span!(
            target: kontor_domain::TRACE_TARGET,
            "worker job",
            otel.name = "worker lifecycle",
            job = "lifecycle",
        );
        self.lifecycle_round(now).instrument(span).await
    }

    async fn lifecycle_round(&self, now: Timestamp) -> Round {
        let mut round = Round::default();
        match self.hub.expire_lapsed(now).await {
            Ok(n) => round.expired = n,
            Err(err) => tracing::warn!(error = %err, "expiring consents failed"),
        }
        match self.hub.announce_expiring(now).await {
            Ok(n) => round.announced = n,
            Err(err) => tracing::warn!(error = %err, "announcing expiring consents failed"),
        }
        match self.hub.abandon_stale_links(now).await {
            Ok(n) => round.abandoned = n,
            Err(err) => tracing::warn!(error = %err, "closing abandoned links failed"),
        }
        // Idempotency keys are kept a week (at least the 24 hours tenants may rely on).
        if let Err(err) = self
            .hub
            .purge_idempotency(now.plus_seconds(-7 * 86_400))
            .await
        {
            tracing::warn!(error = %err, "purging idempotency keys failed");
        }
        round.events_purged = self.hub.enforce_retention(now).await;
        round.changes_purged = self.hub.enforce_change_retention(now).await;
        round
    }

    /// Erasures: resumes those a crash interrupted, revokes erased users' consents at their
    /// banks (retrying with backoff), closes finished ones.
    pub async fn erasures(&self, now: Timestamp) -> kontor_service::ErasureRound {
        let span = tracing::info_span!(
            target: kontor_domain::TRACE_TARGET,
            "worker job",
            otel.name = "worker erasures",
            job = "erasures",
        );
        self.hub.work_erasures(now).instrument(span).await
    }

    /// Backfills what the schema's latest expand step left to fill: today
    /// `transactions.transaction_date` on rows a previous release wrote (cell migration 0012).
    /// Small transactions of `backfill_batch` rows, at most `backfill_batches_per_round` per
    /// cell; each is complete on its own, so a stopped worker loses nothing and the next round
    /// (of this worker or another) goes on. With nothing left it costs one query per cell, on
    /// an empty partial index.
    pub async fn backfill(&self) -> u64 {
        self.hub
            .backfill_transaction_dates(
                self.settings.backfill_batch,
                self.settings.backfill_batches_per_round,
            )
            .await
    }

    /// Everything due at `now`, once.
    pub async fn run_once(&self, now: Timestamp) -> Round {
        let lifecycle = self.lifecycle(now).await;
        let syncs = self.sync_due(now).await;
        let backfilled = self.backfill().await;
        Round {
            synced: syncs.synced,
            sync_failures: syncs.sync_failures,
            backfilled,
            ..lifecycle
        }
    }

    /// Runs until `shutdown` turns true; a round in progress finishes first. Webhook delivery
    /// runs beside the rounds, in its own loop (`webhooks.rs`), and so do the gauges (`gauges.rs`).
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        tracing::info!("worker started");
        let webhooks = tokio::spawn(webhooks::run(self.hub.clone(), shutdown.clone()));
        let gauges = tokio::spawn(gauges::run(
            self.hub.clone(),
            self.settings.gauges_every,
            shutdown.clone(),
        ));
        let mut ticker = tokio::time::interval(self.settings.tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_lifecycle: Option<tokio::time::Instant> = None;
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = shutdown.wait_for(|stop| *stop) => break,
            }
            let now = self.hub.clock().now();
            if last_lifecycle.is_none_or(|at| at.elapsed() >= self.settings.lifecycle_every) {
                let round = self.lifecycle(now).await;
                if round != Round::default() {
                    tracing::info!(
                        expired = round.expired,
                        announced = round.announced,
                        abandoned = round.abandoned,
                        events_purged = round.events_purged,
                        changes_purged = round.changes_purged,
                        "lifecycle round"
                    );
                }
                last_lifecycle = Some(tokio::time::Instant::now());
            }
            let erasures = self.erasures(now).await;
            if erasures != kontor_service::ErasureRound::default() {
                tracing::info!(
                    resumed = erasures.resumed,
                    revoked = erasures.revoked,
                    retried = erasures.retried,
                    failed = erasures.failed,
                    completed = erasures.completed,
                    "erasure round"
                );
            }
            let backfilled = self.backfill().await;
            if backfilled > 0 {
                metrics::counter!("kontor_worker_backfilled_rows_total").increment(backfilled);
                tracing::info!(rows = backfilled, "backfilled transaction dates");
            }
            let payments = self.progress_payments(now).await;
            if payments.payments + payments.payment_failures > 0 {
                tracing::debug!(
                    progressed = payments.payments,
                    failed = payments.payment_failures,
                    "payment round"
                );
            }
            let round = self.sync_due(now).await;
            if round.synced + round.sync_failures > 0 {
                metrics::counter!("kontor_worker_syncs_total")
                    .increment(u64::try_from(round.synced).unwrap_or(0));
                tracing::debug!(
                    synced = round.synced,
                    failed = round.sync_failures,
                    "sync round"
                );
            }
        }
        if let Err(err) = webhooks.await {
            tracing::error!(error = %err, "the webhook loop panicked");
        }
        if let Err(err) = gauges.await {
            tracing::error!(error = %err, "the gauge loop panicked");
        }
        tracing::info!("worker stopped");
    }
}

/// A worker job's span in the exported traces: which job and the region's cell, then how it
/// went — never the connection's or payment's id.
fn job_span(job: &'static str, region: &kontor_domain::Region) -> tracing::Span {
    tracing::info_span!(
        target: kontor_domain::TRACE_TARGET,
        "worker job",
        otel.name = format!("worker {job}"),
        otel.status_code = tracing::field::Empty,
        job,
        region = %region,
        outcome = tracing::field::Empty,
    )
}

fn job_done(span: &tracing::Span, ok: bool) {
    span.record("outcome", if ok { "ok" } else { "failed" });
    if !ok {
        span.record("otel.status_code", "error");
    }
}
