//! Pick-backend and forward phases: named pools of backends, round-robin
//! choice within a pool, and the pooled keep-alive client that sends the
//! prepared request and streams the answer back.

mod forward;

pub use forward::{Forwarder, UpstreamError};

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};

use http::uri::{Authority, Scheme};

use crate::config::PoolConfig;

/// Pool used by tenants that name none.
pub const DEFAULT_POOL: &str = "default";

/// A backend's base address (`http://host:port`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendAddr {
    pub scheme: Scheme,
    pub authority: Authority,
}

impl BackendAddr {
    /// Accepts `http://host:port` (a trailing `/` is fine; paths are not).
    pub fn parse(url: &str) -> Result<BackendAddr, String> {
        let uri: http::Uri = url
            .parse()
            .map_err(|e| format!("'{url}' is not a URL: {e}"))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some(other) => {
                return Err(format!(
                    "'{url}': scheme {other} is not supported, use http://"
                ))
            }
            None => return Err(format!("'{url}' needs a scheme, e.g. http://{url}")),
        }
        let authority = uri
            .authority()
            .cloned()
            .ok_or_else(|| format!("'{url}' has no host"))?;
        if authority.port_u16().is_none() {
            return Err(format!("'{url}' needs an explicit port"));
        }
        if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
            return Err(format!("'{url}': backend URLs take no path or query"));
        }
        Ok(BackendAddr {
            scheme: Scheme::HTTP,
            authority,
        })
    }
}

impl std::fmt::Display for BackendAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}", self.scheme, self.authority)
    }
}

/// A named set of interchangeable backends.
#[derive(Debug)]
pub struct Pool {
    pub name: String,
    pub backends: Vec<BackendAddr>,
    next: AtomicUsize,
}

impl Pool {
    /// Round robin; `None` for an empty pool.
    pub fn pick(&self) -> Option<&BackendAddr> {
        if self.backends.is_empty() {
            return None;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.backends.len();
        self.backends.get(i)
    }
}

/// All pools by name.
#[derive(Debug, Default)]
pub struct Pools {
    pools: HashMap<String, Pool>,
}

impl Pools {
    /// Builds pools from validated config (invalid URLs were refused by validation).
    pub fn from_config(config: &BTreeMap<String, PoolConfig>) -> Pools {
        let pools = config
            .iter()
            .map(|(name, pool)| {
                let backends = pool
                    .backends
                    .iter()
                    .filter_map(|u| BackendAddr::parse(u).ok())
                    .collect();
                (
                    name.clone(),
                    Pool {
                        name: name.clone(),
                        backends,
                        next: AtomicUsize::new(0),
                    },
                )
            })
            .collect();
        Pools { pools }
    }

    /// The pool a tenant uses: its own, or `default`.
    pub fn get(&self, name: Option<&str>) -> Option<&Pool> {
        self.pools.get(name.unwrap_or(DEFAULT_POOL))
    }

    pub fn contains(&self, name: &str) -> bool {
        self.pools.contains_key(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.pools.keys().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_urls_are_checked() {
        assert!(BackendAddr::parse("http://127.0.0.1:8000").is_ok());
        assert!(BackendAddr::parse("http://app:8000/").is_ok());
        assert!(BackendAddr::parse("127.0.0.1:8000")
            .unwrap_err()
            .contains("scheme"));
        assert!(BackendAddr::parse("http://app")
            .unwrap_err()
            .contains("port"));
        assert!(BackendAddr::parse("http://app:80/x")
            .unwrap_err()
            .contains("path"));
        assert!(BackendAddr::parse("ftp://app:21")
            .unwrap_err()
            .contains("not supported"));
    }

    #[test]
    fn round_robin_visits_every_backend() {
        let mut config = BTreeMap::new();
        config.insert(
            "default".to_string(),
            PoolConfig {
                backends: vec!["http://a:1".into(), "http://b:2".into()],
            },
        );
        let pools = Pools::from_config(&config);
        let pool = pools.get(None).unwrap();
        let picks: Vec<String> = (0..4).map(|_| pool.pick().unwrap().to_string()).collect();
        assert_eq!(
            picks,
            ["http://a:1", "http://b:2", "http://a:1", "http://b:2"]
        );
    }
}
