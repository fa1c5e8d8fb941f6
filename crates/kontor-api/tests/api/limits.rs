//! Rate limits: failed token requests per client id and per address, API requests per tenant
//! (after authentication), and starts on the hosted pages per address and per tenant. Each
//! refusal is a 429 with `Retry-After` and the `RateLimit-*` headers — the error envelope on the
//! API, a page in the user's language on the hosted pages. Limits are set low here on purpose.

use kontor_api::ApiSettings;
use kontor_api::limits::{Limit, RateLimitSettings};
use kontor_test_support::{TestApp, error_code};
use serde_json::{Value, json};

use crate::support::{World, http_settings, query_of, world_with};

const GENEROUS: Limit = Limit::new(1000, 1000);

fn limits(change: impl FnOnce(&mut RateLimitSettings)) -> ApiSettings {
    let mut rate_limits = RateLimitSettings {
        token_failures_per_client: GENEROUS,
        token_failures_per_ip: GENEROUS,
        api_per_tenant: GENEROUS,
        page_starts_per_ip: GENEROUS,
        page_starts_per_tenant: GENEROUS,
        ..RateLimitSettings::default()
    };
    change(&mut rate_limits);
    ApiSettings {
        rate_limits,
        client_cache_ttl: std::time::Duration::ZERO,
        ..ApiSettings::default()
    }
}

fn header(response: &reqwest::Response, name: &str) -> Option<u64> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// A 429 with a wait and the quota: limit as configured, nothing remaining.
fn assert_refused(response: &reqwest::Response, limit: u64) {
    assert_eq!(response.status(), 429);
    assert!(header(response, "retry-after").is_some_and(|s| s >= 1));
    assert_eq!(header(response, "ratelimit-limit"), Some(limit));
    assert_eq!(header(response, "ratelimit-remaining"), Some(0));
    assert!(header(response, "ratelimit-reset").is_some_and(|s| s >= 1));
}

async fn token_request(app: &TestApp, client_id: &str, secret: &str) -> reqwest::Response {
    app.http
        .post(app.url("/v1/oauth/token"))
        .basic_auth(client_id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn failed_authentications_are_limited_per_client_id() {
    let app = TestApp::builder()
        .api_settings(limits(|l| l.token_failures_per_client = Limit::new(3, 1)))
        .spawn()
        .await;
    let victim = app.tenant("Victim").await;
    let other = app.tenant("Other").await;
    for _ in 0..3 {
        let response = token_request(&app, victim.client_id.as_str(), "ksec_wrong").await;
        assert_eq!(response.status(), 401);
    }
    let refused = token_request(&app, victim.client_id.as_str(), "ksec_wrong").await;
    assert_refused(&refused, 3);
    assert_eq!(error_code(refused).await, "rate_limited");
    // While the bucket is empty, even the right secret is not tried.
    let right = token_request(&app, victim.client_id.as_str(), &victim.client_secret).await;
    assert_refused(&right, 3);
    // Other clients are not affected.
    let response = token_request(&app, other.client_id.as_str(), &other.client_secret).await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn failed_authentications_are_limited_per_address_and_successes_are_free() {
    let app = TestApp::builder()
        .api_settings(limits(|l| l.token_failures_per_ip = Limit::new(5, 1)))
        .spawn()
        .await;
    let tenant = app.tenant("Acme").await;
    for _ in 0..20 {
        let response = token_request(&app, tenant.client_id.as_str(), &tenant.client_secret).await;
        assert_eq!(
            response.status(),
            200,
            "successful authentications cost nothing"
        );
    }
    // Guessing across client ids (and garbage) from one address.
    let guesses = [
        kontor_domain::ApiClientId::generate().to_string(),
        kontor_domain::ApiClientId::generate().to_string(),
        "not-a-client-id".to_owned(),
        tenant.client_id.to_string(),
        kontor_domain::ApiClientId::generate().to_string(),
    ];
    for guess in &guesses {
        let response = token_request(&app, guess, "ksec_guess").await;
        assert_eq!(response.status(), 401, "{guess}");
    }
    let refused = token_request(&app, guesses[0].as_str(), "ksec_guess").await;
    assert_refused(&refused, 5);
    assert_eq!(error_code(refused).await, "rate_limited");
    let right = token_request(&app, tenant.client_id.as_str(), &tenant.client_secret).await;
    assert_refused(&right, 5);
}

#[tokio::test]
async fn api_requests_are_limited_per_tenant_after_authentication() {
    let app = TestApp::builder()
        .api_settings(limits(|l| l.api_per_tenant = Limit::new(3, 1)))
        .spawn()
        .await;
    let busy = app.tenant("Busy").await;
    let calm = app.tenant("Calm").await;
    let busy_token = app.token(&busy).await;
    let calm_token = app.token(&calm).await;
    for remaining in [2, 1, 0] {
        let response = app.get("/v1/users", &busy_token).await;
        assert_eq!(response.status(), 200);
        assert_eq!(header(&response, "ratelimit-limit"), Some(3));
        assert_eq!(header(&response, "ratelimit-remaining"), Some(remaining));
        assert!(header(&response, "ratelimit-reset").is_some_and(|s| s >= 1));
        assert!(header(&response, "retry-after").is_none());
    }
    let refused = app.get("/v1/users", &busy_token).await;
    assert_refused(&refused, 3);
    assert_eq!(error_code(refused).await, "rate_limited");
    let body = json!({"external_id": "x", "region": "uk"});
    let refused = app.post_json("/v1/users", &busy_token, &body).await;
    assert_eq!(refused.status(), 429);
    assert_eq!(
        app.user_rows().await,
        0,
        "a refused request changes nothing"
    );

    // Authentication comes first: a bad token is a 401, whatever the tenant's budget.
    let forged = app.get("/v1/users", "kt1.test.forged.sig").await;
    assert_eq!(forged.status(), 401);
    assert!(header(&forged, "ratelimit-limit").is_none());
    // Another tenant has its own budget; the token endpoint is not an API request.
    assert_eq!(app.get("/v1/users", &calm_token).await.status(), 200);
    assert_eq!(
        token_request(&app, busy.client_id.as_str(), &busy.client_secret)
            .await
            .status(),
        200
    );
}

/// A new connect link of the world's tenant: its start URL and form token.
async fn connect_link(w: &World) -> (String, String) {
    let user = w.user("alice").await;
    let created = w.create_connection(&user, None).await;
    let url = url::Url::parse(created["connect_url"].as_str().unwrap()).unwrap();
    let token = query_of(&url)["token"].clone();
    (format!("{}/start", url.path()), token)
}

async fn start(w: &World, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
    w.app
        .http
        .post(w.app.url(path))
        .form(form)
        .send()
        .await
        .unwrap()
}

async fn assert_refused_page(response: reqwest::Response, limit: u64, words: &str) {
    assert_refused(&response, limit);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(content_type.starts_with("text/html"), "{content_type}");
    let page = response.text().await.unwrap();
    assert!(page.contains(words), "{page}");
}

#[tokio::test]
async fn page_starts_are_limited_per_address_with_a_page_in_the_users_language() {
    let settings = limits(|l| l.page_starts_per_ip = Limit::new(2, 1));
    let w = world_with(http_settings(), settings, |_| {}).await;
    let (path, token) = connect_link(&w).await;
    let form = [
        ("token", token.as_str()),
        ("bank_id", "sonnenbank"),
        ("lang", "de"),
    ];
    for _ in 0..2 {
        let response = start(&w, &path, &form).await;
        assert_eq!(response.status(), 303, "on to the bank");
    }
    let refused = start(&w, &path, &form).await;
    assert_refused_page(refused, 2, "Zu viele Versuche").await;
    // The address's budget covers the payment page too, and any link, real or not.
    let refused = start(
        &w,
        "/pay/pay_de_00000000000000000000000000/start",
        &[("lang", "en")],
    )
    .await;
    assert_refused_page(refused, 2, "Too many attempts").await;
}

#[tokio::test]
async fn page_starts_are_limited_per_tenant() {
    let settings = limits(|l| l.page_starts_per_tenant = Limit::new(2, 1));
    let w = world_with(http_settings(), settings, |_| {}).await;
    // Starts on links that are not genuine cost the tenant nothing.
    for _ in 0..3 {
        let response = start(
            &w,
            "/connect/con_de_00000000000000000000000000/start",
            &[("token", "forged"), ("bank_id", "sonnenbank")],
        )
        .await;
        assert_eq!(response.status(), 404);
    }
    for _ in 0..2 {
        let (path, token) = connect_link(&w).await;
        let response = start(&w, &path, &[("token", &token), ("bank_id", "sonnenbank")]).await;
        assert_eq!(response.status(), 303);
    }
    let (path, token) = connect_link(&w).await;
    let refused = start(&w, &path, &[("token", &token), ("bank_id", "sonnenbank")]).await;
    assert_refused_page(refused, 2, "Too many attempts").await;

    // The payment page draws on the same budget.
    let user = w.user("alice").await;
    let body = json!({
        "user_id": user,
        "bank_id": "sonnenbank",
        "debtor_account": {"iban": "DE21642494690527912747"},
        "creditor": {"name": "Hausverwaltung Müller", "iban": "DE89370400440532013000"},
        "amount": {"value": "12.34", "currency": "EUR"},
        "redirect_uri": "https://tenant.example/paid",
    });
    let created = w
        .app
        .http
        .post(w.app.url("/v1/payments"))
        .bearer_auth(&w.token)
        .header("idempotency-key", "limits-1")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    let url = url::Url::parse(created["authorize_url"].as_str().unwrap()).unwrap();
    let token = query_of(&url)["token"].clone();
    let refused = start(
        &w,
        &format!("{}/start", url.path()),
        &[("token", token.as_str()), ("lang", "de")],
    )
    .await;
    assert_refused_page(refused, 2, "Zu viele Versuche").await;
    assert!(
        w.sandbox.payments().is_empty(),
        "a refused start reaches no bank"
    );
}
