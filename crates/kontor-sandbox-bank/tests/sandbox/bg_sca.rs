//! Berlin Group consents and their SCA: redirect, bank-offered, decoupled, explicit starts,
//! failed and cancelled authorisations.

use reqwest::Method;
use serde_json::json;

use crate::common::{Harness, TPP_NOK_REDIRECT, bg, root};
use crate::flows::{
    absolute, ais_headers, complete_redirect_sca, consent_body, ibans, redirect_headers, tpp_code,
};
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
async fn bank_offered_consent_lets_the_psu_choose_accounts() {
    let Some(h) = Harness::start().await else {
        return;
    };
    let body = json!({ "access": { "accounts": [], "balances": [], "transactions": [] }, "recurringIndicator": true, "validUntil": "2026-05-01", "frequencyPerDay": 4, "combinedServiceIndicator": false });
    let created = h
        .call(
            Api::BerlinGroup,
            &h.base(BANK),
            Method::POST,
            "/v1/consents",
            &redirect_headers(),
            Some(&body),
        )
        .await;
    assert_eq!(created.status, 201);
    let consent = created.json()["consentId"].as_str().unwrap().to_string();
    let sca = created.json()["_links"]["scaRedirect"]["href"]
        .as_str()
        .unwrap()
        .to_string();
    let page = h.get_page(&sca).await;
    let login = h
        .post_form(
            &page.form_action("login-form", &root(&h)),
            &[("username", "alice"), ("password", "sandbox")],
        )
        .await;
    let page = h.get_page(&absolute(&h, &login.location())).await;
    let otp = h
        .post_form(
            &page.form_action("otp-form", &root(&h)),
            &[("otp", "123456")],
        )
        .await;
    let page = h.get_page(&absolute(&h, &otp.location())).await;
    assert_eq!(page.step(), "accounts");
    let chosen = crate::flows::resource_ids(&h, BANK, "alice")[1].clone();
    assert!(page.has_id(&format!("account-{chosen}")));
    let done = h
        .post_form(
            &page.form_action("accounts-form", &root(&h)),
            &[("account", &chosen)],
        )
        .await;
    assert_eq!(done.location(), crate::common::TPP_REDIRECT);
    let info = get(&h, &format!("/v1/consents/{consent}"), &consent, true)
        .await
        .json();
    assert_eq!(info["access"]["transactions"].as_array().unwrap().len(), 1);
    let list = get(&h, "/v1/accounts", &consent, true).await.json();
    assert_eq!(list["accounts"][0]["resourceId"], chosen.as_str());
}

#[tokio::test]
async fn decoupled_consent_is_approved_in_the_banking_app() {
    let Some(h) = Harness::start().await else {
        return;
    };
    let headers = bg(&[
        ("psu-ip-address", "192.0.2.10"),
        ("psu-id", "alice"),
        ("tpp-redirect-preferred", "false"),
    ]);
    let body = json!({ "access": { "allPsd2": "allAccounts" }, "recurringIndicator": true, "validUntil": "2026-05-01", "frequencyPerDay": 4, "combinedServiceIndicator": false });
    let created = h
        .call(
            Api::BerlinGroup,
            &h.base(BANK),
            Method::POST,
            "/v1/consents",
            &headers,
            Some(&body),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text());
    assert_eq!(created.header("aspsp-sca-approach"), Some("DECOUPLED"));
    let json = created.json();
    assert!(json["_links"].get("scaRedirect").is_none());
    let consent = json["consentId"].as_str().unwrap().to_string();
    let status_path = path_of(&h, json["_links"]["scaStatus"]["href"].as_str().unwrap());
    assert_eq!(
        get(&h, &status_path, &consent, true).await.json()["scaStatus"],
        "started"
    );

    let app = h.get_page(&format!("{}/app", h.base(BANK))).await;
    assert_eq!(app.step(), "app-login");
    let wrong = h
        .post_form(
            &app.form_action("app-login-form", &root(&h)),
            &[("username", "alice"), ("password", "nope")],
        )
        .await;
    assert!(wrong.has_id("error"));
    let list = h
        .post_form(
            &app.form_action("app-login-form", &root(&h)),
            &[("username", "alice"), ("password", "sandbox")],
        )
        .await;
    assert_eq!(list.step(), "app-list");
    let auth_id = status_path.rsplit('/').next().unwrap();
    let approve = list.form_action(&format!("approve-{auth_id}"), &root(&h));
    let session = list.input_value("session");
    let bad = h
        .post_form(&approve, &[("session", &session), ("otp", "000000")])
        .await;
    assert!(bad.has_id("error"));
    assert_eq!(
        get(&h, &status_path, &consent, true).await.json()["scaStatus"],
        "started"
    );
    let ok = h
        .post_form(&approve, &[("session", &session), ("otp", "123456")])
        .await;
    assert!(ok.has_id("result"), "{}", ok.text());
    assert_eq!(
        get(&h, &status_path, &consent, true).await.json()["scaStatus"],
        "finalised"
    );
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
    let accounts = get(&h, "/v1/accounts", &consent, true).await.json();
    assert_eq!(
        accounts["accounts"].as_array().unwrap().len(),
        3,
        "allPsd2 grants all of alice's accounts"
    );
}

#[tokio::test]
async fn explicit_authorisation_start_and_listing() {
    let Some(h) = Harness::start().await else {
        return;
    };
    let mut headers = redirect_headers();
    headers.push(("tpp-explicit-authorisation-preferred", "true".into()));
    let body = consent_body(&ibans(&h, BANK, "alice")[..1], "2026-05-01", 2);
    let created = h
        .call(
            Api::BerlinGroup,
            &h.base(BANK),
            Method::POST,
            "/v1/consents",
            &headers,
            Some(&body),
        )
        .await
        .json();
    let consent = created["consentId"].as_str().unwrap().to_string();
    let start = path_of(
        &h,
        created["_links"]["startAuthorisation"]["href"]
            .as_str()
            .unwrap(),
    );
    let started = h
        .call(
            Api::BerlinGroup,
            &h.base(BANK),
            Method::POST,
            &start,
            &redirect_headers(),
            Some(&json!({})),
        )
        .await;
    assert_eq!(started.status, 201, "{}", started.text());
    let started = started.json();
    let auth_id = started["authorisationId"].as_str().unwrap().to_string();
    let list = get(&h, &start, &consent, true).await.json();
    assert_eq!(list["authorisationIds"], json!([auth_id]));
    let done = complete_redirect_sca(
        &h,
        started["_links"]["scaRedirect"]["href"].as_str().unwrap(),
        "alice",
    )
    .await;
    assert_eq!(done.status, 303);
    let again = h
        .call(
            Api::BerlinGroup,
            &h.base(BANK),
            Method::POST,
            &start,
            &redirect_headers(),
            None,
        )
        .await;
    assert_eq!(
        (again.status, tpp_code(&again)),
        (409, "STATUS_INVALID".into())
    );
    let embedded = h
        .call(
            Api::BerlinGroup,
            &h.base(BANK),
            Method::PUT,
            &format!("{start}/{auth_id}"),
            &redirect_headers(),
            Some(&json!({ "psuData": { "password": "sandbox" } })),
        )
        .await;
    assert_eq!(
        (embedded.status, tpp_code(&embedded)),
        (400, "SERVICE_INVALID".into())
    );
}

#[tokio::test]
async fn three_wrong_passwords_fail_the_authorisation() {
    let Some(h) = Harness::start().await else {
        return;
    };
    let body = consent_body(&ibans(&h, BANK, "alice")[..1], "2026-05-01", 4);
    let created = h
        .call(
            Api::BerlinGroup,
            &h.base(BANK),
            Method::POST,
            "/v1/consents",
            &redirect_headers(),
            Some(&body),
        )
        .await
        .json();
    let consent = created["consentId"].as_str().unwrap().to_string();
    let sca = created["_links"]["scaRedirect"]["href"]
        .as_str()
        .unwrap()
        .to_string();
    let page = h.get_page(&sca).await;
    let action = page.form_action("login-form", &root(&h));
    for attempt in 1..=3 {
        let reply = h
            .post_form(&action, &[("username", "alice"), ("password", "wrong")])
            .await;
        assert_eq!(reply.status, 200);
        assert!(reply.has_id("error"));
        assert_eq!(reply.step(), if attempt < 3 { "login" } else { "failed" });
    }
    assert_eq!(
        get(
            &h,
            &format!("/v1/consents/{consent}/status"),
            &consent,
            true
        )
        .await
        .json()["consentStatus"],
        "rejected"
    );
    let read = get(&h, "/v1/accounts", &consent, true).await;
    assert_eq!(
        (read.status, tpp_code(&read)),
        (401, "CONSENT_INVALID".into())
    );
    // A wrong code counts the same way, and the cancel button fails the authorisation too.
    let created = h
        .call(
            Api::BerlinGroup,
            &h.base(BANK),
            Method::POST,
            "/v1/consents",
            &redirect_headers(),
            Some(&body),
        )
        .await
        .json();
    let page = h
        .get_page(created["_links"]["scaRedirect"]["href"].as_str().unwrap())
        .await;
    let login = h
        .post_form(
            &page.form_action("login-form", &root(&h)),
            &[("username", "alice"), ("password", "sandbox")],
        )
        .await;
    let page = h.get_page(&absolute(&h, &login.location())).await;
    let wrong = h
        .post_form(
            &page.form_action("otp-form", &root(&h)),
            &[("otp", "111111")],
        )
        .await;
    assert!(wrong.has_id("error") && wrong.step() == "otp");
    let cancelled = h
        .post_form(&wrong.form_action("cancel-form", &root(&h)), &[])
        .await;
    assert_eq!(cancelled.location(), TPP_NOK_REDIRECT);
    let id = created["consentId"].as_str().unwrap();
    assert_eq!(
        get(&h, &format!("/v1/consents/{id}/status"), id, true)
            .await
            .json()["consentStatus"],
        "rejected"
    );
}
