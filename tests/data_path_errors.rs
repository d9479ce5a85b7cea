//! The data path's own short answers when a request cannot be served: a dead
//! backend (502), a slow one (504), a pool with no backend (503), a body over
//! the limit (413), a broken body (400) or one too slow (408), which never
//! count against the backend, CONNECT (405), a request target that is no
//! path, and a malformed or missing Host header (400).

mod common;

use std::time::{Duration, Instant};

use common::{dead_backend_url, Backend, Gateway, GatewayOptions};
use hyper::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn dead_backend_gets_502_while_other_pools_keep_working() {
    let app = Backend::start("app").await;
    let gw = Gateway::start(GatewayOptions::new().config(&format!(
        "pools:\n  default: {{backends: [\"{}\"]}}\n  dead: {{backends: [\"{}\"]}}\n",
        app.url,
        dead_backend_url()
    )))
    .await;
    gw.create_tenant(
        json!({"id": "ghost", "name": "Ghost", "pool": "dead", "domains": ["ghost.test"]}),
    )
    .await;
    gw.create_tenant(json!({"id": "acme", "name": "Acme", "domains": ["acme.test"]}))
        .await;

    let reply = gw.get("ghost.test", "/").await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY);
    assert_eq!(
        reply.text(),
        "bad gateway: the backend could not be reached\n"
    );
    assert!(
        !reply.text().contains("127.0.0.1"),
        "backend addresses stay out of answers"
    );
    assert_eq!(gw.get("acme.test", "/").await.status, StatusCode::OK);
    assert_eq!(
        gw.metric(r#"tenant_gateway_requests_total{class="5xx",outcome="upstream_error"}"#)
            .await,
        1.0
    );
}

#[tokio::test]
async fn backend_slower_than_the_response_timeout_gets_504() {
    let app = Backend::start("app").await;
    let gw = Gateway::with_acme(
        GatewayOptions::new()
            .backend(&app)
            .config("upstream:\n  response_timeout: 300ms\n"),
    )
    .await;

    let started = Instant::now();
    let reply = gw.get("acme.test", "/report?sleep_ms=5000").await;
    assert_eq!(
        reply.status,
        StatusCode::GATEWAY_TIMEOUT,
        "{}",
        reply.text()
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "answered after {:?}, not at the timeout",
        started.elapsed()
    );
    // A backend inside the timeout is fine.
    assert_eq!(
        gw.get("acme.test", "/report?sleep_ms=10").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn tenant_without_a_backend_pool_gets_503() {
    // No --default-backend and no pools: nowhere to send anyone.
    let gw = Gateway::with_acme(GatewayOptions::new()).await;

    let reply = gw.get("acme.test", "/").await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn body_over_the_limit_gets_413_and_one_within_it_is_forwarded() {
    let app = Backend::start("app").await;
    let gw = Gateway::with_acme(
        GatewayOptions::new()
            .backend(&app)
            .config("limits:\n  max_request_body: 1KiB\n"),
    )
    .await;

    let small = gw
        .request(Method::POST, "acme.test", "/upload")
        .body(vec![b'x'; 1024])
        .send()
        .await;
    assert_eq!(small.status, StatusCode::OK);
    assert_eq!(small.seen().body_bytes(), 1024);

    let large = gw
        .request(Method::POST, "acme.test", "/upload")
        .body(vec![b'x'; 1025])
        .send()
        .await;
    assert_eq!(large.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(large.text(), "request body too large\n");
}

#[tokio::test]
async fn chunked_body_over_the_limit_gets_413() {
    let app = Backend::start("app").await;
    let gw = Gateway::with_acme(
        GatewayOptions::new()
            .backend(&app)
            .config("limits:\n  max_request_body: 1KiB\n"),
    )
    .await;

    let chunked = |size: usize| {
        let mut raw = b"POST /upload HTTP/1.1\r\nHost: acme.test\r\n\
                        Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            .to_vec();
        raw.extend_from_slice(format!("{size:x}\r\n").as_bytes());
        raw.extend(std::iter::repeat_n(b'x', size));
        raw.extend_from_slice(b"\r\n0\r\n\r\n");
        raw
    };

    let small = gw.raw(&chunked(1000)).await;
    assert_eq!(small.status, 200, "{}", small.body);
    assert!(
        small.body.contains("\"body_bytes\": 1000"),
        "{}",
        small.body
    );

    let large = gw.raw(&chunked(4000)).await;
    assert_eq!(large.status, 413, "{}{}", large.head, large.body);
}

/// `tenant_gateway_backend_{what}_total` of the backend at `url` in the default pool.
async fn backend_count(gw: &Gateway, url: &str, what: &str) -> f64 {
    gw.metric_or_zero(&format!(
        r#"tenant_gateway_backend_{what}_total{{backend="{url}",pool="default"}}"#
    ))
    .await
}

/// Sends 10 of the 100 body bytes promised, then nothing, and expects 408.
async fn assert_stalled_body_gets_408(gw: &Gateway) {
    let reply = gw
        .raw(
            b"POST /upload HTTP/1.1\r\nHost: acme.test\r\nContent-Length: 100\r\n\
              Connection: close\r\n\r\n0123456789",
        )
        .await;
    assert_eq!(reply.status, 408, "{}{}", reply.head, reply.body);
}

#[tokio::test]
async fn a_broken_request_body_gets_400_and_is_not_counted_against_the_backend() {
    let app = Backend::start("app").await;
    let gw = Gateway::with_acme(GatewayOptions::new().backend(&app)).await;

    // "zz" is no chunk size: the body breaks off once forwarding began.
    let broken = b"POST /upload HTTP/1.1\r\nHost: acme.test\r\n\
                   Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
                   zz\r\nhello\r\n0\r\n\r\n";
    for _ in 0..4 {
        let reply = gw.raw(broken).await;
        assert_eq!(reply.status, 400, "{}{}", reply.head, reply.body);
        assert_eq!(
            reply.body,
            "bad request: the request body could not be read\n"
        );
    }
    assert_eq!(
        backend_count(&gw, &app.url, "errors").await,
        0.0,
        "{}",
        gw.log()
    );
    assert_eq!(gw.get("acme.test", "/").await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_body_slower_than_the_response_timeout_gets_408_not_504() {
    let app = Backend::start("app").await;
    let gw = Gateway::with_acme(
        GatewayOptions::new()
            .backend(&app)
            .config("upstream:\n  response_timeout: 300ms\n"),
    )
    .await;

    assert_stalled_body_gets_408(&gw).await;
    assert_eq!(
        backend_count(&gw, &app.url, "errors").await,
        0.0,
        "{}",
        gw.log()
    );
}

#[tokio::test]
async fn a_backend_that_gives_up_on_a_slow_body_is_not_blamed_for_it() {
    use tokio::io::AsyncReadExt;
    // A backend with a body-read timeout of its own: it reads what came,
    // waits 200 ms for the rest, then closes without answering.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = [0u8; 4096];
                let _ = stream.read(&mut head).await;
                tokio::time::sleep(Duration::from_millis(200)).await;
            });
        }
    });
    let gw = Gateway::with_acme(GatewayOptions::new().backend_url(&url)).await;

    assert_stalled_body_gets_408(&gw).await;
    assert_eq!(
        backend_count(&gw, &url, "errors").await,
        0.0,
        "{}",
        gw.log()
    );
}

#[tokio::test]
async fn connect_gets_405_and_a_target_that_is_no_path_gets_400() {
    let app = Backend::start("app").await;
    let gw = Gateway::with_acme(GatewayOptions::new().backend(&app)).await;

    let connect = gw
        .raw(b"CONNECT acme.test:443 HTTP/1.1\r\nHost: acme.test:443\r\nConnection: close\r\n\r\n")
        .await;
    assert_eq!(connect.status, 405, "{}{}", connect.head, connect.body);
    assert!(
        connect.head.to_ascii_lowercase().contains("allow: get"),
        "{}",
        connect.head
    );
    for target in ["foo", "*"] {
        let reply = gw
            .raw(
                format!(
                    "OPTIONS {target} HTTP/1.1\r\nHost: acme.test\r\nConnection: close\r\n\r\n"
                )
                .as_bytes(),
            )
            .await;
        assert_eq!(reply.status, 400, "{target}: {}{}", reply.head, reply.body);
        assert_eq!(
            reply.body,
            "bad request: the request target must be a path\n"
        );
    }
    assert_eq!(backend_count(&gw, &app.url, "requests").await, 0.0);
}

#[tokio::test]
async fn request_without_host_gets_400() {
    let app = Backend::start("app").await;
    let gw = Gateway::with_acme(GatewayOptions::new().backend(&app)).await;

    let reply = gw.raw(b"GET / HTTP/1.0\r\n\r\n").await;
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert_eq!(reply.body, "bad request: missing Host header\n");
}

#[tokio::test]
async fn request_with_two_host_headers_gets_400() {
    let app = Backend::start("app").await;
    let gw = Gateway::with_acme(GatewayOptions::new().backend(&app)).await;

    let reply = gw
        .raw(
            b"GET / HTTP/1.1\r\nHost: acme.test\r\nHost: evil.test\r\n\
              Connection: close\r\n\r\n",
        )
        .await;
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert_eq!(reply.body, "bad request: more than one Host header\n");
}

#[tokio::test]
async fn malformed_host_values_get_400() {
    let app = Backend::start("app").await;
    let gw = Gateway::start(GatewayOptions::new().backend(&app)).await;

    for host in [
        "a..b",
        "acme.test:99999",
        "acme.test:8o",
        "[::1",
        "[zz::1]",
        "under score.test",
    ] {
        let reply = gw.get(host, "/").await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "Host: {host}");
        assert!(
            reply.text().starts_with("bad request: malformed host"),
            "Host: {host}: {}",
            reply.text()
        );
    }
}

#[tokio::test]
async fn absolute_form_request_uses_its_authority_when_host_is_missing() {
    let app = Backend::start("app").await;
    let gw = Gateway::with_acme(GatewayOptions::new().backend(&app)).await;

    let reply = gw
        .raw(b"GET http://acme.test/orders HTTP/1.0\r\n\r\n")
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(
        reply.body.contains("\"x-tenant-id\": \"acme\""),
        "{}",
        reply.body
    );
    assert!(
        reply.body.contains("\"path\": \"/orders\""),
        "{}",
        reply.body
    );
}
