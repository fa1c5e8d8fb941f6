//! Accounts, balances and transactions: one sync's write applied atomically, the read side's
//! filters and newest-first paging, and erasure of everything a user had.

use kontor_domain::account::{AccountKind, Balance, BalanceKind};
use kontor_domain::event::{Event, EventType};
use kontor_domain::time::Timestamp;
use kontor_domain::transaction::{DedupKey, TransactionStatus};
use kontor_domain::{
    AccountId, ConnectionId, Currency, Money, Region, TenantId, TransactionId, UserId,
};
use kontor_store::{
    AccountRow, AccountStore, BalanceRow, CellStore, ChangeKind, ChangeStore, ConnectionStore,
    EventFilter, EventStore, ReadsChange, StoreError, SyncBookkeeping, SyncWrite,
    TransactionFilter, TransactionRow, UserStore,
};
use kontor_test_support::{Backend, TestStores};
use time::macros::date;

use crate::connections::user_with_connection;

pub fn eur(value: &str) -> Money {
    Money::parse(value, Currency::parse("EUR").unwrap()).unwrap()
}

pub fn account(
    tenant: &TenantId,
    user: &UserId,
    connection: &ConnectionId,
    bank_id: &str,
) -> AccountRow {
    let now = Timestamp::now();
    AccountRow {
        id: AccountId::generate(&Region::parse("uk").unwrap()),
        tenant_id: tenant.clone(),
        user_id: user.clone(),
        connection_id: connection.clone(),
        bank_account_id: bank_id.into(),
        currency: Currency::parse("EUR").unwrap(),
        kind: AccountKind::Current,
        details: format!("sealed-{bank_id}"),
        created_at: now,
        updated_at: now,
    }
}

pub fn txn(
    account: &AccountRow,
    key: &str,
    day: time::Date,
    amount: &str,
    status: TransactionStatus,
) -> TransactionRow {
    let now = Timestamp::now();
    TransactionRow {
        id: TransactionId::generate(&Region::parse("uk").unwrap()),
        tenant_id: account.tenant_id.clone(),
        account_id: account.id.clone(),
        key: DedupKey::from_stored(key.into()),
        status,
        booking_date: (status == TransactionStatus::Booked).then_some(day),
        value_date: Some(day),
        sort_date: day,
        transaction_date: Some(day),
        amount: eur(amount),
        details: format!("sealed-{key}"),
        created_at: now,
        updated_at: now,
    }
}

fn bookkeeping() -> SyncBookkeeping {
    SyncBookkeeping {
        synced_at: Some(Timestamp::now()),
        next_sync_at: None,
        reads: ReadsChange::UsedUp {
            day: date!(2026 - 11 - 26),
            allowance: 1,
        },
        sync_failures: 0,
        error: None,
        session: None,
    }
}

pub fn empty_write(connection: &ConnectionId) -> SyncWrite {
    SyncWrite {
        connection_id: connection.clone(),
        accounts: vec![],
        balances: vec![],
        inserts: vec![],
        updates: vec![],
        removals: vec![],
        bookkeeping: bookkeeping(),
        events: vec![],
    }
}

/// Stores accounts with these bank ids under a connection, as a first sync would.
pub async fn write_accounts(
    cell: &dyn CellStore,
    tenant: &TenantId,
    user: &UserId,
    connection: &ConnectionId,
    bank_ids: &[&str],
) {
    let mut write = empty_write(connection);
    write.accounts = bank_ids
        .iter()
        .map(|id| account(tenant, user, connection, id))
        .collect();
    cell.apply_sync(&write).await.unwrap();
}

pub async fn a_sync_is_written_atomically_and_read_back(stores: TestStores) {
    let cell = stores.cell("uk");
    let tenant = TenantId::generate();
    let (user, connection) = user_with_connection(cell.as_ref(), &tenant).await;
    let current = account(&tenant, &user, &connection, "acc-1");
    let balance = BalanceRow {
        account_id: current.id.clone(),
        balance: Balance {
            kind: BalanceKind::ClosingBooked,
            amount: eur("-12345678901234.56"),
            credit_limit_included: Some(false),
            reference_date: Some(date!(2026 - 11 - 25)),
            last_change: None,
        },
        fetched_at: Timestamp::now(),
    };
    let rows = vec![
        txn(
            &current,
            "id:1",
            date!(2026 - 11 - 01),
            "-3.50",
            TransactionStatus::Booked,
        ),
        txn(
            &current,
            "id:2",
            date!(2026 - 11 - 02),
            "2500.00",
            TransactionStatus::Booked,
        ),
        txn(
            &current,
            "id:3",
            date!(2026 - 11 - 02),
            "-20.00",
            TransactionStatus::Pending,
        ),
        txn(
            &current,
            "id:4",
            date!(2026 - 10 - 15),
            "-9.99",
            TransactionStatus::Booked,
        ),
    ];
    let mut write = empty_write(&connection);
    write.accounts = vec![current.clone()];
    write.balances = vec![(current.id.clone(), vec![balance.clone()])];
    write.inserts = rows.clone();
    write.events = vec![Event::untyped(
        tenant.clone(),
        &user,
        EventType::TransactionsUpdated,
        serde_json::json!({"added": 4}),
    )];
    cell.apply_sync(&write).await.unwrap();

    assert_eq!(cell.account(&tenant, &current.id).await.unwrap(), current);
    assert_eq!(
        cell.balances(&tenant, &current.id).await.unwrap(),
        vec![balance]
    );
    assert!(matches!(
        cell.balances(&TenantId::generate(), &current.id).await,
        Err(StoreError::NotFound)
    ));
    let listed = cell
        .list_accounts(&tenant, Some(&user), None, 10)
        .await
        .unwrap();
    assert_eq!(listed.items, vec![current.clone()]);
    assert_eq!(
        cell.list_events(&tenant, &EventFilter::default(), None, 10)
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    let counters = cell.sync_counters(&connection).await.unwrap();
    assert_eq!(counters.unattended_reads, 1);
    assert_eq!(counters.reads_day, Some(date!(2026 - 11 - 26)));

    // Newest first, paged by (date, id), filtered by date and status.
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = cell
            .list_transactions(
                &tenant,
                &current.id,
                &TransactionFilter::default(),
                after.as_ref(),
                1,
            )
            .await
            .unwrap();
        seen.extend(page.items.iter().map(|t| t.key.as_str().to_owned()));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(seen.len(), 4);
    assert_eq!(seen[3], "id:4", "oldest last: {seen:?}");
    assert!(seen[..2].contains(&"id:2".to_owned()) && seen[..2].contains(&"id:3".to_owned()));

    let november = TransactionFilter {
        from: Some(date!(2026 - 11 - 01)),
        to: Some(date!(2026 - 11 - 01)),
        status: None,
    };
    let page = cell
        .list_transactions(&tenant, &current.id, &november, None, 10)
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0], rows[0]);
    let pending = TransactionFilter {
        status: Some(TransactionStatus::Pending),
        ..TransactionFilter::default()
    };
    assert_eq!(
        cell.list_transactions(&tenant, &current.id, &pending, None, 10)
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    let theirs = cell
        .list_transactions(
            &TenantId::generate(),
            &current.id,
            &TransactionFilter::default(),
            None,
            10,
        )
        .await
        .unwrap();
    assert!(theirs.items.is_empty());

    // What a later sync compares with: from a date, plus every pending one.
    let window = cell
        .transactions_for_sync(&current.id, Some(date!(2026 - 11 - 02)))
        .await
        .unwrap();
    let keys: Vec<&str> = window.iter().map(|t| t.key.as_str()).collect();
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert_eq!(
        cell.transactions_for_sync(&current.id, None)
            .await
            .unwrap()
            .len(),
        4
    );
}

pub async fn later_syncs_update_remove_and_keep_ids(stores: TestStores) {
    let cell = stores.cell("uk");
    let tenant = TenantId::generate();
    let (user, connection) = user_with_connection(cell.as_ref(), &tenant).await;
    let acc = account(&tenant, &user, &connection, "acc-1");
    let pending = txn(
        &acc,
        "id:p",
        date!(2026 - 11 - 02),
        "-20.00",
        TransactionStatus::Pending,
    );
    let doomed = txn(
        &acc,
        "id:x",
        date!(2026 - 11 - 03),
        "-5.00",
        TransactionStatus::Pending,
    );
    let mut first = empty_write(&connection);
    first.accounts = vec![acc.clone()];
    first.inserts = vec![pending.clone(), doomed.clone()];
    cell.apply_sync(&first).await.unwrap();

    // The same bank account again, with a new hub id proposed: the stored id wins.
    let mut renamed = account(&tenant, &user, &connection, "acc-1");
    renamed.details = "sealed-new-name".into();
    let mut booked = pending.clone();
    booked.key = DedupKey::from_stored("id:b".into());
    booked.status = TransactionStatus::Booked;
    booked.booking_date = Some(date!(2026 - 11 - 04));
    booked.sort_date = date!(2026 - 11 - 04);
    let mut second = empty_write(&connection);
    second.accounts = vec![renamed];
    second.updates = vec![booked.clone()];
    second.removals = vec![doomed.id.clone()];
    cell.apply_sync(&second).await.unwrap();

    let accounts = cell.connection_accounts(&connection).await.unwrap();
    assert_eq!(accounts.len(), 1);
    assert_eq!(accounts[0].id, acc.id);
    assert_eq!(accounts[0].details, "sealed-new-name");
    let all = cell.transactions_for_sync(&acc.id, None).await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].id, pending.id);
    assert_eq!(all[0].status, TransactionStatus::Booked);
    assert_eq!(all[0].key.as_str(), "id:b");
}

/// The sync's lease lives on the connection's row, and its holder renews it while the sync runs,
/// beside the sync's own write. A write that ran longer than the renewal period (a first sync of
/// thousands of rows on a loaded database) used to lose every attempt to a renewal committed
/// meanwhile: its closing updates of the connection row could not serialize (PostgreSQL, SQLSTATE
/// 40001) and the write gave up after its retries (`retries_exhausted{op="apply_sync"}`).
pub async fn a_long_sync_write_outlasts_its_lease_renewals(stores: TestStores) {
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

    let cell = stores.cell("uk");
    let tenant = TenantId::generate();
    let (user, connection) = user_with_connection(cell.as_ref(), &tenant).await;
    let owner = "worker-1/sync/test";
    let now = Timestamp::now();
    assert!(
        cell.claim(&connection, owner, now.plus_seconds(60), now)
            .await
            .unwrap()
    );
    let acc = account(&tenant, &user, &connection, "acc-1");
    let mut write = empty_write(&connection);
    write.accounts = vec![acc.clone()];
    write.inserts = (0..1500)
        .map(|n| {
            txn(
                &acc,
                &format!("id:{n}"),
                date!(2026 - 11 - 01),
                "-1.00",
                TransactionStatus::Booked,
            )
        })
        .collect();
    let done = AtomicBool::new(false);
    let renewed = AtomicU32::new(0);
    // The holder's renewals, far more often than a real holder's, each in its own transaction.
    let renewing = async {
        while !done.load(Ordering::Relaxed) {
            if let Ok(true) = cell
                .renew(&connection, owner, Timestamp::now().plus_seconds(60))
                .await
            {
                renewed.fetch_add(1, Ordering::Relaxed);
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    };
    let writing = async {
        let result = cell.apply_sync(&write).await;
        done.store(true, Ordering::Relaxed);
        result
    };
    let (result, ()) = tokio::join!(writing, renewing);
    result.unwrap();
    assert!(
        renewed.load(Ordering::Relaxed) > 0,
        "the lease was renewed while the sync wrote"
    );
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM transactions WHERE account_id = $1")
        .bind(acc.id.as_str())
        .fetch_one(&stores.raw_cell_pool("uk"))
        .await
        .unwrap();
    assert_eq!(stored, 1500);
    assert_eq!(cell.change_head(&tenant, &connection).await.unwrap(), 1500);
}

pub async fn a_failed_write_changes_nothing(stores: TestStores) {
    let cell = stores.cell("uk");
    let tenant = TenantId::generate();
    let (user, connection) = user_with_connection(cell.as_ref(), &tenant).await;
    let acc = account(&tenant, &user, &connection, "acc-1");
    let row = txn(
        &acc,
        "id:1",
        date!(2026 - 11 - 01),
        "-1.00",
        TransactionStatus::Booked,
    );
    let mut write = empty_write(&connection);
    write.accounts = vec![acc.clone()];
    // The same dedup key twice violates uniqueness half-way through the write.
    let mut twin = row.clone();
    twin.id = TransactionId::generate(&Region::parse("uk").unwrap());
    write.inserts = vec![row, twin];
    write.events = vec![Event::untyped(
        tenant.clone(),
        &user,
        EventType::TransactionsUpdated,
        serde_json::json!({}),
    )];
    assert!(cell.apply_sync(&write).await.is_err());
    assert!(
        cell.connection_accounts(&connection)
            .await
            .unwrap()
            .is_empty(),
        "the account insert was rolled back"
    );
    assert!(
        cell.list_events(&tenant, &EventFilter::default(), None, 10)
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert_eq!(
        cell.sync_counters(&connection)
            .await
            .unwrap()
            .unattended_reads,
        0
    );
}

pub async fn erasing_a_user_erases_everything_of_theirs(stores: TestStores) {
    let cell = stores.cell("uk");
    let tenant = TenantId::generate();
    let (user, connection) = user_with_connection(cell.as_ref(), &tenant).await;
    let (keep_user, keep_connection) = user_with_connection(cell.as_ref(), &tenant).await;
    for (u, c) in [(&user, &connection), (&keep_user, &keep_connection)] {
        let acc = account(&tenant, u, c, "acc-1");
        let mut write = empty_write(c);
        write.accounts = vec![acc.clone()];
        write.balances = vec![(
            acc.id.clone(),
            vec![BalanceRow {
                account_id: acc.id.clone(),
                balance: Balance {
                    kind: BalanceKind::Expected,
                    amount: eur("1.00"),
                    credit_limit_included: None,
                    reference_date: None,
                    last_change: None,
                },
                fetched_at: Timestamp::now(),
            }],
        )];
        write.inserts = vec![txn(
            &acc,
            "id:1",
            date!(2026 - 11 - 01),
            "-1.00",
            TransactionStatus::Booked,
        )];
        cell.apply_sync(&write).await.unwrap();
    }
    // A data key an earlier release kept in the cell goes with the user.
    sqlx::query("UPDATE users SET data_key = 'w1.k.key' WHERE id = $1")
        .bind(user.as_str())
        .execute(&stores.raw_cell_pool("uk"))
        .await
        .unwrap();
    let erased = Event::untyped(
        tenant.clone(),
        &user,
        EventType::UserErased,
        serde_json::json!({"user_id": user}),
    );
    cell.delete_user(&tenant, &user, Some(&erased))
        .await
        .unwrap();

    let pool = stores.raw_cell_pool("uk");
    for (table, column) in [
        ("users", "id"),
        ("connections", "user_id"),
        ("accounts", "user_id"),
    ] {
        let sql = format!("SELECT COUNT(*) FROM {table} WHERE {column} = $1");
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(user.as_str())
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(n, 0, "{table} still holds the user's rows");
    }
    let remaining: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM transactions")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(remaining, 1, "only the other user's transaction is left");
    let balances: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM balances")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(balances, 1);
    let events = cell
        .list_events(
            &tenant,
            &EventFilter {
                event_type: Some(EventType::UserErased),
                ..EventFilter::default()
            },
            None,
            10,
        )
        .await
        .unwrap();
    assert_eq!(events.items.len(), 1);
    assert!(matches!(
        cell.user_data_key(&user).await,
        Err(StoreError::NotFound)
    ));
}

/// Rows the previous release wrote (no `transaction_date`) are filled by the backfill in
/// batches, by the precedence rule over the stored dates; a row that has one keeps it; a run
/// with nothing left fills nothing; and before the backfill a read already shows the same date.
pub async fn transaction_dates_are_backfilled_in_batches(stores: TestStores) {
    let cell = stores.cell("uk");
    let tenant = TenantId::generate();
    let (user, connection) = user_with_connection(cell.as_ref(), &tenant).await;
    let current = account(&tenant, &user, &connection, "acc-1");
    let mut write = empty_write(&connection);
    write.accounts = vec![current.clone()];
    // As the previous release writes them: no transaction_date.
    let old = |key: &str, booking, value, first_seen| {
        let mut row = txn(
            &current,
            key,
            first_seen,
            "-1.00",
            if Option::<time::Date>::is_none(&booking) {
                TransactionStatus::Pending
            } else {
                TransactionStatus::Booked
            },
        );
        row.booking_date = booking;
        row.value_date = value;
        row.transaction_date = None;
        row
    };
    let booked = old(
        "old:booked",
        Some(date!(2026 - 11 - 02)),
        Some(date!(2026 - 11 - 03)),
        date!(2026 - 11 - 02),
    );
    // A Berlin Group pending entry: a value date in the future, no booking date.
    let pending_valued = old(
        "old:pending-valued",
        None,
        Some(date!(2026 - 12 - 01)),
        date!(2026 - 12 - 01),
    );
    // No date from the bank at all: the day the hub first saw it.
    let undated = old("old:undated", None, None, date!(2026 - 11 - 20));
    let booked_late = old(
        "old:booked-late",
        Some(date!(2026 - 11 - 05)),
        None,
        date!(2026 - 11 - 05),
    );
    let also_old = old(
        "old:booked-2",
        Some(date!(2026 - 11 - 06)),
        Some(date!(2026 - 11 - 06)),
        date!(2026 - 11 - 06),
    );
    // Written by this release, pending, with the bank's own transaction date before its value
    // date: kept as it is, although the rule over the stored dates would give the value date.
    let mut new = txn(
        &current,
        "new:1",
        date!(2026 - 11 - 07),
        "-2.00",
        TransactionStatus::Pending,
    );
    new.transaction_date = Some(date!(2026 - 10 - 31));
    let expected = [
        (booked.id.clone(), date!(2026 - 11 - 02)),
        (pending_valued.id.clone(), date!(2026 - 12 - 01)),
        (undated.id.clone(), date!(2026 - 11 - 20)),
        (booked_late.id.clone(), date!(2026 - 11 - 05)),
        (also_old.id.clone(), date!(2026 - 11 - 06)),
        (new.id.clone(), date!(2026 - 10 - 31)),
    ];
    write.inserts = vec![booked, pending_valued, undated, booked_late, also_old, new];
    cell.apply_sync(&write).await.unwrap();

    let read = |cell: std::sync::Arc<kontor_store_sql::SqlCell>| {
        let (tenant, account) = (tenant.clone(), current.id.clone());
        async move {
            cell.list_transactions(&tenant, &account, &TransactionFilter::default(), None, 50)
                .await
                .unwrap()
                .items
        }
    };
    let before = read(cell.clone()).await;
    assert_eq!(
        before
            .iter()
            .filter(|t| t.transaction_date.is_none())
            .count(),
        5
    );
    for (id, day) in &expected {
        let row = before.iter().find(|t| &t.id == id).unwrap();
        assert_eq!(row.happened_on(), *day, "read before the backfill: {row:?}");
    }

    let mut batches = Vec::new();
    loop {
        let filled = cell.backfill_transaction_dates(2).await.unwrap();
        batches.push(filled);
        if filled == 0 {
            break;
        }
        assert!(
            batches.len() < 10,
            "the backfill does not converge: {batches:?}"
        );
    }
    assert_eq!(batches, vec![2, 2, 1, 0]);
    let after = read(cell.clone()).await;
    for (id, day) in &expected {
        let row = after.iter().find(|t| &t.id == id).unwrap();
        assert_eq!(
            row.transaction_date,
            Some(*day),
            "after the backfill: {row:?}"
        );
        assert_eq!(row.happened_on(), *day);
    }
    // Idempotent: nothing left, nothing changes.
    assert_eq!(cell.backfill_transaction_dates(100).await.unwrap(), 0);
}

pub async fn a_large_sync_is_written_in_runs_with_its_change_log(stores: TestStores) {
    let cell = stores.cell("uk");
    let tenant = TenantId::generate();
    let (user, connection) = user_with_connection(cell.as_ref(), &tenant).await;
    let current = account(&tenant, &user, &connection, "acc-big");
    // 603 transactions = 2 × 256 + 64 + 16 + 8 + 2 + 1 on PostgreSQL (9 × 64 + … on SQLite);
    // their change log 512 + 64 + 16 + 8 + 2 + 1 (4 × 128 + … on SQLite).
    let rows: Vec<TransactionRow> = (0..603)
        .map(|n| {
            let mut row = txn(
                &current,
                &format!("id:{n}"),
                date!(2026 - 01 - 01) + time::Duration::days(n),
                &format!("-{n}.25"),
                if n % 3 == 0 {
                    TransactionStatus::Pending
                } else {
                    TransactionStatus::Booked
                },
            );
            if n % 5 == 0 {
                row.transaction_date = None;
                row.value_date = None;
            }
            row
        })
        .collect();
    let mut write = empty_write(&connection);
    write.accounts = vec![current.clone()];
    write.inserts = rows.clone();
    cell.apply_sync(&write).await.unwrap();

    let stored = cell.transactions_for_sync(&current.id, None).await.unwrap();
    assert_eq!(stored.len(), rows.len());
    for row in &rows {
        let found = stored.iter().find(|s| s.id == row.id).unwrap();
        assert_eq!(found, row);
    }
    assert_eq!(cell.change_head(&tenant, &connection).await.unwrap(), 603);
    let logged = cell.changes_after(&connection, 0, 1000).await.unwrap();
    let seqs: Vec<i64> = logged.iter().map(|c| c.seq).collect();
    assert_eq!(seqs, (1..=603).collect::<Vec<_>>());
    for (change, row) in logged.iter().zip(&rows) {
        assert_eq!(change.transaction_id, row.id);
        assert_eq!(change.account_id, current.id);
        assert_eq!(change.kind, ChangeKind::Added);
    }
}

/// The transaction page is an index range scan in the page's order, stopping after the page,
/// on tables without statistics (a cell just filled, as after a tenant's first sync). It was
/// not: PostgreSQL served it from `transactions_by_transaction_date`, which matches the tenant
/// and the account but not the order, and sorted all of the account's rows for every page
/// (docs/BENCHMARKS.md, "Issue 12: plans without statistics"). The SQL is the store's
/// `list_transactions`, first page and a later one with a date filter, values inlined.
pub async fn the_transaction_page_is_read_in_index_order(stores: TestStores) {
    let cell = stores.cell("uk");
    let tenant = TenantId::generate();
    let (user, connection) = user_with_connection(cell.as_ref(), &tenant).await;
    let big = account(&tenant, &user, &connection, "acc-page");
    let small = account(&tenant, &user, &connection, "acc-other");
    let rows: Vec<TransactionRow> = (0..400)
        .map(|n| {
            txn(
                if n % 4 == 0 { &small } else { &big },
                &format!("id:{n}"),
                date!(2025 - 01 - 01) + time::Duration::days(n % 200),
                "-1.00",
                TransactionStatus::Booked,
            )
        })
        .collect();
    let mut write = empty_write(&connection);
    write.accounts = vec![big.clone(), small.clone()];
    write.inserts = rows;
    cell.apply_sync(&write).await.unwrap();

    let columns = "id, tenant_id, account_id, dedup_key, status, booking_date, value_date, \
                   sort_date, transaction_date, amount_minor, currency, details, created_at, \
                   updated_at";
    let first = format!(
        "SELECT {columns} FROM transactions WHERE tenant_id = '{tenant}' AND account_id = '{}' \
         ORDER BY sort_date DESC, id DESC LIMIT 51",
        big.id
    );
    let later = format!(
        "SELECT {columns} FROM transactions WHERE tenant_id = '{tenant}' AND account_id = '{}' \
         AND sort_date >= '2025-02-01' AND (sort_date, id) < ('2025-05-01', 'txn_uk_zzz') \
         ORDER BY sort_date DESC, id DESC LIMIT 51",
        big.id
    );
    let pool = stores.raw_cell_pool("uk");
    for sql in [first, later] {
        let plan: Vec<String> = if matches!(stores.backend, Backend::Postgres) {
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("EXPLAIN {sql}")))
                .fetch_all(&pool)
                .await
                .unwrap()
        } else {
            sqlx::query(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}")))
                .fetch_all(&pool)
                .await
                .unwrap()
                .iter()
                .map(|row| sqlx::Row::try_get::<String, _>(row, "detail").unwrap())
                .collect()
        };
        let plan = plan.join("\n");
        assert!(
            plan.contains("transactions_by_account_page"),
            "the page is not read through its index:\n{plan}"
        );
        assert!(
            !plan.contains("Sort") && !plan.contains("TEMP B-TREE"),
            "the page's rows are sorted after reading them:\n{plan}"
        );
    }
}
