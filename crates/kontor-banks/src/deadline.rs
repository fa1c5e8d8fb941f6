//! A time limit for everything a caller waits on banks for: a request with a person waiting
//! (an API call, a hosted page) must not sit out a bank's long `Retry-After` or a string of
//! retries. Inside [`within`], every bank call shortens its attempts to the time left and gives up
//! with the error it has (a rate limit with the bank's `Retry-After`, or the bank unavailable)
//! instead of pausing past the limit. Work without a person waiting (the worker) runs without one.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

tokio::task_local! {
    static DEADLINE: Instant;
}

/// Runs `work` with every bank call in it bounded to `limit` in all. A limit inside another one
/// never extends it.
pub async fn within<F: Future>(limit: Duration, work: F) -> F::Output {
    let mut until = Instant::now() + limit;
    if let Some(outer) = current() {
        until = until.min(outer);
    }
    DEADLINE.scope(until, work).await
}

/// When the current limit ends, if there is one.
fn current() -> Option<Instant> {
    DEADLINE.try_with(|until| *until).ok()
}

/// The time left under the current limit (zero once it passed); `None` without a limit.
pub(crate) fn remaining() -> Option<Duration> {
    current().map(|until| until.saturating_duration_since(Instant::now()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_limit_applies_inside_and_never_extends_an_outer_one() {
        assert_eq!(remaining(), None);
        within(Duration::from_secs(10), async {
            let outer = remaining().unwrap();
            assert!(outer <= Duration::from_secs(10) && outer > Duration::from_secs(5));
            within(Duration::from_secs(60), async {
                assert!(remaining().unwrap() <= Duration::from_secs(10));
            })
            .await;
            within(Duration::ZERO, async {
                assert_eq!(remaining(), Some(Duration::ZERO));
            })
            .await;
        })
        .await;
        assert_eq!(remaining(), None);
    }
}
