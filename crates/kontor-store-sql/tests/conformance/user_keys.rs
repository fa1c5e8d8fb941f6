//! The key stores (users' data keys, apart from the cells) and the erasure ledger in the control
//! database: one key per user even when racing, shredding for good, taking over the keys an
//! earlier release kept in the cell, and a ledger that keeps the first erasure.

use kontor_domain::time::Timestamp;
use kontor_domain::{Region, TenantId, UserId};
use kontor_store::{Erasure, StoreError, UserKeyStore, UserStore};
use kontor_test_support::{Backend, TestStores};

use crate::connections::user_with_connection;

fn uk() -> Region {
    Region::parse("uk").unwrap()
}

pub async fn one_key_per_user_even_when_racing(stores: TestStores) {
    let keys = stores.key_store("uk");
    let user = UserId::generate(&uk());
    assert_eq!(keys.user_key(&user).await.unwrap(), None);
    let (a, b) = tokio::join!(
        keys.ensure_user_key(&user, "w1.k.key-a"),
        keys.ensure_user_key(&user, "w1.k.key-b")
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a, b, "both callers must end up with the same key");
    assert_eq!(keys.user_key(&user).await.unwrap(), Some(a));
}

pub async fn a_shredded_key_is_gone_for_good(stores: TestStores) {
    let keys = stores.key_store("uk");
    let (user, other) = (UserId::generate(&uk()), UserId::generate(&uk()));
    keys.ensure_user_key(&user, "w1.k.user").await.unwrap();
    keys.ensure_user_key(&other, "w1.k.other").await.unwrap();

    assert!(keys.shred_user_key(&user).await.unwrap());
    assert_eq!(keys.user_key(&user).await.unwrap(), None);
    assert_eq!(
        keys.user_key(&other).await.unwrap().as_deref(),
        Some("w1.k.other"),
        "only the erased user's key goes"
    );
    // Shredding again finds nothing; an erased user never gets a key again, made or imported.
    assert!(!keys.shred_user_key(&user).await.unwrap());
    assert!(matches!(
        keys.ensure_user_key(&user, "w1.k.again").await,
        Err(StoreError::NotFound)
    ));
    assert!(!keys.import_user_key(&user, "w1.k.legacy").await.unwrap());
    assert_eq!(keys.user_key(&user).await.unwrap(), None);
    // A key of another region's user is refused before any SQL runs.
    let de = UserId::generate(&Region::parse("de").unwrap());
    assert!(matches!(
        keys.ensure_user_key(&de, "w1.k.de").await,
        Err(StoreError::WrongCell { .. })
    ));
    assert!(matches!(
        keys.shred_user_key(&de).await,
        Err(StoreError::WrongCell { .. })
    ));

    // Nothing of the key is left in the key store's table, not even overwritten.
    let pool = stores.key_store("uk").database().pool().clone();
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM user_keys WHERE user_id = $1")
        .bind(user.as_str())
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rows, 0);
    if stores.backend == Backend::Sqlite {
        // secure_delete zeroed the row in the file, and the checkpoint emptied the WAL that
        // held its earlier page images.
        let url = stores.url("keys:uk");
        let path = url.strip_prefix("sqlite://").unwrap();
        let mut bytes = std::fs::read(path).unwrap();
        bytes.extend(std::fs::read(format!("{path}-wal")).unwrap_or_default());
        let contains = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
        assert!(
            !contains(b"w1.k.user"),
            "the shredded key is still in the key store's files"
        );
        assert!(
            contains(b"w1.k.other"),
            "the same scan finds a key that was not shredded"
        );
    }
}

pub async fn keys_kept_in_the_cell_are_taken_over(stores: TestStores) {
    let cell = stores.cell("uk");
    let keys = stores.key_store("uk");
    let tenant = TenantId::generate();
    let (user, _) = user_with_connection(cell.as_ref(), &tenant).await;
    let (fresh, _) = user_with_connection(cell.as_ref(), &tenant).await;
    sqlx::query("UPDATE users SET data_key = 'w1.k.legacy' WHERE id = $1")
        .bind(user.as_str())
        .execute(&stores.raw_cell_pool("uk"))
        .await
        .unwrap();
    let legacy = cell.legacy_data_keys(None, 10).await.unwrap();
    assert_eq!(legacy, vec![(user.clone(), "w1.k.legacy".to_owned())]);
    assert_eq!(
        cell.legacy_data_keys(Some(&user), 10).await.unwrap(),
        vec![]
    );
    assert_eq!(cell.user_data_key(&fresh).await.unwrap(), None);

    assert!(keys.import_user_key(&user, "w1.k.legacy").await.unwrap());
    assert!(!keys.import_user_key(&user, "w1.k.other").await.unwrap());
    assert_eq!(
        keys.user_key(&user).await.unwrap().as_deref(),
        Some("w1.k.legacy"),
        "an import never replaces a key"
    );
    // Cleared only while the cell still holds what was copied.
    assert!(
        !cell
            .clear_legacy_data_key(&user, "w1.k.other")
            .await
            .unwrap()
    );
    assert!(
        cell.clear_legacy_data_key(&user, "w1.k.legacy")
            .await
            .unwrap()
    );
    assert!(
        !cell
            .clear_legacy_data_key(&user, "w1.k.legacy")
            .await
            .unwrap()
    );
    assert_eq!(cell.user_data_key(&user).await.unwrap(), None);
    assert_eq!(cell.legacy_data_keys(None, 10).await.unwrap(), vec![]);
}

pub async fn the_ledger_keeps_the_first_erasure(stores: TestStores) {
    let control = stores.control();
    let tenant = TenantId::generate();
    let mut users: Vec<UserId> = (0..3).map(|_| UserId::generate(&uk())).collect();
    users.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    let first = Timestamp::from_unix_micros(1_000_000);
    for user in &users {
        control
            .record_erasure(&Erasure {
                user_id: user.clone(),
                tenant_id: tenant.clone(),
                region: uk(),
                erased_at: first,
            })
            .await
            .unwrap();
    }
    // Recorded again (a retried erasure): the first time stays.
    control
        .record_erasure(&Erasure {
            user_id: users[0].clone(),
            tenant_id: tenant.clone(),
            region: uk(),
            erased_at: Timestamp::from_unix_micros(2_000_000),
        })
        .await
        .unwrap();
    let page = control.erasures(None, 2).await.unwrap();
    assert_eq!(page.len(), 2);
    assert_eq!(page[0].user_id, users[0]);
    assert_eq!(page[0].erased_at, first);
    assert_eq!(page[0].tenant_id, tenant);
    assert_eq!(page[0].region, uk());
    let rest = control.erasures(Some(&page[1].user_id), 2).await.unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].user_id, users[2]);
}
