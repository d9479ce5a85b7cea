//! The warm domain table is authoritative: once a gateway has loaded it, a
//! flood of random unknown Hosts is answered 404 from memory, with no store
//! lookup and no cache entry per host, while known hosts (exact, wildcard,
//! `www.`) keep being served and changes made elsewhere (the CLI on the
//! embedded store, another replica on PostgreSQL) still reach the table.

mod common;

use std::time::Duration;

use common::pg::fresh_database;
use common::{eventually, run_command, Backend, Gateway, GatewayOptions};
use hyper::{Method, StatusCode};
use serde_json::json;

/// Long TTLs: only the table (and the change feed keeping it exact) can
/// explain what the gateway answers.
const LONG_TTLS: &str = "cache:\n  ttl: 1h\n  negative_ttl: 1h\n";
/// Random unknown hosts sent per flood.
const JUNK_HOSTS: usize = 2000;
/// Store lookups a flood may cause at most.
const HANDFUL: f64 = 5.0;

async fn store_lookups(gw: &Gateway) -> f64 {
    gw.metric("tenant_gateway_store_lookup_duration_seconds_count")
        .await
}

async fn until_warm(gw: &Gateway) {
    eventually(Duration::from_secs(10), "the table is warm", || async {
        gw.admin(Method::GET, "/readyz", None).await.0 == StatusCode::OK
    })
    .await;
}

async fn register_tenants(gw: &Gateway) {
    gw.create_tenant(json!({"id": "acme", "name": "Acme", "provision": false,
        "domains": ["acme.test", "*.acme.test"]}))
        .await;
    gw.create_tenant(json!({"id": "shop", "name": "Shop", "provision": false,
        "domains": ["shop.acme.test"]}))
        .await;
}

/// Sends `JUNK_HOSTS` random unknown Hosts; each must get 404. Returns the
/// store lookups they caused.
async fn junk_flood(gw: &Gateway) -> f64 {
    let before = store_lookups(gw).await;
    for _ in 0..JUNK_HOSTS {
        let host = format!(
            "j{:016x}.junk{}.example",
            fastrand::u64(..),
            fastrand::u8(..)
        );
        assert_eq!(
            gw.get(&host, "/").await.status,
            StatusCode::NOT_FOUND,
            "{host}"
        );
    }
    store_lookups(gw).await - before
}

/// The tenant `host` reaches, or the status it gets instead.
async fn routed(gw: &Gateway, host: &str) -> String {
    let reply = gw.get(host, "/").await;
    match reply.status {
        StatusCode::OK => reply.seen().header("x-tenant-id").unwrap_or("?").to_owned(),
        status => status.as_u16().to_string(),
    }
}

async fn until_routed(gw: &Gateway, host: &str, want: &str) {
    let what = format!("{host} → {want}");
    eventually(Duration::from_secs(5), &what, || async {
        routed(gw, host).await == want
    })
    .await;
}

async fn known_hosts_are_served(gw: &Gateway) {
    assert_eq!(routed(gw, "acme.test").await, "acme");
    assert_eq!(routed(gw, "www.acme.test").await, "acme", "strip_www");
    assert_eq!(routed(gw, "x.acme.test").await, "acme", "the wildcard");
    assert_eq!(
        routed(gw, "shop.acme.test").await,
        "shop",
        "exact beats wildcard"
    );
    assert_eq!(
        routed(gw, "a.b.acme.test").await,
        "404",
        "one label below only"
    );
}

#[tokio::test]
async fn junk_hosts_cost_no_store_lookup_on_the_embedded_store() {
    let app = Backend::start("app").await;
    let mut gw = Gateway::start(GatewayOptions::new().backend(&app).config(LONG_TTLS)).await;
    register_tenants(&gw).await;
    // Restarted, it loads them at start rather than through changes.
    gw.restart().await;
    until_warm(&gw).await;
    known_hosts_are_served(&gw).await;

    let lookups = junk_flood(&gw).await;
    assert!(lookups <= HANDFUL, "{lookups} store lookups for junk hosts");
    assert_eq!(
        gw.metric("tenant_gateway_cache_entries").await,
        gw.metric("tenant_gateway_domain_table_domains").await,
        "no cache entry per junk host"
    );
    known_hosts_are_served(&gw).await;

    // The CLI's writes reach the table through the store file's change log.
    let cli = |args: &'static [&'static str]| {
        let data = gw.data_file();
        async move {
            let mut args = args.to_vec();
            args.extend(["--data", data.to_str().unwrap()]);
            let done = run_command(&args, "", &[]).await;
            assert!(done.status.success(), "{args:?}: {}", done.stderr);
        }
    };
    cli(&["domains", "add", "new.test", "--tenant", "shop"]).await;
    until_routed(&gw, "new.test", "shop").await;
    cli(&["domains", "remove", "shop.acme.test"]).await;
    until_routed(&gw, "shop.acme.test", "acme").await;
    cli(&["tenants", "suspend", "acme"]).await;
    until_routed(&gw, "x.acme.test", "403").await;
    until_routed(&gw, "acme.test", "403").await;
    let lookups = junk_flood(&gw).await;
    assert!(lookups <= HANDFUL, "{lookups} store lookups after changes");
}

#[tokio::test]
async fn junk_hosts_cost_no_store_lookup_on_postgresql() {
    let db = fresh_database();
    let app = Backend::start("app").await;
    let replica = || {
        Gateway::start(
            GatewayOptions::new()
                .backend(&app)
                .config(LONG_TTLS)
                .store(&db),
        )
    };
    let a = replica().await;
    register_tenants(&a).await;
    let b = replica().await;
    until_warm(&b).await;
    known_hosts_are_served(&b).await;

    let lookups = junk_flood(&b).await;
    assert!(
        lookups <= HANDFUL,
        "{lookups} store lookups for junk hosts: {}",
        b.log()
    );

    // Changes made through replica a reach b's table through the change feed.
    a.add_domain("shop", "new.test").await;
    until_routed(&b, "new.test", "shop").await;
    a.remove_domain("shop.acme.test").await;
    until_routed(&b, "shop.acme.test", "acme").await;
    a.set_status("acme", "suspended").await;
    until_routed(&b, "x.acme.test", "403").await;
    until_routed(&b, "acme.test", "403").await;
    a.set_status("acme", "active").await;
    until_routed(&b, "acme.test", "acme").await;
    let lookups = junk_flood(&b).await;
    assert!(lookups <= HANDFUL, "{lookups} store lookups after changes");
    assert_eq!(b.metric("tenant_gateway_domain_table_domains").await, 3.0);
}
