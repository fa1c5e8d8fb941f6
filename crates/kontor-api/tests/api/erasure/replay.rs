//! The erasure ledger: an erasure is recorded before it acts, and replaying the ledger erases
//! again whatever a restored backup of a cell or a key store brought back, and finishes an
//! erasure a crash interrupted.

use kontor_domain::time::Timestamp;
use kontor_domain::user::ExternalId;
use kontor_domain::{TenantId, UserId};
use kontor_service::ReplayReport;
use kontor_store::{Erasure, ErasureLedger, NewStoredUser, UserKeyStore, UserStore};
use kontor_test_support::{Backend, TestApp};

#[tokio::test]
async fn sqlite_a_replay_erases_what_a_restore_brought_back() {
    if let Some(app) = TestApp::builder()
        .backend(Backend::Sqlite)
        .try_spawn("sqlite::erasure::replay")
        .await
    {
        replay(app).await;
    }
}

#[tokio::test]
async fn postgres_a_replay_erases_what_a_restore_brought_back() {
    if let Some(app) = TestApp::builder()
        .backend(Backend::Postgres)
        .try_spawn("postgres::erasure::replay")
        .await
    {
        replay(app).await;
    }
}

/// A user with a data key, as after their first sealed write.
async fn user_with_key(app: &TestApp, token: &str) -> (UserId, String) {
    let external = format!("ext-{}", rand::random::<u32>());
    let created = app.create_user(token, &external, "uk").await;
    let user = UserId::parse(created["id"].as_str().unwrap()).unwrap();
    let cell = app.hub.cell(user.cell()).unwrap();
    app.hub.vault().user_key(cell, &user).await.unwrap();
    (user, external)
}

/// The user's row as a backup of the cell holds it: the blind index and the sealed
/// `external_id`.
async fn stored_row(app: &TestApp, user: &UserId) -> (String, String) {
    let cell = app.stores.cell("uk").database().pool().clone();
    sqlx::query_as("SELECT external_id, external_id_sealed FROM users WHERE id = $1")
        .bind(user.as_str())
        .fetch_one(&cell)
        .await
        .unwrap()
}

/// Puts a user and their key back, as restoring backups of the cell and the key store taken
/// before the erasure would.
async fn restore(
    app: &TestApp,
    tenant: &TenantId,
    user: &UserId,
    (external, row): (&str, &(String, String)),
    wrapped: &str,
) {
    app.stores
        .cell("uk")
        .create_user(&NewStoredUser {
            id: user.clone(),
            tenant_id: tenant.clone(),
            external_id_index: row.0.clone(),
            external_id_sealed: row.1.clone(),
            data_key: None,
            created_at: Timestamp::now(),
            unconverted_match: ExternalId::parse(external).unwrap(),
        })
        .await
        .unwrap();
    let keys = app.stores.key_store("uk").database().pool().clone();
    // The backup predates the shredding: no trace of it.
    sqlx::query("DELETE FROM shredded_user_keys WHERE user_id = $1")
        .bind(user.as_str())
        .execute(&keys)
        .await
        .unwrap();
    sqlx::query("INSERT INTO user_keys (user_id, data_key, created_at) VALUES ($1, $2, 0)")
        .bind(user.as_str())
        .bind(wrapped)
        .execute(&keys)
        .await
        .unwrap();
}

async fn replay(app: TestApp) {
    let tenant = app.tenant("Acme Budget").await;
    let token = app.token(&tenant).await;
    let keys = app.stores.key_store("uk");
    let (user, external) = user_with_key(&app, &token).await;
    let (kept, _) = user_with_key(&app, &token).await;
    let wrapped = keys.user_key(&user).await.unwrap().unwrap();
    let row = stored_row(&app, &user).await;

    // Another tenant cannot erase the user (nor shred their key).
    let other = app.tenant("Other").await;
    let other_token = app.token(&other).await;
    let response = app.delete(&format!("/v1/users/{user}"), &other_token).await;
    assert_eq!(response.status(), 404);
    assert!(keys.user_key(&user).await.unwrap().is_some());
    assert!(
        app.stores
            .control
            .erasures(None, 10)
            .await
            .unwrap()
            .is_empty()
    );

    let response = app.delete(&format!("/v1/users/{user}"), &token).await;
    assert_eq!(response.status(), 204);
    let ledger = app.stores.control.erasures(None, 10).await.unwrap();
    assert_eq!(ledger.len(), 1);
    assert_eq!(ledger[0].user_id, user);
    assert_eq!(ledger[0].tenant_id, tenant.tenant_id);
    assert_eq!(keys.user_key(&user).await.unwrap(), None);

    // Nothing to do on a deployment that was not restored.
    let report = app.hub.replay_erasures().await.unwrap();
    assert_eq!(
        report,
        ReplayReport {
            entries: 1,
            ..ReplayReport::default()
        }
    );

    restore(&app, &tenant.tenant_id, &user, (&external, &row), &wrapped).await;
    let response = app.get(&format!("/v1/users/{user}"), &token).await;
    assert_eq!(response.status(), 200, "the restore brought the user back");
    let report = app.hub.replay_erasures().await.unwrap();
    assert_eq!(
        report,
        ReplayReport {
            entries: 1,
            keys_shredded: 1,
            users_erased: 1,
            unserved: 0,
        }
    );
    let response = app.get(&format!("/v1/users/{user}"), &token).await;
    assert_eq!(response.status(), 404);
    assert_eq!(keys.user_key(&user).await.unwrap(), None);
    assert!(
        keys.user_key(&kept).await.unwrap().is_some(),
        "other users keep their keys"
    );

    // A crash right after the ledger was written: the replay finishes the erasure.
    let (interrupted, _) = user_with_key(&app, &token).await;
    app.stores
        .control
        .record_erasure(&Erasure {
            user_id: interrupted.clone(),
            tenant_id: tenant.tenant_id.clone(),
            region: interrupted.region().clone(),
            erased_at: Timestamp::now(),
        })
        .await
        .unwrap();
    let report = app.hub.replay_erasures().await.unwrap();
    assert_eq!(
        (report.entries, report.keys_shredded, report.users_erased),
        (2, 1, 1)
    );
    assert_eq!(keys.user_key(&interrupted).await.unwrap(), None);
    assert!(matches!(
        app.stores
            .cell("uk")
            .user(&tenant.tenant_id, &interrupted)
            .await,
        Err(kontor_store::StoreError::NotFound)
    ));
}
