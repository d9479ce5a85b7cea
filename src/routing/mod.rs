//! Resolve phase: normalised host → tenant. A per-worker table of hot hosts,
//! then the warm domain table (`table/`: every domain, compact, and once
//! loaded authoritative, so unknown hosts cost no store query), then for
//! what the table cannot answer a moka cache in front of the store (known
//! hosts cached with a TTL, unknown ones with a short negative TTL,
//! concurrent misses for one host making one store lookup).
//! The control plane talks to it only through `resolve` and `invalidate_*`.

pub mod follow;
mod local;
mod route;
mod shared;
mod table;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use moka::future::Cache;

use crate::clock;
use crate::config::CacheConfig;
use crate::metrics::Metrics;
use crate::store::{HostMatch, Store, StoreError};
use crate::tenant::host;
use crate::tenant::DomainEntry;
pub use route::{Resolution, RoutedTenant};
use shared::{RouteExpiry, SharedEntry, NEGATIVE_KEEP_FACTOR, REFRESH_BACKOFF_MS};
use table::{DomainTable, Lookup};

/// The store could not answer for a host that is not cached.
#[derive(Debug, Clone, thiserror::Error)]
#[error("tenant lookup failed: {0}")]
pub struct RoutingError(pub Arc<StoreError>);

/// `None` caches "no tenant for this host".
pub(crate) type Cached = Option<Arc<RoutedTenant>>;

/// The host → tenant table as the data path sees it: a per-worker table of
/// hot hosts (`local`), then the warm domain table, then the shared moka
/// cache, then the store.
pub struct Router {
    /// Tells this router's per-worker tables from another router's.
    id: usize,
    invalidations: local::InvalidationLog,
    /// Changes applied so far, counted before the shared cache forgets
    /// anything, so a lookup can tell one happened while it asked the store.
    changes: AtomicU64,
    cache: Cache<String, Arc<SharedEntry>, foldhash::fast::RandomState>,
    /// Every domain, loaded by `warm` and kept exact by the change feed.
    table: DomainTable,
    ttl_ms: u64,
    negative_ttl_ms: u64,
    /// False while the domain table is being loaded at start (see `warm`).
    warm: AtomicBool,
    /// Whether the store's change feed has caught up once (`follow`).
    feed_in_step: tokio::sync::watch::Sender<bool>,
    /// Last "serving stale" warning, so an outage logs once per interval.
    last_stale_warning_ms: AtomicU64,
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    strip_www: bool,
}

impl Router {
    pub fn new(
        store: Arc<dyn Store>,
        config: &CacheConfig,
        strip_www: bool,
        metrics: Arc<Metrics>,
    ) -> Router {
        let cache = Cache::builder()
            .max_capacity(config.max_entries)
            .expire_after(RouteExpiry {
                negative_keep: config.negative_ttl * NEGATIVE_KEEP_FACTOR,
            })
            .support_invalidation_closures()
            .build_with_hasher(foldhash::fast::RandomState::default());
        static NEXT_ID: AtomicUsize = AtomicUsize::new(1);
        Router {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            invalidations: local::InvalidationLog::new(),
            changes: AtomicU64::new(0),
            cache,
            table: DomainTable::new(store.clone(), config.table_max_domains),
            ttl_ms: config.ttl.as_millis() as u64,
            negative_ttl_ms: config.negative_ttl.as_millis() as u64,
            last_stale_warning_ms: AtomicU64::new(0),
            warm: AtomicBool::new(true),
            feed_in_step: tokio::sync::watch::Sender::new(false),
            store,
            metrics,
            strip_www,
        }
    }

    pub fn start_warming(&self) {
        self.warm.store(false, Ordering::Release);
    }

    pub fn finish_warming(&self) {
        self.warm.store(true, Ordering::Release);
    }

    /// Whether start-up loading is done (always, when it is off).
    pub fn is_warm(&self) -> bool {
        self.warm.load(Ordering::Acquire)
    }

    /// Loads the store's domains (exact and wildcard) into the warm domain
    /// table; from then on it answers alone for the hosts it covers, and for
    /// unknown hosts unless it is partial. Returns how many domains it holds.
    /// On failure it keeps retrying in the background (hosts meanwhile go
    /// to the store).
    pub async fn warm(&self) -> Result<u64, StoreError> {
        let loaded = self.table.load().await;
        if loaded.is_err() {
            self.table.reload();
        }
        loaded
    }

    /// For a registry written behind the change feed's back (django-tenants
    /// without `store.django.change_triggers`): the warm table answers only
    /// the hosts it holds and is reloaded every `cache.ttl`, so changes
    /// arrive as they did when cache entries expired.
    pub fn table_misses_writes(&self) {
        self.table
            .reload_every(std::time::Duration::from_millis(self.ttl_ms));
    }

    /// Whether the warm table answers unknown hosts without the store.
    pub fn table_is_authoritative(&self) -> bool {
        self.table.is_authoritative()
    }

    /// Heap bytes of the warm table's compact block (for the benches).
    pub fn table_block_bytes(&self) -> usize {
        self.table.block_heap_bytes()
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
        // Log entries are pushed after the shared cache and the table changed.
        let log_seen = self.invalidations.newest();
        match self.table.lookup(host) {
            Lookup::Found(route) => {
                self.metrics.cache_hits.inc();
                let until = clock::now_ms() + self.ttl_ms;
                let cached = Some(route);
                local::put(
                    self.id,
                    &self.invalidations,
                    host,
                    cached.clone(),
                    until,
                    log_seen,
                );
                return Ok(into_resolution(cached));
            }
            // Neither the worker nor moka keeps junk hosts: no memory per host.
            Lookup::Unknown => {
                self.metrics.cache_hits.inc();
                return Ok(Resolution::Unknown);
            }
            Lookup::Miss => {}
        }
        let (cached, fresh_until_ms) = match self.cache.get(host).await {
            Some(entry) => {
                self.metrics.cache_hits.inc();
                self.fresh_or_stale(host, entry).await
            }
            None => {
                self.metrics.cache_misses.inc();
                let loaded = self.cache.try_get_with_by_ref(host, async {
                    let changes_seen = self.changes.load(Ordering::SeqCst);
                    let route = self.load(host).await?;
                    Ok(SharedEntry::new(route, changes_seen))
                });
                let entry = loaded.await.map_err(RoutingError)?;
                self.settle(&entry);
                (entry.route.clone(), self.fresh_until_ms(&entry))
            }
        };
        // The worker keeps the route exactly as long as the shared entry is
        // fresh (changes reach it through the invalidation log): a 1 s cap
        // here sent every host back to moka each second, which cost 10 % of
        // throughput with 10,000 hot hosts among 1M (scripts/bench-e2e.sh).
        // Not if a change was logged since this lookup began (see `local::put`).
        local::put(
            self.id,
            &self.invalidations,
            host,
            cached.clone(),
            fresh_until_ms,
            log_seen,
        );
        Ok(into_resolution(cached))
    }

    /// Called once a freshly loaded entry is in the shared cache. A change
    /// applied while the store was being asked may have come too early for
    /// the invalidation to find the entry, and too late for the answer to
    /// include it: such an entry is served to the requests that waited for
    /// it, then counts as past its TTL, so the next request asks again
    /// (without this it would be kept, wrong, for a whole TTL).
    fn settle(&self, entry: &SharedEntry) {
        if self.changes.load(Ordering::SeqCst) != entry.changes_seen {
            entry.outdated.store(true, Ordering::Release);
        }
    }

    /// Until when (`clock::now_ms`) a shared entry is fresh (0: it is not).
    fn fresh_until_ms(&self, entry: &SharedEntry) -> u64 {
        if entry.outdated.load(Ordering::Acquire) {
            return 0;
        }
        let ttl = if entry.route.is_some() {
            self.ttl_ms
        } else {
            self.negative_ttl_ms
        };
        entry.fetched_ms + ttl
    }

    /// A fresh entry as it is; a stale one is refreshed by one request at a
    /// time while the others (and every request, if the store is down) get
    /// the stale route. Returns the route and until when it is fresh.
    async fn fresh_or_stale(&self, host: &str, entry: Arc<SharedEntry>) -> (Cached, u64) {
        let now = clock::now_ms();
        let fresh_until_ms = self.fresh_until_ms(&entry);
        if now < fresh_until_ms {
            return (entry.route.clone(), fresh_until_ms);
        }
        if now < entry.next_refresh_ms.load(Ordering::Relaxed)
            || entry.refreshing.swap(true, Ordering::AcqRel)
        {
            return (entry.route.clone(), fresh_until_ms);
        }
        let changes_seen = self.changes.load(Ordering::SeqCst);
        match self.load(host).await {
            Ok(route) => {
                let refreshed = SharedEntry::new(route.clone(), changes_seen);
                self.cache.insert(host.to_owned(), refreshed.clone()).await;
                self.settle(&refreshed);
                (route, self.fresh_until_ms(&refreshed))
            }
            Err(e) => {
                entry
                    .next_refresh_ms
                    .store(now + REFRESH_BACKOFF_MS, Ordering::Relaxed);
                entry.refreshing.store(false, Ordering::Release);
                self.metrics.stale_served.inc();
                let last = self.last_stale_warning_ms.load(Ordering::Relaxed);
                if now >= last + 10_000
                    && self
                        .last_stale_warning_ms
                        .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                        .is_ok()
                {
                    tracing::warn!(error = %e, %host, "store unavailable: serving cached routes past their TTL");
                }
                (entry.route.clone(), fresh_until_ms)
            }
        }
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
    /// wildcard every host one label below it (including negative entries),
    /// and re-reads it into the warm table.
    pub async fn invalidate_domain(&self, domain: &str) {
        self.invalidate_names(std::slice::from_ref(&domain.to_owned()))
            .await;
    }

    /// `invalidate_domain` for many domains, re-read in one store query.
    pub async fn invalidate_names(&self, domains: &[String]) {
        if domains.is_empty() {
            return;
        }
        self.changes.fetch_add(1, Ordering::SeqCst);
        for domain in domains {
            self.invalidate_shared(domain).await;
        }
        self.table.changed(domains).await;
        // After the shared cache and the table, so a worker refilling from
        // them sees the change.
        for domain in domains {
            self.invalidations.push(domain);
        }
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
        self.changes.fetch_add(1, Ordering::SeqCst);
        self.cache.invalidate_all();
        self.table.reload();
        self.invalidations.push(local::EVERYTHING);
    }

    /// Forgets every cached host of a tenant, given its domains.
    pub async fn invalidate_domains(&self, domains: &[DomainEntry]) {
        let names: Vec<String> = domains.iter().map(|d| d.domain.clone()).collect();
        self.invalidate_names(&names).await;
    }

    /// Hosts in the shared cache and domains in the warm table (moka counts
    /// writes lazily: settle first). Also samples the table's gauges.
    pub async fn cached_entries(&self) -> u64 {
        self.cache.run_pending_tasks().await;
        let table = self.table.domains();
        self.metrics
            .domain_table_domains
            .set(i64::try_from(table).unwrap_or(i64::MAX));
        self.metrics
            .domain_table_loading
            .set(i64::from(self.table.is_loading()));
        self.cache.entry_count() + table
    }
}

fn into_resolution(cached: Cached) -> Resolution {
    match cached {
        Some(tenant) => Resolution::Tenant(tenant),
        None => Resolution::Unknown,
    }
}

#[cfg(test)]
mod tests;
