//! The sandbox's fault modes, for both standards: slow answers, 5xx, 429 and dropped
//! connections, on reads (retried) and on consent creation (never repeated).

use std::time::Duration;

use kontor_banks::{BankError, ConsentOutcome, HttpSettings, deadline};
use kontor_domain::bank::Standard;
use kontor_sandbox_bank::FaultConfig;

use crate::support::{Fixture, present, test_settings, unattended};

/// The path fragment that only the data reads have.
const READS: &str = "/accounts";

fn consents_path(standard: Standard) -> &'static str {
    match standard {
        Standard::BerlinGroup => "/v1/consents",
        Standard::UkOpenBanking => "/account-access-consents",
    }
}

fn on(path: &str) -> FaultConfig {
    FaultConfig {
        path_contains: Some(path.to_owned()),
        ..FaultConfig::default()
    }
}

async fn a_slow_bank_times_out(standard: Standard) {
    let fx = Fixture::for_standard(standard).await;
    let mut session = fx.link().await;
    let impatient = fx.connector_with(HttpSettings {
        request_timeout: Duration::from_millis(300),
        read_attempts: 2,
        ..test_settings()
    });
    fx.faults(FaultConfig {
        latency_ms: 3_000,
        ..on(READS)
    });
    let err = impatient
        .accounts(&mut session, &present())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, BankError::Unavailable { status: None, detail } if detail.contains("timed out")),
        "{err:?}"
    );
    assert!(err.is_transient());
    fx.sandbox.clear_faults(fx.bank).unwrap();
    impatient.accounts(&mut session, &present()).await.unwrap();
}

async fn server_errors_on_a_read_are_retried(standard: Standard) {
    let fx = Fixture::for_standard(standard).await;
    let mut session = fx.link().await;
    for status in [503, 500] {
        fx.faults(FaultConfig {
            fail_next: 2,
            error_status: Some(status),
            ..on(READS)
        });
        let before = fx.injected().await;
        let accounts = fx
            .connector
            .accounts(&mut session, &present())
            .await
            .unwrap();
        assert_eq!(accounts.len(), fx.sandbox_accounts().len());
        assert_eq!(
            fx.injected().await - before,
            2,
            "two failures, then success"
        );
    }
    // More failures than attempts: the read gives up, as unavailable.
    fx.faults(FaultConfig {
        fail_next: 10,
        error_status: Some(503),
        ..on(READS)
    });
    let err = fx
        .connector
        .accounts(&mut session, &present())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            BankError::Unavailable {
                status: Some(503),
                ..
            }
        ),
        "{err:?}"
    );
}

async fn a_failed_consent_creation_is_not_repeated(standard: Standard) {
    let fx = Fixture::for_standard(standard).await;
    fx.faults(FaultConfig {
        fail_next: 2,
        error_status: Some(500),
        ..on(consents_path(standard))
    });
    let err = fx.connector.start_consent(&fx.request()).await.unwrap_err();
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
    assert_eq!(fx.injected().await, 1, "the POST was sent once");

    fx.faults(FaultConfig {
        reset_next: 2,
        ..on(consents_path(standard))
    });
    let before = fx.injected().await;
    let err = fx.connector.start_consent(&fx.request()).await.unwrap_err();
    assert!(
        matches!(err, BankError::Unavailable { status: None, .. }),
        "{err:?}"
    );
    assert_eq!(fx.injected().await - before, 1, "the POST was sent once");

    fx.sandbox.clear_faults(fx.bank).unwrap();
    fx.link().await;
}

async fn a_short_rate_limit_is_waited_out(standard: Standard) {
    let fx = Fixture::for_standard(standard).await;
    let mut session = fx.link().await;
    fx.faults(FaultConfig {
        rate_limit_next: 1,
        retry_after_seconds: Some(1),
        ..on(READS)
    });
    // Unattended: a throttling 429 must not be taken for the daily allowance.
    fx.connector
        .accounts(&mut session, &unattended())
        .await
        .unwrap();
    assert_eq!(fx.injected().await, 1);
}

async fn a_long_rate_limit_is_reported_not_waited(standard: Standard) {
    let fx = Fixture::for_standard(standard).await;
    let mut session = fx.link().await;
    fx.faults(FaultConfig {
        rate_limit_next: 3,
        retry_after_seconds: Some(600),
        ..on(READS)
    });
    let err = fx
        .connector
        .accounts(&mut session, &present())
        .await
        .unwrap_err();
    assert_eq!(
        err,
        BankError::RateLimited {
            retry_after: Some(Duration::from_secs(600))
        }
    );
    assert_eq!(fx.injected().await, 1);
}

/// A caller with someone waiting bounds its bank calls ([`deadline::within`]): a pause the bank
/// asks for that would outlast the bound is not taken, and a slow answer is cut off at it.
async fn a_deadline_bounds_retries_pauses_and_slow_answers(standard: Standard) {
    let fx = Fixture::for_standard(standard).await;
    let mut session = fx.link().await;
    // Short enough that the connector would wait it out (max_retry_after is 5 s).
    fx.faults(FaultConfig {
        rate_limit_next: 3,
        retry_after_seconds: Some(3),
        ..on(READS)
    });
    let err = deadline::within(
        Duration::from_secs(2),
        fx.connector.accounts(&mut session, &present()),
    )
    .await
    .unwrap_err();
    assert_eq!(
        err,
        BankError::RateLimited {
            retry_after: Some(Duration::from_secs(3))
        }
    );
    assert_eq!(fx.injected().await, 1, "not asked again within the bound");

    fx.faults(FaultConfig {
        latency_ms: 3_000,
        ..on(READS)
    });
    let err = deadline::within(
        Duration::from_millis(500),
        fx.connector.accounts(&mut session, &present()),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, BankError::Unavailable { status: None, detail } if detail.contains("timed out")),
        "{err:?}"
    );

    // Out of time before the first attempt: nothing is sent at all.
    fx.faults(FaultConfig {
        fail_next: 1,
        ..on(READS)
    });
    let err = deadline::within(
        Duration::ZERO,
        fx.connector.accounts(&mut session, &present()),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, BankError::Unavailable { .. }), "{err:?}");
    assert_eq!(fx.injected().await, 0);
    fx.sandbox.clear_faults(fx.bank).unwrap();
    deadline::within(
        Duration::from_secs(10),
        fx.connector.accounts(&mut session, &present()),
    )
    .await
    .unwrap();
}

async fn a_dropped_connection_on_a_read_is_retried(standard: Standard) {
    let fx = Fixture::for_standard(standard).await;
    let mut session = fx.link().await;
    let account = fx.sandbox_accounts().remove(0);
    fx.faults(FaultConfig {
        reset_next: 2,
        ..on(READS)
    });
    let balances = fx
        .connector
        .balances(&mut session, &account.resource_id, &present())
        .await
        .unwrap();
    assert!(!balances.is_empty());
    assert_eq!(fx.injected().await, 2);
    fx.faults(FaultConfig {
        reset_next: 10,
        ..on(READS)
    });
    let err = fx
        .connector
        .accounts(&mut session, &present())
        .await
        .unwrap_err();
    assert!(
        matches!(err, BankError::Unavailable { status: None, .. }),
        "{err:?}"
    );
    assert_eq!(fx.injected().await, 3, "three attempts in all");
}

async fn status_polls_ride_out_errors(standard: Standard) {
    let fx = Fixture::for_standard(standard).await;
    let mut session = fx.link().await;
    fx.faults(FaultConfig {
        fail_next: 1,
        error_status: Some(503),
        ..on(consents_path(standard))
    });
    assert!(matches!(
        fx.connector.consent_status(&mut session).await.unwrap(),
        ConsentOutcome::Active { .. }
    ));
    assert_eq!(fx.injected().await, 1);
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
    a_slow_bank_times_out,
    server_errors_on_a_read_are_retried,
    a_failed_consent_creation_is_not_repeated,
    a_short_rate_limit_is_waited_out,
    a_long_rate_limit_is_reported_not_waited,
    a_deadline_bounds_retries_pauses_and_slow_answers,
    a_dropped_connection_on_a_read_is_retried,
    status_polls_ride_out_errors,
);
