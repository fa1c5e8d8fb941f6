//! Scenarios both standards must pass, run by each standard's module against its bank.

use std::collections::HashSet;

use kontor_banks::{BankError, BookingStatus, ConsentOutcome, ScaStep, TransactionQuery};
use kontor_domain::account::BalanceKind;
use kontor_domain::transaction::{BankTransaction, TransactionStatus};

use crate::support::browser::Landing;
use crate::support::{Fixture, present, unattended};

pub async fn links_and_reads_the_users_accounts(fx: Fixture) {
    let mut session = fx.link().await;
    assert_eq!(
        fx.connector.consent_status(&mut session).await.unwrap(),
        ConsentOutcome::Active {
            valid_until: Some(fx.request().valid_until)
        }
    );
    let mut accounts = fx
        .connector
        .accounts(&mut session, &present())
        .await
        .unwrap();
    accounts.sort_by(|a, b| a.bank_account_id.cmp(&b.bank_account_id));
    let expected = fx.sandbox_accounts();
    assert_eq!(accounts.len(), expected.len());
    for (account, info) in accounts.iter().zip(&expected) {
        assert_eq!(account.bank_account_id, info.resource_id);
        match &account.iban {
            Some(iban) => assert_eq!(iban.as_str(), info.iban),
            // A UK card is known by its masked PAN only.
            None => {
                assert_eq!(info.kind, "CreditCard");
                assert!(
                    account
                        .other_identification
                        .as_deref()
                        .is_some_and(|p| p.contains('*'))
                );
            }
        }
        assert_eq!(account.currency.code(), info.currency);
        assert_eq!(
            account.kind.as_str(),
            kind_name(&info.kind),
            "{}",
            info.kind
        );
        if let (Some(sort_code), Some(number), Some(_)) =
            (&info.sort_code, &info.account_number, &account.iban)
        {
            assert_eq!(
                account.other_identification.as_deref(),
                Some(format!("{sort_code}{number}").as_str())
            );
        }
        let balances = fx
            .connector
            .balances(&mut session, &account.bank_account_id, &present())
            .await
            .unwrap();
        let amount = |kind| {
            balances
                .iter()
                .find(|b| b.kind == kind)
                .map(|b| b.amount.to_decimal_string())
        };
        assert_eq!(
            amount(BalanceKind::InterimBooked),
            Some(info.booked_balance.clone())
        );
        assert_eq!(
            amount(BalanceKind::InterimAvailable),
            Some(info.available_balance.clone())
        );
        assert!(
            balances
                .iter()
                .all(|b| b.amount.currency().code() == info.currency)
        );
    }
}

fn kind_name(sandbox_kind: &str) -> &'static str {
    match sandbox_kind {
        "Current" => "current",
        "Savings" => "savings",
        "CreditCard" => "credit_card",
        other => panic!("unknown sandbox kind {other}"),
    }
}

fn ids(transactions: &[BankTransaction]) -> Vec<String> {
    transactions
        .iter()
        .map(|t| {
            t.transaction_id
                .clone()
                .expect("the sandbox sends transaction ids")
        })
        .collect()
}

pub async fn reads_every_page_of_transactions_with_filters(fx: Fixture) {
    let mut session = fx.link().await;
    let info = fx
        .sandbox_accounts()
        .into_iter()
        .find(|a| a.kind == "Current")
        .unwrap();
    let all = |status| TransactionQuery {
        from: None,
        to: None,
        status,
    };
    let both = fx
        .connector
        .transactions(
            &mut session,
            &info.resource_id,
            &all(BookingStatus::Both),
            &present(),
        )
        .await
        .unwrap();
    // 24 months of a current account span many pages; every entry comes once.
    assert_eq!(both.len(), info.entries);
    assert!(both.len() > 200, "{}", both.len());
    let unique: HashSet<String> = ids(&both).into_iter().collect();
    assert_eq!(unique.len(), both.len());

    let booked = fx
        .connector
        .transactions(
            &mut session,
            &info.resource_id,
            &all(BookingStatus::Booked),
            &present(),
        )
        .await
        .unwrap();
    let pending = fx
        .connector
        .transactions(
            &mut session,
            &info.resource_id,
            &all(BookingStatus::Pending),
            &present(),
        )
        .await
        .unwrap();
    assert!(booked.iter().all(|t| t.status == TransactionStatus::Booked));
    assert!(
        pending
            .iter()
            .all(|t| t.status == TransactionStatus::Pending)
    );
    assert_eq!(booked.len() + pending.len(), both.len());
    let mut split: Vec<String> = ids(&booked);
    split.extend(ids(&pending));
    assert_eq!(split.into_iter().collect::<HashSet<_>>(), unique);
    assert!(booked.iter().all(|t| t.booking_date.is_some()));

    // A month, booked only: exactly the booked entries of the full read in that range.
    let today = fx.sandbox.now().date();
    let from = today - time::Duration::days(60);
    let to = today - time::Duration::days(30);
    let month = fx
        .connector
        .transactions(
            &mut session,
            &info.resource_id,
            &TransactionQuery {
                from: Some(from),
                to: Some(to),
                status: BookingStatus::Booked,
            },
            &present(),
        )
        .await
        .unwrap();
    let expected: HashSet<String> = booked
        .iter()
        .filter(|t| t.booking_date.is_some_and(|d| d >= from && d <= to))
        .map(|t| t.transaction_id.clone().unwrap())
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(ids(&month).into_iter().collect::<HashSet<_>>(), expected);
}

pub async fn pending_entries_book_after_time_passes(fx: Fixture) {
    let mut session = fx.link().await;
    let info = fx
        .sandbox_accounts()
        .into_iter()
        .find(|a| a.kind == "Current")
        .unwrap();
    let query = TransactionQuery {
        from: Some(fx.sandbox.now().date() - time::Duration::days(10)),
        to: None,
        status: BookingStatus::Both,
    };
    // The sandbox's data follows the calendar of the day the test runs: move on a day at a
    // time until some card payment is pending (one almost always is).
    let mut before = Vec::new();
    for _ in 0..7 {
        before = fx
            .connector
            .transactions(&mut session, &info.resource_id, &query, &present())
            .await
            .unwrap();
        if before
            .iter()
            .any(|t| t.status == TransactionStatus::Pending)
        {
            break;
        }
        fx.sandbox.advance_clock(time::Duration::days(1)).unwrap();
    }
    let pending: Vec<&BankTransaction> = before
        .iter()
        .filter(|t| t.status == TransactionStatus::Pending)
        .collect();
    assert!(!pending.is_empty(), "card payments are pending at first");
    assert!(pending.iter().all(|t| t.amount.is_negative()));

    fx.sandbox.advance_clock(time::Duration::days(6)).unwrap();
    let after = fx
        .connector
        .transactions(&mut session, &info.resource_id, &query, &present())
        .await
        .unwrap();
    let after_ids: HashSet<String> = ids(&after).into_iter().collect();
    let booked_after: Vec<&BankTransaction> = after
        .iter()
        .filter(|t| t.status == TransactionStatus::Booked)
        .collect();
    for old in &pending {
        // The bank books it under new ids: the old pending entry is gone...
        assert!(!after_ids.contains(old.transaction_id.as_ref().unwrap()));
        // ...and a booked entry with the same merchant appeared on or after its date.
        assert!(
            booked_after
                .iter()
                .any(|b| b.counterparty_name == old.counterparty_name
                    && b.amount.currency() == old.amount.currency()
                    && b.booking_date >= old.booking_date.min(old.value_date)
                    && b.transaction_id != old.transaction_id
                    && b.entry_reference != old.entry_reference),
            "no booked entry for a pending {:?}",
            old
        );
    }
}

pub async fn revoked_by_the_hub(fx: Fixture) {
    let mut session = fx.link().await;
    fx.connector.revoke(&mut session).await.unwrap();
    let err = fx
        .connector
        .accounts(&mut session, &present())
        .await
        .unwrap_err();
    assert!(matches!(err, BankError::ConsentInvalid { .. }), "{err:?}");
    assert_eq!(
        fx.connector.consent_status(&mut session).await.unwrap(),
        ConsentOutcome::Revoked
    );
    // Revoking again is fine: there is nothing left to withdraw.
    fx.connector.revoke(&mut session).await.unwrap();
}

pub async fn revoked_by_the_user_at_the_bank(fx: Fixture) {
    let mut session = fx.link().await;
    fx.sandbox
        .revoke_consent(fx.bank, &session.consent_id)
        .unwrap();
    let err = fx
        .connector
        .accounts(&mut session, &unattended())
        .await
        .unwrap_err();
    assert!(matches!(err, BankError::ConsentInvalid { .. }), "{err:?}");
    assert_eq!(
        fx.connector.consent_status(&mut session).await.unwrap(),
        ConsentOutcome::Revoked
    );
}

pub async fn expired_consent(fx: Fixture) {
    let mut session = fx.link().await;
    let account = fx.sandbox_accounts().remove(0);
    fx.sandbox
        .expire_consent(fx.bank, &session.consent_id)
        .unwrap();
    let err = fx
        .connector
        .accounts(&mut session, &present())
        .await
        .unwrap_err();
    assert_eq!(err, BankError::ConsentExpired);
    let err = fx
        .connector
        .balances(&mut session, &account.resource_id, &unattended())
        .await
        .unwrap_err();
    assert_eq!(err, BankError::ConsentExpired);
    assert_eq!(
        fx.connector.consent_status(&mut session).await.unwrap(),
        ConsentOutcome::Expired
    );
}

pub async fn daily_allowance_of_unattended_reads(fx: Fixture) {
    let mut session = fx.link().await;
    for _ in 0..4 {
        fx.connector
            .accounts(&mut session, &unattended())
            .await
            .unwrap();
    }
    let err = fx
        .connector
        .accounts(&mut session, &unattended())
        .await
        .unwrap_err();
    assert_eq!(err, BankError::AccessExceeded);
    assert!(!err.is_transient());
    // With the user present the allowance does not apply.
    for _ in 0..3 {
        fx.connector
            .accounts(&mut session, &present())
            .await
            .unwrap();
    }
    // The next day, unattended reads work again.
    fx.sandbox.advance_clock(time::Duration::days(1)).unwrap();
    fx.connector
        .accounts(&mut session, &unattended())
        .await
        .unwrap();
}

pub async fn user_cancels_at_the_bank(fx: Fixture) {
    let request = fx.request();
    let started = fx.connector.start_consent(&request).await.unwrap();
    let ScaStep::Redirect { url } = started.sca else {
        panic!("redirect expected");
    };
    let callback = fx.browser.cancel(url).await;
    assert_eq!(callback.get("state"), Some(request.state.as_str()));
    let mut session = started.session;
    let outcome = fx
        .connector
        .complete_consent(&mut session, &callback)
        .await
        .unwrap();
    assert!(
        matches!(outcome, ConsentOutcome::Rejected { .. }),
        "{outcome:?}"
    );
    assert!(matches!(
        fx.connector.consent_status(&mut session).await.unwrap(),
        ConsentOutcome::Rejected { .. }
    ));
    let err = fx
        .connector
        .accounts(&mut session, &present())
        .await
        .unwrap_err();
    assert!(matches!(err, BankError::ConsentInvalid { .. }), "{err:?}");
}

pub async fn wrong_password_three_times(fx: Fixture) {
    let request = fx.request();
    let started = fx.connector.start_consent(&request).await.unwrap();
    let ScaStep::Redirect { url } = started.sca else {
        panic!("redirect expected");
    };
    let landing = fx.browser.wrong_password(url, fx.user, 3).await;
    if let Landing::Page { .. } = &landing {
        assert_eq!(landing.step().as_deref(), Some("failed"));
    }
    let callback = fx.browser.to_hub(landing).await;
    let mut session = started.session;
    let outcome = fx
        .connector
        .complete_consent(&mut session, &callback)
        .await
        .unwrap();
    assert!(
        matches!(outcome, ConsentOutcome::Rejected { .. }),
        "{outcome:?}"
    );
}

pub async fn a_callback_for_another_consent_is_refused(fx: Fixture) {
    let started = fx.connector.start_consent(&fx.request()).await.unwrap();
    let mut session = started.session;
    let callback = kontor_banks::Callback {
        params: [("state".to_owned(), "someone-else".to_owned())].into(),
    };
    let err = fx
        .connector
        .complete_consent(&mut session, &callback)
        .await
        .unwrap_err();
    assert!(matches!(err, BankError::Protocol { .. }), "{err:?}");
}
