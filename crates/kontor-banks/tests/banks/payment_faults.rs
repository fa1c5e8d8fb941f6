//! Exactly once when things fail: the initiation is never repeated by the connector, and the
//! caller's recovery (the same call with the same idempotency key) never makes a second payment,
//! whether the first request never got to the bank (5xx, reset, timeout) or was carried out and
//! its answer lost on the way back.

use std::time::Duration;

use kontor_banks::{BankError, HttpSettings, PaymentRequest};
use kontor_domain::bank::Standard;
use kontor_sandbox_bank::FaultConfig;

use crate::support::payments::iso;
use crate::support::{Fixture, test_settings};

/// The path fragment of the request that creates the payment (Berlin Group) or the payment
/// consent (UK).
fn initiation_path(fx: &Fixture) -> &'static str {
    if fx.is_uk() {
        "/open-banking/v3.1/pisp/domestic-payment-consents"
    } else {
        "/v1/payments/"
    }
}

fn on(path: &str) -> FaultConfig {
    FaultConfig {
        path_contains: Some(path.to_owned()),
        ..FaultConfig::default()
    }
}

/// After a failed first attempt: the recovery call, the user's SCA, completion, and then the
/// bank's ledger holds exactly one executed payment for the key.
async fn recover_and_pay(fx: &Fixture, request: &PaymentRequest) {
    fx.sandbox.clear_faults(fx.bank).unwrap();
    let started = fx.connector.initiate_payment(request).await.unwrap();
    let callback = fx.authorise_payment(&started).await;
    let mut session = started.session;
    let status = fx
        .connector
        .complete_payment(&mut session, &callback, &request.idempotency_key)
        .await
        .unwrap();
    assert!(
        matches!(iso(&status), Some("ACTC" | "ACSP")),
        "authorised: {status:?}"
    );
    let entry = fx.only_payment(&request.idempotency_key);
    assert!(entry.executed);
    assert_eq!(Some(&entry.payment_id), session.payment_id.as_ref());
    assert_eq!(
        fx.sandbox.payments().len(),
        1,
        "no other payment at the bank"
    );
}

async fn a_repeated_initiation_returns_the_same_payment(standard: Standard) {
    let fx = Fixture::for_standard(standard).await;
    let request = fx.payment("20.00");
    let first = fx.connector.initiate_payment(&request).await.unwrap();
    let second = fx.connector.initiate_payment(&request).await.unwrap();
    assert_eq!(first.session.payment_id, second.session.payment_id);
    assert_eq!(first.session.consent_id, second.session.consent_id);
    recover_and_pay(&fx, &request).await;
}

async fn a_server_error_on_initiation_is_not_repeated(standard: Standard) {
    let fx = Fixture::for_standard(standard).await;
    for status in [500, 503] {
        let request = fx.payment("21.00");
        fx.faults(FaultConfig {
            fail_next: 3,
            error_status: Some(status),
            ..on(initiation_path(&fx))
        });
        let before = fx.injected().await;
        let err = fx.connector.initiate_payment(&request).await.unwrap_err();
        assert!(
            matches!(err, BankError::Unavailable { status: Some(s), .. } if s == status),
            "{err:?}"
        );
        assert!(err.is_transient());
        assert_eq!(fx.injected().await - before, 1, "the POST was sent once");
        assert!(fx.ledger(&request.idempotency_key).is_empty());
        if status == 503 {
            recover_and_pay(&fx, &request).await;
        }
    }
}

async fn a_dropped_connection_on_initiation_is_recovered(standard: Standard) {
    let fx = Fixture::for_standard(standard).await;
    let request = fx.payment("22.00");
    fx.faults(FaultConfig {
        reset_next: 3,
        ..on(initiation_path(&fx))
    });
    let err = fx.connector.initiate_payment(&request).await.unwrap_err();
    assert!(
        matches!(err, BankError::Unavailable { status: None, .. }),
        "{err:?}"
    );
    assert_eq!(fx.injected().await, 1, "the POST was sent once");
    // The sandbox resets before handling the request: the bank created nothing.
    assert!(fx.sandbox.payments().is_empty());
    recover_and_pay(&fx, &request).await;
}

async fn a_timeout_on_initiation_is_recovered(standard: Standard) {
    let fx = Fixture::for_standard(standard).await;
    let impatient = fx.connector_with(HttpSettings {
        request_timeout: Duration::from_millis(300),
        ..test_settings()
    });
    let request = fx.payment("23.00");
    fx.faults(FaultConfig {
        latency_ms: 1_000,
        ..on(initiation_path(&fx))
    });
    let err = impatient.initiate_payment(&request).await.unwrap_err();
    assert!(
        matches!(&err, BankError::Unavailable { status: None, detail } if detail.contains("timed out")),
        "{err:?}"
    );
    // Long enough for the bank to have finished whatever it was doing.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    recover_and_pay(&fx, &request).await;
}

/// The bank carries the request out, and the answer is lost on the way back: the case the
/// idempotency key is for.
async fn a_lost_answer_is_recovered_with_the_same_key(standard: Standard) {
    let fx = Fixture::for_standard(standard).await;
    let (proxy, connector) = fx.through_proxy().await;
    let request = fx.payment("24.00");
    let fragment = format!("POST {}{}", proxy.base_url.path(), initiation_path(&fx));
    proxy.lose_next_answer(&fragment);
    let err = connector.initiate_payment(&request).await.unwrap_err();
    assert!(
        matches!(err, BankError::Unavailable { status: None, .. }),
        "{err:?}"
    );
    assert_eq!(proxy.lost(), 1);
    if !fx.is_uk() {
        // The payment exists at the bank, unauthorised: the POST was carried out.
        let entry = fx.only_payment(&request.idempotency_key);
        assert!(!entry.executed);
    }
    let started = connector.initiate_payment(&request).await.unwrap();
    if !fx.is_uk() {
        assert_eq!(
            started.session.payment_id.as_deref(),
            Some(
                fx.only_payment(&request.idempotency_key)
                    .payment_id
                    .as_str()
            ),
            "the recovery answers with the payment the lost answer was about"
        );
    }
    recover_and_pay(&fx, &request).await;
}

macro_rules! for_both_standards {
    ($($name:ident),* $(,)?) => {
        mod berlin_group {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(kontor_domain::bank::Standard::BerlinGroup).await;
                }
            )*
        }
        mod uk_open_banking {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(kontor_domain::bank::Standard::UkOpenBanking).await;
                }
            )*
        }
    };
}

for_both_standards!(
    a_repeated_initiation_returns_the_same_payment,
    a_server_error_on_initiation_is_not_repeated,
    a_dropped_connection_on_initiation_is_recovered,
    a_timeout_on_initiation_is_recovered,
    a_lost_answer_is_recovered_with_the_same_key,
);
