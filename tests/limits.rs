//! Rate limits and concurrency caps per tenant, under real load on a real
//! gateway: a tenant driven at ten times its rate gets its rate through and
//! 429s for the rest, while a neighbour on the same pool loses nothing; a
//! tenant at its concurrency cap queues, then gets 503s, and its backend
//! never sees more than the cap at once (on both HTTP/1.1 engines, and on
//! HTTP/2 streams of one connection); a reload, or a tenant's own limits set
//! through the admin API, change the limits of the next request.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{Backend, Gateway, GatewayOptions};
use http_body_util::{BodyExt, Full};
use hyper::{Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::json;

/// One answer of [`drive`].
struct Answer {
    status: StatusCode,
    took: Duration,
    retry_after: Option<String>,
    policy: Option<String>,
    ratelimit: Option<String>,
}

/// Sends `GET /` with `Host: host` at `per_second` for `duration`, each
/// request in its own task (so a slow answer does not slow the pace), and
/// returns every answer with its time.
async fn drive(gw: &Gateway, host: &str, per_second: u32, duration: Duration) -> Vec<Answer> {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let uri = format!("http://{}/", gw.addr);
    let mut ticks = tokio::time::interval(Duration::from_secs(1) / per_second);
    let mut requests = tokio::task::JoinSet::new();
    let started = Instant::now();
    while started.elapsed() < duration {
        ticks.tick().await;
        let req = Request::get(&uri)
            .header("host", host)
            .body(Full::new(Bytes::new()))
            .expect("request");
        let client = client.clone();
        requests.spawn(async move {
            let sent = Instant::now();
            let response = client.request(req).await.expect("answer");
            let header = |name: &str| {
                response
                    .headers()
                    .get(name)
                    .map(|v| v.to_str().expect("ASCII header").to_owned())
            };
            let (status, retry_after) = (response.status(), header("retry-after"));
            let (policy, ratelimit) = (header("ratelimit-policy"), header("ratelimit"));
            response.into_body().collect().await.expect("body");
            Answer {
                status,
                took: sent.elapsed(),
                retry_after,
                policy,
                ratelimit,
            }
        });
    }
    requests.join_all().await
}

/// The 99th percentile of the answers' times.
fn p99(answers: &[Answer]) -> Duration {
    let mut times: Vec<Duration> = answers.iter().map(|a| a.took).collect();
    times.sort();
    times[(times.len() * 99 / 100).min(times.len() - 1)]
}

fn count(answers: &[Answer], status: StatusCode) -> usize {
    answers.iter().filter(|a| a.status == status).count()
}

/// A gateway on `engine` with one pool on `backend`, `plans` and `limits`.
async fn gateway(engine: &str, backend: &Backend, plans: &str, limits: &str) -> Gateway {
    Gateway::start(GatewayOptions::new().config(&config(engine, backend, plans, limits))).await
}

fn config(engine: &str, backend: &Backend, plans: &str, limits: &str) -> String {
    format!(
        "data_path: {{http1: {engine}}}\npools: {{default: {{backends: [{}]}}}}\n\
         plans: {plans}\nlimits: {limits}\nmetrics: {{per_tenant: true}}\n",
        backend.yaml()
    )
}

async fn tenant(gw: &Gateway, id: &str, plan: Option<&str>) {
    gw.create_tenant(
        json!({"id": id, "name": id, "plan": plan, "domains": [format!("{id}.test")]}),
    )
    .await;
}

async fn over_its_rate_a_tenant_gets_429_and_its_neighbour_nothing(engine: &str) {
    let app = Backend::start("app").await;
    let gw = gateway(engine, &app, "{free: {rate: 100/s}}", "{}").await;
    tenant(&gw, "noisy", Some("free")).await;
    tenant(&gw, "quiet", None).await;
    let baseline = drive(&gw, "quiet.test", 50, Duration::from_secs(1)).await;
    assert_eq!(count(&baseline, StatusCode::OK), baseline.len());

    let duration = Duration::from_secs(3);
    let started = Instant::now();
    let (noisy, quiet) = tokio::join!(
        drive(&gw, "noisy.test", 1_000, duration),
        drive(&gw, "quiet.test", 50, duration)
    );
    let seconds = started.elapsed().as_secs_f64();

    // About 100/s through, plus the bucket's burst (one second of the rate).
    let expected = 100.0 * seconds + 100.0;
    let through = count(&noisy, StatusCode::OK) as f64;
    assert!(
        noisy.len() as f64 > 3.0 * expected,
        "the load is too thin to tell: {} requests in {seconds:.1}s",
        noisy.len()
    );
    assert!(
        (0.8 * expected..=1.3 * expected).contains(&through),
        "{through} of {} through in {seconds:.1}s, expected about {expected:.0}",
        noisy.len()
    );
    let limited = count(&noisy, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(through as usize + limited, noisy.len(), "only 200 or 429");
    for refused in noisy.iter().filter(|a| a.status != StatusCode::OK) {
        let retry: u64 = refused
            .retry_after
            .as_deref()
            .expect("Retry-After")
            .parse()
            .expect("seconds");
        assert_eq!(retry, 1, "a token comes within 10 ms: rounded up to 1 s");
        assert_eq!(refused.policy.as_deref(), Some("\"default\";q=100;w=1"));
        assert_eq!(refused.ratelimit.as_deref(), Some("\"default\";r=0;t=1"));
    }

    // The neighbour on the same pool: every request answered, in time.
    assert_eq!(
        count(&quiet, StatusCode::OK),
        quiet.len(),
        "the quiet tenant lost requests"
    );
    let (before, during) = (p99(&baseline), p99(&quiet));
    assert!(
        during <= before * 10 + Duration::from_millis(50),
        "the quiet tenant's p99 went from {before:?} to {during:?}"
    );

    assert_eq!(
        gw.metric_or_zero("tenant_gateway_limited_requests_total{reason=\"rate\"}")
            .await,
        limited as f64
    );
    assert_eq!(
        gw.metric_or_zero("tenant_gateway_tenant_limited_requests_total{tenant=\"noisy\"}")
            .await,
        limited as f64
    );
    assert_eq!(
        gw.metric_or_zero("tenant_gateway_tenant_limited_requests_total{tenant=\"quiet\"}")
            .await,
        0.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_its_rate_a_tenant_gets_429_and_its_neighbour_nothing_lean() {
    over_its_rate_a_tenant_gets_429_and_its_neighbour_nothing("lean").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_its_rate_a_tenant_gets_429_and_its_neighbour_nothing_hyper() {
    over_its_rate_a_tenant_gets_429_and_its_neighbour_nothing("hyper").await;
}

async fn beyond_its_cap_a_tenant_queues_then_gets_503(engine: &str) {
    // 500 ms an answer, 2 at once, 3 may wait up to 800 ms: of 6 at once,
    // 2 are served, 3 wait (2 get the freed slots at 500 ms, 1 times out
    // at 800 ms) and 1 finds the queue full.
    let slow = Backend::start_slow("slow", Duration::from_millis(500)).await;
    let gw = gateway(
        engine,
        &slow,
        "{small: {concurrency: 2}}",
        "{queue_timeout: 800ms, queue_size: 3}",
    )
    .await;
    tenant(&gw, "capped", Some("small")).await;
    let requests = (0..6).map(|_| async {
        let sent = Instant::now();
        let reply = gw
            .request(hyper::Method::GET, "capped.test", "/")
            .new_connection()
            .send()
            .await;
        (reply, sent.elapsed())
    });
    let replies = futures_util::future::join_all(requests).await;

    assert_eq!(
        slow.peak_in_flight(),
        2,
        "the backend saw more than the cap at once"
    );
    let served = replies
        .iter()
        .filter(|(r, _)| r.status == StatusCode::OK)
        .count();
    assert_eq!(served, 4, "2 at once, then 2 from the queue");
    let mut refused: Vec<Duration> = replies
        .iter()
        .filter(|(r, _)| r.status != StatusCode::OK)
        .map(|(reply, took)| {
            assert_eq!(
                reply.status,
                StatusCode::SERVICE_UNAVAILABLE,
                "{}",
                reply.text()
            );
            assert_eq!(reply.header("retry-after"), Some("1"));
            *took
        })
        .collect();
    refused.sort();
    assert_eq!(refused.len(), 2);
    assert!(
        refused[0] < Duration::from_millis(400),
        "the queue was full: {refused:?}"
    );
    assert!(
        refused[1] >= Duration::from_millis(750),
        "waited out the queue: {refused:?}"
    );
    assert_eq!(
        gw.metric_or_zero("tenant_gateway_limited_requests_total{reason=\"concurrency\"}")
            .await,
        2.0
    );
}

#[tokio::test]
async fn beyond_its_cap_a_tenant_queues_then_gets_503_lean() {
    beyond_its_cap_a_tenant_queues_then_gets_503("lean").await;
}

#[tokio::test]
async fn beyond_its_cap_a_tenant_queues_then_gets_503_hyper() {
    beyond_its_cap_a_tenant_queues_then_gets_503("hyper").await;
}

#[tokio::test]
async fn a_reload_changes_a_plans_limits_for_the_next_request() {
    let app = Backend::start("app").await;
    let mut gw = gateway("lean", &app, "{free: {rate: 1/h}}", "{}").await;
    tenant(&gw, "acme", Some("free")).await;
    assert_eq!(gw.get("acme.test", "/").await.status, StatusCode::OK);
    let refused = gw.get("acme.test", "/").await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        refused.header("ratelimit-policy"),
        Some("\"default\";q=1;w=3600")
    );
    // A token of 1/h comes in an hour.
    let retry: u64 = refused
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("seconds");
    assert!((3_590..=3_600).contains(&retry), "{retry}");

    // Without the plan's limits, its tenants are not limited.
    gw.rewrite_config(&config("lean", &app, "{free: default}", "{}"));
    let (status, body) = gw.reload().await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for _ in 0..20 {
        assert_eq!(gw.get("acme.test", "/").await.status, StatusCode::OK);
    }
}

#[tokio::test]
async fn http2_streams_of_one_connection_share_their_tenants_cap() {
    let slow = Backend::start_slow("slow", Duration::from_millis(500)).await;
    let gw = gateway(
        "lean",
        &slow,
        "{small: {concurrency: 1}}",
        "{queue_timeout: 200ms}",
    )
    .await;
    tenant(&gw, "capped", Some("small")).await;
    // HTTP/2 with prior knowledge: three streams at once on one connection.
    let sender = gw.h2c::<Full<Bytes>>().await;
    let requests = (0..3).map(|_| {
        let mut sender = sender.clone();
        async move {
            let req = Request::get("http://capped.test/")
                .body(Full::new(Bytes::new()))
                .unwrap();
            let response = sender.send_request(req).await.expect("HTTP/2 request");
            let status = response.status();
            response.into_body().collect().await.expect("body");
            status
        }
    });
    let mut statuses = futures_util::future::join_all(requests).await;
    statuses.sort();
    assert_eq!(
        statuses,
        [
            StatusCode::OK,
            StatusCode::SERVICE_UNAVAILABLE,
            StatusCode::SERVICE_UNAVAILABLE
        ]
    );
    assert_eq!(slow.peak_in_flight(), 1);
}

#[tokio::test]
async fn a_tenants_own_limits_from_the_admin_api_apply_to_its_next_request() {
    let app = Backend::start("app").await;
    let gw = gateway("lean", &app, "{free: {rate: 1/h, concurrency: 5}}", "{}").await;
    tenant(&gw, "acme", Some("free")).await;
    tenant(&gw, "beta", None).await;
    assert_eq!(gw.get("acme.test", "/").await.status, StatusCode::OK);
    assert_eq!(
        gw.get("acme.test", "/").await.status,
        StatusCode::TOO_MANY_REQUESTS
    );

    // Its own rate overrides its plan's at once (the plan's cap stays). The
    // bucket starts empty at the new pace: a token every 10 µs.
    let (status, body) = gw
        .patch_tenant("acme", json!({"limits": {"rate": "100000/s"}}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for _ in 0..20 {
        assert_eq!(gw.get("acme.test", "/").await.status, StatusCode::OK);
    }

    // A tenant without a plan limited on its own, then freed again.
    let (status, body) = gw
        .patch_tenant("beta", json!({"limits": {"rate": "1/h"}}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(gw.get("beta.test", "/").await.status, StatusCode::OK);
    let refused = gw.get("beta.test", "/").await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        refused.header("ratelimit-policy"),
        Some("\"default\";q=1;w=3600")
    );
    let (status, body) = gw.patch_tenant("beta", json!({"limits": null})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(gw.get("beta.test", "/").await.status, StatusCode::OK);
}
