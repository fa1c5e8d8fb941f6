//! The erasure ledger, in the control database: which users were erased, where and when — ids
//! only, no personal data. It is written before an erasure acts, so a crash part-way is finished
//! by replaying it, and it is replayed after a cell or key store is restored from a backup, so a
//! restore never brings an erased user back.

use async_trait::async_trait;
use kontor_domain::time::Timestamp;
use kontor_domain::{Region, TenantId, UserId};

use crate::error::StoreResult;

/// One erased user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Erasure {
    pub user_id: UserId,
    pub tenant_id: TenantId,
    pub region: Region,
    pub erased_at: Timestamp,
}

#[async_trait]
pub trait ErasureLedger: Send + Sync {
    /// Records that the user is erased. Recording an erasure again keeps the first time.
    async fn record_erasure(&self, erasure: &Erasure) -> StoreResult<()>;

    /// The ledger in order of user id, after `after`, at most `limit` entries.
    async fn erasures(&self, after: Option<&UserId>, limit: usize) -> StoreResult<Vec<Erasure>>;
}
