//! JSON arrays in place of the objects the specs define are refused everywhere a body is read:
//! serde would otherwise read a struct from the list of its fields.

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::Harness;
use crate::flows::{consent_body, ibans, redirect_headers, tpp_code};
use crate::spec::Api;
use crate::uk_flows::{aisp, auth, client_token, ob_code, pisp};

const BANK: &str = "sonnenbank";

async fn bg_post(h: &Harness, path: &str, body: &Value) -> crate::common::Reply {
    h.call(
        Api::BerlinGroup,
        &h.base(BANK),
        Method::POST,
        path,
        &redirect_headers(),
        Some(body),
    )
    .await
}

/// The consent body as a list of its fields in declaration order, which serde's derived
/// struct reader takes as well as the object.
fn as_field_list(body: &Value) -> Value {
    json!([
        body["access"],
        body["recurringIndicator"],
        body["validUntil"],
        body["frequencyPerDay"],
        body["combinedServiceIndicator"]
    ])
}

#[tokio::test]
async fn berlin_group_bodies_must_be_objects_at_every_depth() {
    let Some(h) = Harness::start().await else {
        return;
    };
    let ibans = ibans(&h, BANK, "alice");
    let body = consent_body(&ibans[..1], "2026-05-01", 4);

    let list = bg_post(&h, "/v1/consents", &as_field_list(&body)).await;
    assert_eq!((list.status, tpp_code(&list)), (400, "FORMAT_ERROR".into()));
    assert!(
        list.text().contains("expected a JSON object"),
        "{}",
        list.text()
    );

    let mut nested = body.clone();
    nested["access"] = json!([]);
    let nested = bg_post(&h, "/v1/consents", &nested).await;
    assert_eq!(
        (nested.status, tpp_code(&nested)),
        (400, "FORMAT_ERROR".into())
    );
    assert_eq!(nested.json()["tppMessages"][0]["path"], "access");

    let mut deeper = body.clone();
    deeper["access"]["accounts"] = json!([[ibans[0]]]);
    let deeper = bg_post(&h, "/v1/consents", &deeper).await;
    assert_eq!(
        deeper.json()["tppMessages"][0]["path"],
        "access.accounts[0]"
    );

    let payment = json!({
        "debtorAccount": { "iban": ibans[0] },
        "instructedAmount": { "currency": "EUR", "amount": "1.00" },
        "creditorAccount": { "iban": "DE89370400440532013000" },
        "creditorName": "Rheinwerk Versand GmbH"
    });
    let mut listed = payment.clone();
    listed["instructedAmount"] = json!(["EUR", "1.00"]);
    let refused = bg_post(&h, "/v1/payments/sepa-credit-transfers", &listed).await;
    assert_eq!(
        (refused.status, tpp_code(&refused)),
        (400, "FORMAT_ERROR".into())
    );
    assert_eq!(refused.json()["tppMessages"][0]["path"], "instructedAmount");
    let whole = json!([
        null,
        payment["debtorAccount"],
        payment["instructedAmount"],
        payment["creditorAccount"],
        null,
        null,
        payment["creditorName"],
        null,
        null
    ]);
    let refused = bg_post(&h, "/v1/payments/sepa-credit-transfers", &whole).await;
    assert_eq!(
        (refused.status, tpp_code(&refused)),
        (400, "FORMAT_ERROR".into())
    );
    assert!(
        h.sandbox.payments().is_empty(),
        "nothing was created by refused bodies"
    );

    // Authorisation starts take an empty body, `null`, or an object (without embedded PSU
    // data); an array is not one.
    let created = bg_post(&h, "/v1/consents", &body).await;
    assert_eq!(created.status, 201, "{}", created.text());
    let start = format!(
        "/v1/consents/{}/authorisations",
        created.json()["consentId"].as_str().unwrap()
    );
    let array = bg_post(&h, &start, &json!([])).await;
    assert_eq!(
        (array.status, tpp_code(&array)),
        (400, "FORMAT_ERROR".into())
    );
    let null = bg_post(&h, &start, &Value::Null).await;
    assert_eq!(null.status, 201, "{}", null.text());
}

#[tokio::test]
async fn uk_bodies_must_be_objects() {
    let Some(h) = Harness::start().await else {
        return;
    };
    let token = client_token(&h, "accounts payments").await;
    let access_consent = |body: Value| {
        let h = &h;
        let token = token.clone();
        async move {
            h.call(
                Api::UkAccounts,
                &aisp(h),
                Method::POST,
                "/account-access-consents",
                &auth(&token),
                Some(&body),
            )
            .await
        }
    };
    let listed = json!([[["ReadAccountsBasic"], null, null, null], {}]);
    let refused = access_consent(listed).await;
    assert_eq!(
        (refused.status, ob_code(&refused)),
        (400, "UK.OBIE.Field.Invalid".into())
    );
    let nested = json!({ "Data": [["ReadAccountsBasic"], null, null, null], "Risk": {} });
    let refused = access_consent(nested).await;
    assert_eq!(
        (refused.status, ob_code(&refused)),
        (400, "UK.OBIE.Field.Invalid".into())
    );
    assert_eq!(refused.json()["Errors"][0]["Path"], "Data");

    let mut headers = auth(&token);
    headers.push(("x-idempotency-key", "array-body-1".into()));
    headers.push(("x-jws-signature", "eyJhbGciOiJQUzI1NiJ9..c2ln".into()));
    let payment = json!({
        "Data": {
            "Initiation": [
                "INSTR-1", "E2E-1", null,
                { "Amount": "1.00", "Currency": "GBP" }
            ]
        },
        "Risk": {}
    });
    let refused = h
        .call(
            Api::UkPayments,
            &pisp(&h),
            Method::POST,
            "/domestic-payment-consents",
            &headers,
            Some(&payment),
        )
        .await;
    assert_eq!(
        (refused.status, ob_code(&refused)),
        (400, "UK.OBIE.Field.Invalid".into())
    );
    assert_eq!(refused.json()["Errors"][0]["Path"], "Data.Initiation");
}

#[tokio::test]
async fn admin_bodies_must_be_objects() {
    let Some(h) = Harness::start().await else {
        return;
    };
    let before = h.admin(Method::GET, "/clock", None).await.json()["now"].clone();
    let refused = h
        .admin(Method::POST, "/clock/advance", Some(json!([0, 0, 0, 3])))
        .await;
    assert_eq!(refused.status, 400, "{}", refused.text());
    assert_eq!(
        h.admin(Method::GET, "/clock", None).await.json()["now"],
        before
    );
    let refused = h
        .admin(Method::PUT, "/banks/sonnenbank/faults", Some(json!([0, 1])))
        .await;
    assert_eq!(refused.status, 400, "{}", refused.text());
}

#[tokio::test]
async fn a_missing_body_is_a_bad_request_not_an_unsupported_media_type() {
    let Some(h) = Harness::start().await else {
        return;
    };
    for path in ["/v1/consents", "/v1/payments/sepa-credit-transfers"] {
        let reply = h
            .call_raw(
                Api::BerlinGroup,
                &h.base(BANK),
                Method::POST,
                path,
                &redirect_headers(),
                None,
                None,
            )
            .await;
        assert_eq!(
            (reply.status, tpp_code(&reply)),
            (400, "FORMAT_ERROR".into()),
            "{path}"
        );
    }
    let token = client_token(&h, "accounts").await;
    let reply = h
        .call_raw(
            Api::UkAccounts,
            &aisp(&h),
            Method::POST,
            "/account-access-consents",
            &auth(&token),
            None,
            None,
        )
        .await;
    assert_eq!(
        (reply.status, ob_code(&reply)),
        (400, "UK.OBIE.Field.Missing".into())
    );
    // A body in another format still gets 415.
    let xml = h
        .call_raw(
            Api::BerlinGroup,
            &h.base(BANK),
            Method::POST,
            "/v1/consents",
            &redirect_headers(),
            Some(b"<consent/>".to_vec()),
            Some("application/xml".into()),
        )
        .await;
    assert_eq!(xml.status, 415);
}
