//! A restarted `kontor demo` goes on where it stopped: the sandbox bank keeps its consents,
//! tokens and payments in `<data_dir>/sandbox/state.json` (and its port), so a connection made
//! before the restart syncs after it, and a payment initiated before it can still be
//! authorised and completes.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail loudly"
)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::demo::{Demo, token};
use common::link::call;
use kontor_test_support::browser::{Browser, Landing, sandbox_link_form};
use serde_json::{Value, json};

const LINKED: &str = "https://tenant.example/linked";
const PAID: &str = "https://tenant.example/paid";
const WAIT: Duration = Duration::from_secs(60);

/// One run of the demo, as its tenant sees it.
struct Run {
    http: reqwest::Client,
    api: String,
    sandbox: String,
    bearer: String,
}

impl Run {
    async fn start(data: &Path, logs: &Path) -> (Demo, Self) {
        // The worker polls the bank for payment statuses within seconds.
        let env = [
            ("KONTOR_WORKER__TICK_MS", "200"),
            ("KONTOR_PAYMENTS__POLL_BASE_SECONDS", "1"),
            ("KONTOR_PAYMENTS__POLL_CAP_SECONDS", "2"),
        ];
        let (demo, first) = Demo::start_env(data, logs, &env);
        let json: Value = serde_json::from_str(&first).unwrap();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let api = json["api_base_url"].as_str().unwrap().to_owned();
        let bearer = token(
            &http,
            &api,
            json["client_id"].as_str().unwrap(),
            json["client_secret"].as_str().unwrap(),
        )
        .await;
        let sandbox = json["sandbox_url"].as_str().unwrap().to_owned();
        (
            demo,
            Self {
                http,
                api,
                sandbox,
                bearer,
            },
        )
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        call(
            &self.http,
            method,
            format!("{}{path}", self.api),
            &self.bearer,
            body,
        )
        .await
    }

    async fn get(&self, path: &str) -> Value {
        let (status, body) = self.call(reqwest::Method::GET, path, None).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    async fn create(&self, path: &str, body: Value) -> Value {
        let (status, created) = self.call(reqwest::Method::POST, path, Some(body)).await;
        assert_eq!(status, 201, "POST {path}: {created}");
        created
    }

    /// Walks from `url` through the hub's page and the bank's pages until the user leaves for
    /// the tenant; returns where they went.
    async fn walk(&self, url: &str, bank: &str, user: &str) -> url::Url {
        let browser = Browser::with_client(self.http.clone(), &[&self.api, &self.sandbox]);
        let mut landing = browser.open(url).await;
        for _ in 0..10 {
            let page = match landing {
                Landing::Left(back) => return back,
                Landing::Page(page) => page,
            };
            let form = page
                .form("pay")
                .or_else(|| sandbox_link_form(&page, bank, user))
                .unwrap_or_else(|| {
                    panic!(
                        "unexpected page: HTTP {} at {}:\n{}",
                        page.status, page.url, page.body
                    )
                });
            landing = browser.submit(&form).await;
        }
        panic!("more than 10 pages");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_demo_syncs_its_connections_and_completes_payments_made_before() {
    kontor_test_support::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (demo, run) = Run::start(&data, dir.path()).await;

    // bob links his UK bank (the hub holds an access and a refresh token of the sandbox's).
    let bob = run
        .create(
            "/v1/users",
            json!({"external_id": "restart-bob", "region": "uk"}),
        )
        .await;
    let bob = bob["id"].as_str().unwrap().to_owned();
    let connection = run
        .create(
            "/v1/connections",
            json!({"user_id": bob, "bank_id": "thames-bank", "redirect_uri": LINKED}),
        )
        .await;
    let connection_id = connection["id"].as_str().unwrap().to_owned();
    let back = run
        .walk(
            connection["connect_url"].as_str().unwrap(),
            "thames-bank",
            "bob",
        )
        .await;
    assert!(back.as_str().starts_with(LINKED), "{back}");
    let started = Instant::now();
    while !run.get(&format!("/v1/connections/{connection_id}")).await["last_synced_at"].is_string()
    {
        assert!(started.elapsed() < WAIT, "no first sync\n{}", demo.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // alice is sent a payment link; she opens it only after the restart.
    let alice = run
        .create(
            "/v1/users",
            json!({"external_id": "restart-alice", "region": "de"}),
        )
        .await;
    let response = run
        .http
        .post(format!("{}/v1/payments", run.api))
        .bearer_auth(&run.bearer)
        .header("idempotency-key", "restart-alice-1")
        .json(&json!({
                "user_id": alice["id"],
                "bank_id": "sonnenbank",
                "creditor": {"name": "Hausverwaltung Müller", "iban": "DE89370400440532013000"},
                "amount": {"value": "12.34", "currency": "EUR"},
                "debtor_account": {"iban": "DE21642494690527912747"},
                "remittance": "Rent November",
                "redirect_uri": PAID,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let payment: Value = response.json().await.unwrap();
    let payment_id = payment["id"].as_str().unwrap().to_owned();
    let authorize_url = payment["authorize_url"].as_str().unwrap().to_owned();

    let (status, log) = demo.stop();
    assert!(status.success(), "{log}");
    assert!(data.join("sandbox").join("state.json").is_file());

    let (demo, again) = Run::start(&data, dir.path()).await;
    assert_eq!(again.sandbox, run.sandbox, "the sandbox keeps its port");

    // The connection syncs with the tokens the bank issued before the restart.
    let (status, report) = again
        .call(
            reqwest::Method::POST,
            &format!("/v1/connections/{connection_id}/refresh"),
            Some(json!({"psu_ip_address": "203.0.113.7"})),
        )
        .await;
    assert_eq!(status, 200, "{report}\n{}", demo.log());
    let connection = again.get(&format!("/v1/connections/{connection_id}")).await;
    assert_eq!(connection["status"], "active", "{connection}");
    let accounts = again.get(&format!("/v1/accounts?user_id={bob}")).await;
    let accounts = accounts["data"].as_array().unwrap().clone();
    assert!(!accounts.is_empty());
    let account = accounts[0]["id"].as_str().unwrap();
    let transactions = again
        .get(&format!("/v1/accounts/{account}/transactions"))
        .await;
    assert!(
        !transactions["data"].as_array().unwrap().is_empty(),
        "{transactions}"
    );

    // The payment link made before the restart works, and the payment completes.
    // (The test asks for a free hub port on each start; a demo on a fixed port keeps it.)
    let authorize_url = authorize_url.replacen(&run.api, &again.api, 1);
    let back = again.walk(&authorize_url, "sonnenbank", "alice").await;
    assert!(back.as_str().starts_with(PAID), "{back}");
    let started = Instant::now();
    loop {
        let payment = again.get(&format!("/v1/payments/{payment_id}")).await;
        match payment["status"].as_str().unwrap() {
            "completed" => break,
            "rejected" | "cancelled" | "unknown" => panic!("{payment}\n{}", demo.log()),
            _ => {}
        }
        assert!(started.elapsed() < WAIT, "not completed: {payment}");
        let advance = again
            .http
            .post(format!("{}/admin/clock/advance", again.sandbox))
            .json(&json!({"hours": 1}))
            .send()
            .await
            .unwrap();
        assert_eq!(advance.status(), 200);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    let (status, log) = demo.stop();
    assert!(status.success(), "{log}");
}
