//! The admin API as an operator meets it: bearer-token auth, creating,
//! listing, changing and deleting tenants and their domains, and JSON errors
//! for unknown tenants, paths and methods.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{api_error, eventually, Backend, Gateway, GatewayOptions, TOKEN};
use hyper::{Method, StatusCode};
use serde_json::{json, Value};

#[tokio::test]
async fn admin_routes_need_the_bearer_token_but_health_checks_do_not() {
    let gw = Gateway::start(GatewayOptions::new().with_token()).await;

    let (status, body) = gw.admin_as(None, Method::GET, "/v1/tenants", None).await;
    api_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");

    let wrong = format!("{TOKEN}x");
    for token in [wrong.as_str(), "", "integration-test"] {
        let (status, body) = gw
            .admin_as(Some(token), Method::GET, "/v1/tenants", None)
            .await;
        api_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
    }
    let (status, body) = gw
        .admin_as(
            None,
            Method::POST,
            "/v1/tenants",
            Some(json!({"id": "acme", "name": "Acme"})),
        )
        .await;
    api_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");

    let (status, body) = gw
        .admin_as(Some(TOKEN), Method::GET, "/v1/tenants", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"tenants": [], "next": null}));
    // The scheme is case-insensitive (RFC 9110); the token is not.
    for scheme in ["bearer", "BEARER"] {
        let authorization = format!("{scheme} {TOKEN}");
        let reply = gw
            .admin_authorized(
                Some(&authorization),
                Method::GET,
                "/v1/tenants",
                Bytes::new(),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{scheme}: {}", reply.text());
    }
    let shouted = format!("bearer {}", TOKEN.to_uppercase());
    let reply = gw
        .admin_authorized(Some(&shouted), Method::GET, "/v1/tenants", Bytes::new())
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.text());
    let (status, _) = gw
        .admin_as(
            Some(TOKEN),
            Method::POST,
            "/v1/tenants",
            Some(json!({"id": "acme", "name": "Acme"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);

    // Ready once the routing cache is warm, a moment after start.
    eventually(Duration::from_secs(5), "the gateway is ready", || async {
        gw.admin(Method::GET, "/readyz", None).await.0 == StatusCode::OK
    })
    .await;
    for open in ["/healthz", "/readyz", "/metrics"] {
        let reply = gw.admin_raw(None, Method::GET, open, Bytes::new()).await;
        assert_eq!(reply.status, StatusCode::OK, "{open}: {}", reply.text());
    }
    let (_, health) = gw.admin_as(None, Method::GET, "/healthz", None).await;
    assert_eq!(health["status"], "ok");
}

#[tokio::test]
async fn admin_token_from_the_config_file_is_enforced() {
    let gw =
        Gateway::start(GatewayOptions::new().config(&format!("admin:\n  token: {TOKEN}\n"))).await;

    let (status, _) = gw.admin_as(None, Method::GET, "/v1/tenants", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = gw
        .admin_as(Some(TOKEN), Method::GET, "/v1/tenants", None)
        .await;
    assert_eq!(status, StatusCode::OK);
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
    api_error(status, &body, StatusCode::NOT_FOUND, "not_found");
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
        api_error(status, &body, StatusCode::BAD_REQUEST, "bad_request");
    }
}

#[tokio::test]
async fn domains_are_added_validated_and_removed() {
    let gw = Gateway::with_acme(GatewayOptions::new()).await;

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
        api_error(
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
    api_error(status, &body, StatusCode::NOT_FOUND, "not_found");
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
        (json!({"name": "x".repeat(201)}), "at most 200"),
        (json!({"name": "Acme\u{0}Inc"}), "control characters"),
        (json!({"pool": "nowhere"}), "unknown pool"),
        (json!({"schema": "other"}), "unknown field"),
    ] {
        let (status, reply) = gw
            .admin(Method::PATCH, "/v1/tenants/acme", Some(body.clone()))
            .await;
        let message = api_error(status, &reply, StatusCode::BAD_REQUEST, "bad_request");
        assert!(message.contains(says), "{body}: {message:?}");
    }
    let (status, reply) = gw
        .admin(
            Method::PATCH,
            "/v1/tenants/nobody",
            Some(json!({"status": "active"})),
        )
        .await;
    api_error(status, &reply, StatusCode::NOT_FOUND, "not_found");
    let (status, reply) = gw.admin(Method::DELETE, "/v1/tenants/nobody", None).await;
    api_error(status, &reply, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn unknown_admin_paths_and_methods_get_json_errors() {
    let gw = Gateway::start(GatewayOptions::new()).await;

    let (status, body) = gw.admin(Method::GET, "/v2/nothing", None).await;
    api_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = gw.admin(Method::PUT, "/v1/tenants", None).await;
    api_error(
        status,
        &body,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    );
}

#[tokio::test]
async fn path_parameters_that_are_not_utf8_get_a_json_400() {
    let gw = Gateway::start(GatewayOptions::new()).await;

    for (method, path) in [
        (Method::GET, "/v1/tenants/%ff"),
        (Method::PATCH, "/v1/tenants/%ff"),
        (Method::DELETE, "/v1/tenants/%ff"),
        (Method::POST, "/v1/tenants/%ff/domains"),
        (Method::POST, "/v1/tenants/%ff/migrate"),
        (Method::GET, "/v1/domains/%ff"),
        (Method::DELETE, "/v1/domains/%ff"),
        (Method::GET, "/v1/jobs/%ff"),
    ] {
        let (status, body) = gw
            .admin(method.clone(), path, Some(json!({"name": "x"})))
            .await;
        let message = api_error(status, &body, StatusCode::BAD_REQUEST, "bad_request");
        assert!(message.contains("UTF-8"), "{method} {path}: {message}");
    }
}
