//! HTTPS with static certificates: the certificate is chosen by SNI (exact
//! name, then a wildcard), an unknown SNI fails the handshake, the Host must
//! belong to the SNI name's tenant (else 421), and plain HTTP redirects to
//! HTTPS except for ACME challenges.

mod common;

use common::tls::{https_get, TestCa};
use common::{Backend, Gateway, GatewayOptions};
use hyper::StatusCode;

/// A gateway with a wildcard certificate for `*.app.example.com`, an exact
/// one for `shop.customer.test`, and tenants on both.
async fn gateway_with_static_certs(ca: &TestCa, dir: &std::path::Path, app: &Backend) -> Gateway {
    let (wild_crt, wild_key) = ca.leaf(&["*.app.example.com"], dir, "wildcard");
    let (shop_crt, shop_key) = ca.leaf(&["shop.customer.test"], dir, "shop");
    let yaml = format!(
        "tls:\n  listen: 127.0.0.1:0\n  redirect_http: true\n  certificates:\n    - {{cert: {}, key: {}}}\n    - {{cert: {}, key: {}}}\n\
         tenants:\n  - {{id: acme, domains: [acme.app.example.com, shop.customer.test]}}\n  - {{id: globex, domains: [globex.app.example.com]}}\n",
        wild_crt.display(),
        wild_key.display(),
        shop_crt.display(),
        shop_key.display(),
    );
    Gateway::start(GatewayOptions::new().backend(app).config(&yaml)).await
}

#[tokio::test]
async fn tenants_are_served_over_https_with_the_certificate_their_sni_names() {
    let ca = TestCa::new();
    let dir = tempfile::tempdir().unwrap();
    let app = Backend::start("app").await;
    let gw = gateway_with_static_certs(&ca, dir.path(), &app).await;
    let https = gw.https_addr.expect("an HTTPS listener");

    for (name, tenant) in [
        ("acme.app.example.com", "acme"),
        ("globex.app.example.com", "globex"),
        ("shop.customer.test", "acme"),
    ] {
        let got = https_get(https, &ca.roots(), name, name, "/orders")
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(got.reply.status, StatusCode::OK, "{name}");
        assert_eq!(got.alpn.as_deref(), Some(&b"h2"[..]), "{name}: ALPN h2");
        let seen = got.reply.seen();
        assert_eq!(seen.header("x-tenant-id"), Some(tenant), "{name}");
        assert_eq!(seen.header("x-forwarded-proto"), Some("https"), "{name}");
        assert_eq!(seen.path(), "/orders");
    }
}

#[tokio::test]
async fn an_sni_name_without_a_certificate_fails_the_handshake() {
    let ca = TestCa::new();
    let dir = tempfile::tempdir().unwrap();
    let app = Backend::start("app").await;
    let gw = gateway_with_static_certs(&ca, dir.path(), &app).await;
    let https = gw.https_addr.unwrap();

    for name in ["nobody.test", "a.b.app.example.com", "app.example.com"] {
        let got = https_get(https, &ca.roots(), name, name, "/").await;
        let err = got
            .err()
            .unwrap_or_else(|| panic!("{name}: handshake succeeded"));
        assert!(err.starts_with("handshake"), "{name}: {err}");
    }
}

#[tokio::test]
async fn a_host_of_another_tenant_on_a_tls_connection_gets_421() {
    let ca = TestCa::new();
    let dir = tempfile::tempdir().unwrap();
    let app = Backend::start("app").await;
    let gw = gateway_with_static_certs(&ca, dir.path(), &app).await;
    let https = gw.https_addr.unwrap();
    let roots = ca.roots();

    // Same wildcard certificate, other tenant: the connection was misdirected.
    let other = https_get(
        https,
        &roots,
        "acme.app.example.com",
        "globex.app.example.com",
        "/",
    )
    .await
    .unwrap();
    assert_eq!(other.reply.status, StatusCode::MISDIRECTED_REQUEST);
    let unknown = https_get(https, &roots, "acme.app.example.com", "nobody.test", "/")
        .await
        .unwrap();
    assert_eq!(unknown.reply.status, StatusCode::MISDIRECTED_REQUEST);

    // Another domain of the same tenant, or the same host with a port, is fine.
    let same = https_get(
        https,
        &roots,
        "shop.customer.test",
        "acme.app.example.com",
        "/",
    )
    .await
    .unwrap();
    assert_eq!(same.reply.status, StatusCode::OK);
    let port = https_get(
        https,
        &roots,
        "globex.app.example.com",
        "GLOBEX.app.example.com:8443",
        "/",
    )
    .await
    .unwrap();
    assert_eq!(port.reply.status, StatusCode::OK);
    assert_eq!(port.reply.seen().header("x-tenant-id"), Some("globex"));
}

#[tokio::test]
async fn plain_http_redirects_to_https_but_not_acme_challenges() {
    let ca = TestCa::new();
    let dir = tempfile::tempdir().unwrap();
    let app = Backend::start("app").await;
    let gw = gateway_with_static_certs(&ca, dir.path(), &app).await;
    let https_port = gw.https_addr.unwrap().port();

    let redirect = gw.get("acme.app.example.com:80", "/cart?x=1").await;
    assert_eq!(redirect.status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(
        redirect.header("location"),
        Some(format!("https://acme.app.example.com:{https_port}/cart?x=1").as_str())
    );

    // A challenge token the gateway does not hold goes to the app.
    let challenge = gw
        .get(
            "acme.app.example.com",
            "/.well-known/acme-challenge/app-token",
        )
        .await;
    assert_eq!(challenge.status, StatusCode::OK);
    assert_eq!(challenge.seen().header("x-tenant-id"), Some("acme"));
}
