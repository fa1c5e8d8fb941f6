//! Events: what a tenant may be told about (by webhook, and in the event log). Each is written
//! in the same transaction as the change it reports, and carries ids and counts only — never
//! personal data — so the log can be kept and delivered freely.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::id::{EventId, TenantId, UserId};
use crate::time::Timestamp;

macro_rules! event_types {
    ($($variant:ident => $name:literal, $doc:literal;)*) => {
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
        }
    };
}

event_types! {
    ConnectionActive => "connection.active", "The user authorised the consent; data is being fetched.";
    ConnectionFailed => "connection.failed", "Linking failed or the bank stopped honouring the consent; `reason` says why.";
    ConnectionExpired => "connection.expired", "The consent ran out; a new connection is needed.";
    ConnectionRevoked => "connection.revoked", "The consent was withdrawn (by the tenant, the user or the bank).";
    ConnectionExpiring => "connection.expiring", "The consent lapses soon; `valid_until` says when.";
    ConnectionReconfirmed => "connection.reconfirmed", "The user reconfirmed access (UK 90-day rule); `valid_until` moved.";
    TransactionsUpdated => "transactions.updated", "A sync changed an account's transactions; counts per account.";
    SyncFailed => "connection.sync_failed", "A sync could not complete (the first failure of a run); `code` says why, `next_attempt_at` when the hub tries again.";
    SyncRecovered => "connection.sync_recovered", "Syncing works again after failures; `consecutive_failures` and `last_error_code` say what it recovered from.";
    PaymentStatusChanged => "payment.status_changed", "A payment moved to a new status.";
    UserErased => "user.erased", "A user and everything held about them was erased; `user_id` says who (in the data only). Their consents are revoked at the banks next.";
    UserErasureCompleted => "user.erasure_completed", "An erasure finished: every consent of the user was revoked at its bank or given up (`consents_revoked`, `consents_not_revoked`).";
    ConsentRevocationFailed => "user.consent_revocation_failed", "An erased user's consent could not be revoked at the bank after retries; `connection_id`, `bank_id` and `code` say which and why.";
    WebhookEndpointDisabled => "webhook_endpoint.disabled", "The hub disabled a webhook endpoint that kept failing; `endpoint_id` says which.";
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
    pub fn new(
        tenant_id: TenantId,
        user_id: &UserId,
        event_type: EventType,
        data: serde_json::Value,
    ) -> Self {
        Self {
            id: EventId::generate(user_id.region()),
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
