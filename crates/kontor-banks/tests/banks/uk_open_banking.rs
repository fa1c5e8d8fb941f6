//! UK Open Banking against the sandbox's Thames Bank: the common scenarios, OAuth2 with PKCE,
//! and the user's token being refreshed.

use kontor_banks::{BankError, ConsentOutcome, ScaStep};

use crate::scenarios;
use crate::support::{Fixture, present, unattended};

#[tokio::test]
async fn links_and_reads_the_users_accounts() {
    scenarios::links_and_reads_the_users_accounts(Fixture::uk().await).await;
}

#[tokio::test]
async fn reads_every_page_of_transactions_with_filters() {
    scenarios::reads_every_page_of_transactions_with_filters(Fixture::uk().await).await;
}

#[tokio::test]
async fn pending_entries_book_after_time_passes() {
    scenarios::pending_entries_book_after_time_passes(Fixture::uk().await).await;
}

#[tokio::test]
async fn revoked_by_the_hub() {
    scenarios::revoked_by_the_hub(Fixture::uk().await).await;
}

#[tokio::test]
async fn revoked_by_the_user_at_the_bank() {
    scenarios::revoked_by_the_user_at_the_bank(Fixture::uk().await).await;
}

#[tokio::test]
async fn expired_consent() {
    scenarios::expired_consent(Fixture::uk().await).await;
}

#[tokio::test]
async fn daily_allowance_of_unattended_reads() {
    scenarios::daily_allowance_of_unattended_reads(Fixture::uk().await).await;
}

#[tokio::test]
async fn user_cancels_at_the_bank() {
    scenarios::user_cancels_at_the_bank(Fixture::uk().await).await;
}

#[tokio::test]
async fn wrong_password_three_times() {
    scenarios::wrong_password_three_times(Fixture::uk().await).await;
}

#[tokio::test]
async fn a_callback_for_another_consent_is_refused() {
    scenarios::a_callback_for_another_consent_is_refused(Fixture::uk().await).await;
}

#[tokio::test]
async fn the_authorisation_request_carries_pkce_and_the_consent() {
    let fx = Fixture::uk().await;
    let request = fx.request();
    let started = fx.connector.start_consent(&request).await.unwrap();
    let ScaStep::Redirect { url } = started.sca else {
        panic!("redirect expected");
    };
    let query: std::collections::BTreeMap<String, String> =
        url.query_pairs().into_owned().collect();
    assert_eq!(query["state"], request.state);
    assert_eq!(query["code_challenge_method"], "S256");
    assert_eq!(query["redirect_uri"], request.redirect_uri.as_str());
    assert!(query["scope"].split(' ').any(|s| s == "accounts"));
    let claims = query["request"].split('.').nth(1).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, claims).unwrap(),
    )
    .unwrap();
    assert_eq!(
        claims["claims"]["id_token"]["openbanking_intent_id"]["value"],
        started.session.consent_id.as_str()
    );
    assert!(started.session.pkce_verifier.is_some());
    // The verifier is the secret half: it never travels in the URL.
    assert!(
        !url.as_str()
            .contains(started.session.pkce_verifier.as_deref().unwrap())
    );
}

#[tokio::test]
async fn the_users_token_is_refreshed_when_it_expires() {
    let fx = Fixture::uk().await;
    let mut session = fx.link().await;
    let first = session.access_token.clone().expect("access token");
    assert!(session.refresh_token.is_some());
    assert!(
        session.pkce_verifier.is_none(),
        "the verifier is single-use"
    );
    // The bank's tokens live an hour of its time; ours still thinks the token is fresh.
    fx.sandbox.advance_clock(time::Duration::hours(2)).unwrap();
    let accounts = fx
        .connector
        .accounts(&mut session, &present())
        .await
        .unwrap();
    assert_eq!(accounts.len(), fx.sandbox_accounts().len());
    let second = session.access_token.clone().unwrap();
    assert_ne!(first, second, "the session carries the new token");
    // And once our clock says it expired, it is refreshed before the call.
    session.access_token_expires_at = Some(kontor_domain::time::Timestamp::from_unix_micros(0));
    fx.connector
        .accounts(&mut session, &present())
        .await
        .unwrap();
    assert_ne!(session.access_token.clone().unwrap(), second);
}

#[tokio::test]
async fn a_consent_never_authorised_reads_as_pending_and_refuses_reads() {
    let fx = Fixture::uk().await;
    let mut session = fx
        .connector
        .start_consent(&fx.request())
        .await
        .unwrap()
        .session;
    assert_eq!(
        fx.connector.consent_status(&mut session).await.unwrap(),
        ConsentOutcome::Pending
    );
    let err = fx
        .connector
        .accounts(&mut session, &unattended())
        .await
        .unwrap_err();
    assert!(matches!(err, BankError::ConsentInvalid { .. }), "{err:?}");
}

/// The submission's answer is lost after the bank carried it out (as when the hub dies right
/// after sending it): the session keeps the user's token, and the same call with the same key
/// answers with the same payment.
#[tokio::test]
async fn a_repeated_submission_makes_one_payment() {
    let fx = Fixture::uk().await;
    let request = fx.payment("30.00");
    let started = fx.connector.initiate_payment(&request).await.unwrap();
    let callback = fx.authorise_payment(&started).await;
    let mut session = started.session;

    let (proxy, lossy) = fx.through_proxy().await;
    proxy.lose_next_answer(&format!(
        "POST {}/open-banking/v3.1/pisp/domestic-payments HTTP",
        proxy.base_url.path()
    ));
    let err = lossy
        .complete_payment(&mut session, &callback, &request.idempotency_key)
        .await
        .unwrap_err();
    assert!(matches!(err, BankError::Unavailable { .. }), "{err:?}");
    assert_eq!(proxy.lost(), 1);
    assert!(
        session.access_token.is_some(),
        "the token is kept for the retry"
    );
    assert_eq!(session.payment_id, None);
    let entry = fx.only_payment(&request.idempotency_key);
    assert!(entry.executed, "the bank carried it out");

    let status = fx
        .connector
        .complete_payment(&mut session, &callback, &request.idempotency_key)
        .await
        .unwrap();
    assert_eq!(status.verbatim, "AcceptedSettlementInProcess");
    assert_eq!(
        session.payment_id.as_deref(),
        Some(entry.payment_id.as_str())
    );

    // Again, with the answer saved: only a read.
    let again = fx
        .connector
        .complete_payment(&mut session, &callback, &request.idempotency_key)
        .await
        .unwrap();
    assert_eq!(again.verbatim, "AcceptedSettlementInProcess");
    // Again, from a session saved before the answer came: the same payment.
    let mut stale = session.clone();
    stale.payment_id = None;
    fx.connector
        .complete_payment(&mut stale, &callback, &request.idempotency_key)
        .await
        .unwrap();
    assert_eq!(stale.payment_id, session.payment_id);
    assert_eq!(fx.sandbox.payments().len(), 1, "one payment at the bank");
}

#[tokio::test]
async fn a_server_error_on_submission_is_recovered() {
    let fx = Fixture::uk().await;
    let request = fx.payment("31.00");
    let started = fx.connector.initiate_payment(&request).await.unwrap();
    let callback = fx.authorise_payment(&started).await;
    let mut session = started.session;
    fx.faults(kontor_sandbox_bank::FaultConfig {
        fail_next: 1,
        error_status: Some(500),
        path_contains: Some("/domestic-payments".into()),
        ..kontor_sandbox_bank::FaultConfig::default()
    });
    let err = fx
        .connector
        .complete_payment(&mut session, &callback, &request.idempotency_key)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            BankError::Unavailable {
                status: Some(500),
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(fx.injected().await, 1, "sent once");
    assert!(fx.sandbox.payments().is_empty());
    let status = fx
        .connector
        .complete_payment(&mut session, &callback, &request.idempotency_key)
        .await
        .unwrap();
    assert_eq!(status.verbatim, "AcceptedSettlementInProcess");
    assert!(fx.only_payment(&request.idempotency_key).executed);
}

/// A consent pays once: a second submission under another key is refused by the bank.
#[tokio::test]
async fn a_consumed_consent_refuses_a_second_payment() {
    let fx = Fixture::uk().await;
    let request = fx.payment("32.00");
    let started = fx.connector.initiate_payment(&request).await.unwrap();
    let callback = fx.authorise_payment(&started).await;
    let mut session = started.session;
    fx.connector
        .complete_payment(&mut session, &callback, &request.idempotency_key)
        .await
        .unwrap();
    let mut other = session.clone();
    other.payment_id = None;
    let err = fx
        .connector
        .complete_payment(&mut other, &callback, "another-key")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, BankError::ConsentInvalid { code } if code == "UK.OBIE.Resource.InvalidConsentStatus"),
        "{err:?}"
    );
    assert_eq!(fx.sandbox.payments().len(), 1);
}

/// Before submission the consent's status stands for the payment: authorised, not yet paid.
#[tokio::test]
async fn the_consents_status_is_read_before_submission() {
    let fx = Fixture::uk().await;
    let request = fx.payment("33.00");
    let started = fx.connector.initiate_payment(&request).await.unwrap();
    let callback = fx.authorise_payment(&started).await;
    let mut session = started.session;
    let status = fx.connector.payment_status(&mut session).await.unwrap();
    assert_eq!(status.verbatim, "Authorised");
    assert_eq!(crate::support::payments::iso(&status), Some("ACTC"));
    fx.connector
        .complete_payment(&mut session, &callback, &request.idempotency_key)
        .await
        .unwrap();
    let status = fx.connector.payment_status(&mut session).await.unwrap();
    assert_eq!(status.verbatim, "AcceptedSettlementInProcess");
}

/// A debtor account given by the hub is the one debited; creditors may be given by IBAN too.
#[tokio::test]
async fn the_given_debtor_is_debited_and_ibans_are_accepted() {
    let fx = Fixture::uk().await;
    let savings = fx
        .sandbox_accounts()
        .into_iter()
        .find(|a| a.kind == "Savings")
        .unwrap();
    let mut request = fx.payment("34.00");
    request.debtor = Some(kontor_banks::AccountReference::SortCode {
        sort_code: kontor_domain::SortCode::parse(savings.sort_code.as_deref().unwrap()).unwrap(),
        account_number: kontor_domain::UkAccountNumber::parse(
            savings.account_number.as_deref().unwrap(),
        )
        .unwrap(),
    });
    request.creditor = kontor_banks::AccountReference::Iban(
        kontor_domain::iban::Iban::parse("GB52THAM40099330971327").unwrap(),
    );
    let (_, status) = fx.pay(&request).await;
    assert_eq!(status.verbatim, "AcceptedSettlementInProcess");
    let entry = fx.only_payment(&request.idempotency_key);
    assert_eq!(entry.debtor_iban.as_deref(), Some(savings.iban.as_str()));
    assert_eq!(entry.creditor_account, "GB52THAM40099330971327");
}

#[tokio::test]
async fn malformed_uk_accounts_are_not_sent() {
    let fx = Fixture::uk().await;
    // A malformed sort code cannot even be written down: the domain's parser refuses it.
    assert!(kontor_domain::SortCode::parse("40-09-9").is_err());
    let mut request = fx.payment("1.00");
    request.amount =
        kontor_domain::money::Money::parse("10000000000000", request.amount.currency()).unwrap();
    let err = fx.connector.initiate_payment(&request).await.unwrap_err();
    assert!(
        err.is_invalid_request() && err.to_string().contains("amount"),
        "{err}"
    );
    // Spaces and hyphens in a sort code are what people write; they are fine.
    let mut request = fx.payment("1.00");
    request.creditor = kontor_banks::AccountReference::SortCode {
        sort_code: kontor_domain::SortCode::parse("40-09-93").unwrap(),
        account_number: kontor_domain::UkAccountNumber::parse("3097 1327").unwrap(),
    };
    fx.connector.initiate_payment(&request).await.unwrap();
}

/// The hub resumes an interrupted completion without the callback: with the token saved, the
/// payment is submitted under the same key; without it, the consent's status is read.
#[tokio::test]
async fn a_completion_is_resumed_without_the_callback() {
    let fx = Fixture::uk().await;
    let request = fx.payment("35.00");
    let started = fx.connector.initiate_payment(&request).await.unwrap();
    let callback = fx.authorise_payment(&started).await;
    let before_exchange = started.session.clone();

    let resumed = fx
        .connector
        .complete_payment(
            &mut before_exchange.clone(),
            &kontor_banks::Callback::default(),
            &request.idempotency_key,
        )
        .await
        .unwrap();
    assert_eq!(
        resumed.verbatim, "Authorised",
        "no token, no code: read only"
    );
    assert!(fx.sandbox.payments().is_empty());

    let (proxy, lossy) = fx.through_proxy().await;
    proxy.lose_next_answer(&format!(
        "POST {}/open-banking/v3.1/pisp/domestic-payments HTTP",
        proxy.base_url.path()
    ));
    let mut session = started.session;
    assert!(
        lossy
            .complete_payment(&mut session, &callback, &request.idempotency_key)
            .await
            .is_err()
    );
    let status = fx
        .connector
        .complete_payment(
            &mut session,
            &kontor_banks::Callback::default(),
            &request.idempotency_key,
        )
        .await
        .unwrap();
    assert_eq!(status.verbatim, "AcceptedSettlementInProcess");
    assert_eq!(
        session.payment_id.as_deref(),
        Some(
            fx.only_payment(&request.idempotency_key)
                .payment_id
                .as_str()
        )
    );

    // A caller that lost the token and tries the spent code again learns that a payment was
    // submitted, not that the bank refused.
    let spent = fx
        .connector
        .complete_payment(
            &mut before_exchange.clone(),
            &callback,
            &request.idempotency_key,
        )
        .await
        .unwrap();
    assert_eq!((spent.verbatim.as_str(), spent.iso), ("Consumed", None));
    assert!(spent.reason.is_some());
    assert_eq!(fx.sandbox.payments().len(), 1);
}

/// The code is exchanged on its own first, so that the caller can keep the token before the
/// payment is submitted; the submission then uses the kept token, and a second exchange is a
/// no-op rather than a spent code.
#[tokio::test]
async fn the_code_is_exchanged_before_submission() {
    let fx = Fixture::uk().await;
    let request = fx.payment("36.00");
    let started = fx.connector.initiate_payment(&request).await.unwrap();
    let callback = fx.authorise_payment(&started).await;
    let mut session = started.session;

    assert!(
        fx.connector
            .exchange_payment_code(&mut session, &callback)
            .await
            .unwrap()
    );
    assert!(session.access_token.is_some());
    assert!(fx.sandbox.payments().is_empty(), "nothing submitted yet");
    assert!(
        !fx.connector
            .exchange_payment_code(&mut session, &callback)
            .await
            .unwrap(),
        "a token already: nothing to exchange"
    );
    let status = fx
        .connector
        .complete_payment(&mut session, &callback, &request.idempotency_key)
        .await
        .unwrap();
    assert_eq!(status.verbatim, "AcceptedSettlementInProcess");
    assert_eq!(fx.sandbox.payments().len(), 1);

    // A callback of another payment is refused before its code is sent anywhere.
    let mut foreign = callback.clone();
    foreign
        .params
        .insert("state".into(), "another-payment".into());
    let mut fresh = fx
        .connector
        .initiate_payment(&fx.payment("37.00"))
        .await
        .unwrap()
        .session;
    assert!(matches!(
        fx.connector
            .exchange_payment_code(&mut fresh, &foreign)
            .await,
        Err(BankError::Protocol { .. })
    ));
    assert!(fresh.access_token.is_none());
}

/// A completion resumed after the user's token lapsed (the hub was down a long time): if
/// the submission never reached the bank, the token is refreshed and the payment submitted;
/// if it did, the bank refuses the refresh (the consent is consumed) and the answer says a
/// payment was made, never a refusal the hub could take for "no money moved".
#[tokio::test]
async fn a_resumed_submission_with_a_lapsed_token() {
    let fx = Fixture::uk().await;
    let request = fx.payment("38.00");
    let started = fx.connector.initiate_payment(&request).await.unwrap();
    let callback = fx.authorise_payment(&started).await;
    let mut session = started.session;
    fx.connector
        .exchange_payment_code(&mut session, &callback)
        .await
        .unwrap();
    let lapsed = session.access_token.clone();
    fx.sandbox.advance_clock(time::Duration::hours(2)).unwrap();
    let status = fx
        .connector
        .complete_payment(
            &mut session,
            &kontor_banks::Callback::default(),
            &request.idempotency_key,
        )
        .await
        .unwrap();
    assert_eq!(status.verbatim, "AcceptedSettlementInProcess");
    assert_ne!(session.access_token, lapsed, "a new token, to be saved");
    let made = fx.only_payment(&request.idempotency_key);
    assert_eq!(
        session.payment_id.as_deref(),
        Some(made.payment_id.as_str())
    );

    // As saved before the submission's answer arrived, read back two hours later still.
    let mut saved = session.clone();
    saved.payment_id = None;
    fx.sandbox.advance_clock(time::Duration::hours(2)).unwrap();
    let status = fx
        .connector
        .complete_payment(
            &mut saved,
            &kontor_banks::Callback::default(),
            &request.idempotency_key,
        )
        .await
        .unwrap();
    assert_eq!(status.verbatim, "Consumed");
    assert_eq!(status.iso, None);
    assert_eq!(fx.sandbox.payments().len(), 1, "one payment at the bank");
}
