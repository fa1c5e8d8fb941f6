//! Posting: the HTTP client webhooks go out with, and one signed POST.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kontor_crypto::WebhookSecret;
use kontor_domain::time::Timestamp;
use kontor_domain::webhook::AttemptError;
use url::{Host, Url};

use super::super::address::{
    AddressRefused, GuardedResolver, Unresolvable, address_allowed, port_allowed,
};
use crate::error::{ServiceError, ServiceResult};

/// Most of an answer's body read (and thrown away) so the connection can be reused.
const BODY_DRAIN_LIMIT: usize = 64 * 1024;
/// How long the body of an answer is read after its status arrived.
const BODY_DRAIN_TIME: Duration = Duration::from_secs(1);

/// The HTTP client webhooks are sent with: no proxy, no redirects, and a resolver that refuses
/// addresses the policy does not allow.
pub(in crate::webhooks) fn webhook_client(
    settings: &super::super::WebhookSettings,
) -> ServiceResult<reqwest::Client> {
    // reqwest is built without a bundled TLS provider; ring is the workspace's one.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .dns_resolver(Arc::new(GuardedResolver {
            policy: settings.url_policy(),
        }))
        .connect_timeout(settings.timeout.min(Duration::from_secs(5)))
        .timeout(settings.timeout)
        .pool_idle_timeout(Duration::from_secs(30))
        .user_agent(concat!("Kontor-Webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| ServiceError::Internal(format!("building the webhook client: {e}")))
}

/// A signed request to make: the same for a delivery and for a test event.
pub(in crate::webhooks) struct Signed<'a> {
    pub url: Option<&'a Url>,
    pub secrets: &'a [WebhookSecret],
    /// The `webhook-id`.
    pub id: &'a str,
    /// The attempt's time, whose seconds are the `webhook-timestamp`.
    pub at: Timestamp,
    pub body: Vec<u8>,
}

/// What a signed POST got back.
pub(in crate::webhooks) struct Posted {
    /// The answer's status, when one came.
    pub status: Option<u16>,
    /// `None` for a 2xx.
    pub error: Option<AttemptError>,
    /// From sending the request to having the answer's status (or giving up).
    pub latency: Duration,
    /// The first bytes of the answer's body, up to the excerpt's limit.
    pub excerpt: Vec<u8>,
}

/// POSTs `signed` as Standard Webhooks specifies, within `webhooks.timeout`, to an address the
/// policy allows (checked again here: the configuration may have changed since the URL was
/// accepted, and the resolver guards names only). Never fails: what went wrong is in the
/// answer. Keeps up to `excerpt_limit` bytes of the answer's body.
pub(in crate::webhooks) async fn post_signed(
    client: &reqwest::Client,
    settings: &super::super::WebhookSettings,
    signed: Signed<'_>,
    excerpt_limit: usize,
) -> Posted {
    let refused = |error: AttemptError| Posted {
        status: None,
        error: Some(error),
        latency: Duration::ZERO,
        excerpt: Vec::new(),
    };
    let policy = settings.url_policy();
    let Some(url) = signed.url.cloned() else {
        return refused(AttemptError::ConnectionFailed);
    };
    if url.scheme() != "https" && !(url.scheme() == "http" && policy.allow_http) {
        return refused(AttemptError::AddressNotAllowed);
    }
    if !port_allowed(url.port_or_known_default().unwrap_or(0), &policy) {
        return refused(AttemptError::AddressNotAllowed);
    }
    let literal = match url.host() {
        Some(Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
        Some(Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
        _ => None,
    };
    if literal.is_some_and(|ip| !address_allowed(ip, &policy)) {
        return refused(AttemptError::AddressNotAllowed);
    }
    let timestamp = signed.at.unix_seconds();
    let signature = signed
        .secrets
        .iter()
        .map(|secret| secret.sign(signed.id, timestamp, &signed.body))
        .collect::<Vec<_>>()
        .join(" ");
    let request = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("webhook-id", signed.id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(signed.body);
    let started = Instant::now();
    let sent = tokio::time::timeout(settings.timeout, request.send()).await;
    let latency = started.elapsed();
    let mut excerpt = Vec::new();
    let status = match sent {
        Ok(Ok(mut response)) => {
            // The answer is the status: the body is read (a little of it, briefly) so that the
            // connection can be used again, and for a test's excerpt; how that ends changes
            // nothing.
            let status = response.status().as_u16();
            let _ = tokio::time::timeout(BODY_DRAIN_TIME, async {
                let mut drained = 0;
                while drained < BODY_DRAIN_LIMIT {
                    match response.chunk().await {
                        Ok(Some(chunk)) => {
                            let room = excerpt_limit.saturating_sub(excerpt.len());
                            excerpt.extend_from_slice(&chunk[..chunk.len().min(room)]);
                            drained += chunk.len();
                        }
                        _ => break,
                    }
                }
            })
            .await;
            Ok(Ok(status))
        }
        Ok(Err(err)) => Ok(Err(err)),
        Err(elapsed) => Err(elapsed),
    };
    let elapsed = started.elapsed();
    metrics::histogram!("kontor_webhook_attempt_duration_seconds").record(elapsed.as_secs_f64());
    let failed = |error: AttemptError, status: Option<u16>, latency: Duration, excerpt| Posted {
        status,
        error: Some(error),
        latency,
        excerpt,
    };
    match status {
        Err(_) => failed(AttemptError::Timeout, None, elapsed, excerpt),
        Ok(Err(err)) => failed(classify(&err), None, elapsed, excerpt),
        Ok(Ok(status)) => match status {
            200..=299 => Posted {
                status: Some(status),
                error: None,
                latency,
                excerpt,
            },
            300..=399 => failed(AttemptError::Redirect, Some(status), latency, excerpt),
            _ => failed(AttemptError::HttpStatus, Some(status), latency, excerpt),
        },
    }
}

/// What a failed request says about where it failed.
fn classify(err: &reqwest::Error) -> AttemptError {
    if err.is_timeout() {
        return AttemptError::Timeout;
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(cause) = source {
        if cause.is::<AddressRefused>() {
            return AttemptError::AddressNotAllowed;
        }
        if cause.is::<Unresolvable>() {
            return AttemptError::DnsFailed;
        }
        source = cause.source();
    }
    AttemptError::ConnectionFailed
}
