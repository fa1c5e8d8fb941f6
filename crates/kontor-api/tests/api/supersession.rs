//! Every tenant that reaches a bank with the hub's credentials is one third party there, and a
//! Berlin Group bank expires a person's recurring consent when they authorise a newer one for
//! the same third party. The tenant whose connection ended that way is told so
//! (`reason: "superseded"`); a tenant registered as its own third party reaches the bank with
//! its own credentials.

use kontor_banks::BankProfile;
use kontor_domain::TenantId;
use kontor_sandbox_bank::SandboxBank;
use kontor_service::{BankDirectory, BankEntry};
use kontor_test_support::browser::Browser;
use kontor_test_support::{TestApp, sandbox_profiles};
use serde_json::{Value, json};

use crate::support::{REDIRECT, World, http_settings, query_of, world};

/// Links `username` at `bank` as the tenant holding `token`; returns the tenant's redirect and
/// the connection id.
async fn link_as(w: &World, token: &str, username: &str, bank: &str) -> (url::Url, String) {
    let user = w
        .app
        .create_user(
            token,
            &format!("{username}-{}", rand::random::<u32>()),
            "de",
        )
        .await;
    let created: Value = w
        .app
        .post_json(
            "/v1/connections",
            token,
            &json!({"user_id": user["id"], "redirect_uri": REDIRECT, "bank_id": bank}),
        )
        .await
        .json()
        .await
        .unwrap();
    let browser = w.browser();
    let login = w
        .to_bank(&browser, created["connect_url"].as_str().unwrap(), bank)
        .await;
    let back = w.authenticate(&browser, &login, username).await;
    let id = created["id"].as_str().unwrap().to_owned();
    (back.left(), id)
}

async fn synced_as(w: &World, token: &str, id: &str) -> Value {
    for _ in 0..300 {
        let connection: Value = w
            .app
            .get(&format!("/v1/connections/{id}"), token)
            .await
            .json()
            .await
            .unwrap();
        if connection["last_synced_at"].is_string() {
            return connection;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("connection {id} never synced");
}

async fn expired_events(w: &World, token: &str) -> Vec<Value> {
    let page: Value = w
        .app
        .get("/v1/events?type=connection.expired", token)
        .await
        .json()
        .await
        .unwrap();
    page["data"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_consent_superseded_in_another_tenants_app_is_reported_as_superseded() {
    let w = world().await;
    let other = w.app.tenant("Other App").await;
    let other_token = w.app.token(&other).await;

    let (back, first) = link_as(&w, &w.token, "alice", "sonnenbank").await;
    assert_eq!(query_of(&back)["status"], "active");
    synced_as(&w, &w.token, &first).await;
    // Alice links the same bank in another tenant's app: the bank expires the first consent.
    let (back, second) = link_as(&w, &other_token, "alice", "sonnenbank").await;
    assert_eq!(query_of(&back)["status"], "active");
    synced_as(&w, &other_token, &second).await;

    let refresh = w.refresh(&first).await;
    assert_eq!(refresh.status(), 409);
    let connection = w.connection(&first).await;
    assert_eq!(connection["status"], "expired", "{connection}");
    assert_eq!(connection["failure_reason"], "superseded", "{connection}");
    let events = expired_events(&w, &w.token).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["data"]["connection_id"], first);
    assert_eq!(events[0]["data"]["reason"], "superseded");
    // The other tenant learns nothing, and keeps its connection.
    assert!(expired_events(&w, &other_token).await.is_empty());

    // A consent the bank expired for no reason the hub saw has no reason.
    let (_, lone) = link_as(&w, &w.token, "carol", "sonnenbank").await;
    synced_as(&w, &w.token, &lone).await;
    let consent = w.session(&lone).await.consent_id;
    w.sandbox.expire_consent("sonnenbank", &consent).unwrap();
    assert_eq!(w.refresh(&lone).await.status(), 409);
    let connection = w.connection(&lone).await;
    assert_eq!(connection["status"], "expired");
    assert_eq!(connection["failure_reason"], Value::Null, "{connection}");
}

/// A world whose sandbox banks the tenant `own` (returned with a token) reaches with
/// credentials of its own, while the hub's own client secret at the UK bank is `hub_secret`
/// (the sandbox's real one unless given).
async fn world_with_own_tenant(hub_secret: Option<&str>) -> (World, String) {
    let sandbox = SandboxBank::builder().seed(11).start_local().await.unwrap();
    let own = TenantId::generate();
    let settings = http_settings();
    kontor_test_support::install_crypto_provider();
    let client = kontor_banks::build_client(&settings).unwrap();
    let mut directory = BankDirectory::new();
    for profile in sandbox_profiles(&sandbox) {
        let hubs = BankProfile {
            client_secret: profile
                .client_secret
                .clone()
                .map(|real| hub_secret.map_or(real, str::to_owned)),
            ..profile.clone()
        };
        directory.insert(
            BankEntry {
                profile: hubs.clone(),
                logo_url: None,
            },
            kontor_banks::connector(hubs, client.clone(), settings.clone()),
        );
        let id = profile.id.clone();
        let mine = kontor_banks::connector(profile, client.clone(), settings.clone());
        assert!(directory.insert_for_tenant(&id, own.clone(), mine));
    }
    let app = TestApp::builder().directory(directory).spawn().await;
    let shared = app.tenant("Acme Budget").await;
    let token = app.token(&shared).await;
    let separate = app.tenant_with_id(own, "Own TPP", None).await;
    let own_token = app.token(&separate).await;
    let w = World {
        app,
        sandbox,
        token,
        tenant_id: shared.tenant_id,
    };
    (w, own_token)
}

#[tokio::test]
async fn a_tenant_with_its_own_credentials_reaches_the_bank_as_itself() {
    // The hub's own secret at the UK bank is wrong; the tenant's is right.
    let (w, own_token) = world_with_own_tenant(Some("not-the-secret")).await;

    let user = w.user("bob").await;
    let created = w.create_connection(&user, Some("thames-bank")).await;
    let browser = Browser::new(&[&w.app.url("/"), w.sandbox.url()]);
    let page = browser
        .open(created["connect_url"].as_str().unwrap())
        .await
        .page();
    let back = browser
        .submit(&page.form("bank-thames-bank").unwrap())
        .await
        .left();
    assert_eq!(
        query_of(&back)["status"],
        "failed",
        "the hub's credentials: {back}"
    );

    let bob = w.app.create_user(&own_token, "bob-own", "uk").await;
    let created: Value = w
        .app
        .post_json(
            "/v1/connections",
            &own_token,
            &json!({"user_id": bob["id"], "redirect_uri": REDIRECT, "bank_id": "thames-bank"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let login = w
        .to_bank(
            &browser,
            created["connect_url"].as_str().unwrap(),
            "thames-bank",
        )
        .await;
    let back = w.authenticate(&browser, &login, "bob").await.left();
    assert_eq!(
        query_of(&back)["status"],
        "active",
        "its own credentials: {back}"
    );
    let id = created["id"].as_str().unwrap();
    let connection = synced_as(&w, &own_token, id).await;
    assert!(!connection["account_ids"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn a_newer_consent_of_another_third_party_is_not_taken_for_supersession() {
    // Here every tenant has the right credentials; the second is its own third party. (The
    // sandbox, reached over plain HTTP, cannot tell third parties apart by certificate and
    // expires the first consent anyway: this shows the hub does not blame the other tenant.)
    let (w, own_token) = world_with_own_tenant(None).await;

    let (_, first) = link_as(&w, &w.token, "alice", "sonnenbank").await;
    synced_as(&w, &w.token, &first).await;
    let (_, second) = link_as(&w, &own_token, "alice", "sonnenbank").await;
    synced_as(&w, &own_token, &second).await;
    assert_eq!(w.refresh(&first).await.status(), 409);
    let connection = w.connection(&first).await;
    assert_eq!(connection["status"], "expired");
    assert_eq!(connection["failure_reason"], Value::Null, "{connection}");
}
