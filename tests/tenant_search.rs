//! Searching tenants through the admin API (`GET /v1/tenants?search=`) on
//! every store: the embedded file, PostgreSQL's own tables and a
//! django-tenants deployment's. Given the same tenants, a search finds them
//! by id, name, schema or any of their domains, case-insensitively, with `%`
//! and `_` taken literally, and pages by id like the plain list.

mod common;

use common::pg::{fresh_database, psql, DJANGO_TABLES};
use common::{api_error, Gateway, GatewayOptions};
use hyper::{Method, StatusCode};
use serde_json::{json, Value};

/// The tenant ids a search answers in one page (and the page).
async fn search(gw: &Gateway, query: &str) -> (Vec<String>, Value) {
    let (status, page) = gw
        .admin(Method::GET, &format!("/v1/tenants?{query}"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{query}: {page}");
    let ids = page["tenants"]
        .as_array()
        .unwrap_or_else(|| panic!("{query}: no tenants in {page}"))
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect();
    (ids, page)
}

async fn ids(gw: &Gateway, text: &str) -> Vec<String> {
    search(gw, &format!("search={}", encode(text))).await.0
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The same tenants through the API: acme (two domains, schema `acmeprod`),
/// globex, a_b, axb, sale (named "50% Off") and zulu (no `a` anywhere).
async fn create_tenants(gw: &Gateway) {
    for tenant in [
        json!({"id": "acme", "name": "Acme Corp", "schema": "acmeprod", "domains": ["acme.test", "shop.acme.test"]}),
        json!({"id": "globex", "name": "Globex", "domains": ["globex.example"]}),
        json!({"id": "a_b", "name": "A and B"}),
        json!({"id": "axb", "name": "Axb"}),
        json!({"id": "sale", "name": "50% Off", "domains": ["sale.test"]}),
        json!({"id": "zulu", "name": "Zulu"}),
    ] {
        gw.create_tenant(tenant).await;
    }
}

/// Given those tenants: what each search finds, its paging, and its limits.
async fn searches_find_tenants_by_every_field(gw: &Gateway, schema_apart: bool) {
    assert_eq!(ids(gw, "ACME").await, ["acme"]);
    assert_eq!(ids(gw, "corp").await, ["acme"], "by name");
    assert_eq!(ids(gw, "shop.acme").await, ["acme"], "by a second domain");
    assert_eq!(ids(gw, "GLOBEX.EX").await, ["globex"], "by domain");
    if schema_apart {
        assert_eq!(ids(gw, "prod").await, ["acme"], "by schema");
    }
    assert_eq!(ids(gw, "_").await, ["a_b"], "_ is not a wildcard");
    assert_eq!(ids(gw, "a_b").await, ["a_b"]);
    assert_eq!(ids(gw, "%").await, ["sale"], "% is not a wildcard");
    assert!(ids(gw, "umbrella").await.is_empty());

    // Each tenant comes whole, in the list's shape.
    let (_, page) = search(gw, "search=shop.acme").await;
    assert_eq!(page["next"], Value::Null, "{page}");
    assert_eq!(page["tenants"][0]["name"], "Acme Corp", "{page}");
    assert_eq!(
        page["tenants"][0]["domains"],
        json!([{"domain": "acme.test", "is_primary": true}, {"domain": "shop.acme.test", "is_primary": false}])
    );

    // Paged one at a time with `next`, the same tenants in the same order.
    let (all, _) = search(gw, "search=a&limit=100").await;
    assert!(all.len() >= 4, "{all:?}");
    let mut paged = Vec::new();
    let mut query = "search=a&limit=1".to_owned();
    loop {
        let (ids, page) = search(gw, &query).await;
        paged.extend(ids);
        match page["next"].as_str() {
            Some(next) => query = format!("search=a&limit=1&after={}", encode(next)),
            None => break,
        }
    }
    assert_eq!(paged, all);

    // An empty search is no search; a long one is refused.
    let (everyone, _) = search(gw, "limit=100").await;
    assert_eq!(search(gw, "search=&limit=100").await.0, everyone);
    assert!(everyone.len() > all.len(), "{everyone:?}");
    assert!(ids(gw, &"x".repeat(200)).await.is_empty());
    let (status, body) = gw
        .admin(
            Method::GET,
            &format!("/v1/tenants?search={}", "x".repeat(201)),
            None,
        )
        .await;
    let message = api_error(status, &body, StatusCode::BAD_REQUEST, "bad_request");
    assert!(message.contains("200"), "{message}");
    // Control characters (PostgreSQL refuses a NUL in text) are a 400, never a 500.
    for (search, says) in [("a%00b", "NUL"), ("a%01b", "control")] {
        let path = format!("/v1/tenants?search={search}");
        let (status, body) = gw.admin(Method::GET, &path, None).await;
        let message = api_error(status, &body, StatusCode::BAD_REQUEST, "bad_request");
        assert!(message.contains(says), "{search}: {message}");
    }
}

#[tokio::test]
async fn the_embedded_store_searches_tenants_by_id_name_schema_and_domain() {
    let gw = Gateway::start(GatewayOptions::new()).await;
    create_tenants(&gw).await;
    searches_find_tenants_by_every_field(&gw, true).await;
}

#[tokio::test]
async fn postgresql_searches_tenants_by_id_name_schema_and_domain() {
    let db = fresh_database();
    let gw = Gateway::start(GatewayOptions::new().store(&db)).await;
    create_tenants(&gw).await;
    searches_find_tenants_by_every_field(&gw, true).await;
}

#[tokio::test]
async fn a_django_tenants_database_is_searched_in_its_own_tables() {
    let db = fresh_database();
    psql(&db, DJANGO_TABLES);
    // Its tenants as Django wrote them (the id is the schema name).
    psql(
        &db,
        "INSERT INTO customers_client (schema_name, name) VALUES
             ('globex', 'Globex'), ('a_b', 'A and B'), ('axb', 'Axb'), ('sale', '50% Off'), ('zulu', 'Zulu');
         INSERT INTO customers_domain (domain, is_primary, tenant_id)
             SELECT schema_name || CASE schema_name WHEN 'globex' THEN '.example' ELSE '.test' END,
                    true, id FROM customers_client WHERE schema_name IN ('globex', 'sale');",
    );
    let config = "store:\n  django:\n    name_column: name\n";
    let options = GatewayOptions::new()
        .config(config)
        .store(&db)
        .django_layout();
    let gw = Gateway::start(options).await;
    searches_find_tenants_by_every_field(&gw, false).await;
}
