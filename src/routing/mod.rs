//! Resolve phase: normalised host → tenant, through a moka cache in front of
//! the store. Known hosts are cached with a TTL, unknown ones with a short
//! negative TTL, and concurrent misses for one host make one store lookup.
//! The control plane talks to it only through `resolve` and `invalidate_*`.

pub mod host;
mod local;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::HeaderValue;
use moka::future::Cache;
use moka::Expiry;

use crate::config::CacheConfig;
use crate::metrics::Metrics;
use crate::store::{HostMatch, Store, StoreError};
use crate::tenant::{DomainEntry, Isolation, Tenant};

/// A tenant as the data path needs it, with its header values built once
/// when the cache is filled rather than on every request.
#[derive(Debug)]
pub struct RoutedTenant {
    pub tenant: Tenant,
    /// The domain entry that matched (the host itself or its wildcard).
    pub matched_domain: String,
    pub id_value: HeaderValue,
    /// `X-Tenant-Schema` for schema and database isolation.
    pub schema_value: Option<HeaderValue>,
    /// `X-Tenant-Database` for database isolation.
    pub database_value: Option<HeaderValue>,
    /// `X-Tenant-Cache-Prefix` for cache isolation.
    pub cache_prefix_value: Option<HeaderValue>,
}

impl RoutedTenant {
    pub fn new(tenant: Tenant, matched_domain: String) -> RoutedTenant {
        // Ids and schemas are validated ASCII, so these conversions cannot fail;
        // a store holding something else still must not panic the data path.
        let value = |s: &str| {
            HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
        };
        let schema_value = matches!(tenant.isolation, Isolation::Schema | Isolation::Database)
            .then(|| value(&tenant.schema));
        let database_value =
            (tenant.isolation == Isolation::Database).then(|| value(&tenant.schema));
        let cache_prefix_value =
            (tenant.isolation == Isolation::Cache).then(|| value(&format!("{}:", tenant.id)));
        RoutedTenant {
            id_value: value(&tenant.id),
            schema_value,
            database_value,
            cache_prefix_value,
            tenant,
            matched_domain,
        }
    }
}

/// What a host resolves to.
#[derive(Debug, Clone)]
pub enum Resolution {
    Tenant(Arc<RoutedTenant>),
    Unknown,
}

/// The store could not answer for a host that is not cached.
#[derive(Debug, Clone, thiserror::Error)]
#[error("tenant lookup failed: {0}")]
pub struct RoutingError(pub Arc<StoreError>);

/// `None` caches "no tenant for this host".
pub(crate) type Cached = Option<Arc<RoutedTenant>>;

struct RouteExpiry {
    ttl: Duration,
    negative_ttl: Duration,
}

impl Expiry<String, Cached> for RouteExpiry {
    fn expire_after_create(
        &self,
        _host: &String,
        value: &Cached,
        _now: Instant,
    ) -> Option<Duration> {
        Some(if value.is_some() {
            self.ttl
        } else {
            self.negative_ttl
        })
    }
}

/// The host → tenant table as the data path sees it: a per-worker table of
/// hot hosts (`local`), then the shared moka cache, then the store.
pub struct Router {
    /// Tells this router's per-worker tables from another router's.
    id: usize,
    invalidations: local::InvalidationLog,
    cache: Cache<String, Cached, foldhash::fast::RandomState>,
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    strip_www: bool,
}

impl Router {
    pub fn new(
        store: Arc<dyn Store>,
        cache: &CacheConfig,
        strip_www: bool,
        metrics: Arc<Metrics>,
    ) -> Router {
        let cache = Cache::builder()
            .max_capacity(cache.max_entries)
            .expire_after(RouteExpiry {
                ttl: cache.ttl,
                negative_ttl: cache.negative_ttl,
            })
            .support_invalidation_closures()
            .build_with_hasher(foldhash::fast::RandomState::default());
        static NEXT_ID: AtomicUsize = AtomicUsize::new(1);
        Router {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            invalidations: local::InvalidationLog::new(),
            cache,
            store,
            metrics,
            strip_www,
        }
    }

    /// Normalises a raw Host value with this router's `www.` rule.
    pub fn normalize(&self, raw: &[u8]) -> Result<host::HostBuf, host::HostError> {
        host::normalize_host(raw, self.strip_www)
    }

    pub fn strip_www(&self) -> bool {
        self.strip_www
    }

    /// Resolves a normalised host, from the cache when possible.
    pub async fn resolve(&self, host: &str) -> Result<Resolution, RoutingError> {
        if let Some(cached) = local::get(self.id, &self.invalidations, host) {
            self.metrics.cache_hits.inc();
            return Ok(into_resolution(cached));
        }
        let cached = match self.cache.get(host).await {
            Some(cached) => {
                self.metrics.cache_hits.inc();
                cached
            }
            None => {
                self.metrics.cache_misses.inc();
                self.cache
                    .try_get_with_by_ref(host, self.load(host))
                    .await
                    .map_err(RoutingError)?
            }
        };
        local::put(self.id, &self.invalidations, host, cached.clone());
        Ok(into_resolution(cached))
    }

    async fn load(&self, host: &str) -> Result<Cached, StoreError> {
        let started = Instant::now();
        let found = self.store.resolve_host(host).await;
        self.metrics
            .store_lookup_seconds
            .observe(started.elapsed().as_secs_f64());
        match found {
            Ok(found) => Ok(found
                .map(|HostMatch { tenant, domain }| Arc::new(RoutedTenant::new(tenant, domain)))),
            Err(e) => {
                self.metrics.store_errors.inc();
                Err(e)
            }
        }
    }

    /// Forgets everything cached for a domain: the host itself, or for a
    /// wildcard every host one label below it (including negative entries).
    pub async fn invalidate_domain(&self, domain: &str) {
        self.invalidate_shared(domain).await;
        // After the shared cache, so a worker refilling from it sees the change.
        self.invalidations.push(domain);
    }

    async fn invalidate_shared(&self, domain: &str) {
        if domain.starts_with("*.") {
            let wildcard = domain.to_owned();
            // Cannot fail: closures are enabled in `new`.
            let _ = self
                .cache
                .invalidate_entries_if(move |host, _| host::wildcard_covers(&wildcard, host));
        } else {
            self.cache.invalidate(domain).await;
        }
    }

    /// Forgets every cached host (after a bulk change).
    pub fn invalidate_all(&self) {
        self.cache.invalidate_all();
        self.invalidations.push(local::EVERYTHING);
    }

    /// Forgets every cached host of a tenant, given its domains.
    pub async fn invalidate_domains(&self, domains: &[DomainEntry]) {
        for entry in domains {
            self.invalidate_domain(&entry.domain).await;
        }
    }

    pub fn cached_entries(&self) -> u64 {
        self.cache.entry_count()
    }
}

fn into_resolution(cached: Cached) -> Resolution {
    match cached {
        Some(tenant) => Resolution::Tenant(tenant),
        None => Resolution::Unknown,
    }
}
