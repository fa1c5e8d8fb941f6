//! What the connectors log: every bank call, and never a token, consent id, account number or
//! name.

use kontor_banks::{BookingStatus, TransactionQuery};
use kontor_sandbox_bank::FaultConfig;

use crate::support::{Fixture, capture, present};

/// Links, reads everything once (through a fault, so that failures are logged too), and
/// returns the log and the secrets that must not be in it.
async fn logged_flow(fx: Fixture) -> (String, Vec<String>) {
    let capture = capture::start();

    let mut session = fx.link().await;
    fx.faults(FaultConfig {
        fail_next: 1,
        error_status: Some(503),
        ..FaultConfig::default()
    });
    let accounts = fx
        .connector
        .accounts(&mut session, &present())
        .await
        .unwrap();
    let query = TransactionQuery {
        from: None,
        to: None,
        status: BookingStatus::Both,
    };
    for account in &accounts {
        fx.connector
            .balances(&mut session, &account.bank_account_id, &present())
            .await
            .unwrap();
        fx.connector
            .transactions(&mut session, &account.bank_account_id, &query, &present())
            .await
            .unwrap();
    }
    fx.connector.revoke(&mut session).await.unwrap();

    let mut secrets = vec![session.consent_id.clone()];
    secrets.extend(session.access_token.clone());
    secrets.extend(session.refresh_token.clone());
    for info in fx.sandbox_accounts() {
        secrets.push(info.iban.clone());
        secrets.push(info.iban[info.iban.len() - 8..].to_owned());
        secrets.extend(info.account_number.clone());
    }
    let log = capture.text();
    (log, secrets)
}

fn check(log: &str, secrets: &[String], names: &[&str]) {
    assert!(log.contains("bank call"), "{log}");
    assert!(log.contains("bank call failed"), "the fault is logged");
    assert!(log.contains("http.path"), "{log}");
    for secret in secrets {
        assert!(!log.contains(secret.as_str()), "log contains {secret}");
    }
    for name in names {
        assert!(!log.contains(name), "log contains {name}");
    }
}

#[tokio::test]
async fn berlin_group_logs_calls_but_no_personal_data() {
    let (log, secrets) = logged_flow(Fixture::berlin_group().await).await;
    check(&log, &secrets, &["Alice", "Schneider"]);
}

#[tokio::test]
async fn uk_open_banking_logs_calls_but_no_personal_data_or_tokens() {
    let fx = Fixture::uk().await;
    let (log, secrets) = logged_flow(fx).await;
    check(&log, &secrets, &["Bob", "Thompson", "sandbox-secret"]);
}

/// A payment initiated, authorised, completed and polled (through a fault): the log names the
/// calls, and no account, name, remittance text, token or id of the payment.
async fn logged_payment(fx: Fixture) -> (String, Vec<String>) {
    let capture = capture::start();

    let request = fx.payment("12.34");
    fx.faults(FaultConfig {
        fail_next: 1,
        error_status: Some(503),
        path_contains: Some("payment".into()),
        ..FaultConfig::default()
    });
    assert!(fx.connector.initiate_payment(&request).await.is_err());
    let (mut session, _) = fx.pay(&request).await;
    fx.connector.payment_status(&mut session).await.unwrap();

    let mut secrets = vec![
        crate::support::payments::CAROL_SONNENBANK.to_owned(),
        "30971327".to_owned(),
        fx.current_account().iban,
    ];
    secrets.extend(session.payment_id.clone());
    secrets.extend(session.consent_id.clone());
    secrets.extend(session.access_token.clone());
    let log = capture.text();
    (log, secrets)
}

#[tokio::test]
async fn payments_log_calls_but_no_personal_data() {
    for fx in [Fixture::berlin_group().await, Fixture::uk().await] {
        let (log, secrets) = logged_payment(fx).await;
        check(
            &log,
            &secrets,
            &["Carol", "Dubois", "Invoice", "sandbox-secret"],
        );
    }
}

/// One callsite with a connector target, hit from two threads.
fn probe(n: u32) {
    tracing::warn!(target: "kontor_banks::probe", n, "probe event");
}

/// The cause of the flaky "the fault is logged": a callsite first reached on another test's
/// thread while this test's capture was the only subscriber was cached as "never" for everyone.
#[test]
fn a_callsite_first_hit_on_another_thread_is_still_captured() {
    let capture = capture::start();
    std::thread::spawn(|| probe(1)).join().unwrap();
    probe(2);
    let log = capture.text();
    assert!(log.contains("probe event n=2"), "{log:?}");
    assert!(!log.contains("n=1"), "{log:?}");
}
