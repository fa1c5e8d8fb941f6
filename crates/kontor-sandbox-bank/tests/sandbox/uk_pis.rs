//! UK Open Banking PIS: domestic-payment consents and payments, `x-idempotency-key`
//! semantics, execution, insufficient funds and error codes.

use reqwest::Method;
use serde_json::{Value, json};
use time::Duration;

use crate::common::Harness;
use crate::spec::Api;
use crate::uk_flows::{auth, authorize, client_token, exchange, ob_code, pisp, pkce, query};

const JWS: &str = "eyJhbGciOiJQUzI1NiJ9..c2lnbmF0dXJl";

fn consent_body(amount: &str, instruction: &str) -> Value {
    json!({
        "Data": {
            "Initiation": {
                "InstructionIdentification": instruction,
                "EndToEndIdentification": "E2E-KONTOR-1",
                "LocalInstrument": "UK.OBIE.FPS",
                "InstructedAmount": { "Amount": amount, "Currency": "GBP" },
                "CreditorAccount": { "SchemeName": "UK.OBIE.SortCodeAccountNumber", "Identification": "60161331926819", "Name": "Acme Plumbing Ltd" },
                "RemittanceInformation": { "Reference": "INV-2026-17", "Unstructured": "Boiler repair" }
            }
        },
        "Risk": { "PaymentContextCode": "BillPayment" }
    })
}

fn write_headers(token: &str, key: &str) -> Vec<(&'static str, String)> {
    let mut headers = auth(token);
    headers.push(("x-idempotency-key", key.to_string()));
    headers.push(("x-jws-signature", JWS.to_string()));
    headers
}

/// Creates and authorises a payment consent; returns (consent id, PSU token, body used).
async fn authorised_consent(h: &Harness, amount: &str) -> (String, String, Value) {
    authorised(h, consent_body(amount, "INSTR-1"), "consent-key-1").await
}

/// Creates (under `key`) and authorises the payment consent `body`, as bob.
async fn authorised(h: &Harness, body: Value, key: &str) -> (String, String, Value) {
    let tpp = client_token(h, "payments").await;
    let created = h
        .call(
            Api::UkPayments,
            &pisp(h),
            Method::POST,
            "/domestic-payment-consents",
            &write_headers(&tpp, key),
            Some(&body),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text());
    assert!(
        created
            .header("x-jws-signature")
            .is_some_and(|s| s.contains(".."))
    );
    let id = created.json()["Data"]["ConsentId"]
        .as_str()
        .unwrap()
        .to_string();
    let again = h
        .call(
            Api::UkPayments,
            &pisp(h),
            Method::POST,
            "/domestic-payment-consents",
            &write_headers(&tpp, key),
            Some(&body),
        )
        .await;
    assert_eq!(
        (again.status, again.json()["Data"]["ConsentId"].as_str()),
        (201, Some(id.as_str())),
        "same key, same consent"
    );
    let (verifier, challenge) = pkce(&id);
    let callback = authorize(h, &id, "openid payments", "bob", &challenge).await;
    let tokens = exchange(h, &query(&callback, "code").unwrap(), &verifier)
        .await
        .json();
    (
        id,
        tokens["access_token"].as_str().unwrap().to_string(),
        body,
    )
}

/// `GET /domestic-payment-consents/{consent}` with the TPP's token.
async fn read_consent(h: &Harness, tpp: &str, consent: &str) -> Value {
    h.call(
        Api::UkPayments,
        &pisp(h),
        Method::GET,
        &format!("/domestic-payment-consents/{consent}"),
        &auth(tpp),
        None,
    )
    .await
    .json()
}

/// `POST /domestic-payments` for `consent` with the PSU's token, under `key`.
async fn submit(
    h: &Harness,
    psu: &str,
    key: &str,
    consent: &str,
    consent_body: &Value,
) -> crate::common::Reply {
    h.call(
        Api::UkPayments,
        &pisp(h),
        Method::POST,
        "/domestic-payments",
        &write_headers(psu, key),
        Some(&payment_body(consent, consent_body)),
    )
    .await
}

fn payment_body(consent: &str, consent_body: &Value) -> Value {
    json!({ "Data": { "ConsentId": consent, "Initiation": consent_body["Data"]["Initiation"] }, "Risk": consent_body["Risk"] })
}

#[tokio::test]
async fn one_payment_per_idempotency_key_and_consent() {
    let Some(h) = Harness::start().await else {
        return;
    };
    let (consent, psu, body) = authorised_consent(&h, "42.50").await;
    let funds = h
        .call(
            Api::UkPayments,
            &pisp(&h),
            Method::GET,
            &format!("/domestic-payment-consents/{consent}/funds-confirmation"),
            &auth(&psu),
            None,
        )
        .await;
    assert_eq!(
        funds.json()["Data"]["FundsAvailableResult"]["FundsAvailable"],
        true
    );

    let pay = payment_body(&consent, &body);
    let first = h
        .call(
            Api::UkPayments,
            &pisp(&h),
            Method::POST,
            "/domestic-payments",
            &write_headers(&psu, "pay-key-1"),
            Some(&pay),
        )
        .await;
    assert_eq!(first.status, 201, "{}", first.text());
    let first = first.json();
    assert_eq!(first["Data"]["Status"], "AcceptedSettlementInProcess");
    let payment_id = first["Data"]["DomesticPaymentId"]
        .as_str()
        .unwrap()
        .to_string();
    let retry = h
        .call(
            Api::UkPayments,
            &pisp(&h),
            Method::POST,
            "/domestic-payments",
            &write_headers(&psu, "pay-key-1"),
            Some(&pay),
        )
        .await;
    assert_eq!(
        (
            retry.status,
            retry.json()["Data"]["DomesticPaymentId"].as_str()
        ),
        (201, Some(payment_id.as_str()))
    );
    let mut changed = pay.clone();
    changed["Data"]["Initiation"]["InstructedAmount"]["Amount"] = json!("9999.00");
    let sneaky = h
        .call_raw(
            Api::UkPayments,
            &pisp(&h),
            Method::POST,
            "/domestic-payments",
            &write_headers(&psu, "pay-key-1"),
            Some(serde_json::to_vec(&changed).unwrap()),
            Some("application/json".into()),
        )
        .await;
    assert_eq!(sneaky.status, 201);
    assert_eq!(
        sneaky.json()["Data"]["Initiation"]["InstructedAmount"]["Amount"],
        "42.50",
        "a different body under the same key changes nothing"
    );
    let second_key = h
        .call(
            Api::UkPayments,
            &pisp(&h),
            Method::POST,
            "/domestic-payments",
            &write_headers(&psu, "pay-key-2"),
            Some(&pay),
        )
        .await;
    assert_eq!(
        (second_key.status, ob_code(&second_key)),
        (403, "UK.OBIE.Resource.InvalidConsentStatus".into()),
        "the consent is consumed"
    );

    let ledger = h.sandbox.payments();
    assert_eq!(
        ledger
            .iter()
            .filter(|p| p.idempotency_key.as_deref() == Some("pay-key-1"))
            .count(),
        1
    );
    assert_eq!(ledger.iter().filter(|p| p.executed).count(), 1);

    let tpp = client_token(&h, "payments").await;
    h.sandbox.advance_clock(Duration::seconds(5)).unwrap();
    let read = h
        .call(
            Api::UkPayments,
            &pisp(&h),
            Method::GET,
            &format!("/domestic-payments/{payment_id}"),
            &auth(&tpp),
            None,
        )
        .await;
    assert_eq!(read.json()["Data"]["Status"], "AcceptedSettlementCompleted");
    assert!(read.header("x-jws-signature").is_some());
    let consent_now = read_consent(&h, &tpp, &consent).await;
    assert_eq!(consent_now["Data"]["Status"], "Consumed");
}

/// `ReadRefundAccount: Yes` on the consent: the authorised consent names the account bob chose
/// (`Debtor`), and the payment names it twice (`Debtor`, `Refund.Account`). Without it, neither
/// says who pays.
#[tokio::test]
async fn who_pays_is_told_when_the_consent_asks() {
    let Some(h) = Harness::start().await else {
        return;
    };
    let bobs: Vec<String> = h
        .sandbox
        .accounts(crate::uk_flows::BANK)
        .unwrap()
        .into_iter()
        .filter(|a| a.username == "bob")
        .filter_map(|a| Some(format!("{}{}", a.sort_code?, a.account_number?)))
        .collect();
    assert!(!bobs.is_empty());
    let tpp = client_token(&h, "payments").await;
    for (asked, instruction) in [(true, "INSTR-ASK"), (false, "INSTR-NOT")] {
        let mut body = consent_body("3.20", instruction);
        if asked {
            body["Data"]["ReadRefundAccount"] = json!("Yes");
        }
        let (consent, psu, body) = authorised(&h, body, &format!("key-{instruction}")).await;
        let read = read_consent(&h, &tpp, &consent).await;
        let paid = submit(&h, &psu, &format!("pay-{instruction}"), &consent, &body).await;
        assert_eq!(paid.status, 201, "{}", paid.text());
        let paid = paid.json();
        if !asked {
            assert!(read["Data"].get("Debtor").is_none(), "{read}");
            assert!(paid["Data"].get("Debtor").is_none(), "{paid}");
            assert!(paid["Data"].get("Refund").is_none(), "{paid}");
            continue;
        }
        let debtor = &read["Data"]["Debtor"];
        assert_eq!(debtor["SchemeName"], "UK.OBIE.SortCodeAccountNumber");
        let identification = debtor["Identification"].as_str().unwrap();
        assert!(
            bobs.iter().any(|a| a == identification),
            "{identification} is one of bob's accounts: {bobs:?}"
        );
        assert!(
            debtor["Name"].as_str().is_some_and(|n| !n.is_empty()),
            "{debtor}"
        );
        assert_eq!(&paid["Data"]["Refund"]["Account"], debtor, "{paid}");
        assert_eq!(&paid["Data"]["Debtor"], debtor, "{paid}");
    }
}

#[tokio::test]
async fn insufficient_funds_reject_the_payment() {
    let Some(h) = Harness::start().await else {
        return;
    };
    let (consent, psu, body) = authorised_consent(&h, "99999.00").await;
    let funds = h
        .call(
            Api::UkPayments,
            &pisp(&h),
            Method::GET,
            &format!("/domestic-payment-consents/{consent}/funds-confirmation"),
            &auth(&psu),
            None,
        )
        .await;
    assert_eq!(
        funds.json()["Data"]["FundsAvailableResult"]["FundsAvailable"],
        false
    );
    let paid = submit(&h, &psu, "k", &consent, &body).await;
    assert_eq!(paid.json()["Data"]["Status"], "Rejected");
    assert!(!h.sandbox.payments()[0].executed);
}

#[tokio::test]
async fn payment_request_errors() {
    let Some(h) = Harness::start().await else {
        return;
    };
    let tpp = client_token(&h, "payments").await;
    let post = |headers: Vec<(&'static str, String)>, body: Value| {
        let h = &h;
        async move {
            h.call(
                Api::UkPayments,
                &pisp(h),
                Method::POST,
                "/domestic-payment-consents",
                &headers,
                Some(&body),
            )
            .await
        }
    };
    let body = consent_body("1.00", "I-1");
    let no_key: Vec<_> = write_headers(&tpp, "x")
        .into_iter()
        .filter(|(k, _)| *k != "x-idempotency-key")
        .collect();
    assert_eq!(
        ob_code(&post(no_key, body.clone()).await),
        "UK.OBIE.Header.Missing"
    );
    assert_eq!(
        ob_code(&post(write_headers(&tpp, &"k".repeat(41)), body.clone()).await),
        "UK.OBIE.Header.Invalid"
    );
    let no_sig: Vec<_> = write_headers(&tpp, "k1")
        .into_iter()
        .filter(|(k, _)| *k != "x-jws-signature")
        .collect();
    assert_eq!(
        ob_code(&post(no_sig, body.clone()).await),
        "UK.OBIE.Signature.Missing"
    );
    let mut bad_sig = write_headers(&tpp, "k2");
    bad_sig.retain(|(k, _)| *k != "x-jws-signature");
    bad_sig.push(("x-jws-signature", "not a jws".into()));
    assert_eq!(
        ob_code(&post(bad_sig, body.clone()).await),
        "UK.OBIE.Signature.Malformed"
    );
    let mut euro = body.clone();
    euro["Data"]["Initiation"]["InstructedAmount"]["Currency"] = json!("EUR");
    assert_eq!(
        ob_code(&post(write_headers(&tpp, "k3"), euro).await),
        "UK.OBIE.Unsupported.Currency"
    );
    let mut scheme = body.clone();
    scheme["Data"]["Initiation"]["CreditorAccount"]["SchemeName"] = json!("UK.OBIE.Paym");
    assert_eq!(
        ob_code(&post(write_headers(&tpp, "k4"), scheme).await),
        "UK.OBIE.Unsupported.Scheme"
    );
    let mut instrument = body.clone();
    instrument["Data"]["Initiation"]["LocalInstrument"] = json!("UK.OBIE.SWIFT");
    assert_eq!(
        ob_code(&post(write_headers(&tpp, "k5"), instrument).await),
        "UK.OBIE.Unsupported.LocalInstrument"
    );
    let mut extra = body.clone();
    extra["Data"]["Initiation"]["Tip"] = json!("1.00");
    assert_eq!(
        ob_code(&post(write_headers(&tpp, "k6"), extra).await),
        "UK.OBIE.Field.Unexpected"
    );
    let ais_token = client_token(&h, "accounts").await;
    assert_eq!(
        post(write_headers(&ais_token, "k7"), body.clone())
            .await
            .status,
        403
    );

    let (consent, psu, body) = authorised_consent(&h, "3.00").await;
    let mut other = payment_body(&consent, &body);
    other["Data"]["Initiation"]["InstructedAmount"]["Amount"] = json!("300.00");
    let mismatch = h
        .call(
            Api::UkPayments,
            &pisp(&h),
            Method::POST,
            "/domestic-payments",
            &write_headers(&psu, "m1"),
            Some(&other),
        )
        .await;
    assert_eq!(
        (mismatch.status, ob_code(&mismatch)),
        (400, "UK.OBIE.Resource.ConsentMismatch".into())
    );
    let no_psu = h
        .call(
            Api::UkPayments,
            &pisp(&h),
            Method::POST,
            "/domestic-payments",
            &write_headers(&tpp, "m2"),
            Some(&payment_body(&consent, &body)),
        )
        .await;
    assert_eq!(no_psu.status, 403, "payments need the PSU's token");
    assert!(h.sandbox.payments().is_empty());
}
