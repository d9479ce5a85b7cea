//! The set of pools one configuration builds (swapped whole on reload), and
//! which pool a tenant uses: its own, else its plan's, else `default`. Names
//! and plans are resolved to indexes once per build, and a tenant's answer
//! is remembered beside it in the routing cache until the next build.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use super::build::build_pool;
use super::{Pool, Resolved, DEFAULT_POOL};
use crate::config::{PoolConfig, UpstreamConfig};
use crate::metrics::Metrics;
use crate::tenant::Tenant;

/// All pools, with the name and plan lookups resolved to indexes once per
/// build (start or reload) rather than per request.
#[derive(Default)]
pub struct Pools {
    pools: Vec<Pool>,
    by_name: HashMap<String, usize>,
    /// `plans:`: plan name → index of its pool.
    by_plan: HashMap<String, usize>,
    default: Option<usize>,
    /// Tells this build from every other, so a tenant's cached pool index
    /// (`PoolSlot`) is only trusted against the build that computed it.
    generation: u32,
}

/// Hands out a distinct generation to every `Pools` build (0 means "never").
static GENERATIONS: AtomicU32 = AtomicU32::new(1);

/// A tenant's pool index as last resolved, tagged with the generation of the
/// `Pools` it was resolved in: `generation << 32 | index`. It lives beside the
/// tenant in the routing cache, so a request for a cached tenant finds its
/// pool without hashing a name; a reload makes every slot stale at once.
#[derive(Debug, Default)]
pub struct PoolSlot(AtomicU64);

/// The index stored for "no such pool".
const NO_POOL: u32 = u32::MAX;

impl Pools {
    /// Builds pools from validated config, DNS names giving a backend per
    /// address in `resolved`. Backends that existed in `previous` (same pool,
    /// same address) keep their health state.
    pub fn build(
        config: &BTreeMap<String, PoolConfig>,
        plans: &BTreeMap<String, String>,
        upstream: &UpstreamConfig,
        workers: usize,
        metrics: &Metrics,
        previous: Option<&Pools>,
        resolved: &Resolved,
    ) -> Pools {
        let pools: Vec<Pool> = config
            .iter()
            .map(|(name, pool)| {
                build_pool(name, pool, upstream, workers, metrics, previous, resolved)
            })
            .collect();
        let by_name: HashMap<String, usize> = pools
            .iter()
            .enumerate()
            .map(|(i, p)| (p.name.clone(), i))
            .collect();
        let by_plan = plans
            .iter()
            .filter_map(|(plan, pool)| Some((plan.clone(), *by_name.get(pool)?)))
            .collect();
        Pools {
            default: by_name.get(DEFAULT_POOL).copied(),
            pools,
            by_name,
            by_plan,
            generation: GENERATIONS.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// A pool by name; `None` means `default`.
    pub fn get(&self, name: Option<&str>) -> Option<&Pool> {
        let index = match name {
            Some(name) => self.by_name.get(name).copied(),
            None => self.default,
        };
        index.map(|i| &self.pools[i])
    }

    /// The pool a tenant uses: its own (`pool`), else its plan's (`plans:`),
    /// else `default`. An explicit pool that no longer exists is `None` (the
    /// request fails) rather than silently moving the tenant elsewhere.
    pub fn resolve(&self, pool: Option<&str>, plan: Option<&str>) -> Option<&Pool> {
        self.resolve_index(pool, plan).map(|i| &self.pools[i])
    }

    fn resolve_index(&self, pool: Option<&str>, plan: Option<&str>) -> Option<usize> {
        match pool {
            Some(name) => self.by_name.get(name).copied(),
            None => plan
                .and_then(|plan| self.by_plan.get(plan).copied())
                .or(self.default),
        }
    }

    /// `resolve` for a routed tenant, remembered in its `slot` until the
    /// pools are rebuilt: the data path's lookup, one atomic load when warm.
    pub fn for_tenant(&self, tenant: &Tenant, slot: &PoolSlot) -> Option<&Pool> {
        let cached = slot.0.load(Ordering::Relaxed);
        let index = if (cached >> 32) as u32 == self.generation {
            cached as u32
        } else {
            let index = self
                .resolve_index(tenant.pool.as_deref(), tenant.plan.as_deref())
                .map_or(NO_POOL, |i| i as u32);
            slot.0.store(
                u64::from(self.generation) << 32 | u64::from(index),
                Ordering::Relaxed,
            );
            index
        };
        self.pools.get(index as usize)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.by_name.contains_key(name)
    }

    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.by_name.keys().cloned().collect();
        names.sort();
        names
    }

    pub fn iter(&self) -> impl Iterator<Item = &Pool> {
        self.pools.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BackendConfig;

    fn pools(names: &[&str], plans: &[(&str, &str)]) -> Pools {
        let config = names
            .iter()
            .map(|n| {
                let pool = PoolConfig {
                    backends: vec![BackendConfig::Url("http://a:1".into())],
                    ..PoolConfig::default()
                };
                (n.to_string(), pool)
            })
            .collect();
        let plans = plans
            .iter()
            .map(|(plan, pool)| (plan.to_string(), pool.to_string()))
            .collect();
        let metrics = Metrics::new(false, 0);
        Pools::build(
            &config,
            &plans,
            &UpstreamConfig::default(),
            1,
            &metrics,
            None,
            &Resolved::default(),
        )
    }

    fn tenant(pool: Option<&str>, plan: Option<&str>) -> Tenant {
        Tenant {
            pool: pool.map(Into::into),
            plan: plan.map(Into::into),
            ..Tenant::example("t")
        }
    }

    #[test]
    fn explicit_pool_beats_plan_beats_default() {
        let pools = pools(
            &["default", "dedicated", "gold"],
            &[("premium", "dedicated")],
        );
        let name = |pool, plan| pools.resolve(pool, plan).map(|p| p.name.as_str());
        assert_eq!(name(None, None), Some("default"));
        assert_eq!(name(None, Some("premium")), Some("dedicated"));
        assert_eq!(
            name(None, Some("basic")),
            Some("default"),
            "a plan without a pool"
        );
        assert_eq!(name(Some("gold"), Some("premium")), Some("gold"));
        assert_eq!(name(Some("gone"), Some("premium")), None);
    }

    #[test]
    fn a_cached_slot_is_used_until_the_pools_are_rebuilt() {
        let before = pools(&["default", "dedicated"], &[]);
        let premium = tenant(None, Some("premium"));
        let slot = PoolSlot::default();
        assert_eq!(before.for_tenant(&premium, &slot).unwrap().name, "default");
        assert_eq!(before.for_tenant(&premium, &slot).unwrap().name, "default");
        let after = pools(&["default", "dedicated"], &[("premium", "dedicated")]);
        assert_eq!(after.for_tenant(&premium, &slot).unwrap().name, "dedicated");
        let missing = tenant(Some("gone"), None);
        let slot = PoolSlot::default();
        assert!(after.for_tenant(&missing, &slot).is_none());
        assert!(after.for_tenant(&missing, &slot).is_none());
    }
}
