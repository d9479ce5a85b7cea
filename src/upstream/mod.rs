//! Pick-backend and forward phases: named pools of backends with live health
//! (active checks, passive ejection), a balancer per pool, retries under a
//! budget, and per-pool timeouts. Pools are rebuilt on reload; in-flight
//! requests keep the pool they started with.

mod backend;
mod balance;
mod build;
mod client_body;
mod connect;
pub mod discovery;
mod forward;
pub mod health;
mod pools;
pub(crate) mod tls;

pub use crate::config::BackendAddr;
pub use backend::{now_ms, Backend, InFlight};
pub use client_body::{BodyProgress, ClientBody};
pub use connect::{ConnectError, Connector, Target, UpstreamStream};
pub use discovery::Resolved;
pub use forward::{forward, Forwarded, UpstreamError, UpstreamRequestBody};
pub use pools::{PoolSlot, Pools};

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hyper_util::client::legacy::Client;
use prometheus::IntCounter;

use crate::config::{HealthCheckConfig, OutlierConfig};
use balance::Balancer;
use connect::PoolConnector;

/// Pool used by tenants that name none.
pub const DEFAULT_POOL: &str = "default";

pub type UpstreamClient = Client<PoolConnector, UpstreamRequestBody>;

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
    /// The backends speak HTTP/2 over TLS (`tls.h2`): the lean HTTP/1.1
    /// path hands such requests to hyper.
    pub h2: bool,
    /// Idle connections kept per backend and worker, and for how long (the
    /// lean path's own pool).
    pub max_idle: usize,
    pub idle_timeout: Duration,
    pub health_check: Option<HealthCheckConfig>,
    /// Opens connections to the backends (TLS settings included).
    pub connector: Connector,
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
            tracing::warn!(pool = %self.name, backend = %backend.name, streak, ejection = ?self.outlier.ejection, "backend ejected");
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
            UpstreamError::Connect(_) | UpstreamError::Certificate(..) => true,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{BackendConfig, PoolConfig, UpstreamConfig};
    use crate::metrics::Metrics;
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
            &Resolved::default(),
        )
    }

    #[test]
    fn a_failure_streak_ejects_but_never_the_last_backend() {
        let pools = pools(&["http://10.0.0.1:1", "http://10.0.0.2:2"], 3);
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
        let old = pools(&["http://10.0.0.1:1", "http://10.0.0.2:2"], 5);
        old.get(None).unwrap().backends[0].set_healthy(false);
        let mut config = BTreeMap::new();
        config.insert(
            "default".to_string(),
            PoolConfig {
                backends: vec![
                    BackendConfig::Url("http://10.0.0.1:1".into()),
                    BackendConfig::Url("http://10.0.0.3:3".into()),
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
            &Resolved::default(),
        );
        let pool = new.get(None).unwrap();
        assert!(!pool.backends[0].is_healthy());
        assert!(pool.backends[1].is_healthy());
        assert_eq!(pool.pick("t", 0), Some(1));
    }

    #[test]
    fn the_retry_budget_runs_dry() {
        let pools = pools(&["http://10.0.0.1:1"], 5);
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
