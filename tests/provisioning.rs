//! Provisioning against a real PostgreSQL: a tenant created through the
//! admin API gets its schema or database (migrated, with default content)
//! in the same all-or-nothing step as its registry rows, is routed with the
//! right headers, and is dropped on `DELETE ?drop=true`.

mod common;

use common::pg::{fresh_database, psql};
use common::{Backend, Gateway, GatewayOptions, ProvisioningFiles};
use hyper::{Method, StatusCode};
use serde_json::json;

const GOOD_MIGRATIONS: &[(&str, &str)] = &[
    (
        "0001_init.sql",
        "CREATE TABLE users (id serial PRIMARY KEY, email text NOT NULL UNIQUE);
         CREATE TABLE pages (id serial PRIMARY KEY, title text NOT NULL);",
    ),
    (
        "0002_orders.sql",
        "CREATE TABLE orders (id serial PRIMARY KEY, user_id int REFERENCES users (id));",
    ),
];

const CONTENT: &str = "-- the seed's welcome page
INSERT INTO {schema}.pages (title) VALUES ('Welcome to {tenant_name}');";

/// A gateway on a fresh database with these migrations and content.
struct Fixture {
    gw: Gateway,
    db: String,
    _backend: Backend,
    _files: ProvisioningFiles,
}

async fn start(migrations: &[(&str, &str)], yaml: &str) -> Fixture {
    let db = fresh_database();
    let files = ProvisioningFiles::new(migrations, Some(CONTENT));
    let backend = Backend::start("app").await;
    let options = GatewayOptions::new()
        .backend(&backend)
        .config(yaml)
        .store(&db)
        .provisioning(&files);
    Fixture {
        gw: Gateway::start(options).await,
        db,
        _backend: backend,
        _files: files,
    }
}

impl Fixture {
    fn sql(&self, sql: &str) -> String {
        psql(&self.db, sql)
    }

    fn schema_exists(&self, schema: &str) -> bool {
        self.sql(&format!(
            "SELECT count(*) FROM pg_namespace WHERE nspname = '{schema}'"
        )) == "1"
    }
}

fn database_exists(name: &str) -> bool {
    psql(
        &fresh_database(),
        &format!("SELECT count(*) FROM pg_database WHERE datname = '{name}'"),
    ) == "1"
}

#[tokio::test]
async fn schema_tenant_is_migrated_routed_and_dropped() {
    let f = start(GOOD_MIGRATIONS, "").await;
    let body =
        f.gw.create_tenant(json!({"id": "acme", "name": "Acme", "domains": ["acme.test"]}))
            .await;
    assert_eq!(body["schema"], "acme");

    let seen = f.gw.get("acme.test", "/").await.seen();
    assert_eq!(seen.header("x-tenant-id"), Some("acme"));
    assert_eq!(seen.header("x-tenant-schema"), Some("acme"));
    assert_eq!(seen.header("x-tenant-database"), None);

    assert_eq!(
        f.sql("SELECT string_agg(name, ',' ORDER BY name) FROM acme.gateway_migrations"),
        "0001_init.sql,0002_orders.sql"
    );
    assert_eq!(
        f.sql("SELECT string_agg(table_name, ',' ORDER BY table_name) FROM information_schema.tables WHERE table_schema = 'acme'"),
        "gateway_migrations,orders,pages,users"
    );
    assert_eq!(f.sql("SELECT title FROM acme.pages"), "Welcome to Acme");

    let (status, body) =
        f.gw.admin(Method::DELETE, "/v1/tenants/acme?drop=true", None)
            .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert!(!f.schema_exists("acme"));
    assert_eq!(
        f.gw.get("acme.test", "/").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_failing_migration_leaves_nothing_behind() {
    let mut migrations = GOOD_MIGRATIONS.to_vec();
    migrations.push((
        "0003_orders.sql",
        "ALTER TABLE orders ADD COLUMN total nosuchtype;",
    ));
    let f = start(&migrations, "").await;

    for (id, isolation) in [("acme", "schema"), ("acmedb", "database")] {
        let domain = format!("{id}.test");
        let (status, body) =
            f.gw.admin(
                Method::POST,
                "/v1/tenants",
                Some(
                    json!({"id": id, "name": "Acme", "isolation": isolation, "domains": [domain]}),
                ),
            )
            .await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
        assert_eq!(body["error"]["code"], "provisioning_failed", "{body}");
        assert_eq!(body["error"]["step"], "migration 0003_orders.sql", "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("nosuchtype"),
            "{body}"
        );
        assert!(!f.schema_exists(id), "schema {id} left behind");
        assert!(!database_exists(id), "database {id} left behind");
        assert_eq!(
            f.sql(&format!(
                "SELECT count(*) FROM gateway_tenants WHERE id = '{id}'"
            )),
            "0"
        );
        assert_eq!(f.sql("SELECT count(*) FROM gateway_domains"), "0");
        assert_eq!(f.gw.get(&domain, "/").await.status, StatusCode::NOT_FOUND);
        let (status, _) =
            f.gw.admin(Method::GET, &format!("/v1/tenants/{id}"), None)
                .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn database_tenant_gets_its_own_migrated_database() {
    let f = start(GOOD_MIGRATIONS, "").await;
    let db = format!("tenantdb_{}", std::process::id());
    f.gw.create_tenant(
        json!({"id": db, "name": "Globex", "isolation": "database", "domains": ["globex.test"]}),
    )
    .await;
    let seen = f.gw.get("globex.test", "/").await.seen();
    assert_eq!(seen.header("x-tenant-database"), Some(db.as_str()));
    assert_eq!(seen.header("x-tenant-schema"), Some(db.as_str()));
    assert!(database_exists(&db));
    assert_eq!(
        common::pg::server().psql(&db, &format!("SELECT title FROM {db}.pages")),
        "Welcome to Globex"
    );
    assert!(
        !f.schema_exists(&db),
        "a database tenant has no schema in the registry database"
    );

    let (status, _) =
        f.gw.admin(Method::DELETE, &format!("/v1/tenants/{db}?drop=true"), None)
            .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(!database_exists(&db));
}

#[tokio::test]
async fn table_tenants_get_content_with_their_id_and_cache_tenants_nothing() {
    let files = tempfile::tempdir().unwrap();
    let table_content = files.path().join("table.sql");
    std::fs::write(
        &table_content,
        "INSERT INTO public.notes (tenant_id, title) VALUES ({tenant_id}, 'Hello {tenant_name}');",
    )
    .unwrap();
    let yaml = format!(
        "provisioning:\n  table_content: {}\n",
        table_content.display()
    );
    let f = start(GOOD_MIGRATIONS, &yaml).await;
    f.sql("CREATE TABLE public.notes (tenant_id text NOT NULL, title text NOT NULL)");

    f.gw.create_tenant(
        json!({"id": "rows", "name": "Rows Inc", "isolation": "table", "domains": ["rows.test"]}),
    )
    .await;
    f.gw.create_tenant(
        json!({"id": "kv", "name": "KV", "isolation": "cache", "domains": ["kv.test"]}),
    )
    .await;
    assert_eq!(
        f.sql("SELECT tenant_id || '|' || title FROM public.notes"),
        "rows|Hello Rows Inc"
    );
    assert!(!f.schema_exists("rows") && !f.schema_exists("kv"));

    let rows = f.gw.get("rows.test", "/").await.seen();
    assert_eq!(rows.header("x-tenant-id"), Some("rows"));
    assert_eq!(rows.header("x-tenant-schema"), None);
    let kv = f.gw.get("kv.test", "/").await.seen();
    assert_eq!(kv.header("x-tenant-cache-prefix"), Some("kv:"));
    assert_eq!(kv.header("x-tenant-schema"), None);
}

#[tokio::test]
async fn concurrent_creates_of_one_id_have_one_winner() {
    let f = start(GOOD_MIGRATIONS, "").await;
    let attempts = (0..6).map(|i| {
        f.gw.admin(
            Method::POST,
            "/v1/tenants",
            Some(json!({"id": "race", "name": "Race", "domains": [format!("race{i}.test")]})),
        )
    });
    let results = futures_join_all(attempts).await;
    let created = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .count();
    let conflicts: Vec<_> = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::CONFLICT)
        .collect();
    assert_eq!(created, 1, "{results:?}");
    assert_eq!(conflicts.len(), 5, "{results:?}");
    assert_eq!(
        conflicts[0].1["error"]["message"],
        "Tenant with ID 'race' already exists"
    );
    assert_eq!(f.sql("SELECT count(*) FROM gateway_domains"), "1");
    assert!(f.schema_exists("race"));
}

#[tokio::test]
async fn provision_false_only_registers() {
    let f = start(GOOD_MIGRATIONS, "").await;
    f.sql("CREATE SCHEMA legacy");
    let body = f
        .gw
        .create_tenant(json!({"id": "legacy", "name": "Legacy", "domains": ["legacy.test"], "provision": false}))
        .await;
    assert_eq!(body["id"], "legacy");
    assert_eq!(
        f.sql("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'legacy'"),
        "0",
        "no migrations ran"
    );
    let seen = f.gw.get("legacy.test", "/").await.seen();
    assert_eq!(seen.header("x-tenant-schema"), Some("legacy"));
}

/// Runs the futures concurrently on this task and collects their outputs.
async fn futures_join_all<F: std::future::Future>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output> {
    let mut set = Vec::new();
    for f in futures {
        set.push(Box::pin(f));
    }
    let mut out: Vec<Option<F::Output>> = set.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in set.iter_mut().enumerate() {
            if out[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => out[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().map(|v| v.unwrap()).collect()
}
