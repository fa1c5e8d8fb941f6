//! What every database (control, cell or key store) answers about itself: reachability and migrations.

use async_trait::async_trait;

use crate::error::StoreResult;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseRole {
    Control,
    Cell,
    /// A region's key store: users' wrapped data keys, apart from the cell.
    Keys,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationStatus {
    /// Versions this binary knows, in order.
    pub known: Vec<i64>,
    /// Versions recorded as successfully applied in the database.
    pub applied: Vec<i64>,
}

impl MigrationStatus {
    /// Every migration this binary knows has been applied. Extra applied versions (from a newer
    /// binary during a rolling upgrade) are fine: migrations are expand/contract.
    pub fn is_current(&self) -> bool {
        self.known.iter().all(|v| self.applied.contains(v))
    }

    pub fn pending(&self) -> Vec<i64> {
        self.known
            .iter()
            .copied()
            .filter(|v| !self.applied.contains(v))
            .collect()
    }
}

#[async_trait]
pub trait Schema: Send + Sync {
    /// `postgres` or `sqlite`.
    fn backend(&self) -> &'static str;
    fn role(&self) -> DatabaseRole;
    /// A round trip to the database.
    async fn ping(&self) -> StoreResult<()>;
    async fn migration_status(&self) -> StoreResult<MigrationStatus>;
    /// Applies pending migrations; returns the versions applied now.
    async fn migrate(&self) -> StoreResult<Vec<i64>>;
    /// The description of a migration this binary knows (its file name without the version).
    fn migration_description(&self, version: i64) -> Option<String>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn current_means_nothing_known_is_missing() {
        let status = MigrationStatus {
            known: vec![1, 2],
            applied: vec![1, 2, 3],
        };
        assert!(status.is_current());
        let behind = MigrationStatus {
            known: vec![1, 2],
            applied: vec![1],
        };
        assert!(!behind.is_current());
        assert_eq!(behind.pending(), vec![2]);
    }
}
