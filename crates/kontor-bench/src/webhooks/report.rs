//! The webhooks benchmark's report, as Markdown for `docs/BENCHMARKS.md` or as one JSON object.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use serde::Serialize;

use crate::hub::{HubExit, LogSummary};
use crate::machine::Machine;

#[derive(Debug, Clone, Serialize)]
pub struct WebhookSettings {
    pub backlog_events: usize,
    pub users_per_cell: usize,
    pub workers: usize,
    pub worker_concurrency: usize,
    pub poll_ms: u64,
    pub rate_per_second: u32,
    pub steady_seconds: u64,
    /// Seconds between `ANALYZE`s of the cells' queue tables during the run; 0: none.
    pub analyze_every_seconds: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Drain {
    pub events: usize,
    /// From starting the workers to the last event's arrival (includes process start-up).
    pub total_seconds: f64,
    pub total_per_second: f64,
    /// Between the arrivals of the 10 % and the 90 % event: the steady rate.
    pub steady_per_second: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Delay {
    pub events: usize,
    pub delivered: usize,
    pub offered_per_second: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct WebhookReport {
    pub benchmark: String,
    pub started_at: String,
    pub settings: WebhookSettings,
    pub machine: Machine,
    pub drain: Drain,
    pub delay: Delay,
    /// Requests the receiver got beyond one per event.
    pub duplicates: u64,
    pub deliveries_by_state: BTreeMap<String, i64>,
    pub attempts: i64,
    /// The same POSTs sent by this process straight to the receiver.
    pub baseline_per_second: f64,
    pub baseline_connections: usize,
    pub workers_log: LogSummary,
    pub hub_exit: Option<HubExit>,
}

impl WebhookReport {
    pub fn states(raw: HashMap<String, i64>) -> BTreeMap<String, i64> {
        raw.into_iter().collect()
    }

    pub fn to_markdown(&self) -> String {
        let mut md = String::new();
        let s = &self.settings;
        let m = &self.machine;
        let _ = writeln!(md, "### `kontor-bench webhooks`, {}\n", self.started_at);
        md.push_str(&m.markdown_line(
            "this tool (the receiver and the event writer), the hub, its workers and PostgreSQL",
        ));
        let _ = writeln!(
            md,
            "Settings: {} `kontor worker` processes × {} attempts in flight, poll every {} ms; \
             backlog of {} events over {} users per cell (cells `uk` and `de`); then {} events/s \
             for {} s; {}.\n",
            s.workers,
            s.worker_concurrency,
            s.poll_ms,
            s.backlog_events,
            s.users_per_cell,
            s.rate_per_second,
            s.steady_seconds,
            if s.analyze_every_seconds == 0 {
                "the queue tables left to autovacuum (fresh databases: no statistics during the run)"
                    .to_owned()
            } else {
                format!(
                    "`events` and `webhook_deliveries` analysed every {} s, standing in for \
                     autovacuum on a database in service",
                    s.analyze_every_seconds
                )
            }
        );
        let d = &self.drain;
        md.push_str("| phase | events | deliveries/s | note |\n|---|---:|---:|---|\n");
        let _ = writeln!(
            md,
            "| backlog drain, steady (10 %–90 % of arrivals) | {} | {:.0} | |",
            d.events, d.steady_per_second
        );
        let _ = writeln!(
            md,
            "| backlog drain, whole | {} | {:.0} | {:.1} s from starting the workers, start-up included |",
            d.events, d.total_per_second, d.total_seconds
        );
        let _ = writeln!(
            md,
            "| baseline: the same POSTs straight from this process | — | {:.0} | {} connections |",
            self.baseline_per_second, self.baseline_connections
        );
        let y = &self.delay;
        let _ = writeln!(
            md,
            "\nCommit-to-delivery delay at {:.0} events/s ({} of {} delivered): \
             **p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms**, max {:.1} ms.\n",
            y.offered_per_second, y.delivered, y.events, y.p50_ms, y.p90_ms, y.p99_ms, y.max_ms
        );
        let states: Vec<String> = self
            .deliveries_by_state
            .iter()
            .map(|(state, n)| format!("{state} {n}"))
            .collect();
        let _ = writeln!(
            md,
            "Deliveries: {}; {} attempts; {} duplicate requests at the receiver.",
            states.join(", "),
            self.attempts,
            self.duplicates
        );
        if self.workers_log.messages.is_empty() {
            md.push_str("The workers logged nothing at warn or above.\n");
        } else {
            md.push_str("The workers logged:\n");
            for (message, n) in &self.workers_log.messages {
                let _ = writeln!(md, "- {n} × {message}");
            }
        }
        md
    }
}
