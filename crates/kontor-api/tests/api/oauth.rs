//! `POST /v1/oauth/token` and bearer authentication.

use kontor_domain::tenant::{Scope, Scopes};
use kontor_domain::time::Timestamp;
use kontor_store::ApiClientStore;
use kontor_test_support::{TestApp, error_code};
use serde_json::Value;

#[tokio::test]
async fn basic_auth_yields_a_bearer_token_with_all_scopes() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("Acme Budget").await;
    let response = app
        .request_token(&tenant, &[("grant_type", "client_credentials")])
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    assert_eq!(
        body["scope"],
        kontor_domain::tenant::Scopes::all().to_string()
    );
    let token = body["access_token"].as_str().unwrap();
    assert_eq!(app.get("/v1/users", token).await.status(), 200);
}

#[tokio::test]
async fn form_body_credentials_work_too() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("Acme").await;
    let response = app
        .http
        .post(app.url("/v1/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", tenant.client_id.as_str()),
            ("client_secret", tenant.client_secret.as_str()),
            ("scope", "users:read"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["scope"], "users:read");
}

#[tokio::test]
async fn bad_credentials_are_invalid_client() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("Acme").await;
    let mut wrong = tenant.clone();
    wrong.client_secret = "ksec_wrong".into();
    let response = app
        .request_token(&wrong, &[("grant_type", "client_credentials")])
        .await;
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.headers()["www-authenticate"],
        "Basic realm=\"kontor\""
    );
    assert_eq!(error_code(response).await, "invalid_client");

    let mut unknown = tenant.clone();
    unknown.client_id = kontor_domain::ApiClientId::generate();
    let response = app
        .request_token(&unknown, &[("grant_type", "client_credentials")])
        .await;
    assert_eq!(error_code(response).await, "invalid_client");

    // No credentials at all.
    let response = app
        .http
        .post(app.url("/v1/oauth/token"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(error_code(response).await, "invalid_client");
}

#[tokio::test]
async fn malformed_token_requests_have_their_own_codes() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("Acme").await;
    type Form<'a> = &'a [(&'a str, &'a str)];
    let cases: &[(Form, u16, &str)] = &[
        (&[], 400, "invalid_request"),
        (&[("grant_type", "password")], 400, "unsupported_grant_type"),
        (
            &[("grant_type", "client_credentials"), ("scope", "admin")],
            400,
            "invalid_scope",
        ),
        (
            &[
                ("grant_type", "client_credentials"),
                ("client_id", tenant.client_id.as_str()),
            ],
            400,
            "invalid_request",
        ),
    ];
    for (form, status, code) in cases {
        let response = app.request_token(&tenant, form).await;
        assert_eq!(response.status(), *status, "{form:?}");
        assert_eq!(error_code(response).await, *code, "{form:?}");
    }
    // Repeated parameter.
    let response = app
        .http
        .post(app.url("/v1/oauth/token"))
        .basic_auth(tenant.client_id.as_str(), Some(&tenant.client_secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials&grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(response).await, "invalid_request");
    // JSON instead of a form.
    let response = app
        .http
        .post(app.url("/v1/oauth/token"))
        .basic_auth(tenant.client_id.as_str(), Some(&tenant.client_secret))
        .json(&serde_json::json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);
    assert_eq!(error_code(response).await, "unsupported_media_type");
}

#[tokio::test]
async fn scopes_are_limited_to_the_clients_own() {
    let app = TestApp::spawn().await;
    let reader = app
        .tenant_with_scopes("Reader", Some([Scope::UsersRead].into_iter().collect()))
        .await;
    let response = app
        .request_token(
            &reader,
            &[
                ("grant_type", "client_credentials"),
                ("scope", "users:write"),
            ],
        )
        .await;
    assert_eq!(error_code(response).await, "invalid_scope");

    let token = app.token(&reader).await;
    assert_eq!(app.get("/v1/users", &token).await.status(), 200);
    for path in [
        "/v1/banks",
        "/v1/events",
        "/v1/accounts?user_id=usr_de_00000000000000000000000000",
    ] {
        let response = app.get(path, &token).await;
        assert_eq!(response.status(), 403, "{path}");
        assert_eq!(error_code(response).await, "insufficient_scope");
    }
    let response = app
        .post_json(
            "/v1/users",
            &token,
            &serde_json::json!({"external_id": "x", "region": "uk"}),
        )
        .await;
    assert_eq!(response.status(), 403);
    assert_eq!(error_code(response).await, "insufficient_scope");
    assert_eq!(app.user_rows().await, 0);
}

#[tokio::test]
async fn bearer_token_problems_have_their_own_codes() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("Acme").await;

    let response = app.http.get(app.url("/v1/users")).send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert!(
        response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    assert_eq!(error_code(response).await, "missing_token");

    for bad in ["garbage", "kt1.test.e30.AAAA", "Basic abc"] {
        let response = app
            .http
            .get(app.url("/v1/users"))
            .header("authorization", format!("Bearer {bad}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401);
        assert_eq!(error_code(response).await, "invalid_token", "{bad}");
    }
    let response = app
        .http
        .get(app.url("/v1/users"))
        .header("authorization", "Basic abc")
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(response).await, "invalid_token");

    // A genuine token, signed with the right key, issued long enough ago to have expired.
    let long_ago = Timestamp::now().plus_seconds(-3600);
    let (expired, _) = app.tokens.issue(
        &tenant.tenant_id,
        &tenant.client_id,
        &Scopes::all(),
        long_ago,
    );
    let response = app.get("/v1/users", &expired).await;
    assert_eq!(response.status(), 401);
    assert_eq!(error_code(response).await, "token_expired");

    // A token with one signature character changed.
    let good = app.token(&tenant).await;
    let mut chars: Vec<char> = good.chars().collect();
    let at = chars.len() - 10;
    chars[at] = if chars[at] == 'x' { 'y' } else { 'x' };
    let forged: String = chars.into_iter().collect();
    assert_eq!(
        error_code(app.get("/v1/users", &forged).await).await,
        "invalid_token"
    );
}

#[tokio::test]
async fn revoking_a_client_stops_its_tokens_and_new_ones() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("Acme").await;
    let token = app.token(&tenant).await;
    assert_eq!(app.get("/v1/users", &token).await.status(), 200);

    app.stores
        .control
        .revoke_client(&tenant.client_id, Timestamp::now())
        .await
        .unwrap();

    let response = app.get("/v1/users", &token).await;
    assert_eq!(response.status(), 401);
    assert_eq!(error_code(response).await, "invalid_token");
    let response = app
        .request_token(&tenant, &[("grant_type", "client_credentials")])
        .await;
    assert_eq!(error_code(response).await, "invalid_client");
}
