//! Configuration reload (SIGHUP or `POST /v1/reload`): re-reads the config
//! file and swaps in new backend pools, with the `plans:` that map to them.
//! In-flight requests finish on the pools they started with; backends present
//! before and after keep their health. Tenant-header signing keys are swapped
//! too (key rotation). Other settings take effect on restart.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, ConfigErrors, Overrides};
use crate::proxy::{signing, DataPath};
use crate::upstream::{health, Pools};

/// Where the configuration came from, so it can be read again.
#[derive(Debug, Clone, Default)]
pub struct ConfigSource {
    pub path: Option<PathBuf>,
    pub overrides: Overrides,
}

pub struct Reloader {
    source: ConfigSource,
    data_path: Arc<DataPath>,
    workers: usize,
    /// Stops the current pools' health checks.
    health_stop: Mutex<CancellationToken>,
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
    /// Starts the health checks of the pools already in `data_path`.
    /// Must run inside the control runtime.
    pub fn start(source: ConfigSource, data_path: Arc<DataPath>, workers: usize) -> Reloader {
        let stop = CancellationToken::new();
        health::spawn_checks(&data_path.pools.load(), &stop);
        Reloader {
            source,
            data_path,
            workers,
            health_stop: Mutex::new(stop),
        }
    }

    /// Reads the configuration again and swaps in its pools. A config with
    /// problems changes nothing and returns them.
    pub fn reload(&self) -> Result<Reloaded, ConfigErrors> {
        let config = Config::load(self.source.path.as_deref(), &self.source.overrides)?;
        // Signing keys rotate on reload; a secret gone since validation changes nothing.
        let signer = signing::signer_for(&config.headers).map_err(|e| ConfigErrors(vec![e]))?;
        let old = self.data_path.pools.load_full();
        let new = Pools::build(
            &config.pools,
            &config.plans,
            &config.upstream,
            self.workers,
            &self.data_path.metrics,
            Some(&old),
        );
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
                if !kept.is_some_and(|p| p.backends.iter().any(|b| b.addr == backend.addr)) {
                    self.data_path
                        .metrics
                        .backends
                        .forget(&pool.name, &backend.addr.to_string());
                }
            }
        }
        self.data_path.pools.store(Arc::new(new));
        self.data_path.signer.store(signer);
        let previous = std::mem::replace(
            &mut *self.health_stop.lock().unwrap_or_else(|p| p.into_inner()),
            stop,
        );
        previous.cancel();
        tracing::info!(pools = ?reloaded.pools, backends = reloaded.backends, "configuration reloaded");
        if !reloaded.removed_pools.is_empty() {
            tracing::warn!(removed = ?reloaded.removed_pools, "pools removed: tenants still assigned to them get 503 until given another pool");
        }
        Ok(reloaded)
    }

    /// Stops the health checks (at shutdown).
    pub fn stop(&self) {
        self.health_stop
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .cancel();
    }
}
