//! The admin API and the public in-process API: overview, clock, ledger, decoupled approval,
//! custom banks, and the CLI entry point.

use reqwest::Method;
use serde_json::json;

use crate::common::{Harness, bg, builder};
use crate::flows::{ais_headers, consent_body, ibans};
use crate::spec::Api;

#[tokio::test]
async fn overview_clock_accounts_and_ledger() {
    let Some(h) = Harness::start().await else {
        return;
    };
    let overview = h.admin(Method::GET, "", None).await.json();
    assert_eq!(overview["now"], "2026-03-02T09:00:00Z");
    let ids: Vec<&str> = overview["banks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["sonnenbank", "banque-lumiere", "thames-bank"]);
    let advanced = h
        .admin(
            Method::POST,
            "/clock/advance",
            Some(json!({ "hours": 2, "minutes": 30 })),
        )
        .await
        .json();
    assert_eq!(advanced["now"], "2026-03-02T11:30:00Z");
    assert_eq!(
        h.admin(Method::POST, "/clock/advance", Some(json!({ "hours": -1 })))
            .await
            .status,
        400
    );
    assert_eq!(
        h.admin(Method::POST, "/clock/advance", Some(json!({ "weeks": 1 })))
            .await
            .status,
        400
    );
    let accounts = h
        .admin(Method::GET, "/banks/banque-lumiere/accounts", None)
        .await
        .json();
    assert!(
        accounts
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["iban"].as_str().unwrap().starts_with("FR"))
    );
    assert_eq!(
        h.admin(Method::GET, "/payments", None).await.json(),
        json!([])
    );
    assert_eq!(
        h.admin(Method::GET, "/banks/nowhere/accounts", None)
            .await
            .status,
        404
    );
    let index = h.get_page(h.sandbox.url()).await;
    assert!(index.text().contains("Thames Bank"));
}

#[tokio::test]
async fn decoupled_authorisations_can_be_approved_through_the_admin_api() {
    let Some(h) = Harness::start().await else {
        return;
    };
    let headers = bg(&[
        ("psu-ip-address", "192.0.2.1"),
        ("psu-id", "carol"),
        ("tpp-redirect-preferred", "false"),
    ]);
    let body = consent_body(&ibans(&h, "banque-lumiere", "carol"), "2026-04-01", 4);
    let created = h
        .call(
            Api::BerlinGroup,
            &h.base("banque-lumiere"),
            Method::POST,
            "/v1/consents",
            &headers,
            Some(&body),
        )
        .await
        .json();
    let consent = created["consentId"].as_str().unwrap().to_string();
    let auth = created["_links"]["scaStatus"]["href"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    let approved = h
        .admin(
            Method::POST,
            &format!("/banks/banque-lumiere/authorisations/{auth}/approve"),
            None,
        )
        .await;
    assert_eq!(approved.status, 200, "{}", approved.text());
    let status = h
        .call(
            Api::BerlinGroup,
            &h.base("banque-lumiere"),
            Method::GET,
            &format!("/v1/consents/{consent}/status"),
            &ais_headers(&consent, true),
            None,
        )
        .await;
    assert_eq!(status.json()["consentStatus"], "valid");
    assert_eq!(
        h.admin(
            Method::POST,
            &format!("/banks/banque-lumiere/authorisations/{auth}/approve"),
            None
        )
        .await
        .status,
        409
    );
    // The in-process API does the same for redirect authorisations, naming the PSU.
    let created = h
        .call(
            Api::BerlinGroup,
            &h.base("banque-lumiere"),
            Method::POST,
            "/v1/consents",
            &crate::flows::redirect_headers(),
            Some(&body),
        )
        .await
        .json();
    let auth = created["_links"]["scaStatus"]["href"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    assert!(
        h.sandbox
            .approve_authorisation("banque-lumiere", &auth, None)
            .is_err(),
        "nobody logged in yet"
    );
    let back = h
        .sandbox
        .approve_authorisation("banque-lumiere", &auth, Some("carol"))
        .unwrap();
    assert_eq!(back.as_deref(), Some(crate::common::TPP_REDIRECT));
}

#[tokio::test]
async fn a_banks_file_adds_banks_with_their_own_country() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("banks.toml");
    std::fs::write(
        &path,
        r##"
include_default_banks = false
[[bank]]
id = "alpenbank"
name = "Alpenbank"
country = "AT"
standard = "berlin-group"
bic = "ALPNATW1XXX"
currency = "EUR"
customers = ["alice", "bob"]
page_size = 20
theme = { primary = "#065f46", accent = "#047857", background = "#ecfdf5", language = "de", tagline = "Servus" }
"##,
    )
    .unwrap();
    let Some(h) = Harness::start_with(builder().banks_file(&path).unwrap()).await else {
        return;
    };
    assert_eq!(h.sandbox.banks().len(), 1);
    let alice = ibans(&h, "alpenbank", "alice");
    assert!(alice.iter().all(|i| i.starts_with("AT")));
    let consent = crate::flows::bg_consent(
        &h,
        "alpenbank",
        "alice",
        &consent_body(&alice, "2026-04-01", 4),
    )
    .await;
    let list = h
        .call(
            Api::BerlinGroup,
            &h.base("alpenbank"),
            Method::GET,
            "/v1/accounts",
            &ais_headers(&consent, true),
            None,
        )
        .await;
    assert_eq!(list.json()["accounts"].as_array().unwrap().len(), 3);
    assert_eq!(
        ibans(&h, "alpenbank", "bob").len(),
        1,
        "bob keeps a side account in Austria"
    );
}

#[tokio::test]
async fn the_cli_entry_point_serves_until_shutdown() {
    use clap::Parser;
    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: kontor_sandbox_bank::SandboxArgs,
    }
    let cli = Cli::parse_from([
        "kontor",
        "--listen",
        "127.0.0.1:0",
        "--seed",
        "9",
        "--start",
        "2026-03-02",
        "--freeze-clock",
        "--json",
    ]);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(kontor_sandbox_bank::run(cli.args, async {
        let _ = rx.await;
    }));
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(!task.is_finished(), "still serving");
    tx.send(()).unwrap();
    task.await.unwrap().unwrap();
    let bad = Cli::parse_from([
        "kontor",
        "--listen",
        "127.0.0.1:0",
        "--banks",
        "/nonexistent/banks.toml",
    ]);
    assert!(kontor_sandbox_bank::run(bad.args, async {}).await.is_err());
}
