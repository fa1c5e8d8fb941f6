//! Users in a cell: creation, tenant scoping, uniqueness, paging, erasure.

use std::collections::HashSet;

use kontor_domain::time::Timestamp;
use kontor_domain::user::{ExternalId, NewUser};
use kontor_domain::{Region, TenantId, UserId};
use kontor_store::{StoreError, UserStore};
use kontor_test_support::TestStores;

pub fn new_user(tenant: &TenantId, external: &str, region: &str) -> NewUser {
    NewUser::new(
        tenant.clone(),
        ExternalId::parse(external).unwrap(),
        &Region::parse(region).unwrap(),
    )
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

    let by_ext = uk(&stores)
        .user_by_external_id(&tenant, &ExternalId::parse("customer-1").unwrap())
        .await
        .unwrap();
    assert_eq!(by_ext, Some(created));
    let none = uk(&stores)
        .user_by_external_id(&tenant, &ExternalId::parse("nobody").unwrap())
        .await
        .unwrap();
    assert_eq!(none, None);
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
    let ext = ExternalId::parse("shared-ref").unwrap();
    assert_eq!(
        uk(&stores).user_by_external_id(&b, &ext).await.unwrap(),
        None
    );
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
