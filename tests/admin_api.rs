//! The admin API as an operator meets it: bearer-token auth, tenant and
//! domain management with JSON errors (400 / 404 / 409), `/v1/resolve`
//! explaining the data path's decision, and the open health and metrics
//! endpoints.

mod common;

use bytes::Bytes;
use common::{Backend, Gateway, GatewayOptions, TOKEN};
use hyper::{Method, StatusCode};
use serde_json::{json, Value};

/// Asserts a JSON error `{"error": {"code", "message"}}` and returns the message.
fn error_message(status: StatusCode, body: &Value, expected: StatusCode, code: &str) -> String {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    body["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no error message in {body}"))
        .to_owned()
}

#[tokio::test]
async fn admin_routes_need_the_bearer_token_but_health_checks_do_not() {
    let gw = Gateway::start(GatewayOptions::new().with_token()).await;

    let (status, body) = gw.admin_as(None, Method::GET, "/v1/tenants", None).await;
    error_message(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");

    let wrong = format!("{TOKEN}x");
    for token in [wrong.as_str(), "", "integration-test"] {
        let (status, body) = gw
            .admin_as(Some(token), Method::GET, "/v1/tenants", None)
            .await;
        error_message(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
    }
    let (status, body) = gw
        .admin_as(
            None,
            Method::POST,
            "/v1/tenants",
            Some(json!({"id": "acme", "name": "Acme"})),
        )
        .await;
    error_message(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");

    let (status, body) = gw
        .admin_as(Some(TOKEN), Method::GET, "/v1/tenants", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"tenants": [], "next": null}));
    let (status, _) = gw
        .admin_as(
            Some(TOKEN),
            Method::POST,
            "/v1/tenants",
            Some(json!({"id": "acme", "name": "Acme"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);

    for open in ["/healthz", "/readyz", "/metrics"] {
        let reply = gw.admin_raw(None, Method::GET, open, Bytes::new()).await;
        assert_eq!(reply.status, StatusCode::OK, "{open}: {}", reply.text());
    }
    let (_, health) = gw.admin_as(None, Method::GET, "/healthz", None).await;
    assert_eq!(health["status"], "ok");
}

#[tokio::test]
async fn created_tenant_is_shown_with_defaults_and_its_primary_domain() {
    let gw = Gateway::start(GatewayOptions::new()).await;

    let created = gw
        .create_tenant(json!({
            "id": "acme-corp", "name": "Acme Corp", "domains": ["Acme.test", "acme.example"]
        }))
        .await;
    assert_eq!(created["id"], "acme-corp");
    assert_eq!(created["name"], "Acme Corp");
    assert_eq!(created["schema"], "acme_corp");
    assert_eq!(created["isolation"], "schema");
    assert_eq!(created["status"], "active");
    assert_eq!(created["pool"], Value::Null);
    assert!(
        created["created_at"].as_str().unwrap().ends_with('Z'),
        "{created}"
    );
    assert_eq!(
        created["domains"],
        json!([
            {"domain": "acme.test", "is_primary": true},
            {"domain": "acme.example", "is_primary": false},
        ])
    );

    let (status, shown) = gw.admin(Method::GET, "/v1/tenants/acme-corp", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(shown, created);

    let (status, body) = gw.admin(Method::GET, "/v1/tenants/nobody", None).await;
    error_message(status, &body, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn tenants_are_listed_in_pages_by_id() {
    let gw = Gateway::start(GatewayOptions::new()).await;
    for id in ["delta", "alpha", "charlie", "bravo", "echo"] {
        gw.create_tenant(json!({"id": id, "name": id})).await;
    }

    let mut seen = Vec::new();
    let mut path = "/v1/tenants?limit=2".to_owned();
    loop {
        let (status, page) = gw.admin(Method::GET, &path, None).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        for tenant in page["tenants"].as_array().unwrap() {
            seen.push(tenant["id"].as_str().unwrap().to_owned());
        }
        match page["next"].as_str() {
            Some(next) => path = format!("/v1/tenants?limit=2&after={next}"),
            None => break,
        }
    }
    assert_eq!(seen, ["alpha", "bravo", "charlie", "delta", "echo"]);

    for bad in ["limit=0", "limit=5000", "limit=ten", "colour=red"] {
        let (status, body) = gw
            .admin(Method::GET, &format!("/v1/tenants?{bad}"), None)
            .await;
        error_message(status, &body, StatusCode::BAD_REQUEST, "bad_request");
    }
}

#[tokio::test]
async fn duplicate_tenant_id_schema_or_domain_is_a_409_conflict() {
    let gw = Gateway::start(GatewayOptions::new()).await;
    gw.create_tenant(json!({"id": "acme", "name": "Acme", "domains": ["acme.test"]}))
        .await;

    let duplicates = [
        json!({"id": "acme", "name": "Acme again"}),
        json!({"id": "acme2", "name": "Same schema", "schema": "acme"}),
        json!({"id": "acme3", "name": "Same domain", "domains": ["ACME.test"]}),
        json!({"id": "acme4", "name": "Same domain via www", "domains": ["www.acme.test"]}),
    ];
    for tenant in duplicates {
        let (status, body) = gw
            .admin(Method::POST, "/v1/tenants", Some(tenant.clone()))
            .await;
        let message = error_message(status, &body, StatusCode::CONFLICT, "conflict");
        assert!(message.contains("already exists"), "{tenant}: {message}");
    }

    gw.create_tenant(json!({"id": "globex", "name": "Globex"}))
        .await;
    let (status, body) = gw
        .admin(
            Method::POST,
            "/v1/tenants/globex/domains",
            Some(json!({"domain": "acme.test"})),
        )
        .await;
    let message = error_message(status, &body, StatusCode::CONFLICT, "conflict");
    assert!(message.contains("acme.test"), "{message}");

    // A refused create leaves nothing behind.
    let (_, listed) = gw.admin(Method::GET, "/v1/tenants", None).await;
    assert_eq!(listed["tenants"].as_array().unwrap().len(), 2, "{listed}");
}

#[tokio::test]
async fn tenants_that_do_not_own_a_schema_may_share_one() {
    let gw = Gateway::start(GatewayOptions::new()).await;
    gw.create_tenant(json!({"id": "acme", "name": "Acme"}))
        .await;

    gw.create_tenant(
        json!({"id": "acme-rows", "name": "Rows", "schema": "acme", "isolation": "table"}),
    )
    .await;
}

#[tokio::test]
async fn invalid_ids_schemas_and_domains_are_a_400_naming_the_problem() {
    let gw = Gateway::start(GatewayOptions::new()).await;

    let refused = [
        (
            json!({"id": "acme", "name": "A", "schema": "pg_x"}),
            "reserved",
        ),
        (
            json!({"id": "acme", "name": "A", "schema": "public"}),
            "public",
        ),
        (
            json!({"id": "acme", "name": "A", "schema": "Bad-Name"}),
            "Bad-Name",
        ),
        (
            json!({"id": "acme", "name": "A", "schema": "information_schema"}),
            "reserved",
        ),
        (json!({"id": "Acme", "name": "A"}), "invalid tenant id"),
        (json!({"id": "-acme", "name": "A"}), "invalid tenant id"),
        (json!({"id": "acme", "name": " "}), "name"),
        (
            json!({"id": "acme", "name": "A", "isolation": "row"}),
            "valid options",
        ),
        (
            json!({"id": "acme", "name": "A", "status": "paused"}),
            "valid options",
        ),
        (
            json!({"id": "acme", "name": "A", "pool": "nowhere"}),
            "unknown pool",
        ),
        (
            json!({"id": "acme", "name": "A", "domains": ["bad_domain.test"]}),
            "bad_domain.test",
        ),
        (
            json!({"id": "acme", "name": "A", "domains": ["-x.test"]}),
            "-x.test",
        ),
        (
            json!({"id": "acme", "name": "A", "domains": ["acme.test:8080"]}),
            "acme.test:8080",
        ),
        (
            json!({"id": "acme", "name": "A", "domains": ["*.test"]}),
            "wildcard",
        ),
        (
            json!({"id": "acme", "name": "A", "domains": ["a.test", "A.test"]}),
            "twice",
        ),
        (
            json!({"id": "acme", "name": "A", "colour": "red"}),
            "unknown field",
        ),
        (json!({"id": "acme"}), "name"),
        (json!(["acme"]), "invalid JSON"),
    ];
    for (tenant, says) in refused {
        let (status, body) = gw
            .admin(Method::POST, "/v1/tenants", Some(tenant.clone()))
            .await;
        let message = error_message(status, &body, StatusCode::BAD_REQUEST, "bad_request");
        assert!(
            message.contains(says),
            "{tenant}: {message:?} should mention {says:?}"
        );
    }

    // The public tenant, and only it, may use the public schema.
    gw.create_tenant(json!({"id": "public", "name": "Public", "schema": "public"}))
        .await;
    let (_, listed) = gw.admin(Method::GET, "/v1/tenants", None).await;
    assert_eq!(listed["tenants"].as_array().unwrap().len(), 1, "{listed}");
}

#[tokio::test]
async fn malformed_json_bodies_get_a_json_400() {
    let gw = Gateway::start(GatewayOptions::new()).await;

    for body in [&b"{\"id\": \"acme\", "[..], b"not json", b""] {
        let reply = gw
            .admin_raw(None, Method::POST, "/v1/tenants", Bytes::from_static(body))
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text());
        assert_eq!(reply.header("content-type"), Some("application/json"));
        let json: Value = serde_json::from_slice(&reply.body).expect("a JSON error");
        assert_eq!(json["error"]["code"], "bad_request", "{json}");
    }
}

#[tokio::test]
async fn domains_are_added_validated_and_removed() {
    let gw = Gateway::start(GatewayOptions::new()).await;
    gw.create_tenant(json!({"id": "acme", "name": "Acme", "domains": ["acme.test"]}))
        .await;

    let (status, added) = gw
        .admin(
            Method::POST,
            "/v1/tenants/acme/domains",
            Some(json!({"domain": "Shop.Acme.test.", "primary": true})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{added}");
    assert_eq!(
        added,
        json!({"domain": "shop.acme.test", "tenant_id": "acme", "is_primary": true})
    );
    let (_, shown) = gw.admin(Method::GET, "/v1/tenants/acme", None).await;
    assert_eq!(
        shown["domains"],
        json!([
            {"domain": "shop.acme.test", "is_primary": true},
            {"domain": "acme.test", "is_primary": false},
        ])
    );

    for (path, body, expected, code) in [
        (
            "/v1/tenants/acme/domains",
            json!({"domain": "bad domain"}),
            400,
            "bad_request",
        ),
        (
            "/v1/tenants/acme/domains",
            json!({"domain": "a.test", "extra": 1}),
            400,
            "bad_request",
        ),
        (
            "/v1/tenants/nobody/domains",
            json!({"domain": "x.test"}),
            404,
            "not_found",
        ),
    ] {
        let (status, reply) = gw.admin(Method::POST, path, Some(body)).await;
        error_message(
            status,
            &reply,
            StatusCode::from_u16(expected).unwrap(),
            code,
        );
    }

    // Removing the primary domain promotes the remaining one.
    gw.remove_domain("shop.acme.test").await;
    let (_, shown) = gw.admin(Method::GET, "/v1/tenants/acme", None).await;
    assert_eq!(
        shown["domains"],
        json!([{"domain": "acme.test", "is_primary": true}])
    );

    let (status, body) = gw
        .admin(Method::DELETE, "/v1/domains/shop.acme.test", None)
        .await;
    error_message(status, &body, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn patch_changes_name_status_and_pool_and_refuses_nonsense() {
    let app = Backend::start("app").await;
    let gw = Gateway::start(GatewayOptions::new().backend(&app)).await;
    gw.create_tenant(json!({"id": "acme", "name": "Acme"}))
        .await;

    let (status, patched) = gw
        .admin(
            Method::PATCH,
            "/v1/tenants/acme",
            Some(json!({"name": "Acme Inc", "status": "suspended", "pool": "default"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["name"], "Acme Inc");
    assert_eq!(patched["status"], "suspended");
    assert_eq!(patched["pool"], "default");

    for (body, says) in [
        (json!({}), "nothing to change"),
        (json!({"status": "deleted"}), "valid options"),
        (json!({"name": ""}), "name"),
        (json!({"pool": "nowhere"}), "unknown pool"),
        (json!({"schema": "other"}), "unknown field"),
    ] {
        let (status, reply) = gw
            .admin(Method::PATCH, "/v1/tenants/acme", Some(body.clone()))
            .await;
        let message = error_message(status, &reply, StatusCode::BAD_REQUEST, "bad_request");
        assert!(message.contains(says), "{body}: {message:?}");
    }
    let (status, reply) = gw
        .admin(
            Method::PATCH,
            "/v1/tenants/nobody",
            Some(json!({"status": "active"})),
        )
        .await;
    error_message(status, &reply, StatusCode::NOT_FOUND, "not_found");
    let (status, reply) = gw.admin(Method::DELETE, "/v1/tenants/nobody", None).await;
    error_message(status, &reply, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn resolve_explains_forward_not_found_suspended_and_bad_hosts() {
    let app = Backend::start("app").await;
    let gw = Gateway::start(GatewayOptions::new().backend(&app).with_token()).await;
    gw.create_tenant(json!({
        "id": "acme", "name": "Acme", "isolation": "database", "domains": ["*.acme.test"]
    }))
    .await;
    gw.create_tenant(json!({
        "id": "frozen", "name": "Frozen", "status": "suspended", "domains": ["frozen.test"]
    }))
    .await;

    let (status, forward) = gw
        .admin(
            Method::GET,
            "/v1/resolve?host=WWW.Shop.Acme.test:8443",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{forward}");
    assert_eq!(forward["action"], "forward");
    assert_eq!(forward["status"], 200);
    assert_eq!(forward["normalized"], "shop.acme.test");
    assert_eq!(forward["matched_domain"], "*.acme.test");
    assert_eq!(forward["tenant"]["id"], "acme");
    assert_eq!(forward["pool"], "default");
    assert_eq!(forward["backends"], json!([app.url]));
    assert_eq!(
        forward["headers"],
        json!({"x-tenant-id": "acme", "x-tenant-schema": "acme", "x-tenant-database": "acme"})
    );

    let (_, unknown) = gw
        .admin(Method::GET, "/v1/resolve?host=nobody.test", None)
        .await;
    assert_eq!(unknown["action"], "not_found");
    assert_eq!(unknown["status"], 404);
    assert_eq!(unknown["tenant"], Value::Null);

    let (_, suspended) = gw
        .admin(Method::GET, "/v1/resolve?host=frozen.test", None)
        .await;
    assert_eq!(suspended["action"], "suspended");
    assert_eq!(suspended["status"], 403);
    assert_eq!(suspended["tenant"]["id"], "frozen");

    let (_, bad) = gw.admin(Method::GET, "/v1/resolve?host=a..b", None).await;
    assert_eq!(bad["action"], "bad_request");
    assert_eq!(bad["status"], 400);
    assert!(
        bad["reason"].as_str().unwrap().contains("empty label"),
        "{bad}"
    );

    let (status, body) = gw.admin(Method::GET, "/v1/resolve", None).await;
    error_message(status, &body, StatusCode::BAD_REQUEST, "bad_request");
    let (status, body) = gw
        .admin_as(None, Method::GET, "/v1/resolve?host=acme.test", None)
        .await;
    error_message(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
}

#[tokio::test]
async fn request_counters_in_metrics_increase_by_outcome() {
    let app = Backend::start("app").await;
    let gw = Gateway::start(GatewayOptions::new().backend(&app)).await;
    gw.create_tenant(json!({"id": "acme", "name": "Acme", "domains": ["acme.test"]}))
        .await;
    let routed = r#"tenant_gateway_requests_total{class="2xx",outcome="routed"}"#;
    let unknown = r#"tenant_gateway_requests_total{class="4xx",outcome="unknown_host"}"#;
    assert_eq!(gw.metric(routed).await, 0.0);
    assert_eq!(gw.metric(unknown).await, 0.0);

    for _ in 0..3 {
        assert_eq!(gw.get("acme.test", "/").await.status, StatusCode::OK);
    }
    assert_eq!(
        gw.get("nobody.test", "/").await.status,
        StatusCode::NOT_FOUND
    );

    assert_eq!(gw.metric(routed).await, 3.0);
    assert_eq!(gw.metric(unknown).await, 1.0);
    assert_eq!(gw.metric("tenant_gateway_in_flight_requests").await, 0.0);
    assert_eq!(
        gw.metric("tenant_gateway_request_duration_seconds_count")
            .await,
        4.0
    );
}

#[tokio::test]
async fn unknown_admin_paths_and_methods_get_json_errors() {
    let gw = Gateway::start(GatewayOptions::new()).await;

    let (status, body) = gw.admin(Method::GET, "/v2/nothing", None).await;
    error_message(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = gw.admin(Method::PUT, "/v1/tenants", None).await;
    error_message(
        status,
        &body,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    );
}

#[tokio::test]
async fn per_tenant_request_counters_are_opt_in() {
    let app = Backend::start("app").await;
    let gw = Gateway::start(
        GatewayOptions::new()
            .backend(&app)
            .config("metrics:\n  per_tenant: true\n"),
    )
    .await;
    gw.create_tenant(json!({"id": "acme", "name": "Acme", "domains": ["acme.test"]}))
        .await;
    gw.create_tenant(json!({"id": "globex", "name": "Globex", "domains": ["globex.test"]}))
        .await;

    for host in ["acme.test", "acme.test", "globex.test"] {
        assert_eq!(gw.get(host, "/").await.status, StatusCode::OK);
    }

    let acme = r#"tenant_gateway_tenant_requests_total{tenant="acme"}"#;
    let globex = r#"tenant_gateway_tenant_requests_total{tenant="globex"}"#;
    assert_eq!(gw.metric(acme).await, 2.0);
    assert_eq!(gw.metric(globex).await, 1.0);
}
