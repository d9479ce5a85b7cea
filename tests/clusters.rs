//! Named PostgreSQL clusters against two real servers: the test binary's
//! server holds the registry (and the cluster `eu1`, in the registry's own
//! database), a second throwaway server is the cluster `eu2`. A tenant gets
//! its schema or database on its cluster and nowhere else, is routed with
//! `X-Tenant-Cluster`, and a failure on either side leaves nothing behind.
//! Placement picks the emptier cluster, counting creates still in flight.
//! A registry COMMIT whose answer is lost is checked, not assumed to fail.

mod common;

use std::sync::OnceLock;

use common::commit_cutter::CommitCutter;
use common::pg::{database_of, fresh_database, private_server, psql, server, TestPostgres};
use common::{run_command, Backend, Gateway, GatewayOptions, ProvisioningFiles};
use hyper::{Method, StatusCode};
use serde_json::{json, Value};

const MIGRATIONS: &[(&str, &str)] = &[
    (
        "0001_init.sql",
        "CREATE TABLE pages (id serial PRIMARY KEY, title text NOT NULL);",
    ),
    (
        "0002_orders.sql",
        "CREATE TABLE orders (id serial PRIMARY KEY, total int);",
    ),
];

const CONTENT: &str = "INSERT INTO {schema}.pages (title) VALUES ('Welcome to {tenant_name}');";

/// The second server (cluster `eu2`), shared by this binary's tests.
fn second_server() -> &'static TestPostgres {
    static SECOND: OnceLock<TestPostgres> = OnceLock::new();
    SECOND.get_or_init(private_server)
}

struct Fixture {
    gw: Gateway,
    /// The registry's database (also cluster `eu1`).
    registry: String,
    /// Cluster `eu2`'s database on the second server.
    eu2: String,
    _backend: Backend,
    _files: ProvisioningFiles,
}

async fn start(migrations: &[(&str, &str)]) -> Fixture {
    start_with(migrations, None).await
}

/// Like `start`, with the gateway reaching the registry (and `eu1`) through
/// `cutter` when given.
async fn start_with(migrations: &[(&str, &str)], cutter: Option<&CommitCutter>) -> Fixture {
    let registry = fresh_database();
    let gateway_registry = cutter.map_or_else(|| registry.clone(), |c| c.url(&registry));
    let eu2 = second_server().fresh_database();
    let files = ProvisioningFiles::new(migrations, Some(CONTENT));
    let backend = Backend::start("app").await;
    let yaml = format!(
        "provisioning:\n  clusters:\n    eu1: {{url: \"{gateway_registry}\"}}\n    eu2: {{url: \"{eu2}\"}}\n"
    );
    let options = GatewayOptions::new()
        .backend(&backend)
        .config(&yaml)
        .store(&gateway_registry)
        .provisioning(&files);
    Fixture {
        gw: Gateway::start(options).await,
        registry,
        eu2,
        _backend: backend,
        _files: files,
    }
}

impl Fixture {
    fn registry_sql(&self, sql: &str) -> String {
        psql(&self.registry, sql)
    }

    fn eu2_sql(&self, sql: &str) -> String {
        second_server().psql(database_of(&self.eu2), sql)
    }

    fn schema_count(&self, schema: &str) -> (String, String) {
        let sql = format!("SELECT count(*) FROM pg_namespace WHERE nspname = '{schema}'");
        (self.registry_sql(&sql), self.eu2_sql(&sql))
    }

    fn database_count(&self, name: &str) -> (String, String) {
        let sql = format!("SELECT count(*) FROM pg_database WHERE datname = '{name}'");
        (self.registry_sql(&sql), self.eu2_sql(&sql))
    }

    async fn create(&self, body: Value) -> (StatusCode, Value) {
        self.gw.admin(Method::POST, "/v1/tenants", Some(body)).await
    }
}

#[tokio::test]
async fn a_tenant_placed_on_the_second_cluster_lives_there_only() {
    let f = start(MIGRATIONS).await;
    let body =
        f.gw.create_tenant(
            json!({"id": "acme", "name": "Acme", "cluster": "eu2", "domains": ["acme.test"]}),
        )
        .await;
    assert_eq!(body["cluster"], "eu2", "{body}");
    assert_eq!(f.schema_count("acme"), ("0".into(), "1".into()));
    assert_eq!(f.eu2_sql("SELECT title FROM acme.pages"), "Welcome to Acme");
    assert_eq!(
        f.registry_sql("SELECT cluster FROM gateway_tenants WHERE id = 'acme'"),
        "eu2"
    );

    let seen =
        f.gw.request(Method::GET, "acme.test", "/")
            .header("x-tenant-cluster", "eu1")
            .send()
            .await
            .seen();
    assert_eq!(seen.header("x-tenant-cluster"), Some("eu2"));
    assert_eq!(seen.header("x-tenant-schema"), Some("acme"));

    // Migrations run on the tenant's cluster: undo 0002 there, migrate again.
    f.eu2_sql("DROP TABLE acme.orders; DELETE FROM acme.gateway_migrations WHERE name = '0002_orders.sql'");
    let (status, body) =
        f.gw.admin(Method::POST, "/v1/tenants/acme/migrate", None)
            .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["applied"], json!(["0002_orders.sql"]));
    assert_eq!(f.eu2_sql("SELECT count(*) FROM acme.orders"), "0");

    let (status, body) =
        f.gw.admin(Method::DELETE, "/v1/tenants/acme?drop=true", None)
            .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(f.schema_count("acme"), ("0".into(), "0".into()));
}

#[tokio::test]
async fn a_database_tenant_is_created_and_dropped_on_its_cluster() {
    let f = start(MIGRATIONS).await;
    let db = format!("clusterdb_{}", std::process::id());
    let body = f
        .gw
        .create_tenant(json!({"id": db, "name": "Globex", "isolation": "database", "cluster": "eu2", "domains": ["globex.test"]}))
        .await;
    assert_eq!(body["cluster"], "eu2", "{body}");
    assert_eq!(
        f.database_count(&db),
        ("0".into(), "1".into()),
        "on eu2 only"
    );
    assert_eq!(
        second_server().psql(&db, &format!("SELECT title FROM {db}.pages")),
        "Welcome to Globex"
    );
    let seen = f.gw.get("globex.test", "/").await.seen();
    assert_eq!(seen.header("x-tenant-database"), Some(db.as_str()));
    assert_eq!(seen.header("x-tenant-cluster"), Some("eu2"));
    let (status, _) =
        f.gw.admin(Method::DELETE, &format!("/v1/tenants/{db}?drop=true"), None)
            .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(f.database_count(&db).1, "0");
}

#[tokio::test]
async fn without_a_cluster_named_the_emptier_cluster_is_picked() {
    let f = start(MIGRATIONS).await;
    f.gw.create_tenant(
        json!({"id": "one", "name": "One", "cluster": "eu1", "domains": ["one.test"]}),
    )
    .await;
    let two =
        f.gw.create_tenant(json!({"id": "two", "name": "Two", "domains": ["two.test"]}))
            .await;
    assert_eq!(two["cluster"], "eu2", "eu1 already holds a tenant: {two}");
    assert_eq!(f.schema_count("two"), ("0".into(), "1".into()));
    // A tie goes to the first by name; the schema of eu1 is in the registry.
    let three =
        f.gw.create_tenant(json!({"id": "three", "name": "Three", "domains": ["three.test"]}))
            .await;
    assert_eq!(three["cluster"], "eu1", "{three}");
    assert_eq!(f.schema_count("three"), ("1".into(), "0".into()));
    // Table and cache tenants own nothing on a cluster.
    let rows =
        f.gw.create_tenant(json!({"id": "rows", "name": "Rows", "isolation": "cache"}))
            .await;
    assert_eq!(rows["cluster"], Value::Null, "{rows}");
    let seen = f.gw.get("one.test", "/").await.seen();
    assert_eq!(seen.header("x-tenant-cluster"), Some("eu1"));
}

#[tokio::test]
async fn concurrent_creates_without_a_cluster_spread_over_the_clusters() {
    let f = start(MIGRATIONS).await;
    let creates = (0..6).map(|i| {
        f.create(json!({"id": format!("t{i}"), "name": "T", "domains": [format!("t{i}.test")]}))
    });
    let mut placed = std::collections::BTreeMap::<String, u32>::new();
    for (status, body) in futures_util::future::join_all(creates).await {
        assert_eq!(status, StatusCode::CREATED, "{body}");
        *placed
            .entry(body["cluster"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    assert_eq!(
        placed,
        [("eu1".to_owned(), 3), ("eu2".to_owned(), 3)].into(),
        "creates in flight count where they are going"
    );
}

#[tokio::test]
async fn an_unknown_cluster_is_a_bad_request() {
    let f = start(MIGRATIONS).await;
    for (body, needle) in [
        (
            json!({"id": "acme", "name": "Acme", "cluster": "mars"}),
            "unknown cluster 'mars'",
        ),
        (
            json!({"id": "acme", "name": "Acme", "cluster": "default"}),
            "unknown cluster 'default'",
        ),
        (
            json!({"id": "acme", "name": "Acme", "cluster": "eu2", "isolation": "table"}),
            "owns no schema or database",
        ),
    ] {
        let (status, answer) = f.create(body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert_eq!(answer["error"]["code"], "bad_request", "{answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(needle), "{message}");
    }
    assert_eq!(f.registry_sql("SELECT count(*) FROM gateway_tenants"), "0");
    assert_eq!(f.schema_count("acme"), ("0".into(), "0".into()));

    // Imports are checked by the same rules, row by row.
    let ndjson =
        "{\"id\": \"imp1\", \"cluster\": \"eu2\"}\n{\"id\": \"imp2\", \"cluster\": \"mars\"}\n";
    let reply =
        f.gw.admin_raw(None, Method::POST, "/v1/tenants/import", ndjson.into())
            .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let report: Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(
        (report["imported"].as_u64(), report["failed"].as_u64()),
        (Some(1), Some(1)),
        "{report}"
    );
    assert_eq!(report["errors"][0]["line"], 2, "{report}");
    assert!(
        report["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("unknown cluster 'mars'"),
        "{report}"
    );
    assert_eq!(
        f.registry_sql("SELECT id || ':' || cluster FROM gateway_tenants"),
        "imp1:eu2"
    );
}

#[tokio::test]
async fn a_failing_migration_on_the_second_cluster_leaves_nothing_on_either_server() {
    let mut migrations = MIGRATIONS.to_vec();
    migrations.push((
        "0003_bad.sql",
        "ALTER TABLE orders ADD COLUMN x nosuchtype;",
    ));
    let f = start(&migrations).await;
    for (id, isolation) in [("acme", "schema"), ("acmedb", "database")] {
        let domain = format!("{id}.test");
        let (status, body) = f
            .create(json!({"id": id, "name": "Acme", "isolation": isolation, "cluster": "eu2", "domains": [domain]}))
            .await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
        assert_eq!(body["error"]["step"], "migration 0003_bad.sql", "{body}");
        assert_eq!(f.schema_count(id), ("0".into(), "0".into()), "{id}");
        assert_eq!(f.database_count(id), ("0".into(), "0".into()), "{id}");
        assert_eq!(f.registry_sql("SELECT count(*) FROM gateway_tenants"), "0");
        assert_eq!(f.registry_sql("SELECT count(*) FROM gateway_domains"), "0");
        assert_eq!(f.gw.get(&domain, "/").await.status, StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn a_failing_registry_commit_drops_the_schema_on_the_cluster() {
    let f = start(MIGRATIONS).await;
    // The registry refuses the tenant only at commit (a deferred trigger),
    // after the schema on eu2 was committed.
    f.registry_sql(
        "CREATE FUNCTION refuse_doomed() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN IF NEW.id = 'doomed' THEN RAISE EXCEPTION 'doomed at commit'; END IF; RETURN NEW; END $$;
         CREATE CONSTRAINT TRIGGER refuse_doomed AFTER INSERT ON gateway_tenants
         DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse_doomed();",
    );
    let (status, body) = f
        .create(
            json!({"id": "doomed", "name": "Doomed", "cluster": "eu2", "domains": ["doomed.test"]}),
        )
        .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert_eq!(body["error"]["step"], "commit", "{body}");
    assert_eq!(f.schema_count("doomed"), ("0".into(), "0".into()));
    assert_eq!(f.registry_sql("SELECT count(*) FROM gateway_tenants"), "0");
}

#[tokio::test]
async fn a_commit_whose_answer_is_lost_keeps_the_committed_tenant_whole() {
    let cutter = CommitCutter::start(server().port).await;
    let f = start_with(MIGRATIONS, Some(&cutter)).await;
    cutter.arm("INSERT INTO gateway_tenants");
    let (status, body) = f
        .create(
            json!({"id": "lucky", "name": "Lucky", "cluster": "eu2", "domains": ["lucky.test"]}),
        )
        .await;
    assert_eq!(
        cutter.cuts(),
        1,
        "the registry COMMIT answer was lost: {status} {body}"
    );
    // The registry did commit: the gateway asks again instead of assuming a
    // rollback and dropping the schema of a registered tenant.
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["cluster"], "eu2", "{body}");
    assert_eq!(f.schema_count("lucky"), ("0".into(), "1".into()));
    assert_eq!(
        f.eu2_sql("SELECT title FROM lucky.pages"),
        "Welcome to Lucky"
    );
    let seen = f.gw.get("lucky.test", "/").await.seen();
    assert_eq!(seen.header("x-tenant-schema"), Some("lucky"));
}

#[tokio::test]
async fn the_command_line_places_migrates_and_drops_on_the_tenants_cluster() {
    let registry = fresh_database();
    let eu2 = second_server().fresh_database();
    let files = tempfile::tempdir().unwrap();
    let dir = files.path().join("migrations");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join(MIGRATIONS[0].0), MIGRATIONS[0].1).unwrap();
    let config = format!(
        "provisioning:\n  migrations: {}\n  clusters:\n    eu1: {{url: \"{registry}\"}}\n    eu2: {{url: \"{eu2}\"}}\n",
        dir.display()
    );
    let run = |args: &[&str]| {
        let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        all.extend(["--config", "{config}", "--store", &registry].map(String::from));
        let config = config.clone();
        async move {
            let all: Vec<&str> = all.iter().map(String::as_str).collect();
            run_command(&all, &config, &[]).await
        }
    };
    let eu2_sql = |sql: &str| second_server().psql(database_of(&eu2), sql);

    let out = run(&["tenants", "create", "--id", "acme", "--cluster", "eu2"]).await;
    assert!(out.status.success(), "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("on cluster eu2"), "{}", out.stdout);
    assert_eq!(eu2_sql("SELECT count(*) FROM acme.pages"), "0");

    let out = run(&["tenants", "create", "--id", "lost", "--cluster", "mars"]).await;
    assert!(!out.status.success());
    assert!(
        out.stderr.contains("unknown cluster 'mars'"),
        "{}",
        out.stderr
    );

    std::fs::write(dir.join(MIGRATIONS[1].0), MIGRATIONS[1].1).unwrap();
    let out = run(&["tenants", "migrate-all"]).await;
    assert!(out.status.success(), "{}{}", out.stdout, out.stderr);
    assert_eq!(eu2_sql("SELECT count(*) FROM acme.orders"), "0");

    let out = run(&["tenants", "delete", "acme", "--drop"]).await;
    assert!(out.status.success(), "{}{}", out.stdout, out.stderr);
    assert_eq!(
        eu2_sql("SELECT count(*) FROM pg_namespace WHERE nspname = 'acme'"),
        "0"
    );
}

#[tokio::test]
async fn a_tenant_whose_cluster_left_the_config_is_not_deleted_with_drop() {
    let mut f = start(MIGRATIONS).await;
    f.gw.create_tenant(json!({"id": "acme", "name": "Acme", "cluster": "eu2"}))
        .await;
    let registry = f.registry.clone();
    f.gw.rewrite_config(&format!(
        "provisioning:\n  clusters:\n    eu1: {{url: \"{registry}\"}}\n"
    ));
    f.gw.restart().await;
    let (status, body) =
        f.gw.admin(Method::DELETE, "/v1/tenants/acme?drop=true", None)
            .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert_eq!(body["error"]["step"], "cluster", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("cluster 'eu2' is not configured"),
        "{message}"
    );
    let (status, _) = f.gw.admin(Method::GET, "/v1/tenants/acme", None).await;
    assert_eq!(status, StatusCode::OK, "still registered");
    assert_eq!(f.schema_count("acme"), ("0".into(), "1".into()));
}
