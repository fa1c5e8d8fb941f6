//! The services' shared context: stores, bank directory, vault and settings. Each capability
//! adds its methods to [`Hub`] in its own module (`link`, `lifecycle`, `sync`, `reads`).

use std::sync::{Arc, OnceLock};

use kontor_banks::BankConnector;
use kontor_domain::connection::Connection;
use kontor_domain::{CellId, Clock, TenantId, UserId};
use kontor_store::{CellStore, Cells, ControlStore};
use url::Url;

use crate::directory::BankDirectory;
use crate::error::{ServiceError, ServiceResult};
use crate::vault::Vault;

#[derive(Debug, Clone)]
pub struct HubSettings {
    /// Where users reach the hub: the base of connect URLs and of the bank callback.
    pub public_url: Url,
    /// How long a user has at the bank before the callback state lapses.
    pub state_ttl_seconds: i64,
    /// How long a connect link stays usable before the pending connection expires.
    pub link_ttl_seconds: i64,
    /// Unattended syncs a day asked of the bank (1..=4).
    pub frequency_per_day: u8,
    /// How many days before a consent lapses the tenant is told.
    pub expiry_notice_days: i64,
    /// Allow tenant redirect URIs with plain `http` (for local development and tests).
    pub allow_http_redirects: bool,
    /// Names this process in leases, so two workers never sync one connection at once.
    pub instance_id: String,
    /// How long a claim on a connection or payment lasts unless renewed: its live holder renews
    /// it every third of this, so a process that dies loses its claims within this time.
    pub lease_seconds: i64,
    /// Each incremental sync re-reads this many days before the last one, to see late bookings.
    pub overlap_days: i64,
    pub payments: crate::payments::PaymentSettings,
    pub webhooks: crate::webhooks::WebhookSettings,
    /// How long the event log (with deliveries and attempts) is kept.
    pub retention: crate::retention::RetentionSettings,
    /// Each cell's state and dedicated tenants, for placing new users.
    pub placement: crate::placement::PlacementSettings,
    /// How often moved tenants' and users' routes are re-read, and how long a write waits out a
    /// move's freeze.
    pub routes: crate::routing::RouteSettings,
}

impl HubSettings {
    pub fn new(public_url: Url) -> Self {
        Self {
            public_url,
            state_ttl_seconds: 30 * 60,
            link_ttl_seconds: 24 * 3600,
            frequency_per_day: 4,
            expiry_notice_days: 7,
            allow_http_redirects: false,
            instance_id: format!(
                "kontor-{}",
                crate::tokens::random_token().get(..8).unwrap_or("x")
            ),
            lease_seconds: 15,
            overlap_days: 7,
            payments: crate::payments::PaymentSettings::default(),
            webhooks: crate::webhooks::WebhookSettings::default(),
            retention: crate::retention::RetentionSettings::default(),
            placement: crate::placement::PlacementSettings::default(),
            routes: crate::routing::RouteSettings::default(),
        }
    }
}

#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

struct Inner {
    cells: Cells,
    control: Arc<dyn ControlStore>,
    directory: BankDirectory,
    vault: Vault,
    settings: HubSettings,
    /// Where the services read "now": the system's clock, or a test's.
    clock: Clock,
    /// The client test events are sent with, made on first use (deliveries have their own,
    /// in each `Deliverer`).
    webhook_client: OnceLock<reqwest::Client>,
    owners: crate::owners::AccountOwners,
    /// The cells' user counts placement last read.
    loads: crate::placement::Loads,
    /// The routes of moved tenants and users this process loaded last.
    routes: crate::routing::Routes,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

impl Hub {
    pub fn new(
        cells: Cells,
        control: Arc<dyn ControlStore>,
        directory: BankDirectory,
        vault: Vault,
        settings: HubSettings,
        clock: Clock,
    ) -> Self {
        let routes = crate::routing::Routes::default();
        crate::routing::spawn_refresh(&routes, &control, settings.routes.refresh);
        let vault = vault.serving(&cells);
        Self {
            inner: Arc::new(Inner {
                cells,
                control,
                directory,
                vault,
                settings,
                clock,
                webhook_client: OnceLock::new(),
                owners: Default::default(),
                loads: Default::default(),
                routes,
            }),
        }
    }

    pub fn cells(&self) -> &Cells {
        &self.inner.cells
    }

    pub fn control(&self) -> &dyn ControlStore {
        self.inner.control.as_ref()
    }

    pub fn directory(&self) -> &BankDirectory {
        &self.inner.directory
    }

    pub fn vault(&self) -> &Vault {
        &self.inner.vault
    }

    pub fn settings(&self) -> &HubSettings {
        &self.inner.settings
    }

    /// The clock the services (and the worker running them) read "now" from.
    pub fn clock(&self) -> &Clock {
        &self.inner.clock
    }

    /// The HTTP client for test events, made by `make` the first time.
    pub(crate) fn webhook_client(
        &self,
        make: impl FnOnce() -> ServiceResult<reqwest::Client>,
    ) -> ServiceResult<&reqwest::Client> {
        if let Some(client) = self.inner.webhook_client.get() {
            return Ok(client);
        }
        let client = make()?;
        Ok(self.inner.webhook_client.get_or_init(|| client))
    }

    /// Accounts' owners, as reads found them.
    pub(crate) fn account_owners(&self) -> &crate::owners::AccountOwners {
        &self.inner.owners
    }

    pub(crate) fn inner_loads(&self) -> &crate::placement::Loads {
        &self.inner.loads
    }

    /// Cell `id` as configured; `NotFound` when this deployment has no such cell. Requests
    /// reach their cell through [`Hub::cell_for`], never this.
    pub fn cell(&self, id: &CellId) -> ServiceResult<&dyn CellStore> {
        self.inner
            .cells
            .get(id)
            .map(|cell| cell.as_ref())
            .map_err(|_| ServiceError::NotFound)
    }

    /// The one place a request's cell is chosen: the cell that serves a record of `tenant`
    /// (when known) whose id names `home` as its home cell. Ids never change, so a record moved
    /// to another cell keeps naming its home; the route the move recorded in the control
    /// database sends it on, and is looked up here. Until moves exist that is the home cell
    /// itself. `NotFound` when no such cell is configured.
    pub fn cell_for(
        &self,
        tenant: Option<&TenantId>,
        home: &CellId,
    ) -> ServiceResult<&dyn CellStore> {
        self.cell(&self.route(tenant, home))
    }

    /// Which cell serves a record of `tenant` whose id names `home`: the one routing decision
    /// ([`Hub::cell_for`] and the per-user lists use it). The tenant's route out of `home` when
    /// a move recorded one (see [`crate::routing`]), else `home`. A record of a user who moved
    /// alone is found with [`Hub::route_user`] or [`Hub::locate`].
    pub fn route(&self, tenant: Option<&TenantId>, home: &CellId) -> CellId {
        crate::routing::routed(&self.routes().get(), tenant, None, home)
    }

    pub(crate) fn routes(&self) -> &crate::routing::Routes {
        &self.inner.routes
    }

    /// The cell serving `user` (and so every record of theirs): see [`Hub::route_user`].
    pub fn cell_for_user(
        &self,
        tenant: Option<&TenantId>,
        user: &UserId,
    ) -> ServiceResult<&dyn CellStore> {
        self.cell(&self.route_user(tenant, user))
    }

    /// The connector a connection's tenant reaches the connection's bank with.
    pub(crate) fn connection_connector(
        &self,
        connection: &Connection,
    ) -> ServiceResult<Arc<dyn BankConnector>> {
        let bank = connection.bank_id.as_ref().ok_or_else(|| {
            ServiceError::Internal(format!("connection {} has no bank", connection.id))
        })?;
        self.directory()
            .connector(bank, &connection.tenant_id)
            .ok_or(ServiceError::NotFound)
    }
}
