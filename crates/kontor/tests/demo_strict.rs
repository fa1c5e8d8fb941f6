//! `kontor demo --require-tpp-certificates` through the built binary: the sandbox demands TPP
//! certificates and signed requests (Berlin Group `Digest`/`Signature`; UK FAPI with
//! `private_key_jwt`, PS256 request objects and `x-jws-signature`), and the hub, configured by
//! the demo with the demo TPP's certificates, links alice at Sonnenbank (Berlin Group) and bob
//! at Thames Bank (UK), reads their accounts and transactions and completes a payment for each.
//! A request without a certificate, or unsigned, is refused with the standard's error.

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
use kontor_sandbox_bank::tpp::pki::files;
use kontor_test_support::browser::{Browser, Landing, sandbox_link_form};
use serde_json::{Value, json};

const LINKED: &str = "https://tenant.example/linked";
const PAID: &str = "https://tenant.example/paid";
/// RSA keys for the demo PKI take a while in a debug build.
const STRICT_START_TIMEOUT: Duration = Duration::from_secs(240);
const WAIT: Duration = Duration::from_secs(120);

/// The demo hub as its tenant sees it, and the strict sandbox beside it.
struct Strict {
    /// Trusts the sandbox's server CA; presents no client certificate.
    http: reqwest::Client,
    api: String,
    sandbox: String,
    bearer: String,
}

impl Strict {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let url = format!("{}{path}", self.api);
        call(&self.http, method, url, &self.bearer, body).await
    }

    async fn get(&self, path: &str) -> Value {
        let (status, body) = self.call(reqwest::Method::GET, path, None).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    fn browser(&self) -> Browser {
        Browser::with_client(self.http.clone(), &[&self.api, &self.sandbox])
    }

    /// Walks from `url` through the hub's page and the bank's login, code and account choice
    /// until the user leaves for the tenant; returns where they went.
    async fn walk(&self, url: &str, bank: &str, user: &str) -> url::Url {
        let browser = self.browser();
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

    /// Links `user` at `bank`, waits for the first sync and reads the accounts and each one's
    /// transactions through the API; returns the user's id.
    async fn link_and_read(&self, user: &str, region: &str, bank: &str) -> String {
        let body = json!({"external_id": format!("strict-{user}"), "region": region});
        let (status, created) = self
            .call(reqwest::Method::POST, "/v1/users", Some(body))
            .await;
        assert_eq!(status, 201, "{created}");
        let user_id = created["id"].as_str().unwrap().to_owned();
        let body = json!({"user_id": user_id, "bank_id": bank, "redirect_uri": LINKED});
        let (status, connection) = self
            .call(reqwest::Method::POST, "/v1/connections", Some(body))
            .await;
        assert_eq!(status, 201, "{connection}");
        let id = connection["id"].as_str().unwrap().to_owned();
        let back = self
            .walk(connection["connect_url"].as_str().unwrap(), bank, user)
            .await;
        assert!(back.as_str().starts_with(LINKED), "{back}");
        let query = kontor_test_support::browser::query_of(&back);
        assert_eq!(
            query.get("status").map(String::as_str),
            Some("active"),
            "{bank}: {back}"
        );

        let started = Instant::now();
        loop {
            let connection = self.get(&format!("/v1/connections/{id}")).await;
            if connection["last_synced_at"].is_string() {
                break;
            }
            assert_ne!(connection["status"], "failed", "{connection}");
            assert!(started.elapsed() < WAIT, "no sync at {bank}: {connection}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let accounts = self.get(&format!("/v1/accounts?user_id={user_id}")).await;
        let accounts = accounts["data"].as_array().unwrap().clone();
        assert!(!accounts.is_empty(), "{bank}: no accounts");
        let mut transactions = 0;
        for account in &accounts {
            let id = account["id"].as_str().unwrap();
            let page = self.get(&format!("/v1/accounts/{id}/transactions")).await;
            transactions += page["data"].as_array().unwrap().len();
        }
        assert!(transactions > 0, "{bank}: no transactions read");
        user_id
    }

    /// Initiates a payment, authorises it at the bank and waits until it is completed, moving
    /// the sandbox's clock past settlement.
    async fn pay(&self, user_id: &str, user: &str, bank: &str) -> Value {
        let mut body = if bank == "thames-bank" {
            json!({
                "creditor": {"name": "Landlord Ltd", "sort_code": "400993", "account_number": "30971327"},
                "amount": {"value": "12.34", "currency": "GBP"},
            })
        } else {
            json!({
                "creditor": {"name": "Hausverwaltung Müller", "iban": "DE89370400440532013000"},
                "amount": {"value": "12.34", "currency": "EUR"},
                // Alice's current account (the sandbox's ids do not depend on the seed).
                "debtor_account": {"iban": "DE21642494690527912747"},
            })
        };
        body["user_id"] = json!(user_id);
        body["bank_id"] = json!(bank);
        body["remittance"] = json!("Rent November");
        body["redirect_uri"] = json!(PAID);
        let response = self
            .http
            .post(format!("{}/v1/payments", self.api))
            .bearer_auth(&self.bearer)
            .header("idempotency-key", format!("strict-{user}-1"))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let created: Value = response.json().await.unwrap();
        assert_eq!(status, 201, "{created}");
        let id = created["id"].as_str().unwrap().to_owned();
        let back = self
            .walk(created["authorize_url"].as_str().unwrap(), bank, user)
            .await;
        assert!(back.as_str().starts_with(PAID), "{back}");
        let started = Instant::now();
        loop {
            let payment = self.get(&format!("/v1/payments/{id}")).await;
            match payment["status"].as_str().unwrap() {
                "completed" => return payment,
                "rejected" | "cancelled" | "unknown" => panic!("{bank}: {payment}"),
                _ => {}
            }
            assert!(started.elapsed() < WAIT, "{bank}: not completed: {payment}");
            // Past any settlement cycle at the bank; the hub's worker polls on its own.
            let advance = self
                .http
                .post(format!("{}/admin/clock/advance", self.sandbox))
                .json(&json!({"hours": 1}))
                .send()
                .await
                .unwrap();
            assert_eq!(advance.status(), 200);
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// A JSON answer of the sandbox's admin API.
async fn admin(http: &reqwest::Client, url: String) -> Value {
    http.get(url).send().await.unwrap().json().await.unwrap()
}

fn trusting(pki: &Path, identity: Option<(&str, &str)>) -> reqwest::Client {
    kontor_test_support::install_crypto_provider();
    let ca = std::fs::read(pki.join(files::SERVER_CA)).unwrap();
    let mut builder = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
        .redirect(reqwest::redirect::Policy::none());
    if let Some((cert, key)) = identity {
        let mut pem = std::fs::read(pki.join(cert)).unwrap();
        pem.extend(std::fs::read(pki.join(key)).unwrap());
        builder = builder.identity(reqwest::Identity::from_pem(&pem).unwrap());
    }
    builder.build().unwrap()
}

/// Asks a Berlin Group bank for a consent as `client` (unsigned); the status and the first
/// `tppMessages` code of the answer.
async fn bg_consent(client: &reqwest::Client, url: &str) -> (u16, String) {
    let consent = json!({"access": {"allPsd2": "allAccounts"}, "recurringIndicator": true,
        "validUntil": "2030-01-01", "frequencyPerDay": 4, "combinedServiceIndicator": false});
    let response = client
        .post(url)
        .header("x-request-id", uuid_like())
        .header("psu-ip-address", "192.0.2.1")
        .json(&consent)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    let code = body["tppMessages"][0]["code"].as_str().unwrap_or_default();
    (status, code.to_owned())
}

/// A fresh version-4 UUID, as `X-Request-ID` must be.
fn uuid_like() -> String {
    let n: u128 = rand::random();
    let hex = format!("{n:032x}");
    format!(
        "{}-{}-4{}-a{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_strict_demo_links_reads_and_pays_at_both_banks_over_mutual_tls_and_signed() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let (demo, first) = Demo::start_with(
        &data,
        root.path(),
        &["--require-tpp-certificates"],
        &[
            ("KONTOR_WORKER__TICK_MS", "200"),
            ("KONTOR_PAYMENTS__POLL_BASE_SECONDS", "1"),
            ("KONTOR_PAYMENTS__POLL_CAP_SECONDS", "2"),
        ],
        STRICT_START_TIMEOUT,
    );
    let info: Value = serde_json::from_str(&first).unwrap();
    let sandbox = info["sandbox_url"].as_str().unwrap().trim_end_matches('/');
    assert!(sandbox.starts_with("https://"), "{sandbox}");
    let pki = data.join("sandbox-pki");
    let http = trusting(&pki, None);
    let api = info["api_base_url"].as_str().unwrap().to_owned();
    let bearer = token(
        &http,
        &api,
        info["client_id"].as_str().unwrap(),
        info["client_secret"].as_str().unwrap(),
    )
    .await;
    let hub = Strict {
        http: http.clone(),
        api,
        sandbox: sandbox.to_owned(),
        bearer,
    };

    // The strict sandbox refuses what the hub must not send: no certificate; a certificate
    // but no signature. Both with the Berlin Group error codes, nothing done.
    let banks = admin(&http, format!("{sandbox}/admin/banks")).await;
    let base = |id: &str| {
        banks
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["id"] == id)
            .and_then(|b| b["base_url"].as_str())
            .unwrap()
            .trim_end_matches('/')
            .to_owned()
    };
    let consents = format!("{}/v1/consents", base("sonnenbank"));
    assert_eq!(
        bg_consent(&http, &consents).await,
        (401, "CERTIFICATE_MISSING".into())
    );
    let with_qwac = trusting(&pki, Some((files::DEMO_QWAC, files::DEMO_QWAC_KEY)));
    assert_eq!(
        bg_consent(&with_qwac, &consents).await,
        (401, "SIGNATURE_MISSING".into())
    );
    // UK: the token endpoint takes no client without a certificate.
    let token_url = format!("{}/oauth2/token", base("thames-bank"));
    let refused = http
        .post(&token_url)
        .form(&[("grant_type", "client_credentials"), ("scope", "accounts")])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client", "{body}");

    // The hub does it right: mutual TLS and signed requests, at both banks.
    let alice = hub.link_and_read("alice", "de", "sonnenbank").await;
    let bob = hub.link_and_read("bob", "uk", "thames-bank").await;
    let paid = hub.pay(&alice, "alice", "sonnenbank").await;
    assert_eq!(paid["amount"]["value"], "12.34", "{paid}");
    let paid = hub.pay(&bob, "bob", "thames-bank").await;
    assert_eq!(paid["amount"]["currency"], "GBP", "{paid}");

    // Both payments reached the sandbox's books.
    let payments = admin(&http, format!("{sandbox}/admin/payments")).await;
    let text = payments.to_string();
    assert!(
        text.contains("sonnenbank") && text.contains("thames-bank"),
        "{text}"
    );

    let (status, log) = demo.stop();
    assert!(status.success(), "{status:?}\n{log}");
}
