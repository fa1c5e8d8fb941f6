//! The `[webhooks]` section: where deliveries may go, how long an attempt may take, the retry
//! schedule, and how hard a worker pushes.

use anyhow::bail;
use kontor_domain::webhook::RetrySchedule;
use kontor_service::WebhookSettings;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhooksConfig {
    /// Accept `http` endpoint URLs. Development only: deliveries then travel unencrypted.
    pub allow_http: bool,
    /// Deliver to private, loopback and link-local addresses. Development only: with it, a
    /// tenant can make the hub send requests into its own network. Cloud metadata addresses
    /// (169.254.169.254, fd00:ec2::254, …) stay refused.
    pub allow_private_addresses: bool,
    /// Ports of 1024 and above endpoints may not use; below 1024 only 80 and 443 are allowed,
    /// and port 0 never. The default lists database, cache, queue and cluster ports.
    pub denied_ports: Vec<u16>,
    /// How long one attempt may take, connecting included.
    pub timeout_ms: u64,
    /// Seconds to wait after each failed attempt; after the last, the delivery has failed (and
    /// an endpoint that got nothing through since its first attempt is disabled). The default is
    /// 16 attempts over about three days.
    pub retry_schedule_seconds: Vec<i64>,
    /// How often an idle worker looks for new events and due deliveries.
    pub poll_ms: u64,
    /// Attempts in flight at once per worker process.
    pub concurrency: usize,
    /// How long a worker holds a delivery it attempts; after a crash, the delivery is attempted
    /// again once this runs out. Must exceed the timeout.
    pub lease_seconds: i64,
    /// How long a rotated-out secret keeps signing next to the new one.
    pub secret_overlap_seconds: i64,
    pub max_endpoints_per_tenant: usize,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        let d = WebhookSettings::default();
        Self {
            allow_http: d.allow_http,
            allow_private_addresses: d.allow_private_addresses,
            denied_ports: d.denied_ports,
            timeout_ms: u64::try_from(d.timeout.as_millis()).unwrap_or(10_000),
            retry_schedule_seconds: d.retry_schedule.delays_seconds().to_vec(),
            poll_ms: u64::try_from(d.poll_interval.as_millis()).unwrap_or(200),
            concurrency: d.concurrency,
            lease_seconds: d.lease_seconds,
            secret_overlap_seconds: d.secret_overlap_seconds,
            max_endpoints_per_tenant: d.max_endpoints_per_tenant,
        }
    }
}

impl WebhooksConfig {
    pub fn validate(&self) -> anyhow::Result<()> {
        if !(100..=60_000).contains(&self.timeout_ms) {
            bail!("webhooks.timeout_ms must be between 100 and 60000");
        }
        let timeout_s = i64::try_from(self.timeout_ms.div_ceil(1000)).unwrap_or(i64::MAX);
        // A lease covers more than the request: the endpoint lookup, the name resolution, the
        // check whether the endpoint keeps failing and the recording's retries.
        let least = timeout_s.saturating_mul(2).saturating_add(10);
        if self.lease_seconds < least || self.lease_seconds > 3600 {
            bail!(
                "webhooks.lease_seconds must be at least twice the timeout plus 10 s ({least} s) and at most 3600"
            );
        }
        if self.retry_schedule_seconds.len() > 50
            || self.retry_schedule_seconds.iter().any(|d| *d < 0)
        {
            bail!("webhooks.retry_schedule_seconds: at most 50 delays, none negative");
        }
        if !(1..=1024).contains(&self.concurrency) {
            bail!("webhooks.concurrency must be between 1 and 1024");
        }
        if !(10..=60_000).contains(&self.poll_ms) {
            bail!("webhooks.poll_ms must be between 10 and 60000");
        }
        if !(0..=7 * 86_400).contains(&self.secret_overlap_seconds) {
            bail!("webhooks.secret_overlap_seconds must be between 0 and 604800");
        }
        if !(1..=1000).contains(&self.max_endpoints_per_tenant) {
            bail!("webhooks.max_endpoints_per_tenant must be between 1 and 1000");
        }
        Ok(())
    }

    /// The services' settings from this section.
    pub fn settings(&self) -> WebhookSettings {
        WebhookSettings {
            allow_http: self.allow_http,
            allow_private_addresses: self.allow_private_addresses,
            denied_ports: self.denied_ports.clone(),
            timeout: std::time::Duration::from_millis(self.timeout_ms),
            retry_schedule: RetrySchedule::new(self.retry_schedule_seconds.clone()),
            poll_interval: std::time::Duration::from_millis(self.poll_ms),
            concurrency: self.concurrency,
            lease_seconds: self.lease_seconds,
            secret_overlap_seconds: self.secret_overlap_seconds,
            max_endpoints_per_tenant: self.max_endpoints_per_tenant,
            ..WebhookSettings::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_map_one_to_one() {
        let config = WebhooksConfig::default();
        config.validate().unwrap();
        let settings = config.settings();
        assert_eq!(settings.retry_schedule, RetrySchedule::default());
        assert!(!settings.allow_http && !settings.allow_private_addresses);
        let short_lease = WebhooksConfig {
            lease_seconds: 5,
            ..WebhooksConfig::default()
        };
        assert!(short_lease.validate().is_err());
    }
}
