//! Reloading the config file (`POST /v1/reload` or SIGHUP) while clients
//! keep sending requests: added backends start taking traffic, removed ones
//! stop, no request fails, backends kept across the reload keep their
//! health, and a broken config is refused while the gateway keeps serving.

mod common;

use std::time::{Duration, Instant};

use common::{
    api_error, dead_backend_url, eventually, pool_config, Backend, Gateway, GatewayOptions, Outcome,
};
use hyper::StatusCode;
use serde_json::json;

const CLIENTS: usize = 3;

#[tokio::test]
async fn a_reload_through_the_admin_api_adds_then_removes_a_backend_dropping_no_request() {
    let first = Backend::start("first").await;
    let second = Backend::start("second").await;
    let mut gw =
        Gateway::start(GatewayOptions::new().config(&pool_config(&[first.yaml()], &[]))).await;
    let load = gw.load("acme.test", CLIENTS);
    load.wait_for(20, Duration::from_secs(10), "first serves", |o| {
        o.served_by("first")
    })
    .await;

    gw.rewrite_config(&pool_config(&[first.yaml(), second.yaml()], &[]));
    let (status, body) = gw.reload().await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"pools": ["default"], "backends": 2}));
    load.wait_for(
        20,
        Duration::from_secs(5),
        "the added backend serves",
        |o| o.served_by("second"),
    )
    .await;

    gw.rewrite_config(&pool_config(&[second.yaml()], &[]));
    let (status, body) = gw.reload().await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let removed = Instant::now();
    load.wait_for(50, Duration::from_secs(10), "50 answers after", |o| {
        o.sent > removed
    })
    .await;
    let outcomes = load.stop().await;

    assert_no_failures(&outcomes);
    let stragglers = outcomes
        .iter()
        .filter(|o| o.sent > removed && o.served_by("first"))
        .count();
    assert_eq!(stragglers, 0, "the removed backend still got requests");
}

#[tokio::test]
async fn sighup_swaps_the_backends_dropping_no_request() {
    let old = Backend::start("old").await;
    let new = Backend::start("new").await;
    let mut gw =
        Gateway::start(GatewayOptions::new().config(&pool_config(&[old.yaml()], &[]))).await;
    let load = gw.load("acme.test", CLIENTS);
    load.wait_for(20, Duration::from_secs(10), "old serves", |o| {
        o.served_by("old")
    })
    .await;

    gw.rewrite_config(&pool_config(&[new.yaml()], &[]));
    gw.sighup();
    load.wait_for(1, Duration::from_secs(5), "the new backend serves", |o| {
        o.served_by("new")
    })
    .await;
    // Requests sent from now on start after the swap.
    let swapped = Instant::now();
    load.wait_for(50, Duration::from_secs(10), "50 answers after", |o| {
        o.sent > swapped
    })
    .await;
    let outcomes = load.stop().await;

    assert_no_failures(&outcomes);
    assert!(outcomes
        .iter()
        .filter(|o| o.sent > swapped)
        .all(|o| o.served_by("new")));
    assert!(gw.log().contains("configuration reloaded"));
}

#[tokio::test]
async fn a_broken_config_is_refused_and_the_gateway_keeps_serving() {
    let app = Backend::start("app").await;
    let good = pool_config(&[app.yaml()], &[]);
    let mut gw = Gateway::start(GatewayOptions::new().config(&good)).await;
    let load = gw.load("acme.test", CLIENTS);
    load.wait_for(20, Duration::from_secs(10), "app serves", |o| o.ok())
        .await;

    gw.rewrite_config(&pool_config(&["\"app:8000\"".into()], &[]));
    let (status, body) = gw.reload().await;
    let message = api_error(status, &body, StatusCode::BAD_REQUEST, "bad_request");
    assert!(
        message.contains("pools.default.backends[0]"),
        "the message names the key: {message}"
    );
    gw.sighup();
    eventually(Duration::from_secs(5), "SIGHUP is refused too", || async {
        gw.log().contains("configuration not reloaded")
    })
    .await;
    let refused = Instant::now();
    load.wait_for(50, Duration::from_secs(10), "50 answers after", |o| {
        o.sent > refused
    })
    .await;

    // The previous config still serves, and a fixed file reloads.
    gw.rewrite_config(&good);
    let (status, body) = gw.reload().await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let outcomes = load.stop().await;
    assert_no_failures(&outcomes);
}

#[tokio::test]
async fn backends_kept_across_a_reload_keep_their_health() {
    let app = Backend::start("app").await;
    let extra = Backend::start("extra").await;
    let dead = format!("\"{}\"", dead_backend_url());
    let checks = ["health_check: {path: /healthz, interval: 100ms, timeout: 100ms, healthy_threshold: 1, unhealthy_threshold: 1}"];
    let mut gw = Gateway::start(
        GatewayOptions::new().config(&pool_config(&[app.yaml(), dead.clone()], &checks)),
    )
    .await;
    let dead_url = dead.trim_matches('"').to_owned();
    eventually(
        Duration::from_secs(3),
        "the dead backend is out",
        || async {
            gw.backend_metric("tenant_gateway_backend_healthy", &dead_url)
                .await
                == 0.0
        },
    )
    .await;
    let attempts = gw
        .backend_metric("tenant_gateway_backend_requests_total", &dead_url)
        .await;

    gw.rewrite_config(&pool_config(&[app.yaml(), dead, extra.yaml()], &checks));
    let (status, body) = gw.reload().await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Straight after the reload, before any new check: still out.
    for _ in 0..30 {
        let reply = gw.get("acme.test", "/").await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    }
    assert_eq!(
        gw.backend_metric("tenant_gateway_backend_requests_total", &dead_url)
            .await,
        attempts,
        "the dead backend got attempts after the reload"
    );
    assert_eq!(
        gw.backend_metric("tenant_gateway_backend_healthy", &dead_url)
            .await,
        0.0
    );
}

fn assert_no_failures(outcomes: &[Outcome]) {
    let failed: Vec<_> = outcomes.iter().filter(|o| !o.ok()).collect();
    assert!(
        failed.is_empty(),
        "{} of {} requests failed: {failed:#?}",
        failed.len(),
        outcomes.len()
    );
}

#[tokio::test]
async fn a_reload_says_which_pools_it_removed() {
    let app = Backend::start("app").await;
    let pools = |names: &[&str]| {
        let mut yaml = String::from("pools:\n");
        for name in names {
            yaml.push_str(&format!("  {name}: {{backends: [\"{}\"]}}\n", app.url));
        }
        yaml
    };
    let mut gw = Gateway::start(GatewayOptions::new().config(&pools(&["default", "other"]))).await;

    gw.rewrite_config(&pools(&["default", "other"]));
    let (status, body) = gw.reload().await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.get("removed_pools").is_none(), "{body}");

    gw.rewrite_config(&pools(&["default"]));
    let (status, body) = gw.reload().await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["removed_pools"],
        serde_json::json!(["other"]),
        "{body}"
    );
    assert!(gw.log().contains("pools removed"), "{}", gw.log());
}
