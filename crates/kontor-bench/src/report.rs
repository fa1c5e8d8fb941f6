//! The report of a run: per phase requests, errors, throughput and latency percentiles, the
//! API/baseline ratios, the machine, and what the hub did besides answering. Rendered as Markdown
//! (for `docs/BENCHMARKS.md`) or as one JSON object.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;

use anyhow::Context;
use serde::Serialize;

use crate::load::Measured;
use crate::machine::{Machine, seconds};
use crate::setup::Ending;

#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    pub concurrency: usize,
    pub warmup_seconds: u64,
    pub duration_seconds: u64,
    /// How many times the phases ran in turn; each phase's figures merge its rounds.
    pub rounds: u16,
    /// What the hub's pools allow, as configured for the run.
    pub hub_pool: String,
    pub baseline_pool: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct PhaseReport {
    pub name: String,
    pub requests: u64,
    pub errors: u64,
    pub error_kinds: BTreeMap<String, u64>,
    pub throughput_per_second: f64,
    /// Throughput of each round on its own.
    pub round_throughput: Vec<f64>,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Fewest and most successful requests in any one second of the window.
    pub slowest_second: u64,
    pub fastest_second: u64,
    /// Successful requests in each second of the window, and the slowest of them (ms).
    pub per_second: Vec<u64>,
    pub per_second_max_ms: Vec<f64>,
    pub cpu: Option<crate::machine::CpuUse>,
    /// Hub counters that moved during the phase (database retries), by series.
    pub hub_counters: BTreeMap<String, f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub name: String,
    pub api: String,
    pub baseline: String,
    /// API throughput divided by baseline throughput (below 1: the API serves fewer).
    pub throughput_ratio: f64,
    /// API latency divided by baseline latency (above 1: the API is slower).
    pub p50_ratio: f64,
    pub p99_ratio: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub benchmark: String,
    pub started_at: String,
    pub settings: Settings,
    pub machine: Machine,
    pub phases: Vec<PhaseReport>,
    pub comparisons: Vec<Comparison>,
    pub ending: Option<Ending>,
}

#[expect(
    clippy::float_arithmetic,
    reason = "latencies and rates are reported as decimals"
)]
fn ms(micros: u64) -> f64 {
    micros as f64 / 1000.0
}

#[expect(clippy::float_arithmetic, reason = "a ratio is a decimal")]
fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { f64::NAN }
}

impl PhaseReport {
    pub fn new(
        name: &str,
        measured: &Measured,
        round_throughput: Vec<f64>,
        hub_counters: BTreeMap<String, f64>,
    ) -> Self {
        let h = &measured.latency_us;
        let quantile = |q: f64| {
            ms(if h.is_empty() {
                0
            } else {
                h.value_at_quantile(q)
            })
        };
        Self {
            name: name.to_owned(),
            requests: measured.requests,
            errors: measured.errors.values().sum(),
            error_kinds: measured.errors.clone(),
            throughput_per_second: measured.throughput(),
            round_throughput,
            p50_ms: quantile(0.50),
            p90_ms: quantile(0.90),
            p99_ms: quantile(0.99),
            max_ms: ms(h.max()),
            slowest_second: measured.per_second.iter().copied().min().unwrap_or(0),
            fastest_second: measured.per_second.iter().copied().max().unwrap_or(0),
            per_second: measured.per_second.clone(),
            per_second_max_ms: measured
                .per_second_max_us
                .iter()
                .map(|&us| ms(us))
                .collect(),
            cpu: measured.cpu,
            hub_counters,
        }
    }
}

impl PhaseReport {
    /// Where the phase stumbled: its slowest request's second, and the seconds that served
    /// less than half the median second.
    fn stability(&self) -> String {
        let mut sorted = self.per_second.clone();
        sorted.sort_unstable();
        let median = sorted.get(sorted.len() / 2).copied().unwrap_or(0);
        let dips: Vec<String> = self
            .per_second
            .iter()
            .enumerate()
            .filter(|&(_, &n)| n.saturating_mul(2) < median)
            .map(|(second, n)| format!("s{second}: {n}"))
            .collect();
        let worst = self
            .per_second_max_ms
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map_or_else(String::new, |(second, max)| {
                format!("slowest request {max:.1} ms in second {second}")
            });
        if dips.is_empty() {
            format!("{worst}; no second below half the median ({median} req)")
        } else {
            format!(
                "{worst}; seconds below half the median ({median} req): {}",
                dips.join(", ")
            )
        }
    }
}

impl Comparison {
    pub fn new(name: &str, api: &PhaseReport, baseline: &PhaseReport) -> Self {
        Self {
            name: name.to_owned(),
            api: api.name.clone(),
            baseline: baseline.name.clone(),
            throughput_ratio: ratio(api.throughput_per_second, baseline.throughput_per_second),
            p50_ratio: ratio(api.p50_ms, baseline.p50_ms),
            p99_ratio: ratio(api.p99_ms, baseline.p99_ms),
        }
    }
}

impl Report {
    pub fn to_markdown(&self) -> String {
        let mut md = String::new();
        let s = &self.settings;
        let m = &self.machine;
        let _ = writeln!(
            md,
            "### `kontor-bench {}`, {}\n",
            self.benchmark, self.started_at
        );
        md.push_str(&m.markdown_line("the load generator, the hub and PostgreSQL"));
        let _ = writeln!(
            md,
            "Settings: {} closed-loop workers, {} s warm-up then {} s measured per phase, {} round(s) \
             of all phases in turn. Hub pool: {}; baseline pool: {}.\n",
            s.concurrency,
            s.warmup_seconds,
            s.duration_seconds,
            s.rounds,
            s.hub_pool,
            s.baseline_pool
        );
        md.push_str(
            "| phase | requests | errors | req/s | p50 ms | p90 ms | p99 ms | max ms | req/s per second (min–max) |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        );
        for p in &self.phases {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {}–{} |",
                p.name,
                p.requests,
                p.errors,
                p.throughput_per_second,
                p.p50_ms,
                p.p90_ms,
                p.p99_ms,
                p.max_ms,
                p.slowest_second,
                p.fastest_second
            );
        }
        md.push_str(
            "\n| API vs baseline | throughput API/baseline | p50 API/baseline | p99 API/baseline |\n\
             |---|---:|---:|---:|\n",
        );
        for c in &self.comparisons {
            let _ = writeln!(
                md,
                "| {} | {:.2} | {:.2} | {:.2} |",
                c.name, c.throughput_ratio, c.p50_ratio, c.p99_ratio
            );
        }
        self.rounds_markdown(&mut md);
        self.cpu_markdown(&mut md);
        self.observations_markdown(&mut md);
        md
    }

    fn rounds_markdown(&self, md: &mut String) {
        if self.settings.rounds < 2 {
            return;
        }
        md.push_str("\nreq/s per round:\n\n| phase |");
        for round in 1..=self.settings.rounds {
            let _ = write!(md, " {round} |");
        }
        md.push_str("\n|---|");
        md.push_str(&"---:|".repeat(usize::from(self.settings.rounds)));
        md.push('\n');
        for p in &self.phases {
            let _ = write!(md, "| {} |", p.name);
            for value in &p.round_throughput {
                let _ = write!(md, " {value:.0} |");
            }
            md.push('\n');
        }
    }

    fn cpu_markdown(&self, md: &mut String) {
        if self.phases.iter().all(|p| p.cpu.is_none()) {
            return;
        }
        md.push_str(
            "\nCPU seconds spent during each measured window (all CPUs together; from `/proc`):\n\n\
             | phase | loader | hub | PostgreSQL | kernel interrupts | other processes | idle |\n\
             |---|---:|---:|---:|---:|---:|---:|\n",
        );
        for p in &self.phases {
            if let Some(cpu) = &p.cpu {
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} | {} | {} | {} |",
                    p.name,
                    seconds(cpu.loader_ticks),
                    seconds(cpu.hub_ticks),
                    seconds(cpu.postgres_ticks),
                    seconds(cpu.interrupt_ticks),
                    seconds(cpu.other_ticks),
                    seconds(cpu.idle_ticks)
                );
            }
        }
    }

    fn observations_markdown(&self, md: &mut String) {
        md.push_str("\nObserved:\n");
        for p in &self.phases {
            let _ = writeln!(md, "- {}: {}", p.name, p.stability());
            for (kind, count) in &p.error_kinds {
                let _ = writeln!(md, "- {}: {count} × {kind}", p.name);
            }
            for (series, delta) in &p.hub_counters {
                let whose = if series.starts_with("baseline_") {
                    "baseline counter"
                } else {
                    "hub counter"
                };
                let _ = writeln!(md, "- {}: {whose} `{series}` rose by {delta}", p.name);
            }
        }
        if let Some(ending) = &self.ending {
            let levels: Vec<String> = ending
                .hub_log
                .levels
                .iter()
                .map(|(level, n)| format!("{n} {level}"))
                .collect();
            let _ = writeln!(
                md,
                "- hub log (at level warn): {} line(s){}",
                ending.hub_log.lines,
                if levels.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", levels.join(", "))
                }
            );
            for (message, count) in &ending.hub_log.messages {
                let _ = writeln!(md, "  - {count} × {message}");
            }
            if let Some(exit) = &ending.hub_exit {
                let _ = writeln!(
                    md,
                    "- hub stop after SIGTERM: {} in {} ms{}",
                    exit.status,
                    exit.stop_ms,
                    if exit.killed {
                        " (had to be killed)"
                    } else {
                        ""
                    }
                );
            }
        }
    }
}

/// Where a run's report goes: stdout, as Markdown or JSON, and optionally appended to a file.
#[derive(Debug, Clone, clap::Args)]
pub struct Output {
    /// Append the Markdown report to this file (created when missing).
    #[arg(long, value_name = "FILE")]
    pub out: Option<std::path::PathBuf>,
    /// Print the report as one JSON object instead of Markdown.
    #[arg(long)]
    pub json: bool,
}

impl Output {
    /// Prints `report` (JSON or Markdown) and appends its Markdown to `--out`, if given.
    pub fn emit(&self, report: &impl Serialize, markdown: &str) -> anyhow::Result<()> {
        let mut stdout = std::io::stdout().lock();
        if self.json {
            writeln!(stdout, "{}", serde_json::to_string_pretty(report)?)?;
        } else {
            writeln!(stdout, "{markdown}")?;
        }
        if let Some(path) = &self.out {
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("opening {}", path.display()))?;
            writeln!(file, "{markdown}").with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(())
    }
}
