//! Berlin Group `X-Request-ID` on resource creation: a retry (same id, same request) answers
//! the resource it created; the same id on another body or product is refused and changes
//! nothing.

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{Harness, Reply};
use crate::flows::{consent_body, ibans, redirect_headers, tpp_code};
use crate::spec::Api;

const BANK: &str = "sonnenbank";

fn payment(debtor: &str, amount: &str) -> Value {
    json!({
        "debtorAccount": { "iban": debtor },
        "instructedAmount": { "currency": "EUR", "amount": amount },
        "creditorAccount": { "iban": "DE89370400440532013000" },
        "creditorName": "Rheinwerk Versand GmbH",
        "remittanceInformationUnstructured": "Rechnung 2026-0042"
    })
}

async fn post(h: &Harness, path: &str, headers: &[(&'static str, String)], body: &Value) -> Reply {
    h.call(
        Api::BerlinGroup,
        &h.base(BANK),
        Method::POST,
        path,
        headers,
        Some(body),
    )
    .await
}

fn assert_reuse_refused(reply: &Reply) {
    assert_eq!(
        (reply.status, tpp_code(reply)),
        (400, "FORMAT_ERROR".into()),
        "{}",
        reply.text()
    );
    assert!(
        reply.json()["tppMessages"][0]["text"]
            .as_str()
            .unwrap()
            .contains("X-Request-ID"),
        "{}",
        reply.text()
    );
}

#[tokio::test]
async fn a_reused_request_id_on_another_payment_is_refused() {
    let Some(h) = Harness::start().await else {
        return;
    };
    let debtor = ibans(&h, BANK, "alice")[0].clone();
    let headers = redirect_headers();
    let sct = "/v1/payments/sepa-credit-transfers";
    let first = post(&h, sct, &headers, &payment(&debtor, "10.00")).await;
    assert_eq!(first.status, 201, "{}", first.text());
    let id = first.json()["paymentId"].clone();

    let other_amount = post(&h, sct, &headers, &payment(&debtor, "9999.00")).await;
    assert_reuse_refused(&other_amount);
    let other_product = post(
        &h,
        "/v1/payments/instant-sepa-credit-transfers",
        &headers,
        &payment(&debtor, "10.00"),
    )
    .await;
    assert_reuse_refused(&other_product);
    let ledger = h.sandbox.payments();
    assert_eq!(ledger.len(), 1, "nothing new was created");
    assert_eq!(ledger[0].amount, "10.00", "the payment kept its amount");

    // The same request again (keys in another order) is a retry: the same payment.
    let mut reordered = serde_json::Map::new();
    let original = payment(&debtor, "10.00");
    for (k, v) in original.as_object().unwrap().iter().rev() {
        reordered.insert(k.clone(), v.clone());
    }
    let retry = post(&h, sct, &headers, &Value::Object(reordered)).await;
    assert_eq!(retry.status, 201, "{}", retry.text());
    assert_eq!(retry.json()["paymentId"], id);
    assert_eq!(
        retry.json()["_links"]["scaRedirect"],
        first.json()["_links"]["scaRedirect"]
    );
    assert_eq!(h.sandbox.payments().len(), 1);
}

#[tokio::test]
async fn a_reused_request_id_on_another_consent_is_refused() {
    let Some(h) = Harness::start().await else {
        return;
    };
    let ibans = ibans(&h, BANK, "alice");
    let headers = redirect_headers();
    let body = consent_body(&ibans[..1], "2026-05-01", 4);
    let first = post(&h, "/v1/consents", &headers, &body).await;
    assert_eq!(first.status, 201, "{}", first.text());

    let wider = consent_body(&ibans, "2026-05-01", 4);
    assert_reuse_refused(&post(&h, "/v1/consents", &headers, &wider).await);

    let retry = post(&h, "/v1/consents", &headers, &body).await;
    assert_eq!(retry.status, 201, "{}", retry.text());
    assert_eq!(
        retry.json(),
        first.json(),
        "a retry answers the same consent"
    );
    assert_eq!(retry.header("location"), first.header("location"));
    assert_eq!(
        retry.header("aspsp-sca-approach"),
        first.header("aspsp-sca-approach")
    );

    // A new X-Request-ID is a new request, even with the same body.
    let fresh = post(&h, "/v1/consents", &redirect_headers(), &body).await;
    assert_eq!(fresh.status, 201);
    assert_ne!(fresh.json()["consentId"], first.json()["consentId"]);
}
