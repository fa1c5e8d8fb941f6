//! Unit tests of the error mapping, with bodies shaped as the specs' examples.

use super::*;
use reqwest::header::{HeaderValue, RETRY_AFTER};

const CAP: Duration = Duration::from_secs(30);

fn run(dialect: Dialect, code: u16, body: &str, retry: Option<&str>, unattended: bool) -> Verdict {
    let mut headers = HeaderMap::new();
    if let Some(value) = retry {
        headers.insert(RETRY_AFTER, HeaderValue::from_str(value).unwrap());
    }
    status(
        dialect,
        StatusCode::from_u16(code).unwrap(),
        &headers,
        body.as_bytes(),
        unattended,
        CAP,
    )
}

fn fin(verdict: Verdict) -> BankError {
    match verdict {
        Verdict::Final(e) => e,
        Verdict::Transient { error, .. } => panic!("expected final, got transient {error:?}"),
    }
}

fn transient(verdict: Verdict) -> (BankError, Option<Duration>) {
    match verdict {
        Verdict::Transient { error, after } => (error, after),
        Verdict::Final(e) => panic!("expected transient, got final {e:?}"),
    }
}

fn bg(code: &str) -> String {
    format!(r#"{{"tppMessages":[{{"category":"ERROR","code":"{code}","text":"some text"}}]}}"#)
}

#[test]
fn server_errors_and_timeouts_are_transient() {
    for code in [500, 502, 503, 504, 408] {
        let (error, after) = transient(run(Dialect::BerlinGroup, code, "", None, false));
        assert_eq!(
            error,
            BankError::Unavailable {
                status: Some(code),
                detail: format!("the bank answered {code}")
            }
        );
        assert_eq!(after, None);
    }
    let (_, after) = transient(run(Dialect::UkOpenBanking, 503, "", Some("2"), false));
    assert_eq!(after, Some(Duration::from_secs(2)));
    // A 500 with an OBErrorResponse1 is still just the bank failing.
    let body = r#"{"Code":"500","Message":"boom","Errors":[{"ErrorCode":"UK.OBIE.UnexpectedError","Message":"x"}]}"#;
    assert!(matches!(
        transient(run(Dialect::UkOpenBanking, 500, body, None, false)).0,
        BankError::Unavailable {
            status: Some(500),
            ..
        }
    ));
}

#[test]
fn berlin_group_consent_codes() {
    assert_eq!(
        fin(run(
            Dialect::BerlinGroup,
            401,
            &bg("CONSENT_EXPIRED"),
            None,
            false
        )),
        BankError::ConsentExpired
    );
    for code in ["CONSENT_INVALID", "CONSENT_UNKNOWN"] {
        assert_eq!(
            fin(run(Dialect::BerlinGroup, 401, &bg(code), None, false)),
            BankError::ConsentInvalid { code: code.into() }
        );
    }
    assert_eq!(
        fin(run(
            Dialect::BerlinGroup,
            400,
            &bg("FORMAT_ERROR"),
            None,
            false
        )),
        BankError::Rejected {
            status: 400,
            code: "FORMAT_ERROR".into(),
            message: "some text".into()
        }
    );
}

#[test]
fn berlin_group_prefers_the_error_over_warnings_and_reads_problem_json() {
    let body = r#"{"tppMessages":[{"category":"WARNING","code":"WARNING","text":"w"},{"category":"ERROR","code":"RESOURCE_UNKNOWN"}]}"#;
    assert!(matches!(
        fin(run(Dialect::BerlinGroup, 404, body, None, false)),
        BankError::Rejected { status: 404, code, .. } if code == "RESOURCE_UNKNOWN"
    ));
    let problem = r#"{"type":"https://berlin-group.org/problems/consent-expired","code":"CONSENT_EXPIRED","title":"expired"}"#;
    assert_eq!(
        fin(run(Dialect::BerlinGroup, 401, problem, None, false)),
        BankError::ConsentExpired
    );
}

#[test]
fn berlin_group_access_exceeded_is_the_daily_allowance_only_when_unattended_and_long() {
    let body = bg("ACCESS_EXCEEDED");
    assert_eq!(
        fin(run(Dialect::BerlinGroup, 429, &body, Some("36000"), true)),
        BankError::AccessExceeded
    );
    assert_eq!(
        fin(run(Dialect::BerlinGroup, 429, &body, None, true)),
        BankError::AccessExceeded
    );
    // Short waits are throttling: worth retrying.
    let (error, after) = transient(run(Dialect::BerlinGroup, 429, &body, Some("1"), true));
    assert_eq!(after, Some(Duration::from_secs(1)));
    assert!(matches!(error, BankError::RateLimited { .. }));
    // With the user present the allowance does not apply.
    assert_eq!(
        fin(run(Dialect::BerlinGroup, 429, &body, Some("36000"), false)),
        BankError::RateLimited {
            retry_after: Some(Duration::from_secs(36_000))
        }
    );
}

#[test]
fn uk_429_without_body_uses_retry_after() {
    assert_eq!(
        fin(run(Dialect::UkOpenBanking, 429, "", Some("50000"), true)),
        BankError::AccessExceeded
    );
    assert!(matches!(
        transient(run(Dialect::UkOpenBanking, 429, "", Some("3"), true)).0,
        BankError::RateLimited { .. }
    ));
    assert!(matches!(
        transient(run(Dialect::UkOpenBanking, 429, "", None, true)).0,
        BankError::RateLimited { retry_after: None }
    ));
    assert_eq!(
        fin(run(Dialect::UkOpenBanking, 429, "", Some("50000"), false)),
        BankError::RateLimited {
            retry_after: Some(Duration::from_secs(50_000))
        }
    );
}

#[test]
fn uk_error_codes() {
    let body = |code: &str| {
        format!(
            r#"{{"Code":"403","Id":"x","Message":"Forbidden","Errors":[{{"ErrorCode":"{code}","Message":"consent status is Revoked"}}]}}"#
        )
    };
    assert_eq!(
        fin(run(
            Dialect::UkOpenBanking,
            403,
            &body("UK.OBIE.Resource.InvalidConsentStatus"),
            None,
            false
        )),
        BankError::ConsentInvalid {
            code: "UK.OBIE.Resource.InvalidConsentStatus".into()
        }
    );
    assert_eq!(
        fin(run(
            Dialect::UkOpenBanking,
            400,
            &body("UK.OBIE.Field.Invalid"),
            None,
            false
        )),
        BankError::Rejected {
            status: 400,
            code: "UK.OBIE.Field.Invalid".into(),
            message: "consent status is Revoked".into()
        }
    );
    assert_eq!(
        fin(run(Dialect::UkOpenBanking, 401, "", None, false)),
        BankError::Rejected {
            status: 401,
            code: "HTTP_401".into(),
            message: String::new()
        }
    );
}

#[test]
fn oauth_errors() {
    assert_eq!(
        fin(run(
            Dialect::OAuth,
            400,
            r#"{"error":"invalid_grant"}"#,
            None,
            false
        )),
        BankError::ConsentInvalid {
            code: "invalid_grant".into()
        }
    );
    assert!(matches!(
        fin(run(Dialect::OAuth, 401, r#"{"error":"invalid_client","error_description":"who?"}"#, None, false)),
        BankError::Rejected { status: 401, code, message } if code == "invalid_client" && message == "who?"
    ));
}

#[test]
fn unreadable_error_bodies_and_odd_statuses_are_protocol_errors() {
    for dialect in [Dialect::BerlinGroup, Dialect::UkOpenBanking, Dialect::OAuth] {
        assert!(matches!(
            fin(run(dialect, 400, "<html>oops</html>", None, false)),
            BankError::Protocol { .. }
        ));
    }
    assert!(matches!(
        fin(run(Dialect::BerlinGroup, 302, "", None, false)),
        BankError::Protocol { .. }
    ));
}

#[test]
fn scrub_masks_account_numbers_and_bounds_length() {
    assert_eq!(
        scrub("IBAN DE89370400440532013000 unknown"),
        "IBAN … unknown"
    );
    assert_eq!(scrub("account 12345678"), "account …");
    assert_eq!(scrub("code 123 ok"), "code 123 ok");
    assert_eq!(scrub(&"x".repeat(500)).chars().count(), 200);
}
