//! The key canary: a node whose key-encryption keys are not the ones the data was sealed with
//! is not ready (rather than ready and failing on every sealed field), and a rotation that keeps
//! the old key configured stays ready and moves the canary to the new key.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use kontor_api::auth::{SigningKey, TokenService};
use kontor_api::{ApiSettings, AppState};
use kontor_crypto::Keyring;
use kontor_service::{BankDirectory, Hub, HubSettings, KeyStatus, Vault};
use kontor_test_support::TestApp;
use serde_json::{Value, json};
use tower::ServiceExt;

/// Another node over the test app's databases, holding `keys`.
fn node(app: &TestApp, keys: &[(&str, u8)]) -> Hub {
    let keys: Vec<(String, Vec<u8>)> = keys
        .iter()
        .map(|(id, byte)| ((*id).to_owned(), vec![*byte; 32]))
        .collect();
    Hub::new(
        app.stores.cells.clone(),
        app.stores.control(),
        BankDirectory::new(),
        Vault::new(Keyring::new(&keys).unwrap(), app.stores.key_stores.clone()),
        HubSettings::new(url::Url::parse("http://127.0.0.1/").unwrap()),
        app.clock.clock(),
    )
}

/// `GET /readyz` on a node's router.
async fn readyz(hub: Hub) -> (StatusCode, Value) {
    let tokens = TokenService::new(vec![SigningKey::new("t", &[1; 32]).unwrap()], 900).unwrap();
    let router = kontor_api::router(AppState::new(hub, tokens, ApiSettings::default()));
    let response = router
        .oneshot(Request::get("/readyz").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, serde_json::from_slice(&bytes).unwrap())
}

/// The test app's own keys (see `TestApp`): id `test`, bytes 9.
const OURS: (&str, u8) = ("test", 9);

#[tokio::test]
async fn a_node_with_other_keys_is_not_ready() {
    let app = TestApp::spawn().await;
    let ready = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(
        body["keys"],
        json!({"status": "ok", "key_id": "test", "problem": null})
    );

    // A node that generated its own key under the same id, as two SQLite-style nodes would.
    let (status, body) = readyz(node(&app, &[("test", 8)])).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "not_ready");
    assert_eq!(body["keys"]["status"], "wrong_key");
    assert!(
        body["keys"]["problem"]
            .as_str()
            .unwrap()
            .contains("secrets.keys"),
        "{body}"
    );
    // A node with a key of another id only.
    let (status, body) = readyz(node(&app, &[("kek2027", 8)])).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["keys"]["status"], "unknown_key");
    assert_eq!(body["keys"]["key_id"], "test");
    // Every database is fine all along: only the keys are wrong.
    assert!(
        body["databases"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["status"] == "ok"),
        "{body}"
    );
    // The original node still is.
    let (status, _) = readyz(node(&app, &[OURS])).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_rotation_that_keeps_the_old_key_stays_ready_and_moves_the_canary() {
    let app = TestApp::spawn().await;
    assert!(app.hub.seal_key_canary().await.unwrap().is_ok());

    let rotated = node(&app, &[("kek2027", 5), OURS]);
    let (status, _) = readyz(rotated.clone()).await;
    assert_eq!(
        status, 200,
        "a new first key still opens what the old one sealed"
    );
    assert_eq!(
        rotated.seal_key_canary().await.unwrap(),
        KeyStatus::Ok {
            key_id: "kek2027".to_owned()
        }
    );
    // Once the data is re-wrapped the old key may go.
    let (status, body) = readyz(node(&app, &[("kek2027", 5)])).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["keys"]["key_id"], "kek2027");
    // A node that never got the new key is told.
    let (status, body) = readyz(node(&app, &[OURS])).await;
    assert_eq!(status, 503);
    assert_eq!(body["keys"]["status"], "unknown_key");
}

#[tokio::test]
async fn the_first_canary_is_not_sealed_over_data_sealed_with_other_keys() {
    // Data sealed before there was a canary (an upgrade): a tenant's data key.
    let app = TestApp::spawn().await;
    let tenant = app.tenant("Sealed before").await;
    app.hub
        .vault()
        .tenant_key(app.hub.control(), &tenant.tenant_id)
        .await
        .unwrap();

    // The first node up after the upgrade has the wrong keys: it may not seal its own.
    let wrong = node(&app, &[("test", 8)]);
    assert!(matches!(
        wrong.seal_key_canary().await.unwrap(),
        KeyStatus::WrongKey { .. }
    ));
    assert_eq!(app.hub.control().key_canary().await.unwrap(), None);
    let (status, _) = readyz(wrong).await;
    assert_eq!(status, 503);
    // The right keys seal it.
    let (status, _) = readyz(node(&app, &[OURS])).await;
    assert_eq!(status, 200);
    assert!(app.hub.control().key_canary().await.unwrap().is_some());
}

/// A node that keeps users' data keys in memory briefly forgets a user's key the moment it
/// shreds it: the user's sealed data no longer opens there, though the key was cached for an
/// hour. (Without the forgetting, the read after the shred opens the external id again.)
#[tokio::test]
async fn a_shredded_key_is_not_served_from_the_key_cache() {
    let app = TestApp::spawn().await;
    let hub = Hub::new(
        app.stores.cells.clone(),
        app.stores.control(),
        BankDirectory::new(),
        Vault::new(
            Keyring::new(&[(OURS.0.to_owned(), vec![OURS.1; 32])]).unwrap(),
            app.stores.key_stores.clone(),
        )
        .with_key_cache(std::time::Duration::from_secs(3600)),
        HubSettings::new(url::Url::parse("http://127.0.0.1/").unwrap()),
        app.clock.clock(),
    );
    let tenant = app.tenant("Key cache").await;
    let token = app.token(&tenant).await;
    let created = app.create_user(&token, "cached-1", "uk").await;
    let user = kontor_domain::UserId::parse(created["id"].as_str().unwrap()).unwrap();

    // Read twice: the second read is served by the cache.
    for _ in 0..2 {
        let read = hub.user(&tenant.tenant_id, &user).await.unwrap();
        assert_eq!(read.external_id.as_str(), "cached-1");
    }
    hub.shred_user_key(&tenant.tenant_id, &user).await.unwrap();
    // The user's row is still there (an erasure deletes it next); its key is not.
    let after = hub.user(&tenant.tenant_id, &user).await;
    assert!(
        after.is_err(),
        "the shredded key opened the user: {after:?}"
    );
}
