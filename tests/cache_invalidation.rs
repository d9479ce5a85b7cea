//! Admin changes reach the data path on the very next request, although
//! hosts are cached (here for an hour, so only invalidation can explain a
//! change), and the CLI's changes to the embedded store's file within a
//! moment (through the file's change log). Each test first makes the gateway
//! cache a host, then changes it, then checks the answer on every data-path
//! worker (two of them).

mod common;

use std::time::Duration;

use common::{eventually, run_command, Backend, Gateway, GatewayOptions};
use hyper::{Method, StatusCode};
use serde_json::json;

const OK: StatusCode = StatusCode::OK;
const NOT_FOUND: StatusCode = StatusCode::NOT_FOUND;

/// A two-worker gateway whose cache entries only go away when invalidated.
async fn gateway(app: &Backend) -> Gateway {
    Gateway::start(
        GatewayOptions::new()
            .backend(app)
            .workers(2)
            .config("cache:\n  ttl: 1h\n  negative_ttl: 1h\n"),
    )
    .await
}

async fn cache_hits(gw: &Gateway) -> f64 {
    gw.metric("tenant_gateway_cache_hits_total").await
}

#[tokio::test]
async fn removed_domain_is_unrouted_on_the_very_next_request() {
    let app = Backend::start("app").await;
    let gw = gateway(&app).await;
    gw.create_tenant(json!({
        "id": "acme", "name": "Acme", "domains": ["acme.test", "old.acme.test"]
    }))
    .await;
    assert_eq!(gw.status_everywhere("old.acme.test").await, OK);
    assert!(cache_hits(&gw).await >= 1.0, "the host is cached");

    gw.remove_domain("old.acme.test").await;

    let reply = gw.answers_everywhere("old.acme.test").await;
    assert_eq!(reply.status, NOT_FOUND);
    assert_eq!(reply.text(), "no tenant for hostname old.acme.test\n");
    assert_eq!(gw.status_everywhere("acme.test").await, OK);
}

#[tokio::test]
async fn a_host_that_got_404_is_routable_as_soon_as_its_domain_is_added() {
    let app = Backend::start("app").await;
    let gw = gateway(&app).await;
    gw.create_tenant(json!({"id": "acme", "name": "Acme", "domains": ["acme.test"]}))
        .await;
    assert_eq!(gw.status_everywhere("new.acme.test").await, NOT_FOUND);
    assert!(cache_hits(&gw).await >= 1.0, "the 404 is cached");

    gw.add_domain("acme", "New.Acme.test").await;

    assert_eq!(
        gw.tenant_everywhere("new.acme.test").await.as_deref(),
        Some("acme")
    );
}

#[tokio::test]
async fn a_host_that_got_404_is_routable_as_soon_as_a_tenant_claims_it() {
    let app = Backend::start("app").await;
    let gw = gateway(&app).await;
    assert_eq!(gw.status_everywhere("globex.test").await, NOT_FOUND);

    gw.create_tenant(json!({"id": "globex", "name": "Globex", "domains": ["globex.test"]}))
        .await;

    assert_eq!(
        gw.tenant_everywhere("globex.test").await.as_deref(),
        Some("globex")
    );
}

#[tokio::test]
async fn deleted_tenant_has_all_its_domains_unrouted_at_once() {
    let app = Backend::start("app").await;
    let gw = gateway(&app).await;
    gw.create_tenant(json!({
        "id": "acme", "name": "Acme", "domains": ["acme.test", "acme.example", "*.acme.cloud"]
    }))
    .await;
    gw.create_tenant(json!({"id": "globex", "name": "Globex", "domains": ["globex.test"]}))
        .await;
    let hosts = ["acme.test", "acme.example", "eu.acme.cloud"];
    for host in hosts {
        assert_eq!(gw.status_everywhere(host).await, OK, "{host}");
    }

    let (status, _) = gw.admin(Method::DELETE, "/v1/tenants/acme", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    for host in hosts {
        assert_eq!(gw.status_everywhere(host).await, NOT_FOUND, "{host}");
    }
    assert_eq!(gw.status_everywhere("globex.test").await, OK);
    let (status, body) = gw.admin(Method::GET, "/v1/tenants/acme", None).await;
    assert_eq!(status, NOT_FOUND);
    assert_eq!(body["error"]["code"], "not_found");
}

#[tokio::test]
async fn suspending_a_cached_tenant_takes_effect_at_once() {
    let app = Backend::start("app").await;
    let gw = gateway(&app).await;
    gw.create_tenant(
        json!({"id": "acme", "name": "Acme", "domains": ["acme.test", "*.acme.cloud"]}),
    )
    .await;
    assert_eq!(gw.status_everywhere("acme.test").await, OK);
    assert_eq!(gw.status_everywhere("eu.acme.cloud").await, OK);

    gw.set_status("acme", "suspended").await;
    assert_eq!(
        gw.status_everywhere("acme.test").await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        gw.status_everywhere("eu.acme.cloud").await,
        StatusCode::FORBIDDEN
    );

    gw.set_status("acme", "active").await;
    assert_eq!(gw.status_everywhere("acme.test").await, OK);
    assert_eq!(gw.status_everywhere("eu.acme.cloud").await, OK);
}

#[tokio::test]
async fn removed_wildcard_unroutes_every_cached_host_under_it() {
    let app = Backend::start("app").await;
    let gw = gateway(&app).await;
    gw.create_tenant(json!({
        "id": "shops", "name": "Shops", "domains": ["shops.test", "*.shops.test"]
    }))
    .await;
    for host in ["a.shops.test", "b.shops.test", "shops.test"] {
        assert_eq!(gw.status_everywhere(host).await, OK, "{host}");
    }

    gw.remove_domain("*.shops.test").await;

    for host in ["a.shops.test", "b.shops.test"] {
        assert_eq!(gw.status_everywhere(host).await, NOT_FOUND, "{host}");
    }
    // The tenant's exact domain is not under the wildcard.
    assert_eq!(gw.status_everywhere("shops.test").await, OK);
}

#[tokio::test]
async fn added_wildcard_routes_hosts_under_it_that_got_404() {
    let app = Backend::start("app").await;
    let gw = gateway(&app).await;
    gw.create_tenant(json!({"id": "shops", "name": "Shops"}))
        .await;
    assert_eq!(gw.status_everywhere("a.shops.test").await, NOT_FOUND);

    gw.add_domain("shops", "*.shops.test").await;

    assert_eq!(
        gw.tenant_everywhere("a.shops.test").await.as_deref(),
        Some("shops")
    );
}

#[tokio::test]
async fn an_exact_domain_added_under_a_cached_wildcard_takes_over_at_once() {
    let app = Backend::start("app").await;
    let gw = gateway(&app).await;
    gw.create_tenant(json!({"id": "shops", "name": "Shops", "domains": ["*.shops.test"]}))
        .await;
    gw.create_tenant(json!({"id": "vip", "name": "VIP"})).await;
    assert_eq!(
        gw.tenant_everywhere("vip.shops.test").await.as_deref(),
        Some("shops")
    );

    gw.add_domain("vip", "vip.shops.test").await;
    assert_eq!(
        gw.tenant_everywhere("vip.shops.test").await.as_deref(),
        Some("vip")
    );

    gw.remove_domain("vip.shops.test").await;
    assert_eq!(
        gw.tenant_everywhere("vip.shops.test").await.as_deref(),
        Some("shops")
    );
}

/// Runs `tenant-gateway ARGS --data FILE` on the store file of `gw`.
async fn cli_on_store_of(gw: &Gateway, args: &[&str]) {
    let data = gw.data_file();
    let mut args = args.to_vec();
    args.extend(["--data", data.to_str().unwrap()]);
    let done = run_command(&args, "", &[]).await;
    assert!(done.status.success(), "{args:?}: {}", done.stderr);
}

/// Waits until `host` answers `status`, then checks every worker does.
async fn until_status(gw: &Gateway, host: &str, status: StatusCode, what: &str) {
    eventually(Duration::from_secs(3), what, || async {
        gw.get(host, "/").await.status == status
    })
    .await;
    assert_eq!(gw.status_everywhere(host).await, status, "{what}");
}

#[tokio::test]
async fn the_clis_changes_to_the_store_file_reach_a_running_gateway() {
    let app = Backend::start("app").await;
    let gw = gateway(&app).await;
    gw.create_tenant(json!({"id": "acme", "name": "Acme", "domains": ["acme.test"]}))
        .await;
    assert_eq!(gw.status_everywhere("acme.test").await, OK);
    assert_eq!(gw.status_everywhere("more.test").await, NOT_FOUND);

    cli_on_store_of(&gw, &["tenants", "suspend", "acme"]).await;
    until_status(&gw, "acme.test", StatusCode::FORBIDDEN, "acme is suspended").await;
    cli_on_store_of(&gw, &["tenants", "resume", "acme"]).await;
    until_status(&gw, "acme.test", OK, "acme is resumed").await;
    cli_on_store_of(&gw, &["domains", "add", "more.test", "--tenant", "acme"]).await;
    until_status(&gw, "more.test", OK, "the added domain is routed").await;
    cli_on_store_of(&gw, &["domains", "remove", "acme.test"]).await;
    until_status(&gw, "acme.test", NOT_FOUND, "the removed domain is not").await;
    assert!(
        gw.metric("tenant_gateway_store_changes_applied_total")
            .await
            >= 4.0,
        "through the change log"
    );
}
