//! Users, with their `external_id` sealed: the cell keeps it sealed with the user's data key, and
//! finds it (and keeps it unique per tenant) by a blind index, a keyed hash under a key derived
//! for the tenant (`crate::lookup`). The API sees the same users as before.

use kontor_domain::user::{ExternalId, User};
use kontor_domain::{CellId, Region, TenantId, UserId};
use kontor_store::{
    CellStore, ExternalIdLookup, NewStoredUser, Page, PageKey, StoreError, StoredExternalId,
    StoredUser,
};

use crate::ErrorCode;
use crate::error::{ServiceError, ServiceResult};
use crate::hub::Hub;
use crate::lookup;
use crate::vault::context;

/// How many users `seal_external_ids` converts per batch.
const SEAL_BATCH: usize = 200;

impl Hub {
    /// Creates a user in `region`, in the cell placement chooses (`placement.rs`);
    /// `user_exists` (naming the user when it can) when the tenant already has one with this
    /// `external_id` in any cell of the region.
    pub async fn create_user(
        &self,
        tenant: &TenantId,
        external_id: ExternalId,
        region: &Region,
    ) -> ServiceResult<User> {
        let index = self.external_id_index(tenant, &external_id).await?;
        // Each cell keeps `external_id` unique per tenant; across a region's cells it is
        // checked here, before placing and again after creating (below).
        if let Some(existing) = self
            .find_by_index(tenant, region, &index, &external_id, None)
            .await?
        {
            return Err(user_exists(region, Some(&existing)));
        }
        let home = self.place_user(tenant, region).await?;
        let cell = self.cell(&home)?;
        let id = UserId::generate(&home);
        // The key first, in the region's key store: the sealed external_id needs it, and a row
        // without its key could never be read.
        let (key, wrapped) = self.vault().keyring().new_data_key(id.as_str())?;
        let key_store = self.vault().key_store(&id)?;
        key_store.ensure_user_key(&id, wrapped.as_str()).await?;
        let sealed = key.seal(external_id.as_str().as_bytes(), &context::external_id(&id))?;
        let new = NewStoredUser {
            id: id.clone(),
            tenant_id: tenant.clone(),
            external_id_index: index.clone(),
            external_id_sealed: sealed,
            data_key: None,
            created_at: self.clock().now(),
            unconverted_match: external_id.clone(),
        };
        match cell.create_user(&new).await {
            Ok(stored) => {
                // A request racing this one may have put the same external_id in another cell
                // of the region: the user with the smaller id stays, the other goes again.
                if let Some(rival) = self
                    .find_by_index(tenant, region, &index, &external_id, Some(&home))
                    .await?
                    && rival < id
                {
                    cell.delete_user(tenant, &id, None).await?;
                    if let Err(err) = key_store.shred_user_key(&id).await {
                        tracing::warn!(user.id = %id, error = %err, "unused data key not shredded");
                    }
                    return Err(user_exists(region, Some(&rival)));
                }
                Ok(User {
                    id: stored.id,
                    tenant_id: stored.tenant_id,
                    external_id,
                    created_at: stored.created_at,
                })
            }
            Err(StoreError::Conflict { .. }) => {
                // The id will never exist: its key goes.
                if let Err(err) = key_store.shred_user_key(&id).await {
                    tracing::warn!(user.id = %id, error = %err, "unused data key not shredded");
                }
                let existing = cell.user_by_external_id(tenant, new.lookup()).await;
                let existing = match existing {
                    Ok(Some(user)) => Some(user.id),
                    _ => None,
                };
                Err(user_exists(region, existing.as_ref()))
            }
            Err(err) => Err(ServiceError::from(err)),
        }
    }

    /// The id of the tenant's user in a cell of `region` (but `except`) whose `external_id`
    /// has this blind index.
    async fn find_by_index(
        &self,
        tenant: &TenantId,
        region: &Region,
        index: &str,
        external_id: &ExternalId,
        except: Option<&CellId>,
    ) -> ServiceResult<Option<UserId>> {
        let lookup = ExternalIdLookup {
            index,
            plain: external_id,
        };
        for (id, cell) in self.cells().in_region(region) {
            if Some(id) == except {
                continue;
            }
            if let Some(user) = cell.user_by_external_id(tenant, lookup).await? {
                return Ok(Some(user.id));
            }
        }
        Ok(None)
    }

    /// The tenant's user `id`.
    pub async fn user(&self, tenant: &TenantId, id: &UserId) -> ServiceResult<User> {
        let cell = self.cell_for_user(Some(tenant), id)?;
        let stored = cell.user(tenant, id).await?;
        self.open_user(cell, stored).await
    }

    /// The tenant's user in `region` (in any of its cells) with this `external_id`, if there
    /// is one.
    pub async fn user_by_external_id(
        &self,
        tenant: &TenantId,
        region: &Region,
        external_id: &ExternalId,
    ) -> ServiceResult<Option<User>> {
        if !self.cells().serves(region) {
            return Err(ServiceError::NotFound);
        }
        let index = self.external_id_index(tenant, external_id).await?;
        let lookup = ExternalIdLookup {
            index: &index,
            plain: external_id,
        };
        for (_, cell) in self.cells().in_region(region) {
            if let Some(stored) = cell.user_by_external_id(tenant, lookup).await? {
                return Ok(Some(self.open_user(cell.as_ref(), stored).await?));
            }
        }
        Ok(None)
    }

    /// A region's cells, in the order lists walk them.
    pub fn region_cells(&self, region: &Region) -> Vec<CellId> {
        self.cells()
            .in_region(region)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// A page of the tenant's users held in `cell`, in creation order.
    pub async fn list_users(
        &self,
        tenant: &TenantId,
        cell: &CellId,
        after: Option<&PageKey>,
        limit: usize,
    ) -> ServiceResult<Page<User>> {
        let cell = self.cell(cell)?;
        let page = cell.list_users(tenant, after, limit).await?;
        let mut items = Vec::with_capacity(page.items.len());
        for stored in page.items {
            items.push(self.open_user(cell, stored).await?);
        }
        Ok(Page {
            items,
            next: page.next,
        })
    }

    /// Seals every `external_id` still stored in plaintext (written before it was sealed), in
    /// batches, in every cell; returns how many. Resumable: each user converts on its own, so a
    /// run that stops is carried on by the next (`kontor migrate` runs it).
    pub async fn seal_external_ids(&self) -> ServiceResult<u64> {
        let mut sealed = 0;
        for (_, cell) in self.cells().iter() {
            let cell = cell.as_ref();
            loop {
                let batch = cell.unsealed_users(SEAL_BATCH).await?;
                if batch.is_empty() {
                    break;
                }
                let mut progressed = false;
                for user in &batch {
                    let index = self
                        .external_id_index(&user.tenant_id, &user.external_id)
                        .await?;
                    let key = self.vault().user_key(cell, &user.id).await?;
                    let value = key.seal(
                        user.external_id.as_str().as_bytes(),
                        &context::external_id(&user.id),
                    )?;
                    if cell.seal_external_id(user, &index, &value).await? {
                        sealed += 1;
                        progressed = true;
                    }
                }
                if !progressed {
                    // Every row of the batch changed under us (erased, or sealed by another
                    // run): stop here rather than spin; the next run sees what is left.
                    break;
                }
            }
        }
        Ok(sealed)
    }

    async fn external_id_index(
        &self,
        tenant: &TenantId,
        external_id: &ExternalId,
    ) -> ServiceResult<String> {
        let root = self.vault().lookup_key(self.control()).await?;
        Ok(lookup::external_id_index(root, tenant, external_id))
    }

    async fn open_user(&self, cell: &dyn CellStore, stored: StoredUser) -> ServiceResult<User> {
        let external_id = match stored.external_id {
            StoredExternalId::Plain(plain) => plain,
            StoredExternalId::Sealed(sealed) => {
                let key = self.vault().user_key(cell, &stored.id).await?;
                let bytes = key.open(&sealed, &context::external_id(&stored.id))?;
                let text = String::from_utf8(bytes)
                    .map_err(|_| ServiceError::Internal("sealed external_id is not text".into()))?;
                ExternalId::parse(&text).map_err(|e| {
                    ServiceError::Internal(format!("sealed external_id does not parse: {e}"))
                })?
            }
        };
        Ok(User {
            id: stored.id,
            tenant_id: stored.tenant_id,
            external_id,
            created_at: stored.created_at,
        })
    }
}

/// `user_exists`, naming the user when known.
fn user_exists(region: &Region, existing: Option<&UserId>) -> ServiceError {
    let hint = existing.map(|id| format!(" ({id})")).unwrap_or_default();
    ServiceError::conflict(
        ErrorCode::UserExists,
        format!("a user with this external_id already exists in region {region}{hint}"),
    )
}
