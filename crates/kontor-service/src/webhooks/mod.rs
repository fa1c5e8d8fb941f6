//! Webhooks: tenants' endpoints (`endpoints`), the fan-out of recorded events into deliveries
//! (`dispatch`), attempting them with Standard Webhooks signatures on a retry schedule
//! (`sender`), replays (`redeliver`), and where deliveries may go (`address`).
//!
//! The event log is the outbox: an event is recorded in the transaction of the change it
//! reports, and only afterwards turned into deliveries, so nothing recorded is lost and nothing
//! is delivered that was not recorded. Delivery is at least once: the `webhook-id` header (the
//! event id) lets receivers drop repeats.

pub mod address;
mod dispatch;
mod endpoints;
mod keys;
mod ranges;
mod redeliver;
mod sender;
mod test_event;

use std::time::Duration;

use kontor_domain::event::Event;
use kontor_domain::webhook::RetrySchedule;
use serde::Serialize;

pub use address::UrlPolicy;
pub use endpoints::{CreatedEndpoint, EndpointUpdate, NewEndpointRequest};
pub use sender::{AttemptReport, Deliverer, Job};
pub use test_event::{TEST_EXCERPT_BYTES, TestReport};

#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// Accept `http` endpoint URLs (development, tests, the demo).
    pub allow_http: bool,
    /// Deliver to private, loopback and link-local addresses (development, tests, the demo).
    /// Cloud metadata addresses stay refused.
    pub allow_private_addresses: bool,
    /// Ports of 1024 and above deliveries may not go to (below 1024, only 80 and 443 are open).
    pub denied_ports: Vec<u16>,
    /// How long an attempt may take, from connecting to the answer's status.
    pub timeout: Duration,
    pub retry_schedule: RetrySchedule,
    /// How often an idle worker looks for new events and due deliveries.
    pub poll_interval: Duration,
    /// Attempts in flight at once per worker process.
    pub concurrency: usize,
    /// Events turned into deliveries per transaction.
    pub dispatch_batch: usize,
    /// How long a worker holds a delivery it attempts; a worker that dies releases it when
    /// this runs out. Longer than `timeout`.
    pub lease_seconds: i64,
    /// How long a rotated-out secret keeps signing next to the new one.
    pub secret_overlap_seconds: i64,
    pub max_endpoints_per_tenant: usize,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            allow_http: false,
            allow_private_addresses: false,
            denied_ports: address::DEFAULT_DENIED_PORTS.to_vec(),
            timeout: Duration::from_secs(10),
            retry_schedule: RetrySchedule::default(),
            poll_interval: Duration::from_millis(200),
            concurrency: 16,
            dispatch_batch: 200,
            lease_seconds: 60,
            secret_overlap_seconds: 24 * 3600,
            max_endpoints_per_tenant: 16,
        }
    }
}

impl WebhookSettings {
    pub fn url_policy(&self) -> UrlPolicy {
        UrlPolicy {
            allow_http: self.allow_http,
            allow_private_addresses: self.allow_private_addresses,
            denied_ports: self.denied_ports.as_slice().into(),
        }
    }
}

/// The body of a delivery: the event as `GET /v1/events` shows it. The same bytes at every
/// attempt.
#[derive(Debug, Serialize)]
struct Payload<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    event_type: &'a str,
    user_id: Option<&'a str>,
    data: &'a serde_json::Value,
    created_at: String,
}

pub fn payload(event: &Event) -> Vec<u8> {
    body_of(&Payload {
        id: event.id.as_str(),
        event_type: event.event_type.as_str(),
        user_id: event.user_id.as_ref().map(|u| u.as_str()),
        data: &event.data,
        created_at: event.created_at.to_rfc3339(),
    })
}

fn body_of(payload: &Payload<'_>) -> Vec<u8> {
    serde_json::to_vec(payload).unwrap_or_default()
}
