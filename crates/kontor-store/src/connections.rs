//! Connections, kept in the user's cell. Secrets (the sealed bank session, hashes of the connect
//! token and of the callback state) are written and read only through the methods that need them.

use async_trait::async_trait;
use kontor_domain::bank::BankId;
use kontor_domain::connection::{
    Connection, ConnectionEvent, ConnectionStatus, FailureReason, NewConnection, SyncError,
};
use kontor_domain::event::NewEvent;
use kontor_domain::time::Timestamp;
use kontor_domain::{ConnectionId, TenantId};
use time::Date;

use crate::error::StoreResult;
use crate::page::{ListFilter, Page, PageKey};

/// A connection with what the hosted pages and the callback need to check.
#[derive(Debug, Clone)]
pub struct ConnectionSecrets {
    pub connection: Connection,
    pub connect_token_hash: String,
    pub state_hash: Option<String>,
    pub state_expires_at: Option<Timestamp>,
    /// When the state was used; its hash is kept, so that a replay is recognised as one.
    pub state_spent_at: Option<Timestamp>,
    /// The connector's session, sealed with the user's data key.
    pub session: Option<String>,
    /// A first sync the user started and that has not finished: their IP address (sealed) and
    /// when it started.
    pub first_sync: Option<(String, Timestamp)>,
    /// The bank login name the tenant bound, sealed with the user's data key.
    pub psu_id: Option<String>,
    /// Decoupled-SCA starts made from the connect link so far.
    pub decoupled_starts: u32,
}

/// A status change, checked against the current status inside the transaction.
#[derive(Debug, Clone)]
pub struct Transition {
    pub event: ConnectionEvent,
    pub failure_reason: Option<FailureReason>,
    /// New validity (on authorisation or reconfirmation).
    pub valid_until: Option<Timestamp>,
    /// New sealed session, when it changed.
    pub session: Option<String>,
    /// When the first scheduled sync is due (on authorisation).
    pub next_sync_at: Option<Timestamp>,
    pub at: Timestamp,
}

/// The allowance bookkeeping and schedule a sync leaves behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncBookkeeping {
    /// Set on success: the last success, which also ends a first sync.
    pub synced_at: Option<Timestamp>,
    pub next_sync_at: Option<Timestamp>,
    /// What becomes of the unattended reads counted for the day.
    pub reads: ReadsChange,
    /// Failures in a row after this sync (0 on success).
    pub sync_failures: u32,
    /// How this sync failed; `None` keeps the last error as it was.
    pub error: Option<SyncError>,
    /// New sealed session, when the connector changed it (a refreshed token).
    pub session: Option<String>,
}

/// A change to the day's count of unattended reads, which a scheduled sync took beforehand
/// ([`ConnectionStore::reserve_read`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadsChange {
    Keep,
    /// The bank served nothing: the read taken on that day is given back.
    GiveBack(Date),
    /// The bank says the day's allowance is used up: count it so.
    UsedUp {
        day: Date,
        allowance: u32,
    },
}

/// The allowance bookkeeping as stored.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SyncCounters {
    pub reads_day: Option<Date>,
    pub unattended_reads: u32,
    pub sync_failures: u32,
}

#[async_trait]
pub trait ConnectionStore: Send + Sync {
    async fn create_connection(&self, new: &NewConnection) -> StoreResult<Connection>;

    /// A tenant's connection; `NotFound` for another tenant's.
    async fn connection(&self, tenant: &TenantId, id: &ConnectionId) -> StoreResult<Connection>;

    /// A connection with its secrets, by id alone: for the hosted pages and the worker, which
    /// check the connect token or act for the hub itself.
    async fn connection_secrets(&self, id: &ConnectionId) -> StoreResult<ConnectionSecrets>;

    /// A tenant's connections in this cell, oldest first, by `(created_at, id)`.
    async fn list_connections(
        &self,
        tenant: &TenantId,
        filter: &ListFilter<ConnectionStatus>,
        after: Option<&PageKey>,
        limit: usize,
    ) -> StoreResult<Page<Connection>>;

    /// Records that the user was sent to the bank: the bank chosen, the consent created there
    /// (its sealed session), and the single-use state the callback must bring back (replacing
    /// an earlier one, spent or not). Only while the connection is pending: `StateRefused` after.
    async fn begin_authorisation(
        &self,
        id: &ConnectionId,
        bank: &BankId,
        state_hash: &str,
        state_expires_at: Timestamp,
        session: &str,
        at: Timestamp,
    ) -> StoreResult<()>;

    /// Consumes the callback state: returns the connection if `state_hash` is its current,
    /// unexpired and unspent state, and marks it spent so it cannot be used twice (the hash is
    /// kept, to recognise a replay). `NotFound` otherwise.
    async fn take_state(
        &self,
        id: &ConnectionId,
        state_hash: &str,
        now: Timestamp,
    ) -> StoreResult<ConnectionSecrets>;

    /// Applies a status change and records its event, atomically. Fails with `StateRefused` when
    /// the domain's state machine refuses the change from the current status.
    async fn transition(
        &self,
        id: &ConnectionId,
        transition: &Transition,
        event: Option<&NewEvent>,
    ) -> StoreResult<Connection>;

    /// Counts one decoupled-SCA start of a pending connection, if fewer than `max` were made:
    /// `false` (and nothing changes) when the link has used them up or is no longer pending.
    /// Atomic, so that concurrent requests on several processes cannot exceed `max`.
    async fn count_decoupled_start(&self, id: &ConnectionId, max: u32) -> StoreResult<bool>;

    /// Connections at `bank`, other than `except`, authorised after `after` and holding an
    /// account with one of `bank_account_ids`: those whose authorisation may have superseded
    /// the consent of `except` (the same person's accounts at the same bank).
    async fn authorised_sharing_accounts(
        &self,
        bank: &BankId,
        after: Timestamp,
        bank_account_ids: &[String],
        except: &ConnectionId,
    ) -> StoreResult<Vec<Connection>>;

    /// Stores a changed session (say, a refreshed token) outside a sync.
    async fn save_session(&self, id: &ConnectionId, session: &str) -> StoreResult<()>;

    async fn sync_counters(&self, id: &ConnectionId) -> StoreResult<SyncCounters>;

    /// Counts one unattended read on `day` if fewer than `allowance` were counted on it; `false`
    /// (nothing changed) when the day's allowance is used up. Atomic, so that processes racing
    /// for a connection never count past the allowance.
    async fn reserve_read(&self, id: &ConnectionId, day: Date, allowance: u32)
    -> StoreResult<bool>;

    /// Records that the user started the connection's first sync (their IP address, sealed), so
    /// that a crash does not turn its resumption into an unattended read.
    async fn start_first_sync(
        &self,
        id: &ConnectionId,
        psu_ip: &str,
        at: Timestamp,
    ) -> StoreResult<()>;

    /// Active connections whose scheduled sync is due, oldest first.
    async fn due_for_sync(&self, now: Timestamp, limit: usize) -> StoreResult<Vec<ConnectionId>>;

    /// Active connections whose validity ends before `before`.
    async fn expiring_before(
        &self,
        before: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<Connection>>;

    /// Active connections whose validity ends before `before` and whose tenant has not yet been
    /// told so.
    async fn expiring_unnotified(
        &self,
        before: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<Connection>>;

    /// Records that the tenant was told, with the event that tells them, atomically. A new
    /// validity (reconfirmation) clears the mark.
    async fn mark_expiry_notified(
        &self,
        id: &ConnectionId,
        at: Timestamp,
        event: &NewEvent,
    ) -> StoreResult<()>;

    /// Pending connections created before `before` (abandoned links).
    async fn pending_before(&self, before: Timestamp, limit: usize)
    -> StoreResult<Vec<Connection>>;

    /// Takes a lease on the connection for `owner` until `until`, if nobody else holds one. The
    /// holder renews it while it works ([`ConnectionStore::renew`]); a dead one's lapses.
    async fn claim(
        &self,
        id: &ConnectionId,
        owner: &str,
        until: Timestamp,
        now: Timestamp,
    ) -> StoreResult<bool>;

    /// Extends `owner`'s lease to `until`; `false` when `owner` no longer holds it.
    async fn renew(&self, id: &ConnectionId, owner: &str, until: Timestamp) -> StoreResult<bool>;

    async fn release(&self, id: &ConnectionId, owner: &str) -> StoreResult<()>;

    /// Records a failed sync (no data changed): bookkeeping plus an optional event.
    async fn record_sync_failure(
        &self,
        id: &ConnectionId,
        bookkeeping: &SyncBookkeeping,
        event: Option<&NewEvent>,
    ) -> StoreResult<()>;
}
