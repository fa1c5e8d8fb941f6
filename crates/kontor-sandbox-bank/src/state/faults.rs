//! Faults switched on at runtime per bank: latency, 5xx, 429 with `Retry-After`, connection
//! resets, and answers lost after the bank acted on the request. Decisions come from a seeded generator and "next N" counters, so a test
//! that sends the same requests sees the same faults.

use serde::{Deserialize, Serialize};

use crate::core::rng::Rng;

/// The faults of one bank. All fields are optional in JSON; an empty object clears everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultConfig {
    /// Delay added to every matching request, in milliseconds.
    pub latency_ms: u64,
    /// Fail the next N matching requests with `error_status`.
    pub fail_next: u32,
    /// Handle the next N matching requests, then answer `error_status` instead of what the bank
    /// answered: the bank acted (a token issued, an assertion's `jti` spent, a payment made),
    /// the caller does not learn of it.
    pub lose_answer_next: u32,
    /// Then fail this percentage (0..=100) of matching requests with `error_status`.
    pub error_percent: u8,
    /// 500 or 503 (default 500).
    pub error_status: Option<u16>,
    /// Answer the next N matching requests with 429 and `Retry-After`.
    pub rate_limit_next: u32,
    /// Then answer this percentage with 429.
    pub rate_limit_percent: u8,
    /// Seconds in the `Retry-After` header of fault 429s (default 1).
    pub retry_after_seconds: Option<u32>,
    /// Close the connection without any response for the next N matching requests.
    pub reset_next: u32,
    /// Then reset this percentage of matching requests.
    pub reset_percent: u8,
    /// Seed of the percentage decisions (default: the sandbox seed).
    pub seed: Option<u64>,
    /// Only requests whose path contains this text are affected (e.g. `/transactions`).
    pub path_contains: Option<String>,
}

impl FaultConfig {
    /// Checks percentages and statuses, so a typo is an error rather than a silent no-op.
    pub fn validate(&self) -> Result<(), String> {
        for (name, value) in [
            ("error_percent", self.error_percent),
            ("rate_limit_percent", self.rate_limit_percent),
            ("reset_percent", self.reset_percent),
        ] {
            if value > 100 {
                return Err(format!("{name} must be 0..=100"));
            }
        }
        if let Some(status) = self.error_status
            && status != 500
            && status != 503
        {
            return Err("error_status must be 500 or 503".into());
        }
        if self.latency_ms > 120_000 {
            return Err("latency_ms must be at most 120000".into());
        }
        Ok(())
    }
}

/// What to do to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultAction {
    None,
    Reset,
    RateLimit {
        retry_after: u32,
    },
    Error {
        status: u16,
    },
    /// Handle the request, then answer `status` instead.
    LoseAnswer {
        status: u16,
    },
}

/// Live fault state of one bank: the config plus its counters and generator.
#[derive(Debug)]
pub struct FaultState {
    config: FaultConfig,
    rng: Rng,
    default_seed: u64,
    /// How many requests each fault kind has hit, for the admin view.
    pub injected: u64,
}

impl FaultState {
    pub fn new(default_seed: u64) -> Self {
        Self {
            config: FaultConfig::default(),
            rng: Rng::new(default_seed),
            default_seed,
            injected: 0,
        }
    }

    pub fn config(&self) -> &FaultConfig {
        &self.config
    }

    pub fn set(&mut self, config: FaultConfig) {
        self.rng = Rng::new(config.seed.unwrap_or(self.default_seed));
        self.config = config;
        self.injected = 0;
    }

    /// Latency for this path (applies before any other fault).
    pub fn latency_ms(&self, path: &str) -> u64 {
        if self.matches(path) {
            self.config.latency_ms
        } else {
            0
        }
    }

    fn matches(&self, path: &str) -> bool {
        self.config
            .path_contains
            .as_deref()
            .is_none_or(|p| path.contains(p))
    }

    /// Decides the fault for one request; consumes "next N" counters and generator draws.
    pub fn decide(&mut self, path: &str) -> FaultAction {
        if !self.matches(path) {
            return FaultAction::None;
        }
        let c = &mut self.config;
        let action = if c.reset_next > 0 {
            c.reset_next -= 1;
            FaultAction::Reset
        } else if c.rate_limit_next > 0 {
            c.rate_limit_next -= 1;
            FaultAction::RateLimit {
                retry_after: c.retry_after_seconds.unwrap_or(1),
            }
        } else if c.fail_next > 0 {
            c.fail_next -= 1;
            FaultAction::Error {
                status: c.error_status.unwrap_or(500),
            }
        } else if c.lose_answer_next > 0 {
            c.lose_answer_next -= 1;
            FaultAction::LoseAnswer {
                status: c.error_status.unwrap_or(500),
            }
        } else {
            // One draw per request whatever is configured, so enabling one kind of fault does
            // not shift the decisions of another.
            let draw = self.rng.next_u64() % 100;
            let reset = u64::from(c.reset_percent);
            let limit = reset + u64::from(c.rate_limit_percent);
            let error = limit + u64::from(c.error_percent);
            if draw < reset {
                FaultAction::Reset
            } else if draw < limit {
                FaultAction::RateLimit {
                    retry_after: c.retry_after_seconds.unwrap_or(1),
                }
            } else if draw < error {
                FaultAction::Error {
                    status: c.error_status.unwrap_or(500),
                }
            } else {
                FaultAction::None
            }
        };
        if action != FaultAction::None {
            self.injected += 1;
        }
        action
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_n_then_percentages_deterministically() {
        let mut state = FaultState::new(1);
        state.set(FaultConfig {
            fail_next: 2,
            error_status: Some(503),
            ..FaultConfig::default()
        });
        assert_eq!(state.decide("/x"), FaultAction::Error { status: 503 });
        assert_eq!(state.decide("/x"), FaultAction::Error { status: 503 });
        assert_eq!(state.decide("/x"), FaultAction::None);

        let config = FaultConfig {
            error_percent: 30,
            seed: Some(9),
            ..FaultConfig::default()
        };
        let run = |config: &FaultConfig| {
            let mut s = FaultState::new(0);
            s.set(config.clone());
            (0..100).map(|_| s.decide("/a")).collect::<Vec<_>>()
        };
        let first = run(&config);
        assert_eq!(first, run(&config));
        let errors = first.iter().filter(|a| **a != FaultAction::None).count();
        assert!((15..=45).contains(&errors), "{errors}");
    }

    #[test]
    fn lost_answers_come_after_failures_and_count() {
        let mut state = FaultState::new(1);
        state.set(FaultConfig {
            fail_next: 1,
            lose_answer_next: 2,
            error_status: Some(503),
            ..FaultConfig::default()
        });
        assert_eq!(state.decide("/x"), FaultAction::Error { status: 503 });
        assert_eq!(state.decide("/x"), FaultAction::LoseAnswer { status: 503 });
        assert_eq!(state.decide("/x"), FaultAction::LoseAnswer { status: 503 });
        assert_eq!(state.decide("/x"), FaultAction::None);
        assert_eq!(state.injected, 3);
    }

    #[test]
    fn path_filter_and_validation() {
        let mut state = FaultState::new(1);
        state.set(FaultConfig {
            reset_next: 1,
            path_contains: Some("/transactions".into()),
            ..FaultConfig::default()
        });
        assert_eq!(state.decide("/v1/accounts"), FaultAction::None);
        assert_eq!(
            state.decide("/v1/accounts/x/transactions"),
            FaultAction::Reset
        );
        assert!(
            FaultConfig {
                error_percent: 101,
                ..FaultConfig::default()
            }
            .validate()
            .is_err()
        );
        assert!(
            FaultConfig {
                error_status: Some(502),
                ..FaultConfig::default()
            }
            .validate()
            .is_err()
        );
    }
}
