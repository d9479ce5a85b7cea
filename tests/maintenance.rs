//! A tenant's own traffic controls through the admin API and the CLI:
//! maintenance answered with a 503 page and `Retry-After`, or held and
//! released when it ends; limits set, cleared and refused by field; both
//! kept by the embedded store, PostgreSQL and the django-tenants layout,
//! and gone with their tenant.

mod common;

use std::time::{Duration, Instant};

use common::pg::{fresh_database, psql};
use common::{api_error, run_command, Backend, Gateway, GatewayOptions};
use hyper::{Method, StatusCode};
use serde_json::{json, Value};

async fn switch(gw: &Gateway, id: &str, body: Value) -> (StatusCode, Value) {
    gw.admin(
        Method::POST,
        &format!("/v1/tenants/{id}/maintenance"),
        Some(body),
    )
    .await
}

async fn show(gw: &Gateway, id: &str) -> Value {
    let (status, body) = gw
        .admin(Method::GET, &format!("/v1/tenants/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

#[tokio::test]
async fn maintenance_without_hold_answers_503_with_retry_after_and_a_page() {
    let backend = Backend::start("app").await;
    let gw = Gateway::with_acme(GatewayOptions::new().backend(&backend)).await;
    gw.create_tenant(json!({"id": "globex", "name": "Globex", "domains": ["globex.test"]}))
        .await;

    let (status, body) = switch(&gw, "acme", json!({"enabled": true})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["maintenance"]["since"]
        .as_str()
        .unwrap()
        .ends_with('Z'));
    let reply = gw.get("acme.test", "/").await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.header("retry-after"), Some("5"));
    assert!(reply
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    assert!(reply.text().contains("maintenance"), "{}", reply.text());
    assert_eq!(gw.get("globex.test", "/").await.status, StatusCode::OK);
    assert_eq!(
        gw.metric("tenant_gateway_requests_total{class=\"5xx\",outcome=\"maintenance\"}")
            .await,
        1.0
    );

    let (status, body) = switch(&gw, "acme", json!({"enabled": false})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.get("maintenance").is_none(), "{body}");
    assert_eq!(gw.get("acme.test", "/").await.status, StatusCode::OK);

    let (status, body) = switch(&gw, "nobody", json!({"enabled": true})).await;
    api_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = switch(&gw, "acme", json!({"enabled": false, "hold": "5s"})).await;
    let message = api_error(status, &body, StatusCode::BAD_REQUEST, "bad_request");
    assert!(message.starts_with("hold"), "{message}");
    let (status, body) = switch(&gw, "acme", json!({"enabled": true, "hold": "soon"})).await;
    api_error(status, &body, StatusCode::BAD_REQUEST, "bad_request");
    let (status, body) = switch(&gw, "acme", json!({"enabled": true, "hold": "2h"})).await;
    api_error(status, &body, StatusCode::BAD_REQUEST, "bad_request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_requests_go_through_when_maintenance_ends_and_503_when_the_hold_runs_out() {
    let backend = Backend::start("app").await;
    let gw = Gateway::with_acme(GatewayOptions::new().backend(&backend)).await;

    let (status, body) = switch(&gw, "acme", json!({"enabled": true, "hold": "300ms"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["maintenance"]["hold"], "300ms");
    let started = Instant::now();
    let reply = gw.get("acme.test", "/").await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.header("retry-after"), Some("5"));
    assert!(started.elapsed() >= Duration::from_millis(300));

    switch(&gw, "acme", json!({"enabled": true, "hold": "10s"})).await;
    let held = futures_util::future::join_all((0..4).map(|_| async {
        let call = gw.request(Method::GET, "acme.test", "/").new_connection();
        let reply = call.send().await;
        (reply.status, Instant::now())
    }));
    let release = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let held = gw.metric("tenant_gateway_maintenance_held_requests").await;
        assert_eq!(held, 4.0, "all four are held");
        let ended = Instant::now();
        switch(&gw, "acme", json!({"enabled": false})).await;
        ended
    };
    let (held, ended) = tokio::join!(held, release);
    for (status, answered) in held {
        assert_eq!(status, StatusCode::OK);
        assert!(answered >= ended, "answered before maintenance ended");
        assert!(answered < ended + Duration::from_secs(2), "held too long");
    }
    let held = gw.metric("tenant_gateway_maintenance_held_requests").await;
    assert_eq!(held, 0.0);
}

#[tokio::test]
async fn limits_are_set_cleared_and_refused_by_field_on_the_embedded_store() {
    let mut gw = Gateway::with_acme(GatewayOptions::new()).await;
    let (status, body) = gw
        .patch_tenant("acme", json!({"limits": {"rate": "50/s", "burst": 80}}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["limits"], json!({"rate": "50/s", "burst": 80}));
    switch(&gw, "acme", json!({"enabled": true, "hold": "10s"})).await;

    gw.restart().await;
    let kept = show(&gw, "acme").await;
    assert_eq!(kept["limits"], json!({"rate": "50/s", "burst": 80}));
    assert_eq!(kept["maintenance"]["hold"], "10s");

    for (bad, field) in [
        (json!({"rate": "fast"}), "limits.rate"),
        (json!({"rate": "5/s", "bursts": 1}), "limits"),
        (json!({"concurrency": 0}), "limits"),
    ] {
        let (status, body) = gw.patch_tenant("acme", json!({ "limits": bad })).await;
        let message = api_error(status, &body, StatusCode::BAD_REQUEST, "bad_request");
        assert!(message.starts_with(field), "{message}");
    }
    let (status, body) = gw.patch_tenant("acme", json!({"limits": null})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.get("limits").is_none(), "{body}");
    assert!(body.get("maintenance").is_some(), "the other control stays");
}

#[tokio::test]
async fn controls_are_kept_by_postgresql_in_both_layouts_and_go_with_their_tenant() {
    let db = fresh_database();
    let gw = Gateway::start(GatewayOptions::new().store(&db)).await;
    gw.create_tenant(
        json!({"id": "acme", "name": "Acme", "domains": ["acme.test"], "provision": false}),
    )
    .await;
    let limits = json!({"rate": "600/m", "concurrency": 4});
    let (status, body) = gw.patch_tenant("acme", json!({ "limits": limits })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    switch(&gw, "acme", json!({"enabled": true})).await;
    let listed = gw.admin(Method::GET, "/v1/tenants", None).await.1;
    assert_eq!(listed["tenants"][0]["limits"], limits);
    assert!(listed["tenants"][0]["maintenance"].is_object());

    let (status, _) = gw.admin(Method::DELETE, "/v1/tenants/acme", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let rows = psql(&db, "SELECT count(*) FROM gateway_tenant_controls");
    assert_eq!(rows, "0");
    gw.create_tenant(
        json!({"id": "acme", "name": "Acme", "domains": ["acme.test"], "provision": false}),
    )
    .await;
    let again = show(&gw, "acme").await;
    assert!(again.get("limits").is_none() && again.get("maintenance").is_none());

    // django-tenants: Django's tables stay as they are; the controls live beside.
    let db = fresh_database();
    psql(
        &db,
        r#"CREATE TABLE customers_client (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, schema_name varchar(63) NOT NULL UNIQUE);
           CREATE TABLE customers_domain (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, domain varchar(253) NOT NULL UNIQUE, is_primary boolean NOT NULL, tenant_id bigint NOT NULL REFERENCES customers_client (id));
           INSERT INTO customers_client (schema_name) VALUES ('acme');
           INSERT INTO customers_domain (domain, is_primary, tenant_id) VALUES ('acme.test', true, 1);"#,
    );
    let backend = Backend::start("django").await;
    let gw = Gateway::start(
        GatewayOptions::new()
            .backend(&backend)
            .store(&db)
            .django_layout(),
    )
    .await;
    let (status, body) = gw
        .patch_tenant("acme", json!({"limits": {"rate": "20/s"}}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    switch(&gw, "acme", json!({"enabled": true})).await;
    assert_eq!(show(&gw, "acme").await["limits"]["rate"], "20/s");
    let reply = gw.get("acme.test", "/").await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    let columns = psql(
        &db,
        "SELECT count(*) FROM information_schema.columns WHERE table_name = 'customers_client'",
    );
    assert_eq!(columns, "2", "no column added to Django's table");
}

#[tokio::test]
async fn the_command_line_sets_limits_and_maintenance_on_the_store_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gw.db").display().to_string();
    let run = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--data", &file]);
        let all: Vec<String> = all.iter().map(|a| a.to_string()).collect();
        async move {
            let args: Vec<&str> = all.iter().map(String::as_str).collect();
            run_command(&args, "", &[]).await
        }
    };
    let out = run(&["tenants", "create", "--id", "acme", "--domain", "acme.test"]).await;
    assert!(out.status.success(), "{}", out.stderr);
    let out = run(&[
        "tenants", "limit", "acme", "--rate", "50/s", "--burst", "10",
    ])
    .await;
    assert!(out.stdout.contains(r#""rate":"50/s""#), "{}", out.stderr);
    let out = run(&["tenants", "maintenance", "acme", "on", "--hold", "10s"]).await;
    assert!(out.stdout.contains("wait up to 10s"), "{}", out.stderr);
    let out = run(&["tenants", "show", "acme"]).await;
    let shown: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(shown["limits"], json!({"rate": "50/s", "burst": 10}));
    assert_eq!(shown["maintenance"]["hold"], "10s");

    let out = run(&["tenants", "limit", "acme", "--rate", "fast"]).await;
    assert!(!out.status.success() && out.stderr.contains("invalid rate 'fast'"));
    let out = run(&["tenants", "maintenance", "acme", "off", "--hold", "1s"]).await;
    assert!(!out.status.success() && out.stderr.contains("--hold"));
    let out = run(&["tenants", "limit", "acme", "--clear"]).await;
    assert!(out.status.success(), "{}", out.stderr);
    let out = run(&["tenants", "maintenance", "acme", "off"]).await;
    assert!(out.stdout.contains("out of maintenance"), "{}", out.stderr);
    let out = run(&["tenants", "show", "acme"]).await;
    let shown: Value = serde_json::from_str(&out.stdout).unwrap();
    assert!(shown.get("limits").is_none() && shown.get("maintenance").is_none());
}
