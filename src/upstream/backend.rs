//! One backend's live state: active-health verdict, passive ejection,
//! in-flight count, and its metric series. All atomics: the data path reads
//! them on every pick without a lock.

use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::uri::Authority;
use prometheus::{Histogram, IntCounter, IntGauge};

use super::connect::Target;
use super::BackendAddr;
use crate::metrics::Metrics;

pub use crate::clock::now_ms;

/// A backend's metric series, resolved once.
pub struct BackendSeries {
    pub requests: IntCounter,
    pub errors: IntCounter,
    pub ejections: IntCounter,
    pub healthy: IntGauge,
    pub response_seconds: Histogram,
    /// Time to open a new connection (observed by `connect::Connector::connect`).
    pub connect_seconds: Histogram,
}

pub struct Backend {
    /// The address as configured (`http://app.internal:8000`).
    pub addr: BackendAddr,
    /// Where connections go: for a DNS name, one of its addresses.
    pub target: Target,
    /// How logs, metrics and the admin API name it: the configured URL, plus
    /// `#address` for a DNS-discovered one (`http://app.internal:8000#10.0.0.5`).
    pub name: String,
    /// The authority of the requests sent to it through the pool's client
    /// (which keys connections by it): unique within the pool.
    pub key: Authority,
    pub weight: u32,
    /// The active health check's verdict (true until a check says otherwise).
    healthy: AtomicBool,
    /// A DNS-discovered address not yet checked: out until its first health
    /// check passes.
    pending: AtomicBool,
    /// Passive ejection: out of rotation until this time (`now_ms`).
    ejected_until_ms: AtomicU64,
    consecutive_failures: AtomicU32,
    in_flight: AtomicUsize,
    pub series: BackendSeries,
}

impl Backend {
    pub fn new(
        pool: &str,
        addr: BackendAddr,
        target: Target,
        weight: u32,
        metrics: &Metrics,
    ) -> Backend {
        let (name, key) = match &target {
            Target::Unix(path) => {
                let mut hash = std::hash::DefaultHasher::new();
                path.hash(&mut hash);
                (
                    addr.to_string(),
                    format!("unix-{:x}.invalid", hash.finish()),
                )
            }
            Target::Tcp(ip) | Target::Tls { addr: ip, .. } => {
                let name = match addr.dns_name() {
                    Some(_) => format!("{addr}#{}", ip.ip()),
                    None => addr.to_string(),
                };
                (name, ip.to_string())
            }
        };
        let labels = [pool, &name];
        let v = &metrics.backends;
        let series = BackendSeries {
            requests: v.requests.with_label_values(&labels),
            errors: v.errors.with_label_values(&labels),
            ejections: v.ejections.with_label_values(&labels),
            healthy: v.healthy.with_label_values(&labels),
            response_seconds: v.response_seconds.with_label_values(&labels),
            connect_seconds: v.connect_seconds.with_label_values(&labels),
        };
        series.healthy.set(1);
        Backend {
            addr,
            target,
            name,
            key: key
                .parse()
                .expect("a socket address or a host name is an authority"),
            weight: weight.max(1),
            healthy: AtomicBool::new(true),
            pending: AtomicBool::new(false),
            ejected_until_ms: AtomicU64::new(0),
            consecutive_failures: AtomicU32::new(0),
            in_flight: AtomicUsize::new(0),
            series,
        }
    }

    /// A backend at an `http://IP:port` URL (unit tests).
    #[cfg(test)]
    pub fn at(url: &str, weight: u32, metrics: &Metrics) -> Backend {
        let addr = BackendAddr::parse(url).expect("backend URL");
        let target = match &addr {
            BackendAddr::Net {
                host: crate::config::NetHost::Ip(ip),
                port,
                ..
            } => Target::Tcp(std::net::SocketAddr::new(*ip, *port)),
            other => panic!("{other} is not an IP URL"),
        };
        Backend::new("p", addr, target, weight, metrics)
    }

    /// Holds a new DNS-discovered address out until a health check passes.
    pub fn hold_until_checked(&self) {
        self.pending.store(true, Ordering::Relaxed);
        self.set_healthy(false);
    }

    /// Still waiting for its first passing health check.
    pub fn is_pending(&self) -> bool {
        self.pending.load(Ordering::Relaxed)
    }

    /// A passing health check: no longer pending; returns whether it was.
    pub fn checked(&self) -> bool {
        self.pending.swap(false, Ordering::Relaxed)
    }

    /// Takes traffic: healthy and not ejected.
    pub fn is_available(&self, now_ms: u64) -> bool {
        self.healthy.load(Ordering::Relaxed)
            && self.ejected_until_ms.load(Ordering::Relaxed) <= now_ms
    }

    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Sets the active-check verdict; returns whether it changed.
    pub fn set_healthy(&self, healthy: bool) -> bool {
        let changed = self.healthy.swap(healthy, Ordering::Relaxed) != healthy;
        if changed {
            self.refresh_gauge();
        }
        changed
    }

    fn refresh_gauge(&self) {
        self.series
            .healthy
            .set(i64::from(self.is_available(now_ms())));
    }

    /// Counts a request as in flight until the guard is dropped.
    pub fn start(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.series.requests.inc();
        InFlight(self.clone())
    }

    pub fn record_success(&self) {
        if self.consecutive_failures.load(Ordering::Relaxed) != 0 {
            self.consecutive_failures.store(0, Ordering::Relaxed);
        }
        // An ejection runs out silently: the first answer after it puts the
        // gauge back to 1 (one relaxed load per request otherwise).
        if self.series.healthy.get() == 0 {
            self.refresh_gauge();
        }
    }

    /// Counts a failure; returns the failure streak so the pool can decide
    /// whether to eject.
    pub fn record_failure(&self) -> u32 {
        self.series.errors.inc();
        self.consecutive_failures.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Ejects the backend unless it already is; returns whether this call
    /// did, so requests failing together count (and log) one ejection.
    pub fn eject(&self, for_how_long: Duration) -> bool {
        let now = now_ms();
        let until = now + for_how_long.as_millis() as u64;
        let ejected = self
            .ejected_until_ms
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |current| {
                (current <= now).then_some(until)
            })
            .is_ok();
        self.consecutive_failures.store(0, Ordering::Relaxed);
        if ejected {
            self.series.ejections.inc();
            self.series.healthy.set(0);
        }
        ejected
    }

    /// Ends a passive ejection early (a passing active health check proves the
    /// backend is back); returns whether it was ejected.
    pub fn lift_ejection(&self) -> bool {
        let lifted = self.ejected_until_ms.swap(0, Ordering::Relaxed) > now_ms();
        if lifted {
            self.refresh_gauge();
        }
        lifted
    }

    /// Carries the live state over from the same backend before a reload.
    pub fn inherit(&self, old: &Backend) {
        self.healthy
            .store(old.healthy.load(Ordering::Relaxed), Ordering::Relaxed);
        self.pending
            .store(old.pending.load(Ordering::Relaxed), Ordering::Relaxed);
        self.ejected_until_ms.store(
            old.ejected_until_ms.load(Ordering::Relaxed),
            Ordering::Relaxed,
        );
        self.refresh_gauge();
    }
}

/// An in-flight request on a backend; dropping it ends the count (keep it
/// with the response body so streaming responses count too).
pub struct InFlight(Arc<Backend>);

impl InFlight {
    pub fn backend(&self) -> &Arc<Backend> {
        &self.0
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}
