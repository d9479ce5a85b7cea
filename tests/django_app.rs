//! A real Django + django-tenants site behind the gateway: the example
//! project of `integrations/django` on the test PostgreSQL (schemas made by
//! `migrate_schemas`, tenants by django-tenants' models), gunicorn with
//! `TenantGatewayMiddleware`, and the gateway reading the same database with
//! `--store-layout django-tenants`. Each tenant sees only its own rows; the
//! app refuses tenant headers that did not come from the gateway.

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use common::django::{self, DjangoSite, Gunicorn};
use common::{Gateway, GatewayOptions, Reply};
use hyper::{Method, StatusCode};
use ring::hmac;
use serde_json::{json, Value};

const NEW_SECRET: &str = "django-test-new-secret-0123456789abcdef";
const OLD_SECRET: &str = "django-test-old-secret-0123456789abcdef";
const WRONG_SECRET: &str = "not-the-shared-secret-0123456789abcdef";

/// What the example's `/notes/` view answers: the schema and its notes.
fn notes(reply: &Reply) -> Value {
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    serde_json::from_slice(&reply.body).expect("JSON from the notes view")
}

/// A v1 signature as the gateway makes it (docs/headers.md: Signed tenant headers).
fn signature(kid: &str, secret: &str, tenant: &str, schema: &str, request_id: &str) -> String {
    let ts = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let tag = hmac::sign(
        &key,
        format!("v1\n{kid}\n{ts}\n{tenant}\n{schema}\n{request_id}").as_bytes(),
    );
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("v1;kid={kid};ts={ts};sig={hex}")
}

/// `GET /notes/` straight to the app with the tenant headers `(id, schema)`
/// and a signature by the key `(kid, secret)` over `signed` (an id and
/// schema; the headers' own when `None`).
async fn signed_get(
    app: &Gunicorn,
    (id, schema): (&str, &str),
    (kid, secret): (&str, &str),
    signed: Option<(&str, &str)>,
) -> Reply {
    let (signed_id, signed_schema) = signed.unwrap_or((id, schema));
    let value = signature(kid, secret, signed_id, signed_schema, "r1");
    let headers = [
        ("X-Tenant-ID", id),
        ("X-Tenant-Schema", schema),
        ("X-Request-ID", "r1"),
        ("X-Tenant-Signature", &value),
    ];
    app.get("acme.test", "/notes/", &headers).await
}

async fn gateway_for(site: &DjangoSite, app: &Gunicorn) -> Gateway {
    let config = format!(
        "store:\n  django:\n    name_column: name\n\
         headers:\n  signing:\n    keys:\n      - {{id: new, secret: {NEW_SECRET}}}\n      - {{id: old, secret: {OLD_SECRET}}}\n"
    );
    let options = GatewayOptions::new()
        .backend_url(&app.url)
        .config(&config)
        .store(&site.database)
        .django_layout();
    Gateway::start(options).await
}

#[tokio::test]
async fn two_tenants_each_see_only_their_rows_behind_the_gateway_and_forged_headers_are_refused() {
    let Some(python) = django::python() else {
        return;
    };
    let site = DjangoSite::create(python).await;
    // The app accepts both keys (mid-rotation); the gateway signs with `new`.
    let keys = format!("new={NEW_SECRET},old={OLD_SECRET}");
    let app = site.serve("gateway", &keys, 2).await;
    let gw = gateway_for(&site, &app).await;

    // Through the gateway: each Host reaches its own schema's rows.
    let acme = notes(&gw.get("acme.test", "/notes/").await);
    assert_eq!(
        acme,
        json!({"schema": "acme", "notes": ["acme: first note", "acme: second note"]})
    );
    let globex = notes(&gw.get("globex.test", "/notes/").await);
    assert_eq!(
        globex,
        json!({"schema": "globex", "notes": ["globex: only note"]})
    );
    // A client posing as another tenant through the gateway gets its own.
    let posing = gw
        .request(Method::GET, "acme.test", "/notes/")
        .header("X-Tenant-Schema", "globex")
        .header("X-Tenant-ID", "globex")
        .header(
            "X-Tenant-Signature",
            &signature("new", "guess", "globex", "globex", "r"),
        )
        .send()
        .await;
    assert_eq!(notes(&posing)["schema"], "acme");
    // A domain the gateway adds to django-tenants' table routes at once.
    gw.add_domain("globex", "shop.globex.test").await;
    assert_eq!(
        notes(&gw.get("shop.globex.test", "/notes/").await)["schema"],
        "globex"
    );

    // Straight to the app, skipping the gateway.
    let forged = signed_get(&app, ("globex", "globex"), ("new", WRONG_SECRET), None).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.text());
    assert!(
        forged.text().contains("signature mismatch"),
        "{}",
        forged.text()
    );

    let unsigned = app
        .get(
            "acme.test",
            "/notes/",
            &[("X-Tenant-ID", "globex"), ("X-Tenant-Schema", "globex")],
        )
        .await;
    assert_eq!(
        unsigned.status,
        StatusCode::FORBIDDEN,
        "{}",
        unsigned.text()
    );
    assert!(
        unsigned.text().contains("missing signature"),
        "{}",
        unsigned.text()
    );

    // A genuine signature for acme does not carry over to globex's schema.
    let replayed = signed_get(
        &app,
        ("acme", "globex"),
        ("new", NEW_SECRET),
        Some(("acme", "acme")),
    )
    .await;
    assert_eq!(
        replayed.status,
        StatusCode::FORBIDDEN,
        "{}",
        replayed.text()
    );

    let bare = app.get("acme.test", "/notes/", &[]).await;
    assert_eq!(bare.status, StatusCode::BAD_REQUEST, "{}", bare.text());

    // The retired key still verifies while the app lists it.
    let old_key = signed_get(&app, ("globex", "globex"), ("old", OLD_SECRET), None).await;
    assert_eq!(notes(&old_key)["notes"], json!(["globex: only note"]));
}

#[tokio::test]
async fn the_same_site_with_django_tenants_own_host_lookup_serves_the_same_rows() {
    let Some(python) = django::python() else {
        return;
    };
    let site = DjangoSite::create(python).await;
    let app = site.serve("django-tenants", "", 1).await;
    assert_eq!(
        notes(&app.get("acme.test", "/notes/", &[]).await),
        json!({"schema": "acme", "notes": ["acme: first note", "acme: second note"]})
    );
    assert_eq!(
        notes(&app.get("globex.test", "/notes/", &[]).await)["schema"],
        "globex"
    );
}

#[tokio::test]
async fn the_packages_python_unit_tests_pass() {
    let Some(python) = django::python() else {
        return;
    };
    let out = django::run_package_unit_tests(&python).await;
    assert!(out.contains("OK"), "{out}");
}
