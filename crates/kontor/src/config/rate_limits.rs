//! The `[rate_limits]` section: token buckets for failed authentications, API requests per
//! tenant and starts on the hosted pages. Each limit is `{ burst, per_minute }`; a zero in
//! either turns that limit off, and `enabled = false` turns them all off.

use anyhow::bail;
use kontor_api::limits::{Limit, RateLimitSettings};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitConfig {
    /// Requests allowed at once (the bucket's size).
    pub burst: u32,
    /// Requests the bucket regains per minute.
    pub per_minute: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitsConfig {
    pub enabled: bool,
    /// Failed authentications at `/v1/oauth/token`, per client id.
    pub token_failures_per_client: LimitConfig,
    /// Failed authentications at `/v1/oauth/token`, per client address.
    pub token_failures_per_ip: LimitConfig,
    /// Authenticated API requests, per tenant.
    pub api_per_tenant: LimitConfig,
    /// Starts on the connect and payment pages, per client address.
    pub page_starts_per_ip: LimitConfig,
    /// Starts on the connect and payment pages, per tenant.
    pub page_starts_per_tenant: LimitConfig,
    /// Test events (`POST /v1/webhook-endpoints/{id}/test`), per tenant.
    pub webhook_tests_per_tenant: LimitConfig,
    /// Buckets each limit keeps at most (memory stays bounded whatever keys clients send).
    pub max_tracked_keys: usize,
}

impl From<Limit> for LimitConfig {
    fn from(limit: Limit) -> Self {
        Self {
            burst: limit.burst,
            per_minute: limit.per_minute,
        }
    }
}

impl From<LimitConfig> for Limit {
    fn from(config: LimitConfig) -> Self {
        Limit::new(config.burst, config.per_minute)
    }
}

impl Default for RateLimitsConfig {
    fn default() -> Self {
        let d = RateLimitSettings::default();
        Self {
            enabled: d.enabled,
            token_failures_per_client: d.token_failures_per_client.into(),
            token_failures_per_ip: d.token_failures_per_ip.into(),
            api_per_tenant: d.api_per_tenant.into(),
            page_starts_per_ip: d.page_starts_per_ip.into(),
            page_starts_per_tenant: d.page_starts_per_tenant.into(),
            webhook_tests_per_tenant: d.webhook_tests_per_tenant.into(),
            max_tracked_keys: d.max_tracked_keys,
        }
    }
}

impl RateLimitsConfig {
    pub fn validate(&self) -> anyhow::Result<()> {
        if !(1000..=10_000_000).contains(&self.max_tracked_keys) {
            bail!("rate_limits.max_tracked_keys must be between 1000 and 10000000");
        }
        Ok(())
    }

    pub fn settings(&self) -> RateLimitSettings {
        RateLimitSettings {
            enabled: self.enabled,
            token_failures_per_client: self.token_failures_per_client.into(),
            token_failures_per_ip: self.token_failures_per_ip.into(),
            api_per_tenant: self.api_per_tenant.into(),
            page_starts_per_ip: self.page_starts_per_ip.into(),
            page_starts_per_tenant: self.page_starts_per_tenant.into(),
            webhook_tests_per_tenant: self.webhook_tests_per_tenant.into(),
            max_tracked_keys: self.max_tracked_keys,
        }
    }
}
