//! Reusable journeys: a PSU going through the bank's SCA pages, as a browser would.

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{Harness, Reply, TPP_NOK_REDIRECT, TPP_REDIRECT, bg, root};
use crate::spec::Api;

/// Makes a bank-relative Location absolute.
pub fn absolute(h: &Harness, location: &str) -> String {
    if location.starts_with("http") {
        location.to_string()
    } else {
        format!("{}{location}", root(h))
    }
}

/// Logs in, enters the code, and (if asked) keeps the pre-selected accounts. Returns the final
/// response: a 303 back to the TPP, or the bank's result page.
pub async fn complete_redirect_sca(h: &Harness, sca_url: &str, user: &str) -> Reply {
    let page = h.get_page(sca_url).await;
    assert_eq!(page.status, 200, "{}", page.text());
    assert_eq!(page.step(), "login");
    assert!(
        page.has_id("username")
            && page.has_id("password")
            && page.has_id("submit")
            && page.has_id("cancel")
    );
    let reply = h
        .post_form(
            &page.form_action("login-form", &root(h)),
            &[("username", user), ("password", "sandbox")],
        )
        .await;
    assert_eq!(reply.status, 303, "{}", reply.text());
    let page = h.get_page(&absolute(h, &reply.location())).await;
    assert_eq!(page.step(), "otp");
    assert!(page.has_id("otp"));
    let reply = h
        .post_form(
            &page.form_action("otp-form", &root(h)),
            &[("otp", "123456")],
        )
        .await;
    if reply.status == 303
        && reply
            .location()
            .starts_with(&format!("/{}", sca_url.split('/').nth(3).unwrap_or("")))
    {
        let page = h.get_page(&absolute(h, &reply.location())).await;
        assert_eq!(page.step(), "accounts");
        let text = page.text();
        let checked: Vec<String> = text
            .split("name=\"account\" value=\"")
            .skip(1)
            .filter(|chunk| {
                chunk
                    .split('>')
                    .next()
                    .is_some_and(|tag| tag.contains("checked"))
            })
            .map(|chunk| chunk.split('"').next().unwrap().to_string())
            .collect();
        let fields: Vec<(&str, &str)> = checked.iter().map(|c| ("account", c.as_str())).collect();
        return h
            .post_form(&page.form_action("accounts-form", &root(h)), &fields)
            .await;
    }
    reply
}

/// Alice's (or anyone's) IBANs at a bank, in account order.
pub fn ibans(h: &Harness, bank: &str, user: &str) -> Vec<String> {
    h.sandbox
        .accounts(bank)
        .unwrap()
        .into_iter()
        .filter(|a| a.username == user)
        .map(|a| a.iban)
        .collect()
}

pub fn resource_ids(h: &Harness, bank: &str, user: &str) -> Vec<String> {
    h.sandbox
        .accounts(bank)
        .unwrap()
        .into_iter()
        .filter(|a| a.username == user)
        .map(|a| a.resource_id)
        .collect()
}

/// A consent body naming accounts for details, balances and transactions.
pub fn consent_body(ibans: &[String], valid_until: &str, frequency: u32) -> Value {
    let refs: Vec<Value> = ibans.iter().map(|i| json!({ "iban": i })).collect();
    json!({
        "access": { "accounts": refs, "balances": refs, "transactions": refs },
        "recurringIndicator": true,
        "validUntil": valid_until,
        "frequencyPerDay": frequency,
        "combinedServiceIndicator": false
    })
}

pub fn redirect_headers() -> Vec<(&'static str, String)> {
    bg(&[
        ("psu-ip-address", "192.0.2.10"),
        ("tpp-redirect-uri", TPP_REDIRECT),
        ("tpp-nok-redirect-uri", TPP_NOK_REDIRECT),
    ])
}

/// Creates a Berlin Group consent and completes redirect SCA; returns the consent id.
pub async fn bg_consent(h: &Harness, bank: &str, user: &str, body: &Value) -> String {
    let base = h.base(bank);
    let created = h
        .call(
            Api::BerlinGroup,
            &base,
            Method::POST,
            "/v1/consents",
            &redirect_headers(),
            Some(body),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text());
    assert_eq!(created.header("aspsp-sca-approach"), Some("REDIRECT"));
    let json = created.json();
    let sca = json["_links"]["scaRedirect"]["href"]
        .as_str()
        .unwrap()
        .to_string();
    let done = complete_redirect_sca(h, &sca, user).await;
    assert_eq!(done.status, 303, "{}", done.text());
    assert_eq!(done.location(), TPP_REDIRECT);
    json["consentId"].as_str().unwrap().to_string()
}

/// Headers of an AIS read: with the PSU present (no daily limit) or not.
pub fn ais_headers(consent: &str, psu_present: bool) -> Vec<(&'static str, String)> {
    let mut headers = bg(&[("consent-id", consent)]);
    if psu_present {
        headers.push(("psu-ip-address", "192.0.2.10".into()));
    }
    headers
}

/// The `tppMessages[0].code` of a Berlin Group error.
pub fn tpp_code(reply: &Reply) -> String {
    reply.json()["tppMessages"][0]["code"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}
