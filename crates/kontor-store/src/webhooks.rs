//! Webhooks in storage. Endpoints are per tenant and live in the control database, with their
//! signing secrets sealed by a per-tenant data key (also kept there, wrapped). Deliveries live in
//! the cell of the event they deliver, next to it: the event log is the outbox, and turning an
//! event into deliveries marks it dispatched in the same transaction.

use async_trait::async_trait;
use kontor_domain::event::Event;
use kontor_domain::time::Timestamp;
use kontor_domain::webhook::{
    Attempt, DeliveryFailure, Description, DisabledReason, EndpointStatus, EventSelection,
    WebhookEndpoint,
};
use kontor_domain::{DeliveryId, EventId, TenantId, WebhookEndpointId};

use crate::error::StoreResult;
use crate::page::{Page, PageKey};

/// A new endpoint with its signing secret, sealed by the tenant's data key.
#[derive(Debug, Clone)]
pub struct NewWebhookEndpoint {
    pub endpoint: WebhookEndpoint,
    pub sealed_secret: String,
}

/// A change to an endpoint; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct EndpointChange {
    pub url: Option<String>,
    /// `Some(None)` clears the description.
    pub description: Option<Option<Description>>,
    pub events: Option<EventSelection>,
    pub status: Option<(EndpointStatus, Option<DisabledReason>)>,
}

/// An endpoint as the sender needs it: its secrets (sealed) and its tenant's data key (wrapped).
#[derive(Clone)]
pub struct EndpointSecrets {
    pub endpoint: WebhookEndpoint,
    pub sealed_secret: String,
    /// The secret before the last rotation, while it still signs.
    pub sealed_previous: Option<String>,
    pub tenant_key: Option<String>,
}

impl std::fmt::Debug for EndpointSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EndpointSecrets")
            .field("endpoint", &self.endpoint.id)
            .finish_non_exhaustive()
    }
}

/// Webhook endpoints and tenants' data keys, in the control database.
#[async_trait]
pub trait WebhookEndpointStore: Send + Sync {
    /// Stores a new endpoint; `Conflict` (`webhook_endpoints_per_tenant`) when the tenant has
    /// `max_per_tenant` already.
    async fn create_webhook_endpoint(
        &self,
        new: &NewWebhookEndpoint,
        max_per_tenant: usize,
    ) -> StoreResult<WebhookEndpoint>;

    /// A tenant's endpoint; `NotFound` for another tenant's.
    async fn webhook_endpoint(
        &self,
        tenant: &TenantId,
        id: &WebhookEndpointId,
    ) -> StoreResult<WebhookEndpoint>;

    /// A tenant's endpoints, oldest first.
    async fn list_webhook_endpoints(&self, tenant: &TenantId) -> StoreResult<Vec<WebhookEndpoint>>;

    async fn update_webhook_endpoint(
        &self,
        tenant: &TenantId,
        id: &WebhookEndpointId,
        change: &EndpointChange,
        at: Timestamp,
    ) -> StoreResult<WebhookEndpoint>;

    /// Makes `sealed_secret` the signing secret; the one it replaces keeps signing until
    /// `previous_until`. A secret older than that one is dropped.
    async fn rotate_webhook_secret(
        &self,
        tenant: &TenantId,
        id: &WebhookEndpointId,
        sealed_secret: &str,
        previous_until: Timestamp,
        at: Timestamp,
    ) -> StoreResult<WebhookEndpoint>;

    async fn delete_webhook_endpoint(
        &self,
        tenant: &TenantId,
        id: &WebhookEndpointId,
    ) -> StoreResult<()>;

    /// The endpoints among `ids` that exist, with what signing needs. A previous secret is
    /// included only while it is valid at `now`.
    async fn endpoint_secrets(
        &self,
        ids: &[WebhookEndpointId],
        now: Timestamp,
    ) -> StoreResult<Vec<EndpointSecrets>>;

    /// Disables an enabled endpoint because it kept failing; `true` when this call did it.
    async fn disable_failing_endpoint(
        &self,
        id: &WebhookEndpointId,
        at: Timestamp,
    ) -> StoreResult<bool>;

    /// The tenant's data key (wrapped), if it has one yet.
    async fn tenant_data_key(&self, tenant: &TenantId) -> StoreResult<Option<String>>;

    /// Stores `candidate` as the tenant's data key unless it has one; returns the stored one.
    async fn ensure_tenant_data_key(
        &self,
        tenant: &TenantId,
        candidate: &str,
    ) -> StoreResult<String>;
}

/// A delivery to make: of a new event (fan-out) or of an old one again (redelivery).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    pub id: DeliveryId,
    pub tenant_id: TenantId,
    pub endpoint_id: WebhookEndpointId,
    pub event_id: EventId,
    /// Deliveries with the same endpoint and key go one at a time, in `queued_at` order.
    pub ordering_key: String,
    pub queued_at: Timestamp,
    pub redelivery: bool,
    pub created_at: Timestamp,
}

/// A delivery a worker holds the lease on, with its event.
#[derive(Debug, Clone)]
pub struct ClaimedDelivery {
    pub id: DeliveryId,
    pub endpoint_id: WebhookEndpointId,
    /// Attempts made before this one.
    pub attempts: u32,
    pub first_attempt_at: Option<Timestamp>,
    pub event: Event,
}

/// One attempt to record, with what it leaves the delivery as (see
/// [`DeliveryStore::record_attempts`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    pub id: DeliveryId,
    pub attempt: Attempt,
    pub outcome: DeliveryOutcome,
}

/// What an attempt leaves the delivery as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryOutcome {
    Delivered,
    RetryAt(Timestamp),
    GiveUp(DeliveryFailure),
}

pub use kontor_domain::list::DeliveryFilter;

/// Deliveries, in the cell of their event.
#[async_trait]
pub trait DeliveryStore: Send + Sync {
    /// Events not yet turned into deliveries, oldest first.
    async fn undispatched_events(&self, limit: usize) -> StoreResult<Vec<Event>>;

    /// Stores the deliveries of `events` and marks the events dispatched, atomically. A
    /// delivery of an event to an endpoint that exists already is not made twice.
    async fn dispatch_events(
        &self,
        events: &[EventId],
        deliveries: &[NewDelivery],
        at: Timestamp,
    ) -> StoreResult<()>;

    /// Takes the named job's lease (one holder per cell at a time) for `owner` until `until`.
    async fn claim_job(
        &self,
        name: &str,
        owner: &str,
        until: Timestamp,
        now: Timestamp,
    ) -> StoreResult<bool>;

    async fn release_job(&self, name: &str, owner: &str) -> StoreResult<()>;

    /// Leases up to `limit` deliveries that are due, to `owner` until `until`: each the oldest
    /// pending one of its queue (endpoint and ordering key), with nothing of its queue in flight.
    /// No delivery is leased by two owners at once.
    async fn claim_deliveries(
        &self,
        owner: &str,
        until: Timestamp,
        now: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<ClaimedDelivery>>;

    /// Records an attempt, and — if `owner` still holds the lease — what it leaves the delivery
    /// as.
    async fn record_attempt(
        &self,
        id: &DeliveryId,
        owner: &str,
        attempt: &Attempt,
        outcome: DeliveryOutcome,
    ) -> StoreResult<()>;

    /// Records attempts of several deliveries (each id at most once) by `owner` in one
    /// transaction, each as [`DeliveryStore::record_attempt`] records it; all or none. The
    /// default records them one by one, in a transaction each.
    async fn record_attempts(&self, owner: &str, records: &[AttemptRecord]) -> StoreResult<()> {
        for record in records {
            self.record_attempt(&record.id, owner, &record.attempt, record.outcome)
                .await?;
        }
        Ok(())
    }

    /// Gives a delivery up without an attempt (its endpoint is gone or disabled).
    async fn give_up_delivery(
        &self,
        id: &DeliveryId,
        owner: &str,
        failure: DeliveryFailure,
        at: Timestamp,
    ) -> StoreResult<()>;

    /// Whether any delivery to `endpoint` in this cell succeeded at or after `since`.
    async fn delivered_since(
        &self,
        endpoint: &WebhookEndpointId,
        since: Timestamp,
    ) -> StoreResult<bool>;

    /// A tenant's event; `NotFound` for another tenant's.
    async fn event(&self, tenant: &TenantId, id: &EventId) -> StoreResult<Event>;

    /// Stores redeliveries.
    async fn create_deliveries(&self, deliveries: &[NewDelivery]) -> StoreResult<()>;

    /// A tenant's deliveries to one endpoint, oldest first.
    async fn list_deliveries(
        &self,
        tenant: &TenantId,
        endpoint: &WebhookEndpointId,
        filter: &DeliveryFilter,
        after: Option<&PageKey>,
        limit: usize,
    ) -> StoreResult<Page<kontor_domain::webhook::Delivery>>;

    /// The attempts of the given deliveries, each delivery's in order.
    async fn delivery_attempts(
        &self,
        ids: &[DeliveryId],
    ) -> StoreResult<Vec<(DeliveryId, Attempt)>>;
}
