//! The one way a write transaction runs: attempt it, and when the database aborted it to keep the
//! history serializable, back off with jitter and run the whole transaction again, a bounded
//! number of times. Every retry is counted in `kontor_db_retries_total`.

use std::future::Future;
use std::time::Duration;

use rand::Rng;

use crate::error::{StoreError, StoreResult};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// Upper bound of the first backoff; it doubles per retry up to `max_delay`.
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 10,
            base_delay: Duration::from_millis(2),
            max_delay: Duration::from_millis(250),
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
}

/// Runs `attempt` until it succeeds, fails with a non-retryable error, or `policy.max_attempts`
/// is reached (then [`StoreError::Contention`]). `attempt` receives the 1-based attempt number and
/// must run a complete transaction each time: nothing from a failed attempt may be reused.
pub async fn retry_serializable<T, F, Fut>(
    policy: &RetryPolicy,
    op: &'static str,
    mut attempt: F,
) -> StoreResult<T>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = StoreResult<T>>,
{
    let max_attempts = policy.max_attempts.max(1);
    let mut number = 1;
    loop {
        match attempt(number).await {
            Err(err) if err.is_retryable() => {
                if number >= max_attempts {
                    metrics::counter!("kontor_db_retries_exhausted_total", "op" => op).increment(1);
                    tracing::warn!(
                        db.op = op,
                        attempts = number,
                        "giving up on a conflicting transaction"
                    );
                    return Err(StoreError::Contention { attempts: number });
                }
                metrics::counter!("kontor_db_retries_total", "op" => op).increment(1);
                let delay = policy.backoff(number - 1);
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
        }
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
