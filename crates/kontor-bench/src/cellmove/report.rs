//! The report of `kontor-bench move`: the write pause of the moved tenant (as the engine
//! measured it and as its clients saw it), failed requests per tenant and kind, rows per table
//! as the move verified them and as counted afterwards, payments and webhook events lost, and
//! duplicates.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;
use serde_json::Value;

use super::MoveArgs;
use crate::journal::Failures;

#[derive(Debug, Clone, Serialize)]
pub struct Seeding {
    pub links: u64,
    pub transactions_per_link: i64,
    pub transactions: i64,
    pub seconds: f64,
    /// Whether both cells were analyzed after seeding (`--no-analyze` not given).
    pub analyzed: bool,
}

pub use crate::harness::Payments;

#[derive(Debug, Clone, Default, Serialize)]
pub struct Webhooks {
    pub events: usize,
    pub delivered: usize,
    pub lost: usize,
    pub lost_examples: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TenantLoad {
    pub tenant: &'static str,
    pub tenant_id: String,
    pub requests: BTreeMap<String, u64>,
    pub failed: BTreeMap<String, Failures>,
    /// The longest gap between two acknowledged writes from the last before the move on.
    pub write_gap_ms: Option<u64>,
    /// Where it began, ms after the move started.
    pub write_gap_from_ms: Option<i64>,
    pub payments: Payments,
    pub webhooks: Webhooks,
}

/// Rows of the moved tenant in each cell after the move.
#[derive(Debug, Clone, Serialize)]
pub struct Rows {
    pub table: String,
    pub de_1: i64,
    pub de_2: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Verified {
    pub table: String,
    pub rows: u64,
    pub equal: bool,
}

/// The move's kills (`--kills`).
#[derive(Debug, Clone, Serialize)]
pub struct Killed {
    pub asked: u16,
    pub kills: Vec<super::kills::Kill>,
    /// Processes of `kontor cells move` started, the last `--resume` included.
    pub runs: u32,
    /// `--resume` runs that ended in an error before one ended `done`.
    pub failed_resumes: Vec<String>,
    /// The journal's `frozen_at` to `switched_at` (over every run), ms.
    pub journal_write_pause_ms: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MoveBenchReport {
    pub benchmark: &'static str,
    pub started_at: String,
    pub kontor_version: String,
    pub postgres: String,
    pub load_average: String,
    pub settings: Value,
    pub seeding: Seeding,
    pub move_exit: String,
    pub move_phase: Option<String>,
    /// `kontor cells move` from start to exit, ms.
    pub move_ms: u64,
    /// The write pause as the engine reports it (source fence to target open).
    pub engine_write_pause_ms: Option<f64>,
    pub freeze_steps: Value,
    pub phases: Value,
    pub verified: Vec<Verified>,
    pub rows_after: Vec<Rows>,
    pub tenants: Vec<TenantLoad>,
    /// With `--kills`: each kill and its phase, the runs, the pause per the journal.
    pub killed: Option<Killed>,
    /// Webhook requests beyond one per distinct event (both tenants).
    pub webhook_duplicates: u64,
    pub load_seconds: f64,
    pub move_output: Value,
    pub move_stderr: String,
    pub passed: bool,
    pub problems: Vec<String>,
    pub hub_log: crate::hub::LogSummary,
    pub hub_exit: Option<crate::hub::HubExit>,
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

#[expect(
    clippy::too_many_arguments,
    clippy::float_arithmetic,
    clippy::cast_precision_loss,
    reason = "the report's parts; seconds for people"
)]
pub fn assemble(
    args: &MoveArgs,
    seeding: Seeding,
    (run_start, load_end): (u64, u64),
    (move_start, move_end): (u64, u64),
    move_exit: String,
    body: Value,
    move_stderr: String,
    tenants: Vec<TenantLoad>,
    rows_after: Vec<Rows>,
    killed: Option<Killed>,
    webhook_duplicates: u64,
) -> MoveBenchReport {
    let verified = verified_of(&body);
    let phase = body["phase"].as_str().map(str::to_owned);
    let mut problems = Vec::new();
    if phase.as_deref() != Some("done") {
        problems.push(format!(
            "the move did not finish ({move_exit}): {}",
            body["error"]
        ));
    }
    if verified.is_empty() || verified.iter().any(|v| !v.equal) {
        problems.push("the move's verification is missing or found a difference".to_owned());
    }
    if seeding.transactions < i64::try_from(args.transactions).unwrap_or(i64::MAX) {
        problems.push(format!(
            "only {} transactions were seeded",
            seeding.transactions
        ));
    }
    for r in &rows_after {
        if r.de_1 != 0 {
            problems.push(format!("{} rows of {} left in de-1", r.de_1, r.table));
        }
    }
    if let Some(t) = rows_after.iter().find(|r| r.table == "transactions")
        && t.de_2 < seeding.transactions
    {
        problems.push(format!(
            "de-2 holds {} transactions of the {} seeded",
            t.de_2, seeding.transactions
        ));
    }
    if let Some(k) = &killed {
        if k.kills.iter().all(|k| !k.landed) {
            problems.push(format!(
                "none of the {} kill(s) asked for hit a running move",
                k.asked
            ));
        }
        if !k.failed_resumes.is_empty() {
            problems.push(format!(
                "{} run(s) of --resume failed: {}",
                k.failed_resumes.len(),
                k.failed_resumes.join(" / ")
            ));
        }
    }
    for t in &tenants {
        if t.tenant != "moved" && !t.failed.is_empty() {
            let n: u64 = t
                .failed
                .values()
                .map(|f| f.retryable + f.not_retryable)
                .sum();
            problems.push(format!("{n} failed request(s) of the {} tenant", t.tenant));
        }
        if t.payments.accepted_lost > 0 || t.payments.executed_twice > 0 {
            problems.push(format!(
                "{} tenant: {} accepted payment(s) lost, {} executed twice",
                t.tenant, t.payments.accepted_lost, t.payments.executed_twice
            ));
        }
        if !t.payments.violations.is_empty() {
            problems.push(format!(
                "{} tenant: {} violation(s) of exactly-once",
                t.tenant,
                t.payments.violations.len()
            ));
        }
        if !t.payments.settled {
            problems.push(format!("{} tenant: payments not final", t.tenant));
        }
        if t.webhooks.lost > 0 {
            problems.push(format!(
                "{} tenant: {} webhook event(s) never delivered",
                t.tenant, t.webhooks.lost
            ));
        }
    }
    MoveBenchReport {
        benchmark: "move",
        started_at: String::new(),
        kontor_version: String::new(),
        postgres: String::new(),
        load_average: load_average(),
        settings: serde_json::json!({
            "transactions": args.transactions,
            "before_seconds": args.before,
            "after_seconds": args.after,
            "grace_seconds": args.grace,
            "payment_rate_per_tenant": args.payment_rate,
            "payment_workers_per_tenant": args.payment_workers,
            "read_workers_per_tenant": args.read_workers,
            "pause_ms": args.pause_ms,
            "kills": args.kills,
            "kill_jitter_ms": args.kill_jitter_ms,
        }),
        seeding,
        move_exit,
        move_phase: phase,
        move_ms: move_end.saturating_sub(move_start),
        engine_write_pause_ms: body["write_pause_ms"].as_f64(),
        freeze_steps: body["freeze_steps"].clone(),
        phases: body["phases"].clone(),
        verified,
        rows_after,
        tenants,
        killed,
        webhook_duplicates,
        load_seconds: load_end.saturating_sub(run_start) as f64 / 1000.0,
        move_output: body,
        move_stderr,
        passed: problems.is_empty(),
        problems,
        hub_log: crate::hub::LogSummary::default(),
        hub_exit: None,
    }
}

/// The tables the move verified, from its `--json` output: `verified` when this run made the
/// freeze's checks, else the journal's `verification` (written only when every table matched,
/// so a resume after the freeze reports it).
fn verified_of(body: &Value) -> Vec<Verified> {
    let list = |v: &Value| v.as_array().map(Vec::as_slice).unwrap_or_default().to_vec();
    let made = list(&body["verified"]);
    if !made.is_empty() {
        return made
            .iter()
            .map(|t| Verified {
                table: t["table"].as_str().unwrap_or("?").to_owned(),
                rows: t["target_rows"].as_u64().unwrap_or(0),
                equal: t["equal"].as_bool().unwrap_or(false),
            })
            .collect();
    }
    list(&body["verification"])
        .iter()
        .map(|t| Verified {
            table: t["table"].as_str().unwrap_or("?").to_owned(),
            rows: t["rows"].as_u64().unwrap_or(0),
            equal: t["hash"].is_string(),
        })
        .collect()
}

impl MoveBenchReport {
    pub fn to_markdown(&self) -> String {
        let mut md = String::new();
        let ms = |v: Option<u64>| v.map_or_else(|| "–".to_owned(), |v| format!("{v} ms"));
        let _ = writeln!(
            md,
            "## kontor-bench move — {} ({}, {})\n",
            self.started_at, self.kontor_version, self.postgres
        );
        let _ = writeln!(
            md,
            "Load average at the end: {}. Seeded {} transactions for the moved tenant with {} links ({} per link) in {:.1} s; cells analyzed after seeding: {}.\n",
            self.load_average,
            self.seeding.transactions,
            self.seeding.links,
            self.seeding.transactions_per_link,
            self.seeding.seconds,
            self.seeding.analyzed
        );
        let _ = writeln!(
            md,
            "- move: {} ({}), {} ms from start to exit",
            self.move_phase.as_deref().unwrap_or("not done"),
            self.move_exit,
            self.move_ms
        );
        let _ = writeln!(
            md,
            "- write pause as the engine reports it: {}",
            self.engine_write_pause_ms
                .map_or_else(|| "–".to_owned(), |v| format!("{v} ms"))
        );
        let _ = writeln!(md, "- freeze steps: {}", self.freeze_steps);
        if let Some(k) = &self.killed {
            let _ = writeln!(
                md,
                "- kills: {} asked, {} landed; {} runs of `kontor cells move` in all; write pause per the journal (frozen_at → switched_at, over every run): {}",
                k.asked,
                k.kills.iter().filter(|k| k.landed).count(),
                k.runs,
                k.journal_write_pause_ms
                    .map_or_else(|| "–".to_owned(), |v| format!("{v:.0} ms"))
            );
        }
        let _ = writeln!(md, "- phases: {}", self.phases);
        let _ = writeln!(
            md,
            "- webhook requests beyond one per event (duplicates): {}\n",
            self.webhook_duplicates
        );
        let _ = writeln!(
            md,
            "| tenant | requests | failed (by kind) | longest gap between acknowledged writes | payments 201 / lost / twice | events / delivered / lost |"
        );
        let _ = writeln!(md, "|---|---|---|---|---|---|");
        for t in &self.tenants {
            let requests: Vec<String> =
                t.requests.iter().map(|(k, v)| format!("{k} {v}")).collect();
            let failed: Vec<String> = t
                .failed
                .iter()
                .map(|(k, f)| {
                    let what: Vec<String> =
                        f.what.iter().map(|(w, n)| format!("{n}× {w}")).collect();
                    format!("{k}: {}", what.join(", "))
                })
                .collect();
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} / {} / {} | {} / {} / {} |",
                t.tenant,
                requests.join(", "),
                if failed.is_empty() {
                    "0".to_owned()
                } else {
                    failed.join("; ")
                },
                ms(t.write_gap_ms),
                t.payments.keys_with_201,
                t.payments.accepted_lost,
                t.payments.executed_twice,
                t.webhooks.events,
                t.webhooks.delivered,
                t.webhooks.lost
            );
        }
        let _ = writeln!(
            md,
            "\n| table | rows verified by the move | equal | moved tenant's rows after: de-1 | de-2 |"
        );
        let _ = writeln!(md, "|---|---|---|---|---|");
        for v in &self.verified {
            let after = self.rows_after.iter().find(|r| r.table == v.table);
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} |",
                v.table,
                v.rows,
                v.equal,
                after.map_or_else(|| "–".to_owned(), |r| r.de_1.to_string()),
                after.map_or_else(|| "–".to_owned(), |r| r.de_2.to_string()),
            );
        }
        if let Some(k) = &self.killed {
            let _ = writeln!(
                md,
                "\n| kill | aimed at | phase in the journal when it died | ms into the move | ms after the phase showed | run |"
            );
            let _ = writeln!(md, "|---|---|---|---|---|---|");
            for (i, kill) in k.kills.iter().enumerate() {
                let _ = writeln!(
                    md,
                    "| {} | {} | {}{} | {} | {} | {} |",
                    i + 1,
                    kill.aimed,
                    kill.phase,
                    if kill.landed { "" } else { " (had ended)" },
                    kill.at_ms,
                    kill.waited_ms,
                    kill.run
                );
            }
        }
        let _ = writeln!(
            md,
            "\n{}",
            if self.passed {
                "Passed.".to_owned()
            } else {
                format!("FAILED: {}", self.problems.join("; "))
            }
        );
        md
    }
}
