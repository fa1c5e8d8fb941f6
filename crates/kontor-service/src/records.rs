//! Plain records for the API and the worker: reads of what carries nothing sealed, routed to the
//! record's cell (or to the control database), and the worker's per-cell queues. They exist so
//! that neither caller names a store: every way in is a `Hub` method taking and returning the
//! domain's types (docs/ARCHITECTURE.md, "One door").

use std::time::Duration;

use kontor_domain::event::Event;
use kontor_domain::list::{DeliveryFilter, EventFilter, Page, PageKey};
use kontor_domain::tenant::{ApiClient, SecretHash};
use kontor_domain::time::Timestamp;
use kontor_domain::webhook::{Attempt, Delivery};
use kontor_domain::{
    AccountId, ApiClientId, CellId, CertificateBinding, Connection, ConnectionId, DeliveryId,
    EventId, PaymentId, Region, TenantId, WebhookEndpointId,
};
use kontor_store::Schema;

use crate::error::{ServiceError, ServiceResult};
use crate::hub::Hub;

/// How one database answered a readiness probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseCheck {
    /// `control` or `cell:<cell>`, the cell as ids name it (`cell:de`, `cell:de-2`).
    pub name: String,
    /// `postgres` or `sqlite`.
    pub backend: &'static str,
    /// `ok`, `unreachable`, `migrations_pending` or `timeout`.
    pub status: &'static str,
}

impl Hub {
    /// The regions this deployment serves, in a fixed order.
    pub fn regions(&self) -> impl Iterator<Item = &Region> {
        self.cells().regions()
    }

    /// Whether this deployment holds a cell of `region`.
    pub fn serves(&self, region: &Region) -> bool {
        self.cells().serves(region)
    }

    /// The cells a list of the tenant's records reads, in the fixed order lists walk them:
    /// every cell, or, for the records of one user (or one event), the cell serving the record
    /// whose id names `home` (none when it is not one of this deployment's).
    pub fn list_cells(&self, tenant: &TenantId, home: Option<&CellId>) -> Vec<CellId> {
        match home {
            None => self.cells().ids().cloned().collect(),
            // Every cell that may hold them: a user (or a tenant) who moved out of `home` has
            // their records in the route's target; lists hide a move's copies until it
            // switches and the source's rows after, so each record is listed once.
            Some(home) => crate::routing::candidates(&self.routes().get(), Some(tenant), home)
                .into_iter()
                .filter(|cell| self.cells().contains(cell))
                .collect(),
        }
    }

    /// An API client of any tenant, revoked or not; `NotFound` when there is none.
    pub async fn api_client(&self, id: &ApiClientId) -> ServiceResult<ApiClient> {
        self.control().client(id).await.map_err(ServiceError::from)
    }

    /// An API client with its secret's hash, for authenticating a token request.
    pub async fn api_client_with_secret(
        &self,
        id: &ApiClientId,
    ) -> ServiceResult<(ApiClient, SecretHash)> {
        self.control()
            .client_with_secret(id)
            .await
            .map_err(ServiceError::from)
    }

    /// The certificates a client is bound to, oldest first (empty when it is not bound).
    pub async fn client_certificates(
        &self,
        id: &ApiClientId,
    ) -> ServiceResult<Vec<CertificateBinding>> {
        self.control()
            .client_certificates(id)
            .await
            .map_err(ServiceError::from)
    }

    /// A tenant's connection, without its secrets; `NotFound` for another tenant's.
    pub async fn connection(
        &self,
        tenant: &TenantId,
        id: &ConnectionId,
    ) -> ServiceResult<Connection> {
        self.cell_of(id)
            .await?
            .connection(tenant, id)
            .await
            .map_err(ServiceError::from)
    }

    /// The ids of the accounts read under a connection, in the order the cell keeps them.
    pub async fn connection_account_ids(&self, id: &ConnectionId) -> ServiceResult<Vec<AccountId>> {
        let accounts = self.cell_of(id).await?.connection_accounts(id).await?;
        Ok(accounts.into_iter().map(|account| account.id).collect())
    }

    /// A tenant's event; `NotFound` for another tenant's.
    pub async fn event(&self, tenant: &TenantId, id: &EventId) -> ServiceResult<Event> {
        self.event_cell(tenant, id)
            .await?
            .event(tenant, id)
            .await
            .map_err(ServiceError::from)
    }

    /// A page of the tenant's events in one cell (as [`Hub::list_cells`] names it), oldest
    /// first.
    pub async fn events_in(
        &self,
        cell: &CellId,
        tenant: &TenantId,
        filter: &EventFilter,
        after: Option<&PageKey>,
        limit: usize,
    ) -> ServiceResult<Page<Event>> {
        self.cell(cell)?
            .list_events(tenant, filter, after, limit)
            .await
            .map_err(ServiceError::from)
    }

    /// A page of the deliveries to one of the tenant's endpoints held in one cell.
    pub async fn deliveries_in(
        &self,
        cell: &CellId,
        tenant: &TenantId,
        endpoint: &WebhookEndpointId,
        filter: &DeliveryFilter,
        after: Option<&PageKey>,
        limit: usize,
    ) -> ServiceResult<Page<Delivery>> {
        self.cell(cell)?
            .list_deliveries(tenant, endpoint, filter, after, limit)
            .await
            .map_err(ServiceError::from)
    }

    /// The attempts of deliveries kept in one cell.
    pub async fn delivery_attempts_in(
        &self,
        cell: &CellId,
        ids: &[DeliveryId],
    ) -> ServiceResult<Vec<(DeliveryId, Attempt)>> {
        self.cell(cell)?
            .delivery_attempts(ids)
            .await
            .map_err(ServiceError::from)
    }

    /// Pings the control database and every cell and checks their migrations, each within
    /// `timeout`, all at once.
    pub async fn database_checks(&self, timeout: Duration) -> Vec<DatabaseCheck> {
        let control = probe("control".to_owned(), self.control(), timeout);
        let cells = self
            .cells()
            .iter()
            .map(|(id, cell)| probe(format!("cell:{}", id.segment()), cell.as_ref(), timeout));
        let (control, cells) = tokio::join!(control, futures_util::future::join_all(cells));
        let mut checks = vec![control];
        checks.extend(cells);
        checks
    }

    /// Connections due a scheduled sync at `now`, up to `batch` per cell. A cell that cannot
    /// answer is logged and skipped: the others' work goes on.
    pub async fn due_syncs(&self, now: Timestamp, batch: usize) -> Vec<ConnectionId> {
        let mut due = Vec::new();
        for (region, cell) in self.cells().iter() {
            match cell.due_for_sync(now, batch).await {
                Ok(ids) => due.extend(ids),
                Err(err) => tracing::warn!(%region, error = %err, "cannot read due syncs"),
            }
        }
        due
    }

    /// Payments with a step due at `now` (a poll, a step a crash interrupted since `stale`, an
    /// authorisation abandoned since `abandoned`), up to `batch` per cell.
    pub async fn due_payments(
        &self,
        now: Timestamp,
        stale: Timestamp,
        abandoned: Timestamp,
        batch: usize,
    ) -> Vec<PaymentId> {
        let mut due = Vec::new();
        for (region, cell) in self.cells().iter() {
            match cell.payments_due(now, stale, abandoned, batch).await {
                Ok(ids) => due.extend(ids),
                Err(err) => tracing::warn!(%region, error = %err, "cannot read due payments"),
            }
        }
        due
    }

    /// Forgets idempotency keys recorded before `before`; returns how many.
    pub async fn purge_idempotency(&self, before: Timestamp) -> ServiceResult<u64> {
        self.control()
            .purge_idempotency(before)
            .await
            .map_err(ServiceError::from)
    }

    /// Fills `transactions.transaction_date` on rows an earlier release wrote: up to `rounds`
    /// batches of `batch` rows per cell, each its own transaction; returns how many rows.
    pub async fn backfill_transaction_dates(&self, batch: usize, rounds: usize) -> u64 {
        let mut filled = 0;
        for (region, cell) in self.cells().iter() {
            for _ in 0..rounds.max(1) {
                match cell.backfill_transaction_dates(batch).await {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(err) => {
                        tracing::warn!(%region, error = %err, "backfilling transaction dates failed");
                        break;
                    }
                }
            }
        }
        filled
    }
}

async fn probe(name: String, db: &dyn Schema, timeout: Duration) -> DatabaseCheck {
    let backend = db.backend();
    let probe = async {
        db.ping().await.map_err(|_| "unreachable")?;
        let status = db.migration_status().await.map_err(|_| "unreachable")?;
        if status.is_current() {
            Ok("ok")
        } else {
            Err("migrations_pending")
        }
    };
    let status = match tokio::time::timeout(timeout, probe).await {
        Ok(Ok(status) | Err(status)) => status,
        Err(_) => "timeout",
    };
    if status != "ok" {
        tracing::warn!(database = %name, status, "database not ready");
    }
    DatabaseCheck {
        name,
        backend,
        status,
    }
}
