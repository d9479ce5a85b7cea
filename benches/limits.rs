//! Admit-phase cost per request (`traffic::limits`), as `Proxy::route` runs
//! it: with no limits configured (the fast path: one flag, one `Option`),
//! with a plan's rate limit, and with a rate limit and a concurrency cap
//! (the slot taken and given back), over 10,000 tenants taken in turn (the
//! lookups miss the CPU cache) and for one tenant (they hit it). Goals:
//! 50 ns without limits, 150 ns with.
//!
//!     cargo bench --bench limits

use std::collections::BTreeMap;
use std::hint::black_box;

mod common;

use common::ready;
use criterion::{criterion_group, criterion_main, Criterion};
use tenant_gateway::config::{LimitsConfig, PlanConfig};
use tenant_gateway::tenant::controls::TenantLimits;
use tenant_gateway::tenant::Tenant;
use tenant_gateway::traffic::limits::{Admitted, Limiter};

const TENANTS: usize = 10_000;

/// What `Proxy::route` runs after decide.
async fn admit_phase(limiter: &Limiter, tenant: &Tenant) -> Option<Admitted> {
    if limiter.applies(tenant) {
        limiter.admit(tenant).await.ok().flatten()
    } else {
        None
    }
}

fn tenants(plan: &str) -> Vec<Tenant> {
    (0..TENANTS)
        .map(|i| Tenant {
            plan: Some(plan.into()),
            ..common::tenant(i)
        })
        .collect()
}

fn limiter(limits: TenantLimits) -> Limiter {
    let mut plans = BTreeMap::new();
    plans.insert("free".to_string(), PlanConfig { pool: None, limits });
    Limiter::new(&plans, &LimitsConfig::default())
}

fn bench_admit(c: &mut Criterion) {
    let tenants = tenants("free");
    // A rate no bench reaches, so every request is admitted (the common case).
    let rate = || Some("4000000000/s".parse().expect("rate"));
    let cases = [
        ("admit/no_limits", TenantLimits::default()),
        (
            "admit/rate",
            TenantLimits {
                rate: rate(),
                ..TenantLimits::default()
            },
        ),
        (
            "admit/rate_and_concurrency",
            TenantLimits {
                rate: rate(),
                burst: None,
                concurrency: Some(1_000),
            },
        ),
    ];
    let mut group = c.benchmark_group("limits");
    for (label, limits) in cases {
        let limiter = limiter(limits);
        let mut i = 0;
        group.bench_function(label, |b| {
            b.iter(|| {
                i = (i + 1) % TENANTS;
                black_box(ready(
                    admit_phase(&limiter, black_box(&tenants[i])),
                    "the admission",
                ))
            })
        });
        // One tenant over and over: its state stays in the CPU cache, so
        // this is the admission's own work, without the memory misses.
        group.bench_function(format!("{label}/one_tenant"), |b| {
            b.iter(|| {
                black_box(ready(
                    admit_phase(&limiter, black_box(&tenants[0])),
                    "the admission",
                ))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_admit);
criterion_main!(benches);
