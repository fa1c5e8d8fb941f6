//! Storage contracts for Kontor. The API and the worker talk to these traits only; the SQL lives
//! in `kontor-store-sql` with one dialect crate per backend.
//!
//! Data is split in two kinds of databases: one **control** database for what is global to a
//! deployment (tenants, API clients, the bank directory) and one **cell** per region for
//! everything about users. A cell refuses rows of another region's users. Users' data keys live
//! in a third kind, one **key store** per region, apart from the cell (see [`UserKeyStore`]).

mod accounts;
mod cells;
mod changes;
mod connections;
mod erasures;
mod error;
mod events;
mod gauges;
mod keys;
mod page;
mod payments;
mod retry;
mod routes;
mod schema;
mod tenants;
mod user_erasure;
mod user_keys;
mod users;
mod webhooks;

pub use accounts::{
    AccountRow, AccountStore, BalanceRow, SyncWrite, TransactionFilter, TransactionRow,
    transaction_date,
};
pub use cells::Cells;
pub use changes::{ChangeKind, ChangeRow, ChangeStore};
pub use connections::{
    ConnectionSecrets, ConnectionStore, ReadsChange, SyncBookkeeping, SyncCounters, Transition,
};
pub use erasures::{Erasure, ErasureLedger};
pub use error::{StoreError, StoreResult};
pub use events::{EventFilter, EventStore};
pub use gauges::{CellGauges, CellSize, GaugeStore, PhaseGauge};
pub use keys::KeyCanaryStore;
pub use page::{ListFilter, Page, PageKey};
pub use payments::{
    Idempotency, IdempotencyStore, LegacyIdempotency, LegacyIdempotencyRow, NewPayment,
    PaymentChange, PaymentSecrets, PaymentStore,
};
pub use retry::{RetryPolicy, retry_serializable};
pub use routes::{CellRoute, RouteStore, current_cell};
pub use schema::{DatabaseRole, MigrationStatus, Schema};
pub use tenants::{
    ApiClientStore, MAX_CLIENT_CERTIFICATES, NewApiClient, NewTenant, SecretHash, TenantStore,
};
pub use user_erasure::{
    ErasurePhase, ErasureStore, NewRevocation, Revocation, RevocationOutcome, RevocationTally,
    UserErasure,
};
pub use user_keys::{KeyStores, UserKeyStore};
pub use users::{
    ExternalIdLookup, NewStoredUser, StoredExternalId, StoredUser, UnsealedUser, UserStore,
};
pub use webhooks::{
    AttemptRecord, ClaimedDelivery, DeliveryFilter, DeliveryOutcome, DeliveryStore, EndpointChange,
    EndpointSecrets, NewDelivery, NewWebhookEndpoint, WebhookEndpointStore,
};

use kontor_domain::Region;

/// Everything the control database holds.
pub trait ControlStore:
    TenantStore
    + ApiClientStore
    + IdempotencyStore
    + WebhookEndpointStore
    + KeyCanaryStore
    + ErasureLedger
    + RouteStore
    + Schema
{
}
impl<
    T: TenantStore
        + ApiClientStore
        + IdempotencyStore
        + WebhookEndpointStore
        + KeyCanaryStore
        + ErasureLedger
        + RouteStore
        + Schema,
> ControlStore for T
{
}

/// Everything one region's cell holds.
pub trait CellStore:
    UserStore
    + ConnectionStore
    + AccountStore
    + ChangeStore
    + EventStore
    + PaymentStore
    + DeliveryStore
    + GaugeStore
    + ErasureStore
    + Schema
{
    /// The region this cell serves; it accepts rows of this region's users only.
    fn region(&self) -> &Region;
}
