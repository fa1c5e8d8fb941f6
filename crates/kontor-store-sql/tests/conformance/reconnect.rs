//! A read whose pooled connection dies under it is run again on a live connection instead of
//! failing: the server terminating backends (a restart, a failover, an operator's
//! `pg_terminate_backend`) costs a retry, not a 503. PostgreSQL only: SQLite has no server.

use std::time::Duration;

use kontor_test_support::{Backend, TestStores};
use sqlx::{Connection, PgConnection};

use crate::tenants::new_tenant;

/// The database name in a PostgreSQL URL.
fn database_of(url: &str) -> &str {
    let path = url.split('?').next().unwrap_or(url);
    path.rsplit('/').next().unwrap_or(path)
}

/// Terminates every backend of `database` except the caller's own.
async fn terminate_backends(admin: &mut PgConnection, database: &str) -> usize {
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = $1 AND pid <> pg_backend_pid()",
    )
    .bind(database)
    .fetch_all(admin)
    .await
    .unwrap();
    killed.into_iter().filter(|k| *k).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_whose_connection_is_killed_mid_query_is_retried() {
    let Some(stores) = TestStores::new(Backend::Postgres, "reconnect::mid_query", &["uk"]).await
    else {
        return;
    };
    let control = stores.control();
    let (tenant, client) = new_tenant("Reconnect");
    control.create_tenant(&tenant, &client).await.unwrap();
    control.tenant(&tenant.id).await.unwrap();

    // Hold the table, so that the next read waits inside the server where it can be killed.
    let url = stores.urls[0].1.clone();
    let database = database_of(&url).to_owned();
    let mut locker = PgConnection::connect(&url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut locker).await.unwrap();
    sqlx::query("LOCK TABLE tenants IN ACCESS EXCLUSIVE MODE")
        .execute(&mut locker)
        .await
        .unwrap();
    let read = tokio::spawn({
        let control = control.clone();
        let id = tenant.id.clone();
        async move { control.tenant(&id).await }
    });

    let mut admin = PgConnection::connect(&kontor_test_support::postgres_admin_url())
        .await
        .unwrap();
    let mut waited = 0;
    loop {
        let blocked: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'",
        )
        .bind(&database)
        .fetch_one(&mut admin)
        .await
        .unwrap();
        if blocked > 0 {
            break;
        }
        waited += 1;
        assert!(waited < 600, "the read never reached the lock");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Every backend of the database goes: the read's, the pool's idle ones, and the locker's.
    assert!(terminate_backends(&mut admin, &database).await >= 2);
    drop(locker);

    let read = read.await.unwrap();
    assert_eq!(read.unwrap().id, tenant.id, "the read was answered");

    // And the store goes on working.
    let (other, other_client) = new_tenant("After");
    control.create_tenant(&other, &other_client).await.unwrap();
    assert_eq!(
        control.tenant(&other.id).await.unwrap().name.as_str(),
        "After"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_after_every_connection_was_killed_succeed() {
    let Some(stores) = TestStores::new(Backend::Postgres, "reconnect::idle", &["uk"]).await else {
        return;
    };
    let control = stores.control();
    let (tenant, client) = new_tenant("Reconnect idle");
    control.create_tenant(&tenant, &client).await.unwrap();
    control.tenant(&tenant.id).await.unwrap();
    let database = database_of(&stores.urls[0].1).to_owned();
    let mut admin = PgConnection::connect(&kontor_test_support::postgres_admin_url())
        .await
        .unwrap();
    assert!(terminate_backends(&mut admin, &database).await >= 1);
    assert_eq!(control.tenant(&tenant.id).await.unwrap().id, tenant.id);
}
