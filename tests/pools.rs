//! Backend pools that survive failures: a backend killed under load costs no
//! idempotent request and is taken out; it is put back when it recovers; a
//! pool with no backend left answers 503 at once; a slow backend gets 504 at
//! the pool's timeout.

mod common;

use std::time::{Duration, Instant};

use common::{dead_backend_url, eventually, pool_config, Backend, Gateway, GatewayOptions};
use hyper::StatusCode;

const HEALTHY: &str = "tenant_gateway_backend_healthy";
const REQUESTS: &str = "tenant_gateway_backend_requests_total";
/// What the gateway logs when its active checks take a backend out.
const CHECK_TOOK_OUT: &str = "failed its health checks, taken out";
/// Concurrent clients of the load loops: at most this many requests are in
/// flight when a backend dies.
const CLIENTS: usize = 4;

/// Active checks every 200 ms (out after two failures, back after one
/// pass), and passive ejection after three failures in a row.
const CHECKED: [&str; 2] = [
    "health_check: {path: /healthz, interval: 200ms, timeout: 200ms, healthy_threshold: 1, unhealthy_threshold: 2}",
    "outlier: {consecutive_failures: 3, ejection: 300ms}",
];

#[tokio::test]
async fn a_backend_killed_under_load_fails_no_requests_and_is_taken_out() {
    let survivor = Backend::start("survivor").await;
    let mut victim = Backend::start("victim").await;
    let gw = Gateway::start(
        GatewayOptions::new().config(&pool_config(&[survivor.yaml(), victim.yaml()], &CHECKED)),
    )
    .await;
    let load = gw.load("acme.test", CLIENTS);
    load.wait_for(20, Duration::from_secs(10), "the victim serves", |o| {
        o.served_by("victim")
    })
    .await;

    victim.kill();
    let killed = Instant::now();
    eventually(
        Duration::from_secs(3),
        "the dead backend is marked out",
        || async { gw.backend_metric(HEALTHY, &victim.url).await == 0.0 },
    )
    .await;
    eventually(
        Duration::from_secs(3),
        "the health check takes the dead backend out",
        || async { gw.log().contains(CHECK_TOOK_OUT) },
    )
    .await;
    let out_after = killed.elapsed();
    // Out means out: further traffic never tries it (no attempt, no retry).
    let attempts = gw.backend_metric(REQUESTS, &victim.url).await;
    let checked_out = Instant::now();
    load.wait_for(100, Duration::from_secs(10), "100 more answers", |o| {
        o.sent > checked_out
    })
    .await;
    let outcomes = load.stop().await;

    let failed: Vec<_> = outcomes.iter().filter(|o| !o.ok()).collect();
    assert!(
        failed.len() <= CLIENTS,
        "{} of {} requests failed (at most the {CLIENTS} in flight at the kill may): {failed:#?}",
        failed.len(),
        outcomes.len()
    );
    assert!(
        out_after < Duration::from_millis(1500),
        "taken out {out_after:?} after the kill, beyond the health-check window"
    );
    assert_eq!(
        gw.backend_metric(REQUESTS, &victim.url).await,
        attempts,
        "a backend that is out gets no attempts"
    );
    assert!(outcomes
        .iter()
        .filter(|o| o.sent > checked_out)
        .all(|o| o.served_by("survivor")));
    assert_eq!(gw.backend_metric(HEALTHY, &survivor.url).await, 1.0);
}

#[tokio::test]
async fn a_backend_that_comes_back_is_put_back_into_rotation() {
    let steady = Backend::start("steady").await;
    let mut flaky = Backend::start("flaky").await;
    let gw = Gateway::start(
        GatewayOptions::new().config(&pool_config(&[steady.yaml(), flaky.yaml()], &CHECKED)),
    )
    .await;
    let load = gw.load("acme.test", CLIENTS);
    load.wait_for(10, Duration::from_secs(10), "flaky serves", |o| {
        o.served_by("flaky")
    })
    .await;

    flaky.kill();
    // The health check holds it out beyond its short passive ejection.
    eventually(Duration::from_secs(3), "flaky is checked out", || async {
        gw.log().contains(CHECK_TOOK_OUT)
    })
    .await;
    assert_eq!(gw.backend_metric(HEALTHY, &flaky.url).await, 0.0);
    let served_before = load.count(|o| o.served_by("flaky"));

    flaky.restart().await;
    let restarted = Instant::now();
    load.wait_for(
        served_before + 20,
        Duration::from_secs(5),
        "flaky serves again",
        |o| o.served_by("flaky"),
    )
    .await;
    let back_after = restarted.elapsed();
    assert_eq!(
        gw.backend_metric(HEALTHY, &flaky.url).await,
        1.0,
        "{}",
        gw.log()
    );
    let outcomes = load.stop().await;

    assert!(
        back_after < Duration::from_secs(2),
        "back in rotation {back_after:?} after it recovered"
    );
    let failed: Vec<_> = outcomes.iter().filter(|o| !o.ok()).collect();
    assert!(
        failed.len() <= CLIENTS,
        "{} of {} requests failed: {failed:#?}",
        failed.len(),
        outcomes.len()
    );
}

#[tokio::test]
async fn a_pool_with_every_backend_down_answers_503_at_once() {
    let config = pool_config(
        &[
            format!("\"{}\"", dead_backend_url()),
            format!("\"{}\"", dead_backend_url()),
        ],
        &["health_check: {path: /healthz, interval: 100ms, timeout: 100ms, healthy_threshold: 1, unhealthy_threshold: 1}"],
    );
    let gw = Gateway::start(GatewayOptions::new().config(&config)).await;
    eventually(
        Duration::from_secs(3),
        "the health checks take both backends out",
        || async { gw.get("acme.test", "/").await.status == StatusCode::SERVICE_UNAVAILABLE },
    )
    .await;

    for _ in 0..5 {
        let started = Instant::now();
        let reply = gw.get("acme.test", "/").await;
        let took = started.elapsed();
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            reply.text(),
            "service unavailable: no healthy backend for this tenant\n"
        );
        assert!(took < Duration::from_millis(300), "answered after {took:?}");
    }
}

#[tokio::test]
async fn a_pool_whose_backends_all_refuse_answers_502_at_once_without_health_checks() {
    let config = pool_config(
        &[
            format!("\"{}\"", dead_backend_url()),
            format!("\"{}\"", dead_backend_url()),
        ],
        &[],
    );
    let gw = Gateway::start(GatewayOptions::new().config(&config)).await;

    for _ in 0..5 {
        let started = Instant::now();
        let reply = gw.get("acme.test", "/").await;
        let took = started.elapsed();
        assert_eq!(reply.status, StatusCode::BAD_GATEWAY, "{}", reply.text());
        assert!(took < Duration::from_millis(500), "answered after {took:?}");
    }
}

#[tokio::test]
async fn a_slow_backend_gets_504_at_the_pools_response_header_timeout() {
    let app = Backend::start("app").await;
    let config = pool_config(&[app.yaml()], &["timeouts: {response_header: 300ms}"]);
    let gw = Gateway::start(GatewayOptions::new().config(&config)).await;

    let started = Instant::now();
    let reply = gw.get("acme.test", "/report?sleep_ms=5000").await;
    let took = started.elapsed();
    assert_eq!(
        reply.status,
        StatusCode::GATEWAY_TIMEOUT,
        "{}",
        reply.text()
    );
    assert_eq!(
        reply.text(),
        "gateway timeout: the backend did not answer in time\n"
    );
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_millis(1500),
        "answered after {took:?}, not at the 300ms timeout"
    );
    let reply = gw.get("acme.test", "/report?sleep_ms=10").await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test]
async fn the_total_timeout_bounds_every_attempt_together() {
    let slow = Backend::start_slow("slow", Duration::from_secs(5)).await;
    let config = pool_config(
        &[slow.yaml()],
        &["timeouts: {response_header: 10s, total: 400ms}"],
    );
    let gw = Gateway::start(GatewayOptions::new().config(&config)).await;

    let started = Instant::now();
    let reply = gw.get("acme.test", "/").await;
    let took = started.elapsed();
    assert_eq!(
        reply.status,
        StatusCode::GATEWAY_TIMEOUT,
        "{}",
        reply.text()
    );
    assert!(
        took >= Duration::from_millis(400) && took < Duration::from_millis(1500),
        "answered after {took:?}, not at the 400ms total timeout"
    );
}
