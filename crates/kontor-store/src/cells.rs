//! The cells of a deployment, one per region. Routing needs no lookup: the region is in the id.

use std::collections::BTreeMap;
use std::sync::Arc;

use kontor_domain::Region;

use crate::CellStore;
use crate::error::{StoreError, StoreResult};

#[derive(Clone, Default)]
pub struct Cells {
    by_region: BTreeMap<Region, Arc<dyn CellStore>>,
}

impl std::fmt::Debug for Cells {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.by_region.keys()).finish()
    }
}

impl Cells {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a cell; its region comes from the store itself so the two cannot disagree.
    pub fn insert(&mut self, cell: Arc<dyn CellStore>) {
        self.by_region.insert(cell.region().clone(), cell);
    }

    pub fn get(&self, region: &Region) -> StoreResult<&Arc<dyn CellStore>> {
        self.by_region
            .get(region)
            .ok_or_else(|| StoreError::UnknownRegion(region.clone()))
    }

    pub fn contains(&self, region: &Region) -> bool {
        self.by_region.contains_key(region)
    }

    /// Regions in a stable (sorted) order, which cross-cell paging relies on.
    pub fn regions(&self) -> impl Iterator<Item = &Region> {
        self.by_region.keys()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Region, &Arc<dyn CellStore>)> {
        self.by_region.iter()
    }

    pub fn len(&self) -> usize {
        self.by_region.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_region.is_empty()
    }
}
