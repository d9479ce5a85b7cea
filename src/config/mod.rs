//! The gateway's configuration, typed once: serde structs with their defaults,
//! loading from YAML with the failing key named, and command-line overrides.
//! Everything else takes these typed values, never raw YAML.

mod tls;
mod validate;

pub use tls::{AcmeConfig, CertificateFiles, TlsConfig};

use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::tenant::spec::TenantSpec;

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
    pub cache: CacheConfig,
    pub routing: RoutingConfig,
    pub headers: HeaderNamesConfig,
    pub limits: LimitsConfig,
    pub upstream: UpstreamConfig,
    /// Named backend pools; tenants without a pool use `default`.
    pub pools: BTreeMap<String, PoolConfig>,
    /// Tenants registered at start (created when missing).
    pub tenants: Vec<TenantSpec>,
    pub shutdown: ShutdownConfig,
    pub log: LogConfig,
    pub metrics: MetricsConfig,
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
            cache: CacheConfig::default(),
            routing: RoutingConfig::default(),
            headers: HeaderNamesConfig::default(),
            limits: LimitsConfig::default(),
            upstream: UpstreamConfig::default(),
            pools: BTreeMap::new(),
            tenants: Vec::new(),
            shutdown: ShutdownConfig::default(),
            log: LogConfig::default(),
            metrics: MetricsConfig::default(),
            tls: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    pub listen: SocketAddr,
    /// Bearer token; falls back to `TENANT_GATEWAY_ADMIN_TOKEN`.
    pub token: Option<String>,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 9090)),
            token: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// The embedded single-file store.
    #[default]
    Sqlite,
    /// A PostgreSQL database (`url`), which also enables provisioning.
    Postgres,
}

/// Which tables a PostgreSQL store reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum StoreLayout {
    /// The gateway's own tables, created on start.
    #[default]
    Native,
    /// An existing django-tenants deployment's client and domain tables.
    DjangoTenants,
}

impl std::str::FromStr for StoreLayout {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "native" => Ok(StoreLayout::Native),
            "django-tenants" => Ok(StoreLayout::DjangoTenants),
            _ => Err(format!(
                "invalid store layout '{s}': valid options are native, django-tenants"
            )),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    pub kind: StoreKind,
    /// The embedded store's file.
    pub path: PathBuf,
    /// PostgreSQL connection URL (`postgres://user@host:port/db`).
    pub url: Option<String>,
    /// Connections kept by the PostgreSQL pool.
    pub pool_size: u32,
    /// How long to wait for a pooled connection before answering "unavailable".
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Server-side limit on any one registry statement.
    #[serde(with = "humantime_serde")]
    pub statement_timeout: Duration,
    pub layout: StoreLayout,
    pub django: DjangoLayoutConfig,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            kind: StoreKind::Sqlite,
            path: PathBuf::from("./tenant-gateway.db"),
            url: None,
            pool_size: 16,
            connect_timeout: Duration::from_secs(3),
            statement_timeout: Duration::from_secs(5),
            layout: StoreLayout::Native,
            django: DjangoLayoutConfig::default(),
        }
    }
}

/// Table and column names of a django-tenants deployment.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DjangoLayoutConfig {
    pub tenant_table: String,
    pub domain_table: String,
    /// The tenant column sent to the app as the tenant id.
    pub tenant_id_column: String,
    /// A tenant column holding the display name (written on create).
    pub name_column: Option<String>,
}

impl Default for DjangoLayoutConfig {
    fn default() -> Self {
        DjangoLayoutConfig {
            tenant_table: "customers_client".into(),
            domain_table: "customers_domain".into(),
            tenant_id_column: "schema_name".into(),
            name_column: None,
        }
    }
}

/// How new tenants get their place in the database (PostgreSQL store only).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProvisioningConfig {
    /// Directory of ordered `NNNN_name.sql` migrations (schema and database isolation).
    pub migrations: Option<PathBuf>,
    /// SQL template loaded after the migrations (schema and database isolation).
    pub content: Option<PathBuf>,
    /// SQL template loaded for table isolation (shared tables, tenant id bound).
    pub table_content: Option<PathBuf>,
    /// Server-side limit on each provisioning statement.
    #[serde(with = "humantime_serde")]
    pub statement_timeout: Duration,
    /// How many tenants `POST /v1/migrate` and `tenants migrate-all` migrate at once.
    pub migrate_parallel: usize,
    /// A schema kept fully migrated; new schema tenants are cloned from it
    /// instead of replaying the migrations (the fast path).
    pub template_schema: Option<String>,
}

impl Default for ProvisioningConfig {
    fn default() -> Self {
        ProvisioningConfig {
            migrations: None,
            content: None,
            table_content: None,
            statement_timeout: Duration::from_secs(120),
            migrate_parallel: 4,
            template_schema: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    /// How long a known host stays cached.
    #[serde(with = "humantime_serde")]
    pub ttl: Duration,
    /// How long an unknown host stays cached, so junk hosts can't hammer the store.
    #[serde(with = "humantime_serde")]
    pub negative_ttl: Duration,
    pub max_entries: u64,
    /// Load the whole domain table into the cache at start, so the first
    /// requests are hits (stores that cannot page load on demand instead).
    pub warm: bool,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            ttl: Duration::from_secs(300),
            negative_ttl: Duration::from_secs(5),
            max_entries: 2_000_000,
            warm: true,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum UnknownHostAction {
    /// `404 no tenant for hostname <host>`.
    #[default]
    NotFound,
    /// Route to the public tenant (schema `public`).
    Public,
    /// Redirect to `redirect_to`.
    Redirect,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct UnknownHostConfig {
    pub action: UnknownHostAction,
    /// Target of the `redirect` action (absolute http or https URL).
    pub redirect_to: Option<String>,
    /// Pool of the public tenant; `default` when absent.
    pub public_pool: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RoutingConfig {
    /// Drop one leading `www.` from hosts (and from registered domains).
    pub strip_www: bool,
    pub unknown_host: UnknownHostConfig,
    /// Status answered for a suspended tenant.
    pub suspended_status: u16,
}

impl Default for RoutingConfig {
    fn default() -> Self {
        RoutingConfig {
            strip_www: true,
            unknown_host: UnknownHostConfig::default(),
            suspended_status: 403,
        }
    }
}

/// Names of the headers the gateway injects (and always strips from clients).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HeaderNamesConfig {
    pub tenant_id: String,
    pub schema: String,
    pub database: String,
    pub cache_prefix: String,
    pub request_id: String,
}

impl Default for HeaderNamesConfig {
    fn default() -> Self {
        HeaderNamesConfig {
            tenant_id: "X-Tenant-ID".into(),
            schema: "X-Tenant-Schema".into(),
            database: "X-Tenant-Database".into(),
            cache_prefix: "X-Tenant-Cache-Prefix".into(),
            request_id: "X-Request-ID".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Largest request body forwarded (bytes, or "10MiB"); larger gets 413.
    #[serde(deserialize_with = "byte_size")]
    pub max_request_body: u64,
    /// A client must send its request headers within this time.
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_request_body: 10 * 1024 * 1024,
            header_read_timeout: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UpstreamConfig {
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Time allowed for a backend's response headers; 504 after it.
    #[serde(with = "humantime_serde")]
    pub response_timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    pub max_idle_per_backend: usize,
}

impl Default for UpstreamConfig {
    fn default() -> Self {
        UpstreamConfig {
            connect_timeout: Duration::from_secs(3),
            response_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(90),
            max_idle_per_backend: 512,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct PoolConfig {
    /// Backends: `http://host:port`, or `{url: http://host:port, weight: 3}`.
    pub backends: Vec<BackendConfig>,
    #[serde(default)]
    pub balance: Balance,
    /// Active HTTP checks; none unless configured.
    pub health_check: Option<HealthCheckConfig>,
    #[serde(default)]
    pub outlier: OutlierConfig,
    #[serde(default)]
    pub retries: RetryConfig,
    /// Per-pool overrides of `upstream.connect_timeout` / `response_timeout`,
    /// and a `total` deadline for all attempts together.
    #[serde(default)]
    pub timeouts: PoolTimeouts,
}

#[derive(Debug, Clone)]
pub enum BackendConfig {
    Url(String),
    Weighted { url: String, weight: u32 },
}

/// A URL string, or a map `{url, weight}` whose unknown keys are named.
impl<'de> Deserialize<'de> for BackendConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Weighted {
            url: String,
            #[serde(default = "one")]
            weight: u32,
        }
        fn one() -> u32 {
            1
        }
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = BackendConfig;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a backend URL like http://127.0.0.1:8000, or {url, weight}")
            }
            fn visit_str<E: serde::de::Error>(self, url: &str) -> Result<BackendConfig, E> {
                Ok(BackendConfig::Url(url.to_owned()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<BackendConfig, A::Error> {
                let w = Weighted::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(BackendConfig::Weighted {
                    url: w.url,
                    weight: w.weight,
                })
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

impl BackendConfig {
    pub fn url(&self) -> &str {
        match self {
            BackendConfig::Url(url) | BackendConfig::Weighted { url, .. } => url,
        }
    }

    pub fn weight(&self) -> u32 {
        match self {
            BackendConfig::Url(_) => 1,
            BackendConfig::Weighted { weight, .. } => *weight,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Balance {
    /// Weighted round robin.
    #[default]
    RoundRobin,
    /// The backend with the fewest in-flight requests (per weight).
    LeastRequests,
    /// Consistent hashing on the tenant id, with bounded load.
    TenantAffinity,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HealthCheckConfig {
    pub path: String,
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Consecutive passes that put a backend back.
    pub healthy_threshold: u32,
    /// Consecutive failures that take a backend out.
    pub unhealthy_threshold: u32,
}

impl Default for HealthCheckConfig {
    fn default() -> Self {
        HealthCheckConfig {
            path: "/healthz".into(),
            interval: Duration::from_secs(2),
            timeout: Duration::from_secs(1),
            healthy_threshold: 2,
            unhealthy_threshold: 2,
        }
    }
}

/// Passive outlier detection: consecutive connect errors or 5xx eject a
/// backend for a while (never the pool's last available one).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutlierConfig {
    /// 0 turns passive ejection off.
    pub consecutive_failures: u32,
    #[serde(with = "humantime_serde")]
    pub ejection: Duration,
}

impl Default for OutlierConfig {
    fn default() -> Self {
        OutlierConfig {
            consecutive_failures: 5,
            ejection: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    /// Further attempts on another backend after a connect failure (or, for
    /// idempotent bodiless requests, a reset before any response).
    pub attempts: u32,
    /// Retries may add at most this share of the pool's requests.
    pub budget_percent: u32,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            attempts: 2,
            budget_percent: 20,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PoolTimeouts {
    #[serde(with = "humantime_serde")]
    pub connect: Option<Duration>,
    #[serde(with = "humantime_serde")]
    pub response_header: Option<Duration>,
    #[serde(with = "humantime_serde")]
    pub total: Option<Duration>,
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
            ConfigErrors(vec![ConfigError::new(key, err.into_inner().to_string())])
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

    /// Worker threads for the data path, resolving 0 to the number of cores.
    pub fn worker_threads(&self) -> usize {
        match self.workers {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        }
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

/// Accepts `1048576`, `"512KiB"`, `"10MiB"`, `"1GB"`.
fn byte_size<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Number(u64),
        Text(String),
    }
    match Raw::deserialize(deserializer)? {
        Raw::Number(n) => Ok(n),
        Raw::Text(text) => parse_byte_size(&text).map_err(serde::de::Error::custom),
    }
}

pub fn parse_byte_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let value: u64 = digits
        .parse()
        .map_err(|_| format!("'{text}' is not a size like 10MiB"))?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "kib" | "k" => 1 << 10,
        "mb" => 1_000_000,
        "mib" | "m" => 1 << 20,
        "gb" => 1_000_000_000,
        "gib" | "g" => 1 << 30,
        other => {
            return Err(format!(
                "unknown size unit '{other}' (use B, KiB, MiB, GiB, KB, MB, GB)"
            ))
        }
    };
    value
        .checked_mul(factor)
        .ok_or_else(|| format!("'{text}' is too large"))
}
