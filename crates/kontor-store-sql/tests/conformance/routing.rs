//! Regional cells: a user's rows are written to their home region's cell and nowhere else.

use kontor_domain::TenantId;
use kontor_store::{StoreError, UserStore};
use kontor_test_support::TestStores;
use sqlx::AnyPool;

use crate::users::new_user;

async fn rows_with_id(pool: &AnyPool, id: &str) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE id = $1")
        .bind(id)
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn rows_in(pool: &AnyPool) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM users")
        .fetch_one(pool)
        .await
        .unwrap()
}

pub async fn users_live_only_in_their_home_cell(stores: TestStores) {
    let tenant = TenantId::generate();
    let uk_user = new_user(&tenant, "in-uk", "uk");
    let de_user = new_user(&tenant, "in-de", "de");
    // Route by the cell in the id, as the API does.
    for user in [&uk_user, &de_user] {
        stores
            .cells
            .get(user.id.cell())
            .unwrap()
            .create_user(user)
            .await
            .unwrap();
    }

    let uk_pool = stores.raw_cell_pool("uk");
    let de_pool = stores.raw_cell_pool("de");
    assert_eq!(rows_with_id(&uk_pool, uk_user.id.as_str()).await, 1);
    assert_eq!(
        rows_with_id(&de_pool, uk_user.id.as_str()).await,
        0,
        "UK user leaked to DE"
    );
    assert_eq!(rows_with_id(&de_pool, de_user.id.as_str()).await, 1);
    assert_eq!(
        rows_with_id(&uk_pool, de_user.id.as_str()).await,
        0,
        "DE user leaked to UK"
    );

    // And nothing about either user is in the other cell under any id.
    let leaked: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE external_id = $1")
        .bind("in-uk")
        .fetch_one(&de_pool)
        .await
        .unwrap();
    assert_eq!(leaked, 0);
}

pub async fn wrong_cell_writes_are_refused_and_change_nothing(stores: TestStores) {
    let tenant = TenantId::generate();
    let uk_user = new_user(&tenant, "misrouted", "uk");
    let de_cell = stores.cell("de");
    let err = de_cell.create_user(&uk_user).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::WrongCell { record_region, cell_region, .. }
            if record_region.as_str() == "uk" && cell_region.as_str() == "de"),
        "{err:?}"
    );
    assert!(matches!(
        de_cell.delete_user(&tenant, &uk_user.id, None).await,
        Err(StoreError::WrongCell { .. })
    ));
    assert_eq!(rows_in(&stores.raw_cell_pool("de")).await, 0);
    assert_eq!(rows_in(&stores.raw_cell_pool("uk")).await, 0);
}
