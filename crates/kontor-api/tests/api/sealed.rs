//! What the databases hold instead of plaintext lookups, on both backends: idempotency records
//! as keyed hashes (replays and refusals unchanged), `external_id` sealed with a blind index
//! (creation, conflicts, lookups and reads unchanged), and rows of an earlier release converted.

use kontor_domain::time::Timestamp;
use kontor_sandbox_bank::SandboxBank;
use kontor_test_support::{Backend, TestApp, error_code, sandbox_directory};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::payments::body;
use crate::support::http_settings;

async fn app(
    backend: Backend,
    test: &str,
) -> Option<(TestApp, kontor_sandbox_bank::RunningSandbox)> {
    let sandbox = SandboxBank::builder().seed(11).start_local().await.unwrap();
    let app = TestApp::builder()
        .backend(backend)
        .directory(sandbox_directory(&sandbox, &http_settings()))
        .try_spawn(test)
        .await?;
    Some((app, sandbox))
}

fn sha256_hex(data: &str) -> String {
    Sha256::digest(data.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn post_payment(app: &TestApp, token: &str, key: &str, body: &Value) -> reqwest::Response {
    app.http
        .post(app.url("/v1/payments"))
        .bearer_auth(token)
        .header("idempotency-key", key)
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn idempotency_records_are_keyed_hashes(backend: Backend, test: &str) {
    let Some((app, _sandbox)) = app(backend, test).await else {
        return;
    };
    let tenant = app.tenant("Acme").await;
    let token = app.token(&tenant).await;
    let user = app.create_user(&token, "payer@example.com", "de").await;
    let user_id = user["id"].as_str().unwrap();
    let key = "rent-2026-11";
    let request = body(user_id, "sonnenbank", "12.34");

    let first = post_payment(&app, &token, key, &request).await;
    assert_eq!(first.status(), 201);
    let created: Value = first.json().await.unwrap();
    let again = post_payment(&app, &token, key, &request).await;
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let replayed: Value = again.json().await.unwrap();
    assert_eq!(replayed["id"], created["id"]);
    let other = post_payment(&app, &token, key, &body(user_id, "sonnenbank", "12.35")).await;
    assert_eq!(other.status(), 422);
    assert_eq!(error_code(other).await, "idempotency_key_reused");

    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT idempotency_key, request_hash FROM idempotency_keys")
            .fetch_all(&app.stores.raw_control_pool())
            .await
            .unwrap();
    assert_eq!(rows.len(), 1);
    let (stored_key, stored_hash) = &rows[0];
    assert!(stored_key.starts_with("ik1."), "{stored_key}");
    assert!(stored_hash.starts_with("rh1."), "{stored_hash}");
    assert!(!stored_key.contains(key));
    assert_ne!(stored_key, &sha256_hex(key));
    // Not a bare SHA-256 of anything: a keyed hash, base64url after its prefix.
    assert!(!stored_hash.bytes().all(|b| b.is_ascii_hexdigit()));
    let canonical = serde_json::to_string(&request).unwrap();
    assert!(!stored_hash.contains(&sha256_hex(&canonical)));
}

#[tokio::test]
async fn idempotency_records_are_keyed_hashes_on_sqlite() {
    idempotency_records_are_keyed_hashes(Backend::Sqlite, "sqlite").await;
}

#[tokio::test]
async fn idempotency_records_are_keyed_hashes_on_postgres() {
    idempotency_records_are_keyed_hashes(
        Backend::Postgres,
        "api::sealed::idempotency_records_are_keyed_hashes_on_postgres",
    )
    .await;
}

async fn external_id_is_sealed(backend: Backend, test: &str) {
    let Some((app, _sandbox)) = app(backend, test).await else {
        return;
    };
    let tenant = app.tenant("Acme").await;
    let token = app.token(&tenant).await;
    let other_tenant = app.tenant("Other").await;
    let other_token = app.token(&other_tenant).await;
    let email = "ada.lovelace@example.com";
    let user = app.create_user(&token, email, "uk").await;
    let id = user["id"].as_str().unwrap().to_owned();
    assert_eq!(user["external_id"], email);
    // The same reference: a conflict naming the user; another tenant may use it.
    let dup = app
        .post_json(
            "/v1/users",
            &token,
            &json!({"external_id": email, "region": "uk"}),
        )
        .await;
    assert_eq!(dup.status(), 409);
    let dup: Value = dup.json().await.unwrap();
    assert_eq!(dup["error"]["code"], "user_exists");
    assert!(dup["error"]["message"].as_str().unwrap().contains(&id));
    let theirs = app.create_user(&other_token, email, "uk").await;
    assert_ne!(theirs["id"], user["id"]);
    // Reads and lookups as before.
    let read: Value = app
        .get(&format!("/v1/users/{id}"), &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(read, user);
    let found: Value = app
        .get("/v1/users?external_id=ada.lovelace%40example.com", &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(found["data"], json!([user.clone()]));
    let page: Value = app.get("/v1/users", &token).await.json().await.unwrap();
    assert_eq!(page["data"], json!([user.clone()]));

    // The cell holds neither the reference nor anything that is it without the keys.
    let rows: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT external_id, external_id_sealed FROM users")
            .fetch_all(&app.stores.raw_cell_pool("uk"))
            .await
            .unwrap();
    assert_eq!(rows.len(), 2);
    for (index, sealed) in &rows {
        assert!(index.starts_with("xi1."), "{index}");
        assert!(sealed.as_deref().unwrap().starts_with("s1."));
        assert!(!index.contains("ada") && !sealed.as_deref().unwrap().contains("ada"));
        assert_ne!(index, &sha256_hex(email));
    }
    assert_ne!(rows[0].0, rows[1].0, "the index is scoped to the tenant");

    // A row an earlier release wrote in plaintext: found and unique before conversion, sealed
    // by the conversion step, and served the same afterwards.
    let old_id = "usr_uk_0000000000000000000000000a";
    sqlx::query(
        "INSERT INTO users (id, tenant_id, external_id, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(old_id)
    .bind(tenant.tenant_id.as_str())
    .bind("grace@example.com")
    .bind(Timestamp::now().unix_micros())
    .execute(&app.stores.raw_cell_pool("uk"))
    .await
    .unwrap();
    let before: Value = app
        .get(&format!("/v1/users/{old_id}"), &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(before["external_id"], "grace@example.com");
    let dup = app
        .post_json(
            "/v1/users",
            &token,
            &json!({"external_id": "grace@example.com", "region": "uk"}),
        )
        .await;
    assert_eq!(dup.status(), 409);
    assert_eq!(app.hub.seal_external_ids().await.unwrap(), 1);
    assert_eq!(
        app.hub.seal_external_ids().await.unwrap(),
        0,
        "resumable, and done"
    );
    let after: Value = app
        .get(&format!("/v1/users/{old_id}"), &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(after, before);
    let found: Value = app
        .get("/v1/users?external_id=grace%40example.com", &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(found["data"][0]["id"], old_id);
    let plaintext: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM users WHERE external_id NOT LIKE 'xi1.%' \
         OR external_id_sealed IS NULL OR external_id_sealed NOT LIKE 's1.%'",
    )
    .fetch_one(&app.stores.raw_cell_pool("uk"))
    .await
    .unwrap();
    assert_eq!(plaintext, 0);
}

#[tokio::test]
async fn external_id_is_sealed_on_sqlite() {
    external_id_is_sealed(Backend::Sqlite, "sqlite").await;
}

#[tokio::test]
async fn external_id_is_sealed_on_postgres() {
    external_id_is_sealed(
        Backend::Postgres,
        "api::sealed::external_id_is_sealed_on_postgres",
    )
    .await;
}
