//! Resolve-phase cost on a cache hit: host normalisation plus the routing
//! cache lookup, with 1,000,000 domains in the warm domain table (10,000
//! under `cargo test`, which runs each bench once); an unknown host answered
//! by the table; and the table's heap bytes per domain. Also the header
//! rewrite of the prepare phase, with tenant-header signing off and on.
//!
//!     cargo bench --bench routing
//!     ROUTING_BENCH_DOMAINS=10000000 cargo bench --bench routing -- resolve

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;

use async_trait::async_trait;
mod common;

use common::{ready, tenant};
use criterion::{criterion_group, criterion_main, Criterion};
use http::{HeaderMap, HeaderValue};
use tenant_gateway::config::{CacheConfig, HeaderNamesConfig, SigningConfig, SigningKeyConfig};
use tenant_gateway::metrics::Metrics;
use tenant_gateway::proxy::headers::{self, HeaderNames};
use tenant_gateway::proxy::signing::Signer;
use tenant_gateway::routing::{Resolution, Router};
use tenant_gateway::store::{HostMatch, Store, StoreError};
use tenant_gateway::tenant::host;
use tenant_gateway::tenant::{Domain, NewTenant, Tenant, TenantPatch, TenantRecord};

/// A read-only in-memory domain table, so the bench measures the cache and
/// not a store; after warming, the store is never called. The second field
/// is the domains in order, for `routes_page`.
struct TableStore(HashMap<String, Tenant>, Vec<String>);

/// Keeps no certificates (the trait's defaults).
impl tenant_gateway::store::UsageStore for TableStore {}
impl tenant_gateway::store::CertificateStore for TableStore {}

#[async_trait]
impl Store for TableStore {
    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
    async fn resolve_host(&self, host: &str) -> Result<Option<HostMatch>, StoreError> {
        Ok(self.0.get(host).map(|t| HostMatch {
            tenant: t.clone(),
            domain: host.to_owned(),
        }))
    }
    async fn create_tenant(&self, _: NewTenant) -> Result<TenantRecord, StoreError> {
        Err(StoreError::Backend("read-only".into()))
    }
    async fn import_tenants(
        &self,
        _: Vec<NewTenant>,
    ) -> Result<Vec<(usize, StoreError)>, StoreError> {
        Err(StoreError::Backend("read-only".into()))
    }
    async fn get_tenant(&self, _: &str) -> Result<Option<TenantRecord>, StoreError> {
        Ok(None)
    }
    async fn list_tenants(
        &self,
        _: Option<String>,
        _: usize,
    ) -> Result<Vec<TenantRecord>, StoreError> {
        Ok(vec![])
    }
    async fn update_tenant(&self, _: &str, _: TenantPatch) -> Result<TenantRecord, StoreError> {
        Err(StoreError::Backend("read-only".into()))
    }
    async fn delete_tenant(&self, _: &str) -> Result<TenantRecord, StoreError> {
        Err(StoreError::Backend("read-only".into()))
    }
    async fn add_domain(&self, _: &str, _: String, _: bool) -> Result<Domain, StoreError> {
        Err(StoreError::Backend("read-only".into()))
    }
    async fn remove_domain(&self, _: &str) -> Result<Domain, StoreError> {
        Err(StoreError::Backend("read-only".into()))
    }
    async fn routes_page(
        &self,
        after: Option<String>,
        limit: usize,
    ) -> Result<Vec<HostMatch>, StoreError> {
        let start = match after {
            Some(after) => self.1.partition_point(|d| *d <= after),
            None => 0,
        };
        Ok(self.1[start..(start + limit).min(self.1.len())]
            .iter()
            .map(|d| HostMatch {
                tenant: self.0[d].clone(),
                domain: d.clone(),
            })
            .collect())
    }
}

fn bench_resolve(c: &mut Criterion) {
    let full_run = std::env::args().any(|a| a == "--bench");
    let domains = match std::env::var("ROUTING_BENCH_DOMAINS") {
        Ok(n) => n
            .parse()
            .expect("ROUTING_BENCH_DOMAINS: a number of domains"),
        Err(_) if full_run => 1_000_000,
        Err(_) => 10_000,
    };
    let table: HashMap<String, Tenant> = (0..domains)
        .map(|i| (format!("t{i}.example.test"), tenant(i)))
        .collect();
    let mut sorted: Vec<String> = table.keys().cloned().collect();
    sorted.sort_unstable();
    let metrics = Arc::new(Metrics::new(false, 0));
    let cache = CacheConfig {
        max_entries: 2 * domains as u64,
        ..CacheConfig::default()
    };
    let router = Router::new(Arc::new(TableStore(table, sorted)), &cache, true, metrics);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        assert_eq!(router.warm().await.unwrap(), domains as u64);
    });
    assert!(router.table_is_authoritative());
    eprintln!(
        "warm domain table: {domains} domains, compact block {} bytes per domain",
        router.table_block_bytes() / domains
    );
    // Raw Host values as clients send them, some with a port and capitals.
    let hosts: Vec<Vec<u8>> = (0..4096)
        .map(|i| {
            let n = (i * 7919) % domains;
            match i % 3 {
                0 => format!("t{n}.example.test"),
                1 => format!("t{n}.example.test:8080"),
                _ => format!("T{n}.Example.Test"),
            }
            .into_bytes()
        })
        .collect();

    let mut group = c.benchmark_group(format!("resolve_{domains}_domains"));
    let mut i = 0usize;
    group.bench_function("normalize_host", |b| {
        b.iter(|| {
            i = (i + 1) % hosts.len();
            black_box(host::normalize_host(black_box(&hosts[i]), true).unwrap());
        })
    });
    group.bench_function("normalize_and_cache_hit", |b| {
        b.iter(|| {
            i = (i + 1) % hosts.len();
            let host = router.normalize(black_box(&hosts[i])).unwrap();
            match ready(router.resolve(host.as_str()), "the lookup").unwrap() {
                Resolution::Tenant(t) => black_box(t),
                Resolution::Unknown => panic!("every bench host is registered"),
            };
        })
    });
    let junk: Vec<Vec<u8>> = (0..4096)
        .map(|i| format!("j{i}.junk{}.example:443", i % 97).into_bytes())
        .collect();
    group.bench_function("normalize_and_unknown_host", |b| {
        b.iter(|| {
            i = (i + 1) % junk.len();
            let host = router.normalize(black_box(&junk[i])).unwrap();
            match ready(router.resolve(host.as_str()), "the lookup").unwrap() {
                Resolution::Unknown => {}
                Resolution::Tenant(_) => panic!("no junk host is registered"),
            };
        })
    });
    group.finish();

    let names = HeaderNames::from_config(&HeaderNamesConfig::default());
    let routed = match ready(router.resolve("t7.example.test"), "the lookup").unwrap() {
        Resolution::Tenant(t) => t,
        Resolution::Unknown => unreachable!(),
    };
    let peer = headers::PeerValues::new([127, 0, 0, 1].into(), "http");
    let mut template = HeaderMap::new();
    template.insert("host", HeaderValue::from_static("t7.example.test"));
    template.insert("user-agent", HeaderValue::from_static("wrk"));
    template.insert("accept", HeaderValue::from_static("*/*"));
    template.insert("x-tenant-id", HeaderValue::from_static("spoofed"));
    let signer = Signer::from_config(&SigningConfig {
        keys: vec![SigningKeyConfig {
            id: "k1".into(),
            secret: Some("a-bench-secret-of-at-least-32-bytes".into()),
            secret_env: None,
        }],
    })
    .unwrap();
    let mut group = c.benchmark_group("prepare_upstream_headers");
    for (label, signer) in [("signing_off", None), ("signing_on", Some(&signer))] {
        group.bench_function(label, |b| {
            b.iter(|| {
                let mut h = template.clone();
                headers::remove_hop_by_hop(&mut h);
                headers::strip_tenant_headers(&mut h, &names);
                headers::inject_tenant(&mut h, &names, &routed);
                let host = h.get("host").cloned();
                headers::set_forwarded(&mut h, &peer, host.as_ref());
                let id = headers::ensure_request_id(&mut h, &names);
                if let Some(signer) = signer {
                    headers::sign_tenant(&mut h, &names, signer, &routed, &id);
                }
                black_box(h)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_resolve);
criterion_main!(benches);
