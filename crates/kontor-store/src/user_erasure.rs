//! Erasing a user, as one resumable operation kept in their cell: recorded (with what revoking
//! their consents at the banks needs, sealed with the tenant's key) before anything is deleted,
//! then the user's data deleted, then each consent revoked by the worker. And the retention of
//! the event log.

use async_trait::async_trait;
use kontor_domain::event::NewEvent;
use kontor_domain::time::Timestamp;
use kontor_domain::{ConnectionId, PaymentId, TenantId, UserId};

use crate::error::StoreResult;

kontor_domain::words!(
    /// Where an erasure stands.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum ErasurePhase as "erasure phase" {
        /// Recorded; nothing deleted yet.
        Recorded => "recorded",
        /// The user's data is gone; consents may still wait to be revoked.
        Erased => "erased",
    }
);

/// A consent to revoke at its bank once the user is erased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRevocation {
    pub id: String,
    pub connection_id: ConnectionId,
    pub bank_id: String,
    /// What the bank's DELETE needs, sealed with the tenant's data key.
    pub ticket: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserErasure {
    pub user_id: UserId,
    pub tenant_id: TenantId,
    pub phase: ErasurePhase,
    pub requested_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A revocation with its bookkeeping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    pub id: String,
    pub user_id: UserId,
    pub tenant_id: TenantId,
    pub connection_id: ConnectionId,
    pub bank_id: String,
    pub ticket: String,
    pub attempts: u32,
}

/// What became of one attempt to revoke a consent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevocationOutcome {
    Revoked,
    /// Try again at `next_attempt_at`; `error` is a stable code.
    Retry {
        next_attempt_at: Timestamp,
        error: String,
    },
    /// Retries are exhausted.
    Failed {
        error: String,
    },
}

/// How the revocations of an erasure ended, counted when it is closed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RevocationTally {
    pub revoked: u64,
    pub failed: u64,
}

#[async_trait]
pub trait ErasureStore: Send + Sync {
    /// Records the erasure of the tenant's user with the revocations it will make, unless one is
    /// recorded already (then nothing changes and `false` is returned). `NotFound` when the
    /// tenant has no such user here.
    async fn record_erasure(
        &self,
        tenant: &TenantId,
        user: &UserId,
        revocations: &[NewRevocation],
        at: Timestamp,
    ) -> StoreResult<bool>;

    /// The erasure of this user, if one is recorded.
    async fn erasure(&self, user: &UserId) -> StoreResult<Option<UserErasure>>;

    /// The ids of the user's payments (what erasure looks for in the control database's
    /// idempotency records written before they named their user).
    async fn user_payment_ids(&self, user: &UserId) -> StoreResult<Vec<PaymentId>>;

    /// Deletes everything held about the user here — profile, data key, connections, accounts,
    /// balances, transactions, payments and their history, events with their deliveries and
    /// attempts — records `event` and moves the erasure to `Erased`, in one transaction. Returns
    /// `false` (changing nothing) when the erasure is not `Recorded`.
    async fn erase_user_data(
        &self,
        user: &UserId,
        event: &NewEvent,
        at: Timestamp,
    ) -> StoreResult<bool>;

    /// Erasures in phase `Recorded` last touched before `stale_before` (a request that died),
    /// and erasures in phase `Erased` with no revocation left pending.
    async fn erasures_to_finish(
        &self,
        stale_before: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<UserErasure>>;

    /// Pending revocations of erased users whose attempt is due.
    async fn revocations_due(&self, now: Timestamp, limit: usize) -> StoreResult<Vec<Revocation>>;

    /// Records one attempt's outcome, with `event` (a failure's notice) in the same
    /// transaction. A revocation no longer pending is left as it is.
    async fn record_revocation(
        &self,
        id: &str,
        outcome: &RevocationOutcome,
        event: Option<&NewEvent>,
        at: Timestamp,
    ) -> StoreResult<()>;

    /// Closes an erased user's erasure once no revocation is pending: deletes its rows and
    /// records `event(tally)`. `None` (changing nothing) when it is not erased or still has
    /// pending revocations.
    async fn close_erasure(
        &self,
        user: &UserId,
        event: &(dyn Fn(RevocationTally) -> NewEvent + Send + Sync),
    ) -> StoreResult<Option<RevocationTally>>;

    /// Retention: deletes up to `limit` events recorded before `before`, with their deliveries
    /// and attempts; returns how many events went.
    async fn purge_events(&self, before: Timestamp, limit: usize) -> StoreResult<u64>;
}
