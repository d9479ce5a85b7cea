//! Operating tenants through the admin API on a PostgreSQL store: migrating
//! one tenant or all of them as a job (going on past a failing tenant, a
//! re-run resuming), and a retried create answering with the tenant it made.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::pg::{fresh_database, psql};
use common::{Backend, Gateway, GatewayOptions};
use hyper::{Method, StatusCode};
use serde_json::{json, Value};
use tempfile::TempDir;

const INIT: &str = "CREATE TABLE users (id serial PRIMARY KEY, email text NOT NULL UNIQUE);";

struct Fixture {
    gw: Gateway,
    db: String,
    dir: TempDir,
    _backend: Backend,
}

impl Fixture {
    async fn start() -> Fixture {
        let db = fresh_database();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("0001_init.sql"), INIT).unwrap();
        let backend = Backend::start("app").await;
        let options = GatewayOptions::new()
            .backend(&backend)
            .config("provisioning:\n  migrate_parallel: 2\n")
            .store(&db)
            .args(["--migrations", &dir.path().display().to_string()]);
        Fixture {
            gw: Gateway::start(options).await,
            db,
            dir,
            _backend: backend,
        }
    }

    fn migrations(&self) -> &Path {
        self.dir.path()
    }

    fn applied(&self, schema: &str) -> String {
        psql(
            &self.db,
            &format!("SELECT string_agg(name, ',' ORDER BY name) FROM {schema}.gateway_migrations"),
        )
    }

    /// Starts `POST /v1/migrate` and waits for its job to finish.
    async fn migrate_all(&self) -> Value {
        let (status, job) = self.gw.admin(Method::POST, "/v1/migrate", None).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{job}");
        assert_eq!(job["status"], "running", "{job}");
        let path = format!("/v1/jobs/{}", job["id"]);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (status, job) = self.gw.admin(Method::GET, &path, None).await;
            assert_eq!(status, StatusCode::OK, "{job}");
            if job["status"] != "running" {
                return job;
            }
            assert!(Instant::now() < deadline, "job still running: {job}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn result<'a>(job: &'a Value, tenant: &str) -> &'a Value {
    job["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["tenant"] == tenant)
        .unwrap_or_else(|| panic!("no result for {tenant}: {job}"))
}

#[tokio::test]
async fn migrate_all_goes_on_past_a_failing_tenant_and_a_rerun_resumes() {
    let mut f = Fixture::start().await;
    for id in ["alpha", "bravo", "charlie"] {
        f.gw.create_tenant(json!({"id": id, "name": id, "domains": [format!("{id}.test")]}))
            .await;
    }
    f.gw.create_tenant(json!({"id": "kv", "name": "KV", "isolation": "cache"}))
        .await;
    // A new migration, which bravo cannot take: it already has the table.
    std::fs::write(
        f.migrations().join("0002_orders.sql"),
        "CREATE TABLE orders (id serial PRIMARY KEY, user_id int REFERENCES users (id));",
    )
    .unwrap();
    psql(&f.db, "CREATE TABLE bravo.orders (id int)");
    f.gw.restart().await;

    let job = f.migrate_all().await;
    assert_eq!(job["status"], "finished", "{job}");
    assert_eq!(
        job["progress"],
        json!({"total": 4, "done": 4, "failed": 1}),
        "{job}"
    );
    assert_eq!(result(&job, "alpha")["applied"], json!(["0002_orders.sql"]));
    assert_eq!(
        result(&job, "charlie")["applied"],
        json!(["0002_orders.sql"])
    );
    assert_eq!(result(&job, "kv")["applied"], json!([]));
    let error = result(&job, "bravo")["error"].as_str().unwrap();
    assert!(
        error.contains("migration 0002_orders.sql") && error.contains("already exists"),
        "{error}"
    );
    assert_eq!(f.applied("alpha"), "0001_init.sql,0002_orders.sql");
    assert_eq!(f.applied("bravo"), "0001_init.sql", "bravo rolled back");

    // Fixed, a re-run migrates only what is left.
    psql(&f.db, "DROP TABLE bravo.orders");
    let job = f.migrate_all().await;
    assert_eq!(job["progress"]["failed"], 0, "{job}");
    assert_eq!(result(&job, "alpha")["applied"], json!([]));
    assert_eq!(result(&job, "bravo")["applied"], json!(["0002_orders.sql"]));
    assert_eq!(f.applied("bravo"), "0001_init.sql,0002_orders.sql");

    // The list (the console's Jobs page): newest first, failed tenants named.
    let (status, list) = f.gw.admin(Method::GET, "/v1/jobs", None).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let summary = |j: &Value| (j["status"].clone(), j["failed_tenants"].clone());
    let jobs: Vec<_> = list["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(summary)
        .collect();
    assert_eq!(
        jobs,
        [
            (json!("finished"), json!([])),
            (json!("finished"), json!(["bravo"]))
        ],
        "{list}"
    );
    assert!(list["jobs"][0]["id"].as_u64() > list["jobs"][1]["id"].as_u64());
    assert!(list["jobs"][0].get("results").is_none(), "{list}");

    let (status, body) =
        f.gw.admin(Method::POST, "/v1/tenants/charlie/migrate", None)
            .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"tenant": "charlie", "applied": []}));
    let (status, _) =
        f.gw.admin(Method::POST, "/v1/tenants/nobody/migrate", None)
            .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = f.gw.admin(Method::GET, "/v1/jobs/999", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn one_tenant_migration_failure_names_the_step() {
    let mut f = Fixture::start().await;
    f.gw.create_tenant(json!({"id": "acme", "name": "Acme"}))
        .await;
    std::fs::write(
        f.migrations().join("0002_bad.sql"),
        "ALTER TABLE users ADD COLUMN total nosuchtype;",
    )
    .unwrap();
    f.gw.restart().await;
    let (status, body) =
        f.gw.admin(Method::POST, "/v1/tenants/acme/migrate", None)
            .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert_eq!(body["error"]["code"], "provisioning_failed");
    assert_eq!(body["error"]["step"], "migration 0002_bad.sql");
    assert_eq!(f.applied("acme"), "0001_init.sql");
}

#[tokio::test]
async fn a_retried_create_returns_the_existing_tenant() {
    let f = Fixture::start().await;
    let body = json!({"id": "acme", "name": "Acme", "domains": ["acme.test", "www2.acme.test"]});
    let first = f.gw.create_tenant(body.clone()).await;
    let (status, again) = f.gw.admin(Method::POST, "/v1/tenants", Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again, first);

    let (status, other) =
        f.gw.admin(
            Method::POST,
            "/v1/tenants",
            Some(json!({"id": "acme", "name": "Another Acme", "domains": ["acme.test", "www2.acme.test"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{other}");
    assert_eq!(
        other["error"]["message"],
        "Tenant with ID 'acme' already exists"
    );
    let (status, _) =
        f.gw.admin(
            Method::POST,
            "/v1/tenants",
            Some(json!({"id": "acme", "name": "Acme", "domains": ["www2.acme.test", "acme.test"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "another primary domain");
}
