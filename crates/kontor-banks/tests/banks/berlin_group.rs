//! Berlin Group NextGenPSD2 against the sandbox's Sonnenbank: the common scenarios, decoupled
//! SCA, and what the wire looks like where the standard is particular.

use kontor_banks::berlin_group::NOK_PARAM;
use kontor_banks::{BankError, ConsentOutcome, ScaPreference, ScaStep};
use kontor_domain::payment::IdempotencyKey;

use crate::scenarios;
use crate::support::{Fixture, present};

#[tokio::test]
async fn links_and_reads_the_users_accounts() {
    scenarios::links_and_reads_the_users_accounts(Fixture::berlin_group().await).await;
}

#[tokio::test]
async fn reads_every_page_of_transactions_with_filters() {
    scenarios::reads_every_page_of_transactions_with_filters(Fixture::berlin_group().await).await;
}

#[tokio::test]
async fn pending_entries_book_after_time_passes() {
    scenarios::pending_entries_book_after_time_passes(Fixture::berlin_group().await).await;
}

#[tokio::test]
async fn revoked_by_the_hub() {
    scenarios::revoked_by_the_hub(Fixture::berlin_group().await).await;
}

#[tokio::test]
async fn revoked_by_the_user_at_the_bank() {
    scenarios::revoked_by_the_user_at_the_bank(Fixture::berlin_group().await).await;
}

#[tokio::test]
async fn expired_consent() {
    scenarios::expired_consent(Fixture::berlin_group().await).await;
}

#[tokio::test]
async fn daily_allowance_of_unattended_reads() {
    scenarios::daily_allowance_of_unattended_reads(Fixture::berlin_group().await).await;
}

#[tokio::test]
async fn user_cancels_at_the_bank() {
    scenarios::user_cancels_at_the_bank(Fixture::berlin_group().await).await;
}

#[tokio::test]
async fn wrong_password_three_times() {
    scenarios::wrong_password_three_times(Fixture::berlin_group().await).await;
}

#[tokio::test]
async fn a_callback_for_another_consent_is_refused() {
    scenarios::a_callback_for_another_consent_is_refused(Fixture::berlin_group().await).await;
}

#[tokio::test]
async fn the_callback_carries_the_state_and_marks_failure() {
    let fx = Fixture::berlin_group().await;
    let request = fx.request();
    let started = fx.connector.start_consent(&request).await.unwrap();
    let ScaStep::Redirect { url } = started.sca else {
        panic!("redirect expected");
    };
    assert!(url.as_str().starts_with(fx.profile.base_url.as_str()));
    let callback = fx.browser.cancel(url).await;
    assert_eq!(callback.get("state"), Some(request.state.as_str()));
    assert_eq!(callback.get(NOK_PARAM), Some("nok"));
    assert!(started.session.authorisation_id.is_some());
}

fn decoupled(fx: &Fixture) -> kontor_banks::ConsentRequest {
    kontor_banks::ConsentRequest {
        sca: ScaPreference::Decoupled {
            psu_id: fx.user.to_owned(),
        },
        ..fx.request()
    }
}

#[tokio::test]
async fn decoupled_sca_approved_in_the_app() {
    let fx = Fixture::berlin_group().await;
    let request = decoupled(&fx);
    let started = fx.connector.start_consent(&request).await.unwrap();
    assert!(
        matches!(started.sca, ScaStep::Decoupled { .. }),
        "{:?}",
        started.sca
    );
    let mut session = started.session;
    assert_eq!(
        fx.connector.consent_status(&mut session).await.unwrap(),
        ConsentOutcome::Pending
    );
    let authorisation = session.authorisation_id.clone().expect("authorisation id");
    fx.sandbox
        .approve_authorisation(fx.bank, &authorisation, None)
        .unwrap();
    assert_eq!(
        fx.connector.consent_status(&mut session).await.unwrap(),
        ConsentOutcome::Active {
            valid_until: Some(request.valid_until)
        }
    );
    let accounts = fx
        .connector
        .accounts(&mut session, &present())
        .await
        .unwrap();
    assert_eq!(accounts.len(), fx.sandbox_accounts().len());
}

#[tokio::test]
async fn decoupled_sca_rejected_in_the_app() {
    let fx = Fixture::berlin_group().await;
    let started = fx.connector.start_consent(&decoupled(&fx)).await.unwrap();
    let mut session = started.session;
    let authorisation = session.authorisation_id.clone().expect("authorisation id");
    fx.sandbox
        .reject_authorisation(fx.bank, &authorisation)
        .unwrap();
    assert!(matches!(
        fx.connector.consent_status(&mut session).await.unwrap(),
        ConsentOutcome::Rejected { .. }
    ));
}

#[tokio::test]
async fn decoupled_is_not_asked_of_a_bank_that_does_not_offer_it() {
    let mut fx = Fixture::berlin_group().await;
    fx.profile.decoupled_sca = false;
    let settings = kontor_banks::HttpSettings::default();
    let connector = kontor_banks::connector(
        fx.profile.clone(),
        kontor_banks::build_client(&settings).unwrap(),
        settings,
    );
    let started = connector.start_consent(&decoupled(&fx)).await.unwrap();
    assert!(matches!(started.sca, ScaStep::Redirect { .. }));
}

#[tokio::test]
async fn an_unknown_account_is_rejected_with_the_banks_code() {
    let fx = Fixture::berlin_group().await;
    let mut session = fx.link().await;
    let err = fx
        .connector
        .balances(&mut session, "acc-000000000000", &present())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, BankError::Rejected { status: 404, code, .. } if code == "RESOURCE_UNKNOWN"),
        "{err:?}"
    );
}

#[tokio::test]
async fn instant_sepa_settles_in_seconds() {
    let fx = Fixture::berlin_group().await;
    let mut request = fx.payment("40.00");
    request.product = kontor_banks::PaymentProduct::InstantSepaCreditTransfer;
    let (mut session, status) = fx.pay(&request).await;
    assert_eq!(status.verbatim, "ACTC");
    let settled = fx.settle(&mut session, time::Duration::seconds(2)).await;
    assert_eq!(settled.verbatim, "ACSC");
    let entry = fx.only_payment(&request.idempotency_key);
    assert_eq!(entry.product, "instant-sepa-credit-transfers");
    assert!(entry.executed);
}

/// `debtorAccount` is mandatory for an initiation, and SEPA knows accounts by IBAN only: such
/// requests are refused before sending.
#[tokio::test]
async fn what_nextgenpsd2_requires_of_a_payment_is_checked_before_sending() {
    let fx = Fixture::berlin_group().await;
    let mut request = fx.payment("1.00");
    request.debtor = None;
    let err = fx.connector.initiate_payment(&request).await.unwrap_err();
    assert!(
        err.is_invalid_request() && err.to_string().contains("debtor"),
        "{err}"
    );
    let mut request = fx.payment("1.00");
    request.creditor = kontor_banks::AccountReference::SortCode {
        sort_code: kontor_domain::SortCode::parse("400993").unwrap(),
        account_number: kontor_domain::UkAccountNumber::parse("30971327").unwrap(),
    };
    let err = fx.connector.initiate_payment(&request).await.unwrap_err();
    assert!(
        err.is_invalid_request() && err.to_string().contains("creditor"),
        "{err}"
    );
    assert!(fx.sandbox.payments().is_empty(), "nothing reached the bank");
}

/// The spec's `X-Request-ID` is a UUID: another key travels as a UUID derived from it, the
/// same on every attempt.
#[tokio::test]
async fn a_key_that_is_not_a_uuid_travels_as_a_derived_one() {
    let fx = Fixture::berlin_group().await;
    let mut request = fx.payment("41.00");
    request.idempotency_key = IdempotencyKey::parse("order-2026-117/attempt").unwrap();
    let first = fx.connector.initiate_payment(&request).await.unwrap();
    let second = fx.connector.initiate_payment(&request).await.unwrap();
    assert_eq!(first.session.payment_id, second.session.payment_id);
    let entry = fx.only_payment(&request.idempotency_key);
    let sent = entry.idempotency_key.unwrap();
    assert_ne!(sent, request.idempotency_key.as_str());
    assert_eq!(sent.len(), 36);
    assert_eq!(
        sent,
        kontor_banks::berlin_group::payment_request_id(&request.idempotency_key)
    );
}

/// The hub's worker resumes an initiation whose answer was lost: no user present (so no
/// `PSU-IP-Address` of theirs: the hub's own is sent) and another state. The bank answers with
/// the first payment, whose redirect carries the first state; completion still reads it.
#[tokio::test]
async fn a_resumed_initiation_completes_with_the_first_redirect() {
    let fx = Fixture::berlin_group().await;
    let (proxy, lossy) = fx.through_proxy().await;
    let request = fx.payment("42.00");
    proxy.lose_next_answer(&format!("POST {}/v1/payments/", proxy.base_url.path()));
    assert!(lossy.initiate_payment(&request).await.is_err());

    let resumed = kontor_banks::PaymentRequest {
        state: "resumed".into(),
        psu_ip: None,
        ..request.clone()
    };
    let started = fx.connector.initiate_payment(&resumed).await.unwrap();
    let callback = fx.authorise_payment(&started).await;
    assert_eq!(
        callback.get("state"),
        Some(request.state.as_str()),
        "the first"
    );
    let mut session = started.session;
    let status = fx
        .connector
        .complete_payment(&mut session, &callback, &request.idempotency_key)
        .await
        .unwrap();
    assert_eq!(status.verbatim, "ACTC");
    assert!(fx.only_payment(&request.idempotency_key).executed);
}
