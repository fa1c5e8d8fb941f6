//! The key canary: a random data key wrapped by the key-encryption key that was active when it
//! was sealed. A node that cannot unwrap it holds other keys than the ones the data was sealed
//! with, and says so on `/readyz` instead of failing on every sealed field.

use async_trait::async_trait;
use kontor_domain::TenantId;
use kontor_domain::time::Timestamp;

use crate::error::StoreResult;

#[async_trait]
pub trait KeyCanaryStore: Send + Sync {
    /// The wrapped canary, once one was sealed.
    async fn key_canary(&self) -> StoreResult<Option<String>>;
    /// Stores `wrapped` as the canary where none is (`replacing` is `None`), or in place of
    /// `replacing` (a rotation). `false` when the stored canary was not what the caller expected:
    /// another node got there first.
    async fn put_key_canary(
        &self,
        wrapped: &str,
        replacing: Option<&str>,
        at: Timestamp,
    ) -> StoreResult<bool>;
    /// The deployment key `name`, wrapped, once one was made.
    async fn deployment_key(&self, name: &str) -> StoreResult<Option<String>>;
    /// Stores `wrapped` as the deployment key `name` where none is (`replacing` is `None`), or in
    /// place of `replacing` (re-wrapped after a rotation). `false` when the stored key was not
    /// what the caller expected: another node got there first, and the caller reads theirs.
    async fn put_deployment_key(
        &self,
        name: &str,
        wrapped: &str,
        replacing: Option<&str>,
        at: Timestamp,
    ) -> StoreResult<bool>;
    /// The most recently made tenant data key, wrapped: data sealed before the first canary,
    /// to check the keys against.
    async fn newest_tenant_key(&self) -> StoreResult<Option<(TenantId, String)>>;
}
