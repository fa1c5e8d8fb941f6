//! Migrations and reachability.

use kontor_store::Schema;
use kontor_test_support::{Backend, TestStores};

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

/// PostgreSQL: cell migration 0012 runs outside a transaction, statement by statement. A
/// concurrent index build that failed half-way leaves an INVALID index behind and the
/// migration unrecorded; the next migrate drops that index, runs the migration's statements
/// again (the column is there already) and records it. SQLite builds its indexes inside the
/// migration's transaction, so there is nothing to resume there: only that they are built.
pub async fn a_failed_concurrent_index_build_is_built_again(stores: TestStores) {
    let pool = stores.raw_cell_pool("uk");
    if !matches!(stores.backend, Backend::Postgres) {
        let indexes: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'transactions' \
             AND name IN ('transactions_by_transaction_date', 'transactions_undated') ORDER BY name",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        assert_eq!(
            indexes,
            vec!["transactions_by_transaction_date", "transactions_undated"]
        );
        return;
    }
    let run = |sql: &'static str| {
        let pool = pool.clone();
        async move { sqlx::raw_sql(sql).execute(&pool).await }
    };
    run("DROP INDEX transactions_undated").await.unwrap();
    run("DELETE FROM _sqlx_migrations WHERE version = 12")
        .await
        .unwrap();
    // A build that fails the way a real one can (here: a unique index over duplicates).
    run("CREATE TABLE scratch_dup (x BIGINT); INSERT INTO scratch_dup VALUES (1), (1)")
        .await
        .unwrap();
    let failed =
        run("CREATE UNIQUE INDEX CONCURRENTLY transactions_undated ON scratch_dup (x)").await;
    assert!(failed.is_err(), "the build should fail on duplicates");
    let validity = |pool: sqlx::AnyPool| async move {
        sqlx::query_scalar::<_, String>(
            "SELECT CONCAT(t.relname, ':', CASE WHEN i.indisvalid THEN 'valid' ELSE 'invalid' END) \
             FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
             JOIN pg_class t ON t.oid = i.indrelid WHERE c.relname = 'transactions_undated'",
        )
        .fetch_all(&pool)
        .await
        .unwrap()
    };
    assert_eq!(validity(pool.clone()).await, vec!["scratch_dup:invalid"]);
    let cell = stores.cell("uk");
    assert!(!cell.migration_status().await.unwrap().is_current());

    assert_eq!(cell.migrate().await.unwrap(), vec![12]);
    assert_eq!(validity(pool.clone()).await, vec!["transactions:valid"]);
    assert!(cell.migration_status().await.unwrap().is_current());
    // Recorded as sqlx records it: a later migrate (sqlx checks the checksum) applies nothing.
    assert_eq!(cell.migrate().await.unwrap(), Vec::<i64>::new());
}
