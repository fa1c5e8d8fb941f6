//! The report of `kontor-bench ingest`: each sync with its rows, its time split into waiting
//! for the bank and the hub's own work, the raw batched INSERT of the same rows, the ratios per
//! kind of sync, and the target.

use std::fmt::Write as _;

use serde::Serialize;

use crate::bank_proxy::BankTime;
use crate::machine::{CpuUse, Machine, cpu_split};
use crate::setup::Ending;
use crate::targets::{self, Target};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncKind {
    /// The sync right after linking: the whole 24 months.
    First,
    /// `POST /v1/connections/{id}/refresh` after the bank's clock moved on a day.
    Daily,
}

impl SyncKind {
    fn label(self) -> &'static str {
        match self {
            Self::First => "first sync (24 months)",
            Self::Daily => "daily re-sync",
        }
    }
}

/// One sync and its baseline.
#[derive(Debug, Clone, Serialize)]
pub struct SyncRun {
    pub kind: SyncKind,
    /// Transactions the hub inserted or updated (its sync report's `added` + `updated`).
    pub rows: u64,
    pub removed: u64,
    pub accounts: usize,
    /// The hub's own measure of the sync (`kontor_sync_duration_seconds`), from claiming the
    /// connection to releasing it.
    pub sync_seconds: f64,
    /// Syncs the hub counted meanwhile (1 unless something else synced).
    pub syncs_counted: f64,
    /// `POST …/refresh` as the tenant saw it (daily re-syncs only).
    pub request_seconds: Option<f64>,
    /// The hub's calls to the bank's account endpoints during the sync, through the proxy.
    pub bank: BankTime,
    /// Rows the baseline wrote (the same rows, read back) and how long its transaction took.
    pub baseline_rows: usize,
    pub baseline_seconds: Option<f64>,
    /// Change-log rows the sync recorded, and how long the baseline took to write the same
    /// rows and these (its whole bulk) in one transaction.
    pub logged: usize,
    pub whole_seconds: Option<f64>,
    pub cpu: Option<CpuUse>,
}

/// The syncs of one kind together.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub kind: SyncKind,
    pub syncs: usize,
    pub rows: u64,
    pub sync_seconds: f64,
    pub bank_seconds: f64,
    pub bank_calls: usize,
    /// Sync time minus the time the hub waited for the bank.
    pub hub_seconds: f64,
    pub rows_per_second: f64,
    pub rows_per_hub_second: f64,
    pub baseline_rows_per_second: f64,
    /// Rows per second through the hub / rows per second of the raw batched INSERT.
    pub ratio: f64,
    /// The same with the hub's time only (bank waits taken out).
    pub ratio_excluding_bank: f64,
    /// Rows per second through the hub / rows per second of the raw INSERTs of the same rows
    /// and their change log (the sync's whole bulk).
    pub ratio_whole_write: f64,
}

#[expect(clippy::float_arithmetic, reason = "rates and ratios are decimals")]
fn per(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { f64::NAN }
}

impl Summary {
    #[expect(clippy::float_arithmetic, reason = "sums of seconds")]
    pub fn of(kind: SyncKind, runs: &[SyncRun]) -> Option<Self> {
        let mine: Vec<&SyncRun> = runs.iter().filter(|r| r.kind == kind).collect();
        if mine.is_empty() {
            return None;
        }
        let rows: u64 = mine.iter().map(|r| r.rows).sum();
        let sync_seconds: f64 = mine.iter().map(|r| r.sync_seconds).sum();
        let bank_seconds: f64 = mine.iter().map(|r| r.bank.seconds).sum();
        let hub_seconds = (sync_seconds - bank_seconds).max(0.0);
        let baseline_rows: usize = mine
            .iter()
            .filter(|r| r.baseline_seconds.is_some())
            .map(|r| r.baseline_rows)
            .sum();
        let baseline_seconds: f64 = mine.iter().filter_map(|r| r.baseline_seconds).sum();
        let whole_seconds: f64 = mine.iter().filter_map(|r| r.whole_seconds).sum();
        let rows_f = rows as f64;
        let baseline_rate = per(baseline_rows as f64, baseline_seconds);
        Some(Self {
            kind,
            syncs: mine.len(),
            rows,
            sync_seconds,
            bank_seconds,
            bank_calls: mine.iter().map(|r| r.bank.calls).sum(),
            hub_seconds,
            rows_per_second: per(rows_f, sync_seconds),
            rows_per_hub_second: per(rows_f, hub_seconds),
            baseline_rows_per_second: baseline_rate,
            ratio: per(per(rows_f, sync_seconds), baseline_rate),
            ratio_excluding_bank: per(per(rows_f, hub_seconds), baseline_rate),
            ratio_whole_write: per(
                per(rows_f, sync_seconds),
                per(baseline_rows as f64, whole_seconds),
            ),
        })
    }

    /// Issue 12's target for sync ingest, on the whole sync and on the hub's share of it.
    pub fn targets(&self) -> [Target; 2] {
        let label = self.kind.label();
        [
            Target::at_least(
                &format!("{label}: rows/s through the hub / raw batched INSERT"),
                self.ratio,
                0.5,
                "",
            ),
            Target::at_least(
                &format!("{label}: the same, bank waits taken out of the hub's time"),
                self.ratio_excluding_bank,
                0.5,
                "",
            )
            .noted("not the target's definition; shows what the hub itself costs"),
        ]
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct IngestSettings {
    pub first_syncs: u16,
    pub daily_syncs: u16,
    pub batch_rows: usize,
    pub hub_pool: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct IngestReport {
    pub benchmark: String,
    pub started_at: String,
    pub settings: IngestSettings,
    pub machine: Machine,
    pub runs: Vec<SyncRun>,
    pub summaries: Vec<Summary>,
    pub targets: Vec<Target>,
    pub ending: Option<Ending>,
    pub load_average_at_end: String,
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "—".to_owned(), |x| format!("{x:.digits$}"))
}

impl IngestReport {
    #[expect(clippy::float_arithmetic, reason = "per-sync rates and ratios")]
    pub fn to_markdown(&self) -> String {
        let mut md = String::new();
        let s = &self.settings;
        let _ = writeln!(md, "### `kontor-bench ingest`, {}\n", self.started_at);
        md.push_str(&self.machine.markdown_line(
            "this tool (with the sandbox bank and its proxy inside), the hub and PostgreSQL",
        ));
        let _ = writeln!(
            md,
            "Settings: {} first syncs (each a new user linking alice at Sonnenbank, all accounts), \
             then {} daily re-syncs of the last connection; baseline INSERTs of {} rows each. \
             Hub pool: {}; no worker in the hub.\n",
            s.first_syncs, s.daily_syncs, s.batch_rows, s.hub_pool
        );
        md.push_str(
            "| sync | rows | removed | sync s | bank s (calls) | hub s | rows/s | rows/s, hub time | \
             baseline s | baseline rows/s | ratio | ratio, hub time | with the log: rows, s, ratio | \
             CPU s hub / PostgreSQL / tool+bank / other |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|\n",
        );
        for (n, r) in self.runs.iter().enumerate() {
            let hub = (r.sync_seconds - r.bank.seconds).max(0.0);
            let rate = per(r.rows as f64, r.sync_seconds);
            let hub_rate = per(r.rows as f64, hub);
            let base = r.baseline_seconds.map(|t| per(r.baseline_rows as f64, t));
            let cpu = cpu_split(r.cpu.as_ref());
            let _ = writeln!(
                md,
                "| {} {} | {} | {} | {:.3} | {:.3} ({}) | {:.3} | {:.0} | {:.0} | {} | {} | {} | {} | {}, {}, {} | {cpu} |",
                r.kind.label(),
                n + 1,
                r.rows,
                r.removed,
                r.sync_seconds,
                r.bank.seconds,
                r.bank.calls,
                hub,
                rate,
                hub_rate,
                opt(r.baseline_seconds, 4),
                opt(base, 0),
                opt(base.map(|b| per(rate, b)), 3),
                opt(base.map(|b| per(hub_rate, b)), 3),
                r.logged,
                opt(r.whole_seconds, 4),
                opt(r.whole_seconds.map(|t| per(t, r.sync_seconds)), 3),
            );
        }
        md.push_str(
            "\n| kind | syncs | rows | sync s | bank s (calls) | hub s | rows/s | rows/s, hub time | \
             baseline rows/s | **ratio** | ratio, hub time | ratio, with the log |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        );
        for x in &self.summaries {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {:.3} | {:.3} ({}) | {:.3} | {:.0} | {:.0} | {:.0} | **{:.3}** | {:.3} | {:.3} |",
                x.kind.label(),
                x.syncs,
                x.rows,
                x.sync_seconds,
                x.bank_seconds,
                x.bank_calls,
                x.hub_seconds,
                x.rows_per_second,
                x.rows_per_hub_second,
                x.baseline_rows_per_second,
                x.ratio,
                x.ratio_excluding_bank,
                x.ratio_whole_write
            );
        }
        for r in self
            .runs
            .iter()
            .filter(|r| (r.syncs_counted - 1.0).abs() > f64::EPSILON)
        {
            let _ = writeln!(
                md,
                "\n- a {} overlapped {} syncs counted by the hub; its time is their sum",
                r.kind.label(),
                r.syncs_counted
            );
        }
        md.push_str("\nTargets (issue 12):\n\n");
        md.push_str(&targets::markdown(&self.targets));
        if let Some(ending) = &self.ending {
            let _ = writeln!(
                md,
                "\nHub log (at level warn): {} line(s).",
                ending.hub_log.lines
            );
            for (message, count) in &ending.hub_log.messages {
                let _ = writeln!(md, "- {count} × {message}");
            }
        }
        let _ = writeln!(
            md,
            "\nLoad average at the end: {}.",
            self.load_average_at_end
        );
        md
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[expect(clippy::float_arithmetic, reason = "the whole write's time, made up")]
    fn run(kind: SyncKind, rows: u64, sync: f64, bank: f64, base: Option<f64>) -> SyncRun {
        SyncRun {
            kind,
            rows,
            removed: 0,
            accounts: 3,
            sync_seconds: sync,
            syncs_counted: 1.0,
            request_seconds: None,
            bank: BankTime {
                calls: 10,
                seconds: bank,
            },
            baseline_rows: usize::try_from(rows).unwrap(),
            baseline_seconds: base,
            logged: usize::try_from(rows).unwrap(),
            whole_seconds: base.map(|b| b * 2.0),
            cpu: None,
        }
    }

    #[track_caller]
    #[expect(clippy::float_arithmetic, reason = "comparing decimals")]
    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-9 * b.abs().max(1.0), "{a} != {b}");
    }

    #[test]
    fn summaries_add_up_each_kind_on_its_own() {
        let runs = [
            run(SyncKind::First, 1000, 2.0, 1.0, Some(0.1)),
            run(SyncKind::First, 1000, 2.0, 1.0, Some(0.1)),
            run(SyncKind::Daily, 5, 0.5, 0.25, Some(0.001)),
            // A re-sync that wrote nothing has no baseline and adds no rows.
            run(SyncKind::Daily, 0, 0.5, 0.25, None),
        ];
        let first = Summary::of(SyncKind::First, &runs).unwrap();
        assert_eq!(first.syncs, 2);
        assert_eq!(first.rows, 2000);
        close(first.rows_per_second, 500.0);
        close(first.rows_per_hub_second, 1000.0);
        close(first.baseline_rows_per_second, 10_000.0);
        close(first.ratio, 0.05);
        close(first.ratio_excluding_bank, 0.1);
        // The whole write took twice the transactions' INSERT in these runs.
        close(first.ratio_whole_write, 0.1);
        let daily = Summary::of(SyncKind::Daily, &runs).unwrap();
        assert_eq!(daily.rows, 5);
        close(daily.baseline_rows_per_second, 5000.0);
        close(daily.rows_per_second, 5.0);
        assert_eq!(daily.bank_calls, 20);
        let [whole, hub_only] = first.targets();
        assert_eq!(whole.met, Some(false));
        assert_eq!(hub_only.met, Some(false));
        assert!(Summary::of(SyncKind::Daily, &runs[..2]).is_none());
    }
}
