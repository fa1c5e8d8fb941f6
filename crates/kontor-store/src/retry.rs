//! The one way a write transaction runs: attempt it, and when the database aborted it to keep the
//! history serializable, back off with jitter and run the whole transaction again, a bounded
//! number of times. A transaction whose connection was lost before it committed (the primary
//! went away: a failover, a restart) is run again too, on a fresh connection, for as long as
//! the reconnect window allows. Every retry is counted in `kontor_db_retries_total`.

use std::future::Future;
use std::time::{Duration, Instant};

use rand::Rng;
use tracing::Instrument;

use crate::error::{StoreError, StoreResult};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// Upper bound of the first backoff; it doubles per retry up to `max_delay`.
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// How long a transaction that keeps losing its connection before COMMIT is run again:
    /// long enough to ride out a failover of the primary behind a proxy.
    pub reconnect_window: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 10,
            base_delay: Duration::from_millis(2),
            max_delay: Duration::from_millis(250),
            reconnect_window: Duration::from_secs(15),
        }
    }
}

impl RetryPolicy {
    /// "Full jitter": a uniformly random delay below an exponentially growing cap, so that
    /// transactions that collided once do not collide again in lockstep.
    fn backoff(&self, retry: u32) -> Duration {
        let cap = self
            .base_delay
            .saturating_mul(1u32.checked_shl(retry.min(20)).unwrap_or(u32::MAX))
            .min(self.max_delay);
        let cap_micros = u64::try_from(cap.as_micros()).unwrap_or(u64::MAX);
        Duration::from_micros(rand::rng().random_range(0..=cap_micros))
    }

    /// The pause before a transaction that lost its connection runs again: growing from 20 ms
    /// to [`RECONNECT_MAX_DELAY`], with jitter in its upper half so that waiting requests do
    /// not hit a new primary all at once, and none waits much longer than the outage.
    fn reconnect_backoff(&self, retry: u32) -> Duration {
        let cap = Duration::from_millis(20)
            .saturating_mul(1u32.checked_shl(retry.min(20)).unwrap_or(u32::MAX))
            .min(RECONNECT_MAX_DELAY);
        let cap_micros = u64::try_from(cap.as_micros()).unwrap_or(u64::MAX);
        Duration::from_micros(rand::rng().random_range(cap_micros / 2..=cap_micros))
    }
}

/// The longest pause between two attempts of a transaction that keeps losing its connection.
pub const RECONNECT_MAX_DELAY: Duration = Duration::from_millis(200);

/// Runs `attempt` until it succeeds, fails with a non-retryable error, or `policy.max_attempts`
/// is reached (then [`StoreError::Contention`]). `attempt` receives the 1-based attempt number and
/// must run a complete transaction each time: nothing from a failed attempt may be reused.
pub async fn retry_serializable<T, F, Fut>(
    policy: &RetryPolicy,
    op: &'static str,
    attempt: F,
) -> StoreResult<T>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = StoreResult<T>>,
{
    // The transaction's span in the exported traces: its operation name and how many times it
    // ran again, never what it wrote.
    let span = tracing::info_span!(
        target: kontor_domain::TRACE_TARGET,
        "db transaction",
        otel.name = format!("db {op}"),
        otel.status_code = tracing::field::Empty,
        db.operation.name = op,
        db.retries = tracing::field::Empty,
        outcome = tracing::field::Empty,
    );
    let mut attempts = 0;
    let result = run(policy, op, attempt, &mut attempts)
        .instrument(span.clone())
        .await;
    span.record("db.retries", attempts.saturating_sub(1));
    let outcome = match &result {
        Ok(_) => "ok",
        Err(StoreError::Contention { .. }) => "contention",
        Err(StoreError::Unavailable { .. }) => "unavailable",
        Err(_) => "error",
    };
    span.record("outcome", outcome);
    if matches!(outcome, "contention" | "unavailable") {
        span.record("otel.status_code", "error");
    }
    result
}

async fn run<T, F, Fut>(
    policy: &RetryPolicy,
    op: &'static str,
    mut attempt: F,
    attempts: &mut u32,
) -> StoreResult<T>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = StoreResult<T>>,
{
    let max_attempts = policy.max_attempts.max(1);
    let started = Instant::now();
    let mut number = 1;
    let mut conflicts = 0;
    let mut reconnects = 0;
    loop {
        *attempts = number;
        match attempt(number).await {
            Err(err) if err.is_connection_lost() => {
                if started.elapsed() >= policy.reconnect_window {
                    metrics::counter!("kontor_db_retries_exhausted_total", "op" => op).increment(1);
                    tracing::warn!(
                        db.op = op,
                        attempts = number,
                        error = %err,
                        "giving up on a transaction that keeps losing its connection"
                    );
                    return Err(StoreError::Unavailable {
                        source: Box::new(err),
                    });
                }
                metrics::counter!("kontor_db_retries_total", "op" => op).increment(1);
                let delay = policy.reconnect_backoff(reconnects);
                tracing::info!(
                    db.op = op,
                    attempt = number,
                    delay_us = delay.as_micros(),
                    error = %err,
                    "the connection was lost before commit; running the transaction again"
                );
                tokio::time::sleep(delay).await;
                reconnects += 1;
                number += 1;
            }
            Err(err) if err.is_retryable() => {
                conflicts += 1;
                if conflicts >= max_attempts {
                    metrics::counter!("kontor_db_retries_exhausted_total", "op" => op).increment(1);
                    tracing::warn!(
                        db.op = op,
                        attempts = number,
                        "giving up on a conflicting transaction"
                    );
                    return Err(StoreError::Contention {
                        attempts: conflicts,
                    });
                }
                metrics::counter!("kontor_db_retries_total", "op" => op).increment(1);
                let delay = policy.backoff(conflicts - 1);
                tracing::debug!(
                    db.op = op,
                    attempt = number,
                    delay_us = delay.as_micros(),
                    "retrying transaction"
                );
                tokio::time::sleep(delay).await;
                number += 1;
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    fn conflict() -> StoreError {
        StoreError::SerializationFailure {
            source: "40001".into(),
        }
    }

    fn fast() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_micros(10),
            max_delay: Duration::from_micros(100),
            reconnect_window: Duration::from_millis(300),
        }
    }

    fn lost() -> StoreError {
        StoreError::ConnectionLost {
            source: "57P01".into(),
        }
    }

    #[tokio::test]
    async fn a_lost_connection_is_retried_beyond_max_attempts_within_the_window() {
        let calls = Cell::new(0);
        // More losses than max_attempts (4): they are bounded by time, not by count.
        let result = retry_serializable(&fast(), "test", |n| {
            calls.set(n);
            async move { if n < 6 { Err(lost()) } else { Ok(n) } }
        })
        .await;
        assert_eq!(result.unwrap(), 6);
        assert_eq!(calls.get(), 6);
    }

    #[tokio::test]
    async fn a_connection_lost_for_longer_than_the_window_is_unavailable() {
        let calls = Cell::new(0);
        let result: StoreResult<()> = retry_serializable(&fast(), "test", |n| {
            calls.set(n);
            async { Err(lost()) }
        })
        .await;
        assert!(
            matches!(result, Err(StoreError::Unavailable { .. })),
            "{result:?}"
        );
        assert!(calls.get() > 1, "retried before giving up");
    }

    #[tokio::test]
    async fn retries_until_the_transaction_goes_through() {
        let calls = Cell::new(0);
        let result = retry_serializable(&fast(), "test", |n| {
            calls.set(n);
            async move { if n < 3 { Err(conflict()) } else { Ok(n) } }
        })
        .await;
        assert_eq!(result.unwrap(), 3);
        assert_eq!(calls.get(), 3);
    }

    #[tokio::test]
    async fn gives_up_after_max_attempts() {
        let calls = Cell::new(0);
        let result: StoreResult<()> = retry_serializable(&fast(), "test", |n| {
            calls.set(n);
            async { Err(conflict()) }
        })
        .await;
        assert!(matches!(
            result,
            Err(StoreError::Contention { attempts: 4 })
        ));
        assert_eq!(calls.get(), 4);
    }

    #[tokio::test]
    async fn other_errors_are_not_retried() {
        let calls = Cell::new(0);
        let result: StoreResult<()> = retry_serializable(&fast(), "test", |n| {
            calls.set(n);
            async { Err(StoreError::NotFound) }
        })
        .await;
        assert!(matches!(result, Err(StoreError::NotFound)));
        assert_eq!(calls.get(), 1);
    }

    #[test]
    fn backoff_stays_under_the_growing_cap() {
        let policy = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(2),
            max_delay: Duration::from_millis(50),
            ..RetryPolicy::default()
        };
        for retry in 0..40 {
            let cap = Duration::from_millis(2)
                .saturating_mul(1u32.checked_shl(retry.min(20)).unwrap_or(u32::MAX))
                .min(Duration::from_millis(50));
            for _ in 0..20 {
                assert!(policy.backoff(retry) <= cap);
            }
        }
    }
}
