//! Rate limits, as token buckets kept in this process: failed token requests per client id and
//! per address, API requests per tenant, and starts on the hosted pages per address and per
//! tenant. A refused request is answered `429` with `Retry-After` and the `RateLimit-Limit`,
//! `RateLimit-Remaining` and `RateLimit-Reset` headers; authenticated API answers carry the
//! three headers too, so that clients can pace themselves before they are refused.
//!
//! Buckets are per process: with N replicas behind a balancer the effective limit is up to N
//! times the configured one.

mod bucket;

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::http::header::RETRY_AFTER;
use axum::http::{Extensions, HeaderMap, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use kontor_domain::{ApiClientId, TenantId};

pub use bucket::{KeyedLimiter, Limit, Quota};

use crate::error::{ApiError, ErrorCode};

pub const RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
pub const RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
pub const RATELIMIT_RESET: HeaderName = HeaderName::from_static("ratelimit-reset");

/// Every limit, as configured (`[rate_limits]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitSettings {
    /// Off switches every limit off (benchmarks; a deployment that limits at its ingress).
    pub enabled: bool,
    /// Failed authentications at `/v1/oauth/token`, per client id.
    pub token_failures_per_client: Limit,
    /// Failed authentications at `/v1/oauth/token`, per client address.
    pub token_failures_per_ip: Limit,
    /// Authenticated API requests, per tenant.
    pub api_per_tenant: Limit,
    /// `POST /connect/{id}/start` and `POST /pay/{id}/start`, per client address.
    pub page_starts_per_ip: Limit,
    /// The same starts, per tenant.
    pub page_starts_per_tenant: Limit,
    /// `POST /v1/webhook-endpoints/{id}/test`, per tenant: each holds a request open while it
    /// waits on the tenant's receiver.
    pub webhook_tests_per_tenant: Limit,
    /// Buckets each limit keeps at most; beyond it the ones nearest to full are forgotten.
    pub max_tracked_keys: usize,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            token_failures_per_client: Limit::new(10, 10),
            token_failures_per_ip: Limit::new(20, 20),
            api_per_tenant: Limit::new(1000, 6000),
            page_starts_per_ip: Limit::new(10, 20),
            page_starts_per_tenant: Limit::new(300, 300),
            webhook_tests_per_tenant: Limit::new(5, 10),
            max_tracked_keys: 100_000,
        }
    }
}

/// An address as a rate limit sees it: IPv4 as is, IPv6 by its /64 prefix (one host usually
/// holds a whole /64, so single IPv6 addresses would be free for the taking).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpKey(IpAddr);

impl IpKey {
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Self(IpAddr::V4(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self(IpAddr::V4(v4)),
                None => {
                    let prefix = u128::from(v6) & !u128::from(u64::MAX);
                    Self(IpAddr::V6(prefix.into()))
                }
            },
        }
    }
}

/// The limiters of one process; `None` where a limit is off.
#[derive(Debug)]
pub struct Limiters {
    token_failures_per_client: Option<KeyedLimiter<ApiClientId>>,
    token_failures_per_ip: Option<KeyedLimiter<IpKey>>,
    api_per_tenant: Option<KeyedLimiter<TenantId>>,
    page_starts_per_ip: Option<KeyedLimiter<IpKey>>,
    page_starts_per_tenant: Option<KeyedLimiter<TenantId>>,
    webhook_tests_per_tenant: Option<KeyedLimiter<TenantId>>,
}

impl Limiters {
    pub fn new(settings: &RateLimitSettings) -> Self {
        fn make<K: std::hash::Hash + Eq + Clone>(
            on: bool,
            limit: Limit,
            max: usize,
        ) -> Option<KeyedLimiter<K>> {
            if on {
                KeyedLimiter::new(limit, max)
            } else {
                None
            }
        }
        let (on, max) = (settings.enabled, settings.max_tracked_keys);
        Self {
            token_failures_per_client: make(on, settings.token_failures_per_client, max),
            token_failures_per_ip: make(on, settings.token_failures_per_ip, max),
            api_per_tenant: make(on, settings.api_per_tenant, max),
            page_starts_per_ip: make(on, settings.page_starts_per_ip, max),
            page_starts_per_tenant: make(on, settings.page_starts_per_tenant, max),
            webhook_tests_per_tenant: make(on, settings.webhook_tests_per_tenant, max),
        }
    }

    /// Takes one API request from the tenant's bucket; the quota goes into the response headers.
    pub(crate) fn api_request(
        &self,
        tenant: &TenantId,
        extensions: &Extensions,
    ) -> Result<(), ApiError> {
        take_for_tenant(&self.api_per_tenant, tenant, extensions).map_err(|quota| {
            tracing::info!(tenant.id = %tenant, "API request rate-limited");
            refused(&quota, "too many requests for this tenant")
        })
    }

    /// Takes a test event from the tenant's bucket; `429 rate_limited` when it is empty. The
    /// quota goes into the response headers.
    pub(crate) fn webhook_test(
        &self,
        tenant: &TenantId,
        extensions: &Extensions,
    ) -> Result<(), ApiError> {
        take_for_tenant(&self.webhook_tests_per_tenant, tenant, extensions)
            .map_err(|quota| refused(&quota, "too many test events for this tenant"))
    }

    /// Refuses a token request from an address, or for a client, that failed too often.
    pub(crate) fn token_attempt(
        &self,
        ip: Option<IpAddr>,
        client: Option<&ApiClientId>,
        extensions: &Extensions,
    ) -> Result<(), ApiError> {
        let now = Instant::now();
        let by_ip = ip.and_then(|ip| {
            Some(
                self.token_failures_per_ip
                    .as_ref()?
                    .peek(&IpKey::of(ip), now),
            )
        });
        let by_client =
            client.and_then(|c| Some(self.token_failures_per_client.as_ref()?.peek(c, now)));
        match by_ip.into_iter().chain(by_client).find(|q| !q.allowed()) {
            None => Ok(()),
            Some(quota) => {
                QuotaSlot::record(extensions, quota);
                tracing::info!(
                    client.id = client.map(ApiClientId::as_str),
                    "token request rate-limited"
                );
                Err(refused(&quota, "too many failed authentications"))
            }
        }
    }

    /// Counts a failed authentication against the address and, if it parsed, the client id.
    pub(crate) fn token_failed(&self, ip: Option<IpAddr>, client: Option<&ApiClientId>) {
        let now = Instant::now();
        if let (Some(limiter), Some(ip)) = (&self.token_failures_per_ip, ip) {
            limiter.take(&IpKey::of(ip), now);
        }
        if let (Some(limiter), Some(client)) = (&self.token_failures_per_client, client) {
            limiter.take(client, now);
        }
    }

    /// Takes a page start from the address's bucket; `Err` with the quota when refused.
    pub(crate) fn page_start_from(&self, ip: Option<IpAddr>) -> Result<(), Quota> {
        match (&self.page_starts_per_ip, ip) {
            (Some(limiter), Some(ip)) => allowed(limiter.take(&IpKey::of(ip), Instant::now())),
            _ => Ok(()),
        }
    }

    /// Takes a page start from the tenant's bucket; `Err` with the quota when refused.
    pub(crate) fn page_start_for(&self, tenant: &TenantId) -> Result<(), Quota> {
        match &self.page_starts_per_tenant {
            Some(limiter) => allowed(limiter.take(tenant, Instant::now())),
            None => Ok(()),
        }
    }
}

/// Takes one from the tenant's bucket of `limiter` (if the limit is on) and leaves the quota for
/// the response headers; `Err` with the quota when refused.
fn take_for_tenant(
    limiter: &Option<KeyedLimiter<TenantId>>,
    tenant: &TenantId,
    extensions: &Extensions,
) -> Result<(), Quota> {
    let Some(limiter) = limiter else {
        return Ok(());
    };
    let quota = limiter.take(tenant, Instant::now());
    QuotaSlot::record(extensions, quota);
    allowed(quota)
}

fn allowed(quota: Quota) -> Result<(), Quota> {
    if quota.allowed() { Ok(()) } else { Err(quota) }
}

/// Whole seconds, rounded up: a client that waits this long is not refused again for the same
/// reason.
pub fn seconds_up(duration: Duration) -> u64 {
    let whole = duration.as_secs();
    if duration.subsec_nanos() > 0 {
        whole.saturating_add(1)
    } else {
        whole
    }
}

/// The `429 rate_limited` answer of the API.
fn refused(quota: &Quota, what: &str) -> ApiError {
    let wait = seconds_up(quota.retry_after.unwrap_or_default()).max(1);
    ApiError::new(
        ErrorCode::RateLimited,
        format!("{what}; retry after {wait} s"),
    )
    .with_retry_after(wait)
}

/// Sets `RateLimit-*` (and, when refused, `Retry-After`) from a quota.
pub fn write_headers(headers: &mut HeaderMap, quota: &Quota) {
    let mut set = |name: HeaderName, value: u64| {
        headers.insert(name, HeaderValue::from(value));
    };
    set(RATELIMIT_LIMIT, u64::from(quota.limit));
    set(RATELIMIT_REMAINING, u64::from(quota.remaining));
    set(RATELIMIT_RESET, seconds_up(quota.reset));
    if let Some(wait) = quota.retry_after {
        set(RETRY_AFTER, seconds_up(wait).max(1));
    }
}

/// Where a limit checked inside the request leaves its quota for the response headers.
#[derive(Debug, Clone, Default)]
struct QuotaSlot(Arc<OnceLock<Quota>>);

impl QuotaSlot {
    fn record(extensions: &Extensions, quota: Quota) {
        if let Some(slot) = extensions.get::<QuotaSlot>() {
            let _ = slot.0.set(quota);
        }
    }
}

/// Puts a [`QuotaSlot`] on every request and turns what a limit left in it into headers.
pub async fn headers(mut request: Request, next: Next) -> Response {
    let slot = QuotaSlot::default();
    request.extensions_mut().insert(slot.clone());
    let mut response = next.run(request).await;
    if let Some(quota) = slot.0.get() {
        write_headers(response.headers_mut(), quota);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_addresses_share_their_64_bit_prefix() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(IpKey::of(a), IpKey::of(b));
        assert_ne!(IpKey::of(a), IpKey::of(c));
        let mapped: IpAddr = "::ffff:198.51.100.7".parse().unwrap();
        let v4: IpAddr = "198.51.100.7".parse().unwrap();
        assert_eq!(IpKey::of(mapped), IpKey::of(v4));
    }

    #[test]
    fn headers_round_up_and_name_the_wait() {
        let mut headers = HeaderMap::new();
        write_headers(
            &mut headers,
            &Quota {
                limit: 5,
                remaining: 0,
                reset: Duration::from_millis(4200),
                retry_after: Some(Duration::from_millis(10)),
            },
        );
        assert_eq!(headers[RATELIMIT_LIMIT], "5");
        assert_eq!(headers[RATELIMIT_REMAINING], "0");
        assert_eq!(headers[RATELIMIT_RESET], "5");
        assert_eq!(headers[RETRY_AFTER], "1");
    }

    #[test]
    fn disabled_limits_refuse_nothing() {
        let limiters = Limiters::new(&RateLimitSettings {
            enabled: false,
            ..RateLimitSettings::default()
        });
        let tenant = TenantId::generate();
        for _ in 0..5000 {
            assert!(limiters.api_request(&tenant, &Extensions::new()).is_ok());
        }
    }
}
