//! Berlin Group AIS: consents, redirect and decoupled SCA, account reads, paging, and the
//! bank's rules (frequencyPerDay, expiry, revocation, errors).

use reqwest::Method;
use serde_json::Value;
use time::Duration;

use crate::common::Harness;
use crate::flows::{ais_headers, bg_consent, consent_body, ibans, tpp_code};
use crate::spec::Api;

const BANK: &str = "sonnenbank";

async fn get(h: &Harness, path: &str, consent: &str, psu_present: bool) -> crate::common::Reply {
    h.call(
        Api::BerlinGroup,
        &h.base(BANK),
        Method::GET,
        path,
        &ais_headers(consent, psu_present),
        None,
    )
    .await
}

fn path_of(h: &Harness, href: &str) -> String {
    href.strip_prefix(&h.base(BANK)).unwrap_or(href).to_string()
}

#[tokio::test]
async fn redirect_consent_then_read_accounts_balances_and_paged_transactions() {
    let Some(h) = Harness::start().await else {
        return;
    };
    let ibans = ibans(&h, BANK, "alice");
    assert_eq!(
        ibans.len(),
        3,
        "alice has a current account, savings and a card"
    );
    let consent = bg_consent(
        &h,
        BANK,
        "alice",
        &consent_body(&ibans[..1], "2026-06-01", 4),
    )
    .await;

    let info = get(&h, &format!("/v1/consents/{consent}"), &consent, true)
        .await
        .json();
    assert_eq!(info["consentStatus"], "valid");
    assert_eq!(info["access"]["accounts"][0]["iban"], ibans[0].as_str());
    assert_eq!(
        get(
            &h,
            &format!("/v1/consents/{consent}/status"),
            &consent,
            true
        )
        .await
        .json()["consentStatus"],
        "valid"
    );

    let list = get(&h, "/v1/accounts?withBalance=true", &consent, true)
        .await
        .json();
    let accounts = list["accounts"].as_array().unwrap();
    assert_eq!(accounts.len(), 1, "only the consented account is listed");
    let account_id = accounts[0]["resourceId"].as_str().unwrap().to_string();
    let types: Vec<&str> = accounts[0]["balances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["balanceType"].as_str().unwrap())
        .collect();
    assert!(
        types.contains(&"closingBooked") && types.contains(&"interimAvailable"),
        "{types:?}"
    );

    let details = get(&h, &format!("/v1/accounts/{account_id}"), &consent, true)
        .await
        .json();
    assert_eq!(details["account"]["iban"], ibans[0].as_str());
    let balances = get(
        &h,
        &format!("/v1/accounts/{account_id}/balances"),
        &consent,
        true,
    )
    .await
    .json();
    assert_eq!(balances["balances"].as_array().unwrap().len(), 4);

    // 90 days of booked and pending transactions, page by page through _links.next.
    let first = get(
        &h,
        &format!("/v1/accounts/{account_id}/transactions?bookingStatus=both&dateFrom=2025-12-02"),
        &consent,
        true,
    )
    .await
    .json();
    let pending = first["transactions"]["pending"].as_array().unwrap();
    assert!(!pending.is_empty(), "recent card payments are pending");
    let mut booked: Vec<Value> = first["transactions"]["booked"].as_array().unwrap().clone();
    let mut next = first["transactions"]["_links"]["next"]["href"]
        .as_str()
        .map(str::to_string);
    let mut pages = 1;
    while let Some(href) = next {
        let page = get(&h, &path_of(&h, &href), &consent, false).await;
        assert_eq!(page.status, 200, "{}", page.text());
        let page = page.json();
        assert!(
            page["transactions"].get("pending").is_none(),
            "pending entries come on the first page only"
        );
        booked.extend(
            page["transactions"]["booked"]
                .as_array()
                .unwrap()
                .iter()
                .cloned(),
        );
        next = page["transactions"]["_links"]["next"]["href"]
            .as_str()
            .map(str::to_string);
        pages += 1;
    }
    assert!(
        pages >= 3,
        "90 days of a current account span several pages ({} entries)",
        booked.len()
    );
    let mut ids: Vec<&str> = booked
        .iter()
        .map(|t| t["transactionId"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), booked.len(), "no entry appears on two pages");
    assert!(
        booked
            .iter()
            .all(|t| t["bookingDate"].as_str().unwrap() >= "2025-12-02")
    );
    let kinds: Vec<&str> = booked
        .iter()
        .map(|t| t["bankTransactionCode"].as_str().unwrap())
        .collect();
    for code in [
        "PMNT-RCDT-SALA",
        "PMNT-ICDT-STDO",
        "PMNT-RDDT-ESDD",
        "PMNT-CCRD-POSD",
    ] {
        assert!(kinds.contains(&code), "{code} missing in {kinds:?}");
    }
    let direct_debit = booked
        .iter()
        .find(|t| t["bankTransactionCode"] == "PMNT-RDDT-ESDD")
        .unwrap();
    assert!(direct_debit["mandateId"].is_string() && direct_debit["creditorId"].is_string());

    // Not covered by the consent: the savings account.
    let savings = h
        .sandbox
        .accounts(BANK)
        .unwrap()
        .into_iter()
        .find(|a| a.iban == ibans[1])
        .unwrap();
    let denied = get(
        &h,
        &format!("/v1/accounts/{}/balances", savings.resource_id),
        &consent,
        true,
    )
    .await;
    assert_eq!(
        (denied.status, tpp_code(&denied)),
        (401, "CONSENT_INVALID".into())
    );
    let unknown = get(&h, "/v1/accounts/acc-nope/balances", &consent, true).await;
    assert_eq!(
        (unknown.status, tpp_code(&unknown)),
        (404, "RESOURCE_UNKNOWN".into())
    );
}

#[tokio::test]
async fn pending_entries_book_later_under_new_ids_and_new_ones_appear() {
    let Some(h) = Harness::start().await else {
        return;
    };
    let ibans = ibans(&h, BANK, "alice");
    let consent = bg_consent(&h, BANK, "alice", &consent_body(&ibans, "2026-06-01", 4)).await;
    let card = h
        .sandbox
        .accounts(BANK)
        .unwrap()
        .into_iter()
        .find(|a| a.iban == ibans[0])
        .unwrap()
        .resource_id;
    let read = |status: &'static str| {
        let path =
            format!("/v1/accounts/{card}/transactions?bookingStatus={status}&dateFrom=2026-02-20");
        let h = &h;
        let consent = consent.clone();
        async move { get(h, &path, &consent, true).await.json() }
    };
    let before = read("pending").await;
    let pending: Vec<Value> = before["transactions"]["pending"]
        .as_array()
        .unwrap()
        .clone();
    assert!(!pending.is_empty());
    h.sandbox.advance_clock(Duration::days(5)).unwrap();
    let after = read("both").await;
    let booked = after["transactions"]["booked"].as_array().unwrap();
    let booked_ids: Vec<&str> = booked
        .iter()
        .map(|t| t["transactionId"].as_str().unwrap())
        .collect();
    for p in &pending {
        assert!(
            !booked_ids.contains(&p["transactionId"].as_str().unwrap()),
            "a booked entry keeps its pending id"
        );
        let text = p["remittanceInformationUnstructured"].as_str().unwrap();
        assert!(
            booked
                .iter()
                .any(|b| b["remittanceInformationUnstructured"] == text),
            "{text} never booked"
        );
    }
    let new_pending = after["transactions"]["pending"].as_array().unwrap();
    assert!(
        new_pending.iter().any(|n| !pending
            .iter()
            .any(|p| p["transactionId"] == n["transactionId"])),
        "new card payments appeared"
    );
}

#[tokio::test]
async fn delta_reads_with_entry_reference_from() {
    let Some(h) = Harness::start().await else {
        return;
    };
    let ibans = ibans(&h, BANK, "alice");
    let consent = bg_consent(
        &h,
        BANK,
        "alice",
        &consent_body(&ibans[..1], "2026-05-01", 4),
    )
    .await;
    let account = crate::flows::resource_ids(&h, BANK, "alice")[0].clone();
    let page = get(
        &h,
        &format!("/v1/accounts/{account}/transactions?bookingStatus=booked&dateFrom=2026-02-25"),
        &consent,
        true,
    )
    .await
    .json();
    let booked = page["transactions"]["booked"].as_array().unwrap();
    let oldest = booked.last().unwrap()["entryReference"].as_str().unwrap();
    let delta = get(
        &h,
        &format!(
            "/v1/accounts/{account}/transactions?bookingStatus=booked&entryReferenceFrom={oldest}"
        ),
        &consent,
        true,
    )
    .await
    .json();
    assert_eq!(
        delta["transactions"]["booked"].as_array().unwrap().len(),
        booked.len() - 1
    );
}
