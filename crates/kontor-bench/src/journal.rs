//! Every request a load sent, with when it started and ended (wall-clock milliseconds, so that
//! they line up with the times the ha-lab scripts print) and how it ended; and what the failover
//! report reads from it around a database event: the write outage the clients saw and the
//! requests that failed, by kind and by whether the client may simply send them again.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// What a request was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// `POST /v1/payments` with an Idempotency-Key.
    Payment,
    /// `POST /v1/users` with an Idempotency-Key.
    User,
    /// `POST /v1/connections/{id}/refresh`: a sync with the user present.
    Sync,
    /// `GET`s: a user, a page of payments, a page of transactions.
    Read,
}

impl Kind {
    /// Whether the request writes to the database (what the write outage is made of).
    pub fn writes(self) -> bool {
        !matches!(self, Kind::Read)
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Payment => "payment",
            Kind::User => "user",
            Kind::Sync => "sync",
            Kind::Read => "read",
        }
    }
}

/// How a request ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum Outcome {
    /// The answer the request was for.
    Ok,
    /// Neither success nor failure: the same work is in flight already (`409
    /// idempotency_key_in_use` for a key, `409 sync_in_progress` for a connection the worker
    /// is syncing).
    InUse,
    Failed {
        /// The client may send it again as it is: the hub said so (502/503/504), the request
        /// never reached it (connect error), or it is idempotent and the connection broke.
        retryable: bool,
        /// `HTTP 503 service_unavailable`, `connection broken`, …
        what: String,
    },
}

/// The outcome of an answer with `status` (and the error code of its body, if any).
pub fn answered(status: u16, code: &str, ok: u16) -> Outcome {
    if status == ok {
        return Outcome::Ok;
    }
    if status == 409 && matches!(code, "idempotency_key_in_use" | "sync_in_progress") {
        return Outcome::InUse;
    }
    Outcome::Failed {
        retryable: matches!(status, 502..=504),
        what: format!("HTTP {status} {code}").trim_end().to_owned(),
    }
}

/// The outcome of a request that got no answer: `what` is `connect error`, `timeout` or
/// `connection broken`. Only a connect error proves the request never reached the hub.
pub fn unanswered(what: &str, idempotent: bool) -> Outcome {
    Outcome::Failed {
        retryable: idempotent || what == "connect error",
        what: what.to_owned(),
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub kind: Kind,
    pub start_ms: u64,
    pub end_ms: u64,
    pub outcome: Outcome,
}

impl Entry {
    fn ok_write(&self) -> bool {
        self.kind.writes() && self.outcome == Outcome::Ok
    }
}

#[derive(Debug, Default)]
pub struct Journal(Mutex<Vec<Entry>>);

impl Journal {
    pub fn record(&self, kind: Kind, start_ms: u64, outcome: Outcome) {
        let entry = Entry {
            kind,
            start_ms,
            end_ms: now_ms(),
            outcome,
        };
        crate::crash::driver::lock(&self.0).push(entry);
    }

    /// Everything so far, by end time.
    pub fn entries(&self) -> Vec<Entry> {
        let mut all = crate::crash::driver::lock(&self.0).clone();
        all.sort_by_key(|e| e.end_ms);
        all
    }
}

/// The writes around an event at `at_ms`.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Outage {
    /// The longest time without an acknowledged write from the last one acknowledged before
    /// the event on: the longest gap between two consecutive acknowledgements (a write that
    /// committed before the event may still be answered just after it, so the first answer
    /// after the event does not end the outage by itself). Failing and hanging writes count
    /// alike. `None` when no write was acknowledged after the event.
    pub write_outage_ms: Option<u64>,
    /// Where that gap began and ended, ms after the event (negative: before it).
    pub gap_from_ms: Option<i64>,
    pub gap_to_ms: Option<i64>,
    /// The last acknowledged write before the event, ms before it.
    pub last_ok_before_ms: Option<u64>,
    /// The first acknowledged write after the event, ms after it.
    pub first_ok_after_ms: Option<u64>,
    /// From the first write that failed at or after the event to the first acknowledged after
    /// that failure (what the issue calls "first failed to first successful write"); `None`
    /// when no write failed.
    pub first_failed_to_ok_ms: Option<u64>,
    /// Writes acknowledged after the event that took longer than a second (they waited
    /// through it instead of failing).
    pub slow_writes: u64,
    /// The longest of those, ms.
    pub slowest_write_ms: u64,
}

/// The outage of the writes in `entries` (sorted by end) across an event at `at_ms`, looking
/// no further than `until_ms`.
pub fn outage(entries: &[Entry], at_ms: u64, until_ms: u64) -> Outage {
    let last_ok_before = entries
        .iter()
        .filter(|e| e.ok_write() && e.end_ms <= at_ms)
        .map(|e| e.end_ms)
        .max();
    let first_ok_after = entries
        .iter()
        .filter(|e| e.ok_write() && e.end_ms > at_ms && e.end_ms <= until_ms)
        .map(|e| e.end_ms)
        .min();
    let first_failed = entries
        .iter()
        .filter(|e| {
            e.kind.writes()
                && matches!(e.outcome, Outcome::Failed { .. })
                && e.end_ms >= at_ms
                && e.end_ms <= until_ms
        })
        .map(|e| e.end_ms)
        .min();
    let first_failed_to_ok_ms = first_failed.and_then(|failed| {
        entries
            .iter()
            .filter(|e| e.ok_write() && e.end_ms > failed && e.end_ms <= until_ms)
            .map(|e| e.end_ms - failed)
            .min()
    });
    let slow: Vec<u64> = entries
        .iter()
        .filter(|e| e.ok_write() && e.end_ms > at_ms && e.end_ms <= until_ms)
        .map(|e| e.end_ms.saturating_sub(e.start_ms))
        .filter(|ms| *ms > 1000)
        .collect();
    // Acknowledgements from the last before the event on, in order; the longest gap.
    let from = last_ok_before.unwrap_or(at_ms);
    let mut acks: Vec<u64> = entries
        .iter()
        .filter(|e| e.ok_write() && e.end_ms >= from && e.end_ms <= until_ms)
        .map(|e| e.end_ms)
        .collect();
    acks.sort_unstable();
    let mut gap: Option<(u64, u64)> = None;
    let mut previous = from;
    for ack in acks {
        if ack > previous && gap.is_none_or(|(a, b)| ack - previous > b - a) {
            gap = Some((previous, ack));
        }
        previous = previous.max(ack);
    }
    let relative =
        |t: u64| i64::try_from(t).unwrap_or(i64::MAX) - i64::try_from(at_ms).unwrap_or(0);
    let gap = gap.filter(|_| first_ok_after.is_some());
    Outage {
        write_outage_ms: gap.map(|(a, b)| b - a),
        gap_from_ms: gap.map(|(a, _)| relative(a)),
        gap_to_ms: gap.map(|(_, b)| relative(b)),
        last_ok_before_ms: last_ok_before.map(|b| at_ms - b),
        first_ok_after_ms: first_ok_after.map(|a| a - at_ms),
        first_failed_to_ok_ms,
        slow_writes: u64::try_from(slow.len()).unwrap_or(u64::MAX),
        slowest_write_ms: slow.iter().copied().max().unwrap_or(0),
    }
}

/// Failed requests of one kind.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Failures {
    pub retryable: u64,
    pub not_retryable: u64,
    /// What they were, with how many.
    pub what: BTreeMap<String, u64>,
}

/// Requests that ended in `[from_ms, to_ms)`: how many in all per kind, and the failed ones.
pub fn failures(
    entries: &[Entry],
    from_ms: u64,
    to_ms: u64,
) -> (
    BTreeMap<&'static str, u64>,
    BTreeMap<&'static str, Failures>,
) {
    let mut sent = BTreeMap::new();
    let mut failed: BTreeMap<&'static str, Failures> = BTreeMap::new();
    for e in entries
        .iter()
        .filter(|e| e.end_ms >= from_ms && e.end_ms < to_ms)
    {
        *sent.entry(e.kind.name()).or_default() += 1;
        if let Outcome::Failed { retryable, what } = &e.outcome {
            let f = failed.entry(e.kind.name()).or_default();
            if *retryable {
                f.retryable += 1;
            } else {
                f.not_retryable += 1;
            }
            *f.what.entry(what.clone()).or_default() += 1;
        }
    }
    (sent, failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(kind: Kind, start_ms: u64, end_ms: u64, outcome: Outcome) -> Entry {
        Entry {
            kind,
            start_ms,
            end_ms,
            outcome,
        }
    }

    fn failed(retryable: bool) -> Outcome {
        Outcome::Failed {
            retryable,
            what: "HTTP 503 service_unavailable".to_owned(),
        }
    }

    #[test]
    fn the_outage_runs_from_the_last_acknowledged_write_to_the_first_after_the_event() {
        let entries = vec![
            entry(Kind::Payment, 900, 980, Outcome::Ok),
            // A read after the event does not end the outage.
            entry(Kind::Read, 1000, 1100, Outcome::Ok),
            entry(Kind::User, 990, 1500, failed(true)),
            entry(Kind::Payment, 995, 1600, Outcome::InUse),
            // A write that hung through the event and then succeeded ends it.
            entry(Kind::Sync, 990, 4200, Outcome::Ok),
            entry(Kind::User, 4100, 4300, Outcome::Ok),
        ];
        let o = outage(&entries, 1000, 10_000);
        assert_eq!(o.write_outage_ms, Some(4200 - 980));
        assert_eq!((o.gap_from_ms, o.gap_to_ms), (Some(-20), Some(3200)));
        assert_eq!(o.last_ok_before_ms, Some(20));
        assert_eq!(o.first_ok_after_ms, Some(3200));
        assert_eq!(o.first_failed_to_ok_ms, Some(4200 - 1500));
        assert_eq!((o.slow_writes, o.slowest_write_ms), (1, 3210));
    }

    #[test]
    fn a_write_answered_just_after_the_event_does_not_end_the_outage() {
        let entries = vec![
            entry(Kind::Payment, 900, 980, Outcome::Ok),
            // Committed before the event, answered after it.
            entry(Kind::User, 500, 1200, Outcome::Ok),
            entry(Kind::Payment, 1100, 1300, failed(true)),
            entry(Kind::Payment, 6000, 7500, Outcome::Ok),
            entry(Kind::Payment, 7400, 7600, Outcome::Ok),
        ];
        let o = outage(&entries, 1000, 10_000);
        assert_eq!(o.write_outage_ms, Some(7500 - 1200));
        assert_eq!((o.gap_from_ms, o.gap_to_ms), (Some(200), Some(6500)));
        assert_eq!(o.first_ok_after_ms, Some(200));
        assert_eq!(o.first_failed_to_ok_ms, Some(7500 - 1300));
    }

    #[test]
    fn no_write_after_the_event_is_no_outage_figure_and_no_failure_is_none() {
        let entries = vec![
            entry(Kind::Payment, 900, 980, Outcome::Ok),
            entry(Kind::Payment, 2000, 12_000, Outcome::Ok),
        ];
        let o = outage(&entries, 1000, 10_000);
        assert_eq!(o.write_outage_ms, None);
        assert_eq!(o.first_failed_to_ok_ms, None);
    }

    #[test]
    fn failures_are_counted_per_kind_and_by_retryability_within_the_window() {
        let entries = vec![
            entry(Kind::Payment, 0, 50, failed(true)),
            entry(Kind::Payment, 100, 150, failed(true)),
            entry(Kind::Payment, 100, 160, failed(false)),
            entry(Kind::Read, 100, 170, unanswered("connection broken", true)),
            entry(Kind::User, 100, 180, Outcome::Ok),
            entry(Kind::User, 100, 900, failed(true)),
        ];
        let (sent, failed) = failures(&entries, 100, 500);
        assert_eq!(sent["payment"], 2);
        assert_eq!(sent["user"], 1);
        assert_eq!(failed["payment"].retryable, 1);
        assert_eq!(failed["payment"].not_retryable, 1);
        assert_eq!(failed["read"].what["connection broken"], 1);
        assert!(!failed.contains_key("user"));
    }

    #[test]
    fn answers_are_classified_as_the_client_would() {
        assert_eq!(answered(201, "", 201), Outcome::Ok);
        assert_eq!(answered(409, "idempotency_key_in_use", 201), Outcome::InUse);
        assert_eq!(answered(409, "sync_in_progress", 200), Outcome::InUse);
        assert!(matches!(
            answered(503, "service_unavailable", 201),
            Outcome::Failed {
                retryable: true,
                ..
            }
        ));
        assert!(matches!(
            answered(500, "internal_error", 201),
            Outcome::Failed {
                retryable: false,
                ..
            }
        ));
        assert!(matches!(
            unanswered("connection broken", false),
            Outcome::Failed {
                retryable: false,
                ..
            }
        ));
        assert!(matches!(
            unanswered("connect error", false),
            Outcome::Failed {
                retryable: true,
                ..
            }
        ));
    }
}
