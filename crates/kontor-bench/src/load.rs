//! The closed-loop load generator: N workers, each sending its next request as soon as the last
//! one answered, for a warm-up and then a measured window. Latencies go into an HdrHistogram per
//! worker, merged at the end; failures are counted by kind and kept out of the histogram.
//! For latency at a fixed offered rate, where slow answers must not slow the sending, see
//! `open_loop.rs`.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use hdrhistogram::Histogram;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::machine::{CpuProbe, CpuUse};

/// Shortest and longest latency the histograms hold, in microseconds; 3 significant digits.
const LOWEST_US: u64 = 1;
const HIGHEST_US: u64 = 120_000_000;
const SIGNIFICANT_DIGITS: u8 = 3;

/// How a phase runs: the same for every phase of a benchmark, so phases compare.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub concurrency: usize,
    pub warmup: Duration,
    pub duration: Duration,
}

/// Why one request failed, as a short label such as `HTTP 500 internal_error` or `SQLSTATE 40001`.
pub type Failure = String;

/// What one phase measured.
#[derive(Debug)]
pub struct Measured {
    /// Successful requests that completed inside the measured window.
    pub requests: u64,
    /// Failed requests inside the measured window, by kind.
    pub errors: BTreeMap<Failure, u64>,
    /// Latencies of the successful requests, in microseconds.
    pub latency_us: Histogram<u64>,
    pub window: Duration,
    /// Successful requests completed in each second of the window.
    pub per_second: Vec<u64>,
    /// Slowest successful request completed in each second of the window, in microseconds.
    pub per_second_max_us: Vec<u64>,
    /// CPU time spent during the window, by whom; `None` where `/proc` cannot tell.
    pub cpu: Option<CpuUse>,
}

struct Tally {
    latency_us: Histogram<u64>,
    errors: BTreeMap<Failure, u64>,
    per_second: Vec<u64>,
    per_second_max_us: Vec<u64>,
}

impl Tally {
    fn new(seconds: usize) -> anyhow::Result<Self> {
        Ok(Self {
            latency_us: histogram()?,
            errors: BTreeMap::new(),
            per_second: vec![0; seconds],
            per_second_max_us: vec![0; seconds],
        })
    }

    fn merge(&mut self, other: Self) -> anyhow::Result<()> {
        self.latency_us
            .add(&other.latency_us)
            .context("merging latency histograms")?;
        for (kind, count) in other.errors {
            *self.errors.entry(kind).or_default() += count;
        }
        for (mine, theirs) in self.per_second.iter_mut().zip(other.per_second) {
            *mine += theirs;
        }
        for (mine, theirs) in self
            .per_second_max_us
            .iter_mut()
            .zip(other.per_second_max_us)
        {
            *mine = (*mine).max(theirs);
        }
        Ok(())
    }
}

impl Measured {
    /// Successful requests per second of the measured window.
    #[expect(clippy::float_arithmetic, reason = "a rate is a decimal")]
    pub fn throughput(&self) -> f64 {
        let seconds = self.window.as_secs_f64();
        if seconds > 0.0 {
            self.requests as f64 / seconds
        } else {
            0.0
        }
    }

    /// Adds another window of the same phase (a later round) to this one.
    pub fn absorb(&mut self, other: Self) -> anyhow::Result<()> {
        self.latency_us
            .add(&other.latency_us)
            .context("merging latency histograms")?;
        self.requests += other.requests;
        for (kind, count) in other.errors {
            *self.errors.entry(kind).or_default() += count;
        }
        self.window += other.window;
        self.per_second.extend(other.per_second);
        self.per_second_max_us.extend(other.per_second_max_us);
        self.cpu = self.cpu.zip(other.cpu).map(|(a, b)| a.plus(&b));
        Ok(())
    }
}

pub fn histogram() -> anyhow::Result<Histogram<u64>> {
    Histogram::new_with_bounds(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)
        .context("creating a latency histogram")
}

/// Runs `op` from `plan.concurrency` workers: `plan.warmup` unmeasured, then `plan.duration`
/// measured. A request counts when it completes inside the measured window.
pub async fn run<F, Fut>(plan: &Plan, probe: &CpuProbe, op: F) -> anyhow::Result<Measured>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), Failure>> + Send + 'static,
{
    let seconds = usize::try_from(plan.duration.as_secs())
        .context("duration too long")?
        .max(1);
    let op = Arc::new(op);
    let from = Instant::now() + plan.warmup;
    let until = from + plan.duration;
    let mut workers = JoinSet::new();
    for _ in 0..plan.concurrency {
        let tally = Tally::new(seconds)?;
        workers.spawn(worker(Arc::clone(&op), tally, from, until));
    }
    tokio::time::sleep_until(from).await;
    let cpu_before = probe.sample();
    tokio::time::sleep_until(until).await;
    let cpu_after = probe.sample();
    let mut total = Tally::new(seconds)?;
    while let Some(joined) = workers.join_next().await {
        total.merge(joined.context("a load worker failed")?)?;
    }
    Ok(Measured {
        requests: total.latency_us.len(),
        errors: total.errors,
        latency_us: total.latency_us,
        window: plan.duration,
        per_second: total.per_second,
        per_second_max_us: total.per_second_max_us,
        cpu: cpu_before
            .zip(cpu_after)
            .map(|(before, after)| after.since(&before)),
    })
}

async fn worker<F, Fut>(op: Arc<F>, mut tally: Tally, from: Instant, until: Instant) -> Tally
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<(), Failure>>,
{
    while Instant::now() < until {
        let started = Instant::now();
        let outcome = op().await;
        let done = Instant::now();
        if done < from || done > until {
            continue;
        }
        match outcome {
            Ok(()) => {
                let micros = u64::try_from(done.duration_since(started).as_micros())
                    .unwrap_or(u64::MAX)
                    .max(LOWEST_US);
                tally.latency_us.saturating_record(micros);
                let second = usize::try_from(done.duration_since(from).as_secs())
                    .unwrap_or(usize::MAX)
                    .min(tally.per_second.len().saturating_sub(1));
                if let Some(count) = tally.per_second.get_mut(second) {
                    *count += 1;
                }
                if let Some(max) = tally.per_second_max_us.get_mut(second) {
                    *max = (*max).max(micros);
                }
            }
            Err(kind) => *tally.errors.entry(kind).or_default() += 1,
        }
    }
    tally
}
