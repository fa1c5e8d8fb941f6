//! The `[telemetry]` section: OpenTelemetry traces over OTLP/HTTP. Off unless `otlp_endpoint`
//! is set (`KONTOR_TELEMETRY__OTLP_ENDPOINT`); then `kontor serve`, `kontor worker` and
//! `kontor demo` export their spans in batches to `<otlp_endpoint>/v1/traces`.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// The collector's OTLP/HTTP base URL, e.g. `http://otel-collector.monitoring:4318`; spans
    /// are posted as protobuf to `<otlp_endpoint>/v1/traces`. Unset: no spans are exported and
    /// no connection is made.
    pub otlp_endpoint: Option<String>,
    /// The resource's `service.name`.
    pub service_name: String,
    /// More resource attributes, e.g. `deployment.environment.name = "production"`.
    pub resource_attributes: BTreeMap<String, String>,
    /// Share of new traces that are recorded (0–1). A request that continues a caller's trace
    /// follows the caller's sampling decision.
    pub sample_ratio: f64,
    /// Spans waiting for export at most; beyond it new spans are dropped, never waited for.
    pub max_queue_size: usize,
    /// Spans per export request at most.
    pub max_export_batch_size: usize,
    /// How often the queue is exported when it does not fill a batch first.
    pub scheduled_delay_ms: u64,
    /// How long one export request may take.
    pub export_timeout_ms: u64,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            otlp_endpoint: None,
            service_name: "kontor".to_owned(),
            resource_attributes: BTreeMap::new(),
            sample_ratio: 1.0,
            max_queue_size: 2048,
            max_export_batch_size: 512,
            scheduled_delay_ms: 5000,
            export_timeout_ms: 10_000,
        }
    }
}

impl TelemetryConfig {
    pub fn validate(&self) -> anyhow::Result<()> {
        if let Some(endpoint) = &self.otlp_endpoint {
            self.traces_url(endpoint)?;
        }
        if self.service_name.trim().is_empty() {
            bail!("telemetry.service_name must not be empty");
        }
        if !(0.0..=1.0).contains(&self.sample_ratio) {
            bail!("telemetry.sample_ratio must be between 0 and 1");
        }
        if !(1..=1_000_000).contains(&self.max_queue_size) {
            bail!("telemetry.max_queue_size must be between 1 and 1000000");
        }
        if !(1..=self.max_queue_size).contains(&self.max_export_batch_size) {
            bail!("telemetry.max_export_batch_size must be between 1 and telemetry.max_queue_size");
        }
        if !(100..=300_000).contains(&self.scheduled_delay_ms) {
            bail!("telemetry.scheduled_delay_ms must be between 100 and 300000");
        }
        if !(100..=120_000).contains(&self.export_timeout_ms) {
            bail!("telemetry.export_timeout_ms must be between 100 and 120000");
        }
        Ok(())
    }

    /// Where spans are posted: the endpoint with `/v1/traces` appended to its path.
    pub fn traces_url(&self, endpoint: &str) -> anyhow::Result<url::Url> {
        let mut url = url::Url::parse(endpoint)
            .with_context(|| format!("telemetry.otlp_endpoint {endpoint:?} is not a URL"))?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            bail!(
                "telemetry.otlp_endpoint must be an http:// or https:// URL such as http://otel-collector:4318"
            );
        }
        if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
            bail!("telemetry.otlp_endpoint must have no query, fragment or credentials");
        }
        let path = format!("{}/v1/traces", url.path().trim_end_matches('/'));
        url.set_path(&path);
        Ok(url)
    }

    pub fn export_timeout(&self) -> Duration {
        Duration::from_millis(self.export_timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoint_gets_the_traces_path() {
        let config = TelemetryConfig::default();
        for (endpoint, url) in [
            ("http://collector:4318", "http://collector:4318/v1/traces"),
            ("http://collector:4318/", "http://collector:4318/v1/traces"),
            (
                "https://otel.example/otlp/",
                "https://otel.example/otlp/v1/traces",
            ),
        ] {
            assert_eq!(config.traces_url(endpoint).unwrap().as_str(), url);
        }
    }

    #[test]
    fn bad_settings_are_refused_with_their_key() {
        assert!(TelemetryConfig::default().validate().is_ok());
        let cases = [
            ("ftp://collector", "telemetry.otlp_endpoint"),
            ("collector:4318", "telemetry.otlp_endpoint"),
            ("http://user:pw@collector:4318", "telemetry.otlp_endpoint"),
            ("http://collector:4318/?x=1", "telemetry.otlp_endpoint"),
        ];
        for (endpoint, key) in cases {
            let config = TelemetryConfig {
                otlp_endpoint: Some(endpoint.to_owned()),
                ..TelemetryConfig::default()
            };
            let err = config.validate().unwrap_err();
            assert!(format!("{err:#}").contains(key), "{endpoint}: {err:#}");
        }
        let config = TelemetryConfig {
            sample_ratio: 1.5,
            ..TelemetryConfig::default()
        };
        assert!(
            config
                .validate()
                .unwrap_err()
                .to_string()
                .contains("sample_ratio")
        );
        let config = TelemetryConfig {
            max_export_batch_size: 4096,
            ..TelemetryConfig::default()
        };
        assert!(config.validate().is_err());
    }
}
