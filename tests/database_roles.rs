//! `provisioning.database_role` against a real PostgreSQL that checks
//! passwords (SCRAM) for the tenants' roles: a database tenant's role, whose
//! password is answered once, connects to its own database and to no other
//! tenant's; nothing keeps the password; failures and `?drop=true` leave no
//! role behind.

mod common;

use common::pg::{database_of, private_server, TestPostgres};
use common::{Backend, Gateway, GatewayOptions, ProvisioningFiles};
use hyper::{Method, StatusCode};
use serde_json::json;
use tokio_postgres::NoTls;

struct Fixture {
    gw: Gateway,
    pg: TestPostgres,
    registry: String,
    _backend: Backend,
    _files: ProvisioningFiles,
}

/// A private server where `roles` log in with a password (everyone else,
/// the harness included, stays on `trust`), and a gateway with roles on.
/// The migration fails for the schema `doomed_*` only.
async fn start(roles: &[&str]) -> Fixture {
    let pg = private_server();
    let hba = pg.dir.join("data").join("pg_hba.conf");
    let rules = std::fs::read_to_string(&hba).unwrap();
    let scram = format!("host all {} 127.0.0.1/32 scram-sha-256\n", roles.join(","));
    std::fs::write(&hba, scram + &rules).unwrap();
    pg.psql("postgres", "SELECT pg_reload_conf()");
    let registry = pg.fresh_database();
    let files = ProvisioningFiles::new(
        &[(
            "0001_init.sql",
            "CREATE TABLE pages (id serial PRIMARY KEY, title text NOT NULL);
             DO $$ BEGIN IF current_schema() LIKE 'doomed%' THEN RAISE EXCEPTION 'doomed'; END IF; END $$;",
        )],
        None,
    );
    let backend = Backend::start("app").await;
    let options = GatewayOptions::new()
        .backend(&backend)
        .config("provisioning:\n  database_role: true\n")
        .store(&registry)
        .provisioning(&files);
    Fixture {
        gw: Gateway::start(options).await,
        pg,
        registry,
        _backend: backend,
        _files: files,
    }
}

impl Fixture {
    fn sql(&self, sql: &str) -> String {
        self.pg.psql(database_of(&self.registry), sql)
    }

    fn role_exists(&self, role: &str) -> bool {
        self.sql(&format!(
            "SELECT count(*) FROM pg_roles WHERE rolname = '{role}'"
        )) == "1"
    }

    fn database_exists(&self, name: &str) -> bool {
        self.sql(&format!(
            "SELECT count(*) FROM pg_database WHERE datname = '{name}'"
        )) == "1"
    }

    /// Connects as `role` and runs one query; the server's refusal as text.
    async fn query_as(
        &self,
        role: &str,
        password: &str,
        database: &str,
        sql: &str,
    ) -> Result<String, String> {
        let url = format!(
            "postgres://{role}:{password}@127.0.0.1:{}/{database}",
            self.pg.port
        );
        let (client, connection) = tokio_postgres::connect(&url, NoTls).await.map_err(|e| {
            e.as_db_error()
                .map_or(e.to_string(), |d| d.message().to_owned())
        })?;
        tokio::spawn(connection);
        let rows = client.simple_query(sql).await.map_err(|e| e.to_string())?;
        Ok(rows
            .iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_owned),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join(","))
    }
}

#[tokio::test]
async fn a_database_role_reaches_its_own_database_only() {
    let (a, b) = ("rolea", "roleb");
    let f = start(&[a, b]).await;
    let mut passwords = Vec::new();
    for id in [a, b] {
        let (status, body) = f
            .gw
            .admin(
                Method::POST,
                "/v1/tenants",
                Some(json!({"id": id, "name": id, "isolation": "database", "domains": [format!("{id}.test")]})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["database_role"]["name"], id, "{body}");
        passwords.push(
            body["database_role"]["password"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let pa = &passwords[0];

    let own = f
        .query_as(
            a,
            pa,
            a,
            "INSERT INTO pages (title) VALUES ('mine'); SELECT title FROM pages",
        )
        .await;
    assert_eq!(own, Ok("mine".into()), "the role works in its database");
    let wrong = f.query_as(a, "not-the-password", a, "SELECT 1").await;
    assert!(
        wrong
            .as_ref()
            .is_err_and(|e| e.contains("password authentication failed")),
        "{wrong:?}"
    );
    let other = f.query_as(a, pa, b, "SELECT 1").await;
    assert!(
        other
            .as_ref()
            .is_err_and(|e| e.contains("permission denied for database")),
        "{other:?}"
    );

    // Shown once: not in the registry, the log, or a later read.
    let registry = f.sql("SELECT string_agg(row_to_json(t)::text, '') FROM gateway_tenants t");
    assert!(!registry.contains(pa.as_str()));
    assert!(!f.gw.log().contains(pa.as_str()));
    let (_, shown) = f.gw.admin(Method::GET, "/v1/tenants/rolea", None).await;
    assert!(shown.get("database_role").is_none(), "{shown}");

    let (status, _) =
        f.gw.admin(Method::DELETE, "/v1/tenants/rolea?drop=true", None)
            .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(!f.role_exists(a) && !f.database_exists(a));
    assert!(f.role_exists(b) && f.database_exists(b));
}

#[tokio::test]
async fn failed_database_tenants_leave_no_role_and_keep_foreign_ones() {
    let f = start(&["doomed"]).await;
    let (status, body) =
        f.gw.admin(
            Method::POST,
            "/v1/tenants",
            Some(json!({"id": "doomed", "name": "Doomed", "isolation": "database"})),
        )
        .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert_eq!(body["error"]["step"], "migration 0001_init.sql", "{body}");
    assert!(!f.role_exists("doomed") && !f.database_exists("doomed"));

    // A role that exists already is refused, and not dropped.
    f.sql("CREATE ROLE taken");
    let (status, body) =
        f.gw.admin(
            Method::POST,
            "/v1/tenants",
            Some(json!({"id": "taken", "name": "Taken", "isolation": "database"})),
        )
        .await;
    // A leftover in the way is the caller's conflict (409), naming the step.
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "conflict", "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.starts_with("create role:"), "{body}");
    assert!(f.role_exists("taken"), "someone else's role is kept");
    assert!(!f.database_exists("taken"));
    assert_eq!(f.sql("SELECT count(*) FROM gateway_tenants"), "0");
}
