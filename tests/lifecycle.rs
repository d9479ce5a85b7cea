//! The gateway as a process: it keeps its tenants across a restart, drains
//! in-flight requests on SIGTERM and exits 0, cuts off clients that never
//! finish a request head on both listeners, and refuses to start (or
//! `check-config` reports every problem by key) when the configuration is
//! wrong.

mod common;

use std::time::{Duration, Instant};

use common::{eventually, run_command, Backend, Finished, Gateway, GatewayOptions, TOKEN};
use hyper::{Method, StatusCode};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn tenants_survive_a_restart_on_the_same_store_file() {
    let app = Backend::start("app").await;
    let mut gw = Gateway::start(
        GatewayOptions::new()
            .backend(&app)
            .config("tenants:\n  - id: static-co\n    domains: [static.test]\n"),
    )
    .await;
    let acme = gw
        .create_tenant(json!({"id": "acme", "name": "Acme", "domains": ["acme.test"]}))
        .await;
    gw.add_domain("acme", "*.acme.cloud").await;
    gw.create_tenant(json!({
        "id": "frozen", "name": "Frozen", "status": "suspended", "domains": ["frozen.test"]
    }))
    .await;
    let (_, before) = gw.admin(Method::GET, "/v1/tenants", None).await;

    gw.restart().await;

    let (status, after) = gw.admin(Method::GET, "/v1/tenants", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(after, before, "same tenants, domains and creation times");
    for (host, tenant) in [
        ("acme.test", "acme"),
        ("eu.acme.cloud", "acme"),
        ("static.test", "static-co"),
    ] {
        let reply = gw.get(host, "/").await;
        assert_eq!(reply.seen().header("x-tenant-id"), Some(tenant), "{host}");
    }
    assert_eq!(
        gw.get("frozen.test", "/").await.status,
        StatusCode::FORBIDDEN
    );
    let (_, shown) = gw.admin(Method::GET, "/v1/tenants/acme", None).await;
    assert_eq!(shown["created_at"], acme["created_at"]);
}

#[tokio::test]
async fn sigterm_drains_in_flight_requests_refuses_new_connections_and_exits_0() {
    let app = Backend::start("app").await;
    let mut gw = Gateway::with_acme(
        GatewayOptions::new()
            .backend(&app)
            .workers(2)
            .config("shutdown:\n  drain_timeout: 10s\n"),
    )
    .await;

    let (slow, refused_at) = {
        let gw = &gw;
        let slow = async {
            let reply = gw.get("acme.test", "/export?sleep_ms=1500").await;
            (reply, Instant::now())
        };
        let shutdown = async {
            eventually(
                Duration::from_secs(5),
                "the slow request is in flight",
                || async move { gw.metric("tenant_gateway_in_flight_requests").await == 1.0 },
            )
            .await;
            gw.sigterm();
            eventually(
                Duration::from_secs(5),
                "new connections are refused",
                || gw.refuses_connections(),
            )
            .await;
            Instant::now()
        };
        tokio::join!(slow, shutdown)
    };
    let (reply, answered_at) = slow;

    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.seen().path(), "/export?sleep_ms=1500");
    assert!(
        refused_at < answered_at,
        "new connections were refused while the slow request was still being served"
    );
    let status = gw.wait_exit(Duration::from_secs(10)).await;
    assert_eq!(status.code(), Some(0), "{status}\n{}", gw.log());
}

#[tokio::test]
async fn drain_timeout_bounds_how_long_shutdown_waits() {
    let app = Backend::start("app").await;
    let mut gw = Gateway::with_acme(
        GatewayOptions::new()
            .backend(&app)
            .config("shutdown:\n  drain_timeout: 300ms\n"),
    )
    .await;

    // A request that would take far longer than the drain timeout.
    let mut stuck = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    stuck
        .write_all(b"GET /?sleep_ms=20000 HTTP/1.1\r\nHost: acme.test\r\n\r\n")
        .await
        .unwrap();
    {
        let gw = &gw;
        eventually(
            Duration::from_secs(5),
            "the request is in flight",
            || async move { gw.metric("tenant_gateway_in_flight_requests").await == 1.0 },
        )
        .await;
    }

    let signalled = Instant::now();
    gw.sigterm();
    let status = gw.wait_exit(Duration::from_secs(5)).await;
    assert_eq!(status.code(), Some(0), "{status}\n{}", gw.log());
    assert!(
        signalled.elapsed() < Duration::from_secs(3),
        "exited {:?} after SIGTERM",
        signalled.elapsed()
    );
    // The cut-short request's connection is closed without an answer.
    let mut rest = Vec::new();
    let _ = stuck.read_to_end(&mut rest).await;
    assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
}

#[tokio::test]
async fn idle_keep_alive_connections_do_not_delay_shutdown() {
    let app = Backend::start("app").await;
    let mut gw = Gateway::with_acme(
        GatewayOptions::new()
            .backend(&app)
            .workers(2)
            .config("shutdown:\n  drain_timeout: 20s\n"),
    )
    .await;
    // Leaves idle keep-alive connections to the data path and the admin API.
    assert_eq!(gw.get("acme.test", "/").await.status, StatusCode::OK);

    let signalled = Instant::now();
    gw.sigterm();
    let status = gw.wait_exit(Duration::from_secs(15)).await;
    assert_eq!(status.code(), Some(0), "{status}\n{}", gw.log());
    assert!(
        signalled.elapsed() < Duration::from_secs(3),
        "idle connections held shutdown for {:?}",
        signalled.elapsed()
    );
}

#[tokio::test]
async fn check_config_accepts_a_valid_file() {
    let done = run_command(
        &["check-config", "--config", "{config}"],
        "listen: 127.0.0.1:18080\npools:\n  default:\n    backends: [\"http://127.0.0.1:8000\"]\n",
        &[],
    )
    .await;

    assert!(done.status.success(), "{}", done.stderr);
    assert!(done.stdout.starts_with("config OK"), "{}", done.stdout);
    assert!(done.stdout.contains("1 pool(s)"), "{}", done.stdout);
}

#[tokio::test]
async fn check_config_names_an_unknown_key() {
    let done = run_command(
        &["check-config", "--config", "{config}"],
        "admin:\n  lisen: 127.0.0.1:9090\n",
        &[],
    )
    .await;

    assert_eq!(done.status.code(), Some(1), "{}", done.stdout);
    assert!(
        done.stderr.contains("config key `admin.lisen`"),
        "{}",
        done.stderr
    );
    assert!(
        done.stderr.contains("unknown field `lisen`"),
        "{}",
        done.stderr
    );
    assert!(done.stdout.is_empty(), "{}", done.stdout);
}

#[tokio::test]
async fn check_config_reports_every_invalid_value_by_key() {
    let done = run_command(
        &["check-config", "--config", "{config}"],
        r#"
admin: { token: short }
cache: { ttl: 0s }
routing: { unknown_host: { action: redirect }, suspended_status: 200 }
limits: { max_request_body: 0 }
pools: { default: { backends: ["ftp://127.0.0.1:21"] } }
tenants:
  - { id: acme, schema: pg_acme }
  - { id: beta, pool: nowhere }
  - { id: gamma, domains: ["-bad.test"] }
"#,
        &[],
    )
    .await;

    assert_eq!(done.status.code(), Some(1));
    let problems: Vec<&str> = done.stderr.lines().collect();
    let reported = |key: &str, mentions: &str| {
        problems
            .iter()
            .any(|line| line.starts_with(&format!("config key `{key}")) && line.contains(mentions))
    };
    for (key, mentions) in [
        ("admin.token`", "16 characters"),
        ("cache.ttl`", "0s"),
        ("routing.unknown_host.redirect_to`", "required"),
        ("routing.suspended_status`", "200"),
        ("limits.max_request_body`", "1 byte"),
        ("pools.default.backends[0]`", "ftp"),
        // A static tenant's problem is reported under its entry (or a field of it).
        ("tenants[0]", "pg_acme"),
        ("tenants[1]", "nowhere"),
        ("tenants[2]", "-bad.test"),
    ] {
        assert!(
            reported(key, mentions),
            "no `{key}` problem mentioning {mentions:?} in:\n{}",
            done.stderr
        );
    }
}

/// Runs `check-config` and `serve` on `config`: both must refuse it with
/// an error naming `key`. Returns what `serve` printed.
async fn refused_by_check_config_and_serve(config: &str, key: &str) -> Finished {
    let named = format!("config key `{key}`");
    let check = run_command(&["check-config", "--config", "{config}"], config, &[]).await;
    assert_eq!(check.status.code(), Some(1), "{}", check.stdout);
    assert!(check.stderr.contains(&named), "{}", check.stderr);

    let serve = run_command(
        &[
            "serve",
            "--config",
            "{config}",
            "--listen",
            "127.0.0.1:0",
            "--data",
            "{data}",
        ],
        config,
        &[],
    )
    .await;
    assert!(!serve.status.success(), "serve must not start");
    assert!(serve.stderr.contains(&named), "{}", serve.stderr);
    serve
}

#[tokio::test]
async fn a_log_level_serve_cannot_parse_is_refused_by_check_config_too() {
    refused_by_check_config_and_serve("log: {level: \"nonsense[[[\"}\n", "log.level").await;
}

#[tokio::test]
async fn public_admin_listener_without_a_token_is_refused() {
    let config = "admin:\n  listen: 0.0.0.0:9999\n";

    let serve = refused_by_check_config_and_serve(config, "admin.token").await;
    assert!(serve.stdout.is_empty(), "{}", serve.stdout);

    let with_token = run_command(
        &["check-config", "--config", "{config}"],
        config,
        &[("TENANT_GATEWAY_ADMIN_TOKEN", TOKEN)],
    )
    .await;
    assert!(with_token.status.success(), "{}", with_token.stderr);
}

#[tokio::test]
async fn a_request_head_never_finished_is_cut_off_on_the_data_and_admin_listeners() {
    let gw =
        Gateway::start(GatewayOptions::new().config("limits:\n  header_read_timeout: 500ms\n"))
            .await;
    // Half a head (no blank line), and nothing at all.
    for sent in [&b"GET /healthz HTTP/1.1\r\nHost: acme.test\r\n"[..], b""] {
        for addr in [gw.addr, gw.admin_addr] {
            let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            stream.write_all(sent).await.unwrap();
            let started = Instant::now();
            let mut rest = Vec::new();
            let closed =
                tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut rest)).await;
            let what = String::from_utf8_lossy(sent);
            assert!(
                closed.is_ok(),
                "{addr} after {what:?}: still open after 5 s"
            );
            assert!(
                started.elapsed() >= Duration::from_millis(400),
                "{addr} after {what:?}: closed after {:?}, before the timeout",
                started.elapsed()
            );
        }
    }
}
