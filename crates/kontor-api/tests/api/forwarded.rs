//! The customer's address the hub passes to the bank (`PSU-IP-Address`) behind an ingress: the
//! rightmost `X-Forwarded-For` entry that is not one of the hub's trusted proxies, never the
//! leftmost one, which the client writes itself.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use kontor_api::ApiSettings;
use kontor_banks::{
    BankConnector, BankError, Callback, ConsentOutcome, ConsentRequest, ConsentSession,
    ConsentStarted, ReadContext, TransactionQuery,
};
use kontor_domain::TenantId;
use kontor_domain::account::{Balance, BankAccount};
use kontor_domain::bank::BankId;
use kontor_domain::transaction::BankTransaction;
use kontor_sandbox_bank::SandboxBank;
use kontor_service::BankDirectory;
use kontor_test_support::{TestApp, sandbox_directory};
use serde_json::{Value, json};

use crate::support::http_settings;

/// The sandbox's own connector, noting the customer address of every consent it starts.
#[derive(Debug)]
struct Recording {
    inner: Arc<dyn BankConnector>,
    seen: Arc<Mutex<Vec<Option<IpAddr>>>>,
}

#[async_trait]
impl BankConnector for Recording {
    async fn start_consent(&self, request: &ConsentRequest) -> Result<ConsentStarted, BankError> {
        self.seen.lock().unwrap().push(request.psu_ip);
        self.inner.start_consent(request).await
    }
    async fn complete_consent(
        &self,
        session: &mut ConsentSession,
        callback: &Callback,
    ) -> Result<ConsentOutcome, BankError> {
        self.inner.complete_consent(session, callback).await
    }
    async fn consent_status(
        &self,
        session: &mut ConsentSession,
    ) -> Result<ConsentOutcome, BankError> {
        self.inner.consent_status(session).await
    }
    async fn accounts(
        &self,
        session: &mut ConsentSession,
        context: &ReadContext,
    ) -> Result<Vec<BankAccount>, BankError> {
        self.inner.accounts(session, context).await
    }
    async fn balances(
        &self,
        session: &mut ConsentSession,
        bank_account_id: &str,
        context: &ReadContext,
    ) -> Result<Vec<Balance>, BankError> {
        self.inner.balances(session, bank_account_id, context).await
    }
    async fn transactions(
        &self,
        session: &mut ConsentSession,
        bank_account_id: &str,
        query: &TransactionQuery,
        context: &ReadContext,
    ) -> Result<Vec<BankTransaction>, BankError> {
        self.inner
            .transactions(session, bank_account_id, query, context)
            .await
    }
    async fn revoke(&self, session: &mut ConsentSession) -> Result<(), BankError> {
        self.inner.revoke(session).await
    }
}

/// Starts linking at Sonnenbank through the page, sending `forwarded` as `X-Forwarded-For`
/// from 127.0.0.1; returns the address the bank was given.
async fn address_given_to_bank(settings: ApiSettings, forwarded: &str) -> Option<IpAddr> {
    let sandbox = SandboxBank::builder().seed(3).start_local().await.unwrap();
    let full = sandbox_directory(&sandbox, &http_settings());
    let bank = BankId::parse("sonnenbank").unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut directory = BankDirectory::new();
    directory.insert(
        full.get(&bank).unwrap().clone(),
        Arc::new(Recording {
            inner: full.connector(&bank, &TenantId::generate()).unwrap(),
            seen: seen.clone(),
        }),
    );
    let app = TestApp::builder()
        .directory(directory)
        .api_settings(settings)
        .spawn()
        .await;
    let tenant = app.tenant("Acme").await;
    let token = app.token(&tenant).await;
    let user = app.create_user(&token, "alice-1", "de").await;
    let created: Value = app
        .post_json(
            "/v1/connections",
            &token,
            &json!({ "user_id": user["id"], "redirect_uri": "https://tenant.example/linked" }),
        )
        .await
        .json()
        .await
        .unwrap();
    let connect = url::Url::parse(created["connect_url"].as_str().unwrap()).unwrap();
    let connect_token = connect
        .query_pairs()
        .find(|(k, _)| k == "token")
        .unwrap()
        .1
        .into_owned();
    let started = app
        .http
        .post(app.url(&format!(
            "/connect/{}/start",
            created["id"].as_str().unwrap()
        )))
        .header("x-forwarded-for", forwarded)
        .form(&[
            ("token", connect_token.as_str()),
            ("bank_id", "sonnenbank"),
            ("method", "redirect"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 303, "{}", started.text().await.unwrap());
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1, "one consent started");
    seen[0]
}

fn behind(proxies: &[&str]) -> ApiSettings {
    ApiSettings {
        trust_forwarded_for: true,
        trusted_proxies: proxies.iter().map(|p| p.parse().unwrap()).collect(),
        ..ApiSettings::default()
    }
}

#[tokio::test]
async fn the_bank_gets_the_address_the_ingress_saw_not_the_one_the_client_wrote() {
    // The client claims 6.6.6.6; the ingress (10.0.0.7, then the hub's own sidecar on
    // loopback) appended the address it really came from.
    let ip = address_given_to_bank(
        behind(&["127.0.0.1/32", "10.0.0.0/8"]),
        "6.6.6.6, 203.0.113.9, 10.0.0.7",
    )
    .await;
    assert_eq!(ip, Some("203.0.113.9".parse().unwrap()));
}

#[tokio::test]
async fn the_header_is_ignored_from_a_peer_that_is_not_a_trusted_proxy() {
    let ip = address_given_to_bank(behind(&["10.0.0.0/8"]), "203.0.113.9").await;
    assert_eq!(ip, Some("127.0.0.1".parse().unwrap()));
    let off = ApiSettings {
        trust_forwarded_for: false,
        ..behind(&["127.0.0.1/32"])
    };
    let ip = address_given_to_bank(off, "203.0.113.9").await;
    assert_eq!(ip, Some("127.0.0.1".parse().unwrap()));
}
