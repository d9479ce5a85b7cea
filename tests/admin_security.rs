//! The admin API refuses what a browser can be tricked into sending, on a
//! token-less loopback gateway as the quickstart runs it: a cross-site
//! "simple" POST (CSRF), requests under a rebound foreign `Host`, and
//! preflights from foreign origins. curl-style JSON keeps working, and the
//! `admin.allowed_hosts` / `allowed_origins` lists let the named ones in.

mod common;

use common::{run_command, Gateway, GatewayOptions, Reply};
use hyper::{Method, StatusCode};
use serde_json::{json, Value};

const TENANT: &str = r#"{"id": "mallory", "name": "Mallory", "domains": ["mallory.test"]}"#;

fn error_of(reply: &Reply) -> Value {
    serde_json::from_slice::<Value>(&reply.body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", reply.text()))["error"]
        .clone()
}

async fn tenant_exists(gw: &Gateway, id: &str) -> bool {
    let (status, _) = gw
        .admin(Method::GET, &format!("/v1/tenants/{id}"), None)
        .await;
    status == StatusCode::OK
}

#[tokio::test]
async fn a_cross_site_simple_post_is_refused_and_creates_nothing() {
    let gw = Gateway::start(GatewayOptions::new()).await;
    // What a page on attacker.example makes the browser send: text/plain
    // needs no preflight, and the browser adds the page's Origin.
    let reply = gw
        .admin_with_headers(
            Method::POST,
            "/v1/tenants",
            &[
                ("origin", "http://attacker.example"),
                ("content-type", "text/plain"),
            ],
            TENANT,
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.text());
    assert_eq!(error_of(&reply)["rule"], "origin");
    assert!(!reply.headers.contains_key("access-control-allow-origin"));

    // Without an Origin (a non-browser client), text/plain is still no JSON.
    let reply = gw
        .admin_with_headers(
            Method::POST,
            "/v1/tenants",
            &[("content-type", "text/plain")],
            TENANT,
        )
        .await;
    assert_eq!(
        reply.status,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "{}",
        reply.text()
    );
    assert_eq!(error_of(&reply)["code"], "unsupported_media_type");
    let reply = gw
        .admin_with_headers(Method::POST, "/v1/tenants", &[], TENANT)
        .await;
    assert_eq!(
        reply.status,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "{}",
        reply.text()
    );

    // Suspensions and deletes by the same trick are refused too.
    gw.create_tenant(json!({"id": "acme", "name": "Acme", "domains": ["acme.test"]}))
        .await;
    let reply = gw
        .admin_with_headers(
            Method::DELETE,
            "/v1/tenants/acme",
            &[("origin", "http://attacker.example")],
            "",
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.text());
    assert!(tenant_exists(&gw, "acme").await, "the delete went through");
    assert!(
        !tenant_exists(&gw, "mallory").await,
        "the forged create went through"
    );
}

#[tokio::test]
async fn a_rebound_foreign_host_can_neither_read_nor_write() {
    let gw = Gateway::start(GatewayOptions::new()).await;
    gw.create_tenant(json!({"id": "acme", "name": "Acme"}))
        .await;
    let foreign = format!("attacker.example:{}", gw.admin_addr.port());

    // DNS rebinding: the page is same-origin with itself, so the browser
    // sends JSON happily, but under the attacker's name.
    let reply = gw
        .admin_with_headers(
            Method::POST,
            "/v1/tenants",
            &[("host", &foreign), ("content-type", "application/json")],
            TENANT,
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.text());
    let error = error_of(&reply);
    assert_eq!(error["code"], "forbidden");
    assert_eq!(error["rule"], "host");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("admin.allowed_hosts"),
        "{error}"
    );
    assert!(!tenant_exists(&gw, "mallory").await);

    for path in ["/v1/tenants", "/v1/tenants/acme", "/metrics", "/healthz"] {
        let reply = gw
            .admin_with_headers(Method::GET, path, &[("host", &foreign)], "")
            .await;
        assert_eq!(
            reply.status,
            StatusCode::FORBIDDEN,
            "GET {path}: {}",
            reply.text()
        );
        assert!(
            !reply.text().contains("acme"),
            "GET {path} leaked: {}",
            reply.text()
        );
    }
}

#[tokio::test]
async fn preflights_from_foreign_origins_get_no_cors_grant() {
    let gw = Gateway::start(GatewayOptions::new()).await;
    let reply = gw
        .admin_with_headers(
            Method::OPTIONS,
            "/v1/tenants",
            &[
                ("origin", "http://attacker.example"),
                ("access-control-request-method", "POST"),
                ("access-control-request-headers", "content-type"),
            ],
            "",
        )
        .await;
    assert!(!reply.status.is_success(), "{}", reply.status);
    for grant in [
        "access-control-allow-origin",
        "access-control-allow-methods",
        "access-control-allow-headers",
    ] {
        assert!(
            !reply.headers.contains_key(grant),
            "{grant} granted: {:?}",
            reply.headers
        );
    }
}

#[tokio::test]
async fn curl_style_json_still_works_and_health_reads_ignore_origin() {
    let gw = Gateway::start(GatewayOptions::new()).await;
    let reply = gw
        .admin_with_headers(
            Method::POST,
            "/v1/tenants",
            &[("content-type", "application/json")],
            r#"{"id": "acme", "name": "Acme", "domains": ["acme.localhost"]}"#,
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    // Under `localhost` too, with any port, as curl and the CLI send it.
    let host = format!("localhost:{}", gw.admin_addr.port());
    let reply = gw
        .admin_with_headers(Method::GET, "/v1/tenants/acme", &[("host", &host)], "")
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    // A bodiless POST needs no content type.
    let reply = gw
        .admin_with_headers(Method::POST, "/v1/reload", &[], "")
        .await;
    assert_ne!(
        reply.status,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "{}",
        reply.text()
    );
    // Reads of health and metrics carry no secret worth an Origin rule.
    let reply = gw
        .admin_with_headers(
            Method::GET,
            "/metrics",
            &[("origin", "http://attacker.example")],
            "",
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
}

#[tokio::test]
async fn listed_hosts_and_origins_pass() {
    let gw = Gateway::start(GatewayOptions::new().config(
        "admin:\n  allowed_hosts: [admin.internal, 'lb.internal:8443']\n  allowed_origins: ['https://console.example.com']\n",
    ))
    .await;
    for host in ["admin.internal", "admin.internal:9999", "lb.internal:8443"] {
        let reply = gw
            .admin_with_headers(Method::GET, "/v1/tenants", &[("host", host)], "")
            .await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "Host {host}: {}",
            reply.text()
        );
    }
    let reply = gw
        .admin_with_headers(
            Method::GET,
            "/v1/tenants",
            &[("host", "lb.internal:80")],
            "",
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.text());

    let origin = "https://console.example.com";
    let reply = gw
        .admin_with_headers(
            Method::OPTIONS,
            "/v1/tenants",
            &[
                ("origin", origin),
                ("access-control-request-method", "POST"),
            ],
            "",
        )
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.text());
    assert_eq!(reply.header("access-control-allow-origin"), Some(origin));
    let allowed_headers = reply
        .header("access-control-allow-headers")
        .unwrap_or_default();
    assert!(
        allowed_headers.contains("content-type"),
        "{allowed_headers}"
    );

    let reply = gw
        .admin_with_headers(
            Method::POST,
            "/v1/tenants",
            &[("origin", origin), ("content-type", "application/json")],
            TENANT,
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    assert_eq!(reply.header("access-control-allow-origin"), Some(origin));
    // The listener's own origin (the console) needs no listing.
    let own = format!("http://{}", gw.admin_addr);
    let reply = gw
        .admin_with_headers(Method::GET, "/v1/tenants", &[("origin", &own)], "")
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
}

#[tokio::test]
async fn bad_allowed_hosts_and_origins_are_refused_with_their_key() {
    let done = run_command(
        &["check-config", "--config", "{config}"],
        "admin:\n  allowed_hosts: ['https://admin.internal/']\n  allowed_origins: ['*', 'https://ok.example/']\n",
        &[],
    )
    .await;
    assert_eq!(done.status.code(), Some(1), "{}", done.stdout);
    for key in [
        "admin.allowed_hosts[0]",
        "admin.allowed_origins[0]",
        "admin.allowed_origins[1]",
    ] {
        assert!(
            done.stderr.contains(&format!("config key `{key}`")),
            "{key} not named in: {}",
            done.stderr
        );
    }
}
