//! `plans:`: what a billing plan gives its tenants. Written either as the
//! pool alone (`premium: dedicated`) or as a map with the plan's limits
//! (`free: {pool: shared, rate: 20/s, burst: 40, concurrency: 10}`).

use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::tenant::controls::{Rate, TenantLimits};

/// One entry of `plans:`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanConfig {
    /// The pool its tenants use (when they have none of their own); `None`
    /// leaves them on `default`.
    pub pool: Option<String>,
    /// The plan's limits; a tenant's own limits override them field by field.
    pub limits: TenantLimits,
}

impl PlanConfig {
    /// A plan that only names its pool (the short form).
    pub fn pool(pool: impl Into<String>) -> PlanConfig {
        PlanConfig {
            pool: Some(pool.into()),
            limits: TenantLimits::default(),
        }
    }
}

/// The map form, typed by serde so an unknown key or a bad rate is named
/// with its path (`plans.free.rate`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanMap {
    #[serde(default)]
    pool: Option<String>,
    #[serde(default)]
    rate: Option<Rate>,
    #[serde(default)]
    burst: Option<u32>,
    #[serde(default)]
    concurrency: Option<u32>,
}

impl<'de> Deserialize<'de> for PlanConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<PlanConfig, D::Error> {
        // A visitor rather than `#[serde(untagged)]`, whose error for a bad
        // map ("did not match any variant") would hide the key and the reason.
        struct PlanVisitor;
        impl<'de> Visitor<'de> for PlanVisitor {
            type Value = PlanConfig;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a pool name, or a map of pool, rate, burst and concurrency")
            }
            fn visit_str<E: de::Error>(self, pool: &str) -> Result<PlanConfig, E> {
                Ok(PlanConfig::pool(pool))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<PlanConfig, A::Error> {
                let plan = PlanMap::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(PlanConfig {
                    pool: plan.pool,
                    limits: TenantLimits {
                        rate: plan.rate,
                        burst: plan.burst,
                        concurrency: plan.concurrency,
                    },
                })
            }
        }
        deserializer.deserialize_any(PlanVisitor)
    }
}

/// The problems of `plans:`, each named by its key.
pub(super) fn problems(config: &super::Config, out: &mut Vec<super::ConfigError>) {
    use super::ConfigError;
    for (name, plan) in &config.plans {
        if let Err(e) = crate::tenant::validate_plan(name) {
            out.push(ConfigError::new(format!("plans.{name}"), e.to_string()));
        }
        if let Some(pool) = &plan.pool {
            if !config.pools.contains_key(pool) {
                // The short form has no `pool` key to name.
                let key = if plan.limits.is_empty() {
                    format!("plans.{name}")
                } else {
                    format!("plans.{name}.pool")
                };
                out.push(ConfigError::new(
                    key,
                    format!("no pool named '{pool}' in pools"),
                ));
            }
        }
        if plan.limits.burst == Some(0) {
            out.push(ConfigError::new(
                format!("plans.{name}.burst"),
                "must be at least 1 (the bucket must hold a request)",
            ));
        }
        if plan.limits.burst.is_some() && plan.limits.rate.is_none() {
            out.push(ConfigError::new(
                format!("plans.{name}.burst"),
                "needs a rate (the burst is the size of the rate's bucket)",
            ));
        }
        if plan.limits.concurrency == Some(0) {
            out.push(ConfigError::new(
                format!("plans.{name}.concurrency"),
                "must be at least 1 (suspend a tenant to refuse all its requests)",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_support::problem_keys;
    use crate::config::{Config, ConfigErrors};

    fn errors(yaml: &str) -> Vec<String> {
        match Config::from_yaml(yaml).and_then(|c| c.validate().map(|_| c)) {
            Ok(_) => vec![],
            Err(ConfigErrors(errors)) => errors.into_iter().map(|e| e.to_string()).collect(),
        }
    }

    const POOLS: &str = "pools: {default: {backends: [\"http://127.0.0.1:1\"]}, shared: {backends: [\"http://127.0.0.1:2\"]}}\n";

    #[test]
    fn plans_read_in_both_forms() {
        let yaml = format!(
            "{POOLS}plans:\n  premium: shared\n  free: {{pool: shared, rate: 20/s, burst: 40, concurrency: 10}}\n  trial: {{rate: 600/m}}\n"
        );
        let config = Config::from_yaml(&yaml).unwrap();
        config.validate().unwrap();
        assert_eq!(config.plans["premium"], PlanConfig::pool("shared"));
        let free = &config.plans["free"];
        assert_eq!(free.pool.as_deref(), Some("shared"));
        assert_eq!(free.limits.rate, Some("20/s".parse().unwrap()));
        assert_eq!(
            (free.limits.burst, free.limits.concurrency),
            (Some(40), Some(10))
        );
        assert_eq!(config.plans["trial"].pool, None);
        assert_eq!(
            config.plan_pools().into_iter().collect::<Vec<_>>(),
            [
                ("free".to_string(), "shared".to_string()),
                ("premium".to_string(), "shared".to_string())
            ]
        );
    }

    #[test]
    fn a_bad_rate_names_its_key_and_says_how_to_write_one() {
        let errors = errors(&format!("{POOLS}plans:\n  free: {{rate: 20/d}}\n"));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].starts_with("config key `plans.free.rate`: invalid rate '20/d'"),
            "{errors:?}"
        );
        assert!(errors[0].contains("20/s"), "{errors:?}");
    }

    #[test]
    fn bad_plan_entries_name_their_key() {
        let keys = |plans: &str| problem_keys(&format!("{POOLS}plans:\n  free: {plans}\n"));
        assert_eq!(keys("{rate: 20/s, burts: 4}"), ["plans.free.burts"]);
        assert_eq!(keys("{rate: 20/s, burst: -1}"), ["plans.free.burst"]);
        assert_eq!(keys("{rate: 20/s, burst: 0}"), ["plans.free.burst"]);
        assert_eq!(keys("{burst: 5}"), ["plans.free.burst"]);
        assert_eq!(keys("{concurrency: 0}"), ["plans.free.concurrency"]);
        assert_eq!(keys("{concurrency: many}"), ["plans.free.concurrency"]);
        assert_eq!(keys("{pool: nowhere, rate: 1/s}"), ["plans.free.pool"]);
        assert_eq!(keys("nowhere"), ["plans.free"]);
        assert_eq!(keys("[shared]"), ["plans.free"]);
        assert!(keys("{pool: shared, rate: 3600/h, concurrency: 1}").is_empty());
    }

    #[test]
    fn queue_settings_are_checked_by_key() {
        assert_eq!(
            problem_keys("limits: {queue_timeout: 0s}"),
            ["limits.queue_timeout"]
        );
        assert_eq!(
            problem_keys("limits: {queue_size: -3}"),
            ["limits.queue_size"]
        );
        let config = Config::from_yaml("limits: {queue_timeout: 250ms, queue_size: 5}").unwrap();
        assert_eq!(
            config.limits.queue_timeout,
            std::time::Duration::from_millis(250)
        );
        assert_eq!(config.limits.queue_size, 5);
    }
}
