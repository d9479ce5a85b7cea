//! On-demand certificates from a real ACME server (pebble): a registered
//! domain gets one on its first handshake, other names never cause an order,
//! certificates are stored (a restart and another replica reuse them),
//! renewed before expiry without a failed request, ordered at once through
//! the admin API, and a CA error fails the handshake and backs off. Two
//! replicas asked at once make one order between them, orders beyond
//! `max_concurrent_orders` wait their turn, and waiting on another replica's
//! order takes no turn. Two
//! tests let pebble really validate HTTP-01 and TLS-ALPN-01 against the
//! gateway, one of them through a replica that did not place the order.

mod common;

use std::time::{Duration, Instant};

use common::free_port;
use common::pebble::Pebble;
use common::pg::fresh_database;
use common::tls::{https_get, HttpsReply, TestCa};
use common::{eventually, Backend, Gateway, GatewayOptions};
use hyper::{Method, StatusCode};
use rustls::RootCertStore;
use serde_json::json;

const ISSUED_FIRST: &str = "tenant_gateway_acme_orders_total{reason=\"first\",result=\"issued\"}";
const FAILED_FIRST: &str = "tenant_gateway_acme_orders_total{reason=\"first\",result=\"failed\"}";
const ISSUED_RENEWAL: &str =
    "tenant_gateway_acme_orders_total{reason=\"renewal\",result=\"issued\"}";
const ISSUED_ADMIN: &str = "tenant_gateway_acme_orders_total{reason=\"admin\",result=\"issued\"}";
const LOADED: &str = "tenant_gateway_acme_certificates_loaded_total";
const REFUSED: &str = "tenant_gateway_acme_refused_total";

/// Tenants: `acme` on shop.acme.test, `globex` on globex.test, a suspended
/// `frozen` on frozen.test, and `wild` on the wildcard *.wild.test.
fn acme_config(acme_yaml: &str) -> String {
    format!(
        "tls:\n  listen: 127.0.0.1:0\n{acme_yaml}\
         tenants:\n  - {{id: acme, domains: [shop.acme.test]}}\n  - {{id: globex, domains: [globex.test]}}\n  \
         - {{id: frozen, status: suspended, domains: [frozen.test]}}\n  - {{id: wild, domains: [\"*.wild.test\"]}}\n"
    )
}

async fn acme_gateway(pebble: &Pebble, app: &Backend, settings: &[&str]) -> Gateway {
    let yaml = acme_config(&pebble.acme_yaml(settings));
    Gateway::start(GatewayOptions::new().backend(app).config(&yaml)).await
}

async fn certificate_of(gw: &Gateway, domain: &str) -> serde_json::Value {
    let (status, body) = gw
        .admin(Method::GET, &format!("/v1/domains/{domain}"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["certificate"].clone()
}

/// `GET /` on a new HTTPS connection to `gw` with `name` as both SNI and
/// Host, trusting `roots`; panics with the gateway's log if it fails.
async fn served(gw: &Gateway, roots: &RootCertStore, name: &str) -> HttpsReply {
    https_get(gw.https_addr.unwrap(), roots, name, name, "/")
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}\n{}", gw.log()))
}

#[tokio::test]
async fn a_registered_domain_gets_a_certificate_on_its_first_handshake() {
    let pebble = Pebble::start(None).await;
    let app = Backend::start("app").await;
    let gw = acme_gateway(&pebble, &app, &[]).await;
    let https = gw.https_addr.expect("an HTTPS listener");
    let roots = pebble.issuing_roots().await;
    assert_eq!(certificate_of(&gw, "shop.acme.test").await["state"], "none");

    // Five first handshakes at once all wait for the one order.
    let handshakes =
        (0..5).map(|_| https_get(https, &roots, "shop.acme.test", "shop.acme.test", "/orders"));
    let replies = futures_util::future::join_all(handshakes).await;
    let mut leaves = Vec::new();
    for reply in replies {
        let got = reply.unwrap_or_else(|e| panic!("{e}\n{}", gw.log()));
        assert_eq!(got.reply.status, StatusCode::OK);
        assert_eq!(got.reply.seen().header("x-tenant-id"), Some("acme"));
        assert_eq!(got.reply.seen().path(), "/orders");
        leaves.push(got.leaf);
    }
    assert!(leaves.windows(2).all(|w| w[0] == w[1]), "one certificate");
    assert_eq!(gw.metric(ISSUED_FIRST).await, 1.0);

    let certificate = certificate_of(&gw, "shop.acme.test").await;
    assert_eq!(certificate["state"], "valid", "{certificate}");
    assert!(certificate["not_after"].is_string(), "{certificate}");

    // The ACME certificate is the SNI name's: another tenant's Host is misdirected.
    let other = https_get(https, &roots, "shop.acme.test", "globex.test", "/")
        .await
        .unwrap();
    assert_eq!(other.reply.status, StatusCode::MISDIRECTED_REQUEST);

    // `www.` routes like the bare domain (routing.strip_www), so it gets its own certificate.
    let www = "www.shop.acme.test";
    let got = https_get(https, &roots, www, www, "/").await.unwrap();
    assert_eq!(got.reply.seen().header("x-tenant-id"), Some("acme"));
    assert_ne!(got.leaf, leaves[0]);
    assert_eq!(gw.metric(ISSUED_FIRST).await, 2.0);
}

#[tokio::test]
async fn orders_beyond_max_concurrent_orders_queue_one_at_a_time() {
    let pebble = Pebble::start(None).await;
    let app = Backend::start("app").await;
    let gw = acme_gateway(&pebble, &app, &["max_concurrent_orders: 1"]).await;
    let roots = pebble.issuing_roots().await;

    let names = ["shop.acme.test", "globex.test", "www.shop.acme.test"];
    let replies = futures_util::future::join_all(names.map(|name| served(&gw, &roots, name))).await;
    for reply in &replies {
        assert_eq!(reply.reply.status, StatusCode::OK);
    }
    assert_eq!(gw.metric(ISSUED_FIRST).await, 3.0, "queued, not refused");
    // Pebble's log shows each certificate issued before the next order is
    // placed (request lines repeat when pebble rejects a nonce; these do not).
    let log = pebble.log();
    let steps: String = log
        .lines()
        .filter_map(|line| {
            if line.contains("Added order") {
                Some('o')
            } else if line.contains("Issued certificate") {
                Some('i')
            } else {
                None
            }
        })
        .collect();
    assert_eq!(
        steps, "oioioi",
        "orders (o) and issued certificates (i):\n{log}"
    );
}

#[tokio::test]
async fn names_that_may_not_have_a_certificate_fail_the_handshake_and_order_nothing() {
    let pebble = Pebble::start(None).await;
    let app = Backend::start("app").await;
    let gw = acme_gateway(&pebble, &app, &[]).await;
    let https = gw.https_addr.unwrap();
    let roots = pebble.issuing_roots().await;

    // Unknown, suspended, and only covered by a wildcard domain.
    for name in ["nobody.test", "frozen.test", "x.wild.test"] {
        let err = https_get(https, &roots, name, name, "/")
            .await
            .err()
            .unwrap_or_else(|| panic!("{name}: handshake succeeded"));
        assert!(err.starts_with("handshake"), "{name}: {err}");
    }
    assert_eq!(gw.metric_or_zero(ISSUED_FIRST).await, 0.0);
    assert_eq!(gw.metric_or_zero(FAILED_FIRST).await, 0.0);
    assert_eq!(gw.metric(REFUSED).await, 3.0);
    assert_eq!(certificate_of(&gw, "frozen.test").await["state"], "none");
}

#[tokio::test]
async fn a_restarted_gateway_reuses_the_stored_certificate_without_an_order() {
    let pebble = Pebble::start(None).await;
    let app = Backend::start("app").await;
    let mut gw = acme_gateway(&pebble, &app, &[]).await;
    let roots = pebble.issuing_roots().await;
    let first = served(&gw, &roots, "globex.test").await;
    assert_eq!(gw.metric(ISSUED_FIRST).await, 1.0);

    gw.restart().await;
    let again = served(&gw, &roots, "globex.test").await;
    assert_eq!(again.reply.status, StatusCode::OK);
    assert_eq!(again.leaf, first.leaf, "the stored certificate");
    assert_eq!(gw.metric_or_zero(ISSUED_FIRST).await, 0.0);
    assert_eq!(gw.metric(LOADED).await, 1.0);
}

#[tokio::test]
async fn renewal_replaces_a_near_expiry_certificate_without_a_failed_request() {
    // Certificates live one hour and are renewed two hours before expiry:
    // every check (each second) finds the certificate due.
    let pebble = Pebble::start(Some(Duration::from_secs(3600))).await;
    let app = Backend::start("app").await;
    let settings = ["renew_before: 2h", "renew_check_interval: 1s"];
    let gw = acme_gateway(&pebble, &app, &settings).await;
    let https = gw.https_addr.unwrap();
    let roots = pebble.issuing_roots().await;
    let first = served(&gw, &roots, "shop.acme.test").await;

    // New connections all along: each one must succeed, and one must get
    // the replacement.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut requests = 0;
    loop {
        let got = https_get(https, &roots, "shop.acme.test", "shop.acme.test", "/")
            .await
            .unwrap_or_else(|e| panic!("request {requests} failed during renewal: {e}"));
        assert_eq!(got.reply.status, StatusCode::OK, "request {requests}");
        requests += 1;
        if got.leaf != first.leaf {
            break;
        }
        assert!(Instant::now() < deadline, "not renewed:\n{}", gw.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(gw.metric(ISSUED_RENEWAL).await >= 1.0);
    assert_eq!(gw.metric(ISSUED_FIRST).await, 1.0);
    let days = gw
        .metric("tenant_gateway_acme_certificate_expiry_days{domain=\"shop.acme.test\"}")
        .await;
    assert!(days > 0.0 && days < 1.0, "{days} days to expiry");
    // Every check finds the certificate due, so the next renewal may be
    // under way (`pending`): either way the stored certificate is shown.
    let certificate = certificate_of(&gw, "shop.acme.test").await;
    assert!(
        matches!(certificate["state"].as_str(), Some("valid" | "pending")),
        "{certificate}"
    );
    assert!(certificate["not_after"].is_string(), "{certificate}");
    assert!(certificate.get("error").is_none(), "{certificate}");
}

#[tokio::test]
async fn the_admin_api_orders_a_certificate_when_asked() {
    let pebble = Pebble::start(None).await;
    let app = Backend::start("app").await;
    let gw = acme_gateway(&pebble, &app, &[]).await;
    let roots = pebble.issuing_roots().await;

    let (status, body) = gw
        .admin(
            Method::POST,
            "/v1/tenants/globex/domains",
            Some(json!({"domain": "shop.globex.test", "tls": "issue"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["domain"], "shop.globex.test");
    let state = body["certificate"]["state"].as_str().unwrap_or_default();
    assert!(state == "pending" || state == "valid", "{body}");
    eventually(
        Duration::from_secs(15),
        "the certificate is valid",
        || async { certificate_of(&gw, "shop.globex.test").await["state"] == "valid" },
    )
    .await;
    assert_eq!(gw.metric(ISSUED_ADMIN).await, 1.0);

    let got = served(&gw, &roots, "shop.globex.test").await;
    assert_eq!(got.reply.seen().header("x-tenant-id"), Some("globex"));
    assert_eq!(gw.metric_or_zero(ISSUED_FIRST).await, 0.0);
    let (status, _) = gw.admin(Method::GET, "/v1/domains/nobody.test", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A wildcard domain is added, but no certificate can prove it.
    let (status, body) = gw
        .admin(
            Method::POST,
            "/v1/tenants/globex/domains",
            Some(json!({"domain": "*.globex.test", "tls": "issue"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["certificate"]["state"], "failed", "{body}");
    let error = body["certificate"]["error"].as_str().unwrap_or_default();
    assert!(error.contains("wildcard"), "{body}");

    // A removed domain stops getting its certificate, and orders nothing.
    gw.remove_domain("shop.globex.test").await;
    let err = https_get(
        gw.https_addr.unwrap(),
        &roots,
        "shop.globex.test",
        "shop.globex.test",
        "/",
    )
    .await
    .err()
    .expect("no handshake for a removed domain");
    assert!(err.starts_with("handshake"), "{err}");
    assert_eq!(gw.metric_or_zero(ISSUED_FIRST).await, 0.0);
}

#[tokio::test]
async fn replicas_on_one_postgres_store_share_the_certificate() {
    let pebble = Pebble::start(None).await;
    let app = Backend::start("app").await;
    let db = fresh_database();
    let yaml = acme_config(&pebble.acme_yaml(&[]));
    let replica = || Gateway::start(GatewayOptions::new().backend(&app).config(&yaml).store(&db));
    let one = replica().await;
    let two = replica().await;
    let roots = pebble.issuing_roots().await;

    // First handshakes on both replicas at once: one order between them
    // (the store's order lease), the other replica serves its certificate.
    let (first, second) = tokio::join!(
        served(&one, &roots, "shop.acme.test"),
        served(&two, &roots, "shop.acme.test")
    );
    assert_eq!(
        (first.reply.status, second.reply.status),
        (StatusCode::OK, StatusCode::OK)
    );
    assert_eq!(second.leaf, first.leaf, "the other replica's certificate");
    let issued = [
        one.metric_or_zero(ISSUED_FIRST).await,
        two.metric_or_zero(ISSUED_FIRST).await,
    ];
    assert_eq!(issued[0] + issued[1], 1.0, "orders by replica: {issued:?}");
    let waiter = if issued[0] == 1.0 { &two } else { &one };
    assert_eq!(waiter.metric(LOADED).await, 1.0);
    // The order is over on both (its lease was given back).
    for replica in [&one, &two] {
        let certificate = certificate_of(replica, "shop.acme.test").await;
        assert_eq!(certificate["state"], "valid", "{certificate}");
    }
    // While some replica holds a domain's order lease, every replica says pending.
    common::pg::psql(
        &db,
        "INSERT INTO gateway_acme_orders VALUES ('globex.test', 'elsewhere', now() + interval '1 hour')",
    );
    assert_eq!(
        certificate_of(&one, "globex.test").await["state"],
        "pending"
    );
    let third = served(&two, &roots, "shop.acme.test").await;
    assert_eq!(third.leaf, first.leaf);

    // Removing the domain through one replica stops the other serving its
    // copy of the certificate at once (not at its next renewal check).
    one.remove_domain("shop.acme.test").await;
    common::eventually(
        std::time::Duration::from_secs(5),
        "the other replica refuses the removed name",
        || async {
            https_get(
                two.https_addr.unwrap(),
                &roots,
                "shop.acme.test",
                "shop.acme.test",
                "/",
            )
            .await
            .is_err()
        },
    )
    .await;
}

#[tokio::test]
async fn waiting_on_another_replicas_order_holds_no_order_slot() {
    let pebble = Pebble::start(None).await;
    let app = Backend::start("app").await;
    let db = fresh_database();
    // The waiting handshake lasts two orders: give it room beyond the default 10 s.
    let yaml = acme_config(&format!(
        "  handshake_timeout: 30s\n{}",
        pebble.acme_yaml(&["max_concurrent_orders: 1"])
    ));
    let gw = Gateway::start(GatewayOptions::new().backend(&app).config(&yaml).store(&db)).await;
    let roots = pebble.issuing_roots().await;

    // Another replica holds globex.test's order lease: a handshake here
    // waits for that order's outcome.
    common::pg::psql(
        &db,
        "INSERT INTO gateway_acme_orders VALUES ('globex.test', 'elsewhere', now() + interval '1 hour')",
    );
    let (addr, waiter_roots) = (gw.https_addr.unwrap(), roots.clone());
    let waiting = tokio::spawn(async move {
        https_get(addr, &waiter_roots, "globex.test", "globex.test", "/").await
    });
    eventually(
        Duration::from_secs(5),
        "the handshake waits on the other replica",
        || async { gw.log().contains("another replica is ordering") },
    )
    .await;

    // The only order slot is free meanwhile: another domain gets its certificate.
    let other = served(&gw, &roots, "shop.acme.test").await;
    assert_eq!(other.reply.status, StatusCode::OK);
    assert_eq!(gw.metric(ISSUED_FIRST).await, 1.0);

    // The other replica gives up its lease without a certificate: the
    // waiting handshake's order runs here, and the handshake completes.
    common::pg::psql(
        &db,
        "DELETE FROM gateway_acme_orders WHERE holder = 'elsewhere'",
    );
    let waited = waiting
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("{e}\n{}", gw.log()));
    assert_eq!(waited.reply.status, StatusCode::OK);
    assert_eq!(gw.metric(ISSUED_FIRST).await, 2.0);
}

#[tokio::test]
async fn a_ca_error_fails_the_handshake_and_backs_off() {
    // Nobody listens at this directory; the root file only has to exist.
    let ca = TestCa::new();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root.pem");
    std::fs::write(&root, ca.root_pem()).unwrap();
    let acme_yaml = format!(
        "  acme:\n    directory: https://127.0.0.1:1/dir\n    ca_root: {}\n    failure_backoff: 1h\n",
        root.display()
    );
    let app = Backend::start("app").await;
    let gw = Gateway::start(
        GatewayOptions::new()
            .backend(&app)
            .config(&acme_config(&acme_yaml)),
    )
    .await;
    let https = gw.https_addr.unwrap();

    let err = https_get(https, &ca.roots(), "shop.acme.test", "shop.acme.test", "/")
        .await
        .err()
        .expect("no certificate without a CA");
    assert!(err.starts_with("handshake"), "{err}");
    assert_eq!(gw.metric(FAILED_FIRST).await, 1.0);
    let certificate = certificate_of(&gw, "shop.acme.test").await;
    assert_eq!(certificate["state"], "failed", "{certificate}");
    assert!(certificate["error"].is_string(), "{certificate}");

    // Within the backoff a handshake fails at once, without a new order.
    let started = Instant::now();
    assert!(
        https_get(https, &ca.roots(), "shop.acme.test", "shop.acme.test", "/")
            .await
            .is_err()
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(gw.metric(FAILED_FIRST).await, 1.0);
    assert_eq!(gw.metric(REFUSED).await, 1.0);
}

/// A gateway on ports picked beforehand, so a validating pebble can reach
/// its plain-HTTP and HTTPS listeners; ordering with `challenge`.
async fn validated_gateway(challenge: &str, app: &Backend) -> (Pebble, Gateway) {
    let (http_port, tls_port) = (free_port(), free_port());
    let pebble = Pebble::start_validating(http_port, tls_port).await;
    let yaml = acme_config(&pebble.acme_yaml(&[&format!("challenge: {challenge}")]))
        .replace("127.0.0.1:0", &format!("127.0.0.1:{tls_port}"));
    let options = GatewayOptions::new()
        .backend(app)
        .config(&yaml)
        .listen(&format!("127.0.0.1:{http_port}"));
    (pebble, Gateway::start(options).await)
}

#[tokio::test]
async fn the_ca_validates_http_01_answers_on_the_plain_http_listener() {
    let app = Backend::start("app").await;
    let (pebble, gw) = validated_gateway("http-01", &app).await;
    let roots = pebble.issuing_roots().await;
    let got = https_get(
        gw.https_addr.unwrap(),
        &roots,
        "shop.acme.test",
        "shop.acme.test",
        "/",
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}\n{}", gw.log(), pebble.log()));
    assert_eq!(got.reply.seen().header("x-tenant-id"), Some("acme"));
    assert_eq!(gw.metric(ISSUED_FIRST).await, 1.0);
    // The CA fetched the token from the gateway itself, not from the app.
    let answered = "tenant_gateway_requests_total{class=\"2xx\",outcome=\"https_redirect\"}";
    assert!(gw.metric(answered).await >= 1.0);
}

#[tokio::test]
async fn the_ca_validates_tls_alpn_01_answers_on_the_https_listener() {
    let app = Backend::start("app").await;
    let (pebble, gw) = validated_gateway("tls-alpn-01", &app).await;
    let roots = pebble.issuing_roots().await;
    let got = https_get(
        gw.https_addr.unwrap(),
        &roots,
        "globex.test",
        "globex.test",
        "/",
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}\n{}", gw.log(), pebble.log()));
    assert_eq!(got.reply.seen().header("x-tenant-id"), Some("globex"));
    assert_eq!(gw.metric(ISSUED_FIRST).await, 1.0);
    let plain = "tenant_gateway_requests_total{class=\"2xx\",outcome=\"https_redirect\"}";
    assert_eq!(gw.metric_or_zero(plain).await, 0.0, "no HTTP-01 fetch");
}

#[tokio::test]
async fn a_challenge_is_answered_by_whichever_replica_the_ca_reaches() {
    let app = Backend::start("app").await;
    for challenge in ["http-01", "tls-alpn-01"] {
        // The CA can only reach replica `two`; the order is placed by `one`.
        let (http_port, tls_port) = (free_port(), free_port());
        let pebble = Pebble::start_validating(http_port, tls_port).await;
        let db = fresh_database();
        let yaml = acme_config(&pebble.acme_yaml(&[&format!("challenge: {challenge}")]));
        let replica = |yaml: String, listen: Option<String>| {
            let mut options = GatewayOptions::new().backend(&app).config(&yaml);
            options.extra_args = vec!["--store".into(), db.clone()];
            options.listen = listen;
            Gateway::start(options)
        };
        let one = replica(yaml.clone(), None).await;
        let two = replica(
            yaml.replace("127.0.0.1:0", &format!("127.0.0.1:{tls_port}")),
            Some(format!("127.0.0.1:{http_port}")),
        )
        .await;
        let roots = pebble.issuing_roots().await;

        let got = https_get(
            one.https_addr.unwrap(),
            &roots,
            "shop.acme.test",
            "shop.acme.test",
            "/",
        )
        .await
        .unwrap_or_else(|e| panic!("{challenge}: {e}\n{}\n{}", one.log(), two.log()));
        assert_eq!(got.reply.status, StatusCode::OK, "{challenge}");
        assert_eq!(one.metric(ISSUED_FIRST).await, 1.0, "{challenge}");
        assert_eq!(two.metric_or_zero(ISSUED_FIRST).await, 0.0, "{challenge}");
    }
}
