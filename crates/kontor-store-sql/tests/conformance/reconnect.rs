//! A read whose pooled connection dies under it is run again on a live connection instead of
//! failing: the server terminating backends (a restart, a failover, an operator's
//! `pg_terminate_backend`) costs a retry, not a 503. PostgreSQL only: SQLite has no server.

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use kontor_domain::TenantId;
use kontor_store::{StoreError, UserStore, retry_serializable};
use kontor_test_support::{Backend, TestStores};
use sqlx::{Connection, PgConnection};

use crate::tenants::new_tenant;
use crate::users::new_user;

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

    let read = read_through_a_kill(&stores.urls[0].1, "tenants", {
        let control = control.clone();
        let id = tenant.id.clone();
        async move { control.tenant(&id).await }
    })
    .await;
    assert_eq!(read.unwrap().id, tenant.id, "the read was answered");

    // And the store goes on working.
    let (other, other_client) = new_tenant("After");
    control.create_tenant(&other, &other_client).await.unwrap();
    assert_eq!(
        control.tenant(&other.id).await.unwrap().name.as_str(),
        "After"
    );
}

/// Runs `read` while `table` of the database at `url` is locked, so that it waits inside the
/// server, then terminates every backend of that database (the read's, the pools' idle ones and
/// the locker's) and answers what the read answered.
async fn read_through_a_kill<T: Send + 'static>(
    url: &str,
    table: &str,
    read: impl Future<Output = T> + Send + 'static,
) -> T {
    let database = database_of(url).to_owned();
    let mut locker = PgConnection::connect(url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut locker).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"
    )))
    .execute(&mut locker)
    .await
    .unwrap();
    let read = tokio::spawn(read);

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
    assert!(terminate_backends(&mut admin, &database).await >= 2);
    drop(locker);
    read.await.unwrap()
}

/// The same for a cell's typed read (`reads.rs`), which runs on the cell's own PostgreSQL pool.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_typed_cell_read_whose_connection_is_killed_mid_query_is_retried() {
    let Some(stores) = TestStores::new(Backend::Postgres, "reconnect::typed", &["uk"]).await else {
        return;
    };
    let cell = stores.cell("uk").clone();
    let tenant = TenantId::generate();
    let user = cell
        .create_user(&new_user(&tenant, "killed-read", "uk"))
        .await
        .unwrap();
    cell.user(&tenant, &user.id).await.unwrap();
    let url = stores.url("uk");

    let read = read_through_a_kill(url, "users", {
        let (cell, tenant, id) = (cell.clone(), tenant.clone(), user.id.clone());
        async move { cell.user(&tenant, &id).await }
    })
    .await;
    assert_eq!(read.unwrap().id, user.id, "the read was answered");
    assert_eq!(cell.user(&tenant, &user.id).await.unwrap().id, user.id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_after_every_connection_was_killed_succeed() {
    let Some(stores) = TestStores::new(Backend::Postgres, "reconnect::idle", &["uk"]).await else {
        return;
    };
    let control = stores.control();
    let (tenant, client) = new_tenant("Reconnect idle");
    control.create_tenant(&tenant, &client).await.unwrap();
    // Several idle connections, used a moment ago (so not pinged before use): more of them
    // than a read has attempts.
    let warm = futures_util::future::join_all((0..6).map(|_| control.tenant(&tenant.id))).await;
    assert!(warm.iter().all(Result::is_ok));
    let database = database_of(&stores.urls[0].1).to_owned();
    let mut admin = PgConnection::connect(&kontor_test_support::postgres_admin_url())
        .await
        .unwrap();
    assert!(terminate_backends(&mut admin, &database).await >= 1);
    assert_eq!(control.tenant(&tenant.id).await.unwrap().id, tenant.id);
}

/// A table of ids for the write tests below, on the uk cell.
async fn lost_probe(stores: &TestStores) -> kontor_store_sql::SqlDatabase {
    let db = stores.cell("uk").database().clone();
    sqlx::query("CREATE TABLE lost_probe (id TEXT PRIMARY KEY)")
        .execute(db.pool())
        .await
        .unwrap();
    db
}

async fn probe_rows(db: &kontor_store_sql::SqlDatabase) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM lost_probe")
        .fetch_one(db.pool())
        .await
        .unwrap()
}

/// Terminates the backend a transaction runs on, from outside.
async fn terminate_own_backend(tx: &mut sqlx::Transaction<'static, sqlx::Any>) {
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut **tx)
        .await
        .unwrap();
    let mut admin = PgConnection::connect(&kontor_test_support::postgres_admin_url())
        .await
        .unwrap();
    let killed: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
        .bind(pid)
        .fetch_one(&mut admin)
        .await
        .unwrap();
    assert!(killed);
    // pg_terminate_backend only signals: wait until the backend is gone.
    let mut alive: i64 = 1;
    for _ in 0..200 {
        alive =
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM pg_stat_activity WHERE pid = $1")
                .bind(pid)
                .fetch_one(&mut admin)
                .await
                .unwrap();
        if alive == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(alive, 0, "backend {pid} did not end");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_whose_connection_is_killed_mid_transaction_succeeds_on_retry() {
    let Some(stores) = TestStores::new(Backend::Postgres, "reconnect::write", &["uk"]).await else {
        return;
    };
    let db = lost_probe(&stores).await;
    let attempts = AtomicU32::new(0);
    retry_serializable(db.retry_policy(), "lost_probe", |attempt| {
        let (db, attempts) = (&db, &attempts);
        async move {
            attempts.fetch_add(1, Ordering::SeqCst);
            let mut tx = db.begin_write().await?;
            sqlx::query("INSERT INTO lost_probe (id) VALUES ('a')")
                .execute(&mut *tx)
                .await
                .map_err(|e| db.classify(e))?;
            if attempt == 1 {
                terminate_own_backend(&mut tx).await;
            }
            // The next statement finds its session ended: nothing was committed.
            sqlx::query("SELECT COUNT(*) FROM lost_probe")
                .execute(&mut *tx)
                .await
                .map_err(|e| db.classify(e))?;
            db.commit(tx).await
        }
    })
    .await
    .unwrap();
    assert_eq!(attempts.load(Ordering::SeqCst), 2, "run once more, no more");
    assert_eq!(probe_rows(&db).await, 1, "written exactly once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_lost_at_commit_is_unavailable_unless_the_write_is_idempotent() {
    let Some(stores) = TestStores::new(Backend::Postgres, "reconnect::commit", &["uk"]).await
    else {
        return;
    };
    let db = lost_probe(&stores).await;
    for idempotent in [false, true] {
        let attempts = AtomicU32::new(0);
        let result = retry_serializable(db.retry_policy(), "lost_probe", |attempt| {
            let (db, attempts) = (&db, &attempts);
            async move {
                attempts.fetch_add(1, Ordering::SeqCst);
                let mut tx = db.begin_write().await?;
                sqlx::query("DELETE FROM lost_probe")
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| db.classify(e))?;
                sqlx::query("INSERT INTO lost_probe (id) VALUES ('b')")
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| db.classify(e))?;
                if attempt == 1 {
                    terminate_own_backend(&mut tx).await;
                }
                if idempotent {
                    db.commit_idempotent(tx).await
                } else {
                    db.commit(tx).await
                }
            }
        })
        .await;
        if idempotent {
            result.unwrap();
            assert_eq!(attempts.load(Ordering::SeqCst), 2);
            assert_eq!(probe_rows(&db).await, 1);
        } else {
            // Whether COMMIT reached the server is unknown to the client: not run again.
            assert!(
                matches!(result, Err(StoreError::Unavailable { .. })),
                "{result:?}"
            );
            assert_eq!(attempts.load(Ordering::SeqCst), 1);
            assert_eq!(probe_rows(&db).await, 0, "the server never saw COMMIT");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_lost_connection_the_pool_drops_the_connections_opened_before() {
    let Some(stores) = TestStores::new(Backend::Postgres, "reconnect::drop", &["uk"]).await else {
        return;
    };
    let db = lost_probe(&stores).await;
    // Three connections in the pool, idle.
    let held = futures_util::future::join_all((0..3).map(|_| db.pool().acquire())).await;
    let pids_before: Vec<i32> = {
        let mut pids = Vec::new();
        for conn in held {
            let mut conn = conn.unwrap();
            pids.push(
                sqlx::query_scalar("SELECT pg_backend_pid()")
                    .fetch_one(&mut *conn)
                    .await
                    .unwrap(),
            );
        }
        pids
    };
    // One transaction loses its connection.
    let mut tx = db.begin_write().await.unwrap();
    terminate_own_backend(&mut tx).await;
    let err = sqlx::query("SELECT 1")
        .execute(&mut *tx)
        .await
        .map_err(|e| db.classify(e))
        .unwrap_err();
    assert!(err.is_connection_lost(), "{err:?}");
    drop(tx);
    // The survivors opened before the loss are not handed out again: a new connection is.
    let mut conn = db.pool().acquire().await.unwrap();
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert!(
        !pids_before.contains(&pid),
        "{pid} was opened before the loss"
    );
}

/// A stand-in for HAProxy in front of a cell while no primary is there: the first `refuse`
/// connections get one byte that is neither `S` nor `N` in answer to the client's SSLRequest
/// and are closed (what HAProxy did to the hub's new connections during a failover); later ones
/// are passed through to `upstream`.
async fn proxy_without_a_primary_at_first(upstream: String, refuse: u32) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let refused = std::sync::Arc::new(AtomicU32::new(0));
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let (refused, upstream) = (refused.clone(), upstream.clone());
            tokio::spawn(async move {
                if refused.fetch_add(1, Ordering::SeqCst) < refuse {
                    let mut request = [0u8; 8];
                    let _ = client.read_exact(&mut request).await;
                    let _ = client.write_all(&[0]).await;
                    return;
                }
                if let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                }
            });
        }
    });
    format!("127.0.0.1:{port}")
}

/// During a failover HAProxy answered the hub's new connections with a byte sqlx calls a
/// protocol error ("unexpected response from SSLRequest: 0x00"); those writes failed with a
/// 500 instead of being run again once the new primary took connections. Nothing reached a
/// server, so the retry helper must run them again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_whose_new_connection_is_refused_by_the_proxy_is_run_again() {
    let Some(stores) = TestStores::new(Backend::Postgres, "reconnect::proxy", &["uk"]).await else {
        return;
    };
    let direct = lost_probe(&stores).await;
    let url = stores.url("uk");
    let upstream = crate::round_trips::server_of(url);
    assert!(upstream.contains(':'), "the URL {url} names a port");
    let proxy = proxy_without_a_primary_at_first(upstream.clone(), 3).await;
    let through = url.replacen(&format!("@{upstream}/"), &format!("@{proxy}/"), 1);
    assert_ne!(through, url, "the URL names {upstream}");
    let db = kontor_store_sql::SqlDatabase::open(
        &through,
        kontor_store::DatabaseRole::Cell,
        &kontor_store_sql::PoolSettings::default(),
    )
    .unwrap();
    let attempts = AtomicU32::new(0);
    retry_serializable(db.retry_policy(), "lost_probe", |_| {
        let (db, attempts) = (&db, &attempts);
        async move {
            attempts.fetch_add(1, Ordering::SeqCst);
            let mut tx = db.begin_write().await?;
            sqlx::query("INSERT INTO lost_probe (id) VALUES ('p')")
                .execute(&mut *tx)
                .await
                .map_err(|e| db.classify(e))?;
            db.commit(tx).await
        }
    })
    .await
    .unwrap();
    assert!(
        attempts.load(Ordering::SeqCst) >= 2,
        "the refused connections cost retries"
    );
    assert_eq!(probe_rows(&direct).await, 1, "written exactly once");
}

/// A typed read while the server refuses connections (restarting) waits for it, within the pool's
/// acquire timeout, instead of failing at once: here nothing listens on the cell's address for
/// 300 ms, then a proxy to the server does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_typed_read_waits_for_a_server_that_refuses_connections_at_first() {
    let Some(stores) = TestStores::new(Backend::Postgres, "reconnect::refused", &["uk"]).await
    else {
        return;
    };
    let (url, tenant, user) = &crate::round_trips::uk_user(&stores, "refused").await;
    // A free port, closed again: connections to it are refused until the proxy binds it.
    let address = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let cell = kontor_store_sql::SqlCell::open(
        kontor_domain::Region::parse("uk").unwrap(),
        &crate::round_trips::through(url, &address),
        &kontor_store_sql::PoolSettings::default(),
    )
    .unwrap();
    let upstream = crate::round_trips::server_of(url);
    let late = address.clone();
    let proxy = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let listener = tokio::net::TcpListener::bind(&late).await.unwrap();
        crate::round_trips::SyncCounter::serve(listener, upstream)
    });
    let read = cell.user(tenant, &user.id).await;
    let _proxy = proxy.await.unwrap();
    assert_eq!(read.unwrap().id, user.id, "the read waited for the server");
}
