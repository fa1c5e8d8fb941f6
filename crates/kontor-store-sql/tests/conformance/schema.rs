//! Migrations and reachability.

use kontor_store::Schema;
use kontor_test_support::TestStores;

pub async fn fresh_databases_are_migrated_and_reachable(stores: TestStores) {
    stores.control.ping().await.unwrap();
    let status = stores.control.migration_status().await.unwrap();
    assert!(status.is_current(), "{status:?}");
    assert!(!status.known.is_empty());
    for (region, cell) in stores.cells.iter() {
        cell.ping().await.unwrap();
        let status = cell.migration_status().await.unwrap();
        assert!(status.is_current(), "cell {region}: {status:?}");
    }
}

pub async fn migrating_twice_applies_nothing(stores: TestStores) {
    assert_eq!(stores.control.migrate().await.unwrap(), Vec::<i64>::new());
    for (_, cell) in stores.cells.iter() {
        assert_eq!(cell.migrate().await.unwrap(), Vec::<i64>::new());
    }
}
