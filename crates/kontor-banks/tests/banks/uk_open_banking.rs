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
