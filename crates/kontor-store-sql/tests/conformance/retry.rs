//! The serialization-retry helper against real databases: conflicting transactions are rerun
//! until they go through, and no update is lost.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use kontor_domain::Region;
use kontor_store::{RetryPolicy, StoreResult, retry_serializable};
use kontor_store_sql::{PoolSettings, SqlCell, SqlDatabase};
use kontor_test_support::{Backend, TestStores};

async fn probe_table(db: &SqlDatabase) {
    sqlx::query("CREATE TABLE retry_probe (id TEXT PRIMARY KEY, n BIGINT NOT NULL)")
        .execute(db.pool())
        .await
        .unwrap();
    sqlx::query("INSERT INTO retry_probe (id, n) VALUES ('x', 0)")
        .execute(db.pool())
        .await
        .unwrap();
}

async fn probe_value(db: &SqlDatabase) -> i64 {
    sqlx::query_scalar("SELECT n FROM retry_probe WHERE id = 'x'")
        .fetch_one(db.pool())
        .await
        .unwrap()
}

/// Read-modify-write of the probe row in one serializable transaction; `pause` runs between the
/// read and the write, which is where a concurrent writer makes the two conflict.
async fn increment<F, Fut>(
    db: &SqlDatabase,
    policy: &RetryPolicy,
    attempts: &AtomicU32,
    pause: F,
) -> StoreResult<()>
where
    F: Fn(u32) -> Fut,
    Fut: Future<Output = ()>,
{
    retry_serializable(policy, "retry_probe", |attempt| {
        let pause = &pause;
        async move {
            attempts.fetch_add(1, Ordering::SeqCst);
            let mut tx = db.begin_write().await?;
            let n: i64 = sqlx::query_scalar("SELECT n FROM retry_probe WHERE id = 'x'")
                .fetch_one(&mut *tx)
                .await
                .map_err(|e| db.classify(e))?;
            pause(attempt).await;
            sqlx::query("UPDATE retry_probe SET n = $1 WHERE id = 'x'")
                .bind(n + 1)
                .execute(&mut *tx)
                .await
                .map_err(|e| db.classify(e))?;
            tx.commit().await.map_err(|e| db.classify(e))
        }
    })
    .await
}

pub async fn concurrent_writers_lose_no_update(stores: TestStores) {
    let db = stores.cell("uk").database().clone();
    probe_table(&db).await;
    let attempts = Arc::new(AtomicU32::new(0));
    let writers = 6;
    let mut tasks = Vec::new();
    for _ in 0..writers {
        let (db, attempts) = (db.clone(), attempts.clone());
        tasks.push(tokio::spawn(async move {
            let policy = db.retry_policy().clone();
            increment(&db, &policy, &attempts, |_| tokio::task::yield_now()).await
        }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(probe_value(&db).await, i64::from(writers));
    assert!(attempts.load(Ordering::SeqCst) >= writers);
}

pub async fn forced_conflict_is_retried_to_success(stores: TestStores) {
    match stores.backend {
        Backend::Postgres => postgres_serialization_failure(stores).await,
        Backend::Sqlite => sqlite_busy_lock(stores).await,
    }
}

/// Two transactions both read the row before either writes (a barrier makes sure); PostgreSQL
/// must abort one with SQLSTATE 40001, and the helper reruns it.
async fn postgres_serialization_failure(stores: TestStores) {
    let db = stores.cell("uk").database().clone();
    probe_table(&db).await;
    let barrier = Arc::new(tokio::sync::Barrier::new(2));
    let attempts = Arc::new(AtomicU32::new(0));
    let policy = RetryPolicy {
        max_attempts: 5,
        ..RetryPolicy::default()
    };
    let mut tasks = Vec::new();
    for _ in 0..2 {
        let (db, barrier, attempts, policy) = (
            db.clone(),
            barrier.clone(),
            attempts.clone(),
            policy.clone(),
        );
        tasks.push(tokio::spawn(async move {
            increment(&db, &policy, &attempts, |attempt| {
                let barrier = barrier.clone();
                async move {
                    if attempt == 1 {
                        barrier.wait().await;
                    }
                }
            })
            .await
        }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(
        probe_value(&db).await,
        2,
        "both increments applied, none lost"
    );
    let attempts = attempts.load(Ordering::SeqCst);
    assert!(
        attempts >= 3,
        "one transaction must have been aborted and rerun (attempts: {attempts})"
    );
}

/// A writer holds SQLite's write lock longer than a second writer's busy timeout: the second gets
/// SQLITE_BUSY, backs off, and goes through once the lock is released.
async fn sqlite_busy_lock(stores: TestStores) {
    let holder_db = stores.cell("uk").database().clone();
    probe_table(&holder_db).await;
    let url = stores.url("uk").to_owned();
    let impatient = PoolSettings {
        sqlite_busy_timeout: Duration::from_millis(20),
        ..PoolSettings::default()
    };
    let contender = SqlCell::open(Region::parse("uk").unwrap(), &url, &impatient).unwrap();
    let policy = RetryPolicy {
        max_attempts: 100,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(40),
        ..RetryPolicy::default()
    };

    let mut holder = holder_db.begin_write().await.unwrap();
    sqlx::query("UPDATE retry_probe SET n = 100 WHERE id = 'x'")
        .execute(&mut *holder)
        .await
        .unwrap();

    let attempts = Arc::new(AtomicU32::new(0));
    let task = {
        let attempts = attempts.clone();
        let db = contender.database().clone();
        tokio::spawn(
            async move { increment(&db, &policy, &attempts, |_| std::future::ready(())).await },
        )
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    holder.commit().await.unwrap();
    task.await.unwrap().unwrap();

    assert_eq!(probe_value(&holder_db).await, 101);
    let attempts = attempts.load(Ordering::SeqCst);
    assert!(
        attempts > 1,
        "the contender must have hit the lock and retried (attempts: {attempts})"
    );
}
