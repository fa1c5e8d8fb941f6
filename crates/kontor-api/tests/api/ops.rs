//! Operations endpoints, request ids, metrics, and behaviour when a database is down.

use std::sync::Arc;
use std::time::Duration;

use kontor_api::ApiSettings;
use kontor_domain::Region;
use kontor_store::RetryPolicy;
use kontor_store_sql::{PoolSettings, SqlCell};
use kontor_test_support::{TestApp, TestStores, error_code};
use serde_json::Value;

#[tokio::test]
async fn healthz_and_readyz_when_all_is_well() {
    let app = TestApp::spawn().await;
    let health = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let ready = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["status"], "ready");
    let names: Vec<&str> = body["databases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["control", "cell:de", "cell:uk"]);
}

/// A self-signed client identity (certificate and key in one PEM file) valid for `days` more
/// days, loaded as the hub's (or `tenant`'s) TLS identity at `bank`.
fn identity(
    dir: &std::path::Path,
    bank: &str,
    tenant: Option<&str>,
    days: i64,
) -> Arc<kontor_banks::ClientIdentity> {
    let mut params = rcgen::CertificateParams::default();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, format!("{bank} client"));
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(days);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let path = dir.join(format!("{bank}-{}.pem", tenant.unwrap_or("hub")));
    std::fs::write(&path, format!("{}{}", cert.pem(), key.serialize_pem())).unwrap();
    kontor_banks::ClientIdentity::load(
        kontor_banks::IdentityLabel {
            bank: bank.to_owned(),
            tenant: tenant.map(str::to_owned),
            kind: "tls",
        },
        kontor_banks::IdentityFiles {
            certificate: path,
            key: None,
        },
    )
    .unwrap()
}

#[tokio::test]
async fn readyz_warns_of_bank_certificates_expiring_within_14_days_and_stays_ready() {
    let dir = tempfile::tempdir().unwrap();
    let mut directory = kontor_service::BankDirectory::new();
    // Long-lived: no warning. 15 days is just outside the window.
    directory.add_certificate(identity(dir.path(), "sonnenbank", None, 400));
    directory.add_certificate(identity(dir.path(), "thames-bank", None, 15));
    let app = TestApp::builder().directory(directory).spawn().await;
    let ready = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["status"], "ready");
    assert_eq!(body["certificates"], serde_json::json!([]), "{body}");
    app.stop().await;

    // A tenant's certificate with 3 days left, and the hub's with 13: both warned of, with
    // whose they are and when they expire; the node stays ready.
    let tenant = kontor_domain::TenantId::generate();
    let mut directory = kontor_service::BankDirectory::new();
    directory.add_certificate(identity(dir.path(), "sonnenbank", None, 400));
    let short = identity(dir.path(), "sonnenbank", Some(tenant.as_str()), 3);
    let hub_short = identity(dir.path(), "thames-bank", None, 13);
    directory.add_certificate(short.clone());
    directory.add_certificate(hub_short.clone());
    // The seal that signs for the hub at a bank: read once, warned of the same way.
    let seal = identity(dir.path(), "seal-bank", None, 5).info();
    let seal_label = kontor_banks::IdentityLabel {
        bank: "seal-bank".into(),
        tenant: None,
        kind: "seal",
    };
    directory.add_seal(seal_label, seal.clone());
    directory.add_seal(
        kontor_banks::IdentityLabel {
            bank: "seal-bank".into(),
            tenant: None,
            kind: "seal",
        },
        identity(dir.path(), "seal-bank-new", None, 300).info(),
    );
    let app = TestApp::builder().directory(directory).spawn().await;
    let ready = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["status"], "ready", "{body}");
    let warnings = body["certificates"].as_array().unwrap();
    assert_eq!(warnings.len(), 3, "{body}");
    let rfc3339 = |unix: i64| {
        time::OffsetDateTime::from_unix_timestamp(unix)
            .unwrap()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    assert_eq!(warnings[0]["bank"], "sonnenbank");
    assert_eq!(warnings[0]["tenant"], tenant.as_str());
    assert_eq!(warnings[0]["kind"], "tls");
    assert_eq!(warnings[0]["status"], "expiring");
    assert_eq!(warnings[0]["expires_at"], rfc3339(short.info().not_after));
    assert_eq!(warnings[0]["serial"], short.info().serial);
    assert_eq!(warnings[1]["bank"], "thames-bank");
    assert_eq!(warnings[1]["tenant"], Value::Null);
    assert_eq!(
        warnings[1]["expires_at"],
        rfc3339(hub_short.info().not_after)
    );
    app.stop().await;
}

/// A deployment whose `fr` cell points at a port nothing listens on.
async fn app_with_dead_cell() -> TestApp {
    let mut stores = TestStores::sqlite(&["uk"]).await;
    let settings = PoolSettings {
        acquire_timeout: Duration::from_millis(500),
        ..PoolSettings::default()
    };
    let dead = SqlCell::open(
        Region::parse("fr").unwrap(),
        "postgres://postgres@127.0.0.1:1/nowhere",
        &settings,
    )
    .unwrap();
    stores.cells.insert(Arc::new(dead));
    let api = ApiSettings {
        client_cache_ttl: Duration::ZERO,
        readiness_timeout: Duration::from_secs(2),
        ..ApiSettings::default()
    };
    TestApp::serve(stores, api).await
}

#[tokio::test]
async fn an_unreachable_cell_is_not_ready_and_answers_503() {
    let app = app_with_dead_cell().await;
    let ready = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["status"], "not_ready");
    let fr = body["databases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "cell:fr")
        .unwrap();
    assert_ne!(fr["status"], "ok");
    let uk = body["databases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "cell:uk")
        .unwrap();
    assert_eq!(uk["status"], "ok");

    let tenant = app.tenant("Acme").await;
    let token = app.token(&tenant).await;
    let response = app
        .get("/v1/users/usr_fr_00000000000000000000000000", &token)
        .await;
    assert_eq!(response.status(), 503);
    assert_eq!(
        response.headers()["retry-after"],
        "2",
        "a 503 says when to retry"
    );
    assert_eq!(error_code(response).await, "service_unavailable");
    // The healthy region keeps working.
    app.create_user(&token, "fine", "uk").await;
}

#[tokio::test]
async fn request_ids_are_echoed_or_generated() {
    let app = TestApp::spawn().await;
    let given = app
        .http
        .get(app.url("/healthz"))
        .header("x-request-id", "trace-abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(given.headers()["x-request-id"], "trace-abc-123");

    let hostile = app
        .http
        .get(app.url("/v1/users"))
        .header("x-request-id", "bad id with spaces")
        .send()
        .await
        .unwrap();
    let generated = hostile.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(generated.starts_with("req_"), "{generated}");
    let body: Value = hostile.json().await.unwrap();
    assert_eq!(body["error"]["request_id"], generated.as_str());
}

#[tokio::test]
async fn metrics_count_requests_and_database_retries() {
    // Writers give up on SQLite's lock after 20 ms and leave it to the retry helper.
    let pool = PoolSettings {
        sqlite_busy_timeout: Duration::from_millis(20),
        retry: RetryPolicy {
            max_attempts: 200,
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(20),
            ..RetryPolicy::default()
        },
        ..PoolSettings::default()
    };
    let app = TestApp::builder().pool_settings(pool).spawn().await;
    let tenant = app.tenant("Acme").await;
    let token = app.token(&tenant).await;

    // Hold the uk cell's write lock while the API tries to create a user there.
    let mut holder = app
        .stores
        .cell("uk")
        .database()
        .begin_write()
        .await
        .unwrap();
    sqlx::query("SELECT COUNT(*) FROM users")
        .execute(&mut *holder)
        .await
        .unwrap();
    let create = {
        let http = app.http.clone();
        let url = app.url("/v1/users");
        let token = token.clone();
        tokio::spawn(async move {
            http.post(url)
                .bearer_auth(token)
                .json(&serde_json::json!({"external_id": "patient", "region": "uk"}))
                .send()
                .await
                .unwrap()
                .status()
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    holder.commit().await.unwrap();
    assert_eq!(create.await.unwrap(), 201);

    let text = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(
            r#"kontor_http_requests_total{method="POST",route="/v1/users",status="201"}"#
        ),
        "{text}"
    );
    assert!(
        text.contains("kontor_http_request_duration_seconds_bucket"),
        "{text}"
    );
    let retries = text
        .lines()
        .find(|l| l.starts_with(r#"kontor_db_retries_total{op="create_user"}"#))
        .unwrap_or_else(|| panic!("no retry metric in:\n{text}"));
    let value: u64 = retries.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(value >= 1, "{retries}");
    // Ids never appear in labels.
    assert!(!text.contains("usr_"), "an id leaked into metrics");
}
