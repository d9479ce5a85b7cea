//! Provisioning throughput against a throwaway PostgreSQL: N schema tenants
//! with a 20-table migration set, replaying the migrations vs cloning the
//! template schema. Prints ms/tenant and tenants/s. Under `cargo test`
//! (no `--bench`) it provisions 2 tenants per mode as a smoke check;
//! `PROVISION_BENCH_N` sets N (default 100).

#[path = "../tests/common/pg.rs"]
#[allow(dead_code)]
mod pg;
#[path = "../tests/common/ports.rs"]
mod ports;

use std::time::Instant;

use tenant_gateway::config::{Config, StoreKind};
use tenant_gateway::provision::Provisioner;
use tenant_gateway::store::PgStore;
use tenant_gateway::tenant::{Isolation, NewTenant, TenantStatus};

fn migrations(dir: &std::path::Path) {
    for i in 0..20 {
        let fk = if i == 0 {
            String::new()
        } else {
            format!(", parent_id int REFERENCES t{} (id)", i - 1)
        };
        std::fs::write(
            dir.join(format!("{:04}_t{i}.sql", i + 1)),
            format!(
                "CREATE TABLE t{i} (id serial PRIMARY KEY, name text NOT NULL UNIQUE,
                   created timestamptz NOT NULL DEFAULT now(), n int CHECK (n >= 0){fk});
                 CREATE INDEX t{i}_created_idx ON t{i} (created);"
            ),
        )
        .unwrap();
    }
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let n = match std::env::var("PROVISION_BENCH_N") {
        Ok(n) => n.parse().expect("PROVISION_BENCH_N is a number"),
        Err(_) if full => 100,
        Err(_) => 2,
    };
    let server = pg::server();
    let dir = tempfile::tempdir().unwrap();
    migrations(dir.path());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    for template in [None, Some("tenant_template")] {
        let url = server.fresh_database();
        let mut config = Config::default();
        config.store.kind = StoreKind::Postgres;
        config.store.url = Some(url);
        config.provisioning.migrations = Some(dir.path().to_owned());
        config.provisioning.template_schema = template.map(str::to_owned);
        runtime.block_on(async {
            let store = PgStore::open(&config.store).await.unwrap();
            let provisioner = Provisioner::load(store, &config.provisioning).unwrap();
            let tenant = |i: usize| NewTenant {
                id: format!("t{i}"),
                name: format!("Tenant {i}"),
                schema: format!("tenant_{i}"),
                isolation: Isolation::Schema,
                status: TenantStatus::Active,
                pool: None,
                plan: None,
                cluster: None,
                domains: vec![format!("t{i}.bench")],
                columns: Default::default(),
            };
            provisioner.create(tenant(0)).await.unwrap(); // warm-up (and the template)
            let started = Instant::now();
            for i in 1..=n {
                provisioner.create(tenant(i)).await.unwrap();
            }
            let secs = started.elapsed().as_secs_f64();
            println!(
                "provision/{:<8} {n} tenants, 20 tables: {:.1} ms/tenant, {:.0} tenants/s",
                if template.is_some() {
                    "clone"
                } else {
                    "migrate"
                },
                secs * 1000.0 / n as f64,
                n as f64 / secs
            );
        });
    }
}
