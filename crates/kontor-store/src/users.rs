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
    /// accounts, balances, transactions and wrapped data key), and records `event` with it.
    async fn delete_user(
        &self,
        tenant: &TenantId,
        id: &UserId,
        event: Option<&NewEvent>,
    ) -> StoreResult<()>;

    /// The user's wrapped data key, if one was made.
    async fn user_data_key(&self, id: &UserId) -> StoreResult<Option<String>>;

    /// Stores `candidate` as the user's wrapped data key unless one exists, and returns the one
    /// that is stored (so concurrent first uses agree on a single key).
    async fn ensure_user_data_key(&self, id: &UserId, candidate: &str) -> StoreResult<String>;
}
