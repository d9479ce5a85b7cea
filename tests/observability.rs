//! What an operator can see: `/v1/resolve` explaining the data path's
//! decision for a host, request counters and per-backend latencies in
//! `/metrics`, readiness, and one access-log line per request.

mod common;

use std::time::Duration;

use common::{api_error, eventually, Backend, Gateway, GatewayOptions};
use hyper::{Method, StatusCode};
use serde_json::{json, Value};

#[tokio::test]
async fn resolve_explains_forward_not_found_suspended_and_bad_hosts() {
    let app = Backend::start("app").await;
    let gw = Gateway::start(GatewayOptions::new().backend(&app).with_token()).await;
    gw.create_tenant(json!({
        "id": "acme", "name": "Acme", "isolation": "database", "domains": ["*.acme.test"]
    }))
    .await;
    gw.create_tenant(json!({
        "id": "frozen", "name": "Frozen", "status": "suspended", "domains": ["frozen.test"]
    }))
    .await;

    let (status, forward) = gw
        .admin(
            Method::GET,
            "/v1/resolve?host=WWW.Shop.Acme.test:8443",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{forward}");
    assert_eq!(forward["action"], "forward");
    assert_eq!(forward["status"], 200);
    assert_eq!(forward["normalized"], "shop.acme.test");
    assert_eq!(forward["matched_domain"], "*.acme.test");
    assert_eq!(forward["tenant"]["id"], "acme");
    assert_eq!(forward["pool"], "default");
    assert_eq!(forward["backends"], json!([app.url]));
    assert_eq!(
        forward["headers"],
        json!({"x-tenant-id": "acme", "x-tenant-schema": "acme", "x-tenant-database": "acme"})
    );

    let (_, unknown) = gw
        .admin(Method::GET, "/v1/resolve?host=nobody.test", None)
        .await;
    assert_eq!(unknown["action"], "not_found");
    assert_eq!(unknown["status"], 404);
    assert_eq!(unknown["tenant"], Value::Null);

    let (_, suspended) = gw
        .admin(Method::GET, "/v1/resolve?host=frozen.test", None)
        .await;
    assert_eq!(suspended["action"], "suspended");
    assert_eq!(suspended["status"], 403);
    assert_eq!(suspended["tenant"]["id"], "frozen");

    let (_, bad) = gw.admin(Method::GET, "/v1/resolve?host=a..b", None).await;
    assert_eq!(bad["action"], "bad_request");
    assert_eq!(bad["status"], 400);
    assert!(
        bad["reason"].as_str().unwrap().contains("empty label"),
        "{bad}"
    );

    let (status, body) = gw.admin(Method::GET, "/v1/resolve", None).await;
    api_error(status, &body, StatusCode::BAD_REQUEST, "bad_request");
    let (status, body) = gw
        .admin_as(None, Method::GET, "/v1/resolve?host=acme.test", None)
        .await;
    api_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
}

#[tokio::test]
async fn request_counters_in_metrics_increase_by_outcome() {
    let app = Backend::start("app").await;
    let gw = Gateway::with_acme(GatewayOptions::new().backend(&app)).await;
    let routed = r#"tenant_gateway_requests_total{class="2xx",outcome="routed"}"#;
    let unknown = r#"tenant_gateway_requests_total{class="4xx",outcome="unknown_host"}"#;
    assert_eq!(gw.metric(routed).await, 0.0);
    assert_eq!(gw.metric(unknown).await, 0.0);

    for _ in 0..3 {
        assert_eq!(gw.get("acme.test", "/").await.status, StatusCode::OK);
    }
    assert_eq!(
        gw.get("nobody.test", "/").await.status,
        StatusCode::NOT_FOUND
    );

    assert_eq!(gw.metric(routed).await, 3.0);
    assert_eq!(gw.metric(unknown).await, 1.0);
    assert_eq!(gw.metric("tenant_gateway_in_flight_requests").await, 0.0);
    assert_eq!(
        gw.metric("tenant_gateway_request_duration_seconds_count")
            .await,
        4.0
    );
}

#[tokio::test]
async fn backend_connect_latency_is_timed_once_per_new_connection() {
    let app = Backend::start("app").await;
    let gw = Gateway::with_acme(GatewayOptions::new().backend(&app)).await;
    let connects = "tenant_gateway_backend_connect_seconds_count";
    let responses = "tenant_gateway_backend_response_seconds_count";
    for _ in 0..5 {
        assert_eq!(gw.get("acme.test", "/").await.status, StatusCode::OK);
    }

    // One worker, requests one after another: the first opens the backend
    // connection, the others reuse it and are not timed again.
    assert_eq!(gw.backend_metric(connects, &app.url).await, 1.0);
    assert_eq!(gw.backend_metric(responses, &app.url).await, 5.0);
    let sum = gw
        .backend_metric("tenant_gateway_backend_connect_seconds_sum", &app.url)
        .await;
    assert!(sum > 0.0, "a connect takes some time: {sum}");
}

#[tokio::test]
async fn per_tenant_request_counters_are_opt_in() {
    let app = Backend::start("app").await;
    let gw = Gateway::with_acme(
        GatewayOptions::new()
            .backend(&app)
            .config("metrics:\n  per_tenant: true\n"),
    )
    .await;
    gw.create_tenant(json!({"id": "globex", "name": "Globex", "domains": ["globex.test"]}))
        .await;

    for host in ["acme.test", "acme.test", "globex.test"] {
        assert_eq!(gw.get(host, "/").await.status, StatusCode::OK);
    }

    let acme = r#"tenant_gateway_tenant_requests_total{tenant="acme"}"#;
    let globex = r#"tenant_gateway_tenant_requests_total{tenant="globex"}"#;
    assert_eq!(gw.metric(acme).await, 2.0);
    assert_eq!(gw.metric(globex).await, 1.0);
}

#[tokio::test]
async fn readiness_reports_the_store_answering() {
    let gw = Gateway::start(GatewayOptions::new()).await;

    // Not ready until the routing cache is warm, a moment after start.
    eventually(Duration::from_secs(5), "the gateway is ready", || async {
        gw.admin(Method::GET, "/readyz", None).await.0 == StatusCode::OK
    })
    .await;
    let (status, body) = gw.admin(Method::GET, "/readyz", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"status": "ready"}));
    assert!(gw.data_file().exists(), "the store file is created");
}

#[tokio::test]
async fn each_request_writes_one_access_line_unless_turned_off() {
    let app = Backend::start("app").await;
    let gw = Gateway::with_acme(GatewayOptions::new().backend(&app)).await;
    let reply = gw.get("acme.test", "/orders").await;
    let id = reply.header("x-request-id").unwrap().to_owned();

    {
        let gw = &gw;
        let id = &id;
        eventually(
            Duration::from_secs(5),
            "the access line is written",
            || async move { gw.log().lines().any(|l| l.contains(id.as_str())) },
        )
        .await;
    }
    let line = gw
        .log()
        .lines()
        .find(|l| l.contains(&id))
        .unwrap()
        .to_owned();
    for field in [
        " access: ",
        "tenant=\"acme\"",
        "status=200",
        "path=\"/orders\"",
        "host=\"acme.test\"",
        "outcome=\"routed\"",
    ] {
        assert!(line.contains(field), "{field} missing from {line}");
    }
    assert!(
        !line.contains('\u{1b}'),
        "terminal colours in a log file: {line:?}"
    );

    let quiet = Gateway::start(
        GatewayOptions::new()
            .backend(&app)
            .args(["--no-access-log"]),
    )
    .await;
    quiet
        .create_tenant(json!({"id": "acme", "name": "Acme", "domains": ["acme.test"]}))
        .await;
    let reply = quiet.get("acme.test", "/orders").await;
    assert_eq!(reply.status, StatusCode::OK);
    let id = reply.header("x-request-id").unwrap();
    assert!(!quiet.log().contains(id), "{}", quiet.log());
}
