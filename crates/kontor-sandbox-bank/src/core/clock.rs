//! The sandbox's simulated clock: a start instant plus whatever an operator or a test added,
//! optionally also flowing with wall time. Every rule (expiry, daily limits, payment status,
//! new transactions) reads this clock, never the system time.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use time::{Duration, OffsetDateTime};

#[derive(Debug)]
struct ClockState {
    start: OffsetDateTime,
    wall_start: Instant,
    advanced: Duration,
    /// Wall time that flowed before this process (a restored clock that follows wall time).
    flowed_before: Duration,
    /// The wall-clock instant the clock first started, in an earlier process or this one.
    wall_origin: OffsetDateTime,
}

/// What a clock must remember across restarts: where it started, how far it was moved, and
/// (for a clock that follows wall time) when it first started on the wall clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ClockSnapshot {
    pub start: OffsetDateTime,
    pub advanced_seconds: i64,
    pub wall_origin: OffsetDateTime,
}

/// Simulated time. `frozen` clocks only move when advanced, which keeps tests deterministic.
#[derive(Debug)]
pub struct SimClock {
    frozen: bool,
    state: Mutex<ClockState>,
    /// Set when the clock is moved, until the sandbox saved its state.
    moved: AtomicBool,
}

impl SimClock {
    pub fn new(start: OffsetDateTime, frozen: bool) -> Self {
        let start = start.replace_nanosecond(0).unwrap_or(start);
        Self {
            frozen,
            state: Mutex::new(ClockState {
                start,
                wall_start: Instant::now(),
                advanced: Duration::ZERO,
                flowed_before: Duration::ZERO,
                wall_origin: OffsetDateTime::now_utc(),
            }),
            moved: AtomicBool::new(false),
        }
    }

    /// A clock that goes on from a saved one. One that follows wall time counts the wall time
    /// since it first started, downtime included (never less than none), so that simulated time
    /// keeps its distance to the wall clock; a frozen one stands where it stood.
    pub fn restore(saved: ClockSnapshot, frozen: bool) -> Self {
        let flowed_before = if frozen {
            Duration::ZERO
        } else {
            (OffsetDateTime::now_utc() - saved.wall_origin).max(Duration::ZERO)
        };
        Self {
            frozen,
            state: Mutex::new(ClockState {
                start: saved.start,
                wall_start: Instant::now(),
                advanced: Duration::seconds(saved.advanced_seconds.max(0)),
                flowed_before,
                wall_origin: saved.wall_origin,
            }),
            moved: AtomicBool::new(false),
        }
    }

    /// What a restarted sandbox needs to go on from here.
    pub fn snapshot(&self) -> ClockSnapshot {
        let state = self.lock();
        ClockSnapshot {
            start: state.start,
            advanced_seconds: state.advanced.whole_seconds(),
            wall_origin: state.wall_origin,
        }
    }

    /// Marks the clock as moved (so that the next save writes it).
    pub fn mark_moved(&self) {
        self.moved.store(true, Ordering::Release);
    }

    /// True (once) if the clock was moved since the last call.
    pub fn take_moved(&self) -> bool {
        self.moved.swap(false, Ordering::AcqRel)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ClockState> {
        match self.state.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    pub fn is_frozen(&self) -> bool {
        self.frozen
    }

    /// The current simulated instant, whole seconds, UTC.
    pub fn now(&self) -> OffsetDateTime {
        let state = self.lock();
        let flowing = if self.frozen {
            Duration::ZERO
        } else {
            state.flowed_before
                + Duration::try_from(state.wall_start.elapsed()).unwrap_or(Duration::ZERO)
        };
        let now = state.start + state.advanced + flowing;
        now.replace_nanosecond(0).unwrap_or(now)
    }

    /// The instant the sandbox started at (the end of the generated history).
    pub fn start(&self) -> OffsetDateTime {
        self.lock().start
    }

    /// Moves time forward; negative durations are refused because generated data only grows.
    pub fn advance(&self, by: Duration) -> Result<OffsetDateTime, ClockError> {
        if by.is_negative() {
            return Err(ClockError::Backwards);
        }
        {
            let mut state = self.lock();
            state.advanced = state.advanced.checked_add(by).ok_or(ClockError::TooFar)?;
        }
        self.moved.store(true, Ordering::Release);
        Ok(self.now())
    }
}

/// Why the clock refused to move.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ClockError {
    #[error("the sandbox clock only moves forward")]
    Backwards,
    #[error("that is too far into the future")]
    TooFar,
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn frozen_clock_moves_only_when_advanced() {
        let clock = SimClock::new(datetime!(2026-03-01 09:00:00.5 UTC), true);
        assert_eq!(clock.now(), datetime!(2026-03-01 09:00 UTC));
        assert_eq!(
            clock.advance(Duration::hours(25)),
            Ok(datetime!(2026-03-02 10:00 UTC))
        );
        assert_eq!(
            clock.advance(Duration::seconds(-1)),
            Err(ClockError::Backwards)
        );
    }

    #[test]
    fn a_restored_clock_goes_on_where_the_saved_one_was() {
        let clock = SimClock::new(datetime!(2026-03-01 09:00 UTC), true);
        clock.advance(Duration::hours(5)).unwrap();
        assert!(clock.take_moved());
        assert!(!clock.take_moved());
        let saved = clock.snapshot();
        let frozen = SimClock::restore(saved, true);
        assert_eq!(frozen.now(), datetime!(2026-03-01 14:00 UTC));
        assert_eq!(frozen.start(), datetime!(2026-03-01 09:00 UTC));
        // Following wall time: the hour the sandbox was down counts too.
        let hour_ago = ClockSnapshot {
            wall_origin: OffsetDateTime::now_utc() - Duration::hours(1),
            ..saved
        };
        let flowing = SimClock::restore(hour_ago, false).now();
        assert!(flowing >= datetime!(2026-03-01 15:00 UTC), "{flowing}");
        assert!(flowing < datetime!(2026-03-01 15:05 UTC), "{flowing}");
    }
}
