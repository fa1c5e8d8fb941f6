//! Certificate-bound clients behind an ingress that terminates mutual TLS: the client's
//! certificate comes in `server.client_certificate_header`, believed only on connections from a
//! trusted proxy. From any other peer the header is ignored, so nobody can claim a certificate
//! by writing a header.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use kontor_api::ApiSettings;
use kontor_domain::CertificateThumbprint;
use kontor_domain::tenant::Scopes;
use kontor_domain::time::Timestamp;
use kontor_test_support::{TestApp, TestTenant, error_code};
use serde_json::Value;

const HEADER: &str = "client-cert";

struct Cert {
    der: Vec<u8>,
    pem: String,
}

impl Cert {
    fn new(name: &str) -> Self {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec![name.to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        Self {
            der: cert.der().to_vec(),
            pem: cert.pem(),
        }
    }

    fn thumbprint(&self) -> CertificateThumbprint {
        CertificateThumbprint::of_der(&self.der)
    }

    /// RFC 9440: a structured-field byte sequence.
    fn rfc9440(&self) -> String {
        format!(":{}:", STANDARD.encode(&self.der))
    }

    /// nginx's `$ssl_client_escaped_cert`.
    fn escaped_pem(&self) -> String {
        percent_encoding_escape(&self.pem)
    }
}

fn percent_encoding_escape(raw: &str) -> String {
    raw.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn behind(proxies: &[&str]) -> ApiSettings {
    ApiSettings {
        trusted_proxies: proxies.iter().map(|p| p.parse().unwrap()).collect(),
        client_certificate_header: Some(HEADER.parse().unwrap()),
        client_cache_ttl: std::time::Duration::ZERO,
        ..ApiSettings::default()
    }
}

async fn bound_tenant(app: &TestApp, cert: &Cert) -> TestTenant {
    let tenant = app.tenant("Acme").await;
    let bound = app
        .stores
        .control()
        .bind_certificate(&tenant.client_id, &cert.thumbprint(), Timestamp::now())
        .await
        .unwrap();
    assert!(bound);
    tenant
}

async fn token_with(app: &TestApp, tenant: &TestTenant, header: Option<&str>) -> reqwest::Response {
    let mut request = app
        .http
        .post(app.url("/v1/oauth/token"))
        .basic_auth(tenant.client_id.as_str(), Some(&tenant.client_secret))
        .form(&[("grant_type", "client_credentials")]);
    if let Some(header) = header {
        request = request.header(HEADER, header);
    }
    request.send().await.unwrap()
}

async fn users_with(app: &TestApp, token: &str, header: Option<&str>) -> reqwest::Response {
    let mut request = app.http.get(app.url("/v1/users")).bearer_auth(token);
    if let Some(header) = header {
        request = request.header(HEADER, header);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn a_trusted_proxy_forwards_the_certificate_in_either_form() {
    let app = TestApp::builder()
        .api_settings(behind(&["127.0.0.1/32"]))
        .spawn()
        .await;
    let own = Cert::new("acme.example");
    let other = Cert::new("mallory.example");
    let tenant = bound_tenant(&app, &own).await;

    for form in [own.rfc9440(), own.escaped_pem()] {
        let response = token_with(&app, &tenant, Some(&form)).await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        let token = body["access_token"].as_str().unwrap().to_owned();
        let claims: Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(token.split('.').nth(2).unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(claims["cnf"]["x5t#S256"], own.thumbprint().x5t_s256());
        assert_eq!(
            users_with(&app, &token, Some(&own.rfc9440()))
                .await
                .status(),
            200
        );
        assert_eq!(
            users_with(&app, &token, Some(&own.escaped_pem()))
                .await
                .status(),
            200
        );

        let replayed = users_with(&app, &token, None).await;
        assert_eq!(replayed.status(), 401);
        assert_eq!(error_code(replayed).await, "client_certificate_required");
        let foreign = users_with(&app, &token, Some(&other.rfc9440())).await;
        assert_eq!(foreign.status(), 401);
        assert_eq!(error_code(foreign).await, "client_certificate_mismatch");
        // A header that holds no certificate counts as none.
        let garbage = users_with(&app, &token, Some(":bm90IGEgY2VydA==:")).await;
        assert_eq!(garbage.status(), 401);
        assert_eq!(error_code(garbage).await, "client_certificate_required");
    }

    for header in [None, Some(other.rfc9440()), Some("nonsense".to_owned())] {
        let refused = token_with(&app, &tenant, header.as_deref()).await;
        assert_eq!(refused.status(), 401, "{header:?}");
        assert_eq!(error_code(refused).await, "invalid_client");
    }
    app.stop().await;
}

#[tokio::test]
async fn the_header_is_ignored_from_a_peer_that_is_not_a_trusted_proxy() {
    // The test client connects from 127.0.0.1, which is not among these proxies.
    let app = TestApp::builder()
        .api_settings(behind(&["10.0.0.0/8"]))
        .spawn()
        .await;
    let own = Cert::new("acme.example");
    let tenant = bound_tenant(&app, &own).await;

    let refused = token_with(&app, &tenant, Some(&own.rfc9440())).await;
    assert_eq!(refused.status(), 401);
    assert_eq!(error_code(refused).await, "invalid_client");

    // Even a genuinely bound token (as if stolen) gets nowhere with a written header.
    let (token, _) = app.tokens.issue_bound(
        &tenant.tenant_id,
        &tenant.client_id,
        &Scopes::all(),
        Some(own.thumbprint()),
        Timestamp::now(),
    );
    let replayed = users_with(&app, &token, Some(&own.rfc9440())).await;
    assert_eq!(replayed.status(), 401);
    assert_eq!(error_code(replayed).await, "client_certificate_required");

    // An unbound client of another tenant is unaffected by the header either way.
    let plain = app.tenant("Plain").await;
    let response = token_with(&app, &plain, Some(&own.rfc9440())).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert!(body["access_token"].as_str().is_some());
    app.stop().await;
}
