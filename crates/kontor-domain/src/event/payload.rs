//! What each event says: its `data`, one type per shape. The code that records an event builds
//! one of these, and the OpenAPI document describes the same types (with the `openapi`
//! feature), so what is sent and what is documented cannot drift apart. Ids and counts only,
//! never personal data. Fields are always present; a value that does not apply is `null`.

use serde::Serialize;

use super::EventData;
use crate::bank::BankId;
use crate::connection::{ConnectionEvent, FailureReason};
use crate::payment::PaymentStatus;
use crate::time::Timestamp;
use crate::webhook::DisabledReason;
use crate::{ConnectionId, PaymentId, UserId, WebhookEndpointId};

#[cfg(feature = "openapi")]
use super::schema;

/// `connection.active`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConnectionActivated {
    #[cfg_attr(feature = "openapi", schema(schema_with = schema::connection_id))]
    pub connection_id: ConnectionId,
    #[cfg_attr(feature = "openapi", schema(schema_with = schema::nullable_bank_id))]
    pub bank_id: Option<BankId>,
    /// When access ends (RFC 3339).
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub valid_until: Timestamp,
}

/// Who ended a connection, when the event says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum EndedBy {
    /// You, with `DELETE /v1/connections/{id}`.
    Tenant,
    /// The bank, which reported the consent ended.
    Bank,
}

/// `connection.failed`, `connection.expired` and `connection.revoked`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConnectionEnded {
    #[cfg_attr(feature = "openapi", schema(schema_with = schema::connection_id))]
    pub connection_id: ConnectionId,
    /// Who ended it, when known: `tenant` or `bank`; null when the link failed or the
    /// validity ran out.
    #[cfg_attr(feature = "openapi", schema(schema_with = schema::ended_by))]
    pub by: Option<EndedBy>,
    /// Why, as in the connection's `failure_reason`.
    #[cfg_attr(feature = "openapi", schema(schema_with = schema::failure_reason))]
    pub reason: Option<FailureReason>,
    /// For a consent whose validity ran out: when it ended (RFC 3339).
    #[cfg_attr(feature = "openapi", schema(schema_with = schema::nullable_instant))]
    pub valid_until: Option<Timestamp>,
}

impl ConnectionEnded {
    pub fn new(connection_id: ConnectionId) -> Self {
        Self {
            connection_id,
            by: None,
            reason: None,
            valid_until: None,
        }
    }

    pub fn by(self, by: EndedBy) -> Self {
        Self {
            by: Some(by),
            ..self
        }
    }

    pub fn reason(self, reason: Option<FailureReason>) -> Self {
        Self { reason, ..self }
    }

    pub fn valid_until(self, valid_until: Option<Timestamp>) -> Self {
        Self {
            valid_until,
            ..self
        }
    }

    /// The event for a connection that `change` ended; `None` for a change that ends nothing.
    pub fn on(self, change: ConnectionEvent) -> Option<EventData> {
        match change {
            ConnectionEvent::Failed => Some(EventData::ConnectionFailed(self)),
            ConnectionEvent::Expired => Some(EventData::ConnectionExpired(self)),
            ConnectionEvent::Revoked => Some(EventData::ConnectionRevoked(self)),
            ConnectionEvent::Authorised | ConnectionEvent::Reconfirmed => None,
        }
    }
}

/// `connection.expiring` and `connection.reconfirmed`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConnectionValidity {
    #[cfg_attr(feature = "openapi", schema(schema_with = schema::connection_id))]
    pub connection_id: ConnectionId,
    /// When access ends (RFC 3339).
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub valid_until: Timestamp,
}

/// What one sync changed in one account.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AccountChanges {
    #[cfg_attr(feature = "openapi", schema(schema_with = schema::account_id))]
    pub account_id: String,
    /// Transactions seen for the first time.
    pub added: usize,
    /// Transactions that changed (a pending one booked, say).
    pub updated: usize,
    /// Pending transactions that booked (also counted in `updated`).
    pub booked: usize,
    /// Pending transactions the bank no longer reports.
    pub removed: usize,
}

/// `transactions.updated`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TransactionsUpdated {
    #[cfg_attr(feature = "openapi", schema(schema_with = schema::connection_id))]
    pub connection_id: ConnectionId,
    /// Whether this was the connection's first sync.
    pub initial: bool,
    pub accounts: Vec<AccountChanges>,
    /// The changes feed's cursor just before this sync's changes: with it,
    /// `GET /v1/connections/{id}/transactions/changes` lists what this sync changed (and
    /// anything since). Null when it could not be made; a tenant's own stored cursor is the
    /// sure way.
    pub changes_cursor: Option<String>,
}

/// `connection.sync_failed`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SyncFailed {
    #[cfg_attr(feature = "openapi", schema(schema_with = schema::connection_id))]
    pub connection_id: ConnectionId,
    /// `bank_unavailable`, `bank_rate_limited`, `access_exceeded`, `bank_rejected` or
    /// `bank_protocol_error`.
    #[cfg_attr(feature = "openapi", schema(example = "bank_unavailable"))]
    pub code: String,
    /// When the hub tries again (RFC 3339).
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub next_attempt_at: Timestamp,
}

/// `connection.sync_recovered`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SyncRecovered {
    #[cfg_attr(feature = "openapi", schema(schema_with = schema::connection_id))]
    pub connection_id: ConnectionId,
    /// How many syncs had failed in a row.
    pub consecutive_failures: u32,
    /// The code of the last failure (as in `connection.sync_failed`).
    pub last_error_code: Option<String>,
    /// The next scheduled sync (RFC 3339).
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub next_attempt_at: Timestamp,
}

/// `payment.status_changed`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PaymentStatusChanged {
    #[cfg_attr(feature = "openapi", schema(schema_with = schema::payment_id))]
    pub payment_id: PaymentId,
    #[cfg_attr(feature = "openapi", schema(schema_with = schema::payment_status))]
    pub status: PaymentStatus,
    #[cfg_attr(feature = "openapi", schema(schema_with = schema::payment_status))]
    pub previous_status: PaymentStatus,
    /// The bank's status, verbatim (an ISO 20022 code or a UK status name).
    #[cfg_attr(feature = "openapi", schema(example = "ACSC"))]
    pub bank_status: String,
    /// The bank's reason, when it gave one.
    pub reason: Option<String>,
}

/// `user.erased`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserErased {
    #[cfg_attr(feature = "openapi", schema(schema_with = schema::user_id))]
    pub user_id: UserId,
}

/// `user.erasure_completed`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErasureCompleted {
    #[cfg_attr(feature = "openapi", schema(schema_with = schema::user_id))]
    pub user_id: UserId,
    pub consents_revoked: u64,
    pub consents_not_revoked: u64,
}

/// `user.consent_revocation_failed`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConsentRevocationFailed {
    #[cfg_attr(feature = "openapi", schema(schema_with = schema::user_id))]
    pub user_id: UserId,
    #[cfg_attr(feature = "openapi", schema(schema_with = schema::connection_id))]
    pub connection_id: ConnectionId,
    #[cfg_attr(feature = "openapi", schema(schema_with = schema::bank_id))]
    pub bank_id: String,
    pub attempts: u32,
    /// The last error's code.
    #[cfg_attr(feature = "openapi", schema(example = "bank_unavailable"))]
    pub code: String,
}

/// `webhook_endpoint.disabled`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EndpointDisabled {
    #[cfg_attr(feature = "openapi", schema(schema_with = schema::endpoint_id))]
    pub endpoint_id: WebhookEndpointId,
    #[cfg_attr(feature = "openapi", schema(schema_with = schema::disabled_reason))]
    pub reason: DisabledReason,
    /// Nothing was delivered to the endpoint since (RFC 3339).
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub failing_since: Timestamp,
}

/// `webhook.test`: sent only by `POST /v1/webhook-endpoints/{id}/test`, to that endpoint alone;
/// never recorded in the event log and never selected by an endpoint's `events`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookTest {
    #[cfg_attr(feature = "openapi", schema(schema_with = schema::endpoint_id))]
    pub endpoint_id: WebhookEndpointId,
    /// Always true: nothing happened, this only checks the receiver.
    pub test: bool,
}
