//! The key canary in the control database.

use kontor_domain::time::Timestamp;
use kontor_test_support::TestStores;

use crate::tenants::new_tenant;

pub async fn the_canary_is_written_once_and_replaced_only_as_read(stores: TestStores) {
    let control = stores.control();
    let now = Timestamp::now();
    assert_eq!(control.key_canary().await.unwrap(), None);
    assert!(control.put_key_canary("w1.a.x", None, now).await.unwrap());
    // A second node sealing its own first canary loses the race and keeps nothing.
    assert!(!control.put_key_canary("w1.b.y", None, now).await.unwrap());
    assert_eq!(
        control.key_canary().await.unwrap().as_deref(),
        Some("w1.a.x")
    );
    // A rotation replaces what it read, and only that.
    assert!(
        !control
            .put_key_canary("w1.c.z", Some("w1.b.y"), now)
            .await
            .unwrap()
    );
    assert!(
        control
            .put_key_canary("w1.c.z", Some("w1.a.x"), now)
            .await
            .unwrap()
    );
    assert_eq!(
        control.key_canary().await.unwrap().as_deref(),
        Some("w1.c.z")
    );
}

pub async fn the_newest_tenant_key_is_found(stores: TestStores) {
    let control = stores.control();
    assert_eq!(control.newest_tenant_key().await.unwrap(), None);
    let (tenant, client) = new_tenant("Keyed");
    control.create_tenant(&tenant, &client).await.unwrap();
    control
        .ensure_tenant_data_key(&tenant.id, "w1.k.wrapped")
        .await
        .unwrap();
    assert_eq!(
        control.newest_tenant_key().await.unwrap(),
        Some((tenant.id, "w1.k.wrapped".to_owned()))
    );
}
