//! The web console at `/ui/` of the admin listener, tested in a real browser
//! (Debian's Chromium driven by Playwright, `tests/browser/console.mjs`): an
//! operator signs in with the admin token (a wrong one is refused), creates a
//! tenant with a domain that the data path then routes, suspends it and the
//! data path answers 403; the other pages show pools, traffic per tenant and
//! migration jobs, and a delete needs the tenant's id typed. Its files carry
//! strict security headers and obey the admin listener's browser rules.

mod common;

use common::pg::{fresh_database, psql};
use common::{dead_backend_url, Backend, Gateway, GatewayOptions, TOKEN};
use hyper::{Method, StatusCode};
use serde_json::{json, Value};

#[tokio::test]
async fn an_operator_signs_in_creates_a_tenant_and_suspends_it_from_the_browser() {
    let backend = Backend::start("app").await;
    let gw = Gateway::start(GatewayOptions::new().backend(&backend).with_token()).await;

    let steps = gw.console_scenario("lifecycle").await;
    assert!(steps.contains("scenario lifecycle: passed"), "{steps}");

    // What the browser did is what the gateway holds, on every worker.
    let (status, shop) = gw.admin(Method::GET, "/v1/tenants/shop", None).await;
    assert_eq!(status, StatusCode::OK, "{shop}");
    assert_eq!(shop["status"], "suspended", "{shop}");
    assert_eq!(
        shop["domains"],
        json!([{"domain": "shop.test", "is_primary": true}])
    );
    assert_eq!(
        gw.status_everywhere("shop.test").await,
        StatusCode::FORBIDDEN
    );
    // The wrong token reached the API and was refused there.
    let refused = r#"tenant_gateway_admin_requests_total{class="4xx",method="GET"}"#;
    assert!(gw.metric(refused).await >= 1.0);
}

#[tokio::test]
async fn the_console_pages_show_domains_pools_traffic_and_delete_after_confirmation() {
    let backend = Backend::start("app").await;
    let config = format!(
        "metrics:\n  per_tenant: true\n\
         pools:\n  default:\n    backends: [{}]\n  broken:\n    backends: [{}]\n    retries: {{attempts: 0}}\n    \
         health_check: {{path: /healthz, interval: 200ms, timeout: 200ms, healthy_threshold: 1, unhealthy_threshold: 2}}\n",
        backend.url,
        dead_backend_url()
    );
    let gw = Gateway::start(GatewayOptions::new().config(&config).with_token()).await;
    gw.create_tenant(json!({"id": "acme", "name": "Acme", "domains": ["acme.test"]}))
        .await;
    gw.create_tenant(
        json!({"id": "globex", "name": "Globex", "domains": ["globex.test"], "pool": "broken"}),
    )
    .await;

    let steps = gw.console_scenario("pages").await;
    assert!(steps.contains("scenario pages: passed"), "{steps}");

    let (status, _) = gw.admin(Method::GET, "/v1/tenants/globex", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "globex was not deleted");
    assert_eq!(
        gw.tenant_everywhere("shop.acme.test").await.as_deref(),
        Some("acme")
    );
    // The errors the traffic page showed are the new per-tenant counter's.
    let errors = r#"tenant_gateway_tenant_errors_total{tenant="globex"}"#;
    assert!(gw.metric(errors).await >= 1.0);
    let acme_errors = r#"tenant_gateway_tenant_errors_total{tenant="acme"}"#;
    assert_eq!(gw.metric(acme_errors).await, 0.0);
}

#[tokio::test]
async fn a_search_in_the_console_finds_a_tenant_beyond_those_the_list_loaded() {
    let gw = Gateway::start(GatewayOptions::new().with_token()).await;
    // 10,000 tenants fill the list the console loads (10 pages of 1,000);
    // the one after them is found only by asking the server.
    let csv: String = (0..10_000)
        .map(|i| format!("t{i:05},t{i:05},t{i:05}.bulk.test\n"))
        .collect();
    let import = gw
        .admin_raw(Some(TOKEN), Method::POST, "/v1/tenants/import", csv.into())
        .await;
    assert_eq!(import.status, StatusCode::OK, "{}", import.text());
    assert!(
        import.text().contains(r#""imported":10000"#),
        "{}",
        import.text()
    );
    gw.create_tenant(json!({"id": "zeta-needle", "name": "Needle", "domains": ["needle.example"]}))
        .await;

    let steps = gw.console_scenario("search").await;
    assert!(steps.contains("scenario search: passed"), "{steps}");
}

#[tokio::test]
async fn a_migration_started_from_the_console_is_followed_to_the_end() {
    let db = fresh_database();
    let migrations = tempfile::tempdir().unwrap();
    std::fs::write(
        migrations.path().join("0001_init.sql"),
        "CREATE TABLE users (id serial PRIMARY KEY);",
    )
    .unwrap();
    let options = GatewayOptions::new()
        .with_token()
        .store(&db)
        .args(["--migrations", &migrations.path().display().to_string()]);
    let mut gw = Gateway::start(options).await;
    for id in ["alpha", "bravo", "charlie"] {
        gw.create_tenant(json!({"id": id, "name": id})).await;
    }
    // A new migration for all three, picked up on restart; bravo cannot
    // take it (it has the table already).
    std::fs::write(
        migrations.path().join("0002_orders.sql"),
        "CREATE TABLE orders (id serial PRIMARY KEY);",
    )
    .unwrap();
    psql(&db, "CREATE TABLE bravo.orders (id int)");
    gw.restart().await;

    let steps = gw.console_scenario("jobs").await;
    assert!(steps.contains("scenario jobs: passed"), "{steps}");

    let (status, list) = gw.admin(Method::GET, "/v1/jobs", None).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(
        list,
        json!({"jobs": [{
            "id": 1, "kind": "migrate", "status": "finished",
            "progress": {"total": 3, "done": 3, "failed": 1}, "failed_tenants": ["bravo"]
        }]})
    );
}

fn header<'a>(reply: &'a common::Reply, name: &str) -> &'a str {
    reply
        .headers
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
}

#[tokio::test]
async fn console_files_carry_strict_security_headers_under_the_admin_rules() {
    let gw = Gateway::start(GatewayOptions::new().with_token()).await;

    // The files need no token: the page asks for it.
    let page = gw.admin_with_headers(Method::GET, "/ui/", &[], "").await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(header(&page, "content-type"), "text/html; charset=utf-8");
    let csp = header(&page, "content-security-policy");
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "frame-ancestors 'none'",
        "form-action 'none'",
    ] {
        assert!(csp.contains(directive), "{csp}");
    }
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(header(&page, "x-frame-options"), "DENY");
    assert_eq!(header(&page, "referrer-policy"), "no-referrer");
    assert_eq!(header(&page, "x-content-type-options"), "nosniff");
    assert_eq!(header(&page, "cross-origin-resource-policy"), "same-origin");
    assert!(page
        .text()
        .contains(r#"<script type="module" src="console.js">"#));

    let script = gw
        .admin_with_headers(Method::GET, "/ui/console.js", &[], "")
        .await;
    assert_eq!(script.status, StatusCode::OK);
    assert_eq!(
        header(&script, "content-type"),
        "text/javascript; charset=utf-8"
    );
    assert_eq!(header(&script, "x-frame-options"), "DENY");
    let bare = gw.admin_with_headers(Method::GET, "/ui", &[], "").await;
    assert_eq!(bare.status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(header(&bare, "location"), "/ui/");
    let missing = gw
        .admin_with_headers(Method::GET, "/ui/../Cargo.toml", &[], "")
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    // A rebound foreign Host gets no console (DNS rebinding), and a page on
    // another origin cannot drive the API the console uses.
    let rebound = gw
        .admin_with_headers(Method::GET, "/ui/", &[("host", "attacker.example")], "")
        .await;
    assert_eq!(rebound.status, StatusCode::FORBIDDEN);
    let auth = format!("Bearer {TOKEN}");
    let foreign = gw
        .admin_with_headers(
            Method::GET,
            "/v1/pools",
            &[
                ("origin", "http://attacker.example"),
                ("authorization", &auth),
            ],
            "",
        )
        .await;
    assert_eq!(foreign.status, StatusCode::FORBIDDEN);
    // The console's own origin is served.
    let origin = format!("http://{}", gw.admin_addr);
    let own = gw
        .admin_with_headers(
            Method::GET,
            "/v1/pools",
            &[("origin", &origin), ("authorization", &auth)],
            "",
        )
        .await;
    assert_eq!(own.status, StatusCode::OK, "{}", own.text());

    // The read endpoints the console adds need the token like the rest of /v1.
    for path in ["/v1/pools", "/v1/jobs"] {
        let (status, _) = gw.admin_as(None, Method::GET, path, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
    }
    let (_, jobs) = gw.admin(Method::GET, "/v1/jobs", None).await;
    assert_eq!(jobs, json!({"jobs": []}), "a file store runs no jobs");
}

#[tokio::test]
async fn the_pools_endpoint_shows_each_backends_live_state() {
    let backend = Backend::start("app").await;
    let dead = dead_backend_url();
    let config = format!(
        "pools:\n  default:\n    backends: [{{url: {}, weight: 3}}]\n  broken:\n    backends: [{dead}]\n    \
         health_check: {{path: /healthz, interval: 100ms, timeout: 100ms, healthy_threshold: 1, unhealthy_threshold: 1}}\n",
        backend.url
    );
    let gw = Gateway::start(GatewayOptions::new().config(&config)).await;
    let pools = || async { gw.admin(Method::GET, "/v1/pools", None).await.1 };
    common::eventually(
        std::time::Duration::from_secs(10),
        "the broken pool's backend to fail its checks",
        || async { pools().await["pools"][0]["available"] == 0 },
    )
    .await;
    let list: Value = pools().await;
    assert_eq!(
        list,
        json!({"pools": [
            {"name": "broken", "health_checked": true, "retries": 2, "available": 0, "backends": [
                {"url": dead, "weight": 1, "healthy": false, "ejected": false, "in_flight": 0}
            ]},
            {"name": "default", "health_checked": false, "retries": 2, "available": 1, "backends": [
                {"url": backend.url, "weight": 3, "healthy": true, "ejected": false, "in_flight": 0}
            ]}
        ]})
    );
}
