//! End users, kept in the cell of their home region. Every query is scoped by tenant: a tenant
//! cannot name another tenant's user, even by id.

use async_trait::async_trait;
use kontor_domain::TenantId;
use kontor_domain::UserId;
use kontor_domain::event::NewEvent;
use kontor_domain::user::{ExternalId, NewUser, User};

use crate::error::StoreResult;
use crate::page::{Page, PageKey};

#[async_trait]
pub trait UserStore: Send + Sync {
    /// Fails with `Conflict` when the tenant already has a user with this `external_id` here, and
    /// with `WrongCell` when the user belongs to another region.
    async fn create_user(&self, user: &NewUser) -> StoreResult<User>;
    async fn user(&self, tenant: &TenantId, id: &UserId) -> StoreResult<User>;
    async fn user_by_external_id(
        &self,
        tenant: &TenantId,
        external_id: &ExternalId,
    ) -> StoreResult<Option<User>>;
    /// The tenant's users in creation order, after `after`.
    async fn list_users(
        &self,
        tenant: &TenantId,
        after: Option<&PageKey>,
        limit: usize,
    ) -> StoreResult<Page<User>>;
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
}
