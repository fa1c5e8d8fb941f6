//! Payments, kept in the user's cell, and idempotency keys, kept in the control database (they
//! are per tenant, and a key must be recognised whichever region its request named).

use async_trait::async_trait;
use kontor_domain::event::NewEvent;
use kontor_domain::payment::{Payment, PaymentPhase, PaymentStatus, StatusChange};
use kontor_domain::time::Timestamp;
use kontor_domain::{PaymentId, TenantId, UserId};

use crate::error::StoreResult;
use crate::page::{ListFilter, Page, PageKey};

#[derive(Debug, Clone)]
pub struct NewPayment {
    /// Status `pending`, phase `accepted`.
    pub payment: Payment,
    /// Sealed JSON: creditor, debtor, remittance, the authorisation token.
    pub details: String,
    /// SHA-256 (hex) of the token in the authorisation URL.
    pub authorize_token_hash: String,
}

/// A payment with what the authorisation pages, the callback and the worker need.
#[derive(Debug, Clone)]
pub struct PaymentSecrets {
    pub payment: Payment,
    pub details: String,
    pub authorize_token_hash: String,
    pub state_hash: Option<String>,
    pub state_expires_at: Option<Timestamp>,
    /// When the state was used; its hash is kept, so that a replay is recognised as one.
    pub state_spent_at: Option<Timestamp>,
    /// The connector's session, sealed.
    pub session: Option<String>,
}

/// One recorded step of a payment: a phase change (only from one of `from`), with what it learnt.
#[derive(Debug, Clone)]
pub struct PaymentChange {
    pub from: Vec<PaymentPhase>,
    pub phase: PaymentPhase,
    /// A new status with the bank's verbatim status; appended to the history. Checked against the
    /// payment's state machine; a repeat of the current status is recorded only if the bank's
    /// verbatim status changed.
    pub status: Option<(PaymentStatus, Option<String>)>,
    /// The bank's reason for the new status (kept with it, and in the history).
    pub reason: Option<String>,
    pub session: Option<String>,
    /// New sealed details (creditor, debtor, remittance, token), replacing the stored ones: what
    /// the bank told about the payment later (UK: the account it is paid from).
    pub details: Option<String>,
    pub bank_payment_id: Option<String>,
    /// A new callback state (hash, expiry); `Some(None)` clears it.
    pub state: Option<Option<(String, Timestamp)>>,
    /// When to poll next; `Some(None)` stops polling.
    pub next_poll_at: Option<Option<Timestamp>>,
    pub poll_attempts: Option<u32>,
    pub event: Option<NewEvent>,
    pub at: Timestamp,
}

impl PaymentChange {
    /// A change of phase only.
    pub fn phase(from: &[PaymentPhase], to: PaymentPhase, at: Timestamp) -> Self {
        Self {
            from: from.to_vec(),
            phase: to,
            status: None,
            reason: None,
            session: None,
            details: None,
            bank_payment_id: None,
            state: None,
            next_poll_at: None,
            poll_attempts: None,
            event: None,
            at,
        }
    }
}

#[async_trait]
pub trait PaymentStore: Send + Sync {
    /// Stores a new payment. Creating one that exists (same id) returns the stored one: a retry
    /// of an interrupted request must not make a second payment.
    async fn create_payment(&self, new: &NewPayment) -> StoreResult<Payment>;

    async fn payment(&self, tenant: &TenantId, id: &PaymentId) -> StoreResult<Payment>;

    async fn payment_secrets(&self, id: &PaymentId) -> StoreResult<PaymentSecrets>;

    /// A tenant's payments in this cell, oldest first, by `(created_at, id)`.
    async fn list_payments(
        &self,
        tenant: &TenantId,
        filter: &ListFilter<PaymentStatus>,
        after: Option<&PageKey>,
        limit: usize,
    ) -> StoreResult<Page<Payment>>;

    /// The payment's statuses, oldest first.
    async fn status_history(&self, id: &PaymentId) -> StoreResult<Vec<StatusChange>>;

    /// Several payments with their sealed parts, in one read (a list page); ids this cell does
    /// not hold are left out.
    async fn payments_secrets(&self, ids: &[PaymentId]) -> StoreResult<Vec<PaymentSecrets>>;

    /// Several payments' statuses in one read: `(payment, change)` pairs, each payment's
    /// oldest first.
    async fn status_histories(
        &self,
        ids: &[PaymentId],
    ) -> StoreResult<Vec<(PaymentId, StatusChange)>>;

    /// Rewrites up to `batch` stored statuses `from` (in `payments` and in
    /// `payment_status_history`) as `to`: a word whose stage was merged into another
    /// (`executing` into `authorised`). Returns how many rows changed; 0 once none are left.
    async fn rename_payment_status(&self, from: &str, to: &str, batch: usize) -> StoreResult<u64>;

    /// Records a step atomically: `StateRefused` when the payment is not in one of `change.from`, or
    /// the status change is one the state machine refuses.
    async fn advance_payment(&self, id: &PaymentId, change: &PaymentChange)
    -> StoreResult<Payment>;

    /// Consumes the callback state (single use, unexpired; marked spent, its hash kept so that
    /// a replay is recognised), records `change` and takes the
    /// payment's lease (owner, until) in the same transaction, so that the user's return is
    /// either wholly recorded or not at all: a crash cannot leave the state spent with the step
    /// it allowed unrecorded, and no worker resumes the step while the request is on it.
    /// `NotFound` when the state does not match or has expired; `StateRefused` when someone else
    /// holds the lease, or as for `advance_payment`. Returns the payment after the change.
    async fn take_payment_state(
        &self,
        id: &PaymentId,
        state_hash: &str,
        now: Timestamp,
        change: &PaymentChange,
        lease: (&str, Timestamp),
    ) -> StoreResult<PaymentSecrets>;

    /// Payments the worker should look at: polls due, phases left mid-step before `stale`, and
    /// authorisations abandoned before `abandoned`.
    async fn payments_due(
        &self,
        now: Timestamp,
        stale: Timestamp,
        abandoned: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<PaymentId>>;

    async fn claim_payment(
        &self,
        id: &PaymentId,
        owner: &str,
        until: Timestamp,
        now: Timestamp,
    ) -> StoreResult<bool>;

    /// Extends `owner`'s lease to `until`; `false` when `owner` no longer holds it.
    async fn renew_payment(
        &self,
        id: &PaymentId,
        owner: &str,
        until: Timestamp,
    ) -> StoreResult<bool>;

    async fn release_payment(&self, id: &PaymentId, owner: &str) -> StoreResult<()>;
}

/// What a request's idempotency key says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Idempotency {
    /// First use of the key: go ahead and create `resource_id`.
    New,
    /// The key's earlier request finished: answer with `resource_id` again.
    Replay { resource_id: String },
    /// The key's earlier request died mid-way: carry on with the same `resource_id`.
    Resume { resource_id: String },
    /// Another request with the key is in flight.
    InFlight,
    /// The key was used with a different request.
    Mismatch,
}

/// The forms of a key and its request that releases before keyed hashing stored: the tenant's
/// Idempotency-Key itself and a bare SHA-256 (64 hex digits) of the request. Rows written so
/// are honoured until `kontor migrate` converted them or they expired (contract: this goes in a
/// release after every node runs one that no longer writes them, plus the keys' 7 days).
#[derive(Debug, Clone, Copy)]
pub struct LegacyIdempotency<'a> {
    pub key: &'a str,
    pub request_hash: &'a str,
}

/// A finished key stored in the legacy form, to convert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyIdempotencyRow {
    pub tenant: TenantId,
    pub key: String,
    pub request_hash: String,
}

#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// Claims `key` for a request with `request_hash` that will create `resource_id` for `user`,
    /// holding it until `lock_until`; or tells what an earlier use of the key means.
    #[expect(
        clippy::too_many_arguments,
        reason = "one claim, every part of it needed"
    )]
    async fn begin_idempotent(
        &self,
        tenant: &TenantId,
        user: &UserId,
        key: &str,
        request_hash: &str,
        resource_id: &str,
        lock_until: Timestamp,
        now: Timestamp,
    ) -> StoreResult<Idempotency> {
        self.begin_idempotent_with_legacy(
            tenant,
            user,
            key,
            request_hash,
            None,
            resource_id,
            lock_until,
            now,
        )
        .await
    }

    /// As `begin_idempotent`, and where no row holds `key`, a row holding `legacy.key` in the
    /// legacy form counts as the key's earlier use (in the same transaction): with the same
    /// request it is converted to `key` and `request_hash` first; with another, it is a mismatch.
    #[expect(
        clippy::too_many_arguments,
        reason = "one claim, spelled out for the store"
    )]
    async fn begin_idempotent_with_legacy(
        &self,
        tenant: &TenantId,
        user: &UserId,
        key: &str,
        request_hash: &str,
        legacy: Option<LegacyIdempotency<'_>>,
        resource_id: &str,
        lock_until: Timestamp,
        now: Timestamp,
    ) -> StoreResult<Idempotency>;

    /// Up to `limit` finished keys still stored in the legacy form (a bare SHA-256 as the
    /// request hash), to convert.
    async fn legacy_idempotency_keys(&self, limit: usize)
    -> StoreResult<Vec<LegacyIdempotencyRow>>;

    /// Replaces the legacy row `old` by `key` and `request_hash` (its keyed forms); drops it if
    /// `key` is already stored. `false` when `old` is no longer there as it was.
    async fn convert_idempotency_key(
        &self,
        old: &LegacyIdempotencyRow,
        key: &str,
        request_hash: &str,
    ) -> StoreResult<bool>;

    /// The request finished: later uses replay it.
    async fn complete_idempotent(
        &self,
        tenant: &TenantId,
        key: &str,
        at: Timestamp,
    ) -> StoreResult<()>;

    /// The request failed without creating anything: the key is free again.
    async fn release_idempotent(&self, tenant: &TenantId, key: &str) -> StoreResult<()>;

    /// Forgets keys created before `before`; returns how many.
    async fn purge_idempotency(&self, before: Timestamp) -> StoreResult<u64>;

    /// Erasure: forgets the tenant's keys claimed for `user`, and those (written before keys
    /// named their user) that created one of `resources`; returns how many.
    async fn erase_idempotency(
        &self,
        tenant: &TenantId,
        user: &UserId,
        resources: &[String],
    ) -> StoreResult<u64>;
}
