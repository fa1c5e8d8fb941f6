//! The open-loop load generator: requests go out on a fixed schedule (one every `1/rate`
//! seconds), each in its own task, whether or not earlier ones have answered. A request's
//! latency runs from the moment the schedule says it should have been sent, not from when it
//! went out, so a slow server (or a loader that fell behind) shows in the percentiles instead of
//! quietly lowering the rate — the closed-loop workers of `load.rs` cannot show that
//! ("coordinated omission"). The schedule is kept by a thread of its own that sleeps between
//! sends (no spinning) and hands each request to the async runtime.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hdrhistogram::Histogram;
use tokio::sync::mpsc;

use crate::load::{Failure, histogram};
use crate::machine::{CpuProbe, CpuUse};

/// How an open-loop phase runs.
#[derive(Debug, Clone, Copy)]
pub struct RatePlan {
    /// Requests per second offered.
    pub rate: u32,
    pub warmup: Duration,
    pub duration: Duration,
    /// Requests in flight beyond which the next one is not sent but counted as refused by the
    /// loader: the bound that keeps a server that has stopped answering from exhausting this
    /// process.
    pub max_in_flight: usize,
    /// How long requests still in flight after the window may take before they count as
    /// unanswered.
    pub drain: Duration,
}

/// What one open-loop phase measured, over the requests scheduled inside the measured window.
#[derive(Debug)]
pub struct OpenMeasured {
    pub rate: u32,
    /// Requests the schedule put inside the window.
    pub scheduled: u64,
    /// Of those, answered as expected.
    pub answered: u64,
    /// Failed, unanswered within the drain time after the window, or never sent (too many in
    /// flight), by kind.
    pub errors: BTreeMap<Failure, u64>,
    /// From the scheduled send time to the decoded answer, in microseconds.
    pub latency_us: Histogram<u64>,
    /// How late the loader handed each request to the runtime, in microseconds: its own
    /// lateness, which the latencies include.
    pub send_lag_us: Histogram<u64>,
    /// The most requests in flight at once.
    pub max_in_flight: usize,
    pub window: Duration,
    pub cpu: Option<CpuUse>,
}

impl OpenMeasured {
    /// Adds a later round of the same phase.
    pub fn absorb(&mut self, other: Self) -> anyhow::Result<()> {
        self.scheduled += other.scheduled;
        self.answered += other.answered;
        for (kind, count) in other.errors {
            *self.errors.entry(kind).or_default() += count;
        }
        self.latency_us
            .add(&other.latency_us)
            .context("merging latency histograms")?;
        self.send_lag_us
            .add(&other.send_lag_us)
            .context("merging send-lag histograms")?;
        self.max_in_flight = self.max_in_flight.max(other.max_in_flight);
        self.window += other.window;
        self.cpu = self.cpu.zip(other.cpu).map(|(a, b)| a.plus(&b));
        Ok(())
    }
}

/// One request's fate, sent from its task to the collector.
struct Outcome {
    scheduled: Instant,
    result: Result<(), Failure>,
    done: Instant,
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

/// The instant of the `n`th send after `start` at `rate` per second (exact, no drift).
fn send_time(start: Instant, n: u64, rate: u32) -> Instant {
    let nanos = u128::from(n) * 1_000_000_000 / u128::from(rate.max(1));
    start + Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

/// Runs `op` at `plan.rate` per second: `plan.warmup` unmeasured, then `plan.duration`
/// measured; then waits up to `plan.drain` for the window's requests still in flight.
pub async fn run<F, Fut>(plan: &RatePlan, probe: &CpuProbe, op: F) -> anyhow::Result<OpenMeasured>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), Failure>> + Send + 'static,
{
    if plan.rate == 0 {
        bail!("an open-loop phase needs a rate above zero");
    }
    let runtime = tokio::runtime::Handle::current();
    let op = Arc::new(op);
    let in_flight = Arc::new(AtomicUsize::new(0));
    let (tx, mut rx) = mpsc::unbounded_channel::<Outcome>();
    // A little later than now, so that the first sends are on time.
    let start = Instant::now() + Duration::from_millis(50);
    let from = start + plan.warmup;
    let until = from + plan.duration;
    let plan_copy = *plan;
    let send_lag_us = histogram()?;
    let dispatcher = {
        let in_flight = Arc::clone(&in_flight);
        std::thread::Builder::new()
            .name("open-loop".to_owned())
            .spawn(move || {
                let schedule = Schedule {
                    plan: plan_copy,
                    start,
                    until,
                };
                dispatch(&schedule, &runtime, &op, &in_flight, &tx, send_lag_us)
            })
            .context("starting the open-loop dispatcher")?
    };

    tokio::time::sleep_until(from.into()).await;
    let cpu_before = probe.sample();
    tokio::time::sleep_until(until.into()).await;
    let cpu_after = probe.sample();
    let dispatched = tokio::task::spawn_blocking(move || dispatcher.join())
        .await
        .context("waiting for the open-loop dispatcher")?
        .map_err(|_| anyhow::anyhow!("the open-loop dispatcher panicked"))?;

    // Wait for the window's stragglers; whatever is still out after the drain is unanswered.
    let deadline = Instant::now() + plan.drain;
    while in_flight.load(Ordering::Acquire) > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut measured = OpenMeasured {
        rate: plan.rate,
        scheduled: dispatched.scheduled,
        answered: 0,
        errors: BTreeMap::new(),
        latency_us: histogram()?,
        send_lag_us: dispatched.send_lag_us,
        max_in_flight: dispatched.max_in_flight,
        window: plan.duration,
        cpu: cpu_before
            .zip(cpu_after)
            .map(|(before, after)| after.since(&before)),
    };
    if dispatched.refused > 0 {
        measured.errors.insert(
            format!("not sent: {} requests in flight", plan.max_in_flight),
            dispatched.refused,
        );
    }
    let mut reported = dispatched.refused;
    while let Ok(outcome) = rx.try_recv() {
        if outcome.scheduled < from || outcome.scheduled >= until {
            continue;
        }
        reported += 1;
        match outcome.result {
            Ok(()) => {
                measured.answered += 1;
                measured
                    .latency_us
                    .saturating_record(micros(outcome.done.duration_since(outcome.scheduled)));
            }
            Err(kind) => *measured.errors.entry(kind).or_default() += 1,
        }
    }
    let unanswered = measured.scheduled.saturating_sub(reported);
    if unanswered > 0 {
        measured.errors.insert(
            format!(
                "no answer within {} ms after the window",
                plan.drain.as_millis()
            ),
            unanswered,
        );
    }
    Ok(measured)
}

/// What the dispatcher saw of the window's requests.
struct Dispatched {
    scheduled: u64,
    refused: u64,
    send_lag_us: Histogram<u64>,
    max_in_flight: usize,
}

struct Schedule {
    plan: RatePlan,
    start: Instant,
    until: Instant,
}

/// The schedule: sleeps until each send time, then spawns the request on `runtime`.
fn dispatch<F, Fut>(
    schedule: &Schedule,
    runtime: &tokio::runtime::Handle,
    op: &Arc<F>,
    in_flight: &Arc<AtomicUsize>,
    tx: &mpsc::UnboundedSender<Outcome>,
    send_lag_us: Histogram<u64>,
) -> Dispatched
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), Failure>> + Send + 'static,
{
    let Schedule { plan, start, until } = *schedule;
    let from = start + plan.warmup;
    let mut out = Dispatched {
        scheduled: 0,
        refused: 0,
        send_lag_us,
        max_in_flight: 0,
    };
    for n in 0u64.. {
        let scheduled = send_time(start, n, plan.rate);
        if scheduled >= until {
            break;
        }
        let now = Instant::now();
        if scheduled > now {
            std::thread::sleep(scheduled - now);
        }
        let measured = scheduled >= from;
        let current = in_flight.load(Ordering::Acquire);
        if measured {
            out.scheduled += 1;
            out.max_in_flight = out.max_in_flight.max(current);
        }
        if current >= plan.max_in_flight {
            if measured {
                out.refused += 1;
            }
            continue;
        }
        in_flight.fetch_add(1, Ordering::AcqRel);
        let request = op();
        if measured {
            out.send_lag_us
                .saturating_record(micros(Instant::now().saturating_duration_since(scheduled)));
        }
        let tx = tx.clone();
        let in_flight = Arc::clone(in_flight);
        runtime.spawn(async move {
            let result = request.await;
            let done = Instant::now();
            in_flight.fetch_sub(1, Ordering::AcqRel);
            // The collector may have stopped listening (a straggler past the drain): that
            // request is counted as unanswered already.
            let _ = tx.send(Outcome {
                scheduled,
                result,
                done,
            });
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_does_not_drift() {
        let start = Instant::now();
        assert_eq!(send_time(start, 0, 2000), start);
        assert_eq!(send_time(start, 2000, 2000) - start, Duration::from_secs(1));
        assert_eq!(
            send_time(start, 1, 3) - start,
            Duration::from_nanos(333_333_333)
        );
        assert_eq!(
            send_time(start, 3_000_000, 3) - start,
            Duration::from_secs(1_000_000)
        );
    }

    /// A server that stalls until every request of the window was sent: the open loop keeps
    /// sending on schedule, and each request's latency counts from its scheduled time.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn requests_go_out_on_schedule_while_earlier_ones_wait() {
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let sent = Arc::new(AtomicUsize::new(0));
        let plan = RatePlan {
            rate: 200,
            warmup: Duration::ZERO,
            duration: Duration::from_millis(500),
            max_in_flight: 10_000,
            drain: Duration::from_secs(60),
        };
        let op = {
            let gate = Arc::clone(&gate);
            let sent = Arc::clone(&sent);
            move || {
                let gate = Arc::clone(&gate);
                // Nothing answers before the last request of the window has gone out.
                if sent.fetch_add(1, Ordering::SeqCst) + 1 == 100 {
                    gate.add_permits(1_000);
                }
                async move {
                    let _permit = gate.acquire().await.map_err(|e| e.to_string())?;
                    Ok(())
                }
            }
        };
        let measured = run(&plan, &CpuProbe::new(None, "none_"), op).await.unwrap();
        assert_eq!(measured.scheduled, 100);
        assert_eq!(sent.load(Ordering::SeqCst), 100);
        assert_eq!(measured.answered, 100);
        assert!(measured.errors.is_empty(), "{:?}", measured.errors);
        // The 100th went out while the 99 before it were all still waiting.
        assert_eq!(measured.max_in_flight, 99);
        // The first was scheduled 495 ms before the last could be sent, so it waited at least
        // that long; the median request at least about half of it.
        assert!(measured.latency_us.max() >= 490_000);
        assert!(measured.latency_us.value_at_quantile(0.5) >= 240_000);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_in_flight_bound_refuses_rather_than_piles_up() {
        let plan = RatePlan {
            rate: 400,
            warmup: Duration::ZERO,
            duration: Duration::from_millis(250),
            max_in_flight: 10,
            drain: Duration::from_millis(50),
        };
        // A server that never answers.
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let op = move || {
            let gate = Arc::clone(&gate);
            async move {
                let _permit = gate.acquire().await.map_err(|e| e.to_string())?;
                Ok(())
            }
        };
        let measured = run(&plan, &CpuProbe::new(None, "none_"), op).await.unwrap();
        assert_eq!(measured.scheduled, 100);
        assert_eq!(measured.answered, 0);
        assert_eq!(measured.errors["not sent: 10 requests in flight"], 90);
        assert_eq!(
            measured.errors["no answer within 50 ms after the window"],
            10
        );
    }
}
