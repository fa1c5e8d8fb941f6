//! The report of `kontor-bench reads`: the closed-loop peaks against the bare SQL (the shared
//! [`Report`]), the open-loop latencies at fixed offered rates, the hub's idle memory, and the
//! issue's targets with whether each was met.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::Serialize;

use super::{Endpoint, ReadsArgs};
use crate::machine::{CpuUse, cpu_split};
use crate::open_loop::OpenMeasured;
use crate::report::{Comparison, Report};
use crate::targets::{self, Target};

/// The figures of an open-loop phase, as reported.
#[derive(Debug, Clone, Serialize)]
pub struct OpenPhaseReport {
    pub name: String,
    pub offered_per_second: u32,
    pub scheduled: u64,
    pub answered: u64,
    pub errors: u64,
    pub error_kinds: BTreeMap<String, u64>,
    pub answered_per_second: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub send_lag_p99_ms: f64,
    pub send_lag_max_ms: f64,
    pub max_in_flight: usize,
    pub cpu: Option<CpuUse>,
}

#[expect(clippy::float_arithmetic, reason = "latencies are reported in ms")]
fn quantile_ms(h: &Histogram<u64>, q: f64) -> f64 {
    if h.is_empty() {
        0.0
    } else {
        h.value_at_quantile(q) as f64 / 1000.0
    }
}

impl OpenPhaseReport {
    #[expect(clippy::float_arithmetic, reason = "rates and latencies are decimals")]
    pub fn new(name: &str, m: &OpenMeasured) -> Self {
        let seconds = m.window.as_secs_f64();
        Self {
            name: name.to_owned(),
            offered_per_second: m.rate,
            scheduled: m.scheduled,
            answered: m.answered,
            errors: m.errors.values().sum(),
            error_kinds: m.errors.clone(),
            answered_per_second: if seconds > 0.0 {
                m.answered as f64 / seconds
            } else {
                0.0
            },
            p50_ms: quantile_ms(&m.latency_us, 0.50),
            p90_ms: quantile_ms(&m.latency_us, 0.90),
            p99_ms: quantile_ms(&m.latency_us, 0.99),
            p999_ms: quantile_ms(&m.latency_us, 0.999),
            max_ms: m.latency_us.max() as f64 / 1000.0,
            send_lag_p99_ms: quantile_ms(&m.send_lag_us, 0.99),
            send_lag_max_ms: m.send_lag_us.max() as f64 / 1000.0,
            max_in_flight: m.max_in_flight,
            cpu: m.cpu,
        }
    }
}

/// What the hub held while it was measured.
#[derive(Debug, Clone, Serialize)]
pub struct Dataset {
    pub accounts: usize,
    /// Transactions of the account whose first page is read.
    pub page_account_transactions: i64,
    /// Transactions of the linked user, all accounts.
    pub transactions: i64,
    /// Users whose `GET /v1/users/{id}` is read (the linked user among them).
    pub users: usize,
}

/// Resident memory of `kontor serve`, in KiB (`VmRSS`).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct IdleRss {
    /// Right after `/readyz` answered, before anything was linked.
    pub after_start_kib: Option<u64>,
    /// After linking and the first sync, the setup's users, and a rest.
    pub before_load_kib: Option<u64>,
    /// After every phase, and a rest.
    pub after_load_kib: Option<u64>,
    pub rest_seconds: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReadsReport {
    #[serde(flatten)]
    pub base: Report,
    pub dataset: Dataset,
    pub open_loop: Vec<OpenPhaseReport>,
    pub idle_rss: IdleRss,
    pub targets: Vec<Target>,
    pub load_average_at_end: String,
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or_else(
        || "unknown".to_owned(),
        |k| format!("{}.{} MiB", k / 1024, (k % 1024) * 10 / 1024),
    )
}

impl ReadsReport {
    pub fn to_markdown(&self) -> String {
        let mut md = self.base.to_markdown();
        let d = &self.dataset;
        let _ = writeln!(
            md,
            "\nData: one connection (alice at Sonnenbank, Berlin Group, linked through the sandbox \
             with redirect SCA), {} accounts, {} transactions; the page is read from the account \
             with {} of them. {} users for `GET /v1/users/{{id}}`.",
            d.accounts, d.transactions, d.page_account_transactions, d.users
        );
        md.push_str(
            "\nOpen loop (requests sent on schedule whether or not earlier ones answered; \
             latency from the scheduled send time):\n\n\
             | phase | offered req/s | scheduled | answered | errors | p50 ms | p90 ms | p99 ms | \
             p99.9 ms | max ms | loader lag p99 ms | most in flight | CPU s hub / PostgreSQL / loader / other |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n",
        );
        for p in &self.open_loop {
            let cpu = cpu_split(p.cpu.as_ref());
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {cpu} |",
                p.name,
                p.offered_per_second,
                p.scheduled,
                p.answered,
                p.errors,
                p.p50_ms,
                p.p90_ms,
                p.p99_ms,
                p.p999_ms,
                p.max_ms,
                p.send_lag_p99_ms,
                p.max_in_flight
            );
        }
        for p in &self.open_loop {
            for (kind, count) in &p.error_kinds {
                let _ = writeln!(md, "- {}: {count} × {kind}", p.name);
            }
        }
        let r = &self.idle_rss;
        let _ = writeln!(
            md,
            "\nResident memory of `kontor serve` (`VmRSS`): {} right after start-up; {} idle after \
             the setup; {} idle after the load ({} s rest before each idle reading).\n",
            mib(r.after_start_kib),
            mib(r.before_load_kib),
            mib(r.after_load_kib),
            r.rest_seconds
        );
        md.push_str("Targets (issue 12):\n\n");
        md.push_str(&targets::markdown(&self.targets));
        let _ = writeln!(
            md,
            "\nLoad average at the end: {}.",
            self.load_average_at_end
        );
        md
    }
}

/// Issue 12's targets for the reads, from the figures of this run.
#[expect(clippy::float_arithmetic, reason = "KiB to MiB for the memory target")]
pub fn check_targets(
    args: &ReadsArgs,
    comparisons: &[Comparison],
    open: &[OpenPhaseReport],
    rss: &IdleRss,
) -> Vec<Target> {
    let mut out = Vec::new();
    let ratio = |n: usize| comparisons.get(n).map_or(f64::NAN, |c| c.throughput_ratio);
    out.push(Target::at_least(
        "transaction page: peak through the hub / the same SQL directly",
        ratio(0),
        0.6,
        "",
    ));
    let latency = |n: usize, limit: f64, at: u32, offered: u32| {
        let Some(p) = open.get(n) else {
            return Target::at_most("missing phase", f64::NAN, limit, "ms").unchecked("not run");
        };
        let target = Target::at_most(
            &format!("{}: p99 at {at} req/s offered", Endpoint::ALL[n].api()),
            p.p99_ms,
            limit,
            "ms",
        );
        if offered != at {
            target.unchecked(&format!("this run offered {offered} req/s"))
        } else if p.errors > 0 {
            target.missed(&format!("{} requests failed or went unanswered", p.errors))
        } else {
            target
        }
    };
    out.push(latency(0, 5.0, 1000, args.page_rate));
    out.push(latency(3, 2.0, 2000, args.user_rate));
    out.push(Target::at_least(
        "`GET /v1/users/{id}`: peak through the hub / the same SQL directly",
        ratio(3),
        0.5,
        "",
    ));
    for (name, kib) in [
        (
            "idle RSS of `kontor serve` after the setup",
            rss.before_load_kib,
        ),
        (
            "idle RSS of `kontor serve` after the load",
            rss.after_load_kib,
        ),
    ] {
        let target = Target::at_most(
            name,
            kib.map_or(f64::NAN, |k| k as f64 / 1024.0),
            30.0,
            "MiB",
        );
        out.push(if kib.is_none() {
            target.unchecked("`/proc` could not tell")
        } else {
            target
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_reads_in_mib_with_one_decimal() {
        assert_eq!(mib(Some(30 * 1024)), "30.0 MiB");
        assert_eq!(mib(Some(27_750)), "27.0 MiB");
        assert_eq!(mib(Some(28_160)), "27.5 MiB");
        assert_eq!(mib(None), "unknown");
    }
}
