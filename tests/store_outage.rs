//! A PostgreSQL outage behind a running gateway: hosts it has cached keep
//! being served (stale past their TTL), an unknown host gets a clear 503,
//! and once PostgreSQL is back the gateway recovers by itself. With the warm
//! domain table (the default), every registered host is served and unknown
//! hosts get 404 from memory throughout.

mod common;

use std::time::Duration;

use common::pg::private_server;
use common::{eventually, Backend, Gateway, GatewayOptions};
use hyper::StatusCode;
use serde_json::json;

#[tokio::test]
async fn cached_hosts_survive_a_store_outage_and_the_gateway_recovers() {
    let pg = private_server();
    let db = pg.fresh_database();
    let backend = Backend::start("app").await;
    let options = GatewayOptions::new()
        .backend(&backend)
        // Without the warm table: the cache of store answers, on its own.
        .config("cache:\n  ttl: 200ms\n  negative_ttl: 200ms\n  warm: false\nstore:\n  connect_timeout: 500ms\n")
        .store(&db);
    let gw = Gateway::with_acme(options).await;
    // The write comes back through the change feed and drops acme.test from
    // the cache; only a route cached after that can be served in the outage.
    gw.until_changes_applied(1).await;
    assert_eq!(gw.get("acme.test", "/").await.status, StatusCode::OK);

    pg.stop();
    tokio::time::sleep(Duration::from_millis(300)).await; // past the TTL
    for _ in 0..3 {
        let reply = gw.get("acme.test", "/").await;
        assert_eq!(reply.status, StatusCode::OK, "stale route served");
        assert_eq!(reply.seen().header("x-tenant-id"), Some("acme"));
    }
    let unknown = gw.get("nobody.test", "/").await;
    assert_eq!(unknown.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        unknown.text().contains("tenant lookup unavailable"),
        "{}",
        unknown.text()
    );

    pg.restart();
    eventually(Duration::from_secs(15), "the store is back", || async {
        gw.get("nobody.test", "/").await.status == StatusCode::NOT_FOUND
    })
    .await;
    gw.create_tenant(json!({"id": "globex", "name": "Globex", "domains": ["globex.test"]}))
        .await;
    assert_eq!(gw.get("globex.test", "/").await.status, StatusCode::OK);
    assert_eq!(gw.get("acme.test", "/").await.status, StatusCode::OK);
}

#[tokio::test]
async fn the_warm_table_answers_every_host_through_a_store_outage() {
    let pg = private_server();
    let db = pg.fresh_database();
    let backend = Backend::start("app").await;
    let options = GatewayOptions::new()
        .backend(&backend)
        .config("cache:\n  ttl: 200ms\n  negative_ttl: 200ms\nstore:\n  connect_timeout: 500ms\n")
        .store(&db);
    let gw = Gateway::start(options).await;
    gw.create_tenant(
        json!({"id": "acme", "name": "Acme", "domains": ["acme.test", "*.acme.test"]}),
    )
    .await;
    eventually(Duration::from_secs(5), "acme is routed", || async {
        gw.get("x.acme.test", "/").await.status == StatusCode::OK
    })
    .await;

    pg.stop();
    tokio::time::sleep(Duration::from_millis(300)).await; // past the TTL
    for host in ["acme.test", "www.acme.test", "x.acme.test"] {
        let reply = gw.get(host, "/").await;
        assert_eq!(reply.status, StatusCode::OK, "{host}: {}", reply.text());
        assert_eq!(reply.seen().header("x-tenant-id"), Some("acme"));
    }
    assert_eq!(
        gw.get("nobody.test", "/").await.status,
        StatusCode::NOT_FOUND
    );

    pg.restart();
    eventually(Duration::from_secs(15), "the store is back", || async {
        let (status, _) = gw
            .admin(
                hyper::Method::POST,
                "/v1/tenants",
                Some(json!({"id": "globex", "name": "Globex", "domains": ["globex.test"]})),
            )
            .await;
        status == StatusCode::CREATED
    })
    .await;
    assert_eq!(gw.get("globex.test", "/").await.status, StatusCode::OK);
    assert_eq!(gw.get("acme.test", "/").await.status, StatusCode::OK);
}
