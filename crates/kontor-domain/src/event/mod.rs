//! Events: what a tenant may be told about (by webhook, and in the event log). Each is written
//! in the same transaction as the change it reports, and carries ids and counts only — never
//! personal data — so the log can be kept and delivered freely.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::id::{EventId, TenantId, UserId};
use crate::time::Timestamp;

pub mod payload;
#[cfg(feature = "openapi")]
mod schema;

use payload::{
    ConnectionActivated, ConnectionEnded, ConnectionValidity, ConsentRevocationFailed,
    EndpointDisabled, ErasureCompleted, PaymentStatusChanged, SyncFailed, SyncRecovered,
    TransactionsUpdated, UserErased,
};

/// The type of the signed test event `POST /v1/webhook-endpoints/{id}/test` sends: not an
/// [`EventType`], since it is never recorded and no endpoint selects it.
pub const WEBHOOK_TEST: &str = "webhook.test";

macro_rules! event_types {
    ($($variant:ident => $name:literal, $payload:ident, $doc:literal;)*) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum EventType {
            $(#[doc = $doc] $variant,)*
        }

        impl EventType {
            pub const ALL: &'static [EventType] = &[$(EventType::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self { $(EventType::$variant => $name,)* }
            }

            pub fn description(self) -> &'static str {
                match self { $(EventType::$variant => $doc,)* }
            }

            /// The name of the type its `data` has ([`payload`]), as the OpenAPI document
            /// names its schema.
            pub fn payload_name(self) -> &'static str {
                match self { $(EventType::$variant => stringify!($payload),)* }
            }
        }

        /// What an event says, typed: the one way the hub builds an event's `data`, so that
        /// the type and the shape of the data always go together.
        #[derive(Debug, Clone, PartialEq)]
        pub enum EventData {
            $(#[doc = $doc] $variant($payload),)*
        }

        impl EventData {
            pub fn event_type(&self) -> EventType {
                match self { $(EventData::$variant(_) => EventType::$variant,)* }
            }

            /// The data as stored and sent.
            pub fn into_value(self) -> serde_json::Value {
                let value = match self { $(EventData::$variant(data) => serde_json::to_value(data),)* };
                // The payloads are plain structs of strings and numbers: they always serialize.
                value.unwrap_or(serde_json::Value::Null)
            }
        }

        /// Each payload type's name and schema, for the OpenAPI document (each once).
        #[cfg(feature = "openapi")]
        pub fn payload_schemas() -> Vec<(
            std::borrow::Cow<'static, str>,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )> {
            use utoipa::{PartialSchema, ToSchema};
            let mut all: Vec<(std::borrow::Cow<'static, str>, _)> = vec![
                $((<$payload as ToSchema>::name(), <$payload as PartialSchema>::schema()),)*
                (<payload::WebhookTest as ToSchema>::name(), <payload::WebhookTest as PartialSchema>::schema()),
                (<payload::EndedBy as ToSchema>::name(), <payload::EndedBy as PartialSchema>::schema()),
                (<payload::AccountChanges as ToSchema>::name(), <payload::AccountChanges as PartialSchema>::schema()),
            ];
            all.sort_by(|a, b| a.0.cmp(&b.0));
            all.dedup_by(|a, b| a.0 == b.0);
            all
        }
    };
}

event_types! {
    ConnectionActive => "connection.active", ConnectionActivated, "The user authorised the consent; data is being fetched.";
    ConnectionFailed => "connection.failed", ConnectionEnded, "Linking failed or the bank stopped honouring the consent; `reason` says why.";
    ConnectionExpired => "connection.expired", ConnectionEnded, "The consent ran out; a new connection is needed.";
    ConnectionRevoked => "connection.revoked", ConnectionEnded, "The consent was withdrawn (by the tenant, the user or the bank).";
    ConnectionExpiring => "connection.expiring", ConnectionValidity, "The consent lapses soon; `valid_until` says when.";
    ConnectionReconfirmed => "connection.reconfirmed", ConnectionValidity, "The user reconfirmed access (UK 90-day rule); `valid_until` moved.";
    TransactionsUpdated => "transactions.updated", TransactionsUpdated, "A sync changed an account's transactions; counts per account.";
    SyncFailed => "connection.sync_failed", SyncFailed, "A sync could not complete (the first failure of a run); `code` says why, `next_attempt_at` when the hub tries again.";
    SyncRecovered => "connection.sync_recovered", SyncRecovered, "Syncing works again after failures; `consecutive_failures` and `last_error_code` say what it recovered from.";
    PaymentStatusChanged => "payment.status_changed", PaymentStatusChanged, "A payment moved to a new status.";
    UserErased => "user.erased", UserErased, "A user and everything held about them was erased; `user_id` says who (in the data only). Their consents are revoked at the banks next.";
    UserErasureCompleted => "user.erasure_completed", ErasureCompleted, "An erasure finished: every consent of the user was revoked at its bank or given up (`consents_revoked`, `consents_not_revoked`).";
    ConsentRevocationFailed => "user.consent_revocation_failed", ConsentRevocationFailed, "An erased user's consent could not be revoked at the bank after retries; `connection_id`, `bank_id` and `code` say which and why.";
    WebhookEndpointDisabled => "webhook_endpoint.disabled", EndpointDisabled, "The hub disabled a webhook endpoint that kept failing; `endpoint_id` says which.";
}

impl EventType {
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|t| t.as_str() == raw)
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for EventType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EventType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        EventType::parse(&raw).ok_or_else(|| serde::de::Error::custom("unknown event type"))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: EventId,
    pub tenant_id: TenantId,
    pub user_id: Option<UserId>,
    pub event_type: EventType,
    pub data: serde_json::Value,
    pub created_at: Timestamp,
}

/// An event to record. Its id is in the region of the cell it is written to: the user's.
pub type NewEvent = Event;

impl Event {
    /// An event about a user, recorded in their region's cell.
    pub fn new(tenant_id: TenantId, user_id: &UserId, data: EventData) -> Self {
        Self {
            id: EventId::generate(user_id.cell()),
            tenant_id,
            user_id: Some(user_id.clone()),
            event_type: data.event_type(),
            data: data.into_value(),
            created_at: Timestamp::now(),
        }
    }

    /// An event with whatever `data`, for tests of the layers that store and deliver events
    /// without looking inside them. The hub itself builds every event with [`Event::new`].
    pub fn untyped(
        tenant_id: TenantId,
        user_id: &UserId,
        event_type: EventType,
        data: serde_json::Value,
    ) -> Self {
        Self {
            id: EventId::generate(user_id.cell()),
            tenant_id,
            user_id: Some(user_id.clone()),
            event_type,
            data,
            created_at: Timestamp::now(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for t in EventType::ALL {
            assert!(seen.insert(t.as_str()));
            assert_eq!(EventType::parse(t.as_str()), Some(*t));
            assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
        }
        assert_eq!(EventType::parse("connection.exploded"), None);
    }
}
