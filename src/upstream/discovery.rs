//! DNS discovery: backends named by a DNS name (`http://app.internal:8000`)
//! become one backend per A/AAAA address. This module resolves the names
//! (the system's way, `/etc/hosts` then `resolv.conf`, or through
//! `upstream.nameservers`) and keeps each name's last good answer: a failed
//! or empty lookup keeps the addresses it had, so a DNS outage never empties
//! a pool. The re-resolve loop itself lives with the reloader, which
//! rebuilds the pools when an answer changes.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::TokioResolver;

use crate::config::{BackendAddr, PoolConfig};
use crate::metrics::Metrics;

/// How names are resolved.
#[derive(Clone)]
pub enum Resolver {
    /// `getaddrinfo`: what every other program on the host sees.
    System,
    /// These DNS servers (`upstream.nameservers`), after `/etc/hosts`.
    Servers(Arc<TokioResolver>),
}

/// A DNS name used by the pools: how often to resolve it, and which
/// configured backends (`pool`, URL) use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameUse {
    pub interval: Duration,
    pub users: Vec<(String, String)>,
}

/// The last good addresses of each name (sorted, never empty).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolved(BTreeMap<String, Arc<[IpAddr]>>);

impl Resolved {
    /// The addresses of `name`; none if it never resolved.
    pub fn get(&self, name: &str) -> &[IpAddr] {
        self.0.get(name).map_or(&[], |a| a)
    }

    /// Records an answer; returns whether the addresses changed. An error
    /// or empty answer keeps what the name had, and is counted.
    pub fn record(
        &mut self,
        name: &str,
        answer: Result<Vec<IpAddr>, String>,
        uses: &NameUse,
        metrics: &Metrics,
    ) -> bool {
        let answer = answer.and_then(|mut addrs| {
            addrs.sort();
            addrs.dedup();
            if addrs.is_empty() {
                Err("no address".to_owned())
            } else {
                Ok(addrs)
            }
        });
        match answer {
            Ok(addrs) => {
                if self.0.get(name).is_some_and(|old| **old == *addrs) {
                    return false;
                }
                tracing::info!(%name, addresses = ?addrs, "backend name resolved to new addresses");
                self.0.insert(name.to_owned(), addrs.into());
                true
            }
            Err(error) => {
                let kept = self.get(name).len();
                tracing::warn!(%name, %error, kept, "cannot resolve a backend name: keeping its last addresses");
                for (pool, url) in &uses.users {
                    metrics
                        .backends
                        .resolve_failures
                        .with_label_values(&[pool, url])
                        .inc();
                }
                false
            }
        }
    }

    /// Drops names no longer used.
    pub fn retain(&mut self, names: &BTreeMap<String, NameUse>) {
        self.0.retain(|name, _| names.contains_key(name));
    }
}

/// Every DNS name of `pools`, resolved as often as the most eager pool
/// naming it asks.
pub fn names(pools: &BTreeMap<String, PoolConfig>) -> BTreeMap<String, NameUse> {
    let mut names: BTreeMap<String, NameUse> = BTreeMap::new();
    for (pool_name, pool) in pools {
        for backend in &pool.backends {
            let Ok(addr) = BackendAddr::parse(backend.url()) else {
                continue;
            };
            let Some(name) = addr.dns_name() else {
                continue;
            };
            let entry = names.entry(name.to_owned()).or_insert(NameUse {
                interval: pool.resolve_interval,
                users: Vec::new(),
            });
            entry.interval = entry.interval.min(pool.resolve_interval);
            entry
                .users
                .push((pool_name.clone(), backend.url().to_owned()));
        }
    }
    names
}

impl Resolver {
    pub fn new(nameservers: &[SocketAddr]) -> Resolver {
        if nameservers.is_empty() {
            return Resolver::System;
        }
        let servers = nameservers
            .iter()
            .map(|server| {
                let mut config = NameServerConfig::udp_and_tcp(server.ip());
                for connection in &mut config.connections {
                    connection.port = server.port();
                }
                config
            })
            .collect();
        let mut builder = TokioResolver::builder_with_config(
            ResolverConfig::from_name_servers(servers),
            TokioRuntimeProvider::default(),
        );
        let options = builder.options_mut();
        options.use_hosts_file = ResolveHosts::Always;
        options.ip_strategy = hickory_resolver::config::LookupIpStrategy::Ipv4AndIpv6;
        // Every lookup asks the servers: we re-resolve on our own interval.
        options.positive_max_ttl = Some(Duration::ZERO);
        options.negative_max_ttl = Some(Duration::ZERO);
        options.timeout = Duration::from_secs(2);
        options.attempts = 2;
        match builder.build() {
            Ok(resolver) => Resolver::Servers(Arc::new(resolver)),
            Err(error) => {
                tracing::error!(%error, "cannot use upstream.nameservers; resolving the system's way");
                Resolver::System
            }
        }
    }

    /// Every address of `name` (possibly none).
    pub async fn lookup(&self, name: &str) -> Result<Vec<IpAddr>, String> {
        match self {
            Resolver::System => tokio::net::lookup_host((name, 0))
                .await
                .map(|addrs| addrs.map(|a| a.ip()).collect())
                .map_err(|e| e.to_string()),
            Resolver::Servers(resolver) => {
                // A final dot: the name is absolute, no search domains.
                let fqdn = format!("{name}.");
                resolver
                    .lookup_ip(fqdn.as_str())
                    .await
                    .map(|found| found.iter().collect())
                    .map_err(|e| e.to_string())
            }
        }
    }
}

/// Resolves every name of `names` not yet in `resolved` (at start and on
/// reload: a name already known keeps its addresses until its next turn).
pub async fn resolve_new(
    resolver: &Resolver,
    names: &BTreeMap<String, NameUse>,
    resolved: &mut Resolved,
    metrics: &Metrics,
) {
    resolved.retain(names);
    let mut lookups = tokio::task::JoinSet::new();
    for name in names.keys().filter(|n| resolved.get(n).is_empty()) {
        let (resolver, name) = (resolver.clone(), name.clone());
        lookups.spawn(async move {
            let answer = resolver.lookup(&name).await;
            (name, answer)
        });
    }
    while let Some(Ok((name, answer))) = lookups.join_next().await {
        resolved.record(&name, answer, &names[&name], metrics);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BackendConfig;

    #[test]
    fn names_take_the_shortest_interval_of_their_pools() {
        let pool = |urls: &[&str], secs| PoolConfig {
            backends: urls
                .iter()
                .map(|u| BackendConfig::Url(u.to_string()))
                .collect(),
            resolve_interval: Duration::from_secs(secs),
            ..PoolConfig::default()
        };
        let pools = BTreeMap::from([
            (
                "a".to_string(),
                pool(&["http://app.test:80", "http://10.0.0.1:80"], 5),
            ),
            (
                "b".to_string(),
                pool(&["https://app.test:443", "unix:/run/a.sock"], 2),
            ),
        ]);
        let names = names(&pools);
        assert_eq!(names.len(), 1);
        assert_eq!(names["app.test"].interval, Duration::from_secs(2));
        assert_eq!(names["app.test"].users.len(), 2);
    }

    #[test]
    fn a_failed_or_empty_answer_keeps_the_last_addresses() {
        let metrics = Metrics::new(false, 0);
        let uses = NameUse {
            interval: Duration::from_secs(5),
            users: vec![("default".into(), "http://app.test:80".into())],
        };
        let mut resolved = Resolved::default();
        let one: IpAddr = "127.0.0.2".parse().unwrap();
        assert!(resolved.record("app.test", Ok(vec![one, one]), &uses, &metrics));
        assert!(!resolved.record("app.test", Ok(vec![one]), &uses, &metrics));
        assert!(!resolved.record("app.test", Err("timeout".into()), &uses, &metrics));
        assert!(!resolved.record("app.test", Ok(vec![]), &uses, &metrics));
        assert_eq!(resolved.get("app.test"), &[one]);
        let failures = metrics
            .backends
            .resolve_failures
            .with_label_values(&["default", "http://app.test:80"]);
        assert_eq!(failures.get(), 2);
    }

    #[tokio::test]
    async fn the_system_resolver_reads_etc_hosts() {
        let found = Resolver::System.lookup("localhost").await.unwrap();
        assert!(found.iter().any(|ip| ip.is_loopback()));
    }
}
