//! Sealing and opening what the hub keeps secret about a user, with that user's data key.

use std::time::{Duration, Instant};

use kontor_crypto::{DataKey, Keyring, LookupKey, WrappedKey};
use kontor_domain::time::Timestamp;
use kontor_domain::{CellId, UserId};
use kontor_store::{CellStore, Cells, ControlStore, KeyStores, UserKeyStore};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::OnceCell;

use crate::error::{ServiceError, ServiceResult};
use crate::key_cache::{self, KeyCache};

/// The key-encryption keys and the regions' key stores, where users' wrapped data keys live.
#[derive(Debug)]
pub struct Vault {
    keyring: Keyring,
    keys: KeyStores,
    /// The deployment's root key for keyed hashes, read (or made) on first use.
    lookup: OnceCell<LookupKey>,
    /// Users' data keys kept briefly (see `key_cache`); none unless asked for.
    cache: Option<KeyCache>,
    /// Which configured cell each cell store is (by the store's address), so a user's key is
    /// read from the key store beside the cell that serves them: after a move that is not
    /// their home's.
    serving: Vec<(usize, CellId)>,
}

/// The deployment key's name in `deployment_keys`, and what its wrapping is bound to.
const LOOKUP_KEY: &str = "lookup";
const LOOKUP_OWNER: &str = "kontor/deployment-key/lookup";

impl Vault {
    pub fn new(keyring: Keyring, keys: KeyStores) -> Self {
        Self {
            keyring,
            keys,
            lookup: OnceCell::new(),
            cache: None,
            serving: Vec::new(),
        }
    }

    /// Keeps users' unwrapped data keys in memory for `ttl` after they were read from the key
    /// store (not at all when it is zero), so that reads in a row for one user ask the key store
    /// once. An erasure on this node forgets the key at once; other nodes hold it for at most
    /// `ttl` (see `key_cache`).
    pub fn with_key_cache(mut self, ttl: Duration) -> Self {
        self.cache = (!ttl.is_zero()).then(|| KeyCache::new(ttl, key_cache::CAPACITY));
        self
    }

    /// Forgets the user's data key on this node: call it as soon as the key was shredded.
    pub fn forget_user_key(&self, user: &UserId) {
        if let Some(cache) = &self.cache {
            cache.forget(user);
        }
    }

    /// Forgets every user's data key on this node (after a replay of the erasure ledger).
    pub fn forget_user_keys(&self) {
        if let Some(cache) = &self.cache {
            cache.forget_all();
        }
    }

    /// The deployment's root key for keyed hashes (see `crate::lookup`): 32 random bytes made
    /// once per deployment and kept in the control database wrapped by the key-encryption keys,
    /// so it outlives a rotation of them; wrapped by a key that is no longer the active one, it
    /// is re-wrapped under the active key here.
    pub async fn lookup_key(&self, control: &dyn ControlStore) -> ServiceResult<&LookupKey> {
        self.lookup
            .get_or_try_init(|| async {
                for _ in 0..3 {
                    let stored = control.deployment_key(LOOKUP_KEY).await?;
                    let Some(stored) = stored else {
                        let (key, wrapped) = self.keyring.new_lookup_key(LOOKUP_OWNER)?;
                        if control
                            .put_deployment_key(
                                LOOKUP_KEY,
                                wrapped.as_str(),
                                None,
                                Timestamp::now(),
                            )
                            .await?
                        {
                            return Ok(key);
                        }
                        continue;
                    };
                    let wrapped = WrappedKey::from_stored(stored.clone());
                    let key = self.keyring.unwrap_lookup_key(&wrapped, LOOKUP_OWNER)?;
                    if wrapped.key_id() != Some(self.keyring.active_key_id()) {
                        let rewrapped = self.keyring.rewrap(&wrapped, LOOKUP_OWNER)?;
                        // Another node may have re-wrapped it first; either way it is the same key.
                        control
                            .put_deployment_key(
                                LOOKUP_KEY,
                                rewrapped.as_str(),
                                Some(&stored),
                                Timestamp::now(),
                            )
                            .await?;
                    }
                    return Ok(key);
                }
                Err(ServiceError::Internal(
                    "the deployment's lookup key kept changing while it was read".into(),
                ))
            })
            .await
    }

    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    /// Learns which configured cell each of `cells` is (see [`Vault::key_store_of`]).
    pub(crate) fn serving(mut self, cells: &Cells) -> Self {
        self.serving = cells
            .iter()
            .map(|(id, cell)| (address(cell.as_ref()), id.clone()))
            .collect();
        self
    }

    /// The key store of the user's home cell: for a user just made (who cannot have moved).
    /// Everyone else's key store is the one beside the cell serving them
    /// ([`Vault::key_store_of`]).
    pub fn key_store(&self, user: &UserId) -> ServiceResult<&dyn UserKeyStore> {
        self.keys
            .get(user.cell())
            .map(|store| store.as_ref())
            .map_err(ServiceError::from)
    }

    /// The key store beside `cell`, the cell serving `user` (a move carries the user's key to
    /// the key store beside the target); the user's home's for a cell this vault was not told
    /// of.
    pub fn key_store_of(
        &self,
        cell: &dyn CellStore,
        user: &UserId,
    ) -> ServiceResult<&dyn UserKeyStore> {
        let at = address(cell);
        let id = self
            .serving
            .iter()
            .find(|(a, _)| *a == at)
            .map_or(user.cell(), |(_, id)| id);
        self.keys
            .get(id)
            .map(|store| store.as_ref())
            .map_err(ServiceError::from)
    }

    pub fn key_stores(&self) -> &KeyStores {
        &self.keys
    }

    /// The user's data key, made (and stored, wrapped, in the key store) on first use. `cell` is
    /// the user's cell: a key an earlier release kept there is moved to the key store first, and
    /// a user the cell does not hold gets no key (`NotFound`).
    pub async fn user_key(&self, cell: &dyn CellStore, user: &UserId) -> ServiceResult<DataKey> {
        let Some(cache) = &self.cache else {
            return self.fetch_user_key(cell, user).await;
        };
        if let Some(key) = cache.get(user, Instant::now()) {
            return Ok(key);
        }
        let ticket = cache.ticket();
        let key = self.fetch_user_key(cell, user).await?;
        cache.put(user, &key, ticket, Instant::now());
        Ok(key)
    }

    /// [`Self::user_key`] from the key store (or the cell), past the cache.
    async fn fetch_user_key(&self, cell: &dyn CellStore, user: &UserId) -> ServiceResult<DataKey> {
        let owner = user.as_str();
        let store = self.key_store_of(cell, user)?;
        if let Some(wrapped) = store.user_key(user).await? {
            return self.unwrap(wrapped, owner);
        }
        // Until `kontor migrate` has moved them all (and while an earlier release still runs
        // beside this one), a key may still be in the cell.
        let legacy = cell.user_data_key(user).await?;
        let stored = match legacy {
            Some(wrapped) => {
                store.import_user_key(user, &wrapped).await?;
                cell.clear_legacy_data_key(user, &wrapped).await?;
                store.user_key(user).await?.ok_or(ServiceError::NotFound)?
            }
            None => {
                let (key, wrapped) = self.keyring.new_data_key(owner)?;
                let stored = store.ensure_user_key(user, wrapped.as_str()).await?;
                if stored == wrapped.as_str() {
                    return Ok(key);
                }
                // Another request made the user's key first; use theirs.
                stored
            }
        };
        self.unwrap(stored, owner)
    }

    fn unwrap(&self, wrapped: String, owner: &str) -> ServiceResult<DataKey> {
        Ok(self
            .keyring
            .unwrap_key(&WrappedKey::from_stored(wrapped), owner)?)
    }
}

/// Seals a value as JSON, bound to `context` (the record and field it belongs to).
pub fn seal_json<T: Serialize>(key: &DataKey, value: &T, context: &str) -> ServiceResult<String> {
    let bytes = serde_json::to_vec(value).map_err(|e| ServiceError::Internal(e.to_string()))?;
    Ok(key.seal(&bytes, context)?)
}

pub fn open_json<T: DeserializeOwned>(
    key: &DataKey,
    sealed: &str,
    context: &str,
) -> ServiceResult<T> {
    let bytes = key.open(sealed, context)?;
    serde_json::from_slice(&bytes).map_err(|e| ServiceError::Internal(format!("{context}: {e}")))
}

/// The sealing contexts, one per kind of sealed field.
pub mod context {
    use kontor_domain::{AccountId, ConnectionId, PaymentId, TransactionId, UserId};

    pub fn external_id(id: &UserId) -> String {
        format!("users/{id}/external_id")
    }

    pub fn session(id: &ConnectionId) -> String {
        format!("connections/{id}/session")
    }

    /// The IP address of the user who started a connection's first sync.
    pub fn first_sync_ip(id: &ConnectionId) -> String {
        format!("connections/{id}/first-sync-ip")
    }

    pub fn psu_id(id: &ConnectionId) -> String {
        format!("connections/{id}/psu_id")
    }

    pub fn account(id: &AccountId) -> String {
        format!("accounts/{id}/details")
    }

    pub fn transaction(id: &TransactionId) -> String {
        format!("transactions/{id}/details")
    }

    pub fn payment(id: &PaymentId) -> String {
        format!("payments/{id}/details")
    }

    pub fn payment_session(id: &PaymentId) -> String {
        format!("payments/{id}/session")
    }
}

/// A cell store's address, to tell which configured cell it is.
fn address(cell: &dyn CellStore) -> usize {
    std::ptr::from_ref(cell).cast::<()>() as usize
}
