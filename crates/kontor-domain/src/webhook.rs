//! Webhooks: a tenant's endpoints and the events each one wants, and one event's delivery to one
//! endpoint — attempts on a retry schedule until one is answered with a 2xx, or given up. Pure
//! types and rules; sending, signing and storing live elsewhere.

use std::collections::BTreeSet;

use crate::cell::CellId;
use crate::event::payload::EndpointDisabled;
use crate::event::{Event, EventData, EventType};
use crate::id::{DeliveryId, EventId, TenantId, UserId, WebhookEndpointId};
use crate::time::Timestamp;

/// Which events an endpoint receives: all of them (`*`, including types added later), or a set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventSelection {
    All,
    Only(BTreeSet<EventType>),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventSelectionError {
    #[error("events must name at least one event type, or \"*\" for all")]
    Empty,
    #[error("unknown event type {0:?}")]
    Unknown(String),
    #[error("\"*\" stands for all event types and cannot be combined with others")]
    MixedWildcard,
}

impl EventSelection {
    pub const WILDCARD: &'static str = "*";

    pub fn parse<S: AsRef<str>>(names: &[S]) -> Result<Self, EventSelectionError> {
        if names.is_empty() {
            return Err(EventSelectionError::Empty);
        }
        if names.iter().any(|n| n.as_ref() == Self::WILDCARD) {
            return if names.iter().all(|n| n.as_ref() == Self::WILDCARD) {
                Ok(Self::All)
            } else {
                Err(EventSelectionError::MixedWildcard)
            };
        }
        names
            .iter()
            .map(|n| {
                EventType::parse(n.as_ref()).ok_or_else(|| {
                    EventSelectionError::Unknown(crate::region::truncate_for_error(n.as_ref()))
                })
            })
            .collect::<Result<BTreeSet<_>, _>>()
            .map(Self::Only)
    }

    /// As stored: `*`, or the type names separated by spaces.
    pub fn to_words(&self) -> String {
        self.names().join(" ")
    }

    pub fn from_words(raw: &str) -> Result<Self, EventSelectionError> {
        let names: Vec<&str> = raw.split_ascii_whitespace().collect();
        Self::parse(&names)
    }

    pub fn names(&self) -> Vec<String> {
        match self {
            Self::All => vec![Self::WILDCARD.to_owned()],
            Self::Only(types) => types.iter().map(|t| t.as_str().to_owned()).collect(),
        }
    }

    pub fn matches(&self, event_type: EventType) -> bool {
        match self {
            Self::All => true,
            Self::Only(types) => types.contains(&event_type),
        }
    }
}

/// An endpoint's optional note to its tenant: at most 500 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Description(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a description must be at most 500 characters without control characters")]
pub struct DescriptionError;

impl Description {
    pub const MAX_CHARS: usize = 500;

    /// `None` for a blank description.
    pub fn parse(raw: &str) -> Result<Option<Self>, DescriptionError> {
        let trimmed = raw.trim();
        if trimmed.chars().count() > Self::MAX_CHARS || trimmed.chars().any(char::is_control) {
            return Err(DescriptionError);
        }
        Ok((!trimmed.is_empty()).then(|| Self(trimmed.to_owned())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

crate::words!(
    /// Whether an endpoint receives events.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum EndpointStatus as "endpoint status" { Enabled => "enabled", Disabled => "disabled" }
    display serialize
);

crate::words!(
    /// Who disabled an endpoint.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum DisabledReason as "disabled reason" {
        /// The tenant did (`PATCH … {"status": "disabled"}`).
        Tenant => "tenant",
        /// The hub did: every attempt of a delivery failed for its whole retry schedule.
        Failing => "failing",
    }
    display serialize
);

crate::words!(
    /// Where a delivery stands. `pending` includes the attempt in flight.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum DeliveryState as "delivery state" { Pending => "pending", Succeeded => "succeeded", Failed => "failed" }
    display serialize
);

crate::words!(
    /// Why a delivery was given up.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum DeliveryFailure as "delivery failure" {
        /// Every attempt of the retry schedule failed.
        RetriesExhausted => "retries_exhausted",
        /// The endpoint was disabled before the delivery got through.
        EndpointDisabled => "endpoint_disabled",
        /// The endpoint was deleted before the delivery got through.
        EndpointDeleted => "endpoint_deleted",
    }
    display serialize
);

crate::words!(
    /// What went wrong with one attempt.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum AttemptError as "attempt error" {
        /// No complete answer within the timeout.
        Timeout => "timeout",
        /// The host name did not resolve.
        DnsFailed => "dns_failed",
        /// The host resolved only to addresses deliveries may not go to (private, loopback,
        /// link-local, …): the SSRF guard.
        AddressNotAllowed => "address_not_allowed",
        /// No connection (refused, reset, TLS failure).
        ConnectionFailed => "connection_failed",
        /// A 3xx: redirects are not followed.
        Redirect => "redirect",
        /// Any other status outside 2xx.
        HttpStatus => "http_status",
    }
    display serialize
);

/// A tenant's webhook endpoint, as stored (its secrets are only ever read by the sender).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEndpoint {
    pub id: WebhookEndpointId,
    pub tenant_id: TenantId,
    /// Checked when set (scheme, host, resolved addresses) and again at every attempt.
    pub url: String,
    pub description: Option<Description>,
    pub events: EventSelection,
    pub status: EndpointStatus,
    pub disabled_reason: Option<DisabledReason>,
    pub disabled_at: Option<Timestamp>,
    /// Until when the secret before the last rotation still signs deliveries.
    pub previous_secret_expires_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl WebhookEndpoint {
    /// Whether a newly recorded event goes to this endpoint: it is enabled, wants the event's
    /// type, and existed when the event happened (an endpoint does not receive the past; the
    /// tenant replays it with a redelivery).
    pub fn wants(&self, event: &Event) -> bool {
        self.status == EndpointStatus::Enabled
            && self.events.matches(event.event_type)
            && self.created_at <= event.created_at
    }
}

/// One event's delivery to one endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: DeliveryId,
    pub tenant_id: TenantId,
    pub endpoint_id: WebhookEndpointId,
    pub event_id: EventId,
    pub event_type: EventType,
    pub user_id: Option<UserId>,
    pub state: DeliveryState,
    pub failure: Option<DeliveryFailure>,
    pub attempts: u32,
    /// When the next attempt is due; `None` once the delivery is over.
    pub next_attempt_at: Option<Timestamp>,
    /// Made by `POST /v1/events/{id}/redeliver` rather than by the event itself.
    pub redelivery: bool,
    pub created_at: Timestamp,
    pub delivered_at: Option<Timestamp>,
}

/// One attempt of a delivery: one HTTP request, and how it went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// 1 for the first attempt.
    pub number: u32,
    pub at: Timestamp,
    /// The answer's status, when one came.
    pub status_code: Option<u16>,
    pub error: Option<AttemptError>,
    /// From sending the request to having the answer's status (or giving up).
    pub latency_us: i64,
}

impl Attempt {
    pub fn succeeded(&self) -> bool {
        self.error.is_none() && self.status_code.is_some_and(|s| (200..300).contains(&s))
    }
}

/// Deliveries to one endpoint about one user are sent one at a time, in order; this is the key
/// of that queue. An event about no user is a queue of its own.
pub fn ordering_key(event: &Event) -> String {
    match &event.user_id {
        Some(user) => user.to_string(),
        None => event.id.to_string(),
    }
}

/// How long to wait after each failed attempt before the next; after the last, give up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule {
    delays_seconds: Vec<i64>,
}

impl Default for RetrySchedule {
    /// 16 attempts over about three days: quickly at first (a receiver restarting), then hourly,
    /// then twice a day (an outage over a weekend).
    fn default() -> Self {
        Self {
            delays_seconds: vec![
                5, 30, 120, 300, 900, 1800, 3600, 7200, 14_400, 28_800, 43_200, 43_200, 43_200,
                43_200, 43_200,
            ],
        }
    }
}

impl RetrySchedule {
    /// Negative delays count as zero.
    pub fn new(delays_seconds: Vec<i64>) -> Self {
        Self {
            delays_seconds: delays_seconds.into_iter().map(|d| d.max(0)).collect(),
        }
    }

    /// The wait before attempt `attempts_made + 1`, or `None` when `attempts_made` attempts are
    /// all there are.
    pub fn delay_after(&self, attempts_made: u32) -> Option<i64> {
        let index = usize::try_from(attempts_made.checked_sub(1)?).ok()?;
        self.delays_seconds.get(index).copied()
    }

    /// Attempts in all, the first included.
    pub fn max_attempts(&self) -> usize {
        self.delays_seconds.len() + 1
    }

    /// From the first attempt to the last, without jitter.
    pub fn span_seconds(&self) -> i64 {
        self.delays_seconds.iter().sum()
    }

    pub fn delays_seconds(&self) -> &[i64] {
        &self.delays_seconds
    }
}

/// The event that tells a tenant the hub disabled one of its endpoints. It is about no user; it
/// is recorded in the cell where the delivery that gave up lives.
/// The event that says the hub disabled a failing endpoint. Its id is derived from the
/// endpoint and the moment it was disabled, so that recording it again (after a crash between
/// disabling and recording) keeps one event.
pub fn endpoint_disabled_event(
    tenant: TenantId,
    cell: &CellId,
    endpoint: &WebhookEndpointId,
    disabled_at: Timestamp,
    failing_since: Timestamp,
) -> Event {
    Event {
        id: EventId::derived(
            cell,
            &[
                EventType::WebhookEndpointDisabled.as_str(),
                endpoint.as_str(),
                &disabled_at.unix_micros().to_string(),
            ],
        ),
        tenant_id: tenant,
        user_id: None,
        event_type: EventType::WebhookEndpointDisabled,
        data: EventData::WebhookEndpointDisabled(EndpointDisabled {
            endpoint_id: endpoint.clone(),
            reason: DisabledReason::Failing,
            failing_since,
        })
        .into_value(),
        created_at: disabled_at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selections_parse_round_trip_and_match() {
        let all = EventSelection::parse(&["*"]).unwrap();
        assert_eq!(all, EventSelection::All);
        assert!(all.matches(EventType::UserErased));
        assert_eq!(EventSelection::from_words(&all.to_words()).unwrap(), all);

        let some = EventSelection::parse(&["payment.status_changed", "connection.active"]).unwrap();
        assert!(some.matches(EventType::ConnectionActive));
        assert!(!some.matches(EventType::UserErased));
        assert_eq!(some.to_words(), "connection.active payment.status_changed");
        assert_eq!(EventSelection::from_words(&some.to_words()).unwrap(), some);

        assert_eq!(
            EventSelection::parse::<&str>(&[]),
            Err(EventSelectionError::Empty)
        );
        assert_eq!(
            EventSelection::parse(&["*", "user.erased"]),
            Err(EventSelectionError::MixedWildcard)
        );
        assert!(matches!(
            EventSelection::parse(&["user.exploded"]),
            Err(EventSelectionError::Unknown(_))
        ));
    }

    #[test]
    fn descriptions_are_trimmed_and_bounded() {
        assert_eq!(Description::parse("  ").unwrap(), None);
        assert_eq!(
            Description::parse(" orders ").unwrap().unwrap().as_str(),
            "orders"
        );
        assert!(Description::parse("a\nb").is_err());
        assert!(Description::parse(&"x".repeat(501)).is_err());
        assert!(Description::parse(&"x".repeat(500)).is_ok());
    }

    #[test]
    fn the_default_schedule_spans_about_three_days() {
        let schedule = RetrySchedule::default();
        assert_eq!(schedule.max_attempts(), 16);
        let days = schedule.span_seconds() / 86_400;
        assert!((2..=3).contains(&days), "{}", schedule.span_seconds());
        assert_eq!(schedule.delay_after(0), None);
        assert_eq!(schedule.delay_after(1), Some(5));
        assert_eq!(schedule.delay_after(15), Some(43_200));
        assert_eq!(schedule.delay_after(16), None);
        assert_eq!(RetrySchedule::new(vec![-3]).delay_after(1), Some(0));
    }

    #[test]
    fn word_enums_round_trip() {
        for e in [AttemptError::Timeout, AttemptError::AddressNotAllowed] {
            assert_eq!(AttemptError::parse(e.as_str()), Some(e));
        }
        assert_eq!(
            DeliveryState::parse("succeeded"),
            Some(DeliveryState::Succeeded)
        );
        assert_eq!(EndpointStatus::parse("paused"), None);
    }

    #[test]
    fn only_2xx_without_error_succeeds() {
        let mut attempt = Attempt {
            number: 1,
            at: Timestamp::from_unix_micros(0),
            status_code: Some(204),
            error: None,
            latency_us: 10,
        };
        assert!(attempt.succeeded());
        attempt.status_code = Some(301);
        assert!(!attempt.succeeded());
        attempt.status_code = None;
        attempt.error = Some(AttemptError::Timeout);
        assert!(!attempt.succeeded());
    }
}
