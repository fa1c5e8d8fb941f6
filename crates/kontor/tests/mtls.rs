//! Certificate-bound API clients (RFC 8705) against a real `kontor serve` terminating mutual TLS:
//! a client bound with `kontor clients bind` gets tokens only over mutual TLS with its
//! certificate, each token bound to it (`cnf.x5t#S256`); the API takes such a token only with
//! the same certificate, so a token stolen without the key is worthless; unbound clients work
//! as before, with or without a certificate; bad thumbprints are refused and change nothing.

#![expect(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod common;

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::pki::{Leaf, TestCa};
use common::{TEST_KEKS, kontor, run, serve_with, stdout_json};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The SHA-256 thumbprint of a certificate, base64url (x5t#S256).
fn x5t(leaf: &Leaf) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(&leaf.der))
}

/// An HTTPS client trusting `ca`, presenting `identity` when given.
fn https_client(ca: &TestCa, identity: Option<&Leaf>) -> reqwest::Client {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca.pem.as_bytes()).unwrap())
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match identity {
        None => builder.with_no_client_auth(),
        Some(leaf) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_slice(leaf.cert_pem.as_bytes()).unwrap()],
                PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).unwrap(),
            )
            .unwrap(),
    };
    reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .build()
        .unwrap()
}

struct Hub {
    _server: common::Server,
    base: String,
    ca: TestCa,
    dir: tempfile::TempDir,
}

impl Hub {
    /// A hub terminating TLS with a certificate from `ca`, taking client certificates from it.
    fn start(extra: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ca = TestCa::new("Kontor tenants' CA");
        let server = ca.server(None);
        let tls = dir.path().join("tls");
        std::fs::create_dir_all(&tls).unwrap();
        for (name, contents) in [
            ("tls.crt", &server.cert_pem),
            ("tls.key", &server.key_pem),
            ("ca.crt", &ca.pem),
        ] {
            std::fs::write(tls.join(name), contents).unwrap();
        }
        let path = |name: &str| tls.join(name).display().to_string();
        let (certificate, key, client_ca) = (path("tls.crt"), path("tls.key"), path("ca.crt"));
        let mut env = vec![
            ("KONTOR_SERVER__TLS__CERTIFICATE", certificate.as_str()),
            ("KONTOR_SERVER__TLS__KEY", key.as_str()),
            ("KONTOR_SERVER__TLS__CLIENT_CA", client_ca.as_str()),
            ("KONTOR_AUTH__CLIENT_CACHE_SECONDS", "0"),
        ];
        env.extend_from_slice(extra);
        let data = dir.path().join("data");
        let server = serve_with(&data, &env);
        let port = server.address.rsplit(':').next().unwrap().to_owned();
        Self {
            _server: server,
            base: format!("https://localhost:{port}"),
            ca,
            dir,
        }
    }

    fn cli(&self, args: &[&str]) -> std::process::Output {
        run(kontor(&self.dir.path().join("data"))
            .env("KONTOR_SECRETS__KEYS", TEST_KEKS)
            .args(args))
    }

    /// A tenant's first client, and a second one: `(tenant, [(id, secret); 2])`.
    fn tenant(&self) -> (String, Vec<(String, String)>) {
        let tenant = stdout_json(&self.cli(&["tenants", "create", "Acme Budget", "--json"]));
        let tenant_id = tenant["tenant_id"].as_str().unwrap().to_owned();
        let second =
            stdout_json(&self.cli(&["clients", "create", "--tenant", &tenant_id, "--json"]));
        let clients = [tenant, second]
            .iter()
            .map(|c| {
                (
                    c["client_id"].as_str().unwrap().to_owned(),
                    c["client_secret"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        (tenant_id, clients)
    }

    fn bind(&self, client: &str, leaf: &Leaf) -> Value {
        let file = self.dir.path().join(format!("{}.pem", x5t(leaf)));
        std::fs::write(&file, &leaf.cert_pem).unwrap();
        stdout_json(&self.cli(&[
            "clients",
            "bind",
            client,
            "--certificate",
            file.to_str().unwrap(),
            "--json",
        ]))
    }

    async fn token(&self, http: &reqwest::Client, (id, secret): &(String, String)) -> (u16, Value) {
        let response = http
            .post(format!("{}/v1/oauth/token", self.base))
            .basic_auth(id, Some(secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }

    async fn users(&self, http: &reqwest::Client, token: &str) -> (u16, Value, String) {
        let response = http
            .get(format!("{}/v1/users", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let challenge = response
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        (status, response.json().await.unwrap(), challenge)
    }
}

/// The claims of a `kt1.<kid>.<claims>.<signature>` token.
fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(2).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn access_token(body: &Value) -> String {
    body["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_bound_client_works_only_with_its_certificate_and_its_tokens_only_with_it() {
    let hub = Hub::start(&[]);
    let (_, clients) = hub.tenant();
    let bound = &clients[0];
    let own = hub.ca.client("acme-prod-1");
    let other = hub.ca.client("acme-prod-2");
    let bind = hub.bind(&bound.0, &own);
    assert_eq!(bind["x5t#S256"], x5t(&own));
    assert_eq!(bind["added"], true);

    let with_own = https_client(&hub.ca, Some(&own));
    let with_other = https_client(&hub.ca, Some(&other));
    let without = https_client(&hub.ca, None);

    // The right certificate: a token bound to it, which works with it.
    let (status, body) = hub.token(&with_own, bound).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    let token = access_token(&body);
    assert_eq!(claims(&token)["cnf"]["x5t#S256"], x5t(&own));
    let (status, body, _) = hub.users(&with_own, &token).await;
    assert_eq!(status, 200, "{body}");

    // At the token endpoint: no certificate, or another one from the same CA.
    for http in [&without, &with_other] {
        let (status, body) = hub.token(http, bound).await;
        assert_eq!(status, 401, "{body}");
        assert_eq!(body["error"]["code"], "invalid_client", "{body}");
    }

    // The token stolen and replayed without the certificate, or with another.
    let (status, body, challenge) = hub.users(&without, &token).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["code"], "client_certificate_required");
    assert!(challenge.contains("invalid_token"), "{challenge}");
    let (status, body, _) = hub.users(&with_other, &token).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["code"], "client_certificate_mismatch");
    // Still good with its own.
    assert_eq!(hub.users(&with_own, &token).await.0, 200);

    // The unbound client of the same tenant: as before, with or without a certificate.
    let unbound = &clients[1];
    for http in [&without, &with_other] {
        let (status, body) = hub.token(http, unbound).await;
        assert_eq!(status, 200, "{body}");
        let token = access_token(&body);
        assert!(claims(&token).get("cnf").is_none(), "{}", claims(&token));
        assert_eq!(hub.users(&without, &token).await.0, 200);
        assert_eq!(hub.users(&with_own, &token).await.0, 200);
    }
}

#[tokio::test]
async fn binding_and_unbinding_reach_tokens_already_issued() {
    let hub = Hub::start(&[]);
    let (tenant, clients) = hub.tenant();
    let client = &clients[0];
    let first = hub.ca.client("acme-2026");
    let second = hub.ca.client("acme-2027");
    let with_first = https_client(&hub.ca, Some(&first));
    let with_second = https_client(&hub.ca, Some(&second));
    let without = https_client(&hub.ca, None);

    // A token from before the binding is unbound; once the client is bound it is refused.
    let (_, body) = hub.token(&without, client).await;
    let old = access_token(&body);
    assert_eq!(hub.users(&without, &old).await.0, 200);
    hub.bind(&client.0, &first);
    let (status, body, _) = hub.users(&with_first, &old).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["code"], "token_not_bound");

    // A rotation: both bound, each certificate gets its own token.
    let both = hub.bind(&client.0, &second);
    assert_eq!(both["certificates"].as_array().unwrap().len(), 2);
    let (_, body) = hub.token(&with_first, client).await;
    let first_token = access_token(&body);
    let (_, body) = hub.token(&with_second, client).await;
    let second_token = access_token(&body);
    assert_eq!(claims(&second_token)["cnf"]["x5t#S256"], x5t(&second));
    assert_eq!(hub.users(&with_first, &first_token).await.0, 200);
    assert_eq!(hub.users(&with_second, &second_token).await.0, 200);

    // The old certificate retired: its token stops working, the new one's goes on.
    let hex = hex_colons(&first.der);
    let unbind = stdout_json(&hub.cli(&[
        "clients",
        "unbind",
        &client.0,
        "--thumbprint",
        &hex,
        "--json",
    ]));
    assert_eq!(unbind["removed"], true);
    let (status, body, _) = hub.users(&with_first, &first_token).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["code"], "client_certificate_mismatch");
    assert_eq!(hub.token(&with_first, client).await.0, 401);
    assert_eq!(hub.users(&with_second, &second_token).await.0, 200);

    let listed = stdout_json(&hub.cli(&["clients", "list", "--tenant", &tenant, "--json"]));
    let row = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["client_id"] == client.0.as_str())
        .unwrap();
    let bound: Vec<&str> = row["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["x5t#S256"].as_str().unwrap())
        .collect();
    assert_eq!(bound, [x5t(&second)]);

    // Unbound entirely: the client works without a certificate again.
    let unbind = stdout_json(&hub.cli(&[
        "clients",
        "unbind",
        &client.0,
        "--thumbprint",
        &x5t(&second),
        "--json",
    ]));
    assert_eq!(unbind["removed"], true, "{unbind}");
    let (status, body) = hub.token(&without, client).await;
    assert_eq!(status, 200, "{body}");
}

fn hex_colons(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[tokio::test]
async fn bad_thumbprints_and_certificates_are_refused_and_change_nothing() {
    let hub = Hub::start(&[]);
    let (tenant, clients) = hub.tenant();
    let client = &clients[0].0;
    let not_pem = hub.dir.path().join("not.pem");
    std::fs::write(&not_pem, "hello").unwrap();
    let sha1 = "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01";
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--thumbprint", "zz"], "64 hexadecimal digits"),
        (vec!["--thumbprint", sha1], "64 hexadecimal digits"),
        (vec!["--thumbprint", ""], "64 hexadecimal digits"),
        (
            vec!["--certificate", not_pem.to_str().unwrap()],
            "holds no PEM certificate",
        ),
        (
            vec!["--certificate", "/nonexistent.pem"],
            "reading /nonexistent.pem",
        ),
    ];
    for (args, expected) in cases {
        let mut full = vec!["clients", "bind", client.as_str()];
        full.extend(&args);
        let output = hub.cli(&full);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
    let good = URL_SAFE_NO_PAD.encode([7_u8; 32]);
    let output = hub.cli(&[
        "clients",
        "bind",
        "cli_00000000000000000000000000",
        "--thumbprint",
        &good,
    ]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("no client"));

    let listed = stdout_json(&hub.cli(&["clients", "list", "--tenant", &tenant, "--json"]));
    for row in listed.as_array().unwrap() {
        assert_eq!(row["certificates"], Value::Array(vec![]), "{row}");
    }
    // Nothing was bound: the client still gets tokens without a certificate.
    let without = https_client(&hub.ca, None);
    assert_eq!(hub.token(&without, &clients[0]).await.0, 200);
}

#[tokio::test]
async fn required_client_auth_refuses_handshakes_without_a_trusted_certificate() {
    let hub = Hub::start(&[("KONTOR_SERVER__TLS__CLIENT_AUTH", "required")]);
    let (_, clients) = hub.tenant();
    let without = https_client(&hub.ca, None);
    let refused = without.get(format!("{}/healthz", hub.base)).send().await;
    assert!(refused.is_err(), "{refused:?}");

    // A certificate from a CA the hub does not trust is refused in the handshake too.
    let stranger = TestCa::new("Someone else's CA");
    let foreign = stranger.client("acme");
    let foreign_client = https_client(&hub.ca, Some(&foreign));
    let refused = foreign_client
        .get(format!("{}/healthz", hub.base))
        .send()
        .await;
    assert!(refused.is_err(), "{refused:?}");

    // With a trusted certificate, an unbound client works as usual.
    let leaf = hub.ca.client("acme");
    let with = https_client(&hub.ca, Some(&leaf));
    let (status, body) = hub.token(&with, &clients[1]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(hub.users(&with, &access_token(&body)).await.0, 200);
}

#[test]
fn required_client_auth_needs_a_client_ca() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing.pem");
    let path = path.to_str().unwrap();
    let output = run(kontor(dir.path())
        .env("KONTOR_SECRETS__KEYS", TEST_KEKS)
        .env("KONTOR_SERVER__TLS__CERTIFICATE", path)
        .env("KONTOR_SERVER__TLS__KEY", path)
        .env("KONTOR_SERVER__TLS__CLIENT_AUTH", "required")
        .args(["config", "print"]));
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("client_auth = \"required\" needs server.tls.client_ca"),
        "{stderr}"
    );
}
