//! Pick-backend and forward phases: named pools of backends with live health
//! (active checks, passive ejection), a balancer per pool, retries under a
//! budget, and per-pool timeouts. Pools are rebuilt on reload; in-flight
//! requests keep the pool they started with.

mod backend;
mod balance;
mod client_body;
mod connect;
mod forward;
pub mod health;
mod pools;

pub use crate::config::BackendAddr;
pub use backend::{now_ms, Backend, InFlight};
pub use forward::{forward, Forwarded, UpstreamError, UpstreamRequestBody};
pub use pools::{PoolSlot, Pools};

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::uri::Authority;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use prometheus::{Histogram, IntCounter};

use crate::config::{HealthCheckConfig, OutlierConfig, PoolConfig, UpstreamConfig};
use crate::metrics::Metrics;
use balance::Balancer;
use connect::TimedConnector;

/// Pool used by tenants that name none.
pub const DEFAULT_POOL: &str = "default";

pub type UpstreamClient = Client<TimedConnector, UpstreamRequestBody>;

/// Retries earn tokens from ordinary requests, so a failing pool is not
/// hammered: at most `budget_percent` extra load, plus a small burst.
struct RetryBudget {
    milli_tokens: AtomicI64,
    deposit: i64,
}

/// Retries allowed at once before the budget has to be earned: enough for
/// every request in flight on a backend that dies under load to move.
const RETRY_BURST_MILLI: i64 = 100_000;

impl RetryBudget {
    fn deposit(&self) {
        if self.milli_tokens.load(Ordering::Relaxed) < RETRY_BURST_MILLI {
            self.milli_tokens.fetch_add(self.deposit, Ordering::Relaxed);
        }
    }

    fn withdraw(&self) -> bool {
        self.milli_tokens
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| {
                (t >= 1000).then_some(t - 1000)
            })
            .is_ok()
    }
}

/// A named set of interchangeable backends and how to use them.
pub struct Pool {
    pub name: String,
    pub backends: Vec<Arc<Backend>>,
    balancer: Balancer,
    pub retries: u32,
    budget: RetryBudget,
    outlier: OutlierConfig,
    pub response_timeout: Duration,
    pub total_timeout: Option<Duration>,
    /// Time allowed to open a backend connection (the lean path's own connects).
    pub connect_timeout: Duration,
    /// Idle connections kept per backend and worker, and for how long.
    pub max_idle: usize,
    pub idle_timeout: Duration,
    pub health_check: Option<HealthCheckConfig>,
    /// One keep-alive client per data-path worker, so workers share no pool lock.
    clients: Box<[UpstreamClient]>,
    retries_total: IntCounter,
}

impl Pool {
    /// A usable backend not yet tried by this request (`tried` is a bitmask).
    pub fn pick(&self, tenant: &str, tried: u64) -> Option<usize> {
        let now = now_ms();
        let untried = |i: usize| i >= 64 || tried & (1 << i) == 0;
        self.balancer.pick(&self.backends, tenant, |i| {
            untried(i) && self.backends[i].is_available(now)
        })
    }

    pub fn client(&self, worker: usize) -> &UpstreamClient {
        &self.clients[worker % self.clients.len()]
    }

    /// Counts a failed attempt and ejects a backend on a failure streak,
    /// unless it is the last one still taking traffic.
    pub fn record_failure(&self, index: usize) {
        let backend = &self.backends[index];
        let streak = backend.record_failure();
        let threshold = self.outlier.consecutive_failures;
        if threshold == 0 || streak < threshold {
            return;
        }
        let now = now_ms();
        let others_available = self
            .backends
            .iter()
            .enumerate()
            .any(|(i, b)| i != index && b.is_available(now));
        if others_available && backend.eject(self.outlier.ejection) {
            tracing::warn!(pool = %self.name, backend = %backend.addr, streak, ejection = ?self.outlier.ejection, "backend ejected");
        }
    }

    /// Counts a request towards the retry budget (every request earns a share).
    pub fn count_request(&self) {
        self.budget.deposit();
    }

    /// Whether a request whose attempt failed with `err` may be sent again,
    /// on another backend: a refused connection always, a dropped one only
    /// for idempotent methods, and only with the request still in hand,
    /// retries left and budget in the bucket (taken when it says yes). Both
    /// HTTP/1 engines ask here.
    pub fn retry_after(
        &self,
        err: &UpstreamError,
        idempotent: bool,
        replayable: bool,
        retries: u32,
    ) -> bool {
        let safe = match err {
            UpstreamError::Connect(_) => true,
            UpstreamError::Reset(..) => idempotent,
            _ => false,
        };
        safe && replayable && retries < self.retries && self.retry_allowed()
    }

    /// Whether a retry could ever happen here (worth keeping a copy of the request).
    pub fn may_retry(&self) -> bool {
        self.retries > 0 && self.backends.len() > 1
    }

    fn retry_allowed(&self) -> bool {
        let allowed = self.budget.withdraw();
        if allowed {
            self.retries_total.inc();
        }
        allowed
    }
}

/// One pool of `config`; backends also in `previous` keep their health.
fn build_pool(
    name: &str,
    pool: &PoolConfig,
    upstream: &UpstreamConfig,
    workers: usize,
    metrics: &Metrics,
    previous: Option<&Pools>,
) -> Pool {
    let backends: Vec<Arc<Backend>> = pool
        .backends
        .iter()
        .filter_map(|b| {
            BackendAddr::parse(b.url())
                .ok()
                .map(|addr| (addr, b.weight()))
        })
        .map(|(addr, weight)| {
            let backend = Backend::new(name, addr, weight, metrics);
            let old = previous
                .and_then(|p| p.get(Some(name)))
                .and_then(|p| p.backends.iter().find(|o| o.addr == backend.addr));
            if let Some(old) = old {
                backend.inherit(old);
            }
            Arc::new(backend)
        })
        .collect();
    let connect_timeout = pool.timeouts.connect.unwrap_or(upstream.connect_timeout);
    let connect_series: Arc<[(Authority, Histogram)]> = backends
        .iter()
        .map(|b| (b.addr.authority.clone(), b.series.connect_seconds.clone()))
        .collect();
    let clients = (0..workers.max(1))
        .map(|_| new_client(connect_timeout, upstream, connect_series.clone()))
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
        connect_timeout,
        max_idle: upstream.max_idle_per_backend,
        idle_timeout: upstream.idle_timeout,
        health_check: pool.health_check.clone(),
        clients,
        retries_total: metrics.backends.retries.with_label_values(&[name]),
    }
}

fn new_client(
    connect_timeout: Duration,
    config: &UpstreamConfig,
    connect_series: Arc<[(Authority, Histogram)]>,
) -> UpstreamClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(connect_timeout));
    connector.set_keepalive(Some(Duration::from_secs(60)));
    Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(config.idle_timeout)
        .pool_max_idle_per_host(config.max_idle_per_backend)
        .build(TimedConnector::new(connector, connect_series))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BackendConfig;
    use std::collections::BTreeMap;

    fn pools(urls: &[&str], failures: u32) -> Pools {
        let mut config = BTreeMap::new();
        let mut pool = PoolConfig {
            backends: urls
                .iter()
                .map(|u| BackendConfig::Url(u.to_string()))
                .collect(),
            ..PoolConfig::default()
        };
        pool.outlier.consecutive_failures = failures;
        config.insert("default".to_string(), pool);
        let metrics = Metrics::new(false, 0);
        Pools::build(
            &config,
            &BTreeMap::new(),
            &UpstreamConfig::default(),
            1,
            &metrics,
            None,
        )
    }

    #[test]
    fn a_failure_streak_ejects_but_never_the_last_backend() {
        let pools = pools(&["http://a:1", "http://b:2"], 3);
        let pool = pools.get(None).unwrap();
        for _ in 0..3 {
            pool.record_failure(0);
        }
        assert!(!pool.backends[0].is_available(now_ms()));
        // Requests that were in flight fail too: still one ejection.
        for _ in 0..6 {
            pool.record_failure(0);
        }
        assert_eq!(pool.backends[0].series.ejections.get(), 1);
        for _ in 0..10 {
            assert_eq!(pool.pick("t", 0), Some(1));
        }
        for _ in 0..5 {
            pool.record_failure(1);
        }
        assert!(
            pool.backends[1].is_available(now_ms()),
            "the last available backend stays"
        );
    }

    #[tokio::test]
    async fn reload_keeps_the_health_of_unchanged_backends() {
        let old = pools(&["http://a:1", "http://b:2"], 5);
        old.get(None).unwrap().backends[0].set_healthy(false);
        let mut config = BTreeMap::new();
        config.insert(
            "default".to_string(),
            PoolConfig {
                backends: vec![
                    BackendConfig::Url("http://a:1".into()),
                    BackendConfig::Url("http://c:3".into()),
                ],
                ..PoolConfig::default()
            },
        );
        let new = Pools::build(
            &config,
            &BTreeMap::new(),
            &UpstreamConfig::default(),
            1,
            &Metrics::new(false, 0),
            Some(&old),
        );
        let pool = new.get(None).unwrap();
        assert!(!pool.backends[0].is_healthy());
        assert!(pool.backends[1].is_healthy());
        assert_eq!(pool.pick("t", 0), Some(1));
    }

    #[test]
    fn the_retry_budget_runs_dry() {
        let pools = pools(&["http://a:1"], 5);
        let pool = pools.get(None).unwrap();
        let granted = (0..200).filter(|_| pool.retry_allowed()).count();
        assert_eq!(granted, 100, "the burst allowance");
        for _ in 0..50 {
            pool.budget.deposit();
        }
        assert_eq!(
            (0..100).filter(|_| pool.retry_allowed()).count(),
            10,
            "20% of 50 requests"
        );
    }
}
