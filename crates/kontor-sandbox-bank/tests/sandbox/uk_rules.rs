//! UK Open Banking rules: revocation, expiry, the daily allowance of unattended reads, token
//! lifetimes, OAuth errors and the spec's error codes.

use reqwest::Method;
use serde_json::json;
use time::Duration;

use crate::common::Harness;
use crate::spec::Api;
use crate::uk_flows::{
    BANK, ais_access, aisp, auth, client_token, exchange, ob_code, pkce, present, query,
    token_request,
};

const FULL: [&str; 5] = [
    "ReadAccountsDetail",
    "ReadBalances",
    "ReadTransactionsDetail",
    "ReadTransactionsCredits",
    "ReadTransactionsDebits",
];

#[tokio::test]
async fn revoked_and_expired_consents_stop_working() {
    let Some(h) = Harness::start().await else {
        return;
    };
    let (consent, token, refresh) = ais_access(&h, "bob", &FULL, json!({})).await;
    let tpp = client_token(&h, "accounts").await;
    let deleted = h
        .call(
            Api::UkAccounts,
            &aisp(&h),
            Method::DELETE,
            &format!("/account-access-consents/{consent}"),
            &auth(&tpp),
            None,
        )
        .await;
    assert_eq!(deleted.status, 204);
    let read = h
        .call(
            Api::UkAccounts,
            &aisp(&h),
            Method::GET,
            "/accounts",
            &present(&token),
            None,
        )
        .await;
    assert_eq!(
        (read.status, ob_code(&read)),
        (403, "UK.OBIE.Resource.InvalidConsentStatus".into())
    );
    assert_eq!(
        token_request(
            &h,
            &[("grant_type", "refresh_token"), ("refresh_token", &refresh)]
        )
        .await
        .json()["error"],
        "invalid_grant"
    );
    let status = h
        .call(
            Api::UkAccounts,
            &aisp(&h),
            Method::GET,
            &format!("/account-access-consents/{consent}"),
            &auth(&tpp),
            None,
        )
        .await;
    assert_eq!(status.json()["Data"]["Status"], "Revoked");

    let tomorrow = (h.sandbox.now() + Duration::days(1))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let (_, token, _) =
        ais_access(&h, "bob", &FULL, json!({ "ExpirationDateTime": tomorrow })).await;
    h.sandbox.advance_clock(Duration::minutes(50)).unwrap();
    assert_eq!(
        h.call(
            Api::UkAccounts,
            &aisp(&h),
            Method::GET,
            "/accounts",
            &present(&token),
            None
        )
        .await
        .status,
        200
    );
    h.sandbox.advance_clock(Duration::days(1)).unwrap();
    let expired = h
        .call(
            Api::UkAccounts,
            &aisp(&h),
            Method::GET,
            "/accounts",
            &present(&token),
            None,
        )
        .await;
    assert!(expired.status == 401 || ob_code(&expired) == "UK.OBIE.Resource.InvalidConsentStatus");

    let (consent, token, _) = ais_access(&h, "bob", &FULL, json!({})).await;
    h.sandbox.expire_consent(BANK, &consent).unwrap();
    let forced = h
        .call(
            Api::UkAccounts,
            &aisp(&h),
            Method::GET,
            "/accounts",
            &present(&token),
            None,
        )
        .await;
    assert_eq!(
        (forced.status, ob_code(&forced)),
        (403, "UK.OBIE.Resource.InvalidConsentStatus".into())
    );
}

#[tokio::test]
async fn unattended_reads_are_limited_per_day_and_tokens_expire() {
    let Some(h) = Harness::start().await else {
        return;
    };
    let (_, token, refresh) = ais_access(&h, "bob", &FULL, json!({})).await;
    for _ in 0..4 {
        assert_eq!(
            h.call(
                Api::UkAccounts,
                &aisp(&h),
                Method::GET,
                "/accounts",
                &auth(&token),
                None
            )
            .await
            .status,
            200
        );
    }
    let limited = h
        .call(
            Api::UkAccounts,
            &aisp(&h),
            Method::GET,
            "/accounts",
            &auth(&token),
            None,
        )
        .await;
    assert_eq!(limited.status, 429);
    assert!(
        limited
            .header("retry-after")
            .unwrap()
            .parse::<u32>()
            .unwrap()
            > 0
    );
    assert_eq!(
        h.call(
            Api::UkAccounts,
            &aisp(&h),
            Method::GET,
            "/accounts",
            &present(&token),
            None
        )
        .await
        .status,
        200
    );
    h.sandbox.advance_clock(Duration::hours(2)).unwrap();
    let stale = h
        .call(
            Api::UkAccounts,
            &aisp(&h),
            Method::GET,
            "/accounts",
            &present(&token),
            None,
        )
        .await;
    assert_eq!(stale.status, 401, "access tokens live one (simulated) hour");
    let fresh = token_request(
        &h,
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
    )
    .await
    .json();
    let fresh = fresh["access_token"].as_str().unwrap();
    assert_eq!(
        h.call(
            Api::UkAccounts,
            &aisp(&h),
            Method::GET,
            "/accounts",
            &present(fresh),
            None
        )
        .await
        .status,
        200
    );
}

#[tokio::test]
async fn oauth_and_request_errors() {
    let Some(h) = Harness::start().await else {
        return;
    };
    let tpp = client_token(&h, "accounts").await;
    let no_token = h
        .call(
            Api::UkAccounts,
            &aisp(&h),
            Method::GET,
            "/accounts",
            &[],
            None,
        )
        .await;
    assert_eq!(no_token.status, 401);
    let client_only = h
        .call(
            Api::UkAccounts,
            &aisp(&h),
            Method::GET,
            "/accounts",
            &auth(&tpp),
            None,
        )
        .await;
    assert_eq!(client_only.status, 403);
    let post = |body: serde_json::Value, extra: Vec<(&'static str, String)>| {
        let h = &h;
        let mut headers = auth(&tpp);
        headers.extend(extra);
        async move {
            h.call(
                Api::UkAccounts,
                &aisp(h),
                Method::POST,
                "/account-access-consents",
                &headers,
                Some(&body),
            )
            .await
        }
    };
    assert_eq!(
        ob_code(
            &post(
                json!({ "Data": { "Permissions": ["ReadTransactionsBasic"] }, "Risk": {} }),
                vec![]
            )
            .await
        ),
        "UK.OBIE.Field.Invalid"
    );
    assert_eq!(
        ob_code(
            &post(
                json!({ "Data": { "Permissions": ["ReadAccountsBasic"] } }),
                vec![]
            )
            .await
        ),
        "UK.OBIE.Field.Missing"
    );
    assert_eq!(
        ob_code(
            &post(
                json!({ "Data": { "Permissions": ["ReadAccountsBasic"], "Extra": 1 }, "Risk": {} }),
                vec![]
            )
            .await
        ),
        "UK.OBIE.Field.Unexpected"
    );
    assert_eq!(ob_code(&post(json!({ "Data": { "Permissions": ["ReadAccountsBasic"], "ExpirationDateTime": "2020-01-01T00:00:00Z" }, "Risk": {} }), vec![]).await), "UK.OBIE.Field.InvalidDate");
    let bad_date = post(
        json!({ "Data": { "Permissions": ["ReadAccountsBasic"] }, "Risk": {} }),
        vec![("x-fapi-auth-date", "yesterday".into())],
    )
    .await;
    assert_eq!(ob_code(&bad_date), "UK.OBIE.Header.Invalid");
    let unknown = h
        .call(
            Api::UkAccounts,
            &aisp(&h),
            Method::GET,
            "/account-access-consents/aac-nope",
            &auth(&tpp),
            None,
        )
        .await;
    assert_eq!(
        (unknown.status, ob_code(&unknown)),
        (400, "UK.OBIE.Resource.NotFound".into())
    );

    let bad_client = h
        .send(
            &Method::POST,
            &h.sandbox.uk_credentials(BANK).unwrap().token_url,
            &[],
            Some(b"grant_type=client_credentials&client_id=x&client_secret=y".to_vec()),
            Some("application/x-www-form-urlencoded".into()),
        )
        .await;
    assert_eq!(
        (bad_client.status, bad_client.json()["error"].as_str()),
        (401, Some("invalid_client"))
    );

    let created = post(
        json!({ "Data": { "Permissions": ["ReadAccountsBasic"] }, "Risk": {} }),
        vec![],
    )
    .await
    .json();
    let consent = created["Data"]["ConsentId"].as_str().unwrap().to_string();
    let creds = h.sandbox.uk_credentials(BANK).unwrap();
    let no_pkce = format!(
        "{}?client_id={}&response_type=code&redirect_uri=https%3A%2F%2Ftpp.example%2Fcb&scope=accounts&state=s&openbanking_intent_id={consent}",
        creds.authorize_url, creds.client_id
    );
    let reply = h.get_page(&no_pkce).await;
    let location = url::Url::parse(&reply.location()).unwrap();
    assert_eq!(
        query(&location, "error").as_deref(),
        Some("invalid_request")
    );
    assert_eq!(query(&location, "state").as_deref(), Some("s"));
    let bad_client_page = h
        .get_page(&format!(
            "{}?client_id=intruder&redirect_uri=https%3A%2F%2Fevil.example",
            creds.authorize_url
        ))
        .await;
    assert_eq!(
        bad_client_page.status, 400,
        "an unknown client is never redirected"
    );

    let (verifier, challenge) = pkce("wrong");
    let callback = crate::uk_flows::authorize(&h, &consent, "accounts", "bob", &challenge).await;
    let code = query(&callback, "code").unwrap();
    assert_eq!(
        exchange(
            &h,
            &code,
            "not-the-verifier-0123456789012345678901234567890"
        )
        .await
        .json()["error"],
        "invalid_grant"
    );
    assert_eq!(
        exchange(&h, &code, &verifier).await.json()["error"],
        "invalid_grant",
        "a code works once"
    );

    let bad_range = h
        .call(
            Api::UkAccounts,
            &aisp(&h),
            Method::GET,
            "/accounts/x/transactions?fromBookingDateTime=someday",
            &auth(&tpp),
            None,
        )
        .await;
    assert_eq!(ob_code(&bad_range), "UK.OBIE.Field.InvalidDate");
}

#[tokio::test]
async fn cancelling_at_the_bank_returns_an_oauth_error_to_the_tpp() {
    let Some(h) = Harness::start().await else {
        return;
    };
    let tpp = client_token(&h, "accounts").await;
    let created = h
        .call(
            Api::UkAccounts,
            &aisp(&h),
            Method::POST,
            "/account-access-consents",
            &auth(&tpp),
            Some(&json!({ "Data": { "Permissions": ["ReadAccountsBasic"] }, "Risk": {} })),
        )
        .await
        .json();
    let consent = created["Data"]["ConsentId"].as_str().unwrap().to_string();
    let (_, challenge) = pkce(&consent);
    let creds = h.sandbox.uk_credentials(BANK).unwrap();
    let url = format!(
        "{}?client_id={}&response_type=code&redirect_uri=https%3A%2F%2Ftpp.example%2Fcallback&scope=accounts&state=abc&code_challenge={challenge}&code_challenge_method=S256&openbanking_intent_id={consent}",
        creds.authorize_url, creds.client_id
    );
    let sca = h.get_page(&url).await.location();
    let page = h.get_page(&sca).await;
    let cancelled = h
        .post_form(
            &page.form_action("cancel-form", &crate::common::root(&h)),
            &[],
        )
        .await;
    let back = url::Url::parse(&cancelled.location()).unwrap();
    assert_eq!(query(&back, "error").as_deref(), Some("access_denied"));
    assert_eq!(query(&back, "state").as_deref(), Some("abc"));
    let status = h
        .call(
            Api::UkAccounts,
            &aisp(&h),
            Method::GET,
            &format!("/account-access-consents/{consent}"),
            &auth(&tpp),
            None,
        )
        .await;
    assert_eq!(status.json()["Data"]["Status"], "Rejected");
}
