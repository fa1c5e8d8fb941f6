//! The edges of the Berlin Group API: services the bank does not offer, `Allow` on every 405,
//! and the `PSU-*` headers the spec constrains.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::json;

use crate::common::{Harness, Reply, bg};
use crate::flows::{ais_headers, bg_consent, consent_body, ibans, redirect_headers, tpp_code};
use crate::spec::Api;

const BANK: &str = "sonnenbank";

fn allow(reply: &Reply) -> BTreeSet<String> {
    reply
        .header("allow")
        .unwrap_or_else(|| panic!("405 without Allow: {}", reply.text()))
        .split(',')
        .map(|m| m.trim().to_string())
        .collect()
}

fn methods(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|m| (*m).to_string()).collect()
}

#[tokio::test]
async fn services_the_bank_does_not_offer_do_not_exist_here() {
    let Some(h) = Harness::start().await else {
        return;
    };
    let base = h.base(BANK);
    let ibans = ibans(&h, BANK, "alice");
    let consent = bg_consent(
        &h,
        BANK,
        "alice",
        &consent_body(&ibans[..1], "2026-05-01", 4),
    )
    .await;
    // Operations of the spec: the answer is validated against each one's declared 404.
    for path in [
        "/v1/card-accounts",
        "/v1/card-accounts/acc-5d354c70e982",
        "/v1/card-accounts/acc-5d354c70e982/balances",
        "/v1/card-accounts/acc-5d354c70e982/transactions?bookingStatus=booked&dateFrom=2026-02-01",
    ] {
        let reply = h
            .call(
                Api::BerlinGroup,
                &base,
                Method::GET,
                path,
                &ais_headers(&consent, true),
                None,
            )
            .await;
        assert_eq!(
            (reply.status, tpp_code(&reply)),
            (404, "RESOURCE_UNKNOWN".into()),
            "GET {path}: {}",
            reply.text()
        );
    }
    let basket = h
        .call(
            Api::BerlinGroup,
            &base,
            Method::GET,
            "/v1/signing-baskets/bsk-1",
            &bg(&[]),
            None,
        )
        .await;
    assert_eq!(
        (basket.status, tpp_code(&basket)),
        (404, "RESOURCE_UNKNOWN".into())
    );
    let funds = h
        .call(
            Api::BerlinGroup,
            &base,
            Method::POST,
            "/v1/funds-confirmations",
            &bg(&[]),
            Some(&json!({
                "account": { "iban": ibans[0] },
                "instructedAmount": { "currency": "EUR", "amount": "1.00" }
            })),
        )
        .await;
    assert_eq!(funds.status, 404, "{}", funds.text());
    // Any method: no 405 that would advertise methods of a service that is not here.
    for (method, path) in [
        (
            Method::OPTIONS,
            "/v1/card-accounts/acc-5d354c70e982/balances",
        ),
        (
            Method::DELETE,
            "/v1/card-accounts/acc-5d354c70e982/transactions",
        ),
        (Method::PUT, "/v1/signing-baskets/bsk-1/status"),
        (Method::OPTIONS, "/v1/whatever/x/y"),
        (Method::GET, "/v1/whatever/x"),
    ] {
        let reply = h
            .send(&method, &format!("{base}{path}"), &bg(&[]), None, None)
            .await;
        assert_eq!(
            (reply.status, tpp_code(&reply)),
            (404, "RESOURCE_UNKNOWN".into()),
            "{method} {path}"
        );
        assert_eq!(reply.header("allow"), None, "{method} {path}");
    }
    let product = h
        .send(
            &Method::GET,
            &format!("{base}/v1/payments/target-2-payments"),
            &bg(&[]),
            None,
            None,
        )
        .await;
    assert_eq!(
        (product.status, tpp_code(&product)),
        (404, "PRODUCT_UNKNOWN".into()),
        "like its POST"
    );
    assert_eq!(product.header("allow"), None);
}

#[tokio::test]
async fn every_405_lists_exactly_the_methods_of_its_route() {
    let Some(h) = Harness::start().await else {
        return;
    };
    let base = h.base(BANK);
    let created = h
        .call(
            Api::BerlinGroup,
            &base,
            Method::POST,
            "/v1/payments/sepa-credit-transfers",
            &redirect_headers(),
            Some(&json!({
                "debtorAccount": { "iban": ibans(&h, BANK, "alice")[0] },
                "instructedAmount": { "currency": "EUR", "amount": "1.00" },
                "creditorAccount": { "iban": "DE89370400440532013000" },
                "creditorName": "Rheinwerk Versand GmbH"
            })),
        )
        .await
        .json();
    let payment = format!(
        "/v1/payments/sepa-credit-transfers/{}",
        created["paymentId"].as_str().unwrap()
    );
    let cases = [
        (Method::PUT, "/v1/consents".to_string(), vec!["POST"]),
        (
            Method::POST,
            "/v1/accounts".to_string(),
            vec!["GET", "HEAD"],
        ),
        (
            Method::PATCH,
            "/v1/consents/cns-1".to_string(),
            vec!["GET", "HEAD", "DELETE"],
        ),
        (
            Method::GET,
            "/v1/payments/sepa-credit-transfers".to_string(),
            vec!["POST"],
        ),
        (Method::PUT, payment.clone(), vec!["GET", "HEAD", "DELETE"]),
        (
            Method::DELETE,
            format!("{payment}/authorisations"),
            vec!["GET", "HEAD", "POST"],
        ),
    ];
    for (method, path, expected) in cases {
        let reply = h
            .send(&method, &format!("{base}{path}"), &bg(&[]), None, None)
            .await;
        assert_eq!(
            (reply.status, tpp_code(&reply)),
            (405, "SERVICE_INVALID".into()),
            "{method} {path}"
        );
        assert_eq!(allow(&reply), methods(&expected), "{method} {path}");
    }
}

#[tokio::test]
async fn psu_http_method_and_geo_location_follow_the_spec() {
    let Some(h) = Harness::start().await else {
        return;
    };
    let body = consent_body(&ibans(&h, BANK, "alice")[..1], "2026-05-01", 4);
    let create = |extra: (&'static str, &'static str)| {
        let h = &h;
        let body = body.clone();
        async move {
            let mut headers = redirect_headers();
            headers.push((extra.0, extra.1.to_string()));
            h.call(
                Api::BerlinGroup,
                &h.base(BANK),
                Method::POST,
                "/v1/consents",
                &headers,
                Some(&body),
            )
            .await
        }
    };
    for (name, value, label) in [
        ("psu-http-method", "FETCH", "PSU-Http-Method"),
        ("psu-http-method", "get", "PSU-Http-Method"),
        ("psu-http-method", "", "PSU-Http-Method"),
        ("psu-geo-location", "0", "PSU-Geo-Location"),
        (
            "psu-geo-location",
            "GEO:52.5069;13.1445",
            "PSU-Geo-Location",
        ),
        (
            "psu-geo-location",
            "GEO:52.506931,13.144558",
            "PSU-Geo-Location",
        ),
        (
            "psu-geo-location",
            "GEO:152.506931;13.144558",
            "PSU-Geo-Location",
        ),
        ("psu-device-id", "device-1", "PSU-Device-ID"),
        ("psu-ip-address", "192.0.2", "PSU-IP-Address"),
    ] {
        let reply = create((name, value)).await;
        assert_eq!(
            (reply.status, tpp_code(&reply)),
            (400, "FORMAT_ERROR".into()),
            "{name}: {value}"
        );
        assert!(
            reply.json()["tppMessages"][0]["text"]
                .as_str()
                .unwrap()
                .contains(label),
            "{name}: {}",
            reply.text()
        );
    }
    for (name, value) in [
        ("psu-http-method", "GET"),
        ("psu-http-method", "DELETE"),
        ("psu-geo-location", "GEO:52.506931;13.144558"),
        ("psu-geo-location", "GEO:-33.868820;-151.209296"),
        ("psu-ip-port", "1234"),
    ] {
        let reply = create((name, value)).await;
        assert_eq!(reply.status, 201, "{name}: {value}: {}", reply.text());
    }
}
