//! Migrations under maintenance, with PostgreSQL: a tenant under steady
//! load is migrated with `--maintenance --hold 5s` by a migration that takes
//! 2 s; its backend receives no request while the migration runs, every
//! held request is answered 200 afterwards, and another tenant's traffic
//! goes on undelayed. A second replica sees a maintenance switch made
//! through the first.

mod common;

use std::time::Duration;

use common::pg::{fresh_database, psql};
use common::{
    api_error, eventually, run_command, Backend, Gateway, GatewayOptions, Outcome,
    ProvisioningFiles,
};
use hyper::{Method, StatusCode};
use serde_json::json;

/// A migration that records when it ran (ms since the epoch, by the
/// server's clock: the same machine's as the backend's) around a 2 s sleep.
const SLOW_MIGRATION: &str = "
CREATE TABLE migration_window (started bigint, ended bigint);
INSERT INTO migration_window (started) VALUES ((extract(epoch FROM clock_timestamp()) * 1000)::bigint);
SELECT pg_sleep(2);
UPDATE migration_window SET ended = (extract(epoch FROM clock_timestamp()) * 1000)::bigint;
";

fn failures(outcomes: &[Outcome]) -> Vec<&Outcome> {
    outcomes.iter().filter(|o| !o.ok()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_migrated_under_maintenance_is_held_and_no_other_notices() {
    let db = fresh_database();
    let files = ProvisioningFiles::new(&[("0001_init.sql", "CREATE TABLE users (id int);")], None);
    let backend = Backend::start("app").await;
    let gw = Gateway::start(
        GatewayOptions::new()
            .backend(&backend)
            .store(&db)
            .provisioning(&files)
            .workers(2),
    )
    .await;
    for id in ["acme", "globex"] {
        gw.create_tenant(json!({"id": id, "name": id, "domains": [format!("{id}.test")]}))
            .await;
    }
    let acme = gw.load("acme.test", 3);
    let globex = gw.load("globex.test", 2);
    acme.wait_for(20, Duration::from_secs(10), "acme is served", Outcome::ok)
        .await;
    globex
        .wait_for(20, Duration::from_secs(10), "globex is served", Outcome::ok)
        .await;

    std::fs::write(files.migrations_dir().join("0002_slow.sql"), SLOW_MIGRATION).unwrap();
    let dir = files.migrations_dir().display().to_string();
    let args = [
        "tenants",
        "migrate",
        "acme",
        "--maintenance",
        "--hold",
        "5s",
        "--store",
        &db,
        "--migrations",
        &dir,
    ];
    let out = run_command(&args, "", &[]).await;
    assert!(out.status.success(), "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("applied 0002_slow.sql"),
        "{}",
        out.stdout
    );
    // Requests keep flowing after the migration.
    let after = acme.count(|_| true) + 20;
    acme.wait_for(
        after,
        Duration::from_secs(10),
        "acme is served again",
        |_| true,
    )
    .await;
    let (acme, globex) = (acme.stop().await, globex.stop().await);

    let window = psql(
        &db,
        "SELECT started || ',' || ended FROM acme.migration_window",
    );
    let (started, ended) = window.split_once(',').unwrap();
    let (started, ended): (u64, u64) = (started.parse().unwrap(), ended.parse().unwrap());
    assert!(ended - started >= 2000, "{window}");
    assert!(failures(&acme).is_empty(), "{:?}", failures(&acme));
    let during: Vec<_> = acme
        .iter()
        .filter(|o| {
            o.received_ms
                .is_some_and(|at| (started..=ended).contains(&at))
        })
        .collect();
    assert!(
        during.is_empty(),
        "reached the backend mid-migration: {during:?}"
    );
    let held = acme
        .iter()
        .filter(|o| o.took >= Duration::from_millis(1500))
        .count();
    assert!(
        held >= 3,
        "every client was held through the migration ({held})"
    );

    assert!(failures(&globex).is_empty(), "{:?}", failures(&globex));
    let slowest = globex.iter().map(|o| o.took).max().unwrap();
    assert!(
        slowest < Duration::from_millis(1000),
        "globex waited {slowest:?}"
    );
    let (_, shown) = gw.admin(Method::GET, "/v1/tenants/acme", None).await;
    assert!(shown.get("maintenance").is_none(), "switched off: {shown}");
    assert_eq!(
        gw.metric("tenant_gateway_requests_total{class=\"5xx\",outcome=\"maintenance\"}")
            .await,
        0.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_replica_sees_a_maintenance_switch_through_the_change_feed() {
    let db = fresh_database();
    let backend = Backend::start("app").await;
    // Hour-long TTLs: only the change feed explains replica b noticing.
    let yaml = "cache:\n  ttl: 1h\n  negative_ttl: 1h\n";
    let replica = || {
        Gateway::start(
            GatewayOptions::new()
                .backend(&backend)
                .config(yaml)
                .store(&db),
        )
    };
    let (a, b) = (replica().await, replica().await);
    a.create_tenant(
        json!({"id": "acme", "name": "Acme", "domains": ["acme.test"], "provision": false}),
    )
    .await;
    eventually(Duration::from_secs(5), "b routes acme", || async {
        b.get("acme.test", "/").await.status == StatusCode::OK
    })
    .await;

    let path = "/v1/tenants/acme/maintenance";
    let (status, body) = a
        .admin(Method::POST, path, Some(json!({"enabled": true})))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    eventually(Duration::from_secs(2), "b answers 503", || async {
        b.get("acme.test", "/").await.status == StatusCode::SERVICE_UNAVAILABLE
    })
    .await;
    a.admin(Method::POST, path, Some(json!({"enabled": false})))
        .await;
    eventually(Duration::from_secs(2), "b routes acme again", || async {
        b.get("acme.test", "/").await.status == StatusCode::OK
    })
    .await;

    // The admin API's migrate endpoints take the same option, checked first.
    for path in [
        "/v1/tenants/acme/migrate?hold=2s",
        "/v1/tenants/acme/migrate?maintenance=true&hold=2h",
        "/v1/migrate?maintenance=true&hold=soon",
    ] {
        let (status, body) = a.admin(Method::POST, path, None).await;
        let message = api_error(status, &body, StatusCode::BAD_REQUEST, "bad_request");
        assert!(message.starts_with("hold"), "{path}: {message}");
    }
}
