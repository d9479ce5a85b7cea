//! Backend pools: their backends, balancing, health checks, outlier
//! detection, retries and timeouts, plus the upstream connection defaults.

use serde::{Deserialize, Deserializer};
use std::net::SocketAddr;
use std::time::Duration;

use super::BackendTlsConfig;

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
    /// DNS servers for backends named by a DNS name (`host:port` each);
    /// empty means the system's way: `/etc/hosts`, then `resolv.conf`.
    pub nameservers: Vec<SocketAddr>,
}

impl Default for UpstreamConfig {
    fn default() -> Self {
        UpstreamConfig {
            connect_timeout: Duration::from_secs(3),
            response_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(90),
            max_idle_per_backend: 512,
            nameservers: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolConfig {
    /// Backends: `http://host:port`, `https://host:port`, `unix:/path`, or
    /// `{url: ..., weight: 3}`.
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
    /// How `https://` backends are verified (and present themselves).
    pub tls: Option<BackendTlsConfig>,
    /// How often backends named by a DNS name are resolved again.
    #[serde(with = "humantime_serde", default = "default_resolve_interval")]
    pub resolve_interval: Duration,
}

fn default_resolve_interval() -> Duration {
    Duration::from_secs(5)
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            backends: Vec::new(),
            balance: Balance::default(),
            health_check: None,
            outlier: OutlierConfig::default(),
            retries: RetryConfig::default(),
            timeouts: PoolTimeouts::default(),
            tls: None,
            resolve_interval: default_resolve_interval(),
        }
    }
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
