//! End users, kept in the cell of their home region. Every query is scoped by tenant: a tenant
//! cannot name another tenant's user, even by id.

use async_trait::async_trait;
use kontor_domain::TenantId;
use kontor_domain::UserId;
use kontor_domain::event::NewEvent;
use kontor_domain::time::Timestamp;
use kontor_domain::user::ExternalId;

use crate::error::StoreResult;
use crate::page::{Page, PageKey};

/// What a cell holds of a user's `external_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredExternalId {
    /// Sealed with the user's data key (`s1.…`); found by its blind index.
    Sealed(String),
    /// Written before external ids were sealed and not yet converted (`kontor migrate` does).
    Plain(ExternalId),
}

/// A user as the cell stores them; the service opens `external_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredUser {
    pub id: UserId,
    pub tenant_id: TenantId,
    pub external_id: StoredExternalId,
    pub created_at: Timestamp,
}

/// A user to insert: the `external_id` only as its blind index (`xi1.…`, a keyed hash under a
/// key derived for the tenant) and sealed with the user's data key, made with the user.
#[derive(Debug, Clone)]
pub struct NewStoredUser {
    pub id: UserId,
    pub tenant_id: TenantId,
    pub external_id_index: String,
    pub external_id_sealed: String,
    /// A wrapped data key kept with the user, as releases before the key stores did; new users'
    /// keys go to the key store (`None` here).
    pub data_key: Option<String>,
    pub created_at: Timestamp,
    /// The `external_id` itself, only compared against rows not yet converted (which hold it in
    /// plaintext) to keep it unique per tenant; never stored.
    pub unconverted_match: ExternalId,
}

impl NewStoredUser {
    /// The blind index and the plaintext, to find this user's `external_id` by.
    pub fn lookup(&self) -> ExternalIdLookup<'_> {
        ExternalIdLookup {
            index: &self.external_id_index,
            plain: &self.unconverted_match,
        }
    }
}

impl StoredUser {
    pub fn region(&self) -> &kontor_domain::Region {
        self.id.region()
    }
}

/// How to find a user by `external_id`: its blind index, and the value itself, compared (never
/// stored) against rows not yet converted.
#[derive(Debug, Clone, Copy)]
pub struct ExternalIdLookup<'a> {
    pub index: &'a str,
    pub plain: &'a ExternalId,
}

/// A user whose `external_id` is still stored in plaintext, to seal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsealedUser {
    pub id: UserId,
    pub tenant_id: TenantId,
    pub external_id: ExternalId,
}

#[async_trait]
pub trait UserStore: Send + Sync {
    /// Fails with `Conflict` when the tenant already has a user with this `external_id` here
    /// (by its index, or in plaintext on a row not yet converted), and with `WrongCell`
    /// when the user belongs to another region.
    async fn create_user(&self, user: &NewStoredUser) -> StoreResult<StoredUser>;
    async fn user(&self, tenant: &TenantId, id: &UserId) -> StoreResult<StoredUser>;
    async fn user_by_external_id(
        &self,
        tenant: &TenantId,
        lookup: ExternalIdLookup<'_>,
    ) -> StoreResult<Option<StoredUser>>;
    /// The tenant's users in creation order, after `after`.
    async fn list_users(
        &self,
        tenant: &TenantId,
        after: Option<&PageKey>,
        limit: usize,
    ) -> StoreResult<Page<StoredUser>>;
    /// Erases the user and everything held about them in this cell (their connections,
    /// accounts, balances, transactions and any data key an earlier release kept here), and
    /// records `event` with it. The user's data key itself is shredded in the region's key store
    /// ([`crate::UserKeyStore`]).
    async fn delete_user(
        &self,
        tenant: &TenantId,
        id: &UserId,
        event: Option<&NewEvent>,
    ) -> StoreResult<()>;

    /// The wrapped data key an earlier release kept in the cell (`users.data_key`), if any is
    /// still here: keys live in the key store now, and `kontor migrate` moves these there.
    async fn user_data_key(&self, id: &UserId) -> StoreResult<Option<String>>;

    /// Users whose wrapped data key is still kept in the cell, in order of id after `after`.
    async fn legacy_data_keys(
        &self,
        after: Option<&UserId>,
        limit: usize,
    ) -> StoreResult<Vec<(UserId, String)>>;

    /// Clears the user's key from the cell once the key store holds it, if it is still
    /// `wrapped`. `true` when it was cleared now.
    async fn clear_legacy_data_key(&self, id: &UserId, wrapped: &str) -> StoreResult<bool>;

    /// Up to `limit` users whose `external_id` is still plaintext, to seal.
    async fn unsealed_users(&self, limit: usize) -> StoreResult<Vec<UnsealedUser>>;

    /// Replaces `user`'s plaintext `external_id` by `index` and `sealed`. `false` when the row is
    /// no longer as `user` describes it (erased, or converted by someone else).
    async fn seal_external_id(
        &self,
        user: &UnsealedUser,
        index: &str,
        sealed: &str,
    ) -> StoreResult<bool>;
}
