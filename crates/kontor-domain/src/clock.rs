//! Where "now" comes from. The binary's wiring gives the hub the system's clock; tests give it a
//! [`ManualClock`] and move that instead of sleeping until a lease lapses or a retry falls due.
//! (The sandbox bank keeps a simulated clock of its own: the bank and the hub are separate
//! parties, and a test that wants both later moves both.)

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use crate::time::Timestamp;

/// The current instant, as one process reads it: cheap to clone, and every clone reads the same
/// source.
#[derive(Clone, Default)]
pub struct Clock(Source);

#[derive(Clone, Default)]
enum Source {
    #[default]
    System,
    Manual(Arc<Manual>),
}

impl Clock {
    /// The system's clock (production).
    pub fn system() -> Self {
        Self(Source::System)
    }

    pub fn now(&self) -> Timestamp {
        match &self.0 {
            Source::System => Timestamp::now(),
            Source::Manual(manual) => manual.now(),
        }
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Source::System => f.write_str("Clock::System"),
            Source::Manual(manual) => write!(f, "Clock::Manual({:?})", manual.now()),
        }
    }
}

/// A clock a test holds and moves. `running` follows the system's clock, ahead by whatever it was
/// advanced (the hub under test keeps working as in production between two moves); `frozen`
/// stands still until moved (for a unit test that must be deterministic).
#[derive(Clone)]
pub struct ManualClock(Arc<Manual>);

struct Manual {
    /// Where a frozen clock stands before any move, in microseconds; `None` when it runs.
    frozen_at: Option<i64>,
    /// How far it was moved, in microseconds.
    ahead: AtomicI64,
}

impl Manual {
    fn now(&self) -> Timestamp {
        let base = self
            .frozen_at
            .unwrap_or_else(|| Timestamp::now().unix_micros());
        Timestamp::from_unix_micros(base.saturating_add(self.ahead.load(Ordering::SeqCst)))
    }
}

impl ManualClock {
    /// Runs with the system's clock until moved.
    pub fn running() -> Self {
        Self(Arc::new(Manual {
            frozen_at: None,
            ahead: AtomicI64::new(0),
        }))
    }

    /// Stands at `at` until moved.
    pub fn frozen(at: Timestamp) -> Self {
        Self(Arc::new(Manual {
            frozen_at: Some(at.unix_micros()),
            ahead: AtomicI64::new(0),
        }))
    }

    /// Moves the clock forward by `by` (never backwards: a lease or a retry that fell due stays
    /// due). Returns the instant it reads now.
    pub fn advance(&self, by: Duration) -> Timestamp {
        let micros = i64::try_from(by.as_micros()).unwrap_or(i64::MAX);
        self.0.ahead.fetch_add(micros, Ordering::SeqCst);
        self.0.now()
    }

    pub fn now(&self) -> Timestamp {
        self.0.now()
    }

    /// The handle the code under test reads.
    pub fn clock(&self) -> Clock {
        Clock(Source::Manual(self.0.clone()))
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManualClock")
            .field("frozen", &self.0.frozen_at.is_some())
            .field("now", &self.now())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frozen_clock_moves_only_when_advanced_and_every_handle_sees_it() {
        let start = Timestamp::from_unix_micros(1_000_000);
        let manual = ManualClock::frozen(start);
        let clock = manual.clock();
        let copy = clock.clone();
        assert_eq!(clock.now(), start);
        assert_eq!(clock.now(), start, "stands still");
        let moved = manual.advance(Duration::from_millis(1_500));
        assert_eq!(moved, Timestamp::from_unix_micros(2_500_000));
        assert_eq!(clock.now(), moved);
        assert_eq!(copy.now(), moved);
    }

    #[test]
    fn a_running_clock_is_ahead_of_the_system_by_what_it_was_advanced() {
        let manual = ManualClock::running();
        let before = Timestamp::now();
        manual.advance(Duration::from_secs(3600));
        let read = manual.clock().now();
        let after = Timestamp::now();
        assert!(read >= before.plus_seconds(3600), "{read:?} vs {before:?}");
        assert!(read <= after.plus_seconds(3600), "{read:?} vs {after:?}");
    }

    #[test]
    fn the_system_clock_reads_the_system_time() {
        let before = Timestamp::now();
        let read = Clock::system().now();
        assert!(read >= before && read <= Timestamp::now());
    }
}
