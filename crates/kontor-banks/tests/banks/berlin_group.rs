//! Berlin Group NextGenPSD2 against the sandbox's Sonnenbank: the common scenarios, decoupled
//! SCA, and what the wire looks like where the standard is particular.

use kontor_banks::berlin_group::NOK_PARAM;
use kontor_banks::{BankError, ConsentOutcome, ScaPreference, ScaStep};

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
