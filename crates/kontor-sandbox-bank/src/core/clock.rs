//! The sandbox's simulated clock: a start instant plus whatever an operator or a test added,
//! optionally also flowing with wall time. Every rule (expiry, daily limits, payment status,
//! new transactions) reads this clock, never the system time.

use std::sync::Mutex;
use std::time::Instant;

use time::{Duration, OffsetDateTime};

#[derive(Debug)]
struct ClockState {
    start: OffsetDateTime,
    wall_start: Instant,
    advanced: Duration,
}

/// Simulated time. `frozen` clocks only move when advanced, which keeps tests deterministic.
#[derive(Debug)]
pub struct SimClock {
    frozen: bool,
    state: Mutex<ClockState>,
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
            }),
        }
    }

    pub fn is_frozen(&self) -> bool {
        self.frozen
    }

    /// The current simulated instant, whole seconds, UTC.
    pub fn now(&self) -> OffsetDateTime {
        let state = match self.state.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let flowing = if self.frozen {
            Duration::ZERO
        } else {
            Duration::try_from(state.wall_start.elapsed()).unwrap_or(Duration::ZERO)
        };
        let now = state.start + state.advanced + flowing;
        now.replace_nanosecond(0).unwrap_or(now)
    }

    /// The instant the sandbox started at (the end of the generated history).
    pub fn start(&self) -> OffsetDateTime {
        match self.state.lock() {
            Ok(guard) => guard.start,
            Err(poisoned) => poisoned.into_inner().start,
        }
    }

    /// Moves time forward; negative durations are refused because generated data only grows.
    pub fn advance(&self, by: Duration) -> Result<OffsetDateTime, ClockError> {
        if by.is_negative() {
            return Err(ClockError::Backwards);
        }
        {
            let mut state = match self.state.lock() {
                Ok(guard) => guard,
                Err(poisoned) => poisoned.into_inner(),
            };
            state.advanced = state.advanced.checked_add(by).ok_or(ClockError::TooFar)?;
        }
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
}
