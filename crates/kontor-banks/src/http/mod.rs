//! HTTP to banks: one client with connect and total timeouts, and one way of sending a request
//! that retries only where repeating it cannot do harm, maps what went wrong to [`BankError`] and
//! logs each call without tokens, account numbers, names or bodies.

mod backoff;
pub mod certificate;
mod classify;
pub mod identity;
mod send;
pub mod tls;

use std::time::Duration;

use kontor_domain::bank::BankId;
use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::de::DeserializeOwned;
use url::Url;

use crate::BankError;

pub(crate) use classify::Dialect;
pub use tls::{BankTls, TlsSetupError, build_client_with_tls, read_ca_bundle};

/// Timeouts and retry limits for talking to banks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpSettings {
    /// Establishing the TCP (and TLS) connection.
    pub connect_timeout: Duration,
    /// One request from sending to the last byte of the answer.
    pub request_timeout: Duration,
    /// How many times a safe request (a read, a token refresh) is tried in all, at least 1.
    pub read_attempts: u32,
    /// The first pause between attempts; it doubles each time, with jitter.
    pub initial_backoff: Duration,
    /// The longest pause between attempts that the backoff itself chooses.
    pub max_backoff: Duration,
    /// The longest `Retry-After` the connector waits for; a bank asking for longer gets a
    /// [`BankError::RateLimited`] (or [`BankError::AccessExceeded`]) back at once.
    pub max_retry_after: Duration,
    pub user_agent: String,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            read_attempts: 4,
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(4),
            max_retry_after: Duration::from_secs(30),
            user_agent: concat!("kontor/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

/// A client for talking to banks. Redirects are not followed: a bank API that redirects is
/// misconfigured, and following it could carry a consent id or token somewhere else.
pub fn build_client(settings: &HttpSettings) -> reqwest::Result<reqwest::Client> {
    builder(settings).build()
}

/// As [`build_client`], presenting a client certificate on every TLS connection: the third
/// party's certificate (eIDAS QWAC), by which Berlin Group banks — and UK ones, for mutual TLS —
/// know who calls. `identity_pem` holds the certificate chain and its private key (PKCS #8,
/// PKCS #1 or SEC1), PEM-encoded. Fails if it holds no usable pair.
pub fn build_client_with_identity(
    settings: &HttpSettings,
    identity_pem: &[u8],
) -> reqwest::Result<reqwest::Client> {
    let identity = reqwest::Identity::from_pem(identity_pem)?;
    builder(settings).identity(identity).build()
}

fn builder(settings: &HttpSettings) -> reqwest::ClientBuilder {
    // reqwest is built without a bundled TLS provider; ring is the workspace's one. Installing it
    // fails harmlessly when the process already chose a provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .connect_timeout(settings.connect_timeout)
        .timeout(settings.request_timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(settings.user_agent.clone())
}

/// Whether a request may be sent again after a failure that left its effect unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    /// Reads, token requests and deletes: repeating them changes nothing at the bank.
    Safe,
    /// Creates something at the bank: a lost answer does not mean nothing was created.
    Never,
}

/// One request to a bank, as the connector built it. Its `Debug` shows the method and path
/// template only: headers carry consent ids and tokens.
pub(crate) struct Outgoing {
    pub method: Method,
    pub url: Url,
    /// The path with its variables left in (`/v1/accounts/{id}/balances`), for logs.
    pub template: &'static str,
    pub headers: HeaderMap,
    pub body: Option<Body>,
    pub retry: Retry,
    /// A read without the user present, which counts against the consent's daily allowance:
    /// decides what a 429 means.
    pub unattended: bool,
    /// Makes the body anew for each attempt after the first, for bodies a bank accepts only
    /// once (a `private_key_jwt` client assertion carries a one-time `jti`).
    pub fresh_body: Option<FreshBody>,
}

/// Makes a request's body again, for a retry.
pub(crate) type FreshBody = Box<dyn Fn() -> Result<Body, BankError> + Send + Sync>;

impl Outgoing {
    pub fn new(method: Method, url: Url, template: &'static str, retry: Retry) -> Self {
        Self {
            method,
            url,
            template,
            headers: HeaderMap::new(),
            body: None,
            retry,
            unattended: false,
            fresh_body: None,
        }
    }

    pub fn get(url: Url, template: &'static str) -> Self {
        Self::new(Method::GET, url, template, Retry::Safe)
    }
}

impl std::fmt::Debug for Outgoing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outgoing")
            .field("method", &self.method)
            .field("template", &self.template)
            .finish_non_exhaustive()
    }
}

/// What a bank answered with a 2xx status. Its `Debug` leaves the body out: it holds personal
/// data.
pub(crate) struct Incoming {
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl std::fmt::Debug for Incoming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Incoming")
            .field("body_bytes", &self.body.len())
            .finish_non_exhaustive()
    }
}

impl Incoming {
    /// The body as `T`. A body that does not parse is the bank not following the standard; the
    /// error names the field's path but never its value, which may be personal data.
    pub fn json<T: DeserializeOwned>(&self, what: &str) -> Result<T, BankError> {
        parse_json(&self.body, what)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

pub(crate) fn parse_json<T: DeserializeOwned>(body: &[u8], what: &str) -> Result<T, BankError> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        BankError::protocol(format!(
            "{what}: {:?} error at `{path}` (line {}, column {})",
            inner.classify(),
            inner.line(),
            inner.column()
        ))
    })
}

/// Sets a header from text that came from the bank or the caller, refusing what is not a
/// valid header value instead of panicking.
pub(crate) fn put(
    headers: &mut HeaderMap,
    name: &'static str,
    value: &str,
) -> Result<(), BankError> {
    let value = HeaderValue::from_str(value)
        .map_err(|_| BankError::protocol(format!("{name} is not a valid header value")))?;
    headers.insert(HeaderName::from_static(name), value);
    Ok(())
}

/// A request body, already encoded, so that a request can be sent again as it was.
#[derive(Debug, Clone)]
pub(crate) enum Body {
    Json(Vec<u8>),
    Form(String),
}

/// Signs a request just before it is sent, once for all its attempts: adds headers computed
/// from the others and the body (Berlin Group's `Digest` and `Signature`).
pub trait MessageSigner: Send + Sync + std::fmt::Debug {
    fn sign(&self, headers: &mut HeaderMap, body: &[u8]) -> Result<(), BankError>;
}

/// Sends requests to one bank.
#[derive(Debug, Clone)]
pub(crate) struct Transport {
    client: reqwest::Client,
    settings: HttpSettings,
    bank: BankId,
    dialect: Dialect,
    signer: Option<std::sync::Arc<dyn MessageSigner>>,
}

impl Transport {
    pub fn new(
        client: reqwest::Client,
        settings: HttpSettings,
        bank: BankId,
        dialect: Dialect,
    ) -> Self {
        Self {
            client,
            settings,
            bank,
            dialect,
            signer: None,
        }
    }

    /// Signs every request from now on.
    pub fn with_signer(mut self, signer: std::sync::Arc<dyn MessageSigner>) -> Self {
        self.signer = Some(signer);
        self
    }

    pub fn with_settings(mut self, settings: HttpSettings) -> Self {
        self.settings = settings;
        self
    }

    /// The same bank, but errors read as another dialect (a UK bank's OAuth2 endpoints answer
    /// in RFC 6749 terms, its API in Open Banking terms).
    pub fn speaking(&self, dialect: Dialect) -> Self {
        Self {
            dialect,
            ..self.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[expect(dead_code, reason = "only parsed")]
    struct Owner {
        name: String,
        age: u8,
    }

    #[test]
    fn parse_errors_name_the_field_but_not_its_value() {
        let err = parse_json::<Owner>(br#"{"name":"Jane Doe","age":"Jane Doe"}"#, "owner")
            .unwrap_err()
            .to_string();
        assert!(err.contains("`age`"), "{err}");
        assert!(!err.contains("Jane"), "{err}");
        assert!(parse_json::<Owner>(b"<html>", "owner").is_err());
    }
}
