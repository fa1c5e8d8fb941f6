//! The failover report: per database event, Patroni's leader change beside the write outage
//! the hub's clients saw and the requests that failed; for the whole run, what was lost or
//! done twice.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::hub::{HubExit, LogSummary};
use crate::journal::{Failures, Outage};

#[derive(Debug, Clone, Serialize)]
pub struct FailoverReport {
    pub benchmark: &'static str,
    /// `kill`, `switchover` or `maintenance`.
    pub mode: &'static str,
    pub started_at: String,
    pub kontor_version: String,
    pub postgres: String,
    pub settings: Settings,
    pub events: Vec<EventReport>,
    /// Over the kills or switchovers (not the restarts of maintenance).
    pub leader_change_ms: Option<Spread>,
    pub write_outage_ms: Option<Spread>,
    /// Write outage minus leader change, per event.
    pub outage_over_leader_change_ms: Option<Spread>,
    /// The target: the write outage at most the leader change plus this.
    pub target_over_leader_change_ms: u64,
    pub events_within_target: usize,
    /// Every request of the run by kind, and the failed ones.
    pub requests: BTreeMap<&'static str, u64>,
    pub failed: BTreeMap<&'static str, Failures>,
    pub payments: Payments,
    pub webhooks: Webhooks,
    /// What the payment driver saw (POSTs, replays, authorisations), by name.
    pub payment_driver: BTreeMap<String, u64>,
    pub hub_log: LogSummary,
    pub hub_exit: Option<HubExit>,
    pub passed: bool,
    /// Why not, when not.
    pub problems: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    pub before_seconds: u64,
    pub after_seconds: u64,
    pub payment_rate: f64,
    pub payment_workers: u16,
    pub user_workers: u16,
    pub read_workers: u16,
    pub sync_connections: usize,
    pub pause_ms: u64,
    pub outage_bound_ms: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EventReport {
    /// `kill`, `switchover`, `restart replica`, `restart old leader`.
    pub kind: String,
    pub node: String,
    pub new_leader: Option<String>,
    /// Seconds into the run.
    pub at_seconds: f64,
    /// Patroni's own leader change (kill: SIGKILL to another node answering `/primary`;
    /// switchover: demotion to promotion, from Patroni's logs).
    pub leader_change_ms: Option<u64>,
    /// What the script reported besides (rejoin, stop and restart times).
    pub script: serde_json::Value,
    pub outage: Outage,
    pub outage_over_leader_change_ms: Option<i64>,
    pub within_target: Option<bool>,
    /// Requests that ended from the event to the next one (or the end of the load), by kind.
    pub requests: BTreeMap<&'static str, u64>,
    pub failed: BTreeMap<&'static str, Failures>,
}

pub use crate::harness::Payments;

#[derive(Debug, Clone, Default, Serialize)]
pub struct Webhooks {
    /// Events the cells' outboxes hold for the tenant at the end.
    pub events: usize,
    pub delivered: usize,
    pub lost: usize,
    pub lost_examples: Vec<String>,
    pub requests: u64,
    /// Deliveries beyond the first of an event (allowed: at least once).
    pub duplicated_deliveries: u64,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Spread {
    pub runs: usize,
    pub min: f64,
    pub median: f64,
    pub max: f64,
}

impl Spread {
    pub fn of(values: &[f64]) -> Option<Self> {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            f64::midpoint(v[n / 2 - 1], v[n / 2])
        };
        Some(Self {
            runs: n,
            min: v[0],
            median,
            max: v[n - 1],
        })
    }

    #[expect(clippy::float_arithmetic, reason = "seconds for people")]
    fn seconds(self) -> String {
        format!(
            "{:.2} s (min {:.2}, max {:.2}, n = {})",
            self.median / 1000.0,
            self.min / 1000.0,
            self.max / 1000.0,
            self.runs
        )
    }
}

#[expect(
    clippy::float_arithmetic,
    clippy::cast_precision_loss,
    reason = "seconds for people"
)]
fn ms(value: Option<u64>) -> String {
    value.map_or_else(|| "–".to_owned(), |v| format!("{:.2} s", v as f64 / 1000.0))
}

fn failed_list(failed: &BTreeMap<&'static str, Failures>) -> String {
    if failed.is_empty() {
        return "none".to_owned();
    }
    failed
        .iter()
        .map(|(kind, f)| {
            let what = f
                .what
                .iter()
                .map(|(w, n)| format!("{n}× {w}"))
                .collect::<Vec<_>>()
                .join(", ");
            format!(
                "{kind}: {} retryable, {} not ({what})",
                f.retryable, f.not_retryable
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

impl FailoverReport {
    #[expect(clippy::float_arithmetic, reason = "report formatting")]
    pub fn to_markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "## kontor-bench failover ({}), {}\n\n{}; {}.\n",
            self.mode, self.started_at, self.kontor_version, self.postgres
        );
        let s = &self.settings;
        let _ = writeln!(
            out,
            "Load: payments {} keys/s ({} workers, Idempotency-Key retries), {} user writers, {} readers, \
             syncs of {} connections, {} ms pause; {} s before and {} s after each event.\n",
            s.payment_rate,
            s.payment_workers,
            s.user_workers,
            s.read_workers,
            s.sync_connections,
            s.pause_ms,
            s.before_seconds,
            s.after_seconds
        );
        let _ = writeln!(
            out,
            "| event | node → leader | leader change | write outage | over | first failed → ok | writes > 1 s | failed requests |\n|---|---|---|---|---|---|---|---|"
        );
        for e in &self.events {
            let _ = writeln!(
                out,
                "| {} at {:.1} s | {} → {} | {} | {} | {} | {} | {} (max {}) | {} |",
                e.kind,
                e.at_seconds,
                e.node,
                e.new_leader.as_deref().unwrap_or("–"),
                ms(e.leader_change_ms),
                ms(e.outage.write_outage_ms),
                e.outage_over_leader_change_ms.map_or_else(
                    || "–".to_owned(),
                    |v| format!("{:+.2} s", v as f64 / 1000.0)
                ),
                ms(e.outage.first_failed_to_ok_ms),
                e.outage.slow_writes,
                ms(Some(e.outage.slowest_write_ms)),
                failed_list(&e.failed)
            );
        }
        let _ = writeln!(out);
        for e in &self.events {
            // Strict synchronous mode holds commits on the new leader until a standby streams
            // from it (`ops/ha-lab/switchover` reads it from the new leader's log).
            if let Some(sync) = e.script["sync_standby_after_promotion_ms"].as_u64() {
                let _ = writeln!(
                    out,
                    "- {} at {:.1} s: first synchronous standby on {} {} after the promotion",
                    e.kind,
                    e.at_seconds,
                    e.new_leader.as_deref().unwrap_or("the new leader"),
                    ms(Some(sync))
                );
            }
        }
        if let (Some(l), Some(o)) = (self.leader_change_ms, self.write_outage_ms) {
            let _ = writeln!(
                out,
                "- leader change {}; write outage {}",
                l.seconds(),
                o.seconds()
            );
        }
        if let Some(over) = self.outage_over_leader_change_ms {
            let _ = writeln!(
                out,
                "- outage beyond the leader change {}; within the target (+{:.1} s) in {} of {}",
                over.seconds(),
                self.target_over_leader_change_ms as f64 / 1000.0,
                self.events_within_target,
                over.runs
            );
        }
        let p = &self.payments;
        let _ = writeln!(
            out,
            "- payments: {} keys sent, {} with a 201, {} given up; accepted and lost **{}**, executed twice at the bank **{}** ({} executed in all, settled: {})",
            p.keys_sent,
            p.keys_with_201,
            p.keys_given_up,
            p.accepted_lost,
            p.executed_twice,
            p.ledger_executed,
            p.settled
        );
        let w = &self.webhooks;
        let _ = writeln!(
            out,
            "- webhooks: {} events, {} delivered, lost **{}**, duplicated deliveries {} ({} requests)",
            w.events, w.delivered, w.lost, w.duplicated_deliveries, w.requests
        );
        let _ = writeln!(
            out,
            "- requests: {}; failed over the whole run: {}",
            self.requests
                .iter()
                .map(|(k, n)| format!("{n} {k}"))
                .collect::<Vec<_>>()
                .join(", "),
            failed_list(&self.failed)
        );
        for v in p.violations.iter().take(10) {
            let _ = writeln!(out, "- VIOLATION {}: {} ({:?})", v.kind, v.detail, v.key);
        }
        let warnings: Vec<String> = self
            .hub_log
            .messages
            .iter()
            .take(12)
            .map(|(m, n)| format!("{n}× {m}"))
            .collect();
        if !warnings.is_empty() {
            let _ = writeln!(out, "- hub log: {}", warnings.join("; "));
        }
        let _ = writeln!(
            out,
            "- **{}**{}",
            if self.passed { "passed" } else { "FAILED" },
            if self.problems.is_empty() {
                String::new()
            } else {
                format!(": {}", self.problems.join("; "))
            }
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spread_has_the_median_of_odd_and_even_runs() {
        let s = Spread::of(&[3.0, 1.0, 2.0]).unwrap();
        assert_eq!((s.min, s.median, s.max, s.runs), (1.0, 2.0, 3.0, 3));
        let s = Spread::of(&[4.0, 1.0, 2.0, 3.0]).unwrap();
        assert!((s.median - 2.5).abs() < f64::EPSILON);
        assert!(Spread::of(&[]).is_none());
    }
}
