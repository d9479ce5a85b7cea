//! The gateway's configuration, typed once: serde structs with their defaults,
//! loading from YAML with the failing key named, and command-line overrides.
//! Everything else takes these typed values, never raw YAML.

mod admin;
mod backend_addr;
mod backend_tls;
mod data_path;
mod hooks;
mod plans;
mod provisioning;
pub mod reserved_headers;
mod signing;
mod store;
mod tls;
mod upstream;
mod usage;
mod validate;

pub use admin::{split_host_port, AdminConfig};
pub use backend_addr::{BackendAddr, NetHost};
pub use backend_tls::{load_certificates, load_private_key, BackendTlsConfig};
pub use data_path::{
    parse_byte_size, CacheConfig, DataPathConfig, HeaderNamesConfig, Http1Engine, LimitsConfig,
    RoutingConfig, UnknownHostAction, UnknownHostConfig,
};
pub use hooks::{EventsConfig, HooksConfig, HOOK_PLACEHOLDERS};
pub use plans::PlanConfig;
pub use provisioning::{ClusterConfig, ProvisioningConfig};
pub use signing::{is_valid_key_id, SigningConfig, SigningKeyConfig};
pub use store::{DjangoLayoutConfig, StoreConfig, StoreKind, StoreLayout};
pub use tls::{AcmeChallenge, AcmeConfig, CertificateFiles, TlsConfig};
pub use upstream::{
    BackendConfig, Balance, HealthCheckConfig, OutlierConfig, PoolConfig, PoolTimeouts,
    RetryConfig, UpstreamConfig,
};
pub use usage::UsageConfig;

use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tracing_subscriber::EnvFilter;

use crate::tenant::spec::{SpecRules, TenantSpec};

/// Environment variable that supplies the admin token when the config has none.
pub const ADMIN_TOKEN_ENV: &str = "TENANT_GATEWAY_ADMIN_TOKEN";

/// One problem in the configuration, with the key it is about.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("config key `{key}`: {reason}")]
pub struct ConfigError {
    pub key: String,
    pub reason: String,
}

impl ConfigError {
    pub fn new(key: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

/// Every problem found in a configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
pub struct ConfigErrors(pub Vec<ConfigError>);

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Data path listener.
    pub listen: SocketAddr,
    /// Threads serving the data path; 0 means one per core.
    pub workers: usize,
    pub admin: AdminConfig,
    pub store: StoreConfig,
    pub provisioning: ProvisioningConfig,
    /// Who is told when tenants are created and deleted.
    pub events: EventsConfig,
    pub cache: CacheConfig,
    pub routing: RoutingConfig,
    pub headers: HeaderNamesConfig,
    pub limits: LimitsConfig,
    /// Which HTTP/1.1 engine serves the data path.
    pub data_path: DataPathConfig,
    pub upstream: UpstreamConfig,
    /// Named backend pools; tenants without a pool use their plan's pool,
    /// else `default`.
    pub pools: BTreeMap<String, PoolConfig>,
    /// Plan name → its pool (e.g. `premium: dedicated`), or its pool and
    /// limits (`free: {pool: shared, rate: 20/s}`); reloadable.
    pub plans: BTreeMap<String, PlanConfig>,
    /// Tenants registered at start (created when missing).
    pub tenants: Vec<TenantSpec>,
    pub shutdown: ShutdownConfig,
    pub log: LogConfig,
    pub metrics: MetricsConfig,
    /// Usage metering for billing (off by default).
    pub usage: UsageConfig,
    /// HTTPS listener and certificates; no HTTPS when absent.
    pub tls: Option<TlsConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            workers: 0,
            admin: AdminConfig::default(),
            store: StoreConfig::default(),
            provisioning: ProvisioningConfig::default(),
            events: EventsConfig::default(),
            cache: CacheConfig::default(),
            routing: RoutingConfig::default(),
            headers: HeaderNamesConfig::default(),
            limits: LimitsConfig::default(),
            data_path: DataPathConfig::default(),
            upstream: UpstreamConfig::default(),
            pools: BTreeMap::new(),
            plans: BTreeMap::new(),
            tenants: Vec::new(),
            shutdown: ShutdownConfig::default(),
            log: LogConfig::default(),
            metrics: MetricsConfig::default(),
            usage: UsageConfig::default(),
            tls: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShutdownConfig {
    /// How long in-flight requests may finish after SIGTERM/SIGINT.
    #[serde(with = "humantime_serde")]
    pub drain_timeout: Duration,
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        ShutdownConfig {
            drain_timeout: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A tracing filter, e.g. `info` or `info,tenant_gateway=debug`.
    pub level: String,
    /// One line per data-path request (target `access`).
    pub access_log: bool,
}

impl LogConfig {
    /// The tracing filter `level` describes: `serve` installs it, and
    /// validation parses it the same way so `check-config` refuses what
    /// `serve` would.
    pub fn filter(&self) -> Result<EnvFilter, ConfigError> {
        EnvFilter::try_new(&self.level).map_err(|e| {
            ConfigError::new(
                "log.level",
                format!("'{}' is not a valid filter: {e}", self.level),
            )
        })
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Text,
            level: "info".into(),
            access_log: true,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Count requests per tenant (bounded by `max_tenant_series`).
    pub per_tenant: bool,
    /// Tenants beyond this many share the series `tenant="_other"`.
    pub max_tenant_series: usize,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            per_tenant: false,
            max_tenant_series: 100,
        }
    }
}

/// Command-line values that override the file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub listen: Option<SocketAddr>,
    pub admin_listen: Option<SocketAddr>,
    pub data: Option<PathBuf>,
    /// `sqlite:PATH` or `postgres://…`; wins over `data`.
    pub store: Option<String>,
    pub store_layout: Option<StoreLayout>,
    pub migrations: Option<PathBuf>,
    pub content: Option<PathBuf>,
    pub default_backends: Vec<String>,
    pub workers: Option<usize>,
}

impl Config {
    /// Parses YAML; an empty document gives the defaults.
    pub fn from_yaml(text: &str) -> Result<Config, ConfigErrors> {
        if text.trim().is_empty() {
            return Ok(Config::default());
        }
        let deserializer = serde_yaml_ng::Deserializer::from_str(text);
        serde_path_to_error::deserialize(deserializer).map_err(|err| {
            let key = err.path().to_string();
            let key = if key == "." {
                "(top level)".to_string()
            } else {
                key
            };
            let message = err.into_inner().to_string();
            // serde_yaml_ng starts its message with the key (or, for an
            // error inside a map read by a visitor, the map's key): say it once.
            let message = match message.split_once(": ") {
                Some((path, rest)) if key.starts_with(path) => rest.to_owned(),
                _ => message,
            };
            ConfigErrors(vec![ConfigError::new(key, message)])
        })
    }

    /// Reads, parses and checks a config file, then applies overrides and the
    /// token from the environment.
    pub fn load(path: Option<&Path>, overrides: &Overrides) -> Result<Config, ConfigErrors> {
        let mut config = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    ConfigErrors(vec![ConfigError::new(
                        "(file)",
                        format!("cannot read {}: {e}", path.display()),
                    )])
                })?;
                Config::from_yaml(&text)?
            }
            None => Config::default(),
        };
        config.apply(overrides);
        if config.admin.token.is_none() {
            config.admin.token = std::env::var(ADMIN_TOKEN_ENV)
                .ok()
                .filter(|t| !t.is_empty());
        }
        config.validate()?;
        Ok(config)
    }

    pub fn apply(&mut self, overrides: &Overrides) {
        if let Some(listen) = overrides.listen {
            self.listen = listen;
        }
        if let Some(admin) = overrides.admin_listen {
            self.admin.listen = admin;
        }
        if let Some(data) = &overrides.data {
            self.store.path = data.clone();
        }
        if let Some(store) = &overrides.store {
            match store.strip_prefix("sqlite:") {
                Some(path) => {
                    self.store.kind = StoreKind::Sqlite;
                    self.store.path = PathBuf::from(path);
                }
                None => {
                    self.store.kind = StoreKind::Postgres;
                    self.store.url = Some(store.clone());
                }
            }
        }
        if let Some(layout) = overrides.store_layout {
            self.store.layout = layout;
        }
        if let Some(dir) = &overrides.migrations {
            self.provisioning.migrations = Some(dir.clone());
        }
        if let Some(file) = &overrides.content {
            self.provisioning.content = Some(file.clone());
        }
        if !overrides.default_backends.is_empty() {
            self.pools.entry("default".into()).or_default().backends = overrides
                .default_backends
                .iter()
                .cloned()
                .map(BackendConfig::Url)
                .collect();
        }
        if let Some(workers) = overrides.workers {
            self.workers = workers;
        }
    }

    /// Plan name → pool name, for the plans that name a pool.
    pub fn plan_pools(&self) -> BTreeMap<String, String> {
        self.plans
            .iter()
            .filter_map(|(plan, config)| Some((plan.clone(), config.pool.clone()?)))
            .collect()
    }

    /// Worker threads for the data path, resolving 0 to the number of cores.
    pub fn worker_threads(&self) -> usize {
        match self.workers {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        }
    }

    /// The rules static tenants, the CLI and imports are validated with.
    pub fn spec_rules(&self) -> SpecRules {
        SpecRules {
            strip_www: self.routing.strip_www,
            pools: self.pools.keys().cloned().collect(),
            clusters: self.provisioning.cluster_names(),
        }
    }

    /// What may be a mistake but is no reason to refuse the config (e.g. a
    /// Unix socket not there yet): logged as warnings.
    pub fn warnings(&self) -> Vec<ConfigError> {
        validate::warnings(self)
    }

    /// Checks every rule and returns all problems at once.
    pub fn validate(&self) -> Result<(), ConfigErrors> {
        let problems = validate::problems(self);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigErrors(problems))
        }
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::Config;

    /// The keys a YAML config's problems name (parse or validation), in order.
    pub(crate) fn problem_keys(yaml: &str) -> Vec<String> {
        match Config::from_yaml(yaml).and_then(|c| c.validate().map(|_| c)) {
            Ok(_) => vec![],
            Err(errors) => errors.0.into_iter().map(|e| e.key).collect(),
        }
    }
}
