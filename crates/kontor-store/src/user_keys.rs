//! Users' data keys, each cell's in a **key store** of its own: a database apart from the
//! region's cell, so that neither the cell nor any backup of it ever holds a key. Erasing a user
//! shreds their key here, which leaves whatever is sealed with it in the cell (and in every copy
//! of the cell) unreadable.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use kontor_domain::{CellId, Region, UserId};

use crate::error::{StoreError, StoreResult};
use crate::schema::Schema;

#[async_trait]
pub trait UserKeyStore: Schema {
    /// The region whose users' keys this store holds.
    fn region(&self) -> &Region;

    /// The user's wrapped data key, if one is stored.
    async fn user_key(&self, user: &UserId) -> StoreResult<Option<String>>;

    /// Stores `candidate` as the user's wrapped data key unless one exists, and returns the one
    /// that is stored (so concurrent first uses agree on a single key). `NotFound` when the
    /// user's key was shredded: an erased user never gets a key again.
    async fn ensure_user_key(&self, user: &UserId, candidate: &str) -> StoreResult<String>;

    /// Takes over a key kept in the cell by an earlier release: stored unless the user already
    /// has a key here or was erased. `true` when it was stored now.
    async fn import_user_key(&self, user: &UserId, wrapped: &str) -> StoreResult<bool>;

    /// Shreds the user's key: overwritten, deleted and remembered as shredded, then the engine
    /// is made to forget it (SQLite: secure deletion and a WAL checkpoint; PostgreSQL: a VACUUM
    /// of the key table). Idempotent; `true` when a key was there to shred.
    async fn shred_user_key(&self, user: &UserId) -> StoreResult<bool>;
}

/// The key stores of a deployment, one per cell (beside [`crate::Cells`]).
#[derive(Clone, Default)]
pub struct KeyStores {
    by_cell: BTreeMap<CellId, Arc<dyn UserKeyStore>>,
}

impl std::fmt::Debug for KeyStores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.by_cell.keys()).finish()
    }
}

impl KeyStores {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a key store as its region's cell 1's.
    pub fn insert(&mut self, store: Arc<dyn UserKeyStore>) {
        self.by_cell
            .insert(CellId::first(store.region().clone()), store);
    }

    /// Adds a key store as cell `id`'s; refused when it serves another region than `id`'s.
    pub fn insert_as(&mut self, id: CellId, store: Arc<dyn UserKeyStore>) -> StoreResult<()> {
        if id.region() != store.region() {
            return Err(StoreError::WrongCell {
                record: "key store",
                record_region: id.region().clone(),
                cell_region: store.region().clone(),
            });
        }
        self.by_cell.insert(id, store);
        Ok(())
    }

    pub fn get(&self, cell: &CellId) -> StoreResult<&Arc<dyn UserKeyStore>> {
        self.by_cell
            .get(cell)
            .ok_or_else(|| StoreError::UnknownCell(cell.clone()))
    }

    pub fn iter(&self) -> impl Iterator<Item = (&CellId, &Arc<dyn UserKeyStore>)> {
        self.by_cell.iter()
    }
}
