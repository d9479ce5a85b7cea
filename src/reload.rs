//! Configuration reload (SIGHUP or `POST /v1/reload`): re-reads the config
//! file and swaps in new backend pools, with the `plans:` that map to them.
//! The same swap follows DNS: backends named by a DNS name are re-resolved
//! every `resolve_interval`, and a changed answer rebuilds the pools (a new
//! address joins, a vanished one drains). In-flight requests finish on the
//! pools they started with; backends present before and after keep their
//! health. Tenant-header signing keys are swapped too (key rotation), and
//! the plans' limits with the queue settings (`limits.queue_*`). Other
//! settings take effect on restart.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;
use tokio::sync::{Mutex, Notify};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, ConfigErrors, Overrides, PoolConfig, UpstreamConfig};
use crate::proxy::{signing, DataPath};
use crate::upstream::discovery::{self, Resolver};
use crate::upstream::{health, Pools, Resolved};

/// Where the configuration came from, so it can be read again.
#[derive(Debug, Clone, Default)]
pub struct ConfigSource {
    pub path: Option<PathBuf>,
    pub overrides: Overrides,
}

/// What the pools in service were built from.
pub struct PoolsSource {
    pub pools: BTreeMap<String, PoolConfig>,
    pub plans: BTreeMap<String, String>,
    pub upstream: UpstreamConfig,
    pub resolver: Resolver,
    pub resolved: Resolved,
}

impl PoolsSource {
    /// The pool settings of `config`, with its DNS names resolved (keeping
    /// the addresses of names `previous` already knew).
    pub async fn resolve(
        config: &Config,
        previous: Option<Resolved>,
        metrics: &crate::metrics::Metrics,
    ) -> PoolsSource {
        let resolver = Resolver::new(&config.upstream.nameservers);
        let mut resolved = previous.unwrap_or_default();
        discovery::resolve_new(
            &resolver,
            &discovery::names(&config.pools),
            &mut resolved,
            metrics,
        )
        .await;
        PoolsSource {
            pools: config.pools.clone(),
            plans: config.plan_pools(),
            upstream: config.upstream.clone(),
            resolver,
            resolved,
        }
    }

    pub fn build(&self, workers: usize, data_path: &DataPath, previous: Option<&Pools>) -> Pools {
        Pools::build(
            &self.pools,
            &self.plans,
            &self.upstream,
            workers,
            &data_path.metrics,
            previous,
            &self.resolved,
        )
    }
}

struct Current {
    source: PoolsSource,
    /// Stops the current pools' health checks.
    health_stop: CancellationToken,
}

pub struct Reloader {
    source: ConfigSource,
    data_path: Arc<DataPath>,
    workers: usize,
    current: Mutex<Current>,
    /// Wakes the re-resolve loop when a reload changed the names.
    names_changed: Notify,
    stop: CancellationToken,
}

/// What a reload put in place.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Reloaded {
    pub pools: Vec<String>,
    pub backends: usize,
    /// Pools the new config no longer has: tenants still assigned to one
    /// get 503 until they are given another (the store is not searched).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub removed_pools: Vec<String>,
}

impl Reloader {
    /// Starts the health checks of the pools already in `data_path` (built
    /// from `pools`) and the re-resolve loop. Must run inside the control
    /// runtime.
    pub fn start(
        source: ConfigSource,
        data_path: Arc<DataPath>,
        workers: usize,
        pools: PoolsSource,
    ) -> Arc<Reloader> {
        let health_stop = CancellationToken::new();
        health::spawn_checks(&data_path.pools.load(), &health_stop);
        let reloader = Arc::new(Reloader {
            source,
            data_path,
            workers,
            current: Mutex::new(Current {
                source: pools,
                health_stop,
            }),
            names_changed: Notify::new(),
            stop: CancellationToken::new(),
        });
        tokio::spawn(reloader.clone().follow_dns());
        reloader
    }

    /// Reads the configuration again and swaps in its pools. A config with
    /// problems changes nothing and returns them.
    pub async fn reload(&self) -> Result<Reloaded, ConfigErrors> {
        let config = Config::load(self.source.path.as_deref(), &self.source.overrides)?;
        for warning in config.warnings() {
            tracing::warn!(%warning, "reload");
        }
        // Signing keys rotate on reload; a secret gone since validation changes nothing.
        let signer = signing::signer_for(&config.headers).map_err(|e| ConfigErrors(vec![e]))?;
        let mut current = self.current.lock().await;
        let resolved = current.source.resolved.clone();
        current.source =
            PoolsSource::resolve(&config, Some(resolved), &self.data_path.metrics).await;
        let reloaded = self.swap_pools(&mut current);
        drop(current);
        self.names_changed.notify_one();
        self.data_path.signer.store(signer);
        self.data_path
            .limiter
            .reconfigure(&config.plans, &config.limits);
        tracing::info!(pools = ?reloaded.pools, backends = reloaded.backends, "configuration reloaded");
        if !reloaded.removed_pools.is_empty() {
            tracing::warn!(removed = ?reloaded.removed_pools, "pools removed: tenants still assigned to them get 503 until given another pool");
        }
        Ok(reloaded)
    }

    /// Builds the pools of `current` and puts them in service, with their
    /// health checks; the old pools' checks stop and the series of backends
    /// gone are dropped.
    fn swap_pools(&self, current: &mut Current) -> Reloaded {
        let old = self.data_path.pools.load_full();
        let new = current
            .source
            .build(self.workers, &self.data_path, Some(&old));
        let stop = CancellationToken::new();
        health::spawn_checks(&new, &stop);
        let reloaded = Reloaded {
            pools: new.names(),
            backends: new.iter().map(|p| p.backends.len()).sum(),
            removed_pools: old
                .names()
                .into_iter()
                .filter(|name| new.get(Some(name)).is_none())
                .collect(),
        };
        for pool in old.iter() {
            let kept = new.get(Some(&pool.name));
            for backend in &pool.backends {
                if !kept.is_some_and(|p| p.backends.iter().any(|b| b.name == backend.name)) {
                    self.data_path
                        .metrics
                        .backends
                        .forget(&pool.name, &backend.name);
                }
            }
        }
        self.data_path.pools.store(Arc::new(new));
        std::mem::replace(&mut current.health_stop, stop).cancel();
        reloaded
    }

    /// Re-resolves every DNS name of the pools on its interval; a changed
    /// answer rebuilds the pools.
    async fn follow_dns(self: Arc<Self>) {
        let mut due: HashMap<String, Instant> = HashMap::new();
        loop {
            let (names, resolver) = {
                let current = self.current.lock().await;
                let names = discovery::names(&current.source.pools);
                (names, current.source.resolver.clone())
            };
            let now = Instant::now();
            due.retain(|name, _| names.contains_key(name));
            for (name, uses) in &names {
                due.entry(name.clone()).or_insert(now + uses.interval);
            }
            let next = due.values().min().copied();
            tokio::select! {
                () = self.stop.cancelled() => return,
                () = self.names_changed.notified() => continue,
                () = sleep_until(next) => {}
            }
            let now = Instant::now();
            let mut lookups = tokio::task::JoinSet::new();
            for (name, at) in due.iter_mut().filter(|(_, at)| **at <= now) {
                *at = now + names[name].interval;
                let (resolver, name) = (resolver.clone(), name.clone());
                lookups.spawn(async move {
                    let answer = resolver.lookup(&name).await;
                    (name, answer)
                });
            }
            let answers = lookups.join_all().await;
            let mut current = self.current.lock().await;
            let mut changed = false;
            // A reload while we asked may have dropped a name.
            let names = discovery::names(&current.source.pools);
            for (name, answer) in answers {
                if let Some(uses) = names.get(&name) {
                    changed |= current.source.resolved.record(
                        &name,
                        answer,
                        uses,
                        &self.data_path.metrics,
                    );
                }
            }
            if changed {
                let swapped = self.swap_pools(&mut current);
                tracing::info!(
                    backends = swapped.backends,
                    "pools rebuilt for new backend addresses"
                );
            }
        }
    }

    /// Stops the health checks and the re-resolve loop (at shutdown).
    pub async fn stop(&self) {
        self.stop.cancel();
        self.current.lock().await.health_stop.cancel();
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
