//! A keyed token bucket with bounded memory. Each key's bucket is kept as one number, its
//! "theoretical arrival time" (the generic cell rate algorithm, which is a token bucket in
//! integer arithmetic): a bucket is full when that time is not in the future, so full buckets
//! carry no information and are the first to go when the map reaches its size bound.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// A limit as configured: up to `burst` at once, refilled at `per_minute`. Either at zero turns
/// the limit off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub burst: u32,
    pub per_minute: u32,
}

impl Limit {
    pub const fn new(burst: u32, per_minute: u32) -> Self {
        Self { burst, per_minute }
    }

    pub const OFF: Limit = Limit::new(0, 0);

    pub fn is_off(self) -> bool {
        self.burst == 0 || self.per_minute == 0
    }
}

/// Where a bucket stands after a check: what the `RateLimit-*` headers and `Retry-After` say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// The bucket's size (`RateLimit-Limit`).
    pub limit: u32,
    /// Requests left now (`RateLimit-Remaining`).
    pub remaining: u32,
    /// Until the bucket is full again (`RateLimit-Reset`).
    pub reset: Duration,
    /// Until the next request is allowed; `Some` only when this one was refused.
    pub retry_after: Option<Duration>,
}

impl Quota {
    pub fn allowed(&self) -> bool {
        self.retry_after.is_none()
    }
}

/// Token buckets by key: per client id, per IP address, per tenant.
#[derive(Debug)]
pub struct KeyedLimiter<K> {
    limit: Limit,
    /// Nanoseconds one token takes to come back.
    interval: u64,
    /// `interval × burst`: how far ahead of now a bucket's arrival time may run.
    window: u64,
    max_keys: usize,
    epoch: Instant,
    arrivals: Mutex<HashMap<K, u64>>,
}

impl<K: Hash + Eq + Clone> KeyedLimiter<K> {
    /// `None` when the limit is off.
    pub fn new(limit: Limit, max_keys: usize) -> Option<Self> {
        if limit.is_off() {
            return None;
        }
        let interval = 60_000_000_000 / u64::from(limit.per_minute);
        Some(Self {
            limit,
            interval,
            window: interval.saturating_mul(u64::from(limit.burst)),
            max_keys: max_keys.max(1),
            epoch: Instant::now(),
            arrivals: Mutex::new(HashMap::new()),
        })
    }

    fn nanos(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX)
    }

    /// Takes one token for `key` if there is one.
    pub fn take(&self, key: &K, now: Instant) -> Quota {
        self.check(key, now, true)
    }

    /// Whether `key` has a token, without taking it (for limits that count only failures).
    pub fn peek(&self, key: &K, now: Instant) -> Quota {
        self.check(key, now, false)
    }

    fn check(&self, key: &K, at: Instant, take: bool) -> Quota {
        let now = self.nanos(at);
        let mut arrivals = self.arrivals.lock().unwrap_or_else(PoisonError::into_inner);
        let stored = arrivals.get(key).copied().unwrap_or(0);
        let tat = stored.max(now);
        let debt = tat - now;
        if debt.saturating_add(self.interval) > self.window {
            // Refused: the next token is due when the debt has shrunk by one interval.
            let wait = debt.saturating_add(self.interval) - self.window;
            return self.quota(debt, Some(wait));
        }
        if !take {
            return self.quota(debt, None);
        }
        if !arrivals.contains_key(key) && arrivals.len() >= self.max_keys {
            self.make_room(&mut arrivals, now);
        }
        let next = tat.saturating_add(self.interval);
        arrivals.insert(key.clone(), next);
        self.quota(next - now, None)
    }

    fn quota(&self, debt: u64, wait: Option<u64>) -> Quota {
        let left = self.window.saturating_sub(debt) / self.interval;
        Quota {
            limit: self.limit.burst,
            remaining: u32::try_from(left).unwrap_or(u32::MAX),
            reset: Duration::from_nanos(debt),
            retry_after: wait.map(Duration::from_nanos),
        }
    }

    /// Frees space for a new key. Full buckets go first (forgetting them changes nothing); if
    /// every bucket holds debt — many keys at once, as when someone sprays client ids or
    /// addresses — the half nearest to full is forgotten, so memory stays bounded at the cost
    /// of some leniency toward those keys.
    fn make_room(&self, arrivals: &mut HashMap<K, u64>, now: u64) {
        arrivals.retain(|_, tat| *tat > now);
        if arrivals.len() < self.max_keys {
            return;
        }
        let mut times: Vec<u64> = arrivals.values().copied().collect();
        let middle = times.len() / 2;
        let (_, threshold, _) = times.select_nth_unstable(middle);
        let threshold = *threshold;
        arrivals.retain(|_, tat| *tat > threshold);
        tracing::warn!(
            kept = arrivals.len(),
            max_keys = self.max_keys,
            "rate limiter full; forgot the buckets nearest to full"
        );
    }

    /// Buckets held now (for tests and diagnostics).
    pub fn tracked(&self) -> usize {
        self.arrivals
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    fn limiter(burst: u32, per_minute: u32) -> KeyedLimiter<&'static str> {
        KeyedLimiter::new(Limit::new(burst, per_minute), 1000).unwrap()
    }

    #[test]
    fn a_burst_is_allowed_then_refused_until_a_token_returns() {
        let bucket = limiter(3, 60);
        let t0 = Instant::now();
        for left in [2, 1, 0] {
            let quota = bucket.take(&"a", t0);
            assert!(quota.allowed());
            assert_eq!(quota.remaining, left);
            assert_eq!(quota.limit, 3);
        }
        let refused = bucket.take(&"a", t0);
        assert!(!refused.allowed());
        assert_eq!(refused.remaining, 0);
        assert_eq!(refused.retry_after, Some(SECOND));
        assert_eq!(refused.reset, 3 * SECOND);
        // One token per second comes back; others' buckets are their own.
        assert!(bucket.take(&"b", t0).allowed());
        assert!(!bucket.take(&"a", t0 + SECOND / 2).allowed());
        let later = bucket.take(&"a", t0 + SECOND);
        assert!(later.allowed());
        assert_eq!(later.remaining, 0);
        assert_eq!(bucket.take(&"a", t0 + 10 * SECOND).remaining, 2);
    }

    #[test]
    fn peeking_takes_nothing() {
        let bucket = limiter(1, 60);
        let t0 = Instant::now();
        for _ in 0..5 {
            assert!(bucket.peek(&"a", t0).allowed());
        }
        assert!(bucket.take(&"a", t0).allowed());
        assert!(!bucket.peek(&"a", t0).allowed());
        assert_eq!(bucket.tracked(), 1);
    }

    #[test]
    fn a_zero_limit_is_off() {
        assert!(KeyedLimiter::<u8>::new(Limit::new(0, 10), 10).is_none());
        assert!(KeyedLimiter::<u8>::new(Limit::new(10, 0), 10).is_none());
        assert!(KeyedLimiter::<u8>::new(Limit::OFF, 10).is_none());
    }

    #[test]
    fn memory_stays_bounded_when_keys_are_sprayed() {
        let bucket = KeyedLimiter::new(Limit::new(5, 1), 100).unwrap();
        let t0 = Instant::now();
        for key in 0..100_000u32 {
            bucket.take(&key, t0);
            assert!(bucket.tracked() <= 100);
        }
        // A key in debt that was kept is still limited.
        let recent = 99_999u32;
        for _ in 0..4 {
            bucket.take(&recent, t0);
        }
        assert!(!bucket.take(&recent, t0).allowed());
    }

    #[test]
    fn full_buckets_are_forgotten_first() {
        let bucket = KeyedLimiter::new(Limit::new(2, 60), 3).unwrap();
        let t0 = Instant::now();
        bucket.take(&1u8, t0);
        bucket.take(&1u8, t0);
        bucket.take(&2u8, t0);
        bucket.take(&3u8, t0);
        // A second later, 2 and 3 are full again; 1 still owes a token.
        bucket.take(&4u8, t0 + SECOND);
        assert_eq!(bucket.tracked(), 2);
        assert!(bucket.take(&1u8, t0 + SECOND).allowed());
        assert!(!bucket.take(&1u8, t0 + SECOND).allowed());
    }
}
