//! Berlin Group PIS: SEPA and instant SEPA payments through SCA to settlement, funds checks,
//! idempotent retries, cancellation and errors.

use reqwest::Method;
use serde_json::{Value, json};
use time::Duration;

use crate::common::{Harness, TPP_REDIRECT, bg, root};
use crate::flows::{complete_redirect_sca, ibans, redirect_headers, tpp_code};
use crate::spec::Api;

const BANK: &str = "sonnenbank";
const CREDITOR: &str = "DE89370400440532013000";

fn payment(debtor: &str, amount: &str) -> Value {
    json!({
        "endToEndIdentification": "KONTOR-TEST-1",
        "debtorAccount": { "iban": debtor },
        "instructedAmount": { "currency": "EUR", "amount": amount },
        "creditorAccount": { "iban": CREDITOR },
        "creditorName": "Rheinwerk Versand GmbH",
        "remittanceInformationUnstructured": "Rechnung 2026-0042"
    })
}

async fn status(h: &Harness, product: &str, id: &str) -> String {
    let reply = h
        .call(
            Api::BerlinGroup,
            &h.base(BANK),
            Method::GET,
            &format!("/v1/payments/{product}/{id}/status"),
            &bg(&[]),
            None,
        )
        .await;
    reply.json()["transactionStatus"]
        .as_str()
        .unwrap()
        .to_string()
}

fn booked_balance(h: &Harness, iban: &str) -> String {
    h.sandbox
        .accounts(BANK)
        .unwrap()
        .into_iter()
        .find(|a| a.iban == iban)
        .unwrap()
        .booked_balance
}

#[tokio::test]
async fn sepa_credit_transfer_goes_rcvd_actc_acsc_and_debits_once() {
    let Some(h) = Harness::start().await else {
        return;
    };
    let debtor = ibans(&h, BANK, "alice")[0].clone();
    let booked_before = booked_balance(&h, &debtor);
    let created = h
        .call(
            Api::BerlinGroup,
            &h.base(BANK),
            Method::POST,
            "/v1/payments/sepa-credit-transfers",
            &redirect_headers(),
            Some(&payment(&debtor, "123.45")),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text());
    let json = created.json();
    assert_eq!(json["transactionStatus"], "RCVD");
    let id = json["paymentId"].as_str().unwrap().to_string();
    assert_eq!(
        created.header("location").unwrap(),
        format!("{}/v1/payments/sepa-credit-transfers/{id}", h.base(BANK))
    );
    let done = complete_redirect_sca(
        &h,
        json["_links"]["scaRedirect"]["href"].as_str().unwrap(),
        "alice",
    )
    .await;
    assert_eq!(done.location(), TPP_REDIRECT);
    assert_eq!(status(&h, "sepa-credit-transfers", &id).await, "ACTC");
    assert_eq!(
        booked_balance(&h, &debtor),
        booked_before,
        "accepted, not yet booked"
    );
    h.sandbox.advance_clock(Duration::hours(4)).unwrap();
    assert_eq!(status(&h, "sepa-credit-transfers", &id).await, "ACSC");
    let info = h
        .call(
            Api::BerlinGroup,
            &h.base(BANK),
            Method::GET,
            &format!("/v1/payments/sepa-credit-transfers/{id}"),
            &bg(&[]),
            None,
        )
        .await
        .json();
    assert_eq!(info["instructedAmount"]["amount"], "123.45");
    assert_eq!(info["transactionStatus"], "ACSC");
    let ledger: Vec<_> = h
        .sandbox
        .payments()
        .into_iter()
        .filter(|p| p.payment_id == id)
        .collect();
    assert_eq!(ledger.len(), 1);
    assert!(ledger[0].executed);
    let cancel = h
        .call(
            Api::BerlinGroup,
            &h.base(BANK),
            Method::DELETE,
            &format!("/v1/payments/sepa-credit-transfers/{id}"),
            &bg(&[]),
            None,
        )
        .await;
    assert_eq!(
        (cancel.status, tpp_code(&cancel)),
        (405, "CANCELLATION_INVALID".into())
    );
    assert_eq!(
        cancel.header("allow"),
        Some("GET,HEAD"),
        "a 405 lists what the payment still allows"
    );
}

#[tokio::test]
async fn instant_payment_approved_in_the_app_settles_within_seconds() {
    let Some(h) = Harness::start().await else {
        return;
    };
    let debtor = ibans(&h, BANK, "alice")[0].clone();
    let headers = bg(&[
        ("psu-ip-address", "192.0.2.10"),
        ("psu-id", "alice"),
        ("tpp-redirect-preferred", "false"),
    ]);
    let created = h
        .call(
            Api::BerlinGroup,
            &h.base(BANK),
            Method::POST,
            "/v1/payments/instant-sepa-credit-transfers",
            &headers,
            Some(&payment(&debtor, "19.99")),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text());
    assert_eq!(created.header("aspsp-sca-approach"), Some("DECOUPLED"));
    let id = created.json()["paymentId"].as_str().unwrap().to_string();
    let app = h.get_page(&format!("{}/app", h.base(BANK))).await;
    let list = h
        .post_form(
            &app.form_action("app-login-form", &root(&h)),
            &[("username", "alice"), ("password", "sandbox")],
        )
        .await;
    let auths = h
        .call(
            Api::BerlinGroup,
            &h.base(BANK),
            Method::GET,
            &format!("/v1/payments/instant-sepa-credit-transfers/{id}/authorisations"),
            &bg(&[]),
            None,
        )
        .await
        .json();
    let auth = auths["authorisationIds"][0].as_str().unwrap().to_string();
    assert!(list.text().contains("19.99"), "the app shows the amount");
    let ok = h
        .post_form(
            &list.form_action(&format!("approve-{auth}"), &root(&h)),
            &[("session", &list.input_value("session")), ("otp", "123456")],
        )
        .await;
    assert!(ok.has_id("result"));
    assert_eq!(
        status(&h, "instant-sepa-credit-transfers", &id).await,
        "ACTC"
    );
    h.sandbox.advance_clock(Duration::seconds(5)).unwrap();
    assert_eq!(
        status(&h, "instant-sepa-credit-transfers", &id).await,
        "ACSC"
    );
    let sca = h
        .call(
            Api::BerlinGroup,
            &h.base(BANK),
            Method::GET,
            &format!("/v1/payments/instant-sepa-credit-transfers/{id}/authorisations/{auth}"),
            &bg(&[]),
            None,
        )
        .await;
    assert_eq!(sca.json()["scaStatus"], "finalised");
}

#[tokio::test]
async fn insufficient_funds_reject_the_payment() {
    let Some(h) = Harness::start().await else {
        return;
    };
    let debtor = ibans(&h, BANK, "alice")[0].clone();
    let created = h
        .call(
            Api::BerlinGroup,
            &h.base(BANK),
            Method::POST,
            "/v1/payments/sepa-credit-transfers",
            &redirect_headers(),
            Some(&payment(&debtor, "999999.00")),
        )
        .await
        .json();
    let id = created["paymentId"].as_str().unwrap().to_string();
    complete_redirect_sca(
        &h,
        created["_links"]["scaRedirect"]["href"].as_str().unwrap(),
        "alice",
    )
    .await;
    assert_eq!(status(&h, "sepa-credit-transfers", &id).await, "RJCT");
    assert!(
        !h.sandbox
            .payments()
            .iter()
            .find(|p| p.payment_id == id)
            .unwrap()
            .executed
    );
    let mut headers = redirect_headers();
    headers.push(("tpp-rejection-nofunds-preferred", "true".into()));
    let early = h
        .call(
            Api::BerlinGroup,
            &h.base(BANK),
            Method::POST,
            "/v1/payments/sepa-credit-transfers",
            &headers,
            Some(&payment(&debtor, "999999.00")),
        )
        .await;
    assert_eq!(
        (early.status, tpp_code(&early)),
        (400, "PAYMENT_FAILED".into())
    );
}

#[tokio::test]
async fn a_retried_initiation_with_the_same_request_id_makes_one_payment() {
    let Some(h) = Harness::start().await else {
        return;
    };
    let debtor = ibans(&h, BANK, "alice")[0].clone();
    let headers = redirect_headers();
    let first = h
        .call(
            Api::BerlinGroup,
            &h.base(BANK),
            Method::POST,
            "/v1/payments/sepa-credit-transfers",
            &headers,
            Some(&payment(&debtor, "10.00")),
        )
        .await
        .json();
    let second = h
        .call(
            Api::BerlinGroup,
            &h.base(BANK),
            Method::POST,
            "/v1/payments/sepa-credit-transfers",
            &headers,
            Some(&payment(&debtor, "10.00")),
        )
        .await
        .json();
    assert_eq!(first["paymentId"], second["paymentId"]);
    assert_eq!(h.sandbox.payments().len(), 1);
}

#[tokio::test]
async fn payment_to_another_customer_of_the_bank_credits_them() {
    let Some(h) = Harness::start().await else {
        return;
    };
    let debtor = ibans(&h, BANK, "alice")[0].clone();
    let carol = ibans(&h, BANK, "carol")[0].clone();
    let before = booked_balance(&h, &carol);
    let mut body = payment(&debtor, "50.00");
    body["creditorAccount"]["iban"] = json!(carol);
    let created = h
        .call(
            Api::BerlinGroup,
            &h.base(BANK),
            Method::POST,
            "/v1/payments/sepa-credit-transfers",
            &redirect_headers(),
            Some(&body),
        )
        .await
        .json();
    complete_redirect_sca(
        &h,
        created["_links"]["scaRedirect"]["href"].as_str().unwrap(),
        "alice",
    )
    .await;
    h.sandbox.advance_clock(Duration::hours(5)).unwrap();
    let after = booked_balance(&h, &carol);
    let diff = kontor_sandbox_bank::core::money::parse_minor(&after).unwrap()
        - kontor_sandbox_bank::core::money::parse_minor(&before).unwrap();
    assert!(
        diff >= 5000,
        "carol received the payment ({before} → {after})"
    );
}

#[tokio::test]
async fn cancelling_before_authorisation_and_payment_errors() {
    let Some(h) = Harness::start().await else {
        return;
    };
    let base = h.base(BANK);
    let debtor = ibans(&h, BANK, "alice")[0].clone();
    let created = h
        .call(
            Api::BerlinGroup,
            &base,
            Method::POST,
            "/v1/payments/sepa-credit-transfers",
            &redirect_headers(),
            Some(&payment(&debtor, "5.00")),
        )
        .await
        .json();
    let id = created["paymentId"].as_str().unwrap();
    let cancel = h
        .call(
            Api::BerlinGroup,
            &base,
            Method::DELETE,
            &format!("/v1/payments/sepa-credit-transfers/{id}"),
            &bg(&[]),
            None,
        )
        .await;
    assert_eq!(cancel.status, 204);
    assert_eq!(status(&h, "sepa-credit-transfers", id).await, "CANC");

    let post = |path: &'static str, body: Value| {
        let h = &h;
        let base = base.clone();
        async move {
            h.call(
                Api::BerlinGroup,
                &base,
                Method::POST,
                path,
                &redirect_headers(),
                Some(&body),
            )
            .await
        }
    };
    let bulk = post(
        "/v1/bulk-payments/sepa-credit-transfers",
        payment(&debtor, "1.00"),
    )
    .await;
    assert_eq!(
        (bulk.status, tpp_code(&bulk)),
        (400, "SERVICE_INVALID".into())
    );
    let target2 = post("/v1/payments/target-2-payments", payment(&debtor, "1.00")).await;
    assert_eq!(
        (target2.status, tpp_code(&target2)),
        (404, "PRODUCT_UNKNOWN".into())
    );
    let mut usd = payment(&debtor, "1.00");
    usd["instructedAmount"]["currency"] = json!("USD");
    assert_eq!(
        tpp_code(&post("/v1/payments/sepa-credit-transfers", usd).await),
        "FORMAT_ERROR"
    );
    let mut bad_iban = payment(&debtor, "1.00");
    bad_iban["creditorAccount"]["iban"] = json!("DE00370400440532013000");
    assert_eq!(
        tpp_code(&post("/v1/payments/sepa-credit-transfers", bad_iban).await),
        "FORMAT_ERROR"
    );
    assert_eq!(
        tpp_code(
            &post(
                "/v1/payments/sepa-credit-transfers",
                payment(&debtor, "1.001")
            )
            .await
        ),
        "FORMAT_ERROR"
    );
    let unknown = h
        .call(
            Api::BerlinGroup,
            &base,
            Method::GET,
            "/v1/payments/sepa-credit-transfers/pmt-nope/status",
            &bg(&[]),
            None,
        )
        .await;
    assert_eq!(
        (unknown.status, tpp_code(&unknown)),
        (404, "RESOURCE_UNKNOWN".into())
    );
    let other_user = post(
        "/v1/payments/sepa-credit-transfers",
        payment(&ibans(&h, BANK, "carol")[0], "1.00"),
    )
    .await
    .json();
    let page = h
        .get_page(
            other_user["_links"]["scaRedirect"]["href"]
                .as_str()
                .unwrap(),
        )
        .await;
    let login = h
        .post_form(
            &page.form_action("login-form", &root(&h)),
            &[("username", "alice"), ("password", "sandbox")],
        )
        .await;
    assert_eq!(
        login.step(),
        "failed",
        "alice cannot authorise a payment from carol's account"
    );
}
