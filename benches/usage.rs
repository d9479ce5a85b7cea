//! The per-request cost of usage metering: `Meter::record` on a worker's
//! own shard, for one busy tenant and for 10,000 tenants in turn, beside
//! the check a gateway with metering off makes (an empty `Option`).

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use tenant_gateway::traffic::usage::{Meter, Sample};

fn sample() -> Sample {
    Sample {
        status: 200,
        bytes_in: 120,
        bytes_out: 4096,
        upstream: Duration::from_micros(850),
    }
}

fn record(c: &mut Criterion) {
    let mut group = c.benchmark_group("usage");
    let off: Option<Arc<Meter>> = black_box(None);
    group.bench_function("off", |b| {
        b.iter(|| {
            if let Some(meter) = &off {
                meter.record(0, "acme", &sample());
            }
        })
    });
    let meter = Meter::new(2);
    group.bench_function("record_one_tenant", |b| {
        b.iter(|| meter.record(0, black_box("acme-corporation"), &sample()))
    });
    let tenants: Vec<String> = (0..10_000).map(|i| format!("tenant-{i:05}")).collect();
    let mut i = 0;
    group.bench_function("record_10k_tenants", |b| {
        b.iter(|| {
            i = (i + 1) % tenants.len();
            meter.record(0, black_box(&tenants[i]), &sample())
        })
    });
    group.finish();
}

criterion_group!(benches, record);
criterion_main!(benches);
