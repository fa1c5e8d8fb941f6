//! Placement: which cell of their region a new user goes to. A tenant pinned to dedicated cells
//! (`tenants = [...]` on a cell) gets the least-loaded open one of those, and nothing else; every
//! other tenant gets the least-loaded open cell that is dedicated to no one. Load is the number
//! of users a cell holds, counted at most every `refresh` (a cached count, raised by each user
//! placed in between so that a burst spreads instead of piling onto one cell); only the cells of
//! the user's region are counted, and one that cannot be counted is left out of that placement
//! (it could not take the user either). Draining and closed cells take no new users; they are
//! still served for the users they hold.

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

/// The cached load counts, each cell's with when it was taken.
#[derive(Debug, Default)]
pub(crate) struct Loads {
    inner: Mutex<BTreeMap<CellId, Counted>>,
}

#[derive(Debug, Clone, Copy)]
struct Counted {
    at: Timestamp,
    users: u64,
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
        // Count the candidates whose count is missing or stale. A cell that cannot be counted
        // now is left out of this placement (it could not take the user either); when none
        // can be counted, the error is the answer.
        let now = self.clock().now();
        let stale = self.stale_loads(&candidates, now);
        let mut unreachable = Vec::new();
        let mut last_error = None;
        for id in stale {
            match self.count_users_in(&id).await {
                Ok(users) => self.remember_load(&id, users, now),
                Err(err) => {
                    tracing::warn!(cell = %id, error = %err, "cannot count the cell's users");
                    unreachable.push(id);
                    last_error = Some(err);
                }
            }
        }
        let candidates: Vec<CellId> = candidates
            .into_iter()
            .filter(|id| !unreachable.contains(id))
            .collect();
        let mut loads = self.lock_loads();
        let users: BTreeMap<CellId, u64> = loads
            .iter()
            .map(|(id, counted)| (id.clone(), counted.users))
            .collect();
        let Some(chosen) = least_loaded(&candidates, &users) else {
            return Err(
                last_error.unwrap_or_else(|| ServiceError::Internal("no candidate cell".into()))
            );
        };
        if let Some(counted) = loads.get_mut(&chosen) {
            counted.users += 1;
        }
        Ok(chosen)
    }

    fn lock_loads(&self) -> std::sync::MutexGuard<'_, BTreeMap<CellId, Counted>> {
        self.inner_loads()
            .inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Those of `cells` whose count is missing or older than `placement.refresh`.
    fn stale_loads(&self, cells: &[CellId], now: Timestamp) -> Vec<CellId> {
        let refresh =
            i64::try_from(self.settings().placement.refresh.as_micros()).unwrap_or(i64::MAX);
        let loads = self.lock_loads();
        cells
            .iter()
            .filter(|id| {
                loads.get(*id).is_none_or(|counted| {
                    now.unix_micros().saturating_sub(counted.at.unix_micros()) >= refresh
                })
            })
            .cloned()
            .collect()
    }

    fn remember_load(&self, cell: &CellId, users: u64, at: Timestamp) {
        self.lock_loads()
            .insert(cell.clone(), Counted { at, users });
    }

    async fn count_users_in(&self, cell: &CellId) -> ServiceResult<u64> {
        Ok(self.cell(cell)?.user_count().await?)
    }

    /// Counts every cell's users now (placement counts a region's cells itself when their
    /// count is older than `placement.refresh`).
    pub async fn refresh_cell_loads(&self) -> ServiceResult<()> {
        let now = self.clock().now();
        for (id, cell) in self.cells().iter() {
            let users = cell.user_count().await?;
            self.remember_load(id, users, now);
        }
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
