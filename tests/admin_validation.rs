//! What the admin API refuses when creating tenants: duplicates are a 409
//! `conflict`, invalid ids, schema names, domains and bodies a 400
//! `bad_request` whose message names the problem, and nothing is left behind.

mod common;

use bytes::Bytes;
use common::{api_error, Gateway, GatewayOptions};
use hyper::{Method, StatusCode};
use serde_json::{json, Value};

#[tokio::test]
async fn duplicate_tenant_id_schema_or_domain_is_a_409_conflict() {
    let gw = Gateway::with_acme(GatewayOptions::new()).await;

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
        let message = api_error(status, &body, StatusCode::CONFLICT, "conflict");
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
    let message = api_error(status, &body, StatusCode::CONFLICT, "conflict");
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
            json!({"id": "acme", "name": "x".repeat(201)}),
            "name is 201 characters long: at most 200",
        ),
        (
            json!({"id": "acme", "name": "A\u{0}B"}),
            "name must not contain control characters",
        ),
        (
            json!({"id": "acme", "name": "A\nB"}),
            "name must not contain control characters",
        ),
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
        let message = api_error(status, &body, StatusCode::BAD_REQUEST, "bad_request");
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
async fn an_oversized_body_is_a_json_413_naming_the_limit() {
    let gw = Gateway::start(GatewayOptions::new()).await;
    let name = "x".repeat(3 * 1024 * 1024);
    let body = json!({"id": "big", "name": name}).to_string();

    let reply = gw
        .admin_raw(None, Method::POST, "/v1/tenants", Bytes::from(body))
        .await;
    let json: Value = serde_json::from_slice(&reply.body)
        .unwrap_or_else(|e| panic!("a JSON error ({e}): {}", reply.text()));
    let message = api_error(
        reply.status,
        &json,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    );
    assert!(message.contains("2097152 bytes"), "{message}");
}
