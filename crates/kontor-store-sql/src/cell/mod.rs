//! A region's cell: the users of that region and everything about them — connections, accounts,
//! balances, transactions, the event log and its webhook deliveries. One file per aggregate.

#[macro_use]
pub(crate) mod fences;
mod accounts;
mod changes;
#[macro_use]
mod connections;
mod deliveries;
mod erasures;
mod events;
mod gauges;
pub(crate) mod lease;
mod link_guards;
mod payments;
mod size;
mod sync_state;
mod users;

use async_trait::async_trait;
use kontor_domain::Region;
use kontor_store::{CellStore, DatabaseRole, MigrationStatus, Schema, StoreError, StoreResult};

use crate::database::{PoolSettings, SqlDatabase};

#[derive(Debug, Clone)]
pub struct SqlCell {
    db: SqlDatabase,
    region: Region,
}

impl SqlCell {
    pub fn open(region: Region, url: &str, settings: &PoolSettings) -> StoreResult<Self> {
        SqlDatabase::open(url, DatabaseRole::Cell, settings).map(|db| Self { db, region })
    }

    pub fn database(&self) -> &SqlDatabase {
        &self.db
    }

    /// Refuses, before any SQL runs, a record that belongs to another region.
    pub(crate) fn ensure_home(&self, record: &'static str, region: &Region) -> StoreResult<()> {
        if region == &self.region {
            Ok(())
        } else {
            Err(StoreError::WrongCell {
                record,
                record_region: region.clone(),
                cell_region: self.region.clone(),
            })
        }
    }
}

impl CellStore for SqlCell {
    fn region(&self) -> &Region {
        &self.region
    }
}

#[async_trait]
impl Schema for SqlCell {
    fn backend(&self) -> &'static str {
        self.db.backend()
    }
    fn role(&self) -> DatabaseRole {
        self.db.role()
    }
    async fn ping(&self) -> StoreResult<()> {
        self.db.ping().await
    }
    async fn migration_status(&self) -> StoreResult<MigrationStatus> {
        self.db.migration_status().await
    }
    async fn migrate(&self) -> StoreResult<Vec<i64>> {
        self.db.migrate().await
    }
    fn migration_description(&self, version: i64) -> Option<String> {
        self.db.migration_description(version)
    }
}

/// Whether a flow's stored state (hash, spent, expiry) still admits `given` at `now`: it is the
/// state's own, not used yet, and not lapsed. A connect link and a payment share this rule.
fn state_is_live(
    stored: Option<&str>,
    spent: Option<kontor_domain::time::Timestamp>,
    expires: Option<kontor_domain::time::Timestamp>,
    given: &str,
    now: kontor_domain::time::Timestamp,
) -> bool {
    stored == Some(given) && spent.is_none() && expires.is_some_and(|until| now < until)
}
