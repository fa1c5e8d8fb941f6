//! The state file: a sandbox restarted on it knows the consents, tokens and payments its
//! clients hold and stands at the same simulated time; a file it cannot use stops the start.

use reqwest::Method;
use serde_json::json;
use time::Duration;

use crate::common::{Harness, bg, builder};
use crate::flows::{bg_consent, complete_redirect_sca, consent_body, ibans, redirect_headers};
use crate::spec::Api;
use crate::uk_flows::{ais_access, aisp, present, token_request};

const BANK: &str = "sonnenbank";

async fn bg_get(h: &Harness, path: &str, consent: &str) -> crate::common::Reply {
    let mut headers = bg(&[("consent-id", consent)]);
    headers.push(("psu-ip-address", "192.0.2.10".into()));
    h.call(
        Api::BerlinGroup,
        &h.base(BANK),
        Method::GET,
        path,
        &headers,
        None,
    )
    .await
}

async fn payment_status(h: &Harness, id: &str) -> String {
    let reply = h
        .call(
            Api::BerlinGroup,
            &h.base(BANK),
            Method::GET,
            &format!("/v1/payments/sepa-credit-transfers/{id}/status"),
            &bg(&[]),
            None,
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()["transactionStatus"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn a_restarted_sandbox_keeps_consents_tokens_payments_and_its_clock() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sandbox").join("state.json");
    let Some(h) = Harness::start_with(builder().state_file(&file)).await else {
        return;
    };
    assert!(file.is_file(), "the file is written at start");

    // A Berlin Group consent, a payment authorised but not settled, a UK consent with tokens.
    let alice = ibans(&h, BANK, "alice");
    let consent = bg_consent(&h, BANK, "alice", &consent_body(&alice, "2026-06-01", 4)).await;
    let created = h
        .call(
            Api::BerlinGroup,
            &h.base(BANK),
            Method::POST,
            "/v1/payments/sepa-credit-transfers",
            &redirect_headers(),
            Some(&json!({
                "debtorAccount": { "iban": alice[0] },
                "instructedAmount": { "currency": "EUR", "amount": "123.45" },
                "creditorAccount": { "iban": "DE89370400440532013000" },
                "creditorName": "Rheinwerk Versand GmbH",
                "remittanceInformationUnstructured": "Rechnung 2026-0042"
            })),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text());
    let payment = created.json()["paymentId"].as_str().unwrap().to_string();
    let sca = created.json()["_links"]["scaRedirect"]["href"]
        .as_str()
        .unwrap()
        .to_string();
    complete_redirect_sca(&h, &sca, "alice").await;
    assert_eq!(payment_status(&h, &payment).await, "ACTC");
    let (_, access, refresh) = ais_access(
        &h,
        "bob",
        &["ReadAccountsDetail", "ReadBalances"],
        json!({}),
    )
    .await;
    // Less than the access token's lifetime (an hour).
    h.sandbox.advance_clock(Duration::minutes(20)).unwrap();
    let now = h.sandbox.now();
    let accounts = h.sandbox.accounts(BANK).unwrap();
    let ledger = h.sandbox.payments();
    h.sandbox.shutdown().await;

    let h = Harness::start_with(builder().state_file(&file))
        .await
        .unwrap();
    assert_eq!(h.sandbox.now(), now, "the clock stands where it stood");
    assert_eq!(
        h.sandbox.accounts(BANK).unwrap(),
        accounts,
        "the same accounts and balances, the payment's pending debit included"
    );
    assert_eq!(h.sandbox.payments(), ledger);

    let status = bg_get(&h, &format!("/v1/consents/{consent}/status"), &consent).await;
    assert_eq!(status.json()["consentStatus"], "valid", "{}", status.text());
    let read = bg_get(&h, "/v1/accounts?withBalance=true", &consent).await;
    assert_eq!(read.status, 200, "{}", read.text());

    let uk = h
        .call(
            Api::UkAccounts,
            &aisp(&h),
            Method::GET,
            "/accounts",
            &present(&access),
            None,
        )
        .await;
    assert_eq!(
        uk.status,
        200,
        "the access token still works: {}",
        uk.text()
    );
    let renewed = token_request(
        &h,
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
    )
    .await;
    assert_eq!(renewed.status, 200, "{}", renewed.text());

    // The payment settles on the restored clock; new ids do not repeat old ones.
    h.sandbox.advance_clock(Duration::hours(4)).unwrap();
    assert_eq!(payment_status(&h, &payment).await, "ACSC");
    let again = bg_consent(&h, BANK, "alice", &consent_body(&alice, "2026-06-01", 4)).await;
    assert_ne!(again, consent);
}

#[tokio::test]
async fn a_state_file_the_sandbox_cannot_use_stops_the_start_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("state.json");
    let start = |file: &std::path::Path| builder().state_file(file).start_local();

    std::fs::write(&file, "{\"format\": 1, \"seed\": 7, \"clo").unwrap();
    let err = start(&file).await.unwrap_err().to_string();
    assert!(err.contains(&file.display().to_string()), "{err}");
    assert!(err.contains("not valid JSON"), "{err}");
    assert!(err.contains("delete this file"), "{err}");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "{\"format\": 1, \"seed\": 7, \"clo",
        "the file is left as it was"
    );

    std::fs::write(&file, "{\"format\": 99}").unwrap();
    let err = start(&file).await.unwrap_err().to_string();
    assert!(err.contains("format 99"), "{err}");

    // A valid file of another sandbox: another seed, or a bank this one does not run.
    std::fs::remove_file(&file).unwrap();
    start(&file).await.unwrap().shutdown().await;
    let err = builder()
        .seed(8)
        .state_file(&file)
        .start_local()
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("seed 7") && err.contains("seed 8"), "{err}");
    let only_thames: Vec<_> = kontor_sandbox_bank::default_banks()
        .into_iter()
        .filter(|b| b.id == "thames-bank")
        .collect();
    let err = builder()
        .banks(only_thames)
        .state_file(&file)
        .start_local()
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("banque-lumiere") || err.contains("sonnenbank"),
        "{err}"
    );

    // A value of the wrong shape is named by its place in the file.
    let mut saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    saved["banks"]["sonnenbank"]["id_counter"] = json!("many");
    std::fs::write(&file, saved.to_string()).unwrap();
    let err = start(&file).await.unwrap_err().to_string();
    assert!(err.contains("banks.sonnenbank.id_counter"), "{err}");
}
