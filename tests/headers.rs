//! The headers the backend can trust: client copies of tenant headers are
//! replaced, `X-Forwarded-*` describe the client, and every forwarded request
//! carries a request id that is echoed back to the client.

mod common;

use common::{Backend, Gateway, GatewayOptions};
use hyper::{Method, StatusCode};

/// Sends the headers a client would use to pose as another tenant.
async fn spoofed_get(gw: &Gateway, host: &str) -> common::Seen {
    let reply = gw
        .request(Method::GET, host, "/")
        .header("X-Tenant-ID", "evil")
        .header("x-tenant-id", "evil-too")
        .header("X-Tenant-Schema", "public")
        .header("X-Tenant-Database", "postgres")
        .header("X-Tenant-Foo", "bar")
        .header("Accept", "application/json")
        .send()
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    reply.seen()
}

#[tokio::test]
async fn spoofed_tenant_headers_are_replaced_on_a_routed_host() {
    let app = Backend::start("app").await;
    let gw = Gateway::with_acme(GatewayOptions::new().backend(&app)).await;

    let seen = spoofed_get(&gw, "acme.test").await;
    assert_eq!(seen.header("x-tenant-id"), Some("acme"));
    assert_eq!(seen.header("x-tenant-schema"), Some("acme"));
    assert_eq!(
        seen.tenant_header_names(),
        ["x-tenant-id", "x-tenant-schema"]
    );
    assert_eq!(seen.header("accept"), Some("application/json"));
}

#[tokio::test]
async fn spoofed_tenant_headers_are_replaced_under_the_public_policy() {
    let app = Backend::start("app").await;
    let gw = Gateway::start(
        GatewayOptions::new()
            .backend(&app)
            .config("routing:\n  unknown_host:\n    action: public\n"),
    )
    .await;

    let seen = spoofed_get(&gw, "nobody.test").await;
    assert_eq!(seen.header("x-tenant-id"), Some("public"));
    assert_eq!(seen.header("x-tenant-schema"), Some("public"));
    assert_eq!(
        seen.tenant_header_names(),
        ["x-tenant-id", "x-tenant-schema"]
    );
}

#[tokio::test]
async fn renamed_tenant_headers_are_stripped_under_both_names() {
    let app = Backend::start("app").await;
    let gw = Gateway::with_acme(
        GatewayOptions::new()
            .backend(&app)
            .config("headers:\n  tenant_id: X-Org\n  schema: X-Org-Schema\n"),
    )
    .await;

    let reply = gw
        .request(Method::GET, "acme.test", "/")
        .header("X-Org", "evil")
        .header("X-Org-Schema", "public")
        .header("X-Tenant-ID", "evil")
        .send()
        .await;
    let seen = reply.seen();
    assert_eq!(seen.header("x-org"), Some("acme"));
    assert_eq!(seen.header("x-org-schema"), Some("acme"));
    assert!(seen.tenant_header_names().is_empty(), "{:?}", seen.0);
}

#[tokio::test]
async fn forwarded_headers_describe_the_client_and_the_host_it_asked_for() {
    let app = Backend::start("app").await;
    let gw = Gateway::with_acme(GatewayOptions::new().backend(&app)).await;

    let direct = gw.get("Acme.Test:8080", "/").await.seen();
    assert_eq!(direct.header("x-forwarded-for"), Some("127.0.0.1"));
    assert_eq!(direct.header("x-forwarded-proto"), Some("http"));
    assert_eq!(direct.header("x-forwarded-host"), Some("Acme.Test:8080"));
    assert_eq!(direct.header("host"), Some("Acme.Test:8080"));

    let chained = gw
        .request(Method::GET, "acme.test", "/")
        .header("X-Forwarded-For", "203.0.113.7")
        .header("X-Forwarded-Proto", "https")
        .header("X-Forwarded-Host", "spoofed.test")
        .send()
        .await
        .seen();
    assert_eq!(
        chained.header("x-forwarded-for"),
        Some("203.0.113.7, 127.0.0.1")
    );
    assert_eq!(chained.header("x-forwarded-proto"), Some("http"));
    assert_eq!(chained.header("x-forwarded-host"), Some("acme.test"));
}

/// Apps moved from nginx trust `X-Real-IP` for audit logs and rate limits:
/// a client must not be able to choose it, nor end a `Forwarded` chain.
#[tokio::test]
async fn real_ip_is_the_peer_and_forwarded_ends_with_the_peer() {
    let app = Backend::start("app").await;
    let gw = Gateway::with_acme(GatewayOptions::new().backend(&app)).await;

    let seen = gw
        .request(Method::GET, "acme.test", "/")
        .header("X-Real-IP", "203.0.113.66")
        .header("Forwarded", "for=203.0.113.66;proto=https")
        .send()
        .await
        .seen();
    assert_eq!(seen.header("x-real-ip"), Some("127.0.0.1"));
    assert_eq!(
        seen.header("forwarded"),
        Some("for=203.0.113.66;proto=https, for=127.0.0.1;proto=http")
    );

    let direct = gw.get("acme.test", "/").await.seen();
    assert_eq!(direct.header("x-real-ip"), Some("127.0.0.1"));
    assert_eq!(direct.header("forwarded"), Some("for=127.0.0.1;proto=http"));
}

#[tokio::test]
async fn a_valid_request_id_is_kept_and_echoed_to_the_client() {
    let app = Backend::start("app").await;
    let gw = Gateway::with_acme(GatewayOptions::new().backend(&app)).await;

    let reply = gw
        .request(Method::GET, "acme.test", "/")
        .header("X-Request-ID", "req-2024.06_abc")
        .send()
        .await;
    assert_eq!(reply.header("x-request-id"), Some("req-2024.06_abc"));
    assert_eq!(reply.seen().header("x-request-id"), Some("req-2024.06_abc"));
}

#[tokio::test]
async fn a_missing_or_invalid_request_id_is_generated_and_echoed_to_the_client() {
    let app = Backend::start("app").await;
    let gw = Gateway::with_acme(GatewayOptions::new().backend(&app)).await;

    let first = gw.get("acme.test", "/").await;
    let second = gw
        .request(Method::GET, "acme.test", "/")
        .header("X-Request-ID", "not valid; drop table")
        .send()
        .await;
    let mut ids = Vec::new();
    for reply in [&first, &second] {
        let id = reply
            .header("x-request-id")
            .expect("a request id")
            .to_owned();
        assert_eq!(id.len(), 32, "{id}");
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
        assert_eq!(reply.seen().header("x-request-id"), Some(id.as_str()));
        ids.push(id);
    }
    assert_ne!(ids[0], ids[1], "each request gets its own id");
}

#[tokio::test]
async fn hop_by_hop_headers_are_not_forwarded() {
    let app = Backend::start("app").await;
    let gw = Gateway::with_acme(GatewayOptions::new().backend(&app)).await;

    let seen = gw
        .request(Method::GET, "acme.test", "/")
        .header("Connection", "keep-alive, X-Secret, Host")
        .header("X-Secret", "hunter2")
        .header("Proxy-Connection", "keep-alive")
        .header("X-Kept", "yes")
        .send()
        .await
        .seen();
    assert_eq!(seen.header("x-secret"), None);
    assert_eq!(seen.header("proxy-connection"), None);
    assert_eq!(seen.header("x-kept"), Some("yes"));
    // Naming Host in `Connection` does not take the site away from the backend.
    assert_eq!(seen.header("host"), Some("acme.test"));
    assert_eq!(seen.header("x-forwarded-host"), Some("acme.test"));
}

#[tokio::test]
async fn every_x_forwarded_for_line_is_kept_in_the_chain() {
    let app = Backend::start("app").await;
    let gw = Gateway::with_acme(GatewayOptions::new().backend(&app)).await;

    let seen = gw
        .request(Method::GET, "acme.test", "/")
        .header("X-Forwarded-For", "198.51.100.1")
        .header("X-Forwarded-For", "203.0.113.7, 192.0.2.44")
        .send()
        .await
        .seen();
    assert_eq!(
        seen.header("x-forwarded-for"),
        Some("198.51.100.1, 203.0.113.7, 192.0.2.44, 127.0.0.1")
    );
}
