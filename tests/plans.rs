//! Pool assignment by plan: a tenant uses its own pool, else its plan's pool
//! (`plans:`), else `default`. The plan comes from the admin API, bulk
//! import, static config or the CLI; changing `plans:` and reloading moves
//! tenants without a restart; bad plans are refused with the key or field.

mod common;

use std::time::Duration;

use common::pg::fresh_database;
use common::{api_error, eventually, run_command, Backend, Gateway, GatewayOptions};
use hyper::{Method, StatusCode};
use serde_json::json;

/// Three pools (one backend each, named after the pool) and `plans`.
fn plans_config(shared: &Backend, dedicated: &Backend, gold: &Backend, plans: &str) -> String {
    format!(
        "pools:\n  default: {{backends: [{}]}}\n  dedicated: {{backends: [{}]}}\n  gold: {{backends: [{}]}}\n\
         plans: {plans}\n",
        shared.yaml(),
        dedicated.yaml(),
        gold.yaml()
    )
}

struct Pools {
    shared: Backend,
    dedicated: Backend,
    gold: Backend,
}

impl Pools {
    async fn start() -> Pools {
        Pools {
            shared: Backend::start("shared").await,
            dedicated: Backend::start("dedicated").await,
            gold: Backend::start("gold").await,
        }
    }

    fn config(&self, plans: &str) -> String {
        plans_config(&self.shared, &self.dedicated, &self.gold, plans)
    }
}

/// The backend that answers `host` (on a pooled and on a new connection).
async fn backend_of(gw: &Gateway, host: &str) -> String {
    gw.answers_everywhere(host)
        .await
        .seen()
        .backend()
        .to_owned()
}

#[tokio::test]
async fn a_tenant_uses_its_pool_else_its_plans_pool_else_default() {
    let pools = Pools::start().await;
    let gw =
        Gateway::start(GatewayOptions::new().config(&pools.config("{premium: dedicated}"))).await;
    let premium = gw
        .create_tenant(
            json!({"id": "big", "name": "Big", "plan": "premium", "domains": ["big.test"]}),
        )
        .await;
    assert_eq!(premium["plan"], "premium");
    gw.create_tenant(json!({"id": "small", "name": "Small", "domains": ["small.test"]}))
        .await;
    gw.create_tenant(
        json!({"id": "unmapped", "name": "U", "plan": "basic", "domains": ["unmapped.test"]}),
    )
    .await;
    gw.create_tenant(json!({"id": "vip", "name": "V", "plan": "premium", "pool": "gold", "domains": ["vip.test"]}))
        .await;

    assert_eq!(backend_of(&gw, "big.test").await, "dedicated");
    assert_eq!(backend_of(&gw, "small.test").await, "shared");
    assert_eq!(
        backend_of(&gw, "unmapped.test").await,
        "shared",
        "a plan without a pool"
    );
    assert_eq!(
        backend_of(&gw, "vip.test").await,
        "gold",
        "an explicit pool beats the plan"
    );

    let (status, shown) = gw.admin(Method::GET, "/v1/tenants/big", None).await;
    assert_eq!(
        (status, &shown["plan"]),
        (StatusCode::OK, &json!("premium"))
    );
    let (_, explained) = gw
        .admin(Method::GET, "/v1/resolve?host=big.test", None)
        .await;
    assert_eq!(explained["pool"], "dedicated");

    // PATCH moves a tenant between plans at once; null removes the plan.
    let (status, body) = gw.patch_tenant("small", json!({"plan": "premium"})).await;
    assert_eq!(
        (status, &body["plan"]),
        (StatusCode::OK, &json!("premium")),
        "{body}"
    );
    assert_eq!(backend_of(&gw, "small.test").await, "dedicated");
    let (status, body) = gw.patch_tenant("small", json!({"plan": null})).await;
    assert_eq!(
        (status, &body["plan"]),
        (StatusCode::OK, &json!(null)),
        "{body}"
    );
    assert_eq!(backend_of(&gw, "small.test").await, "shared");
}

#[tokio::test]
async fn a_reload_that_changes_the_plans_map_moves_the_tenant() {
    let pools = Pools::start().await;
    let mut gw =
        Gateway::start(GatewayOptions::new().config(&pools.config("{premium: dedicated}"))).await;
    gw.create_tenant(
        json!({"id": "big", "name": "Big", "plan": "premium", "domains": ["big.test"]}),
    )
    .await;
    assert_eq!(backend_of(&gw, "big.test").await, "dedicated");

    gw.rewrite_config(&pools.config("{premium: gold}"));
    let (status, body) = gw.reload().await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(backend_of(&gw, "big.test").await, "gold");

    gw.rewrite_config(&pools.config("{}"));
    gw.sighup();
    eventually(
        Duration::from_secs(5),
        "SIGHUP moves the tenant to default",
        || async { gw.get("big.test", "/").await.seen().backend() == "shared" },
    )
    .await;
    assert_eq!(backend_of(&gw, "big.test").await, "shared");

    // A plans map naming a missing pool is refused and changes nothing.
    gw.rewrite_config(&pools.config("{premium: nowhere}"));
    let (status, body) = gw.reload().await;
    let message = api_error(status, &body, StatusCode::BAD_REQUEST, "bad_request");
    assert!(message.contains("plans.premium"), "{message}");
    assert_eq!(backend_of(&gw, "big.test").await, "shared");
}

#[tokio::test]
async fn bad_plans_config_names_the_key() {
    let done = run_command(
        &["check-config", "--config", "{config}"],
        "pools:\n  default: {backends: [\"http://127.0.0.1:8000\"]}\n\
         plans: {premium: nowhere, \"Gold Plan\": default}\n\
         tenants:\n  - {id: acme, plan: \"Not A Plan\"}\n",
        &[],
    )
    .await;
    assert_eq!(done.status.code(), Some(1), "{}", done.stdout);
    for key in ["plans.premium", "plans.Gold Plan", "tenants[0].plan"] {
        assert!(
            done.stderr.contains(&format!("config key `{key}`")),
            "{key} not named:\n{}",
            done.stderr
        );
    }
    assert!(
        done.stderr.contains("no pool named 'nowhere'"),
        "{}",
        done.stderr
    );
}

#[tokio::test]
async fn a_bad_plan_in_the_api_is_a_400_json_error() {
    let app = Backend::start("app").await;
    let gw = Gateway::start(GatewayOptions::new().backend(&app)).await;
    let (status, body) = gw
        .admin(
            Method::POST,
            "/v1/tenants",
            Some(json!({"id": "acme", "name": "Acme", "plan": "Premium Plus"})),
        )
        .await;
    let message = api_error(status, &body, StatusCode::BAD_REQUEST, "bad_request");
    assert!(message.contains("invalid plan 'Premium Plus'"), "{message}");

    gw.create_tenant(json!({"id": "acme", "name": "Acme"}))
        .await;
    let (status, body) = gw
        .patch_tenant("acme", json!({"plan": "x".repeat(64)}))
        .await;
    api_error(status, &body, StatusCode::BAD_REQUEST, "bad_request");
    let (status, body) = gw.patch_tenant("acme", json!({"plan": 7})).await;
    api_error(status, &body, StatusCode::BAD_REQUEST, "bad_request");
}

#[tokio::test]
async fn plans_come_from_import_and_static_tenants() {
    let pools = Pools::start().await;
    let config = format!(
        "{}tenants:\n  - {{id: fixed, plan: premium, domains: [fixed.test]}}\n",
        pools.config("{premium: dedicated}")
    );
    let gw = Gateway::start(GatewayOptions::new().config(&config)).await;
    assert_eq!(backend_of(&gw, "fixed.test").await, "dedicated");

    let csv = "id,domain,plan\ncsv1,csv1.test,premium\ncsv2,csv2.test,\ncsv3,csv3.test,Bad Plan\n";
    let reply = gw
        .admin_raw(None, Method::POST, "/v1/tenants/import", csv.into())
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let report: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(
        (&report["imported"], &report["failed"]),
        (&json!(2), &json!(1)),
        "{report}"
    );
    assert_eq!(report["errors"][0]["line"], 4, "{report}");
    assert_eq!(backend_of(&gw, "csv1.test").await, "dedicated");
    assert_eq!(backend_of(&gw, "csv2.test").await, "shared");

    let ndjson = "{\"id\": \"nd\", \"plan\": \"premium\", \"domains\": [\"nd.test\"]}\n";
    let reply = gw
        .admin_raw(None, Method::POST, "/v1/tenants/import", ndjson.into())
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(backend_of(&gw, "nd.test").await, "dedicated");
}

#[tokio::test]
async fn the_cli_creates_a_tenant_with_a_plan_in_postgres() {
    let db = fresh_database();
    let create = [
        "tenants", "create", "--id", "acme", "--plan", "premium", "--store", &db,
    ];
    let done = run_command(&create, "", &[]).await;
    assert!(done.status.success(), "{}{}", done.stdout, done.stderr);
    let done = run_command(&["tenants", "show", "acme", "--store", &db], "", &[]).await;
    assert!(done.status.success(), "{}", done.stderr);
    let shown: serde_json::Value = serde_json::from_str(&done.stdout).unwrap();
    assert_eq!(shown["plan"], "premium", "{shown}");

    let bad = [
        "tenants", "create", "--id", "b", "--plan", "No Way", "--store", &db,
    ];
    let done = run_command(&bad, "", &[]).await;
    assert!(!done.status.success());
    assert!(
        done.stderr.contains("invalid plan 'No Way'"),
        "{}",
        done.stderr
    );
}
