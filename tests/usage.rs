//! Usage metering: requests of known tenants, with their body bytes, 4xx,
//! 5xx and upstream time, counted per tenant per hour by every replica and
//! added up in the store. Given requests whose answers the client saw,
//! the usage shows exactly those: after a graceful stop of two replicas on
//! one PostgreSQL (nothing lost, nothing counted twice, though they flush
//! every second meanwhile), and before any flush on the embedded store,
//! over HTTP/1.1 on both engines and over HTTP/2.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::pg::fresh_database;
use common::{api_error, run_command, Backend, Gateway, GatewayOptions};
use hyper::{Method, StatusCode};
use serde_json::{json, Value};

/// What a tenant's usage should show, as the client saw its answers.
#[derive(Debug, Default, Clone, PartialEq)]
struct Expected {
    requests: u64,
    bytes_in: u64,
    bytes_out: u64,
    status_4xx: u64,
    status_5xx: u64,
}

impl Expected {
    /// The sums of a usage answer's hours.
    fn of(hours: &Value) -> Expected {
        let sum = |key: &str| {
            hours
                .as_array()
                .map(|h| h.iter().map(|h| h[key].as_u64().unwrap_or(0)).sum())
                .unwrap_or(0)
        };
        Expected {
            requests: sum("requests"),
            bytes_in: sum("bytes_in"),
            bytes_out: sum("bytes_out"),
            status_4xx: sum("status_4xx"),
            status_5xx: sum("status_5xx"),
        }
    }
}

/// Sends `count` requests for `tenant` (on `host`) to `gw`: bodies of
/// various sizes in, every third answered 404 and every seventh 500 by the
/// backend; adds what the client saw to `expected`.
async fn traffic(gw: &Gateway, host: &str, count: usize, expected: &mut Expected) {
    for i in 0..count {
        let status = match i {
            _ if i % 7 == 3 => "500",
            _ if i % 3 == 1 => "404",
            _ => "200",
        };
        let body = vec![b'x'; (i * 37) % 2000];
        let method = if body.is_empty() {
            Method::GET
        } else {
            Method::POST
        };
        let reply = gw
            .request(method, host, &format!("/n{i}?status={status}"))
            .body(body.clone())
            .send()
            .await;
        expected.requests += 1;
        expected.bytes_in += body.len() as u64;
        expected.bytes_out += reply.body.len() as u64;
        expected.status_4xx += u64::from(reply.status.is_client_error());
        expected.status_5xx += u64::from(reply.status.is_server_error());
    }
}

/// As [`traffic`], over one HTTP/2 connection (prior knowledge).
async fn h2_traffic(gw: &Gateway, host: &str, count: usize, expected: &mut Expected) {
    use http_body_util::{BodyExt, Full};

    let mut sender = gw.h2c::<Full<bytes::Bytes>>().await;
    for i in 0..count {
        let status = if i % 2 == 0 { "404" } else { "200" };
        let body = vec![b'y'; 100 + i * 311];
        let req = hyper::Request::post(format!("http://{host}/h2/{i}?status={status}"))
            .body(Full::new(bytes::Bytes::from(body.clone())))
            .unwrap();
        let response = sender.send_request(req).await.expect("HTTP/2 request");
        let answered = response.status();
        let got = response.into_body().collect().await.unwrap().to_bytes();
        expected.requests += 1;
        expected.bytes_in += body.len() as u64;
        expected.bytes_out += got.len() as u64;
        expected.status_4xx += u64::from(answered.is_client_error());
    }
}

const METERED: &str = "usage:\n  enabled: true\n  flush_interval: 1s\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_add_up_exactly_after_a_graceful_stop() {
    let db = fresh_database();
    let backend = Backend::start("app").await;
    let start = |engine: &str| {
        let yaml = format!("{METERED}data_path:\n  http1: {engine}\n");
        Gateway::start(
            GatewayOptions::new()
                .backend(&backend)
                .workers(2)
                .config(&yaml)
                .store(&db),
        )
    };
    let mut a = start("lean").await;
    let mut b = start("hyper").await;
    for id in ["acme", "globex"] {
        a.create_tenant(
            json!({"id": id, "name": id, "domains": [format!("{id}.test")], "provision": false}),
        )
        .await;
    }
    let mut expected: BTreeMap<&str, Expected> = BTreeMap::new();
    for (id, gw, count) in [("acme", &a, 60), ("acme", &b, 45), ("globex", &b, 30)] {
        traffic(
            gw,
            &format!("{id}.test"),
            count,
            expected.entry(id).or_default(),
        )
        .await;
        // Let a periodic flush happen between the rounds.
        tokio::time::sleep(Duration::from_millis(1200)).await;
    }
    // Not a tenant's: counted nowhere.
    assert_eq!(
        a.get("nobody.test", "/").await.status,
        StatusCode::NOT_FOUND
    );
    let acme = &expected["acme"];
    assert!(acme.status_4xx > 0 && acme.status_5xx > 0, "{acme:?}");

    for gw in [&a, &b] {
        gw.sigterm();
    }
    for gw in [&mut a, &mut b] {
        let status = gw.wait_exit(Duration::from_secs(15)).await;
        assert!(status.success(), "{status}\n{}", gw.log());
    }

    // A third replica, metering off, reads what the two stored.
    let reader = Gateway::start(GatewayOptions::new().store(&db)).await;
    for (id, want) in &expected {
        let (status, body) = reader
            .admin(Method::GET, &format!("/v1/tenants/{id}/usage"), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["tenant"], *id);
        assert_eq!(Expected::of(&body["hours"]), *want, "{id}: {body}");
        let upstream: f64 = body["hours"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["upstream_seconds"].as_f64().unwrap())
            .sum();
        assert!(upstream > 0.0, "{body}");
    }
    let (status, page) = reader.admin(Method::GET, "/v1/usage?limit=1", None).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["usage"][0]["tenant"], "acme");
    let next = page["next"].as_str().expect("a next page").to_owned();
    let (_, rest) = reader
        .admin(Method::GET, &format!("/v1/usage?after={next}"), None)
        .await;
    let tenants: Vec<&str> = rest["usage"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["tenant"].as_str().unwrap())
        .collect();
    assert!(tenants.contains(&"globex"), "{rest}");

    // The CLI reads the same from the store.
    let json = run_command(
        &["tenants", "usage", "acme", "--json", "--store", &db],
        "",
        &[],
    )
    .await;
    assert!(json.status.success(), "{}", json.stderr);
    let body: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(Expected::of(&body["hours"]), expected["acme"], "{body}");
    let all = [
        "tenants", "usage", "--all", "--format", "csv", "--store", &db,
    ];
    let cli_csv = run_command(&all, "", &[]).await;
    assert!(cli_csv.status.success(), "{}", cli_csv.stderr);
    let table = run_command(&["tenants", "usage", "globex", "--store", &db], "", &[]).await;
    assert!(table.stdout.starts_with("HOUR"), "{}", table.stdout);
    assert!(table
        .stdout
        .contains(&format!(" {} ", expected["globex"].requests)));

    let csv = reader
        .admin_raw(
            None,
            Method::GET,
            "/v1/usage/export?format=csv",
            Default::default(),
        )
        .await;
    assert_eq!(csv.status, StatusCode::OK);
    let text = csv.text();
    let mut lines = text.lines();
    assert!(lines.next().unwrap().starts_with("tenant,hour,requests"));
    let requests: u64 = lines
        .map(|l| l.split(',').nth(2).unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(requests, expected.values().map(|e| e.requests).sum::<u64>());
    assert_eq!(cli_csv.stdout, text, "the CLI's CSV is the API's");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_store_shows_the_hour_not_flushed_yet_and_keeps_it_over_a_restart() {
    let backend = Backend::start("app").await;
    let yaml = "usage:\n  enabled: true\n  flush_interval: 1h\n";
    let mut gw = Gateway::with_acme(GatewayOptions::new().backend(&backend).config(yaml)).await;
    let mut want = Expected::default();
    traffic(&gw, "acme.test", 20, &mut want).await;
    h2_traffic(&gw, "acme.test", 6, &mut want).await;

    // No flush has run (an hour apart): the read includes the counts.
    let (status, body) = gw.admin(Method::GET, "/v1/tenants/acme/usage", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(Expected::of(&body["hours"]), want, "{body}");
    let hour = body["hours"][0]["hour"].as_str().unwrap().to_owned();
    assert!(hour.ends_with(":00:00Z"), "{hour}");

    // More after the read, then a restart: the final flush keeps them.
    traffic(&gw, "acme.test", 5, &mut want).await;
    gw.restart().await;
    let (_, body) = gw
        .admin(
            Method::GET,
            &format!("/v1/tenants/acme/usage?from={hour}"),
            None,
        )
        .await;
    assert_eq!(Expected::of(&body["hours"]), want, "{body}");

    let ndjson = gw
        .admin_raw(None, Method::GET, "/v1/usage/export", Default::default())
        .await;
    let first: Value = serde_json::from_str(ndjson.text().lines().next().unwrap()).unwrap();
    assert_eq!(first["tenant"], "acme");
    assert_eq!(first["requests"], want.requests);
}

#[tokio::test]
async fn bad_usage_queries_are_400_naming_the_parameter() {
    let gw = Gateway::with_acme(GatewayOptions::new()).await;
    for (path, named) in [
        ("/v1/tenants/acme/usage?from=yesterday", "from:"),
        ("/v1/tenants/acme/usage?to=2026-02-30", "to:"),
        (
            "/v1/tenants/acme/usage?from=2026-12-02&to=2026-12-01",
            "to:",
        ),
        ("/v1/usage?after=nothing", "after:"),
        ("/v1/usage?limit=0", "limit:"),
        ("/v1/usage/export?format=xml", "format:"),
    ] {
        let (status, body) = gw.admin(Method::GET, path, None).await;
        let message = api_error(status, &body, StatusCode::BAD_REQUEST, "bad_request");
        assert!(message.starts_with(named), "{path}: {message}");
    }
    let (status, body) = gw
        .admin(Method::GET, "/v1/tenants/nobody/usage", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}
