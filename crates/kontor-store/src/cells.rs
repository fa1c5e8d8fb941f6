//! The cells of a deployment: one or more per region, keyed by their name (`de-1`, `de-2`).
//! Routing needs no lookup: an id names its home cell.

use std::collections::BTreeMap;
use std::sync::Arc;

use kontor_domain::{CellId, Region};

use crate::CellStore;
use crate::error::{StoreError, StoreResult};

#[derive(Clone, Default)]
pub struct Cells {
    by_id: BTreeMap<CellId, Arc<dyn CellStore>>,
}

impl std::fmt::Debug for Cells {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.by_id.keys()).finish()
    }
}

impl Cells {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a store as its region's cell 1 (a deployment with one cell per region).
    pub fn insert(&mut self, cell: Arc<dyn CellStore>) {
        self.by_id
            .insert(CellId::first(cell.region().clone()), cell);
    }

    /// Adds a store as cell `id`; refused when the store serves another region than `id`'s.
    pub fn insert_as(&mut self, id: CellId, cell: Arc<dyn CellStore>) -> StoreResult<()> {
        if id.region() != cell.region() {
            return Err(StoreError::WrongCell {
                record: "cell",
                record_region: id.region().clone(),
                cell_region: cell.region().clone(),
            });
        }
        self.by_id.insert(id, cell);
        Ok(())
    }

    pub fn get(&self, id: &CellId) -> StoreResult<&Arc<dyn CellStore>> {
        self.by_id
            .get(id)
            .ok_or_else(|| StoreError::UnknownCell(id.clone()))
    }

    pub fn contains(&self, id: &CellId) -> bool {
        self.by_id.contains_key(id)
    }

    /// Whether any cell serves `region`.
    pub fn serves(&self, region: &Region) -> bool {
        self.in_region(region).next().is_some()
    }

    /// A region's cells, by number.
    pub fn in_region<'a>(
        &'a self,
        region: &'a Region,
    ) -> impl Iterator<Item = (&'a CellId, &'a Arc<dyn CellStore>)> + 'a {
        self.by_id
            .iter()
            .filter(move |(id, _)| id.region() == region)
    }

    /// The regions served, each once, in a stable (sorted) order.
    pub fn regions(&self) -> impl Iterator<Item = &Region> {
        let mut last: Option<&Region> = None;
        self.by_id.keys().filter_map(move |id| {
            let region = id.region();
            if last == Some(region) {
                None
            } else {
                last = Some(region);
                Some(region)
            }
        })
    }

    /// The cells' names in a stable (sorted) order, which cross-cell paging relies on.
    pub fn ids(&self) -> impl Iterator<Item = &CellId> {
        self.by_id.keys()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&CellId, &Arc<dyn CellStore>)> {
        self.by_id.iter()
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}
