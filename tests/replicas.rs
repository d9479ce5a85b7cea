//! Several gateway replicas sharing one PostgreSQL registry: a change made
//! through one replica reaches the others' caches through the change feed
//! (LISTEN/NOTIFY plus the change log), under load, and survives a
//! PostgreSQL outage. The caches' TTLs are set to an hour, so only the feed
//! can explain a replica noticing a change. Commands run against the store
//! (the CLI) reach running gateways the same way. A new replica loads the
//! domain table before its first request.

mod common;

use std::time::{Duration, Instant};

use common::pg::{fresh_database, private_server};
use common::{api_error, eventually, run_command, Backend, Gateway, GatewayOptions, Load};
use hyper::{Method, StatusCode};
use serde_json::json;

/// Long TTLs: without the change feed no replica would see a change for an hour.
const LONG_TTLS: &str = "cache:\n  ttl: 1h\n  negative_ttl: 1h\n";

async fn replica(store_url: &str, backend: &Backend, yaml: &str) -> Gateway {
    Gateway::start(
        GatewayOptions::new()
            .backend(backend)
            .config(yaml)
            .store(store_url),
    )
    .await
}

/// Sends requests for `host` to `gw` until it is routed to `tenant` (or, with
/// `None`, refused with 404); returns how long that took.
async fn time_until_routed(gw: &Gateway, host: &str, tenant: Option<&str>) -> Duration {
    let started = Instant::now();
    loop {
        let reply = gw.get(host, "/").await;
        let routed = match tenant {
            Some(id) => {
                reply.status == StatusCode::OK && reply.seen().header("x-tenant-id") == Some(id)
            }
            None => reply.status == StatusCode::NOT_FOUND,
        };
        if routed {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{host} never reached {tenant:?} on a replica: {} {}",
            reply.status,
            reply.text()
        );
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn assert_no_failures(name: &str, outcomes: &[common::Outcome]) {
    let failed: Vec<_> = outcomes.iter().filter(|o| !o.ok()).collect();
    assert!(
        !outcomes.is_empty() && failed.is_empty(),
        "{name}: {} of {} requests for a known host failed, e.g. {:?}",
        failed.len(),
        outcomes.len(),
        failed.first()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_on_one_replica_reaches_the_others_under_load() {
    let db = fresh_database();
    let backend = Backend::start("app").await;
    let a = replica(&db, &backend, LONG_TTLS).await;
    let b = replica(&db, &backend, LONG_TTLS).await;
    let c = replica(&db, &backend, LONG_TTLS).await;
    a.create_tenant(
        json!({"id": "acme", "name": "Acme", "domains": ["acme.test"], "provision": false}),
    )
    .await;
    eventually(
        Duration::from_secs(5),
        "acme is routed everywhere",
        || async {
            b.get("acme.test", "/").await.status == StatusCode::OK
                && c.get("acme.test", "/").await.status == StatusCode::OK
        },
    )
    .await;
    let loads: Vec<Load> = [&a, &b, &c]
        .iter()
        .map(|g| g.load("acme.test", 2))
        .collect();

    let mut propagation = Vec::new();
    for i in 0..20 {
        let host = format!("t{i}.test");
        let tenant = format!("t{i}");
        // B and C first learn that the host is unknown (cached for an hour).
        assert_eq!(b.get(&host, "/").await.status, StatusCode::NOT_FOUND);
        assert_eq!(c.get(&host, "/").await.status, StatusCode::NOT_FOUND);

        a.create_tenant(
            json!({"id": tenant, "name": tenant, "domains": [host], "provision": false}),
        )
        .await;
        let (on_b, on_c) = tokio::join!(
            time_until_routed(&b, &host, Some(&tenant)),
            time_until_routed(&c, &host, Some(&tenant))
        );
        propagation.extend([on_b, on_c]);

        // Removing it through B is seen by A and C.
        b.remove_domain(&host).await;
        let (on_a, on_c) = tokio::join!(
            time_until_routed(&a, &host, None),
            time_until_routed(&c, &host, None)
        );
        propagation.extend([on_a, on_c]);
    }

    // A suspension (a tenant-wide change) reaches every replica too.
    a.set_status("acme", "suspended").await;
    for gw in [&b, &c] {
        eventually(Duration::from_secs(5), "acme is suspended", || async {
            gw.get("acme.test", "/").await.status == StatusCode::FORBIDDEN
        })
        .await;
    }
    let outcomes: Vec<_> = {
        let mut all = Vec::new();
        for load in loads {
            all.push(load.stop().await);
        }
        all
    };
    for (name, outcomes) in ["a", "b", "c"].iter().zip(&outcomes) {
        // Every answer before the suspension was routed.
        let before: Vec<_> = outcomes
            .iter()
            .filter(|o| o.status != Some(StatusCode::FORBIDDEN))
            .cloned()
            .collect();
        assert_no_failures(name, &before);
    }
    assert!(b.metric("tenant_gateway_store_changes_applied_total").await >= 40.0);
    assert_eq!(
        b.metric("tenant_gateway_store_change_feed_connected").await,
        1.0
    );

    propagation.sort();
    let (p50, p99) = (
        percentile(&propagation, 0.5),
        percentile(&propagation, 0.99),
    );
    eprintln!(
        "propagation over {} changes seen by other replicas under load: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        propagation.len(),
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
        propagation.last().unwrap().as_secs_f64() * 1e3,
    );
}

#[tokio::test]
async fn a_new_replica_loads_the_domain_table_before_its_first_request() {
    let pg = private_server();
    let db = pg.fresh_database();
    let backend = Backend::start("app").await;
    let a = replica(&db, &backend, LONG_TTLS).await;
    for i in 0..25 {
        a.create_tenant(
            json!({"id": format!("t{i}"), "name": "T", "provision": false,
            "domains": [format!("t{i}.test"), format!("*.t{i}.test")]}),
        )
        .await;
    }
    let b = replica(&db, &backend, LONG_TTLS).await;
    eventually(
        Duration::from_secs(10),
        "b has warmed its cache",
        || async { b.admin(Method::GET, "/readyz", None).await.0 == StatusCode::OK },
    )
    .await;
    assert_eq!(b.metric("tenant_gateway_domain_table_domains").await, 50.0);

    // Only the table can answer now: every domain, exact and wildcard, was
    // loaded, though b never served a request.
    pg.stop();
    for i in [0, 12, 24] {
        let reply = b.get(&format!("t{i}.test"), "/").await;
        assert_eq!(reply.status, StatusCode::OK, "t{i}.test: {}", reply.text());
        assert_eq!(
            reply.seen().header("x-tenant-id"),
            Some(format!("t{i}").as_str())
        );
    }
    let reply = b.get("x.t3.test", "/").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.seen().header("x-tenant-id"), Some("t3"));
    assert_eq!(
        b.get("junk.example", "/").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_ride_out_a_store_outage_and_catch_up_after_it() {
    let pg = private_server();
    let db = pg.fresh_database();
    let backend = Backend::start("app").await;
    // Known routes expire fast (so the outage serves them stale); unknown
    // hosts are remembered for an hour (so only the feed can correct them).
    let yaml = "cache:\n  ttl: 200ms\n  negative_ttl: 1h\nstore:\n  connect_timeout: 500ms\n  resync_interval: 1s\n";
    let a = replica(&db, &backend, yaml).await;
    let b = replica(&db, &backend, yaml).await;
    a.create_tenant(
        json!({"id": "acme", "name": "Acme", "domains": ["acme.test"], "provision": false}),
    )
    .await;
    eventually(Duration::from_secs(5), "acme is routed on b", || async {
        b.get("acme.test", "/").await.status == StatusCode::OK
    })
    .await;
    assert_eq!(b.get("later.test", "/").await.status, StatusCode::NOT_FOUND);
    // A's own write also comes back to A through the feed and drops acme.test
    // from its cache: wait for that, so the route A serves stale is cached.
    a.until_changes_applied(1).await;
    let loads = [a.load("acme.test", 2), b.load("acme.test", 2)];

    pg.stop();
    tokio::time::sleep(Duration::from_millis(600)).await; // past the TTL
    let (status, body) = a
        .admin(
            Method::POST,
            "/v1/tenants",
            Some(json!({"id": "globex", "name": "Globex", "domains": ["later.test"]})),
        )
        .await;
    let message = api_error(
        status,
        &body,
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
    );
    assert!(message.contains("connect"), "{message}");
    // b's warm table holds every domain, so it answers an unknown host
    // itself, store or no store.
    assert_eq!(
        b.get("unknown.test", "/").await.status,
        StatusCode::NOT_FOUND
    );
    eventually(
        Duration::from_secs(5),
        "b notices the feed is down",
        || async { b.metric("tenant_gateway_store_change_feed_connected").await == 0.0 },
    )
    .await;

    pg.restart();
    // A change through A as soon as it can write again: B gets it by its
    // notification or, if its feed reconnects later, by catching up on the log.
    eventually(Duration::from_secs(15), "a can write again", || async {
        let (status, _) = a
            .admin(
                Method::POST,
                "/v1/tenants",
                Some(json!({"id": "globex", "name": "Globex", "domains": ["later.test"], "provision": false})),
            )
            .await;
        status == StatusCode::CREATED
    })
    .await;
    let took = time_until_routed(&b, "later.test", Some("globex")).await;
    eprintln!(
        "after the outage, b routed the new domain {:.0} ms after a's write",
        took.as_secs_f64() * 1e3
    );
    for (name, load) in ["a", "b"].iter().zip(loads) {
        assert_no_failures(name, &load.stop().await);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_run_against_the_store_reach_running_gateways() {
    let db = fresh_database();
    let backend = Backend::start("app").await;
    let gw = replica(&db, &backend, LONG_TTLS).await;
    assert_eq!(gw.get("cli.test", "/").await.status, StatusCode::NOT_FOUND);

    let cli = |args: &'static [&'static str]| {
        let db = db.clone();
        async move {
            let mut all = args.to_vec();
            all.extend(["--store", &db]);
            let out = run_command(&all, "", &[]).await;
            assert!(out.status.success(), "{args:?}: {}", out.stderr);
        }
    };
    cli(&[
        "tenants",
        "create",
        "--id",
        "cli",
        "--name",
        "Cli",
        "--domain",
        "cli.test",
        "--no-provision",
    ])
    .await;
    time_until_routed(&gw, "cli.test", Some("cli")).await;
    cli(&["tenants", "suspend", "cli"]).await;
    eventually(Duration::from_secs(5), "the suspension is seen", || async {
        gw.get("cli.test", "/").await.status == StatusCode::FORBIDDEN
    })
    .await;
    cli(&["domains", "remove", "cli.test"]).await;
    time_until_routed(&gw, "cli.test", None).await;
}
