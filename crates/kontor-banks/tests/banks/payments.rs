//! Payment initiation for both standards against the sandbox: a payment through SCA to
//! settlement, exactly once in the bank's ledger; insufficient funds; the user cancelling; a
//! callback of another payment; and requests the standard forbids, refused before sending.

use kontor_banks::{AccountReference, BankPaymentStatus, PaymentRequest};
use kontor_domain::bank::Standard;
use kontor_domain::currency::Currency;
use kontor_domain::money::Money;
use kontor_domain::payment::{CreditorName, EndToEndId, IdempotencyKey, RemittanceInfo};
use kontor_domain::{SortCode, UkAccountNumber};

use crate::support::Fixture;
use crate::support::payments::iso;

/// What the bank says right after initiation, and once the user authorised: the verbatim
/// status and its ISO meaning.
fn expected_before_and_after_sca(fx: &Fixture) -> [(&'static str, &'static str); 2] {
    if fx.is_uk() {
        [
            ("AwaitingAuthorisation", "RCVD"),
            ("AcceptedSettlementInProcess", "ACSP"),
        ]
    } else {
        [("RCVD", "RCVD"), ("ACTC", "ACTC")]
    }
}

async fn pays_once_through_sca_and_settles(standard: Standard) {
    let fx = Fixture::for_standard(standard).await;
    let request = fx.payment("12.34");
    let [before, after] = expected_before_and_after_sca(&fx);

    let started = fx.connector.initiate_payment(&request).await.unwrap();
    assert_eq!(
        (started.status.verbatim.as_str(), iso(&started.status)),
        (before.0, Some(before.1))
    );
    let mut session = started.session.clone();
    let status = fx.connector.payment_status(&mut session).await.unwrap();
    assert_eq!(status.verbatim, before.0, "polled before SCA");

    let callback = fx.authorise_payment(&started).await;
    assert_eq!(callback.get("state"), Some(request.state.as_str()));
    let status = fx
        .connector
        .complete_payment(&mut session, &callback, &request.idempotency_key)
        .await
        .unwrap();
    assert_eq!(
        (status.verbatim.as_str(), iso(&status)),
        (after.0, Some(after.1))
    );
    assert!(session.payment_id.is_some());

    // SCT settles 4 simulated hours later, Faster Payments 5 seconds later.
    let step = if fx.is_uk() {
        time::Duration::seconds(2)
    } else {
        time::Duration::hours(1)
    };
    let settled = fx.settle(&mut session, step).await;
    let expected = if fx.is_uk() {
        "AcceptedSettlementCompleted"
    } else {
        "ACSC"
    };
    assert_eq!(settled.verbatim, expected);
    assert_eq!(iso(&settled), Some("ACSC"));
    assert_eq!(settled.reason, None);

    let entry = fx.only_payment(&request.idempotency_key);
    assert!(entry.executed);
    assert_eq!(Some(&entry.payment_id), session.payment_id.as_ref());
    assert_eq!(
        (entry.amount.as_str(), entry.currency.as_str()),
        ("12.34", request.amount.currency().code())
    );
    assert_eq!(entry.creditor_name, "Carol Dubois");
    let debtor = fx.current_account();
    assert_eq!(entry.debtor_iban.as_deref(), Some(debtor.iban.as_str()));
    assert_eq!(fx.sandbox.payments().len(), 1, "nothing else at the bank");
}

async fn insufficient_funds_are_rejected(standard: Standard) {
    let fx = Fixture::for_standard(standard).await;
    let request = fx.payment("250000.00");
    let available = Money::parse(
        &fx.current_account().available_balance,
        request.amount.currency(),
    )
    .unwrap();
    assert!(available.minor_units() < request.amount.minor_units());
    let (mut session, status) = fx.pay(&request).await;
    let expected = if fx.is_uk() { "Rejected" } else { "RJCT" };
    assert_eq!(
        (status.verbatim.as_str(), iso(&status)),
        (expected, Some("RJCT"))
    );
    let polled = fx.connector.payment_status(&mut session).await.unwrap();
    assert_eq!(polled.verbatim, expected, "and it stays so");
    // The bank's reason: Berlin Group's fundsAvailable, the UK payment details' StatusDetail.
    let reason = polled.reason.unwrap_or_default();
    assert!(reason.to_lowercase().contains("funds"), "{reason:?}");
    let entry = fx.only_payment(&request.idempotency_key);
    assert!(!entry.executed, "no money moved");
}

async fn the_user_cancels_sca(standard: Standard) {
    let fx = Fixture::for_standard(standard).await;
    let request = fx.payment("10.00");
    let started = fx.connector.initiate_payment(&request).await.unwrap();
    let kontor_banks::ScaStep::Redirect { url } = &started.sca else {
        panic!("redirect expected");
    };
    let callback = fx.browser.cancel(url.clone()).await;
    assert_eq!(callback.get("state"), Some(request.state.as_str()));
    let mut session = started.session;
    let status = fx
        .connector
        .complete_payment(&mut session, &callback, &request.idempotency_key)
        .await
        .unwrap();
    assert_cancelled(&fx, &status);
    assert!(
        session.payment_id.is_none() || !fx.is_uk(),
        "UK: nothing submitted"
    );
    // The bank agrees when asked later.
    let polled = fx.connector.payment_status(&mut session).await.unwrap();
    assert_eq!(iso(&polled), Some("RJCT"));
    assert!(fx.sandbox.payments().iter().all(|p| !p.executed));
}

fn assert_cancelled(fx: &Fixture, status: &BankPaymentStatus) {
    let expected = if fx.is_uk() { "Rejected" } else { "RJCT" };
    assert_eq!(
        (status.verbatim.as_str(), iso(status)),
        (expected, Some("RJCT"))
    );
    let reason = status.reason.as_deref().unwrap_or_default();
    assert!(
        reason.contains("cancelled") || reason.contains("access_denied"),
        "{reason}"
    );
}

/// UK: a callback with another state is refused, its code never exchanged. Berlin Group: the
/// callback only marks failure, and one with another state is not trusted to (the bank's status
/// is read all the same: a replayed initiation sends the user back with the first state).
async fn a_callback_of_another_payment_is_not_trusted(standard: Standard) {
    let fx = Fixture::for_standard(standard).await;
    let request = fx.payment("10.00");
    let started = fx.connector.initiate_payment(&request).await.unwrap();
    let mut callback = fx.authorise_payment(&started).await;
    callback
        .params
        .insert("state".into(), "st-someone-else".into());
    callback
        .params
        .insert(kontor_banks::berlin_group::NOK_PARAM.into(), "nok".into());
    let mut session = started.session;
    let result = fx
        .connector
        .complete_payment(&mut session, &callback, &request.idempotency_key)
        .await;
    if fx.is_uk() {
        let err = result.unwrap_err();
        assert!(err.to_string().contains("state"), "{err}");
        assert!(fx.sandbox.payments().is_empty(), "nothing submitted");
    } else {
        let status = result.unwrap();
        assert_eq!((status.verbatim.as_str(), status.reason), ("ACTC", None));
    }
}

/// Each request is one step outside what the standard allows; none reaches the bank.
async fn requests_the_standard_forbids_are_not_sent(standard: Standard) {
    let fx = Fixture::for_standard(standard).await;
    let foreign = if fx.is_uk() { "EUR" } else { "GBP" };
    type Change = Box<dyn Fn(&mut PaymentRequest)>;
    let cases: Vec<(&str, Change)> = vec![
        // The typed fields cannot be too long or blank (the domain's parsers refuse them); a key
        // the domain takes can still be longer than a bank's header allows.
        (
            "idempotency_key",
            Box::new(|r| r.idempotency_key = IdempotencyKey::parse(&"k".repeat(41)).unwrap()),
        ),
        (
            "amount",
            Box::new(|r| r.amount = Money::zero(r.amount.currency())),
        ),
        (
            "amount",
            Box::new(move |r| {
                r.amount = Money::parse("1.00", Currency::parse(foreign).unwrap()).unwrap();
            }),
        ),
        (
            "product",
            Box::new(|r| {
                r.product = match r.product {
                    kontor_banks::PaymentProduct::UkDomestic => {
                        kontor_banks::PaymentProduct::SepaCreditTransfer
                    }
                    _ => kontor_banks::PaymentProduct::UkDomestic,
                };
            }),
        ),
    ];
    for (field, change) in cases {
        let mut request = fx.payment("1.00");
        change(&mut request);
        let err = fx.connector.initiate_payment(&request).await.unwrap_err();
        assert!(err.is_invalid_request(), "{field}: {err:?}");
        assert!(err.to_string().contains(field), "{field}: {err}");
    }
    // The limits themselves are fine.
    let mut request = fx.payment("1.00");
    request.creditor_name = CreditorName::parse(&"n".repeat(CreditorName::MAX_LEN)).unwrap();
    request.remittance = Some(RemittanceInfo::parse(&"r".repeat(RemittanceInfo::MAX_LEN)).unwrap());
    request.end_to_end_id = EndToEndId::parse(&"e".repeat(EndToEndId::MAX_LEN)).unwrap();
    let longest = "k".repeat(IdempotencyKey::MAX_BANK_LEN - request.idempotency_key.len());
    request.idempotency_key =
        IdempotencyKey::parse(&format!("{}{longest}", request.idempotency_key)).unwrap();
    fx.connector.initiate_payment(&request).await.unwrap();
    assert_eq!(
        fx.sandbox.payments().len(),
        usize::from(!fx.is_uk()),
        "only the last one"
    );
}

/// A bank that drops `state` from the callback: the session still knows the payment.
async fn a_callback_without_state_completes(standard: Standard) {
    let fx = Fixture::for_standard(standard).await;
    let request = fx.payment("3.00");
    let started = fx.connector.initiate_payment(&request).await.unwrap();
    let mut callback = fx.authorise_payment(&started).await;
    callback.params.remove("state");
    let mut session = started.session;
    let status = fx
        .connector
        .complete_payment(&mut session, &callback, &request.idempotency_key)
        .await
        .unwrap();
    assert!(
        fx.only_payment(&request.idempotency_key).executed,
        "{status:?}"
    );
}

/// UK: the bank says which account the user paid from (the consent asked, with
/// `ReadRefundAccount`): the authorised consent already, then the submitted payment, and every
/// later read of it. Berlin Group payments name their debtor in the request, and the connector
/// reports none.
async fn the_bank_says_who_pays(standard: Standard) {
    let fx = Fixture::for_standard(standard).await;
    let request = fx.payment("7.45");
    let started = fx.connector.initiate_payment(&request).await.unwrap();
    assert_eq!(started.session.payer, None, "nobody chose an account yet");
    let callback = fx.authorise_payment(&started).await;
    let mut session = started.session.clone();
    if !fx.is_uk() {
        fx.connector
            .complete_payment(&mut session, &callback, &request.idempotency_key)
            .await
            .unwrap();
        assert_eq!(session.payer, None);
        return;
    }
    let current = fx.current_account();
    let expected = AccountReference::SortCode {
        sort_code: SortCode::parse(current.sort_code.as_deref().unwrap()).unwrap(),
        account_number: UkAccountNumber::parse(current.account_number.as_deref().unwrap()).unwrap(),
    };
    // Authorised, not submitted: the consent names the account chosen.
    let mut consent_only = started.session.clone();
    fx.connector
        .payment_status(&mut consent_only)
        .await
        .unwrap();
    let from_consent = consent_only
        .payer
        .expect("the authorised consent names the payer");
    assert_eq!(from_consent.account, expected);
    let name = from_consent.name.clone().expect("with the account's name");
    assert!(!name.trim().is_empty());

    fx.connector
        .complete_payment(&mut session, &callback, &request.idempotency_key)
        .await
        .unwrap();
    assert_eq!(
        session.payer.as_ref(),
        Some(&from_consent),
        "the payment says so too"
    );
    // A later read of the payment tells it again, and the session keeps it across a round trip.
    session.payer = None;
    fx.connector.payment_status(&mut session).await.unwrap();
    assert_eq!(session.payer.as_ref(), Some(&from_consent));
    let kept: kontor_banks::PaymentSession =
        serde_json::from_str(&serde_json::to_string(&session).unwrap()).unwrap();
    assert_eq!(kept.payer, Some(from_consent.clone()));
    assert!(
        !format!("{from_consent:?}").contains(&name),
        "Debug leaves the name out"
    );
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
    pays_once_through_sca_and_settles,
    insufficient_funds_are_rejected,
    the_user_cancels_sca,
    a_callback_of_another_payment_is_not_trusted,
    requests_the_standard_forbids_are_not_sent,
    a_callback_without_state_completes,
    the_bank_says_who_pays,
);
