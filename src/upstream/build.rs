//! Building one pool from its config: a backend per configured address (per
//! resolved address for a DNS name), health carried over from the pool it
//! replaces, the pool's connector (with its TLS settings) and one keep-alive
//! client per data-path worker.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::AtomicI64;
use std::sync::Arc;

use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls::pki_types::ServerName;

use super::balance::Balancer;
use super::connect::{Connector, PoolConnector, Target};
use super::{
    now_ms, Backend, BackendAddr, Pool, Pools, Resolved, RetryBudget, UpstreamClient,
    RETRY_BURST_MILLI,
};
use crate::config::{NetHost, PoolConfig, UpstreamConfig};
use crate::metrics::Metrics;

/// One pool of `config`; backends also in `previous` keep their health. A
/// DNS name gives one backend per address in `resolved`.
pub(super) fn build_pool(
    name: &str,
    pool: &PoolConfig,
    upstream: &UpstreamConfig,
    workers: usize,
    metrics: &Metrics,
    previous: Option<&Pools>,
    resolved: &Resolved,
) -> Pool {
    let old_pool = previous.and_then(|p| p.get(Some(name)));
    let mut keys = HashSet::new();
    let mut backends: Vec<Arc<Backend>> = Vec::new();
    for configured in &pool.backends {
        let Ok(addr) = BackendAddr::parse(configured.url()) else {
            continue;
        };
        for target in targets(&addr, pool, resolved) {
            let backend = Backend::new(name, addr.clone(), target, configured.weight(), metrics);
            if !keys.insert(backend.key.clone()) {
                tracing::warn!(pool = %name, backend = %backend.name, "backend listed twice in the pool: using it once");
                continue;
            }
            match old_pool.and_then(|p| p.backends.iter().find(|o| o.name == backend.name)) {
                Some(old) => {
                    backend.inherit(old);
                    // Checks turned off: no first check will ever let it in.
                    if pool.health_check.is_none() && backend.checked() {
                        backend.set_healthy(true);
                    }
                }
                // A new address of a name waits for its first health check.
                None if old_pool.is_some()
                    && pool.health_check.is_some()
                    && addr.dns_name().is_some() =>
                {
                    backend.hold_until_checked();
                }
                None => {}
            }
            backends.push(Arc::new(backend));
        }
    }
    // Unless nothing else could take the traffic: an unchecked backend
    // beats a certain 503.
    let now = now_ms();
    if !backends.iter().any(|b| b.is_available(now)) {
        for backend in backends.iter().filter(|b| b.is_pending()) {
            backend.checked();
            backend.set_healthy(true);
        }
    }
    let tls = pool
        .backends
        .iter()
        .any(|b| BackendAddr::parse(b.url()).is_ok_and(|a| a.is_tls()))
        .then(|| {
            super::tls::client_config(pool.tls.as_ref()).inspect_err(|error| {
                tracing::error!(pool = %name, %error, "TLS settings unusable: https backends of the pool fail");
            })
        });
    let connect_timeout = pool.timeouts.connect.unwrap_or(upstream.connect_timeout);
    let connector = Connector::new(connect_timeout, tls);
    let table: Arc<[Arc<Backend>]> = backends.iter().cloned().collect();
    let clients = (0..workers.max(1))
        .map(|_| {
            new_client(
                upstream,
                PoolConnector::new(connector.clone(), table.clone()),
            )
        })
        .collect();
    Pool {
        name: name.to_owned(),
        balancer: Balancer::new(pool.balance, &backends),
        backends,
        retries: pool.retries.attempts,
        budget: RetryBudget {
            milli_tokens: AtomicI64::new(RETRY_BURST_MILLI),
            deposit: i64::from(pool.retries.budget_percent) * 10,
        },
        outlier: pool.outlier.clone(),
        response_timeout: pool
            .timeouts
            .response_header
            .unwrap_or(upstream.response_timeout),
        total_timeout: pool.timeouts.total,
        h2: pool.tls.as_ref().is_some_and(|tls| tls.h2),
        max_idle: upstream.max_idle_per_backend,
        idle_timeout: upstream.idle_timeout,
        health_check: pool.health_check.clone(),
        connector,
        clients,
        retries_total: metrics.backends.retries.with_label_values(&[name]),
    }
}

/// Where the connections of a configured backend go: its socket, its IP, or
/// each address its name resolved to (none before a first answer).
fn targets(addr: &BackendAddr, pool: &PoolConfig, resolved: &Resolved) -> Vec<Target> {
    let (tls, host, port) = match addr {
        BackendAddr::Unix(path) => return vec![Target::Unix(path.clone())],
        BackendAddr::Net { tls, host, port } => (*tls, host, *port),
    };
    let ips = match host {
        NetHost::Ip(ip) => vec![*ip],
        NetHost::Name(name) => resolved.get(name).to_vec(),
    };
    let server_name = tls.then(|| {
        let configured = pool.tls.as_ref().and_then(|t| t.server_name.clone());
        let name = match (configured, host) {
            (Some(name), _) => name,
            (None, NetHost::Ip(ip)) => ip.to_string(),
            (None, NetHost::Name(name)) => name.clone(),
        };
        // Checked with the config (a DNS name, or an IP address).
        ServerName::try_from(name)
            .unwrap_or_else(|_| ServerName::from(std::net::IpAddr::from([0, 0, 0, 0])))
    });
    ips.into_iter()
        .map(|ip| {
            let addr = SocketAddr::new(ip, port);
            match &server_name {
                Some(server_name) => Target::Tls {
                    addr,
                    server_name: server_name.clone(),
                },
                None => Target::Tcp(addr),
            }
        })
        .collect()
}

fn new_client(config: &UpstreamConfig, connector: PoolConnector) -> UpstreamClient {
    Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(config.idle_timeout)
        .pool_max_idle_per_host(config.max_idle_per_backend)
        .build(connector)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::*;
    use crate::config::{BackendConfig, HealthCheckConfig};
    use crate::upstream::discovery::NameUse;

    fn resolved(ips: &[&str], metrics: &Metrics) -> Resolved {
        let mut resolved = Resolved::default();
        let uses = NameUse {
            interval: Duration::from_secs(5),
            users: Vec::new(),
        };
        let ips = ips.iter().map(|ip| ip.parse().unwrap()).collect();
        resolved.record("app.test", Ok(ips), &uses, metrics);
        resolved
    }

    fn build(checks: bool, resolved: &Resolved, previous: Option<&Pools>, m: &Metrics) -> Pools {
        let pool = PoolConfig {
            backends: vec![
                BackendConfig::Weighted {
                    url: "http://app.test:8000".into(),
                    weight: 3,
                },
                BackendConfig::Url("unix:/run/app.sock".into()),
            ],
            health_check: checks.then(HealthCheckConfig::default),
            ..PoolConfig::default()
        };
        let config = BTreeMap::from([("default".to_string(), pool)]);
        let upstream = UpstreamConfig::default();
        Pools::build(
            &config,
            &BTreeMap::new(),
            &upstream,
            1,
            m,
            previous,
            resolved,
        )
    }

    fn names(pools: &Pools) -> Vec<(String, u32, bool)> {
        let now = now_ms();
        let pool = pools.get(None).unwrap();
        pool.backends
            .iter()
            .map(|b| (b.name.clone(), b.weight, b.is_available(now)))
            .collect()
    }

    #[test]
    fn a_dns_name_gives_a_backend_per_address_with_its_weight() {
        let m = Metrics::new(false, 0);
        let pools = build(false, &resolved(&["10.0.0.2", "10.0.0.1"], &m), None, &m);
        assert_eq!(
            names(&pools),
            [
                ("http://app.test:8000#10.0.0.1".to_string(), 3, true),
                ("http://app.test:8000#10.0.0.2".to_string(), 3, true),
                ("unix:/run/app.sock".to_string(), 1, true),
            ]
        );
        let pool = pools.get(None).unwrap();
        assert_eq!(pool.backends[0].key.as_str(), "10.0.0.1:8000");
        assert_eq!(
            pool.backends[0].target,
            Target::Tcp("10.0.0.1:8000".parse().unwrap())
        );
        assert!(pool.backends[2].key.as_str().ends_with(".invalid"));
    }

    #[test]
    fn a_new_address_waits_for_its_first_check_unless_nothing_else_can_serve() {
        let m = Metrics::new(false, 0);
        let before = build(true, &resolved(&["10.0.0.1"], &m), None, &m);
        let after = build(
            true,
            &resolved(&["10.0.0.1", "10.0.0.2"], &m),
            Some(&before),
            &m,
        );
        let pool = after.get(None).unwrap();
        assert!(!pool.backends[1].is_available(now_ms()) && pool.backends[1].is_pending());
        assert!(
            pool.backends[0].is_available(now_ms()),
            "the known address stays"
        );
        assert!(pool.backends[1].checked(), "a passing check lets it in");

        // Every other backend out: the new address starts at once.
        for backend in &before.get(None).unwrap().backends {
            backend.set_healthy(false);
        }
        let moved = build(true, &resolved(&["10.0.0.3"], &m), Some(&before), &m);
        let pool = moved.get(None).unwrap();
        assert_eq!(pool.backends[0].name, "http://app.test:8000#10.0.0.3");
        assert!(pool.backends[0].is_available(now_ms()));

        // Checks turned off: a new address no longer waits for one.
        let two = resolved(&["10.0.0.1", "10.0.0.2"], &m);
        let one = build(true, &resolved(&["10.0.0.1"], &m), None, &m);
        let pending = build(true, &two, Some(&one), &m);
        assert!(pending.get(None).unwrap().backends[1].is_pending());
        let unchecked = build(false, &two, Some(&pending), &m);
        let pool = unchecked.get(None).unwrap();
        assert!(pool.backends.iter().all(|b| b.is_available(now_ms())));
    }
}
