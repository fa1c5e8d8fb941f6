//! The report of `kontor-bench move`: the write pause of the moved tenant (as the engine
//! measured it and as its clients saw it), failed requests per tenant and kind, rows per table
//! as the move verified them and as counted afterwards, payments and webhook events lost, and
//! duplicates.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;
use serde_json::Value;

use super::MoveArgs;
use crate::crash::check::Violation;
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

#[derive(Debug, Clone, Default, Serialize)]
pub struct Payments {
    pub keys_sent: usize,
    pub keys_with_201: usize,
    /// Keys with a 201 whose payment is missing (at the hub or the bank).
    pub accepted_lost: usize,
    /// Amounts executed more than once at the bank.
    pub executed_twice: usize,
    pub hub_status: BTreeMap<String, u64>,
    pub settled: bool,
    pub violations: Vec<Violation>,
}

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
    webhook_duplicates: u64,
) -> MoveBenchReport {
    let verified: Vec<Verified> = body["verified"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|t| Verified {
            table: t["table"].as_str().unwrap_or("?").to_owned(),
            rows: t["target_rows"].as_u64().unwrap_or(0),
            equal: t["equal"].as_bool().unwrap_or(false),
        })
        .collect();
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
