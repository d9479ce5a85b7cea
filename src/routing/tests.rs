use super::*;
use crate::store::{OpenMode, SqliteStore};
use crate::tenant::{Domain, Isolation, NewTenant, TenantPatch, TenantRecord, TenantStatus};
use async_trait::async_trait;
use std::sync::atomic::AtomicBool;
use std::time::Duration;
use tokio::sync::Notify;

/// The embedded store with an off switch, to play a store outage, and a
/// hold on lookups, to play a slow one: a held lookup reads its answer,
/// signals `lookup_read`, and returns it only once `release` is notified.
struct Switchable {
    inner: SqliteStore,
    down: AtomicBool,
    hold_lookups: AtomicBool,
    lookup_read: Notify,
    release: Notify,
}

impl Switchable {
    fn new(inner: SqliteStore) -> Arc<Switchable> {
        Arc::new(Switchable {
            inner,
            down: AtomicBool::new(false),
            hold_lookups: AtomicBool::new(false),
            lookup_read: Notify::new(),
            release: Notify::new(),
        })
    }
}

/// Keeps no certificates (the trait's defaults).
impl crate::store::UsageStore for Switchable {}
impl crate::store::CertificateStore for Switchable {}

#[async_trait]
impl Store for Switchable {
    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }
    async fn resolve_host(&self, host: &str) -> Result<Option<HostMatch>, StoreError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable("switched off".into()));
        }
        let answer = self.inner.resolve_host(host).await;
        if self.hold_lookups.load(Ordering::SeqCst) {
            self.lookup_read.notify_one();
            self.release.notified().await;
        }
        answer
    }
    async fn create_tenant(&self, t: NewTenant) -> Result<TenantRecord, StoreError> {
        self.inner.create_tenant(t).await
    }
    async fn import_tenants(
        &self,
        b: Vec<NewTenant>,
    ) -> Result<Vec<(usize, StoreError)>, StoreError> {
        self.inner.import_tenants(b).await
    }
    async fn get_tenant(&self, id: &str) -> Result<Option<TenantRecord>, StoreError> {
        self.inner.get_tenant(id).await
    }
    async fn list_tenants(
        &self,
        after: Option<String>,
        limit: usize,
    ) -> Result<Vec<TenantRecord>, StoreError> {
        self.inner.list_tenants(after, limit).await
    }
    async fn update_tenant(&self, id: &str, p: TenantPatch) -> Result<TenantRecord, StoreError> {
        self.inner.update_tenant(id, p).await
    }
    async fn delete_tenant(&self, id: &str) -> Result<TenantRecord, StoreError> {
        self.inner.delete_tenant(id).await
    }
    async fn add_domain(&self, t: &str, d: String, p: bool) -> Result<Domain, StoreError> {
        self.inner.add_domain(t, d, p).await
    }
    async fn remove_domain(&self, d: &str) -> Result<Domain, StoreError> {
        self.inner.remove_domain(d).await
    }
    async fn routes_page(
        &self,
        after: Option<String>,
        limit: usize,
    ) -> Result<Vec<HostMatch>, StoreError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable("switched off".into()));
        }
        self.inner.routes_page(after, limit).await
    }
}

/// A store (in `dir`) holding one tenant, acme, at `acme.test`.
async fn store_with_acme(dir: &std::path::Path) -> Arc<Switchable> {
    let inner = SqliteStore::open(&dir.join("gw.db"), OpenMode::CreateIfMissing).unwrap();
    inner
        .create_tenant(NewTenant {
            id: "acme".into(),
            name: "Acme".into(),
            schema: "acme".into(),
            isolation: Isolation::Schema,
            status: TenantStatus::Active,
            pool: None,
            plan: None,
            cluster: None,
            domains: vec!["acme.test".into()],
            columns: Default::default(),
        })
        .await
        .unwrap();
    Switchable::new(inner)
}

#[tokio::test]
async fn cached_routes_outlive_their_ttl_while_the_store_is_down() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_acme(dir.path()).await;
    let config = CacheConfig {
        ttl: Duration::from_millis(50),
        negative_ttl: Duration::from_millis(50),
        max_entries: 100,
        ..CacheConfig::default()
    };
    let metrics = Arc::new(Metrics::new(false, 0));
    let router = Router::new(store.clone(), &config, true, metrics.clone());
    let is_acme = |r: Result<Resolution, RoutingError>| matches!(r, Ok(Resolution::Tenant(t)) if t.tenant.id == "acme");

    assert!(is_acme(router.resolve("acme.test").await));
    store.down.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(120)).await;
    assert!(
        is_acme(router.resolve("acme.test").await),
        "stale route served during the outage"
    );
    assert!(is_acme(router.resolve("acme.test").await));
    assert!(metrics.stale_served.get() >= 1);
    assert!(
        router.resolve("never-seen.test").await.is_err(),
        "an uncached host cannot be answered"
    );

    store.down.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(REFRESH_BACKOFF_MS + 100)).await;
    assert!(is_acme(router.resolve("acme.test").await));
    assert!(
        matches!(
            router.resolve("never-seen.test").await,
            Ok(Resolution::Unknown)
        ),
        "recovers by itself"
    );
}

#[tokio::test]
async fn a_warmed_cache_answers_without_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let inner = SqliteStore::open(&dir.path().join("gw.db"), OpenMode::CreateIfMissing).unwrap();
    let batch = (0..25)
        .map(|i| NewTenant {
            id: format!("t{i}"),
            name: format!("T{i}"),
            schema: format!("t{i}"),
            isolation: Isolation::Schema,
            status: TenantStatus::Active,
            pool: None,
            plan: None,
            cluster: None,
            domains: vec![format!("t{i}.test"), format!("*.t{i}.test")],
            columns: Default::default(),
        })
        .collect();
    assert!(inner.import_tenants(batch).await.unwrap().is_empty());
    let store = Switchable::new(inner);
    let router = Router::new(
        store.clone(),
        &CacheConfig::default(),
        true,
        Arc::new(Metrics::new(false, 0)),
    );
    router.start_warming();
    assert!(!router.is_warm());
    assert_eq!(
        router.warm().await.unwrap(),
        50,
        "exact and wildcard domains"
    );
    router.finish_warming();
    assert!(router.is_warm());

    store.down.store(true, Ordering::SeqCst);
    for i in [0, 13, 24] {
        let host = format!("t{i}.test");
        assert!(
            matches!(router.resolve(&host).await, Ok(Resolution::Tenant(t)) if t.tenant.id == format!("t{i}"))
        );
    }
    assert!(
        matches!(router.resolve("x.t3.test").await, Ok(Resolution::Tenant(t)) if t.matched_domain == "*.t3.test"),
        "wildcards are in the table too"
    );
    assert!(
        matches!(
            router.resolve("junk.example").await,
            Ok(Resolution::Unknown)
        ),
        "an unknown host is answered by the table alone"
    );
    assert_eq!(
        router.cached_entries().await,
        50,
        "no entry for the junk host"
    );
}

#[tokio::test]
async fn the_loading_gauge_is_up_while_a_load_asked_for_is_not_done() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_acme(dir.path()).await;
    let metrics = Arc::new(Metrics::new(false, 0));
    let router = Router::new(
        store.clone(),
        &CacheConfig::default(),
        true,
        metrics.clone(),
    );
    let loading = || async {
        router.cached_entries().await;
        metrics.domain_table_loading.get()
    };
    assert_eq!(
        loading().await,
        0,
        "never asked to load (cache.warm: false)"
    );
    // Without warming, a bulk change loads nothing.
    router.invalidate_all();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(loading().await, 0, "no load started by a bulk change");
    assert_eq!(router.cached_entries().await, 0, "the table stays empty");
    router.warm().await.unwrap();
    assert_eq!(loading().await, 0, "loaded");

    // A bulk change reloads the table; the reload fails while the store is
    // down and is retried (200 ms, then 1 s later).
    store.down.store(true, Ordering::SeqCst);
    router.invalidate_all();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(loading().await, 1, "reloading");
    store.down.store(false, Ordering::SeqCst);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while loading().await == 1 {
        assert!(tokio::time::Instant::now() < deadline, "never reloaded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(router.table_is_authoritative());
}

#[tokio::test]
async fn a_change_applied_during_a_lookup_is_not_hidden_by_its_answer() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_acme(dir.path()).await;
    // A TTL far longer than the test: only invalidation can correct a route.
    let config = CacheConfig {
        ttl: Duration::from_secs(3600),
        ..CacheConfig::default()
    };
    let router = Arc::new(Router::new(
        store.clone(),
        &config,
        true,
        Arc::new(Metrics::new(false, 0)),
    ));

    // A lookup reads "acme.test → acme"; before it returns, the domain is
    // removed and the change applied (it finds nothing cached to forget).
    store.hold_lookups.store(true, Ordering::SeqCst);
    let in_flight = tokio::spawn({
        let router = router.clone();
        async move { router.resolve("acme.test").await }
    });
    store.lookup_read.notified().await;
    store.inner.remove_domain("acme.test").await.unwrap();
    router.invalidate_domain("acme.test").await;
    store.hold_lookups.store(false, Ordering::SeqCst);
    store.release.notify_one();
    assert!(
        matches!(in_flight.await.unwrap(), Ok(Resolution::Tenant(_))),
        "the racing request itself gets what the store said"
    );

    assert!(
        matches!(router.resolve("acme.test").await, Ok(Resolution::Unknown)),
        "the next request asks the store again instead of keeping the old answer"
    );
}
