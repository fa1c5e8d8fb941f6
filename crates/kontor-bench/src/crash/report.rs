//! The crash test's report: settings, what the driver and the killer did, the verdict, and for
//! every violation the evidence (the key's timeline, the kills around it, the payment's history
//! at the hub, the hub's log lines about it). Markdown or one JSON object.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::check::Verdict;
use super::killer::KillerStats;
use crate::hub::{HubExit, LogSummary};

#[derive(Debug, Clone, Serialize)]
pub struct CrashSettings {
    pub backend: String,
    pub payments: usize,
    pub concurrency: usize,
    /// New keys per second (`None`: unpaced).
    pub rate: Option<f64>,
    pub seed: u64,
    pub kill_every_ms: (u64, u64),
    pub max_kills: Option<u32>,
    pub concurrent_first_post: f64,
    pub replay_after_201: f64,
    pub abandon_after_error: f64,
    pub hub_payments_config: String,
    pub kontor_version: String,
}

/// What is known about one violation.
#[derive(Debug, Clone, Serialize)]
pub struct Evidence {
    pub violation: usize,
    pub key_timeline: Vec<(u64, String)>,
    pub kills_nearby_ms: Vec<u64>,
    /// `GET /v1/payments/{id}` at the end.
    pub hub_payment: Option<serde_json::Value>,
    /// What the hub's cell database says (phase, lease, next poll), read at the end.
    pub store: Option<super::inspect::StoreRow>,
    pub hub_log: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CrashReport {
    pub started_at: String,
    pub settings: CrashSettings,
    pub passed: bool,
    pub drive_seconds: f64,
    pub settle_seconds: f64,
    /// Whether every hub payment was final before the settle timeout.
    pub settled: bool,
    pub killer: KillerStats,
    pub restart_p50_ms: u64,
    pub restart_max_ms: u64,
    pub counters: BTreeMap<String, u64>,
    pub keys_abandoned: usize,
    pub keys_given_up: usize,
    pub verdict: Verdict,
    pub evidence: Vec<Evidence>,
    pub hub_log: LogSummary,
    pub hub_exit: Option<HubExit>,
}

fn table(md: &mut String, title: &str, rows: impl IntoIterator<Item = (String, u64)>) {
    let _ = writeln!(md, "| {title} | count |\n|---|---:|");
    for (name, count) in rows {
        let _ = writeln!(md, "| {name} | {count} |");
    }
    md.push('\n');
}

impl CrashReport {
    #[expect(clippy::float_arithmetic, reason = "percentages of probabilities")]
    pub fn to_markdown(&self) -> String {
        let mut md = String::new();
        let s = &self.settings;
        let v = &self.verdict;
        let _ = writeln!(md, "### `kontor-bench crash`, {}\n", self.started_at);
        let _ = writeln!(
            md,
            "**{}**: {} violation(s). {} on {}; {} payments{}, {} workers, seed {}, a kill every {}–{} ms{} \
             (first POST doubled {:.0} %, replay after a 201 {:.0} %, abandon after an error {:.0} %). \
             Hub `[payments]`: {}.\n",
            if self.passed { "PASSED" } else { "FAILED" },
            v.violations.len(),
            s.kontor_version,
            s.backend,
            s.payments,
            s.rate
                .map_or_else(String::new, |r| format!(" started at {r}/s")),
            s.concurrency,
            s.seed,
            s.kill_every_ms.0,
            s.kill_every_ms.1,
            s.max_kills
                .map_or_else(String::new, |m| format!(" (at most {m})")),
            s.concurrent_first_post * 100.0,
            s.replay_after_201 * 100.0,
            s.abandon_after_error * 100.0,
            s.hub_payments_config,
        );
        let _ = writeln!(
            md,
            "Driving took {:.1} s with **{} kills** (SIGKILL; restart to ready: p50 {} ms, max {} ms; {} \
             exit(s) the killer did not cause); settling {:.1} s{}.\n",
            self.drive_seconds,
            self.killer.kills,
            self.restart_p50_ms,
            self.restart_max_ms,
            self.killer.unexpected_exits.len(),
            self.settle_seconds,
            if self.settled {
                ""
            } else {
                " (**timed out**: some payments never became final)"
            },
        );
        let n = |x: usize| u64::try_from(x).unwrap_or(u64::MAX);
        let keys = [
            ("keys", n(v.keys)),
            ("keys that got a 201", n(v.keys_with_201)),
            ("keys that never got a 201", n(v.keys_without_201)),
            ("… abandoned after an error", n(self.keys_abandoned)),
            (
                "… given up (no 201 before the deadline)",
                n(self.keys_given_up),
            ),
            (
                "… for which the hub holds a payment anyway",
                n(v.keys_without_201_but_a_hub_payment),
            ),
            ("payments at the hub", n(v.hub_payments)),
            ("payments in the bank's ledger", n(v.ledger_payments)),
            ("… that moved money (executed)", n(v.ledger_executed)),
        ];
        table(
            &mut md,
            "keys and payments",
            keys.iter().map(|(k, n)| ((*k).to_owned(), *n)),
        );
        let prefixed = |prefix: &str, map: &BTreeMap<String, u64>| {
            map.iter()
                .map(|(k, n)| (format!("{prefix}{k}"), *n))
                .collect::<BTreeMap<_, _>>()
        };
        let mut statuses = prefixed("hub, key with a 201: ", &v.hub_status_with_201);
        statuses.extend(prefixed(
            "hub, key without a 201: ",
            &v.hub_status_without_201,
        ));
        statuses.extend(prefixed("bank ledger: ", &v.ledger_status));
        statuses.extend(prefixed(
            "sent back with status=pending after the bank, now: ",
            &v.told_pending,
        ));
        table(&mut md, "final statuses", statuses);
        table(&mut md, "driver", self.counters.clone());
        if !v.violations.is_empty() {
            md.push_str("#### Violations\n\n");
            for (i, x) in v.violations.iter().enumerate() {
                let _ = writeln!(
                    md,
                    "{}. **{}** key `{}` payment `{}`: {}",
                    i + 1,
                    x.kind,
                    x.key.as_deref().unwrap_or("-"),
                    x.payment_id.as_deref().unwrap_or("-"),
                    x.detail
                );
                for e in self.evidence.iter().filter(|e| e.violation == i) {
                    evidence_markdown(&mut md, e);
                }
            }
            md.push('\n');
        }
        if !v.notes.is_empty() {
            md.push_str("#### Notes\n\n");
            for x in &v.notes {
                let _ = writeln!(
                    md,
                    "- {} key `{}` payment `{}`: {}",
                    x.kind,
                    x.key.as_deref().unwrap_or("-"),
                    x.payment_id.as_deref().unwrap_or("-"),
                    x.detail
                );
            }
            md.push('\n');
        }
        for (at, status) in &self.killer.unexpected_exits {
            let _ = writeln!(md, "- the hub exited on its own at {at} ms: {status}");
        }
        let levels: Vec<String> = self
            .hub_log
            .levels
            .iter()
            .map(|(level, n)| format!("{n} {level}"))
            .collect();
        let _ = writeln!(
            md,
            "Hub log (level info, all lives): {} line(s) ({}).",
            self.hub_log.lines,
            levels.join(", ")
        );
        for (message, count) in &self.hub_log.messages {
            let _ = writeln!(md, "- {count} × {message}");
        }
        if let Some(exit) = &self.hub_exit {
            let _ = writeln!(
                md,
                "\nLast life stopped with SIGTERM: {} in {} ms{}.",
                exit.status,
                exit.stop_ms,
                if exit.killed {
                    " (had to be killed)"
                } else {
                    ""
                }
            );
        }
        md
    }
}

fn evidence_markdown(md: &mut String, e: &Evidence) {
    md.push_str("   - timeline (ms since start):\n");
    for (at, what) in &e.key_timeline {
        let _ = writeln!(md, "     - {at}: {what}");
    }
    if !e.kills_nearby_ms.is_empty() {
        let kills: Vec<String> = e.kills_nearby_ms.iter().map(u64::to_string).collect();
        let _ = writeln!(md, "   - kills nearby (ms): {}", kills.join(", "));
    }
    if let Some(p) = &e.hub_payment {
        let history: Vec<String> = p["history"]
            .as_array()
            .map(|h| {
                h.iter()
                    .map(|x| {
                        format!(
                            "{} ({}) at {}",
                            x["status"].as_str().unwrap_or("?"),
                            x["bank_status"].as_str().unwrap_or("-"),
                            x["at"].as_str().unwrap_or("?")
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let _ = writeln!(
            md,
            "   - hub: status `{}`, bank_payment_id `{}`, history: {}",
            p["status"].as_str().unwrap_or("?"),
            p["bank_payment_id"].as_str().unwrap_or("-"),
            history.join(" → ")
        );
    }
    if let Some(row) = &e.store {
        let _ = writeln!(
            md,
            "   - store: phase `{}`, lease {}, next poll {}, {} poll(s), last change {} s before the end",
            row.phase,
            match (&row.lease_owner, row.lease_left_seconds) {
                (Some(owner), Some(left)) => format!("held by `{owner}` for {left} s more"),
                _ => "none".to_owned(),
            },
            row.next_poll_in_seconds
                .map_or_else(|| "none".to_owned(), |s| format!("in {s} s")),
            row.poll_attempts,
            row.seconds_since_update
        );
    }
    if !e.hub_log.is_empty() {
        md.push_str("   - hub log:\n");
        for line in &e.hub_log {
            let _ = writeln!(md, "     - `{line}`");
        }
    }
}
