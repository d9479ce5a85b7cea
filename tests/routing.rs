//! Host → tenant routing through the real gateway: which tenant a request
//! reaches, how the Host header is normalised, wildcard domains, unknown
//! hosts under each policy, suspended tenants and static tenants.

mod common;

use common::{Backend, Gateway, GatewayOptions};
use hyper::StatusCode;
use serde_json::json;

#[tokio::test]
async fn two_tenants_are_routed_by_host_to_their_own_tenant_headers() {
    let app = Backend::start("app").await;
    let gw = Gateway::with_acme(GatewayOptions::new().backend(&app)).await;
    gw.create_tenant(json!({
        "id": "globex", "name": "Globex", "schema": "globex_data", "domains": ["globex.test"]
    }))
    .await;

    let acme = gw.get("acme.test", "/orders?page=2").await;
    assert_eq!(acme.status, StatusCode::OK);
    let seen = acme.seen();
    assert_eq!(seen.backend(), "app");
    assert_eq!(seen.path(), "/orders?page=2");
    assert_eq!(seen.header("x-tenant-id"), Some("acme"));
    assert_eq!(seen.header("x-tenant-schema"), Some("acme"));

    let globex = gw.get("globex.test", "/").await.seen();
    assert_eq!(globex.header("x-tenant-id"), Some("globex"));
    assert_eq!(globex.header("x-tenant-schema"), Some("globex_data"));
}

#[tokio::test]
async fn isolation_type_decides_which_tenant_headers_are_sent() {
    let app = Backend::start("app").await;
    let gw = Gateway::start(GatewayOptions::new().backend(&app)).await;
    for (id, isolation) in [
        ("by-schema", "schema"),
        ("by-db", "database"),
        ("by-table", "table"),
        ("by-cache", "cache"),
    ] {
        gw.create_tenant(json!({
            "id": id, "name": id, "isolation": isolation, "domains": [format!("{id}.test")]
        }))
        .await;
    }

    let schema = gw.get("by-schema.test", "/").await.seen();
    assert_eq!(
        schema.tenant_header_names(),
        ["x-tenant-id", "x-tenant-schema"]
    );
    assert_eq!(schema.header("x-tenant-schema"), Some("by_schema"));

    let database = gw.get("by-db.test", "/").await.seen();
    assert_eq!(
        database.tenant_header_names(),
        ["x-tenant-database", "x-tenant-id", "x-tenant-schema"]
    );
    assert_eq!(database.header("x-tenant-database"), Some("by_db"));

    let table = gw.get("by-table.test", "/").await.seen();
    assert_eq!(table.tenant_header_names(), ["x-tenant-id"]);

    let cache = gw.get("by-cache.test", "/").await.seen();
    assert_eq!(
        cache.tenant_header_names(),
        ["x-tenant-cache-prefix", "x-tenant-id"]
    );
    assert_eq!(cache.header("x-tenant-cache-prefix"), Some("by-cache:"));
}

#[tokio::test]
async fn host_case_port_trailing_dot_and_www_are_normalised() {
    let app = Backend::start("app").await;
    let gw = Gateway::with_acme(GatewayOptions::new().backend(&app)).await;

    for host in [
        "acme.test",
        "ACME.Test",
        "acme.test:8080",
        "acme.test.",
        "acme.test.:443",
        "www.acme.test",
        "WWW.Acme.TEST.:8080",
    ] {
        let reply = gw.get(host, "/").await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "Host: {host}: {}",
            reply.text()
        );
        assert_eq!(
            reply.seen().header("x-tenant-id"),
            Some("acme"),
            "Host: {host}"
        );
    }
}

#[tokio::test]
async fn a_domain_registered_with_www_is_reached_with_or_without_it() {
    let app = Backend::start("app").await;
    let gw = Gateway::start(GatewayOptions::new().backend(&app)).await;
    let created = gw
        .create_tenant(json!({"id": "shop", "name": "Shop", "domains": ["www.Shop.test"]}))
        .await;
    assert_eq!(created["domains"][0]["domain"], "shop.test");

    for host in ["shop.test", "www.shop.test"] {
        let reply = gw.get(host, "/").await;
        assert_eq!(
            reply.seen().header("x-tenant-id"),
            Some("shop"),
            "Host: {host}"
        );
    }
}

#[tokio::test]
async fn ipv6_literal_hosts_are_well_formed_but_belong_to_no_tenant() {
    let app = Backend::start("app").await;
    let gw = Gateway::with_acme(GatewayOptions::new().backend(&app)).await;

    for (host, normalised) in [("[::1]:8080", "[::1]"), ("[FE80::1]", "[fe80::1]")] {
        let reply = gw.get(host, "/").await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "Host: {host}");
        assert_eq!(
            reply.text(),
            format!("no tenant for hostname {normalised}\n")
        );
    }
}

#[tokio::test]
async fn exact_domain_beats_wildcard_and_wildcard_covers_one_label_only() {
    let app = Backend::start("app").await;
    let gw = Gateway::start(GatewayOptions::new().backend(&app)).await;
    gw.create_tenant(json!({"id": "shops", "name": "Shops", "domains": ["*.shops.test"]}))
        .await;
    gw.create_tenant(json!({"id": "vip", "name": "VIP", "domains": ["vip.shops.test"]}))
        .await;

    for host in ["a.shops.test", "B.Shops.Test:8080", "www.c.shops.test"] {
        let reply = gw.get(host, "/").await;
        assert_eq!(
            reply.seen().header("x-tenant-id"),
            Some("shops"),
            "Host: {host}"
        );
    }
    let vip = gw.get("vip.shops.test", "/").await;
    assert_eq!(vip.seen().header("x-tenant-id"), Some("vip"));

    for host in ["a.b.shops.test", "shops.test"] {
        let reply = gw.get(host, "/").await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "Host: {host}");
        assert_eq!(reply.text(), format!("no tenant for hostname {host}\n"));
    }
}

#[tokio::test]
async fn unknown_host_gets_404_naming_the_host_by_default() {
    let app = Backend::start("app").await;
    let gw = Gateway::start(GatewayOptions::new().backend(&app)).await;

    let reply = gw.get("Nobody.Test:8080", "/").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.text(), "no tenant for hostname nobody.test\n");
    // Our own answers are dated like the backend's (RFC 9110 §6.6.1), on
    // either HTTP/1 engine.
    let date = reply.header("date").expect("a Date header");
    assert!(httpdate::parse_http_date(date).is_ok(), "Date: {date}");
}

#[tokio::test]
async fn unknown_host_goes_to_the_public_schema_under_the_public_policy() {
    let app = Backend::start("app").await;
    let gw = Gateway::start(
        GatewayOptions::new()
            .backend(&app)
            .config("routing:\n  unknown_host:\n    action: public\n"),
    )
    .await;

    let reply = gw.get("nobody.test", "/signup").await;
    assert_eq!(reply.status, StatusCode::OK);
    let seen = reply.seen();
    assert_eq!(seen.path(), "/signup");
    assert_eq!(seen.header("x-tenant-id"), Some("public"));
    assert_eq!(seen.header("x-tenant-schema"), Some("public"));
}

#[tokio::test]
async fn unknown_host_is_redirected_under_the_redirect_policy() {
    let app = Backend::start("app").await;
    let gw = Gateway::with_acme(GatewayOptions::new().backend(&app).config(
        "routing:\n  unknown_host:\n    action: redirect\n    redirect_to: https://example.com/signup\n",
    )).await;

    let reply = gw.get("nobody.test", "/").await;
    assert_eq!(reply.status, StatusCode::FOUND);
    assert_eq!(reply.header("location"), Some("https://example.com/signup"));
    // Known hosts are not affected by the policy.
    assert_eq!(gw.get("acme.test", "/").await.status, StatusCode::OK);
}

#[tokio::test]
async fn suspended_tenant_gets_403_without_reaching_the_backend_until_resumed() {
    let app = Backend::start("app").await;
    let gw = Gateway::start(GatewayOptions::new().backend(&app)).await;
    gw.create_tenant(json!({
        "id": "acme", "name": "Acme", "status": "suspended", "domains": ["acme.test"]
    }))
    .await;
    let forwarded = "tenant_gateway_upstream_duration_seconds_count";

    let reply = gw.get("acme.test", "/").await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(reply.text(), "tenant acme is suspended\n");
    assert_eq!(gw.metric(forwarded).await, 0.0, "nothing was forwarded");

    gw.set_status("acme", "active").await;
    let reply = gw.get("acme.test", "/").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.seen().header("x-tenant-id"), Some("acme"));

    // Suspending a tenant whose host is cached takes effect at once too.
    gw.set_status("acme", "suspended").await;
    assert_eq!(gw.get("acme.test", "/").await.status, StatusCode::FORBIDDEN);
    assert_eq!(gw.metric(forwarded).await, 1.0);
}

#[tokio::test]
async fn suspended_status_is_configurable() {
    let app = Backend::start("app").await;
    let gw = Gateway::start(
        GatewayOptions::new()
            .backend(&app)
            .config("routing:\n  suspended_status: 451\n"),
    )
    .await;
    gw.create_tenant(json!({
        "id": "acme", "name": "Acme", "status": "suspended", "domains": ["acme.test"]
    }))
    .await;

    assert_eq!(gw.get("acme.test", "/").await.status.as_u16(), 451);
}

#[tokio::test]
async fn static_tenants_from_the_config_are_routable_at_start() {
    let app = Backend::start("app").await;
    let gw = Gateway::start(GatewayOptions::new().backend(&app).config(
        r#"
tenants:
  - id: acme
    name: Acme Corp
    domains: [acme.test, "*.acme-apps.test"]
  - id: globex
    schema: globex_s
    isolation: database
    domains: [globex.test]
"#,
    ))
    .await;

    let acme = gw.get("acme.test", "/").await.seen();
    assert_eq!(acme.header("x-tenant-id"), Some("acme"));
    let app_host = gw.get("crm.acme-apps.test", "/").await.seen();
    assert_eq!(app_host.header("x-tenant-id"), Some("acme"));
    let globex = gw.get("globex.test", "/").await.seen();
    assert_eq!(globex.header("x-tenant-database"), Some("globex_s"));

    let (status, listed) = gw.admin(hyper::Method::GET, "/v1/tenants", None).await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<&str> = listed["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["acme", "globex"]);
    assert_eq!(listed["tenants"][0]["name"], "Acme Corp");
}

#[tokio::test]
async fn tenants_on_a_named_pool_reach_that_pools_backends() {
    let main = Backend::start("main").await;
    let premium = Backend::start("premium").await;
    let gw = Gateway::start(GatewayOptions::new().config(&format!(
        "pools:\n  default: {{backends: [\"{}\"]}}\n  premium: {{backends: [\"{}\"]}}\n",
        main.url, premium.url
    )))
    .await;
    gw.create_tenant(json!({"id": "small", "name": "Small", "domains": ["small.test"]}))
        .await;
    gw.create_tenant(json!({
        "id": "big", "name": "Big", "pool": "premium", "domains": ["big.test"]
    }))
    .await;

    assert_eq!(gw.get("small.test", "/").await.seen().backend(), "main");
    assert_eq!(gw.get("big.test", "/").await.seen().backend(), "premium");

    // Moving the tenant back to the default pool takes effect at once.
    let (status, body) = gw
        .admin(
            hyper::Method::PATCH,
            "/v1/tenants/big",
            Some(json!({"pool": null})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(gw.get("big.test", "/").await.seen().backend(), "main");
}

#[tokio::test]
async fn www_is_a_host_of_its_own_when_strip_www_is_off() {
    let app = Backend::start("app").await;
    let gw = Gateway::with_acme(
        GatewayOptions::new()
            .backend(&app)
            .config("routing:\n  strip_www: false\n"),
    )
    .await;
    gw.create_tenant(json!({"id": "www-acme", "name": "WWW", "domains": ["www.acme.test"]}))
        .await;

    let bare = gw.get("acme.test", "/").await.seen();
    assert_eq!(bare.header("x-tenant-id"), Some("acme"));
    let www = gw.get("WWW.acme.test", "/").await.seen();
    assert_eq!(www.header("x-tenant-id"), Some("www-acme"));
}

#[tokio::test]
async fn http2_requests_are_routed_by_their_authority() {
    use http_body_util::{BodyExt, Empty};

    let app = Backend::start("app").await;
    let gw = Gateway::with_acme(GatewayOptions::new().backend(&app)).await;

    // HTTP/2 with prior knowledge: no Host header, only `:authority`.
    let mut sender = gw.h2c::<Empty<bytes::Bytes>>().await;
    let req = hyper::Request::get("http://ACME.test:8443/orders")
        .body(Empty::<bytes::Bytes>::new())
        .unwrap();
    let response = sender.send_request(req).await.expect("HTTP/2 request");
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let seen: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(seen["headers"]["x-tenant-id"], "acme");
    assert_eq!(seen["headers"]["host"], "ACME.test:8443");
    assert_eq!(seen["headers"]["x-forwarded-host"], "ACME.test:8443");
    assert_eq!(seen["path"], "/orders");
}
