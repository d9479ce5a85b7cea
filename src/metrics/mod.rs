//! Prometheus metrics: every handle is registered once at start so the data
//! path only touches atomics (no label hashing per request). Per-tenant series
//! are opt-in and bounded.

use prometheus::{
    Encoder, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

mod tenants;

use tenants::TenantSeries;

/// How a data-path request ended, for the `outcome` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Routed,
    UnknownHost,
    Suspended,
    UpstreamError,
    BadRequest,
    StoreError,
    /// The Host belongs to another tenant than the connection's SNI name (421).
    Misdirected,
    /// A plain-HTTP request answered with a redirect to HTTPS, or an ACME
    /// challenge answer.
    HttpsRedirect,
    /// The tenant is under maintenance: 503 at once, or after its hold ran out.
    Maintenance,
    /// Over its tenant's rate limit (429).
    RateLimited,
    /// Beyond its tenant's concurrency cap after the queue (503).
    ConcurrencyLimited,
}

impl Outcome {
    const ALL: [Outcome; 11] = [
        Outcome::Routed,
        Outcome::UnknownHost,
        Outcome::Suspended,
        Outcome::UpstreamError,
        Outcome::BadRequest,
        Outcome::StoreError,
        Outcome::Misdirected,
        Outcome::HttpsRedirect,
        Outcome::Maintenance,
        Outcome::RateLimited,
        Outcome::ConcurrencyLimited,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Routed => "routed",
            Outcome::UnknownHost => "unknown_host",
            Outcome::Suspended => "suspended",
            Outcome::UpstreamError => "upstream_error",
            Outcome::BadRequest => "bad_request",
            Outcome::StoreError => "store_error",
            Outcome::Misdirected => "misdirected",
            Outcome::HttpsRedirect => "https_redirect",
            Outcome::Maintenance => "maintenance",
            Outcome::RateLimited => "rate_limited",
            Outcome::ConcurrencyLimited => "concurrency_limited",
        }
    }

    /// The `reason` of `tenant_gateway_limited_requests_total`, for a
    /// request its tenant's limits refused.
    fn limited_reason(self) -> Option<usize> {
        match self {
            Outcome::RateLimited => Some(0),
            Outcome::ConcurrencyLimited => Some(1),
            _ => None,
        }
    }
}

const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];
/// The `reason` labels of the limited requests, by `Outcome::limited_reason`.
const LIMITED_REASONS: [&str; 2] = ["rate", "concurrency"];

pub struct Metrics {
    registry: Registry,
    /// `[outcome][status class]`.
    requests: Vec<[IntCounter; 5]>,
    pub request_seconds: Histogram,
    pub upstream_seconds: Histogram,
    pub cache_hits: IntCounter,
    pub cache_misses: IntCounter,
    cache_entries: IntGauge,
    pub store_lookup_seconds: Histogram,
    /// Domains in the warm domain table (sampled at each scrape).
    pub domain_table_domains: IntGauge,
    /// 1 while a load of the warm table asked for is not done (sampled at
    /// each scrape).
    pub domain_table_loading: IntGauge,
    pub store_errors: IntCounter,
    /// Routes served past their TTL because the store could not refresh them.
    pub stale_served: IntCounter,
    /// Registry changes made elsewhere and applied to this cache.
    pub changes_applied: IntCounter,
    /// Time from a change's commit (about) to this replica applying it.
    pub change_lag_seconds: Histogram,
    /// 1 while the change feed's connection is up.
    pub change_feed_connected: IntGauge,
    pub in_flight: IntGauge,
    /// Requests waiting for their tenant's maintenance to end (a part of
    /// `in_flight`).
    pub maintenance_held: IntGauge,
    /// Requests refused by their tenant's limits, by `LIMITED_REASONS`.
    limited: [IntCounter; 2],
    admin_requests: IntCounterVec,
    tenant_requests: Option<TenantSeries>,
    /// Per-backend series, labelled `{pool, backend}` (bounded by config).
    pub backends: BackendVecs,
    /// On-demand certificates (ACME).
    pub acme: AcmeMetrics,
}

/// ACME series: orders by reason and result, refusals, certificates loaded
/// from the store, and days to expiry per certificate held.
pub struct AcmeMetrics {
    /// `{reason="first|renewal|admin", result="issued|failed"}`.
    pub orders: IntCounterVec,
    /// Handshakes for names that may not get a certificate (unknown domain,
    /// suspended tenant, backoff): no order was placed.
    pub refused: IntCounter,
    /// Certificates taken from the store instead of ordered (restart, or
    /// another replica's order).
    pub loaded: IntCounter,
    /// `{domain}`: days until the certificate expires (negative once expired).
    pub expiry_days: GaugeVec,
}

impl BackendVecs {
    /// Drops a backend's series (after a reload removed it).
    pub fn forget(&self, pool: &str, backend: &str) {
        let labels = [pool, backend];
        let _ = self.requests.remove_label_values(&labels);
        let _ = self.errors.remove_label_values(&labels);
        let _ = self.ejections.remove_label_values(&labels);
        let _ = self.healthy.remove_label_values(&labels);
        let _ = self.response_seconds.remove_label_values(&labels);
        let _ = self.connect_seconds.remove_label_values(&labels);
    }
}

/// Label families for backends; each `Backend` keeps its own children.
pub struct BackendVecs {
    pub requests: IntCounterVec,
    pub errors: IntCounterVec,
    pub ejections: IntCounterVec,
    pub healthy: IntGaugeVec,
    pub response_seconds: HistogramVec,
    pub connect_seconds: HistogramVec,
    /// `{pool, backend}` by configured URL: DNS lookups that failed.
    pub resolve_failures: IntCounterVec,
    pub retries: IntCounterVec,
}

fn must<T>(r: prometheus::Result<T>) -> T {
    // Metric names and labels are literals here; a failure is a programming error.
    r.expect("metric definition")
}

impl Metrics {
    pub fn new(per_tenant: bool, max_tenant_series: usize) -> Metrics {
        let registry = Registry::new();
        let reg = |c: Box<dyn prometheus::core::Collector>| must(registry.register(c));
        let requests_vec = must(IntCounterVec::new(
            Opts::new(
                "tenant_gateway_requests_total",
                "Data-path requests by outcome and status class",
            ),
            &["outcome", "class"],
        ));
        reg(Box::new(requests_vec.clone()));
        let requests = Outcome::ALL
            .iter()
            .map(|o| CLASSES.map(|c| requests_vec.with_label_values(&[o.as_str(), c])))
            .collect();
        let latency_buckets = vec![
            0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            10.0,
        ];
        let histogram = |name: &str, help: &str| {
            let h = must(Histogram::with_opts(
                HistogramOpts::new(name, help).buckets(latency_buckets.clone()),
            ));
            reg(Box::new(h.clone()));
            h
        };
        let counter = |name: &str, help: &str| {
            let c = must(IntCounter::new(name, help));
            reg(Box::new(c.clone()));
            c
        };
        let gauge = |name: &str, help: &str| {
            let g = must(IntGauge::new(name, help));
            reg(Box::new(g.clone()));
            g
        };
        let admin_requests = must(IntCounterVec::new(
            Opts::new(
                "tenant_gateway_admin_requests_total",
                "Admin API requests by method and status class",
            ),
            &["method", "class"],
        ));
        reg(Box::new(admin_requests.clone()));
        let tenant_requests = per_tenant.then(|| {
            let vec = must(IntCounterVec::new(
                Opts::new(
                    "tenant_gateway_tenant_requests_total",
                    "Routed requests per tenant (bounded)",
                ),
                &["tenant"],
            ));
            let errors = must(IntCounterVec::new(
                Opts::new(
                    "tenant_gateway_tenant_errors_total",
                    "Requests per tenant answered with a 5xx (bounded like the requests)",
                ),
                &["tenant"],
            ));
            let limited = must(IntCounterVec::new(
                Opts::new(
                    "tenant_gateway_tenant_limited_requests_total",
                    "Requests per tenant refused by its rate limit or concurrency cap (bounded like the requests)",
                ),
                &["tenant"],
            ));
            reg(Box::new(vec.clone()));
            reg(Box::new(errors.clone()));
            reg(Box::new(limited.clone()));
            TenantSeries::new([vec, errors, limited], max_tenant_series)
        });
        let pair = &["pool", "backend"];
        let counter_vec = |name: &str, help: &str, labels: &[&str]| {
            let v = must(IntCounterVec::new(Opts::new(name, help), labels));
            reg(Box::new(v.clone()));
            v
        };
        let histogram_vec = |name: &str, help: &str, buckets: Vec<f64>| {
            let v = must(HistogramVec::new(
                HistogramOpts::new(name, help).buckets(buckets),
                pair,
            ));
            reg(Box::new(v.clone()));
            v
        };
        let backends = BackendVecs {
            requests: counter_vec(
                "tenant_gateway_backend_requests_total",
                "Attempts sent to a backend",
                pair,
            ),
            errors: counter_vec(
                "tenant_gateway_backend_errors_total",
                "Attempts that failed (connect error, reset, timeout or 5xx)",
                pair,
            ),
            ejections: counter_vec(
                "tenant_gateway_backend_ejections_total",
                "Passive outlier ejections",
                pair,
            ),
            healthy: {
                let v = must(IntGaugeVec::new(
                    Opts::new(
                        "tenant_gateway_backend_healthy",
                        "1 while a backend takes traffic, 0 while it is out",
                    ),
                    pair,
                ));
                reg(Box::new(v.clone()));
                v
            },
            response_seconds: histogram_vec(
                "tenant_gateway_backend_response_seconds",
                "Time to a backend's response headers",
                latency_buckets.clone(),
            ),
            // Connects take tens of microseconds on a LAN: finer low buckets.
            connect_seconds: histogram_vec(
                "tenant_gateway_backend_connect_seconds",
                "Time to open a new connection to a backend, TLS handshake included (reused connections are not counted)",
                vec![
                    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                    0.1, 0.25, 0.5, 1.0, 2.5,
                ],
            ),
            resolve_failures: counter_vec(
                "tenant_gateway_backend_resolve_failures_total",
                "Failed re-resolutions of a backend's DNS name (its last good addresses stay)",
                pair,
            ),
            retries: counter_vec(
                "tenant_gateway_pool_retries_total",
                "Retries on another backend",
                &["pool"],
            ),
        };
        let acme = AcmeMetrics {
            orders: counter_vec(
                "tenant_gateway_acme_orders_total",
                "ACME orders by reason (first handshake, renewal, admin) and result",
                &["reason", "result"],
            ),
            refused: counter(
                "tenant_gateway_acme_refused_total",
                "Handshakes for names that may not get a certificate (no order placed)",
            ),
            loaded: counter(
                "tenant_gateway_acme_certificates_loaded_total",
                "Certificates loaded from the store instead of ordered",
            ),
            expiry_days: {
                let v = must(GaugeVec::new(
                    Opts::new(
                        "tenant_gateway_acme_certificate_expiry_days",
                        "Days until an ACME certificate expires",
                    ),
                    &["domain"],
                ));
                reg(Box::new(v.clone()));
                v
            },
        };
        let limited_vec = counter_vec(
            "tenant_gateway_limited_requests_total",
            "Requests refused by their tenant's limits: reason=rate (429) or concurrency (503)",
            &["reason"],
        );
        let limited = LIMITED_REASONS.map(|reason| limited_vec.with_label_values(&[reason]));
        Metrics {
            limited,
            acme,
            backends,
            requests,
            request_seconds: histogram(
                "tenant_gateway_request_duration_seconds",
                "Data-path request duration",
            ),
            upstream_seconds: histogram(
                "tenant_gateway_upstream_duration_seconds",
                "Time to a backend's response headers",
            ),
            cache_hits: counter(
                "tenant_gateway_cache_hits_total",
                "Host lookups answered by the cache",
            ),
            cache_misses: counter(
                "tenant_gateway_cache_misses_total",
                "Host lookups that went to the store",
            ),
            cache_entries: gauge("tenant_gateway_cache_entries", "Hosts held in the cache"),
            store_lookup_seconds: histogram(
                "tenant_gateway_store_lookup_duration_seconds",
                "Store lookups on cache misses",
            ),
            domain_table_domains: gauge(
                "tenant_gateway_domain_table_domains",
                "Domains held in the warm domain table",
            ),
            domain_table_loading: gauge(
                "tenant_gateway_domain_table_loading",
                "1 while the warm domain table is being loaded or reloaded (hosts it lacks go to the store)",
            ),
            store_errors: counter("tenant_gateway_store_errors_total", "Failed store lookups"),
            stale_served: counter(
                "tenant_gateway_stale_routes_served_total",
                "Routes served past their TTL while the store was unavailable",
            ),
            changes_applied: counter(
                "tenant_gateway_store_changes_applied_total",
                "Registry changes (from any replica or the CLI) applied to this routing cache",
            ),
            change_lag_seconds: histogram(
                "tenant_gateway_store_change_lag_seconds",
                "Time from a registry change being logged to this replica applying it",
            ),
            change_feed_connected: gauge(
                "tenant_gateway_store_change_feed_connected",
                "1 while the PostgreSQL change feed (LISTEN) is connected",
            ),
            in_flight: gauge(
                "tenant_gateway_in_flight_requests",
                "Data-path requests being served",
            ),
            maintenance_held: gauge(
                "tenant_gateway_maintenance_held_requests",
                "Data-path requests held until their tenant's maintenance ends",
            ),
            admin_requests,
            tenant_requests,
            registry,
        }
    }

    pub fn record_request(
        &self,
        outcome: Outcome,
        status: u16,
        seconds: f64,
        tenant: Option<&str>,
    ) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.requests[outcome as usize][class].inc();
        self.request_seconds.observe(seconds);
        let limited = outcome.limited_reason();
        if let Some(reason) = limited {
            self.limited[reason].inc();
        }
        if let (Some(series), Some(tenant)) = (&self.tenant_requests, tenant) {
            series.inc(tenant, status >= 500, limited.is_some());
        }
    }

    /// Where a part of the gateway outside this module registers its own
    /// series (usage metering's flushes).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    pub fn record_admin(&self, method: &str, status: u16) {
        let class = CLASSES[usize::from(status / 100).clamp(1, 5) - 1];
        self.admin_requests
            .with_label_values(&[method, class])
            .inc();
    }

    /// Prometheus text exposition; `cache_entries` is sampled now.
    pub fn render(&self, cache_entries: u64) -> String {
        self.cache_entries
            .set(i64::try_from(cache_entries).unwrap_or(i64::MAX));
        let mut out = Vec::new();
        // Encoding into a Vec cannot fail for valid metric families.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_tenant_series_are_bounded() {
        let m = Metrics::new(true, 2);
        for t in ["a", "b", "c", "d", "a"] {
            m.record_request(Outcome::Routed, 200, 0.001, Some(t));
        }
        m.record_request(Outcome::UpstreamError, 502, 0.001, Some("a"));
        m.record_request(Outcome::Routed, 404, 0.001, Some("b"));
        m.record_request(Outcome::Routed, 503, 0.001, Some("d"));
        let text = m.render(0);
        assert!(text.contains("tenant_gateway_tenant_errors_total{tenant=\"a\"} 1"));
        assert!(text.contains("tenant_gateway_tenant_errors_total{tenant=\"b\"} 0"));
        assert!(text.contains("tenant_gateway_tenant_errors_total{tenant=\"_other\"} 1"));
        assert!(text.contains("tenant_gateway_tenant_requests_total{tenant=\"a\"} 3"));
        assert!(text.contains("tenant_gateway_tenant_requests_total{tenant=\"_other\"} 3"));
        assert!(!text.contains("tenant=\"c\""));
        assert!(text.contains("tenant_gateway_requests_total{class=\"2xx\",outcome=\"routed\"} 5"));
    }

    #[test]
    fn limited_requests_are_counted_by_reason_and_tenant() {
        let m = Metrics::new(true, 1);
        m.record_request(Outcome::RateLimited, 429, 0.0, Some("a"));
        m.record_request(Outcome::RateLimited, 429, 0.0, Some("b"));
        m.record_request(Outcome::ConcurrencyLimited, 503, 0.0, Some("a"));
        m.record_request(Outcome::Routed, 200, 0.0, Some("a"));
        let text = m.render(0);
        assert!(text.contains("tenant_gateway_limited_requests_total{reason=\"rate\"} 2"));
        assert!(text.contains("tenant_gateway_limited_requests_total{reason=\"concurrency\"} 1"));
        assert!(text.contains("tenant_gateway_tenant_limited_requests_total{tenant=\"a\"} 2"));
        assert!(text.contains("tenant_gateway_tenant_limited_requests_total{tenant=\"_other\"} 1"));
        assert!(text.contains("outcome=\"rate_limited\""));
    }
}
