//! What every handler can reach: the hub (the one way to the data), the token service, and the API's settings.

use std::sync::Arc;
use std::time::Duration;

use kontor_domain::Region;
use kontor_service::Hub;

use crate::auth::TokenService;
use crate::auth::bearer::ClientCache;
use crate::error::{ApiError, ErrorCode};
use crate::limits::{Limiters, RateLimitSettings};
use crate::server::Draining;

#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// Largest request body accepted, in bytes.
    pub body_limit_bytes: usize,
    /// How long a client's "not revoked" answer is trusted before asking the database again:
    /// the longest a revoked client's unexpired tokens keep working.
    pub client_cache_ttl: Duration,
    /// How long `/readyz` waits for each database.
    pub readiness_timeout: Duration,
    /// Take the client's address from `X-Forwarded-For` (set by the ingress) rather than from
    /// the connection, when the connection comes from one of `trusted_proxies`.
    pub trust_forwarded_for: bool,
    /// Token buckets for failed authentications, API requests and page starts.
    pub rate_limits: RateLimitSettings,
    /// The longest a request waits on banks in all (its bank calls, their retries and pauses):
    /// past it the request answers `bank_unavailable`, or `bank_rate_limited` with the bank's
    /// `Retry-After`, rather than keeping the caller (often a person) waiting.
    pub bank_deadline: Duration,
    /// The proxies in front of the hub: their entries in `X-Forwarded-For` are stepped over to
    /// find the client (see [`ApiSettings::client_ip`]).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// The header in which a proxy in `trusted_proxies` that terminated mutual TLS forwards the
    /// client's certificate (RFC 9440 `Client-Cert`, or URL-encoded PEM). Ignored from anyone
    /// else; without it only the hub's own TLS connections present certificates.
    pub client_certificate_header: Option<axum::http::HeaderName>,
}

impl Default for ApiSettings {
    fn default() -> Self {
        Self {
            body_limit_bytes: 64 * 1024,
            client_cache_ttl: Duration::from_secs(5),
            readiness_timeout: Duration::from_secs(2),
            trust_forwarded_for: false,
            rate_limits: RateLimitSettings::default(),
            bank_deadline: Duration::from_secs(15),
            trusted_proxies: Vec::new(),
            client_certificate_header: None,
        }
    }
}

#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    hub: Hub,
    tokens: TokenService,
    settings: ApiSettings,
    clients: ClientCache,
    limits: Limiters,
    draining: Draining,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("hub", &self.inner.hub)
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

impl AppState {
    pub fn new(hub: Hub, tokens: TokenService, settings: ApiSettings) -> Self {
        let clients = ClientCache::new(settings.client_cache_ttl);
        let limits = Limiters::new(&settings.rate_limits);
        Self {
            inner: Arc::new(Inner {
                hub,
                tokens,
                settings,
                clients,
                limits,
                draining: Draining::default(),
            }),
        }
    }

    pub fn hub(&self) -> &Hub {
        &self.inner.hub
    }

    pub fn tokens(&self) -> &TokenService {
        &self.inner.tokens
    }

    pub fn settings(&self) -> &ApiSettings {
        &self.inner.settings
    }

    /// Set when the process begins to stop: `/readyz` then answers 503 `draining`. Hand the
    /// same handle to [`crate::server::serve_with`].
    pub fn draining(&self) -> &Draining {
        &self.inner.draining
    }

    pub(crate) fn clients(&self) -> &ClientCache {
        &self.inner.clients
    }

    pub(crate) fn limits(&self) -> &Limiters {
        &self.inner.limits
    }

    /// Parses a region a client named and checks this deployment serves it.
    pub fn served_region(&self, raw: &str) -> Result<Region, ApiError> {
        let region = Region::parse(raw)
            .map_err(|err| ApiError::new(ErrorCode::InvalidRegion, err.to_string()))?;
        if self.hub().serves(&region) {
            Ok(region)
        } else {
            let served: Vec<&str> = self.hub().regions().map(Region::as_str).collect();
            Err(ApiError::new(
                ErrorCode::InvalidRegion,
                format!(
                    "region {region} is not served here; served: {}",
                    served.join(", ")
                ),
            ))
        }
    }
}
