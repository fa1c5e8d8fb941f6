//! Where deliveries may not go: with the operator's defaults, endpoint URLs are https to public
//! addresses only; and the address is checked again at every attempt, on what the host resolves
//! to then, so a name that later points inside the network gets nothing.

use std::time::Duration;

use kontor_crypto::Keyring;
use kontor_service::{BankDirectory, Deliverer, Hub, HubSettings, Vault};
use kontor_test_support::{TestApp, error_code};
use serde_json::json;

use super::receiver::Receiver;
use super::{Hooks, hooks, hooks_on};

#[tokio::test]
async fn private_loopback_and_plain_http_urls_are_refused() {
    // The defaults: https to public addresses only.
    let h = hooks_on(TestApp::spawn().await).await;
    for (url, code) in [
        ("http://hooks.example/kontor", "invalid_webhook_url"),
        ("https://127.0.0.1/hook", "webhook_url_not_allowed"),
        ("https://127.1/hook", "webhook_url_not_allowed"),
        ("https://0x7f000001/hook", "webhook_url_not_allowed"),
        ("https://localhost:8443/hook", "webhook_url_not_allowed"),
        ("https://10.0.0.8/hook", "webhook_url_not_allowed"),
        ("https://192.168.1.20/hook", "webhook_url_not_allowed"),
        ("https://172.20.0.1/hook", "webhook_url_not_allowed"),
        (
            "https://169.254.169.254/latest/meta-data/",
            "webhook_url_not_allowed",
        ),
        ("https://[::1]/hook", "webhook_url_not_allowed"),
        ("https://[fd00::1]/hook", "webhook_url_not_allowed"),
        ("https://[::ffff:127.0.0.1]/hook", "webhook_url_not_allowed"),
        ("https://0.0.0.0/hook", "webhook_url_not_allowed"),
        ("https://no-such-host.invalid/hook", "invalid_webhook_url"),
    ] {
        let response = h
            .app
            .post_json(
                "/v1/webhook-endpoints",
                &h.token,
                &json!({ "url": url, "events": ["*"] }),
            )
            .await;
        assert_eq!(response.status(), 400, "{url}");
        assert_eq!(error_code(response).await, code, "{url}");
    }
    assert!(
        h.get("/v1/webhook-endpoints").await["data"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    // Changing a URL is checked the same way.
    let hooks_public = json!({ "url": "https://1.1.1.1/hook", "events": ["*"] });
    let created = h
        .app
        .post_json("/v1/webhook-endpoints", &h.token, &hooks_public)
        .await;
    assert_eq!(created.status(), 201);
    let id = created.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let moved = h
        .app
        .http
        .patch(h.app.url(&format!("/v1/webhook-endpoints/{id}")))
        .bearer_auth(&h.token)
        .json(&json!({ "url": "https://169.254.169.254/" }))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(moved).await, "webhook_url_not_allowed");
}

/// A hub over the same stores whose deliveries may not go to private addresses (as the API's
/// may, here, so that the endpoints exist): what a worker sees when a name that resolved to a
/// public address at creation resolves to a private one later.
pub(super) fn strict_hub(app: &TestApp) -> Hub {
    hub_with(app, |settings| {
        settings.webhooks.allow_private_addresses = false;
    })
}

fn hub_with(app: &TestApp, tweak: impl FnOnce(&mut HubSettings)) -> Hub {
    let mut settings = HubSettings::new(url::Url::parse("http://127.0.0.1/").unwrap());
    super::local(&mut settings);
    tweak(&mut settings);
    let keyring = Keyring::new(&[("test".to_owned(), vec![9; 32])]).unwrap();
    Hub::new(
        app.stores.cells.clone(),
        app.stores.control(),
        BankDirectory::new(),
        Vault::new(keyring, app.stores.key_stores.clone()),
        settings,
        app.clock.clock(),
    )
}

#[tokio::test]
async fn every_attempt_checks_the_address_it_connects_to() {
    let h = hooks().await;
    let receiver = Receiver::start().await;
    let by_name = h
        .endpoint(&format!("http://localhost:{}/hook", receiver.port), &["*"])
        .await;
    let by_address = h.endpoint(&receiver.url(), &["*"]).await;
    let user = h.user("uk").await;
    h.record(&user, 1).await;

    let strict = Deliverer::new(strict_hub(&h.app)).unwrap();
    let reports = strict.run_once().await;
    assert_eq!(reports.len(), 2);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        receiver.received().is_empty(),
        "nothing reached the receiver"
    );
    for endpoint in [&by_name, &by_address] {
        let log = h.deliveries(endpoint["id"].as_str().unwrap()).await;
        assert_eq!(
            log[0]["attempts"][0]["error"], "address_not_allowed",
            "{log:?}"
        );
        assert!(log[0]["attempts"][0]["status_code"].is_null());
    }
}

/// Plain http allowed when the endpoint was created, not any more when the worker sends (the
/// configuration changed): nothing is sent.
#[tokio::test]
async fn plain_http_is_checked_again_at_every_attempt() {
    let h = hooks().await;
    let receiver = Receiver::start().await;
    let endpoint = h.endpoint(&receiver.url(), &["*"]).await;
    let user = h.user("uk").await;
    h.record(&user, 1).await;

    let https_only = hub_with(&h.app, |settings| settings.webhooks.allow_http = false);
    let reports = Deliverer::new(https_only).unwrap().run_once().await;
    assert_eq!(reports.len(), 1);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(receiver.received().is_empty(), "nothing sent over http");
    let log = h.deliveries(endpoint["id"].as_str().unwrap()).await;
    assert_eq!(
        log[0]["attempts"][0]["error"], "address_not_allowed",
        "{log:?}"
    );
}

/// `POST /v1/webhook-endpoints` for every event at `url`.
async fn create(h: &Hooks, url: &str) -> reqwest::Response {
    h.app
        .post_json(
            "/v1/webhook-endpoints",
            &h.token,
            &json!({ "url": url, "events": ["*"] }),
        )
        .await
}

async fn assert_not_allowed(h: &Hooks, url: &str) {
    let response = create(h, url).await;
    assert_eq!(response.status(), 400, "{url}");
    assert_eq!(
        error_code(response).await,
        "webhook_url_not_allowed",
        "{url}"
    );
}

/// A public address is not enough: the port must be a web port or an unprivileged one that is
/// not on the deny list (databases, caches, cluster control planes).
#[tokio::test]
async fn ports_other_than_web_and_unprivileged_ones_are_refused() {
    let h = hooks_on(TestApp::spawn().await).await;
    for url in [
        "https://1.1.1.1:22/hook",
        "https://1.1.1.1:6379/hook",
        "https://1.1.1.1:0/hook",
        "https://1.1.1.1:25/hook",
        "https://1.1.1.1:1023/hook",
        "https://1.1.1.1:5432/hook",
    ] {
        assert_not_allowed(&h, url).await;
    }
    for url in ["https://1.1.1.1/hook", "https://1.1.1.1:8443/hook"] {
        let response = create(&h, url).await;
        assert_eq!(response.status(), 201, "{url}");
    }
}

/// Where private addresses are allowed (the demo, local development), the cloud metadata
/// services still are not.
#[tokio::test]
async fn metadata_addresses_are_refused_even_where_private_ones_are_allowed() {
    let h = hooks().await;
    for url in [
        "http://169.254.169.254/latest/meta-data/",
        "https://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://[::ffff:169.254.169.254]/",
    ] {
        assert_not_allowed(&h, url).await;
    }
    let receiver = Receiver::start().await;
    h.endpoint(&receiver.url(), &["*"]).await;
}

/// A port allowed when the endpoint was created, denied when the worker sends (the operator
/// added it to the deny list): nothing is sent.
#[tokio::test]
async fn every_attempt_checks_the_port() {
    let h = hooks().await;
    let receiver = Receiver::start().await;
    let endpoint = h.endpoint(&receiver.url(), &["*"]).await;
    let user = h.user("uk").await;
    h.record(&user, 1).await;

    let port = receiver.port;
    let denying = hub_with(&h.app, move |settings| {
        settings.webhooks.denied_ports.push(port);
    });
    let reports = Deliverer::new(denying).unwrap().run_once().await;
    assert_eq!(reports.len(), 1);
    assert!(
        receiver.received().is_empty(),
        "nothing sent to a denied port"
    );
    let log = h.deliveries(endpoint["id"].as_str().unwrap()).await;
    assert_eq!(
        log[0]["attempts"][0]["error"], "address_not_allowed",
        "{log:?}"
    );
}
