//! Backends where apps actually live (docs/backends.md): a Unix socket
//! (gunicorn's usual place), HTTPS with a verified certificate and mTLS,
//! and a DNS name whose addresses change under load.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::forms::{TestDns, TlsBackend, UnixBackend};
use common::tls::TestCa;
use common::{eventually, Backend, Gateway, GatewayOptions};
use hyper::StatusCode;

const TENANT: &str = "tenants:\n  - {id: acme, domains: [acme.test]}\n";

#[tokio::test]
async fn a_backend_on_a_unix_socket_answers_with_the_tenant_headers() {
    let app = UnixBackend::start("gunicorn");
    let gw = Gateway::with_acme(GatewayOptions::new().backend_url(&app.url)).await;
    let reply = gw.get("acme.test", "/dashboard?x=1").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let seen = reply.seen();
    assert_eq!(seen.backend(), "gunicorn");
    assert_eq!(seen.path(), "/dashboard?x=1");
    assert_eq!(seen.header("x-tenant-id"), Some("acme"));
    assert_eq!(seen.header("host"), Some("acme.test"), "the client's Host");
    assert_eq!(
        gw.backend_metric("tenant_gateway_backend_requests_total", &app.url)
            .await,
        1.0
    );
}

#[tokio::test]
async fn a_socket_missing_at_start_is_a_warning_and_answers_once_the_app_listens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("later.sock");
    let url = format!("unix:{}", path.display());
    let gw = Gateway::with_acme(GatewayOptions::new().backend_url(&url)).await;
    assert!(
        gw.log().contains("pools.default.backends[0]") && gw.log().contains("no socket at"),
        "the warning names the key:\n{}",
        gw.log()
    );
    assert_eq!(
        gw.get("acme.test", "/").await.status,
        StatusCode::BAD_GATEWAY
    );
    let _app = UnixBackend::at(&path, "late");
    let reply = gw.get("acme.test", "/").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.seen().backend(), "late");
}

/// A config with one `https://` backend and the pool's `tls:` lines.
fn https_config(backend: &TlsBackend, tls: &[String]) -> String {
    let mut yaml = format!(
        "pools:\n  default:\n    backends: [\"{}\"]\n    tls:\n",
        backend.url
    );
    for line in tls {
        yaml.push_str(&format!("      {line}\n"));
    }
    yaml + TENANT
}

#[tokio::test]
async fn an_https_backend_answers_when_tls_ca_names_its_ca_and_502_with_another() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new();
    let backend = TlsBackend::start(&ca, "app.internal", None).await;
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.root_pem()).unwrap();
    let trusting = |extra: &[&str]| {
        let mut tls = vec![
            format!("ca: {}", ca_file.display()),
            "server_name: app.internal".to_owned(),
        ];
        tls.extend(extra.iter().map(|l| l.to_string()));
        https_config(&backend, &tls)
    };
    let mut gw = Gateway::start(GatewayOptions::new().config(&trusting(&[]))).await;
    let reply = gw.get("acme.test", "/").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.seen().backend(), "app.internal");
    assert_eq!(reply.seen().header("x-tenant-id"), Some("acme"));
    assert_eq!(backend.last_alpn().as_deref(), Some("http/1.1"));

    // A CA file that does not parse is refused with its key; nothing changes.
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").unwrap();
    gw.rewrite_config(&https_config(
        &backend,
        &[format!("ca: {}", garbage.display())],
    ));
    let (status, body) = gw.reload().await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.to_string().contains("pools.default.tls.ca"), "{body}");
    assert_eq!(gw.get("acme.test", "/").await.status, StatusCode::OK);

    // HTTP/2 when the pool offers it (ALPN).
    gw.rewrite_config(&trusting(&["h2: true"]));
    assert_eq!(gw.reload().await.0, StatusCode::OK);
    let reply = gw.get("acme.test", "/").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(backend.last_alpn().as_deref(), Some("h2"));
    assert_eq!(reply.seen().header("host"), Some("acme.test"));

    // Another CA: the certificate does not verify, 502, logged as such (SIGHUP).
    let other = TestCa::new();
    let other_file = dir.path().join("other.pem");
    std::fs::write(&other_file, other.root_pem()).unwrap();
    gw.rewrite_config(&https_config(
        &backend,
        &[
            format!("ca: {}", other_file.display()),
            "server_name: app.internal".to_owned(),
        ],
    ));
    gw.sighup();
    eventually(
        Duration::from_secs(5),
        "the reload refuses the backend",
        || async { gw.get("acme.test", "/").await.status == StatusCode::BAD_GATEWAY },
    )
    .await;
    assert!(
        gw.log().contains("certificate error"),
        "logged as a certificate error:\n{}",
        gw.log()
    );
}

#[tokio::test]
async fn an_mtls_backend_answers_only_when_the_pool_presents_a_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new();
    let backend = TlsBackend::start(&ca, "app.internal", Some(&ca)).await;
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.root_pem()).unwrap();
    let (cert, key) = ca.client_leaf("gateway.internal", dir.path(), "client");
    let without = vec![
        format!("ca: {}", ca_file.display()),
        "server_name: app.internal".to_owned(),
    ];
    let mut gw =
        Gateway::start(GatewayOptions::new().config(&https_config(&backend, &without))).await;
    let refused = gw.get("acme.test", "/").await;
    assert_eq!(
        refused.status,
        StatusCode::BAD_GATEWAY,
        "{}",
        refused.text()
    );
    assert!(
        gw.log().contains("certificate error"),
        "the refusal of no certificate is logged as a certificate error:\n{}",
        gw.log()
    );

    let mut with = without.clone();
    with.push(format!("client_cert: {}", cert.display()));
    with.push(format!("client_key: {}", key.display()));
    gw.rewrite_config(&https_config(&backend, &with));
    assert_eq!(gw.reload().await.0, StatusCode::OK);
    let reply = gw.get("acme.test", "/").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.seen().header("x-tenant-id"), Some("acme"));
}

/// Two echo backends on one port of two loopback addresses.
async fn backends_on_two_addresses() -> (Backend, Backend) {
    for _ in 0..20 {
        let first = Backend::start_at("127.0.0.2:0".parse().unwrap(), "first")
            .await
            .expect("bind 127.0.0.2");
        let second = SocketAddr::from(([127, 0, 0, 3], first.addr.port()));
        if let Some(second) = Backend::start_at(second, "second").await {
            return (first, second);
        }
    }
    panic!("no port free on both 127.0.0.2 and 127.0.0.3");
}

#[tokio::test]
async fn a_dns_name_follows_its_addresses_under_load_without_a_failed_request() {
    let dns = TestDns::start().await;
    let name = "app.forms.test";
    dns.set_a(name, &["127.0.0.2"]).await;
    let (first, second) = backends_on_two_addresses().await;
    let port = first.addr.port();
    let interval = Duration::from_millis(500);
    let url = format!("http://{name}:{port}");
    let config = format!(
        "upstream:\n  nameservers: [\"{}\"]\npools:\n  default:\n    backends: [\"{url}\"]\n    resolve_interval: 500ms\n    health_check: {{path: /healthz, interval: 200ms}}\n{TENANT}",
        dns.addr
    );
    let gw = Gateway::start(GatewayOptions::new().config(&config).workers(2)).await;
    let reply = gw.get("acme.test", "/").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.seen().backend(), "first");

    let load = gw.load("acme.test", 4);
    load.wait_for(
        20,
        Duration::from_secs(5),
        "the first address serves",
        |o| o.served_by("first"),
    )
    .await;
    // A new address joins (after its first health check) beside the old one.
    dns.set_a(name, &["127.0.0.2", "127.0.0.3"]).await;
    load.wait_for(
        20,
        Duration::from_secs(5),
        "the second address serves",
        |o| o.served_by("second"),
    )
    .await;
    // The old address vanishes: it drains, and new requests go to the new one.
    dns.set_a(name, &["127.0.0.3"]).await;
    let moved = Instant::now();
    tokio::time::sleep(2 * interval).await;
    let settled = Instant::now();
    load.wait_for(50, Duration::from_secs(5), "requests after the move", |o| {
        o.sent > settled
    })
    .await;
    let outcomes = load.stop().await;
    let failed: Vec<_> = outcomes.iter().filter(|o| !o.ok()).collect();
    assert!(failed.is_empty(), "failed during the moves: {failed:?}");
    let late_on_first = outcomes
        .iter()
        .filter(|o| o.sent > moved + 2 * interval && o.served_by("first"))
        .count();
    assert_eq!(late_on_first, 0, "new requests reach only the new address");

    let series = format!("{url}#127.0.0.3");
    assert!(
        gw.backend_metric("tenant_gateway_backend_requests_total", &series)
            .await
            > 0.0
    );

    // The DNS server goes away: the last good address stays, failures count.
    drop(dns);
    let failures = format!(
        r#"tenant_gateway_backend_resolve_failures_total{{backend="{url}",pool="default"}}"#
    );
    eventually(
        Duration::from_secs(10),
        "a failed lookup is counted",
        || async { gw.metric_or_zero(&failures).await >= 1.0 },
    )
    .await;
    let reply = gw.get("acme.test", "/").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.seen().backend(), "second");
    drop((first, second));
}

#[tokio::test]
async fn health_checks_reach_unix_and_tls_backends() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.root_pem()).unwrap();
    let tls = TlsBackend::start(&ca, "app.internal", None).await;
    let unix = UnixBackend::start("gunicorn");
    let config = format!(
        "pools:\n  default:\n    backends: [\"{}\", \"{}\"]\n    tls: {{ca: {}, server_name: app.internal}}\n    health_check: {{path: /healthz, interval: 100ms, unhealthy_threshold: 1}}\n{TENANT}",
        unix.url,
        tls.url,
        ca_file.display()
    );
    let gw = Gateway::start(GatewayOptions::new().config(&config)).await;
    let healthy = |url: String| {
        let gw = &gw;
        async move {
            gw.backend_metric("tenant_gateway_backend_healthy", &url)
                .await
        }
    };
    // Several checks later both still pass: the probes go over each transport.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(healthy(unix.url.clone()).await, 1.0);
    assert_eq!(healthy(tls.url.clone()).await, 1.0);
    let (unix_url, tls_url) = (unix.url.clone(), tls.url.clone());
    drop((unix, tls));
    eventually(Duration::from_secs(5), "both are taken out", || async {
        healthy(unix_url.clone()).await == 0.0 && healthy(tls_url.clone()).await == 0.0
    })
    .await;
}
