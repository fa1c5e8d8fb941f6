//! Where a moved tenant's (or user's) rows live: the routes a move records in the control
//! database when it switches (docs/ARCHITECTURE.md, "Moving a tenant or user between cells").

use async_trait::async_trait;
use kontor_domain::{TenantId, UserId};

use crate::StoreResult;

/// Where a tenant's (or user's) rows of one home cell live now; see [`current_cell`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CellRoute {
    pub tenant_id: TenantId,
    /// `None` for the tenant's route.
    pub user_id: Option<UserId>,
    /// The home cell the route covers; '' for a user's route (a user has one home).
    pub from_cell: String,
    pub to_cell: String,
}

/// The cell that holds a tenant's (or user's) rows whose ids name `home`: the user's route if
/// there is one, else the tenant's route from `home`, else `home`. Pure, so a process answers it
/// from the routes it loaded ([`RouteStore::cell_routes`]).
pub fn current_cell<'a>(
    routes: &'a [CellRoute],
    tenant: &TenantId,
    user: Option<&UserId>,
    home: &'a str,
) -> &'a str {
    if let Some(user) = user
        && let Some(route) = routes
            .iter()
            .find(|r| &r.tenant_id == tenant && r.user_id.as_ref() == Some(user))
    {
        return &route.to_cell;
    }
    routes
        .iter()
        .find(|r| &r.tenant_id == tenant && r.user_id.is_none() && r.from_cell == home)
        .map_or(home, |r| r.to_cell.as_str())
}

/// The control database's routes of moved tenants and users.
#[async_trait]
pub trait RouteStore: Send + Sync {
    /// Every route; a process loads them at start and keeps them fresh.
    async fn cell_routes(&self) -> StoreResult<Vec<CellRoute>>;
}
