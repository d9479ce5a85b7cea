//! `usage:`: usage metering for billing (requests, bytes, 4xx/5xx and
//! upstream time per tenant per hour, flushed to the store).

use std::time::Duration;

use serde::Deserialize;

use super::ConfigError;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UsageConfig {
    /// Count every request of a known tenant (off: the data path does no
    /// metering work at all).
    pub enabled: bool,
    /// How often each replica adds its counts to the store.
    #[serde(with = "humantime_serde")]
    pub flush_interval: Duration,
}

impl Default for UsageConfig {
    fn default() -> Self {
        UsageConfig {
            enabled: false,
            flush_interval: Duration::from_secs(60),
        }
    }
}

impl UsageConfig {
    pub(super) fn problems(&self, out: &mut Vec<ConfigError>) {
        if self.flush_interval < Duration::from_secs(1) {
            out.push(ConfigError::new(
                "usage.flush_interval",
                format!(
                    "{} is shorter than 1s",
                    humantime_serde::re::humantime::format_duration(self.flush_interval)
                ),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::test_support::problem_keys;
    use crate::config::Config;

    #[test]
    fn usage_is_off_by_default_and_flushes_every_minute() {
        let config = Config::from_yaml("usage: {enabled: true}").unwrap();
        assert!(config.usage.enabled);
        assert_eq!(config.usage.flush_interval.as_secs(), 60);
        assert!(!Config::default().usage.enabled);
    }

    #[test]
    fn a_flush_interval_under_a_second_is_refused_by_name() {
        assert_eq!(
            problem_keys("usage: {flush_interval: 10ms}"),
            ["usage.flush_interval"]
        );
        assert_eq!(
            problem_keys("usage: {flush_every: 10s}"),
            ["usage.flush_every"]
        );
    }
}
