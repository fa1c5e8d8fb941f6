//! Users in a cell: creation, tenant scoping, uniqueness, paging, erasure.

use std::collections::HashSet;

use kontor_domain::time::Timestamp;
use kontor_domain::user::ExternalId;
use kontor_domain::{Region, TenantId, UserId};
use kontor_store::{
    ExternalIdLookup, NewStoredUser, StoreError, StoredExternalId, UnsealedUser, UserStore,
};
use kontor_test_support::TestStores;

/// A stand-in for the blind index the service computes (the store only compares it).
pub fn index_of(tenant: &TenantId, external: &str) -> String {
    format!("xi1.{tenant}.{}", external.len())
        + &external
            .bytes()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
}

pub fn new_user(tenant: &TenantId, external: &str, region: &str) -> NewStoredUser {
    NewStoredUser {
        id: UserId::generate(&Region::parse(region).unwrap()),
        tenant_id: tenant.clone(),
        external_id_index: index_of(tenant, external),
        external_id_sealed: format!("s1.sealed-{}", external.len()),
        data_key: None,
        created_at: Timestamp::now(),
        unconverted_match: ExternalId::parse(external).unwrap(),
    }
}

async fn find(
    store: &dyn UserStore,
    tenant: &TenantId,
    external: &str,
) -> Option<kontor_store::StoredUser> {
    let index = index_of(tenant, external);
    let plain = ExternalId::parse(external).unwrap();
    store
        .user_by_external_id(
            tenant,
            ExternalIdLookup {
                index: &index,
                plain: &plain,
            },
        )
        .await
        .unwrap()
}

fn uk(stores: &TestStores) -> &dyn UserStore {
    stores.cell("uk").as_ref()
}

pub async fn user_round_trips(stores: TestStores) {
    let tenant = TenantId::generate();
    let new = new_user(&tenant, "customer-1", "uk");
    let created = uk(&stores).create_user(&new).await.unwrap();
    assert_eq!(created.id, new.id);

    let read = uk(&stores).user(&tenant, &new.id).await.unwrap();
    assert_eq!(read, created);
    assert_eq!(read.region().as_str(), "uk");

    assert_eq!(
        read.external_id,
        StoredExternalId::Sealed(new.external_id_sealed.clone())
    );
    let by_ext = find(uk(&stores), &tenant, "customer-1").await;
    assert_eq!(by_ext, Some(created));
    assert_eq!(find(uk(&stores), &tenant, "nobody").await, None);
}

pub async fn users_are_scoped_by_tenant(stores: TestStores) {
    let a = TenantId::generate();
    let b = TenantId::generate();
    let user = uk(&stores)
        .create_user(&new_user(&a, "shared-ref", "uk"))
        .await
        .unwrap();

    assert!(matches!(
        uk(&stores).user(&b, &user.id).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(find(uk(&stores), &b, "shared-ref").await, None);
    assert!(
        uk(&stores)
            .list_users(&b, None, 10)
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert!(matches!(
        uk(&stores).delete_user(&b, &user.id, None).await,
        Err(StoreError::NotFound)
    ));
    // Still there for its owner.
    assert_eq!(uk(&stores).user(&a, &user.id).await.unwrap(), user);
}

pub async fn external_id_is_unique_per_tenant_and_cell(stores: TestStores) {
    let a = TenantId::generate();
    let b = TenantId::generate();
    uk(&stores)
        .create_user(&new_user(&a, "dup", "uk"))
        .await
        .unwrap();
    let again = uk(&stores).create_user(&new_user(&a, "dup", "uk")).await;
    assert!(
        matches!(again, Err(StoreError::Conflict { .. })),
        "{again:?}"
    );
    // Other tenants, and the same tenant in another region, may use the same reference.
    uk(&stores)
        .create_user(&new_user(&b, "dup", "uk"))
        .await
        .unwrap();
    stores
        .cell("de")
        .create_user(&new_user(&a, "dup", "de"))
        .await
        .unwrap();
    assert_eq!(
        uk(&stores)
            .list_users(&a, None, 10)
            .await
            .unwrap()
            .items
            .len(),
        1
    );
}

pub async fn pages_are_stable_and_complete(stores: TestStores) {
    let tenant = TenantId::generate();
    let other = TenantId::generate();
    let base = Timestamp::now().unix_micros();
    let mut created = Vec::new();
    for i in 0..7i64 {
        let mut user = new_user(&tenant, &format!("u{i}"), "uk");
        // Two users share a timestamp: the id breaks the tie.
        user.created_at = Timestamp::from_unix_micros(base + i / 2);
        created.push(uk(&stores).create_user(&user).await.unwrap().id);
        uk(&stores)
            .create_user(&new_user(&other, &format!("o{i}"), "uk"))
            .await
            .unwrap();
    }

    let mut seen: Vec<UserId> = Vec::new();
    let mut after = None;
    let mut pages = 0;
    loop {
        let page = uk(&stores)
            .list_users(&tenant, after.as_ref(), 3)
            .await
            .unwrap();
        assert!(page.items.len() <= 3);
        pages += 1;
        seen.extend(page.items.iter().map(|u| u.id.clone()));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 7);
    assert_eq!(
        seen.iter().collect::<HashSet<_>>().len(),
        7,
        "no user twice"
    );
    let expected: HashSet<_> = created.iter().collect();
    assert_eq!(
        seen.iter().collect::<HashSet<_>>(),
        expected,
        "only the tenant's users"
    );
    let mut sorted = seen.clone();
    let all = uk(&stores).list_users(&tenant, None, 100).await.unwrap();
    sorted.sort_by_key(|id| {
        let u = all.items.iter().find(|u| &u.id == id).unwrap();
        (u.created_at, u.id.to_string())
    });
    assert_eq!(seen, sorted, "pages come in (created_at, id) order");
}

pub async fn delete_erases_only_the_tenants_user(stores: TestStores) {
    let tenant = TenantId::generate();
    let keep = uk(&stores)
        .create_user(&new_user(&tenant, "keep", "uk"))
        .await
        .unwrap();
    let gone = uk(&stores)
        .create_user(&new_user(&tenant, "gone", "uk"))
        .await
        .unwrap();
    uk(&stores)
        .delete_user(&tenant, &gone.id, None)
        .await
        .unwrap();
    assert!(matches!(
        uk(&stores).user(&tenant, &gone.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        uk(&stores).delete_user(&tenant, &gone.id, None).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(uk(&stores).user(&tenant, &keep.id).await.unwrap(), keep);
    // The external reference is free again after erasure.
    uk(&stores)
        .create_user(&new_user(&tenant, "gone", "uk"))
        .await
        .unwrap();
}

/// A row an earlier release wrote (plaintext `external_id`, nothing sealed): found, kept unique,
/// listed for sealing, and sealed once.
pub async fn unconverted_rows_are_found_kept_unique_and_sealed(stores: TestStores) {
    let tenant = TenantId::generate();
    let pool = stores.raw_cell_pool("uk");
    let old = UserId::generate(&Region::parse("uk").unwrap());
    sqlx::query(
        "INSERT INTO users (id, tenant_id, external_id, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(old.as_str())
    .bind(tenant.as_str())
    .bind("ada@example.com")
    .bind(Timestamp::now().unix_micros())
    .execute(&pool)
    .await
    .unwrap();
    let plain = ExternalId::parse("ada@example.com").unwrap();
    let found = find(uk(&stores), &tenant, "ada@example.com").await.unwrap();
    assert_eq!(found.external_id, StoredExternalId::Plain(plain.clone()));
    assert!(matches!(
        uk(&stores)
            .create_user(&new_user(&tenant, "ada@example.com", "uk"))
            .await,
        Err(StoreError::Conflict { .. })
    ));
    // Another tenant's plaintext row is not this tenant's.
    assert_eq!(
        find(uk(&stores), &TenantId::generate(), "ada@example.com").await,
        None
    );

    let unsealed = uk(&stores).unsealed_users(10).await.unwrap();
    let expected = UnsealedUser {
        id: old.clone(),
        tenant_id: tenant.clone(),
        external_id: plain,
    };
    assert_eq!(unsealed, vec![expected.clone()]);
    let index = index_of(&tenant, "ada@example.com");
    assert!(
        uk(&stores)
            .seal_external_id(&expected, &index, "s1.sealed")
            .await
            .unwrap()
    );
    assert!(
        !uk(&stores)
            .seal_external_id(&expected, &index, "s1.again")
            .await
            .unwrap(),
        "a second run changes nothing"
    );
    assert!(uk(&stores).unsealed_users(10).await.unwrap().is_empty());
    let read = uk(&stores).user(&tenant, &old).await.unwrap();
    assert_eq!(
        read.external_id,
        StoredExternalId::Sealed("s1.sealed".into())
    );
    assert_eq!(
        find(uk(&stores), &tenant, "ada@example.com").await,
        Some(read)
    );
    let plaintext: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM users WHERE external_id = $1 OR external_id_sealed = $1",
    )
    .bind("ada@example.com")
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(plaintext, 0);
    // Still unique by the index.
    assert!(matches!(
        uk(&stores)
            .create_user(&new_user(&tenant, "ada@example.com", "uk"))
            .await,
        Err(StoreError::Conflict { .. })
    ));
}
