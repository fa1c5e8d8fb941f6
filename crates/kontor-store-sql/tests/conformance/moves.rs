//! Online moves between two cells of one region (`kontor_store_sql::moves`): a whole tenant with
//! everything it has, writes made while copying, the freeze (refused writes, others unaffected),
//! a crash at every step, a user alone, the refusals, and (PostgreSQL) a writer that began before
//! the fence.

#![expect(
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    reason = "test cases fail loudly; the freeze measurement prints its figures"
)]

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kontor_crypto::{Keyring, WrappedKey};
use kontor_domain::event::{Event, EventType};
use kontor_domain::time::Timestamp;
use kontor_domain::{
    AccountId, DeliveryId, EventId, Region, TenantId, TransactionId, UserId, WebhookEndpointId,
};
use kontor_store::{
    AccountStore, DeliveryStore, EventStore, NewDelivery, PaymentStore, StoreError, UserKeyStore,
    UserStore,
};
use kontor_store_sql::moves::{
    self, MoveCell, MoveError, MoveOptions, MovePhase, MoveRequest, Mover, Subject,
};
use kontor_store_sql::{PoolSettings, SqlCell, SqlKeyStore};
use kontor_test_support::{Backend, TestDatabase, TestStores};
use time::macros::date;

use crate::accounts::{account, empty_write, txn};
use crate::connections::user_with_connection;
use crate::payments::new_payment;

fn de() -> Region {
    Region::parse("de").unwrap()
}

/// The test's cells: `de-1` (the stores' `de` cell), `de-2` (a second database of region `de`)
/// and `uk-1`.
pub(crate) struct Cells {
    pub(crate) stores: TestStores,
    pub(crate) de1: MoveCell,
    pub(crate) de2: MoveCell,
    uk1: MoveCell,
    keyring: Keyring,
    _databases: Vec<TestDatabase>,
    _dir: tempfile::TempDir,
}

impl Cells {
    pub(crate) async fn new(stores: TestStores) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("keys")).unwrap();
        let (cell_db, keys_db) = match stores.backend {
            Backend::Sqlite => (
                TestDatabase::sqlite(dir.path(), "cell-de-2"),
                TestDatabase::sqlite(&dir.path().join("keys"), "de-2"),
            ),
            Backend::Postgres => (
                TestDatabase::postgres("moves").await.unwrap(),
                TestDatabase::postgres("moves").await.unwrap(),
            ),
        };
        let settings = PoolSettings::default();
        let cell = SqlCell::open(de(), &cell_db.url, &settings).unwrap();
        kontor_store::Schema::migrate(&cell).await.unwrap();
        let keys = SqlKeyStore::open(de(), &keys_db.url, &settings).unwrap();
        kontor_store::Schema::migrate(&keys).await.unwrap();
        let de1 = MoveCell {
            name: "de-1".into(),
            cell: stores.cell("de").as_ref().clone(),
            keys: stores.key_store("de").as_ref().clone(),
        };
        let uk1 = MoveCell {
            name: "uk-1".into(),
            cell: stores.cell("uk").as_ref().clone(),
            keys: stores.key_store("uk").as_ref().clone(),
        };
        let de2 = MoveCell {
            name: "de-2".into(),
            cell,
            keys,
        };
        Self {
            stores,
            de1,
            de2,
            uk1,
            keyring: Keyring::new(&[("k1".into(), vec![7u8; 32])]).unwrap(),
            _databases: vec![cell_db, keys_db],
            _dir: dir,
        }
    }

    pub(crate) fn mover(&self, options: MoveOptions) -> Mover {
        Mover::new(
            self.stores.control.as_ref().clone(),
            vec![self.de1.clone(), self.de2.clone(), self.uk1.clone()],
            options,
        )
    }
}

/// A tenant's life in a cell: users with keys, connections, accounts with sealed details,
/// transactions, payments, events (one about no user) and webhook deliveries.
pub(crate) struct Tenant {
    pub(crate) id: TenantId,
    pub(crate) users: Vec<UserId>,
    pub(crate) accounts: Vec<(UserId, AccountId, String)>,
}

pub(crate) async fn populate(
    cells: &Cells,
    cell: &SqlCell,
    keys: &SqlKeyStore,
    users: usize,
) -> Tenant {
    let tenant = TenantId::generate();
    let mut out = Tenant {
        id: tenant.clone(),
        users: Vec::new(),
        accounts: Vec::new(),
    };
    for u in 0..users {
        let (user, connection) = user_with_connection(cell, &tenant).await;
        let (data_key, wrapped) = cells.keyring.new_data_key(user.as_str()).unwrap();
        keys.ensure_user_key(&user, wrapped.as_str()).await.unwrap();
        let mut write = empty_write(&connection);
        let mut acc = account(&tenant, &user, &connection, &format!("acc-{u}"));
        acc.id = AccountId::generate(&de());
        let iban = format!("DE89 3704 0044 0532 0130 0{u}");
        acc.details = data_key.seal(iban.as_bytes(), "account.details").unwrap();
        for t in 0..5 {
            write.inserts.push(booked(&acc, &format!("k-{u}-{t}")));
        }
        write.accounts.push(acc.clone());
        cell.apply_sync(&write).await.unwrap();
        out.accounts.push((user.clone(), acc.id.clone(), iban));
        cell.create_payment(&new_payment(&tenant, &user))
            .await
            .unwrap();
        let event = Event {
            id: EventId::generate(&de()),
            tenant_id: tenant.clone(),
            user_id: Some(user.clone()),
            event_type: EventType::ConnectionActive,
            data: serde_json::json!({"connection_id": connection.as_str()}),
            created_at: Timestamp::now(),
        };
        cell.append_event(&event).await.unwrap();
        cell.create_deliveries(&[NewDelivery {
            id: DeliveryId::generate(&de()),
            tenant_id: tenant.clone(),
            endpoint_id: WebhookEndpointId::generate(),
            event_id: event.id.clone(),
            ordering_key: user.to_string(),
            queued_at: Timestamp::now(),
            redelivery: true,
            created_at: Timestamp::now(),
        }])
        .await
        .unwrap();
        out.users.push(user);
    }
    // An event about no user belongs to the tenant.
    cell.append_event(&Event {
        id: EventId::generate(&de()),
        tenant_id: tenant.clone(),
        user_id: None,
        event_type: EventType::ConnectionActive,
        data: serde_json::json!({}),
        created_at: Timestamp::now(),
    })
    .await
    .unwrap();
    out
}

/// A booked transaction of a `de` cell on `acc`.
fn booked(acc: &kontor_store::AccountRow, key: &str) -> kontor_store::TransactionRow {
    let mut row = txn(
        acc,
        key,
        date!(2026 - 11 - 20),
        "-1.00",
        kontor_domain::transaction::TransactionStatus::Booked,
    );
    row.id = TransactionId::generate(&de());
    row
}

pub(crate) async fn total(cell: &SqlCell, subject: &Subject) -> i64 {
    moves::row_counts(cell, subject)
        .await
        .unwrap()
        .values()
        .sum()
}

/// Starts a move of `subject` from de-1 to de-2 that stops (an injected failure) at `step`.
pub(crate) async fn stop_at(cells: &Cells, subject: &Subject, step: &'static str) {
    let hook: moves::FailureHook = Arc::new(move |at: &str| at == step);
    let stopping = cells.mover(MoveOptions {
        hook: Some(hook),
        ..MoveOptions::default()
    });
    assert!(matches!(
        stopping.start(&request(subject.clone())).await,
        Err(MoveError::Injected(_))
    ));
}

pub(crate) fn request(subject: Subject) -> MoveRequest {
    MoveRequest {
        subject,
        from: "de-1".into(),
        to: "de-2".into(),
        grace: Duration::ZERO,
    }
}

/// Fails each named step the first time it is reached; records what it failed.
fn crash_once_at_every_step() -> (moves::FailureHook, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let failed = Arc::clone(&seen);
    let hook: moves::FailureHook = Arc::new(move |step: &str| {
        let mut seen = failed.lock().unwrap();
        if seen.iter().any(|s| s == step) {
            false
        } else {
            seen.push(step.to_owned());
            true
        }
    });
    (hook, seen)
}

/// What every test checks once a tenant moved: nothing at the source, everything in the
/// target, equal per table, sealed details opened with the key from the target's key store,
/// and no key left in the source's.
async fn assert_moved(
    cells: &Cells,
    tenant: &Tenant,
    before: &std::collections::HashMap<&'static str, i64>,
) {
    let subject = Subject::Tenant(tenant.id.clone());
    assert_eq!(
        total(&cells.de1.cell, &subject).await,
        0,
        "nothing left at the source"
    );
    let after = moves::row_counts(&cells.de2.cell, &subject).await.unwrap();
    assert_eq!(&after, before, "every row, once");
    for (user, account_id, iban) in &tenant.accounts {
        let wrapped = cells
            .de2
            .keys
            .user_key(user)
            .await
            .unwrap()
            .expect("key moved");
        let key = cells
            .keyring
            .unwrap_key(&WrappedKey::from_stored(wrapped), user.as_str())
            .unwrap();
        let stored = cells
            .de2
            .cell
            .account(&tenant.id, account_id)
            .await
            .unwrap();
        let opened = key.open(&stored.details, "account.details").unwrap();
        assert_eq!(opened, iban.as_bytes());
        assert_eq!(
            cells.de1.keys.user_key(user).await.unwrap(),
            None,
            "no key left behind"
        );
        assert!(
            matches!(
                cells.de1.keys.ensure_user_key(user, "w1.k.stale").await,
                Err(StoreError::Moving { .. })
            ),
            "a stale process makes no second key at the source"
        );
        cells.de2.cell.user(&tenant.id, user).await.unwrap();
    }
}

pub async fn a_tenant_moves_with_writes_made_while_copying(stores: TestStores) {
    let cells = Cells::new(stores).await;
    let tenant = populate(&cells, &cells.de1.cell, &cells.de1.keys, 3).await;
    let other = populate(&cells, &cells.de1.cell, &cells.de1.keys, 1).await;
    let subject = Subject::Tenant(tenant.id.clone());
    let other_before = moves::row_counts(&cells.de1.cell, &Subject::Tenant(other.id.clone()))
        .await
        .unwrap();

    // Stop after the copy, write meanwhile (new rows, a changed row, a deleted user), go on.
    let hook: moves::FailureHook = Arc::new(|step: &str| step == "phase:catching_up");
    let mover = cells.mover(MoveOptions {
        batch: 4,
        hook: Some(hook),
        ..MoveOptions::default()
    });
    let id = match mover.start(&request(subject.clone())).await {
        Err(MoveError::Injected(_)) => {
            let moves = cells.stores.control.database().pool().clone();
            let id: String = sqlx::query_scalar("SELECT id FROM cell_moves")
                .fetch_one(&moves)
                .await
                .unwrap();
            id
        }
        other => panic!("expected the injected stop, got {other:?}"),
    };
    let copied = moves::row_counts(&cells.de2.cell, &subject).await.unwrap();
    assert!(
        copied["transactions"] >= 15,
        "copied before catching up: {copied:?}"
    );
    let (late_user, _) = user_with_connection(cells.de1.cell.as_ref_cell(), &tenant.id).await;
    cells
        .de1
        .cell
        .create_payment(&new_payment(&tenant.id, &tenant.users[0]))
        .await
        .unwrap();
    cells
        .de1
        .cell
        .delete_user(&tenant.id, &tenant.users[2], None)
        .await
        .unwrap();
    let tenant = Tenant {
        accounts: tenant.accounts[..2].to_vec(),
        users: vec![tenant.users[0].clone(), tenant.users[1].clone(), late_user],
        id: tenant.id,
    };
    let before = moves::row_counts(&cells.de1.cell, &subject).await.unwrap();

    let mover = cells.mover(MoveOptions {
        batch: 4,
        ..MoveOptions::default()
    });
    let report = mover.resume(&id).await.unwrap();
    assert_eq!(report.phase, MovePhase::Done);
    assert_eq!(report.tables.len(), 13);
    for check in &report.tables {
        assert!(check.matches(), "{check:?}");
    }
    assert!(
        report
            .tables
            .iter()
            .any(|c| c.table == "transactions" && c.target_rows == 10)
    );
    assert_moved(&cells, &tenant, &before).await;

    // The routes send the tenant's rows of de-1 to de-2; another tenant stays.
    let routes = cells.stores.control.cell_routes().await.unwrap();
    assert_eq!(
        moves::current_cell(&routes, &tenant.id, None, "de-1"),
        "de-2"
    );
    assert_eq!(
        moves::current_cell(&routes, &tenant.id, Some(&tenant.users[0]), "de-1"),
        "de-2"
    );
    assert_eq!(
        moves::current_cell(&routes, &other.id, None, "de-1"),
        "de-1"
    );
    assert_eq!(
        moves::row_counts(&cells.de1.cell, &Subject::Tenant(other.id.clone()))
            .await
            .unwrap(),
        other_before,
        "another tenant's rows are untouched"
    );
    // Writes land in the target once switched; erasure works there with the moved key.
    cells
        .de2
        .cell
        .create_payment(&new_payment(&tenant.id, &tenant.users[0]))
        .await
        .unwrap();
    assert!(
        cells
            .de2
            .keys
            .shred_user_key(&tenant.users[0])
            .await
            .unwrap()
    );
    assert_eq!(
        cells.de2.keys.user_key(&tenant.users[0]).await.unwrap(),
        None
    );
}

/// `&SqlCell` as the helpers' `&dyn CellStore`.
trait AsCell {
    fn as_ref_cell(&self) -> &dyn kontor_store::CellStore;
}
impl AsCell for SqlCell {
    fn as_ref_cell(&self) -> &dyn kontor_store::CellStore {
        self
    }
}

pub async fn a_frozen_subject_is_refused_and_others_write_on(stores: TestStores) {
    let cells = Cells::new(stores).await;
    let tenant = populate(&cells, &cells.de1.cell, &cells.de1.keys, 2).await;
    let other = populate(&cells, &cells.de1.cell, &cells.de1.keys, 1).await;
    let accepted = cells
        .de1
        .cell
        .create_payment(&new_payment(&tenant.id, &tenant.users[0]))
        .await
        .unwrap();
    let subject = Subject::Tenant(tenant.id.clone());
    // Stop right after the source's fence is in place: the tenant is frozen.
    let hook: moves::FailureHook = Arc::new(|step: &str| step == "fenced");
    let mover = cells.mover(MoveOptions {
        hook: Some(hook),
        ..MoveOptions::default()
    });
    assert!(matches!(
        mover.start(&request(subject.clone())).await,
        Err(MoveError::Injected(_))
    ));
    let before = moves::row_counts(&cells.de1.cell, &subject).await.unwrap();

    let refused = [
        cells
            .de1
            .cell
            .create_payment(&new_payment(&tenant.id, &tenant.users[0]))
            .await
            .err(),
        cells
            .de1
            .cell
            .delete_user(&tenant.id, &tenant.users[1], None)
            .await
            .err(),
        user_with_connection_result(&cells.de1.cell, &tenant.id)
            .await
            .err(),
    ];
    for error in refused {
        let error = error.expect("a frozen tenant's write is refused");
        assert!(matches!(error, StoreError::Moving { .. }), "{error:?}");
        assert!(
            error.is_unavailable(),
            "retryable: the client is told to retry later"
        );
    }
    // A payment's step (a compare-and-set at READ COMMITTED on PostgreSQL) reads the fence after
    // its row lock: refused too, the payment unchanged.
    let step = kontor_store::PaymentChange::phase(
        &[kontor_domain::payment::PaymentPhase::Accepted],
        kontor_domain::payment::PaymentPhase::Initiating,
        Timestamp::now(),
    );
    assert!(matches!(
        cells.de1.cell.advance_payment(&accepted.id, &step).await,
        Err(StoreError::Moving { .. })
    ));
    assert_eq!(
        cells
            .de1
            .cell
            .payment_secrets(&accepted.id)
            .await
            .unwrap()
            .payment
            .phase,
        kontor_domain::payment::PaymentPhase::Accepted
    );
    let mut sync = empty_write(&kontor_domain::ConnectionId::generate(&de()));
    sync.connection_id = first_connection(&cells.de1.cell, &tenant.id).await;
    assert!(matches!(
        cells.de1.cell.apply_sync(&sync).await,
        Err(StoreError::Moving { .. })
    ));
    assert_eq!(
        moves::row_counts(&cells.de1.cell, &subject).await.unwrap(),
        before,
        "refused writes change nothing"
    );
    // Reads go on; another tenant writes on in both cells; the frozen tenant's connections are
    // not handed to workers.
    cells
        .de1
        .cell
        .user(&tenant.id, &tenant.users[0])
        .await
        .unwrap();
    cells
        .de1
        .cell
        .create_payment(&new_payment(&other.id, &other.users[0]))
        .await
        .unwrap();
    let (fresh, _) =
        user_with_connection(cells.de2.cell.as_ref_cell(), &TenantId::generate()).await;
    assert!(!fresh.as_str().is_empty());
    let connection = first_connection(&cells.de1.cell, &tenant.id).await;
    assert!(
        !kontor_store::ConnectionStore::claim(
            &cells.de1.cell,
            &connection,
            "worker",
            Timestamp::now(),
            Timestamp::now()
        )
        .await
        .unwrap(),
        "a fenced connection is not claimed"
    );
    // The frozen source still lists the tenant; the target's copy is hidden from tenant-wide
    // lists until the switch, and neither cell hands the tenant's events to the dispatcher.
    let users = |cell: &SqlCell| {
        let (cell, tenant) = (cell.clone(), tenant.id.clone());
        async move {
            cell.list_users(&tenant, None, 10)
                .await
                .unwrap()
                .items
                .len()
        }
    };
    assert_eq!(users(&cells.de1.cell).await, 2);
    assert_eq!(users(&cells.de2.cell).await, 0);
    let all = kontor_domain::list::ListFilter::<kontor_domain::ConnectionStatus> {
        user: None,
        status: None,
        bank: None,
        created_after: None,
        created_before: None,
    };
    assert!(
        kontor_store::ConnectionStore::list_connections(
            &cells.de2.cell,
            &tenant.id,
            &all,
            None,
            10
        )
        .await
        .unwrap()
        .items
        .is_empty()
    );
    assert!(
        cells
            .de2
            .cell
            .list_events(&tenant.id, &kontor_store::EventFilter::default(), None, 10)
            .await
            .unwrap()
            .items
            .is_empty()
    );
    for cell in [&cells.de1.cell, &cells.de2.cell] {
        let waiting = cell.undispatched_events(100).await.unwrap();
        assert!(
            waiting.iter().all(|e| e.tenant_id != tenant.id),
            "fenced events wait"
        );
    }
    assert!(
        cells
            .de1
            .cell
            .undispatched_events(100)
            .await
            .unwrap()
            .iter()
            .any(|e| e.tenant_id == other.id),
        "another tenant's events are dispatched"
    );

    let id: String = sqlx::query_scalar("SELECT id FROM cell_moves")
        .fetch_one(cells.stores.control.database().pool())
        .await
        .unwrap();
    let report = cells
        .mover(MoveOptions::default())
        .resume(&id)
        .await
        .unwrap();
    assert_eq!(report.phase, MovePhase::Done);
    assert_moved(&cells, &tenant, &before).await;
}

async fn user_with_connection_result(
    cell: &SqlCell,
    tenant: &TenantId,
) -> Result<kontor_store::StoredUser, StoreError> {
    cell.create_user(&crate::users::new_user(tenant, "late", "de"))
        .await
}

async fn first_connection(cell: &SqlCell, tenant: &TenantId) -> kontor_domain::ConnectionId {
    let id: String =
        sqlx::query_scalar("SELECT id FROM connections WHERE tenant_id = $1 ORDER BY id LIMIT 1")
            .bind(tenant.as_str())
            .fetch_one(cell.database().pool())
            .await
            .unwrap();
    kontor_domain::ConnectionId::parse(&id).unwrap()
}

pub async fn a_move_survives_a_crash_at_every_step(stores: TestStores) {
    let cells = Cells::new(stores).await;
    let tenant = populate(&cells, &cells.de1.cell, &cells.de1.keys, 3).await;
    let subject = Subject::Tenant(tenant.id.clone());
    let before = moves::row_counts(&cells.de1.cell, &subject).await.unwrap();
    let (hook, failed) = crash_once_at_every_step();
    let mover = cells.mover(MoveOptions {
        batch: 4,
        hook: Some(hook),
        ..MoveOptions::default()
    });
    let mut outcome = mover.start(&request(subject.clone())).await;
    let id: String = sqlx::query_scalar("SELECT id FROM cell_moves")
        .fetch_one(cells.stores.control.database().pool())
        .await
        .unwrap();
    let mut resumes = 0;
    let report = loop {
        match outcome {
            Ok(report) => break report,
            Err(MoveError::Injected(_)) => {
                resumes += 1;
                assert!(resumes < 200, "the move never ends");
                outcome = mover.resume(&id).await;
            }
            Err(other) => panic!("unexpected failure: {other:?}"),
        }
    };
    assert_eq!(report.phase, MovePhase::Done);
    let failed = failed.lock().unwrap().clone();
    let phases: HashSet<&str> = failed
        .iter()
        .filter_map(|s| s.strip_prefix("phase:"))
        .collect();
    for phase in [
        "planned",
        "copying",
        "catching_up",
        "frozen",
        "verified",
        "switched",
        "cleaning",
    ] {
        assert!(
            phases.contains(phase),
            "no crash before {phase}: {failed:?}"
        );
    }
    for step in [
        "fenced",
        "keys",
        "switched",
        "batch:transactions",
        "cleaned:transactions",
    ] {
        assert!(
            failed.iter().any(|s| s == step),
            "no crash at {step}: {failed:?}"
        );
    }
    let record = cells.stores.control.cell_move(&id).await.unwrap();
    assert_eq!(record.phase, MovePhase::Done);
    assert!(record.verification.is_some());
    assert_moved(&cells, &tenant, &before).await;
}

pub async fn a_user_moves_alone(stores: TestStores) {
    let cells = Cells::new(stores).await;
    let tenant = populate(&cells, &cells.de1.cell, &cells.de1.keys, 2).await;
    let (moving, staying) = (tenant.users[0].clone(), tenant.users[1].clone());
    let subject = Subject::User {
        tenant: tenant.id.clone(),
        user: moving.clone(),
    };
    let before = moves::row_counts(&cells.de1.cell, &subject).await.unwrap();
    let staying_before = moves::row_counts(
        &cells.de1.cell,
        &Subject::User {
            tenant: tenant.id.clone(),
            user: staying.clone(),
        },
    )
    .await
    .unwrap();
    let report = cells
        .mover(MoveOptions::default())
        .start(&request(subject.clone()))
        .await
        .unwrap();
    assert_eq!(report.phase, MovePhase::Done);
    assert_eq!(total(&cells.de1.cell, &subject).await, 0);
    assert_eq!(
        moves::row_counts(&cells.de2.cell, &subject).await.unwrap(),
        before
    );
    assert!(
        before["transactions"] == 5 && before["webhook_deliveries"] == 1,
        "{before:?}"
    );
    assert_eq!(
        moves::row_counts(
            &cells.de1.cell,
            &Subject::User {
                tenant: tenant.id.clone(),
                user: staying.clone()
            }
        )
        .await
        .unwrap(),
        staying_before
    );
    // The tenant's event about no user stays with the tenant.
    let tenant_events: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE tenant_id = $1 AND user_id IS NULL")
            .bind(tenant.id.as_str())
            .fetch_one(cells.de1.cell.database().pool())
            .await
            .unwrap();
    assert_eq!(tenant_events, 1);
    let routes = cells.stores.control.cell_routes().await.unwrap();
    assert_eq!(
        moves::current_cell(&routes, &tenant.id, Some(&moving), "de-1"),
        "de-2"
    );
    assert_eq!(
        moves::current_cell(&routes, &tenant.id, Some(&staying), "de-1"),
        "de-1"
    );
    assert!(cells.de2.keys.user_key(&moving).await.unwrap().is_some());
    assert!(cells.de1.keys.user_key(&staying).await.unwrap().is_some());
    assert_eq!(cells.de1.keys.user_key(&moving).await.unwrap(), None);
}

pub async fn moves_are_refused_across_regions_to_the_same_cell_and_twice(stores: TestStores) {
    let cells = Cells::new(stores).await;
    let tenant = populate(&cells, &cells.de1.cell, &cells.de1.keys, 1).await;
    let subject = Subject::Tenant(tenant.id.clone());
    let mover = cells.mover(MoveOptions::default());
    let code = |r: Result<moves::MoveRecord, MoveError>| r.err().map(|e| e.code());
    let mut across = request(subject.clone());
    across.to = "uk-1".into();
    assert_eq!(code(mover.plan(&across).await), Some("move_across_regions"));
    let mut same = request(subject.clone());
    same.to = "de-1".into();
    assert_eq!(code(mover.plan(&same).await), Some("move_to_same_cell"));
    let mut unknown = request(subject.clone());
    unknown.to = "de-9".into();
    assert_eq!(code(mover.plan(&unknown).await), Some("unknown_cell"));
    let open: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM cell_moves")
        .fetch_one(cells.stores.control.database().pool())
        .await
        .unwrap();
    assert_eq!(open, 0, "refused moves record nothing");

    mover.plan(&request(subject.clone())).await.unwrap();
    assert_eq!(
        code(mover.plan(&request(subject.clone())).await),
        Some("move_in_progress")
    );
    let user = Subject::User {
        tenant: tenant.id.clone(),
        user: tenant.users[0].clone(),
    };
    assert_eq!(
        code(mover.plan(&request(user)).await),
        Some("move_in_progress")
    );
    assert_eq!(
        total(&cells.de2.cell, &subject).await,
        0,
        "nothing copied by a plan"
    );
}

/// PostgreSQL's SSI: a write transaction that read "no fence" before the fence committed, and
/// commits after the final pass's snapshot, must not commit (or the final pass would have
/// missed its write).
pub async fn a_writer_that_began_before_the_fence_is_not_lost(stores: TestStores) {
    if stores.backend != Backend::Postgres {
        return;
    }
    let cells = Cells::new(stores).await;
    let tenant = populate(&cells, &cells.de1.cell, &cells.de1.keys, 1).await;
    let subject = Subject::Tenant(tenant.id.clone());
    let pool = cells.de1.cell.database().pool().clone();
    let mut writer = pool
        .begin_with("BEGIN ISOLATION LEVEL SERIALIZABLE")
        .await
        .unwrap();
    // What every write path does first (cell::fences::guard), then its write.
    let fenced: Option<String> = sqlx::query_scalar(
        "SELECT state FROM move_fences WHERE tenant_id = $1 AND (user_id IS NULL OR user_id = $2) LIMIT 1",
    )
    .bind(tenant.id.as_str())
    .bind(tenant.users[0].as_str())
    .fetch_optional(&mut *writer)
    .await
    .unwrap();
    assert_eq!(fenced, None);
    sqlx::query(
        "INSERT INTO events (id, tenant_id, user_id, type, data, created_at) \
         VALUES ($1, $2, $3, 'connection.active', '{}', $4)",
    )
    .bind(EventId::generate(&de()).as_str())
    .bind(tenant.id.as_str())
    .bind(tenant.users[0].as_str())
    .bind(Timestamp::now().unix_micros())
    .execute(&mut *writer)
    .await
    .unwrap();

    // Move up to the switch (stop before it, so the source still holds the rows).
    let hook: moves::FailureHook = Arc::new(|step: &str| step == "phase:verified");
    let mover = cells.mover(MoveOptions {
        hook: Some(hook),
        ..MoveOptions::default()
    });
    assert!(matches!(
        mover.start(&request(subject.clone())).await,
        Err(MoveError::Injected(_))
    ));
    let committed = writer.commit().await;
    let source = moves::row_counts(&cells.de1.cell, &subject).await.unwrap();
    let target = moves::row_counts(&cells.de2.cell, &subject).await.unwrap();
    match committed {
        Err(e) => {
            assert!(
                e.to_string().contains("40001") || e.to_string().contains("serializ"),
                "{e}"
            );
            assert_eq!(source, target, "the verified copy is the source");
        }
        Ok(()) => panic!("a writer that began before the fence committed after the final pass"),
    }
}

/// Runs `sql` (its `$1…` bound to `binds`) on the database at `url` from a thread and a
/// connection of its own: a writer the move does not know of, run from a move's hook (which is
/// synchronous).
fn write_aside(url: &str, sql: &'static str, binds: Vec<String>) {
    let url = url.to_owned();
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                use sqlx::Connection;
                let mut conn = sqlx::AnyConnection::connect(&url).await.unwrap();
                let mut query = sqlx::query(sql);
                for value in binds {
                    query = query.bind(value);
                }
                let done = query.execute(&mut conn).await.unwrap();
                assert_eq!(done.rows_affected(), 1, "{sql}");
            });
    })
    .join()
    .unwrap();
}

/// Under the freeze the target's rows are not read again in full: the verification works from
/// what the passes read of the target before the freeze, reads back every row the final pass
/// wrote or deleted, and counts every table. A row another writer added to the target after
/// that earlier read shows in the count; a row altered after the final pass wrote it, in the
/// read-back. Either fails the verification before the switch; the move then runs the final
/// pass once more against the target read afresh, which removes a stray row, and fails (undone)
/// when the target still differs.
pub async fn the_verification_reads_the_target_after_the_final_pass(stores: TestStores) {
    let cells = Cells::new(stores).await;
    let target_url = cells._databases[0].url.clone();
    let tenant = populate(&cells, &cells.de1.cell, &cells.de1.keys, 2).await;
    let subject = Subject::Tenant(tenant.id.clone());

    // A row of the tenant added to the target once its rows were read, before the final pass.
    let (url, id) = (target_url.clone(), tenant.id.as_str().to_owned());
    let hook: moves::FailureHook = Arc::new(move |step: &str| {
        if step == "fenced" {
            write_aside(
                &url,
                "INSERT INTO events (id, tenant_id, user_id, type, data, created_at) \
                 VALUES ($1, $2, NULL, 'connection.active', '{}', 0)",
                vec![EventId::generate(&de()).as_str().to_owned(), id.clone()],
            );
        }
        false
    });
    let mover = cells.mover(MoveOptions {
        hook: Some(hook),
        ..MoveOptions::default()
    });
    let report = mover.start(&request(subject.clone())).await.unwrap();
    let verifications = report.freeze_steps.iter().filter(|(s, _)| *s == "verify");
    assert_eq!(
        verifications.count(),
        2,
        "the stray row failed the first verification: {:?}",
        report.freeze_steps
    );
    assert_eq!(report.phase, MovePhase::Done);
    let events = report.tables.iter().find(|c| c.table == "events").unwrap();
    assert!(
        events.matches(),
        "the second pass removed the stray row: {events:?}"
    );

    // Another tenant: a row written at the source after the passes, so the final pass writes
    // it, altered in the target before the verification reads it back.
    let other = populate(&cells, &cells.de1.cell, &cells.de1.keys, 1).await;
    let subject = Subject::Tenant(other.id.clone());
    stop_at(&cells, &subject, "phase:frozen").await;
    let late = Event {
        id: EventId::generate(&de()),
        tenant_id: other.id.clone(),
        user_id: Some(other.users[0].clone()),
        event_type: EventType::ConnectionActive,
        data: serde_json::json!({"late": true}),
        created_at: Timestamp::now(),
    };
    cells.de1.cell.append_event(&late).await.unwrap();
    let (url, id) = (target_url, late.id.as_str().to_owned());
    let hook: moves::FailureHook = Arc::new(move |step: &str| {
        if step == "applied" {
            write_aside(
                &url,
                "UPDATE events SET data = '{\"late\":false}' WHERE id = $1",
                vec![id.clone()],
            );
        }
        false
    });
    let resumed = cells
        .mover(MoveOptions {
            hook: Some(hook),
            ..MoveOptions::default()
        })
        .resume(&failed_move_id(&cells, &other.id).await)
        .await;
    let Err(MoveError::VerificationFailed { move_id, tables }) = resumed else {
        panic!("the altered row fails the move: {resumed:?}");
    };
    let differing: Vec<&str> = tables.iter().map(|c| c.table).collect();
    assert_eq!(differing, ["events"]);
    let record = cells.stores.control.cell_move(&move_id).await.unwrap();
    assert_eq!(record.phase, MovePhase::Failed, "not switched, undone");
    cells
        .de1
        .cell
        .user(&other.id, &other.users[0])
        .await
        .unwrap();
}

/// The id of the tenant's move.
async fn failed_move_id(cells: &Cells, tenant: &TenantId) -> String {
    sqlx::query_scalar("SELECT id FROM cell_moves WHERE tenant_id = $1")
        .bind(tenant.as_str())
        .fetch_one(cells.stores.control.database().pool())
        .await
        .unwrap()
}

/// The freeze of a tenant with 100,000 transactions on PostgreSQL (debug build): how long its
/// writes are paused. A measurement, not a test: `cargo test -p kontor-store-sql --test
/// conformance postgres::freeze_of_100k_transactions -- --ignored --nocapture`.
pub async fn freeze_of_100k_transactions(stores: TestStores) {
    if stores.backend != Backend::Postgres {
        return;
    }
    let cells = Cells::new(stores).await;
    let tenant = TenantId::generate();
    let (user, connection) = user_with_connection(cells.de1.cell.as_ref_cell(), &tenant).await;
    let mut acc = account(&tenant, &user, &connection, "big");
    acc.id = AccountId::generate(&de());
    let started = std::time::Instant::now();
    for chunk in 0..100 {
        let mut write = empty_write(&connection);
        if chunk == 0 {
            write.accounts.push(acc.clone());
        }
        for t in 0..1000 {
            let mut row = booked(&acc, &format!("k-{chunk}-{t}"));
            row.details = "s1.".to_owned() + &"x".repeat(160);
            write.inserts.push(row);
        }
        cells.de1.cell.apply_sync(&write).await.unwrap();
    }
    println!("populated 100k transactions in {:?}", started.elapsed());
    let started = std::time::Instant::now();
    let report = cells
        .mover(MoveOptions {
            batch: 1000,
            ..MoveOptions::default()
        })
        .start(&request(Subject::Tenant(tenant.clone())))
        .await
        .unwrap();
    println!(
        "moved in {:?}; pause (fence to target open) {:?}: {:?}; final pass {:?}; tables {:?}",
        started.elapsed(),
        report.pause,
        report.freeze_steps,
        report.final_pass,
        report
            .tables
            .iter()
            .map(|t| (t.table, t.target_rows))
            .collect::<Vec<_>>()
    );
    assert_eq!(report.phase, MovePhase::Done);
}

/// Every table of a migrated cell either moves with its tenant or user (and the move knows how
/// its rows belong to one) or is listed as belonging to no tenant: a table a migration adds
/// without saying which fails here.
pub async fn every_cell_table_is_attributed(stores: TestStores) {
    let sql = match stores.backend {
        Backend::Sqlite => {
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        }
        Backend::Postgres => {
            "SELECT CAST(table_name AS TEXT) FROM information_schema.tables \
             WHERE table_schema = 'public'"
        }
    };
    let tables: Vec<String> = sqlx::query_scalar(sql)
        .fetch_all(stores.cell("de").database().pool())
        .await
        .unwrap();
    let (moved, unmoved) = moves::table_attribution();
    assert!(tables.len() > 10, "{tables:?}");
    for table in &tables {
        assert!(
            moved.contains(&table.as_str()) || unmoved.contains(&table.as_str()),
            "cell table {table} is neither moved nor listed as belonging to no tenant"
        );
    }
    for table in moved {
        assert!(
            tables.iter().any(|t| t == table),
            "{table} is not a cell table"
        );
    }
}

/// A move stopped while frozen is aborted: the source takes writes again and keeps its keys, the
/// target holds nothing, and the tenant can be moved afresh. A switched move cannot be aborted.
pub async fn an_unswitched_move_is_aborted_cleanly(stores: TestStores) {
    let cells = Cells::new(stores).await;
    let tenant = populate(&cells, &cells.de1.cell, &cells.de1.keys, 2).await;
    let subject = Subject::Tenant(tenant.id.clone());
    let before = moves::row_counts(&cells.de1.cell, &subject).await.unwrap();
    stop_at(&cells, &subject, "phase:verified").await;
    let id: String = sqlx::query_scalar("SELECT id FROM cell_moves")
        .fetch_one(cells.stores.control.database().pool())
        .await
        .unwrap();
    assert!(
        cells
            .de2
            .keys
            .user_key(&tenant.users[0])
            .await
            .unwrap()
            .is_some()
    );

    let mover = cells.mover(MoveOptions::default());
    let report = mover.abort(&id).await.unwrap();
    assert_eq!(report.phase, MovePhase::Aborted);
    assert_eq!(
        mover.abort(&id).await.err().map(|e| e.code()),
        Some("move_finished")
    );
    assert_eq!(
        total(&cells.de2.cell, &subject).await,
        0,
        "the copy is gone"
    );
    assert_eq!(
        moves::row_counts(&cells.de1.cell, &subject).await.unwrap(),
        before
    );
    for user in &tenant.users {
        assert_eq!(cells.de2.keys.user_key(user).await.unwrap(), None);
        assert!(cells.de1.keys.user_key(user).await.unwrap().is_some());
    }
    cells
        .de1
        .cell
        .create_payment(&new_payment(&tenant.id, &tenant.users[0]))
        .await
        .unwrap();
    // No longer marked moved: the source key store hands out (and would make) keys again.
    let kept = cells.de1.keys.user_key(&tenant.users[0]).await.unwrap();
    let ensured = cells
        .de1
        .keys
        .ensure_user_key(&tenant.users[0], "w1.k.other")
        .await
        .unwrap();
    assert_eq!(Some(ensured), kept);
    assert!(cells.stores.control.cell_routes().await.unwrap().is_empty());

    // Afresh; a switched move is not aborted, only finished.
    let hook: moves::FailureHook = Arc::new(|step: &str| step == "phase:cleaning");
    let stopping = cells.mover(MoveOptions {
        hook: Some(hook),
        ..MoveOptions::default()
    });
    assert!(matches!(
        stopping.start(&request(subject.clone())).await,
        Err(MoveError::Injected(_))
    ));
    let again: String = sqlx::query_scalar("SELECT id FROM cell_moves WHERE finished_at IS NULL")
        .fetch_one(cells.stores.control.database().pool())
        .await
        .unwrap();
    assert_eq!(
        mover.abort(&again).await.err().map(|e| e.code()),
        Some("move_already_switched")
    );
    let report = mover.resume(&again).await.unwrap();
    assert_eq!(report.phase, MovePhase::Done);
    assert_eq!(total(&cells.de1.cell, &subject).await, 0);
    assert_eq!(
        moves::row_counts(&cells.de2.cell, &subject).await.unwrap()["payments"],
        before["payments"] + 1
    );
}

/// An erasure that reaches the source's key store after the key was copied (its routes still
/// pointed there) is carried to the target by the cleanup: no copy of the key survives.
pub async fn a_key_shredded_at_the_source_during_the_move_is_shredded_at_the_target(
    stores: TestStores,
) {
    let cells = Cells::new(stores).await;
    let tenant = populate(&cells, &cells.de1.cell, &cells.de1.keys, 2).await;
    let subject = Subject::Tenant(tenant.id.clone());
    stop_at(&cells, &subject, "phase:verified").await;
    let (erased, kept) = (&tenant.users[0], &tenant.users[1]);
    assert!(
        cells.de2.keys.user_key(erased).await.unwrap().is_some(),
        "copied"
    );
    assert!(cells.de1.keys.shred_user_key(erased).await.unwrap());
    let id: String = sqlx::query_scalar("SELECT id FROM cell_moves")
        .fetch_one(cells.stores.control.database().pool())
        .await
        .unwrap();
    let report = cells
        .mover(MoveOptions::default())
        .resume(&id)
        .await
        .unwrap();
    assert_eq!(report.phase, MovePhase::Done);
    assert_eq!(cells.de2.keys.user_key(erased).await.unwrap(), None);
    assert_eq!(cells.de1.keys.user_key(erased).await.unwrap(), None);
    let imported = cells
        .de2
        .keys
        .import_user_key(erased, "w1.k.back")
        .await
        .unwrap();
    assert!(!imported, "the target remembers the shred");
    assert!(cells.de2.keys.user_key(kept).await.unwrap().is_some());
}
