//! The lifecycle of a connection (a user's AIS consent at one bank) as a pure state machine:
//! every status change goes through [`ConnectionStatus::apply`], which refuses the ones that
//! cannot happen, so a late or duplicated bank callback cannot resurrect a dead consent.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::region::truncate_for_error;

/// Where a connection stands. Expired, revoked and failed are terminal: renewing access after
/// any of them takes a new consent, so a new connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionStatus {
    /// Created; the user has not yet completed authentication (SCA) at the bank.
    Pending,
    /// The bank granted the consent; data may be read.
    Active,
    /// The consent ran out (EU: 180 days; UK: not reconfirmed within 90 days), or the user
    /// never finished authorising before the connect link lapsed.
    Expired,
    /// Withdrawn by the user, the tenant, or the bank.
    Revoked,
    /// Authorisation failed or was refused, or the bank stopped honouring the consent for a
    /// reason that is neither expiry nor revocation.
    Failed,
}

crate::words!(
    /// Something that happened to a connection.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum ConnectionEvent as "connection event" {
        /// The user completed SCA and the bank reports the consent as valid.
        Authorised => "authorised",
        /// Authorisation failed, or the bank refuses the consent for good.
        Failed => "failed",
        /// The consent's validity ended, or the connect link lapsed before authorisation.
        Expired => "expired",
        /// The user, the tenant or the bank withdrew the consent.
        Revoked => "revoked",
        /// The user reconfirmed access (UK, FCA PS21/19: every 90 days, without new SCA at the
        /// bank). The connection stays active.
        Reconfirmed => "reconfirmed",
    }
    display
);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("illegal connection transition: {event} while {from}")]
pub struct IllegalTransition {
    pub from: ConnectionStatus,
    pub event: ConnectionEvent,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a connection status")]
pub struct ConnectionStatusError(pub String);

impl ConnectionStatus {
    pub const ALL: [ConnectionStatus; 5] = [
        ConnectionStatus::Pending,
        ConnectionStatus::Active,
        ConnectionStatus::Expired,
        ConnectionStatus::Revoked,
        ConnectionStatus::Failed,
    ];

    /// The wire and storage name, the same as the serde form.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionStatus::Pending => "pending",
            ConnectionStatus::Active => "active",
            ConnectionStatus::Expired => "expired",
            ConnectionStatus::Revoked => "revoked",
            ConnectionStatus::Failed => "failed",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, ConnectionStatusError> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == raw)
            .ok_or_else(|| ConnectionStatusError(truncate_for_error(raw)))
    }

    /// No event leads out of a terminal status.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            ConnectionStatus::Expired | ConnectionStatus::Revoked | ConnectionStatus::Failed
        )
    }

    /// The status after `event`, or an error if the event cannot happen in this status.
    ///
    /// Nothing is a silent no-op, not even repeating the event that led into a terminal
    /// status: callers that want idempotency (a second `DELETE`, a retried job) check the
    /// current status first, and every successful `apply` is a real change worth an event.
    /// The one self-loop is `Reconfirmed`, which keeps an active connection active.
    pub fn apply(self, event: ConnectionEvent) -> Result<ConnectionStatus, IllegalTransition> {
        use ConnectionEvent as E;
        use ConnectionStatus as S;
        match (self, event) {
            (S::Pending, E::Authorised) => Ok(S::Active),
            (S::Pending | S::Active, E::Failed) => Ok(S::Failed),
            (S::Pending | S::Active, E::Expired) => Ok(S::Expired),
            (S::Pending | S::Active, E::Revoked) => Ok(S::Revoked),
            (S::Active, E::Reconfirmed) => Ok(S::Active),
            (S::Active, E::Authorised)
            | (S::Pending, E::Reconfirmed)
            | (S::Expired | S::Revoked | S::Failed, _) => {
                Err(IllegalTransition { from: self, event })
            }
        }
    }
}

impl FromStr for ConnectionStatus {
    type Err = ConnectionStatusError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for ConnectionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::ConnectionEvent as E;
    use super::ConnectionStatus as S;
    use super::*;
    use proptest::prelude::*;

    /// The whole machine: one row per status, one column per event in `ConnectionEvent::ALL`
    /// order (authorised, failed, expired, revoked, reconfirmed); `None` is illegal.
    const TABLE: [(S, [Option<S>; 5]); 5] = [
        (
            S::Pending,
            [
                Some(S::Active),
                Some(S::Failed),
                Some(S::Expired),
                Some(S::Revoked),
                None,
            ],
        ),
        (
            S::Active,
            [
                None,
                Some(S::Failed),
                Some(S::Expired),
                Some(S::Revoked),
                Some(S::Active),
            ],
        ),
        (S::Expired, [None, None, None, None, None]),
        (S::Revoked, [None, None, None, None, None]),
        (S::Failed, [None, None, None, None, None]),
    ];

    #[test]
    fn every_pair_matches_the_table() {
        assert_eq!(
            TABLE.map(|(from, _)| from),
            S::ALL,
            "one row per status, in order"
        );
        for (from, row) in TABLE {
            for (event, expected) in E::ALL.into_iter().zip(row) {
                let got = from.apply(event);
                match expected {
                    Some(to) => assert_eq!(got, Ok(to), "{from} + {event}"),
                    None => assert_eq!(
                        got,
                        Err(IllegalTransition { from, event }),
                        "{from} + {event}"
                    ),
                }
            }
        }
    }

    #[test]
    fn terminal_statuses_have_no_way_out() {
        for status in S::ALL {
            let stuck = E::ALL.into_iter().all(|event| status.apply(event).is_err());
            assert_eq!(status.is_terminal(), stuck, "{status}");
        }
    }

    #[test]
    fn names_round_trip_through_serde_and_parse() {
        for status in S::ALL {
            let json = serde_json::to_string(&status).unwrap();
            assert_eq!(json, format!("\"{}\"", status.as_str()));
            assert_eq!(serde_json::from_str::<S>(&json).unwrap(), status);
            assert_eq!(S::parse(status.as_str()), Ok(status));
        }
        for event in E::ALL {
            let json = serde_json::to_string(&event).unwrap();
            assert_eq!(json, format!("\"{}\"", event.as_str()));
        }
        assert!(S::parse("Active").is_err());
        assert!(serde_json::from_str::<S>("\"ACTIVE\"").is_err());
    }

    #[test]
    fn error_names_the_status_and_event() {
        let err = S::Revoked.apply(E::Authorised).unwrap_err();
        assert_eq!(
            err.to_string(),
            "illegal connection transition: authorised while revoked"
        );
    }

    proptest! {
        /// Whatever events arrive, a terminal status is never left, and a connection is only
        /// ever active after it was authorised.
        #[test]
        fn terminal_statuses_are_sticky(
            events in proptest::collection::vec(proptest::sample::select(E::ALL.as_slice()), 0..30),
        ) {
            let mut status = S::Pending;
            let mut authorised = false;
            for event in events {
                let before = status;
                if let Ok(after) = status.apply(event) {
                    authorised |= event == E::Authorised;
                    status = after;
                }
                if before.is_terminal() {
                    prop_assert_eq!(status, before);
                }
                prop_assert!(status != S::Active || authorised);
            }
        }

        #[test]
        fn arbitrary_names_never_panic(raw in ".{0,12}") {
            if let Ok(status) = S::parse(&raw) {
                prop_assert_eq!(status.as_str(), raw.as_str());
            }
        }
    }
}
