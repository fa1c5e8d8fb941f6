//! Routes of moved tenants and users (docs/ARCHITECTURE.md, "Moving a tenant or user between
//! cells"): loaded from the control database at start, kept in memory, refreshed every
//! [`RouteSettings::refresh`] and at once when a write meets a subject that is moving.
//! [`Hub::route`] and [`Hub::route_user`] answer from them; records whose id names neither a
//! user nor (always) a tenant are found with [`Hub::locate`].

use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use kontor_domain::{CellId, TenantId, UserId};
use kontor_store::{CellRoute, CellStore, StoreError, StoreResult, current_cell};

use crate::error::{ServiceError, ServiceResult};
use crate::hub::Hub;

/// How the routes are kept fresh, and how long a write waits out a move's freeze.
#[derive(Debug, Clone)]
pub struct RouteSettings {
    /// How often the routes are read again from the control database. A move's grace period
    /// must be longer than this.
    pub refresh: Duration,
    /// How long a write refused because its tenant or user is frozen by a move is retried (the
    /// routes re-read before each try) before it is answered `subject_moving`.
    pub write_wait: Duration,
}

impl Default for RouteSettings {
    fn default() -> Self {
        Self {
            refresh: Duration::from_secs(1),
            write_wait: Duration::from_secs(5),
        }
    }
}

/// The routes this process loaded last; cheap to read (one `Arc` clone).
#[derive(Debug, Default, Clone)]
pub(crate) struct Routes {
    table: Arc<RwLock<Arc<Vec<CellRoute>>>>,
}

impl Routes {
    pub(crate) fn get(&self) -> Arc<Vec<CellRoute>> {
        match self.table.read() {
            Ok(table) => table.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn set(&self, routes: Vec<CellRoute>) {
        let routes = Arc::new(routes);
        match self.table.write() {
            Ok(mut table) => *table = routes,
            Err(poisoned) => *poisoned.into_inner() = routes,
        }
    }
}

/// The cell (by name) that holds `tenant`'s rows, or `user`'s, whose ids name `home`.
pub(crate) fn routed(
    routes: &[CellRoute],
    tenant: Option<&TenantId>,
    user: Option<&UserId>,
    home: &CellId,
) -> CellId {
    let name = home.to_string();
    let found = match (tenant, user) {
        (Some(tenant), user) => current_cell(routes, tenant, user, &name).to_owned(),
        // A user's id is the deployment's only one: their own route needs no tenant. Their
        // tenant's route does; callers that know no tenant find records with `Hub::locate`.
        (None, Some(user)) => routes
            .iter()
            .find(|r| r.user_id.as_ref() == Some(user))
            .map_or_else(|| name.clone(), |r| r.to_cell.clone()),
        (None, None) => name.clone(),
    };
    CellId::parse(&found).unwrap_or_else(|_| home.clone())
}

/// Every cell that may hold a record whose id names `home` (of `tenant`, when known): the
/// targets of routes out of `home`, then `home`. One entry when nothing moved out of `home`.
pub(crate) fn candidates(
    routes: &[CellRoute],
    tenant: Option<&TenantId>,
    home: &CellId,
) -> Vec<CellId> {
    let name = home.to_string();
    let mut cells: Vec<CellId> = Vec::new();
    for route in routes {
        if tenant.is_some_and(|t| t != &route.tenant_id) {
            continue;
        }
        let out_of_home = match &route.user_id {
            None => route.from_cell == name,
            Some(user) => user.cell() == home,
        };
        if out_of_home
            && let Ok(cell) = CellId::parse(&route.to_cell)
            && cell != *home
            && !cells.contains(&cell)
        {
            cells.push(cell);
        }
    }
    cells.push(home.clone());
    cells
}

impl Hub {
    /// Reads the routes from the control database now.
    pub async fn refresh_routes(&self) -> ServiceResult<()> {
        let routes = self.control().cell_routes().await?;
        self.routes().set(routes);
        Ok(())
    }

    /// How many routes this process holds (for `/readyz`-like reports and tests).
    pub fn route_count(&self) -> usize {
        self.routes().get().len()
    }

    /// The cell serving `user` (of `tenant`, when known): their route, else their tenant's
    /// route from their home, else their home.
    pub fn route_user(&self, tenant: Option<&TenantId>, user: &UserId) -> CellId {
        routed(&self.routes().get(), tenant, Some(user), user.cell())
    }

    /// The cell serving a record whose id names `home` but whose tenant or user the caller
    /// does not know (a connection or payment by id, a tenant's account or event whose user
    /// may have moved alone): when something moved out of `home`, each cell that may hold it
    /// is asked, in turn, whose it is (`owner`), and the route of that owner decides. A record
    /// found nowhere is looked for in the routed home (where it is then `NotFound`).
    pub(crate) async fn locate<'a, F, Fut>(
        &'a self,
        tenant: Option<&TenantId>,
        home: &CellId,
        owner: F,
    ) -> ServiceResult<&'a dyn CellStore>
    where
        F: Fn(&'a dyn CellStore) -> Fut,
        Fut: Future<Output = StoreResult<(TenantId, Option<UserId>)>>,
    {
        let routes = self.routes().get();
        let cells = candidates(&routes, tenant, home);
        if let [only] = cells.as_slice() {
            return self.cell(&routed(&routes, tenant, None, only));
        }
        for cell in &cells {
            let Ok(store) = self.cell(cell) else { continue };
            match owner(store).await {
                Ok((owner_tenant, owner_user)) => {
                    return self.cell(&routed(
                        &routes,
                        Some(&owner_tenant),
                        owner_user.as_ref(),
                        home,
                    ));
                }
                Err(StoreError::NotFound) => continue,
                Err(other) => return Err(ServiceError::Store(other)),
            }
        }
        self.cell(&routed(&routes, tenant, None, home))
    }

    /// The cell serving a connection, by its id alone.
    pub async fn cell_of(&self, id: &kontor_domain::ConnectionId) -> ServiceResult<&dyn CellStore> {
        self.locate(None, id.cell(), |cell| async move {
            let found = cell.connection_secrets(id).await?;
            Ok((found.connection.tenant_id, Some(found.connection.user_id)))
        })
        .await
    }

    /// The cell serving a tenant's account.
    pub(crate) async fn account_cell(
        &self,
        tenant: &TenantId,
        id: &kontor_domain::AccountId,
    ) -> ServiceResult<&dyn CellStore> {
        self.locate(Some(tenant), id.cell(), |cell| async move {
            let found = cell.account(tenant, id).await?;
            Ok((found.tenant_id, Some(found.user_id)))
        })
        .await
    }

    /// The cell serving a tenant's event.
    pub(crate) async fn event_cell(
        &self,
        tenant: &TenantId,
        id: &kontor_domain::EventId,
    ) -> ServiceResult<&dyn CellStore> {
        self.locate(Some(tenant), id.cell(), |cell| async move {
            let found = cell.event(tenant, id).await?;
            Ok((found.tenant_id, found.user_id))
        })
        .await
    }

    /// The cell serving a payment, by its id alone.
    pub async fn payment_cell(
        &self,
        id: &kontor_domain::PaymentId,
    ) -> ServiceResult<&dyn CellStore> {
        self.locate(None, id.cell(), |cell| async move {
            let found = cell.payment_secrets(id).await?;
            Ok((found.payment.tenant_id, Some(found.payment.user_id)))
        })
        .await
    }
}

/// The loop [`Hub::new`] starts (inside a Tokio runtime): loads the routes at once, then every
/// `every`; stops once the hub is dropped.
pub(crate) fn spawn_refresh(
    routes: &Routes,
    control: &Arc<dyn kontor_store::ControlStore>,
    every: Duration,
) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let table = Arc::downgrade(&routes.table);
    let control = Arc::downgrade(control);
    runtime.spawn(async move {
        loop {
            let (Some(table), Some(store)) = (table.upgrade(), control.upgrade()) else {
                break;
            };
            match store.cell_routes().await {
                Ok(loaded) => Routes { table }.set(loaded),
                Err(error) => tracing::warn!(%error, "could not read the cells' routes"),
            }
            drop(store);
            tokio::time::sleep(every.max(Duration::from_millis(10))).await;
        }
    });
}
