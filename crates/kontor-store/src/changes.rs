//! The changes feed's log: what each sync did to a connection's transactions, numbered per
//! connection without gaps, so that a tenant can ask for everything after a position. Syncs
//! write it (`AccountStore::apply_sync`, in their own transaction); the feed reads it.

use async_trait::async_trait;
use kontor_domain::time::Timestamp;
use kontor_domain::{AccountId, ConnectionId, TenantId, TransactionId};

use crate::accounts::TransactionRow;
use crate::error::StoreResult;

kontor_domain::words!(
    /// What happened to a transaction.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum ChangeKind as "change kind" {
        Added => "added",
        Modified => "modified",
        Removed => "removed",
    }
);

/// One entry of a connection's change log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeRow {
    /// The entry's number within its connection: 1, 2, 3, … without gaps as written.
    pub seq: i64,
    pub account_id: AccountId,
    pub transaction_id: TransactionId,
    pub kind: ChangeKind,
    pub created_at: Timestamp,
}

#[async_trait]
pub trait ChangeStore: Send + Sync {
    /// The last number a connection's log gave out (0 before any), scoped by tenant: another
    /// tenant's connection is `NotFound`.
    async fn change_head(&self, tenant: &TenantId, connection: &ConnectionId) -> StoreResult<i64>;

    /// Up to `limit` entries numbered after `after`, in order.
    async fn changes_after(
        &self,
        connection: &ConnectionId,
        after: i64,
        limit: usize,
    ) -> StoreResult<Vec<ChangeRow>>;

    /// The transactions among `ids` that still exist under the connection, in no order.
    async fn connection_transactions(
        &self,
        connection: &ConnectionId,
        ids: &[TransactionId],
    ) -> StoreResult<Vec<TransactionRow>>;

    /// Retention: deletes at most `limit` entries written before `before`; returns how many.
    async fn purge_changes(&self, before: Timestamp, limit: usize) -> StoreResult<u64>;
}

#[cfg(test)]
mod tests {
    use super::ChangeKind;
    use crate::user_erasure::ErasurePhase;

    #[test]
    fn stored_words_round_trip_and_unknown_words_are_refused() {
        for kind in ChangeKind::ALL {
            assert_eq!(ChangeKind::parse(kind.as_str()), Some(kind));
        }
        for phase in ErasurePhase::ALL {
            assert_eq!(phase.as_str().parse::<ErasurePhase>(), Ok(phase));
        }
        assert_eq!(ChangeKind::parse("Added"), None);
        let refused = "deleted".parse::<ErasurePhase>().unwrap_err();
        assert_eq!(refused.kind, "erasure phase");
    }
}
