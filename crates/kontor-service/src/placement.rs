//! Placement: which cell of their region a new user goes to. A tenant pinned to dedicated cells
//! (`tenants = [...]` on a cell) gets the least-loaded open one of those, and nothing else; every
//! other tenant gets the least-loaded open cell that is dedicated to no one. Load is the number
//! of users a cell holds, counted at most every `refresh` (a cached count, raised by each user
//! placed in between so that a burst spreads instead of piling onto one cell). Draining and
//! closed cells take no new users; they are still served for the users they hold.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use kontor_domain::time::Timestamp;
use kontor_domain::{CellId, CellState, Region, TenantId};

use crate::ErrorCode;
use crate::error::{ServiceError, ServiceResult};
use crate::hub::Hub;

/// What configuration says about one cell beyond its database.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CellPolicy {
    pub state: CellState,
    /// When not empty, the cell is dedicated: only these tenants' new users go there, and no
    /// one else's.
    pub tenants: Vec<TenantId>,
}

impl CellPolicy {
    pub fn is_dedicated(&self) -> bool {
        !self.tenants.is_empty()
    }
}

/// The placement settings: each cell's policy (a cell without one is open and shared) and how
/// long a load count is used before it is counted again.
#[derive(Debug, Clone)]
pub struct PlacementSettings {
    pub cells: BTreeMap<CellId, CellPolicy>,
    pub refresh: Duration,
}

impl Default for PlacementSettings {
    fn default() -> Self {
        Self {
            cells: BTreeMap::new(),
            refresh: Duration::from_secs(5),
        }
    }
}

/// The cached load counts.
#[derive(Debug, Default)]
pub(crate) struct Loads {
    inner: Mutex<Option<Counted>>,
}

#[derive(Debug)]
struct Counted {
    at: Timestamp,
    users: BTreeMap<CellId, u64>,
}

/// The cells a tenant's new user may go to, of `cells` (a region's, with their policies).
fn eligible<'a>(
    tenant: &TenantId,
    cells: impl Iterator<Item = (&'a CellId, CellPolicy)>,
) -> (Vec<CellId>, bool) {
    let cells: Vec<(&CellId, CellPolicy)> = cells.collect();
    let pinned = cells.iter().any(|(_, p)| p.tenants.contains(tenant));
    let open = cells
        .iter()
        .filter(|(_, policy)| policy.state.takes_new_users())
        .filter(|(_, policy)| {
            if pinned {
                policy.tenants.contains(tenant)
            } else {
                !policy.is_dedicated()
            }
        })
        .map(|(id, _)| (*id).clone())
        .collect();
    (open, pinned)
}

/// The least loaded of `candidates`; ties go to the lowest-numbered cell.
fn least_loaded(candidates: &[CellId], users: &BTreeMap<CellId, u64>) -> Option<CellId> {
    candidates
        .iter()
        .min_by_key(|id| (users.get(*id).copied().unwrap_or(0), (*id).clone()))
        .cloned()
}

impl Hub {
    /// A cell's policy as configured (open and shared when nothing is).
    pub fn cell_policy(&self, cell: &CellId) -> CellPolicy {
        self.settings()
            .placement
            .cells
            .get(cell)
            .cloned()
            .unwrap_or_default()
    }

    /// The cell a new user of `tenant` in `region` goes to. `NotFound` when no cell serves the
    /// region; `503 no_open_cell` when none of the cells the tenant may use takes new users.
    pub async fn place_user(&self, tenant: &TenantId, region: &Region) -> ServiceResult<CellId> {
        if !self.cells().serves(region) {
            return Err(ServiceError::NotFound);
        }
        let (candidates, pinned) = eligible(
            tenant,
            self.cells()
                .in_region(region)
                .map(|(id, _)| (id, self.cell_policy(id))),
        );
        if candidates.is_empty() {
            let whose = if pinned {
                "none of the tenant's dedicated cells"
            } else {
                "no shared cell"
            };
            return Err(ServiceError::conflict(
                ErrorCode::NoOpenCell,
                format!("{whose} in region {region} takes new users now"),
            ));
        }
        let now = self.clock().now();
        if self.loads_are_stale(now) {
            self.refresh_cell_loads().await?;
        }
        let mut guard = self
            .inner_loads()
            .inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let counted = guard.get_or_insert_with(|| Counted {
            at: now,
            users: BTreeMap::new(),
        });
        let chosen = least_loaded(&candidates, &counted.users)
            .ok_or_else(|| ServiceError::Internal("no candidate cell".into()))?;
        *counted.users.entry(chosen.clone()).or_default() += 1;
        Ok(chosen)
    }

    fn loads_are_stale(&self, now: Timestamp) -> bool {
        let refresh =
            i64::try_from(self.settings().placement.refresh.as_micros()).unwrap_or(i64::MAX);
        let guard = self
            .inner_loads()
            .inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match guard.as_ref() {
            None => true,
            Some(counted) => now.unix_micros().saturating_sub(counted.at.unix_micros()) >= refresh,
        }
    }

    /// Counts every cell's users now (placement does so itself when its count is older than
    /// `placement.refresh`). A cell that cannot be counted fails the placement: a user is not
    /// placed on a guess.
    pub async fn refresh_cell_loads(&self) -> ServiceResult<()> {
        let mut users = BTreeMap::new();
        for (id, cell) in self.cells().iter() {
            users.insert(id.clone(), cell.user_count().await?);
        }
        let counted = Counted {
            at: self.clock().now(),
            users,
        };
        *self
            .inner_loads()
            .inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(counted);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(name: &str) -> CellId {
        CellId::parse(name).unwrap()
    }

    fn tenant(n: u8) -> TenantId {
        TenantId::parse(&format!("ten_{}", "0".repeat(25) + &n.to_string())).unwrap()
    }

    fn policy(state: CellState, tenants: &[TenantId]) -> CellPolicy {
        CellPolicy {
            state,
            tenants: tenants.to_vec(),
        }
    }

    #[test]
    fn shared_cells_for_everyone_but_pinned_tenants() {
        let (a, b) = (tenant(1), tenant(2));
        let cells = [
            (cell("de-1"), policy(CellState::Open, &[])),
            (
                cell("de-2"),
                policy(CellState::Open, std::slice::from_ref(&a)),
            ),
            (cell("de-3"), policy(CellState::Draining, &[])),
            (cell("de-4"), policy(CellState::Open, &[])),
        ];
        let view = || cells.iter().map(|(id, p)| (id, p.clone()));
        assert_eq!(eligible(&a, view()), (vec![cell("de-2")], true));
        assert_eq!(
            eligible(&b, view()),
            (vec![cell("de-1"), cell("de-4")], false)
        );
    }

    #[test]
    fn a_pinned_tenant_whose_cells_are_draining_gets_none() {
        let a = tenant(1);
        let cells = [
            (cell("de-1"), policy(CellState::Open, &[])),
            (
                cell("de-2"),
                policy(CellState::Draining, std::slice::from_ref(&a)),
            ),
        ];
        let view = cells.iter().map(|(id, p)| (id, p.clone()));
        assert_eq!(eligible(&a, view), (vec![], true));
    }

    #[test]
    fn the_least_loaded_wins_and_ties_go_to_the_lowest_number() {
        let candidates = [cell("de-1"), cell("de-2"), cell("de-10")];
        let mut users = BTreeMap::new();
        assert_eq!(least_loaded(&candidates, &users), Some(cell("de-1")));
        users.insert(cell("de-1"), 3);
        users.insert(cell("de-2"), 1);
        users.insert(cell("de-10"), 1);
        assert_eq!(least_loaded(&candidates, &users), Some(cell("de-2")));
        assert_eq!(least_loaded(&[], &users), None);
    }
}
