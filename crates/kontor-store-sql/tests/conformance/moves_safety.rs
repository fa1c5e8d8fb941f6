//! Moves that must not go wrong quietly: the transaction date backfill leaves a fenced subject's
//! rows alone (and, on PostgreSQL at READ COMMITTED, a batch it locked before the fence commits
//! before it), a verification that differs twice ends the move `failed` and undone (also after a
//! crash in the undo), and a tenant moves between a SQLite cell and a PostgreSQL cell and back,
//! verified by the same per-table hashes.

#![expect(clippy::expect_used, clippy::panic, reason = "test cases fail loudly")]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kontor_store::{AccountStore, PaymentStore, StoreError, UserKeyStore, UserStore};
use kontor_store_sql::moves::{
    self, MoveCell, MoveError, MoveOptions, MovePhase, MoveRequest, Mover, Subject,
};
use kontor_store_sql::{PoolSettings, SqlCell, SqlKeyStore};
use kontor_test_support::{Backend, TestDatabase, TestStores};

use crate::moves::{Cells, populate, request, stop_at, total};
use crate::payments::new_payment;

/// Clears `transaction_date` on a tenant's rows, as rows written before the column existed.
async fn undate(cell: &SqlCell, tenant: &kontor_domain::TenantId) -> u64 {
    sqlx::query("UPDATE transactions SET transaction_date = NULL WHERE tenant_id = $1")
        .bind(tenant.as_str())
        .execute(cell.database().pool())
        .await
        .unwrap()
        .rows_affected()
}

async fn undated(cell: &SqlCell, tenant: &kontor_domain::TenantId) -> i64 {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM transactions WHERE tenant_id = $1 AND transaction_date IS NULL",
    )
    .bind(tenant.as_str())
    .fetch_one(cell.database().pool())
    .await
    .unwrap()
}

/// Backfills until a round fills nothing (at most 50 rounds).
async fn backfill(cell: &SqlCell) -> u64 {
    let mut filled = 0;
    for _ in 0..50 {
        match cell.backfill_transaction_dates(2).await.unwrap() {
            0 => return filled,
            n => filled += n,
        }
    }
    panic!("the backfill does not converge");
}

async fn only_move(cells: &Cells) -> String {
    sqlx::query_scalar("SELECT id FROM cell_moves WHERE finished_at IS NULL")
        .fetch_one(cells.stores.control.database().pool())
        .await
        .unwrap()
}

/// While a move fences a tenant in both cells, the worker's date backfill fills other tenants'
/// rows (a batch of fenced rows does not stall it) and leaves the fenced tenant's alone, in the
/// frozen source and in the target's copy; once the move is done, the target's rows are filled.
pub async fn the_date_backfill_leaves_a_fenced_subject_alone(stores: TestStores) {
    let cells = Cells::new(stores).await;
    let tenant = populate(&cells, &cells.de1.cell, &cells.de1.keys, 2).await;
    let other = populate(&cells, &cells.de1.cell, &cells.de1.keys, 2).await;
    assert_eq!(undate(&cells.de1.cell, &tenant.id).await, 10);
    assert_eq!(undate(&cells.de1.cell, &other.id).await, 10);
    let subject = Subject::Tenant(tenant.id.clone());
    stop_at(&cells, &subject, "fenced").await;
    assert_eq!(
        undated(&cells.de2.cell, &tenant.id).await,
        10,
        "copied undated"
    );

    assert_eq!(
        backfill(&cells.de1.cell).await,
        10,
        "the other tenant's rows"
    );
    assert_eq!(backfill(&cells.de2.cell).await, 0);
    assert_eq!(undated(&cells.de1.cell, &other.id).await, 0);
    assert_eq!(
        undated(&cells.de1.cell, &tenant.id).await,
        10,
        "the frozen source is not written"
    );
    assert_eq!(
        undated(&cells.de2.cell, &tenant.id).await,
        10,
        "the target's copy is the move's"
    );

    let id = only_move(&cells).await;
    let report = cells
        .mover(MoveOptions::default())
        .resume(&id)
        .await
        .unwrap();
    assert_eq!(report.phase, MovePhase::Done);
    assert!(report.tables.iter().all(moves::TableCheck::matches));
    assert_eq!(backfill(&cells.de2.cell).await, 10, "moved, then filled");
    assert_eq!(undated(&cells.de2.cell, &tenant.id).await, 0);
}

/// PostgreSQL at READ COMMITTED (the backfill's isolation, where SSI does not help): a backfill
/// batch written before the fence and committed after it must not be missed by the final pass.
/// The source's fence locks the subject's undated rows, so it waits for the batch to commit.
pub async fn a_backfill_batch_written_before_the_fence_is_not_lost(stores: TestStores) {
    if stores.backend != Backend::Postgres {
        return;
    }
    let cells = Cells::new(stores).await;
    let tenant = populate(&cells, &cells.de1.cell, &cells.de1.keys, 1).await;
    assert_eq!(undate(&cells.de1.cell, &tenant.id).await, 5);
    let subject = Subject::Tenant(tenant.id.clone());
    // The backfill's two statements (cell::accounts), without the commit yet: no fence exists.
    let mut batch = cells
        .de1
        .cell
        .database()
        .pool()
        .begin_with("BEGIN ISOLATION LEVEL READ COMMITTED")
        .await
        .unwrap();
    let ids: Vec<String> = sqlx::query_scalar(
        "SELECT id FROM transactions WHERE transaction_date IS NULL AND tenant_id = $1 \
         LIMIT 2 FOR UPDATE SKIP LOCKED",
    )
    .bind(tenant.id.as_str())
    .fetch_all(&mut *batch)
    .await
    .unwrap();
    assert_eq!(ids.len(), 2);
    let filled = sqlx::query(
        "UPDATE transactions SET transaction_date = COALESCE(booking_date, value_date, sort_date) \
         WHERE transaction_date IS NULL AND NOT EXISTS (SELECT 1 FROM move_fences f \
         WHERE f.tenant_id = transactions.tenant_id) AND id IN ($1, $2)",
    )
    .bind(&ids[0])
    .bind(&ids[1])
    .execute(&mut *batch)
    .await
    .unwrap();
    assert_eq!(filled.rows_affected(), 2);

    let hook: moves::FailureHook = Arc::new(|step: &str| step == "phase:verified");
    let mover = cells.mover(MoveOptions {
        hook: Some(hook),
        ..MoveOptions::default()
    });
    let moving = {
        let (mover, subject) = (mover.clone(), subject.clone());
        tokio::spawn(async move { mover.start(&request(subject)).await })
    };
    // The move reaches the switch (and its final pass is over) unless the fence waits for the
    // batch; give it ample time to get there.
    for _ in 0..60 {
        if moving.is_finished() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    batch.commit().await.unwrap();
    assert!(matches!(moving.await.unwrap(), Err(MoveError::Injected(_))));
    let checks = mover.compare(&subject, "de-1", "de-2").await.unwrap();
    for check in &checks {
        assert!(
            check.matches(),
            "the verified copy misses the batch: {check:?}"
        );
    }
    assert_eq!(undated(&cells.de2.cell, &tenant.id).await, 3);
}

/// A hook that tampers with the target's copy of `tenant` each time the final pass has been
/// applied (before its verification), and fails once at each step of `crash_at`.
fn tampering(
    target: &SqlCell,
    tenant: &kontor_domain::TenantId,
    crash_at: &'static [&'static str],
) -> (
    moves::FailureHook,
    Arc<AtomicUsize>,
    Arc<Mutex<Vec<String>>>,
) {
    let (pool, tenant) = (target.database().pool().clone(), tenant.to_string());
    let tampered = Arc::new(AtomicUsize::new(0));
    let crashed = Arc::new(Mutex::new(Vec::<String>::new()));
    let (count, seen) = (Arc::clone(&tampered), Arc::clone(&crashed));
    let hook: moves::FailureHook = Arc::new(move |step: &str| {
        if step == "applied" {
            // A row of the tenant's the source does not have, a new one each time (the second
            // final pass deletes the first, as a row gone at the source).
            let n = count.fetch_add(1, Ordering::SeqCst);
            let (pool, tenant) = (pool.clone(), tenant.clone());
            tokio::task::block_in_place(|| {
                tokio::runtime::Handle::current().block_on(async move {
                    sqlx::query(
                        "INSERT INTO events (id, tenant_id, user_id, type, data, created_at) \
                         VALUES ($1, $2, NULL, 'connection.active', '{}', 0)",
                    )
                    .bind(format!("evt_de_tampered{n}"))
                    .bind(tenant)
                    .execute(&pool)
                    .await
                    .expect("tamper with the target")
                })
            });
            return false;
        }
        let mut seen = seen.lock().expect("not poisoned");
        if crash_at.contains(&step) && !seen.iter().any(|s| s == step) {
            seen.push(step.to_owned());
            return true;
        }
        false
    });
    (hook, tampered, crashed)
}

/// A copy that still differs after the final pass ran twice: the move is recorded `failed` with
/// its checks, then undone (a crash in the undo is resumed): the tenant writes in the source
/// again, the target holds none of its rows, each key is in the source's key store only, and
/// the tenant can be moved afresh.
pub async fn a_move_whose_copy_differs_fails_and_is_undone(stores: TestStores) {
    let cells = Cells::new(stores).await;
    let tenant = populate(&cells, &cells.de1.cell, &cells.de1.keys, 2).await;
    let subject = Subject::Tenant(tenant.id.clone());
    let before = moves::row_counts(&cells.de1.cell, &subject).await.unwrap();
    let (hook, tampered, _) = tampering(&cells.de2.cell, &tenant.id, &["undo:keys"]);
    let mover = cells.mover(MoveOptions {
        hook: Some(hook),
        ..MoveOptions::default()
    });

    // The undo crashes: the journal already says `failed` (with the checks), not finished; the
    // tenant is still fenced.
    match mover.start(&request(subject.clone())).await {
        Err(MoveError::Injected(step)) => assert_eq!(step, "undo:keys"),
        other => panic!("expected the injected crash in the undo, got {other:?}"),
    }
    assert_eq!(tampered.load(Ordering::SeqCst), 2, "verified twice");
    let id = only_move(&cells).await;
    let record = cells.stores.control.cell_move(&id).await.unwrap();
    assert_eq!(record.phase, MovePhase::Failed);
    assert_eq!(record.finished_at, None, "not undone yet");
    let differing: Vec<&str> = record.differing_tables().iter().map(|t| t.table).collect();
    assert_eq!(differing, ["events"]);
    assert!(matches!(
        cells
            .de1
            .cell
            .create_payment(&new_payment(&tenant.id, &tenant.users[0]))
            .await,
        Err(StoreError::Moving { .. })
    ));

    // Resumed: undone, and reported as failed with the differing tables.
    match mover.resume(&id).await {
        Err(err @ MoveError::VerificationFailed { .. }) => {
            assert_eq!(err.code(), "move_verification_failed");
            let MoveError::VerificationFailed { move_id, tables } = err else {
                unreachable!()
            };
            assert_eq!(move_id, id);
            assert_eq!(tables.len(), 1);
            assert_eq!(tables[0].table, "events");
            // The stray row shows in the target's count (its content is never read: the hash
            // covers the rows the final pass knows).
            assert_eq!(tables[0].source_rows + 1, tables[0].target_rows);
            assert!(!tables[0].matches());
        }
        other => panic!("expected move_verification_failed, got {other:?}"),
    }
    let record = cells.stores.control.cell_move(&id).await.unwrap();
    assert_eq!(record.phase, MovePhase::Failed);
    assert!(record.finished_at.is_some());
    assert!(
        record
            .last_error
            .as_deref()
            .is_some_and(|e| e.starts_with("move_verification_failed")),
        "{record:?}"
    );
    assert_eq!(total(&cells.de2.cell, &subject).await, 0, "no copy left");
    assert_eq!(
        moves::row_counts(&cells.de1.cell, &subject).await.unwrap(),
        before
    );
    for user in &tenant.users {
        assert_eq!(cells.de2.keys.user_key(user).await.unwrap(), None);
        let kept = cells.de1.keys.user_key(user).await.unwrap();
        assert!(kept.is_some());
        let ensured = cells
            .de1
            .keys
            .ensure_user_key(user, "w1.k.other")
            .await
            .unwrap();
        assert_eq!(
            Some(ensured),
            kept,
            "the source's key store serves it again"
        );
    }
    cells
        .de1
        .cell
        .create_payment(&new_payment(&tenant.id, &tenant.users[0]))
        .await
        .unwrap();
    assert!(cells.stores.control.cell_routes().await.unwrap().is_empty());
    for cell in [&cells.de1, &cells.de2] {
        let fences: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM move_fences")
            .fetch_one(cell.cell.database().pool())
            .await
            .unwrap();
        assert_eq!(fences, 0, "{}", cell.name);
    }
    // Over: reported as it is, not aborted; the tenant moves afresh.
    assert!(matches!(
        mover.resume(&id).await,
        Err(MoveError::VerificationFailed { .. })
    ));
    assert_eq!(
        mover.abort(&id).await.err().map(|e| e.code()),
        Some("move_finished")
    );
    let report = cells
        .mover(MoveOptions::default())
        .start(&request(subject.clone()))
        .await
        .unwrap();
    assert_eq!(report.phase, MovePhase::Done);
    assert_eq!(total(&cells.de1.cell, &subject).await, 0);
}

/// A cell of the other backend than the stores' (`de-3`), or `None` without PostgreSQL.
async fn other_backend_cell(
    backend: Backend,
    dir: &std::path::Path,
) -> Option<(MoveCell, Vec<TestDatabase>)> {
    let (cell_db, keys_db) = match backend {
        Backend::Postgres => (
            TestDatabase::sqlite(dir, "cell-de-3"),
            TestDatabase::sqlite(dir, "keys-de-3"),
        ),
        Backend::Sqlite => (
            TestDatabase::postgres("moves_across_backends").await?,
            TestDatabase::postgres("moves_across_backends").await?,
        ),
    };
    let region = kontor_domain::Region::parse("de").unwrap();
    let settings = PoolSettings::default();
    let cell = SqlCell::open(region.clone(), &cell_db.url, &settings).unwrap();
    kontor_store::Schema::migrate(&cell).await.unwrap();
    let keys = SqlKeyStore::open(region, &keys_db.url, &settings).unwrap();
    kontor_store::Schema::migrate(&keys).await.unwrap();
    let moved = MoveCell {
        name: "de-3".into(),
        cell,
        keys,
    };
    Some((moved, vec![cell_db, keys_db]))
}

/// The "other cloud" case: a tenant moves from a cell on one backend to a cell on the other
/// (SQLite and PostgreSQL) and back, each time verified by the per-table content hashes, with
/// every row once and its sealed data opened with the moved key.
pub async fn a_tenant_moves_to_the_other_backend_and_back(stores: TestStores) {
    let dir = tempfile::tempdir().unwrap();
    let backend = stores.backend;
    let cells = Cells::new(stores).await;
    let Some((de3, _databases)) = other_backend_cell(backend, dir.path()).await else {
        return;
    };
    let mover = Mover::new(
        cells.stores.control.as_ref().clone(),
        vec![cells.de1.clone(), de3.clone()],
        MoveOptions {
            batch: 4,
            ..MoveOptions::default()
        },
    );
    let tenant = populate(&cells, &cells.de1.cell, &cells.de1.keys, 3).await;
    // NULLs of a text column too (rows from before transaction_date).
    undate(&cells.de1.cell, &tenant.id).await;
    let subject = Subject::Tenant(tenant.id.clone());
    let before = moves::row_counts(&cells.de1.cell, &subject).await.unwrap();
    let sealed = cells
        .de1
        .cell
        .account(&tenant.id, &tenant.accounts[0].1)
        .await
        .unwrap()
        .details;
    for (from, to) in [("de-1", "de-3"), ("de-3", "de-1")] {
        let report = mover
            .start(&MoveRequest {
                subject: subject.clone(),
                from: from.into(),
                to: to.into(),
                grace: Duration::ZERO,
            })
            .await
            .unwrap_or_else(|e| panic!("{from} -> {to}: {e}"));
        assert_eq!(report.phase, MovePhase::Done, "{from} -> {to}");
        assert_eq!(report.tables.len(), 13);
        for check in &report.tables {
            assert!(check.matches(), "{from} -> {to}: {check:?}");
        }
        let (source, target) = match to {
            "de-3" => (&cells.de1, &de3),
            _ => (&de3, &cells.de1),
        };
        assert_eq!(total(&source.cell, &subject).await, 0, "{from} -> {to}");
        assert_eq!(
            moves::row_counts(&target.cell, &subject).await.unwrap(),
            before,
            "{from} -> {to}"
        );
        let account = target
            .cell
            .account(&tenant.id, &tenant.accounts[0].1)
            .await
            .unwrap();
        assert_eq!(account.details, sealed, "{from} -> {to}");
        for user in &tenant.users {
            assert!(target.keys.user_key(user).await.unwrap().is_some());
            assert_eq!(source.keys.user_key(user).await.unwrap(), None);
        }
        target
            .cell
            .user(&tenant.id, &tenant.users[0])
            .await
            .unwrap();
    }
    assert_eq!(undated(&cells.de1.cell, &tenant.id).await, 15);
    // Home again, and writable.
    cells
        .de1
        .cell
        .create_payment(&new_payment(&tenant.id, &tenant.users[0]))
        .await
        .unwrap();
}
