//! The `[retention]` section: how long the event log is kept. The worker deletes events older
//! than `events_days`, with their webhook deliveries and attempts, in batches.

use anyhow::bail;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Days events, webhook deliveries and attempts are kept (1–3650).
    pub events_days: u32,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            events_days: kontor_service::RetentionSettings::default().events_days,
        }
    }
}

impl RetentionConfig {
    pub fn validate(&self) -> anyhow::Result<()> {
        if !(1..=3650).contains(&self.events_days) {
            bail!("retention.events_days must be between 1 and 3650");
        }
        Ok(())
    }

    pub fn settings(&self) -> kontor_service::RetentionSettings {
        kontor_service::RetentionSettings {
            events_days: self.events_days,
            ..kontor_service::RetentionSettings::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_outside_the_range_are_refused() {
        assert!(RetentionConfig::default().validate().is_ok());
        assert_eq!(RetentionConfig::default().events_days, 90);
        for bad in [0, 3651] {
            let err = RetentionConfig { events_days: bad }.validate().unwrap_err();
            assert!(err.to_string().contains("retention.events_days"), "{err}");
        }
        assert!(RetentionConfig { events_days: 1 }.validate().is_ok());
    }
}
