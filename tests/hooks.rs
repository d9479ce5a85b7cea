//! Provisioning hooks and the events webhook against a real PostgreSQL: a
//! hook command gets the tenant as separate arguments (never through a
//! shell) and runs before the registry commits; a failing command or
//! webhook undoes the tenant and names its step; the events webhook hears
//! `tenant.provisioned` and `tenant.deleted`.

mod common;

use common::pg::{fresh_database, psql, server};
use common::{Backend, Gateway, GatewayOptions, ProvisioningFiles, Webhook};
use hyper::{Method, StatusCode};
use serde_json::{json, Value};

struct Fixture {
    gw: Gateway,
    db: String,
    _files: ProvisioningFiles,
    _backend: Backend,
}

/// A gateway on a fresh database with one migration, default content and
/// `provisioning` / `events` as given (JSON is YAML).
async fn start(provisioning: Value, events: Value) -> Fixture {
    let db = fresh_database();
    let files = ProvisioningFiles::new(
        &[(
            "0001_init.sql",
            "CREATE TABLE pages (id serial PRIMARY KEY, title text NOT NULL);",
        )],
        Some("INSERT INTO {schema}.pages (title) VALUES ('Welcome to {tenant_name}');"),
    );
    let backend = Backend::start("app").await;
    let yaml = json!({"provisioning": provisioning, "events": events}).to_string();
    let options = GatewayOptions::new()
        .backend(&backend)
        .config(&yaml)
        .store(&db)
        .provisioning(&files);
    Fixture {
        gw: Gateway::start(options).await,
        db,
        _files: files,
        _backend: backend,
    }
}

impl Fixture {
    fn count(&self, sql: &str) -> String {
        psql(&self.db, sql)
    }

    /// Nothing of tenant `id` anywhere: schema, database, registry rows.
    fn nothing_of(&self, id: &str) {
        assert_eq!(
            self.count(&format!(
                "SELECT count(*) FROM pg_namespace WHERE nspname = '{id}'"
            )),
            "0"
        );
        assert_eq!(
            self.count(&format!(
                "SELECT count(*) FROM pg_database WHERE datname = '{id}'"
            )),
            "0"
        );
        assert_eq!(self.count("SELECT count(*) FROM gateway_tenants"), "0");
        assert_eq!(self.count("SELECT count(*) FROM gateway_domains"), "0");
    }

    async fn create(&self, body: Value) -> (StatusCode, Value) {
        self.gw.admin(Method::POST, "/v1/tenants", Some(body)).await
    }
}

#[tokio::test]
async fn a_failing_hook_command_rolls_everything_back_and_names_the_step() {
    let events = Webhook::start(StatusCode::OK).await;
    let f = start(
        json!({"hooks": {"command": ["sh", "-c", "echo 'no quota for {tenant_id}' >&2; exit 3"]}}),
        json!({"webhook": events.url}),
    )
    .await;
    for (id, isolation) in [("acme", "schema"), ("acmedb", "database")] {
        let domain = format!("{id}.test");
        let (status, body) = f
            .create(json!({"id": id, "name": "Acme", "isolation": isolation, "domains": [domain]}))
            .await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
        assert_eq!(body["error"]["code"], "provisioning_failed", "{body}");
        assert_eq!(body["error"]["step"], "hook command", "{body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("exit status: 3"), "{message}");
        assert!(message.contains(&format!("no quota for {id}")), "{message}");
        f.nothing_of(id);
        assert_eq!(f.gw.get(&domain, "/").await.status, StatusCode::NOT_FOUND);
    }
    assert!(
        events.received().is_empty(),
        "no tenant.provisioned for a failure"
    );
}

#[tokio::test]
async fn a_hook_command_gets_the_tenant_as_arguments_and_sees_its_database() {
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("hook.out");
    let psql_bin = server().bin().join("psql");
    let script = format!(
        "printf '%s\\n' \"$@\" > {file}; {psql} -X -A -t -d \"postgres://postgres@127.0.0.1:{port}/$4\" -c \"SELECT title FROM $3.pages\" >> {file}",
        file = file.display(),
        psql = psql_bin.display(),
        port = server().port,
    );
    let f = start(
        json!({"hooks": {"command": ["sh", "-c", script, "hook", "{tenant_id}", "{tenant_name}", "{schema}", "{database}", "{cluster}"]}}),
        json!({}),
    )
    .await;
    let db = format!("hooked_{}", std::process::id());
    let name = "Hooked; $(touch /tmp/pwned) {schema}";
    let (status, body) = f
        .create(
            json!({"id": db, "name": name, "isolation": "database", "domains": ["hooked.test"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let seen = std::fs::read_to_string(&file).unwrap();
    assert_eq!(
        seen.lines().collect::<Vec<_>>(),
        [
            &db,
            name,
            &db,
            &db,
            "default",
            &format!("Welcome to {name}")
        ],
        "arguments as given, and the hook reads the new database"
    );
    let (status, _) =
        f.gw.admin(Method::DELETE, &format!("/v1/tenants/{db}?drop=true"), None)
            .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn the_webhook_hook_and_the_events_webhook_hear_the_tenant() {
    let hook = Webhook::start(StatusCode::OK).await;
    let events = Webhook::start(StatusCode::NO_CONTENT).await;
    let f = start(
        json!({"hooks": {"webhook": format!("{}/hook", hook.url)}}),
        json!({"webhook": format!("{}/events", events.url)}),
    )
    .await;
    let created =
        f.gw.create_tenant(json!({"id": "acme", "name": "Acme", "domains": ["acme.test"]}))
            .await;
    assert_eq!(created["id"], "acme");
    let (path, body) = hook.received().pop().expect("the hook webhook was called");
    assert_eq!(path, "/hook");
    assert_eq!(body["event"], "tenant.provisioning");
    assert_eq!(body["tenant"]["id"], "acme");
    assert_eq!(body["tenant"]["schema"], "acme");
    assert_eq!(body["tenant"]["cluster"], "default");
    assert_eq!(body["tenant"]["database"], common::pg::database_of(&f.db));

    let (path, body) = events.wait_for(1).await.remove(0);
    assert_eq!(path, "/events");
    assert_eq!(body["event"], "tenant.provisioned", "{body}");
    assert_eq!(body["tenant"]["id"], "acme");
    assert_eq!(body["tenant"]["domains"][0]["domain"], "acme.test");

    let (status, _) =
        f.gw.admin(Method::DELETE, "/v1/tenants/acme?drop=true", None)
            .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let received = events.wait_for(2).await;
    assert_eq!(received[1].1["event"], "tenant.deleted");
    assert_eq!(received[1].1["tenant"]["id"], "acme");
    assert_eq!(hook.received().len(), 1, "hooks run on create only");
}

#[tokio::test]
async fn a_failing_hook_webhook_rolls_back_and_names_the_step() {
    let hook = Webhook::start(StatusCode::SERVICE_UNAVAILABLE).await;
    let f = start(
        json!({"hooks": {"webhook": format!("{}/hook", hook.url)}}),
        json!({}),
    )
    .await;
    let (status, body) = f
        .create(json!({"id": "acme", "name": "Acme", "domains": ["acme.test"]}))
        .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert_eq!(body["error"]["step"], "hook webhook", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("503") && message.contains("webhook says 503"),
        "{message}"
    );
    f.nothing_of("acme");
    assert_eq!(hook.received().len(), 1);
}

#[tokio::test]
async fn a_hook_command_past_its_timeout_is_killed_and_undoes_the_tenant() {
    let f = start(
        json!({"hooks": {"command": ["sleep", "30"], "timeout": "300ms"}}),
        json!({}),
    )
    .await;
    let started = std::time::Instant::now();
    let (status, body) = f.create(json!({"id": "slow", "name": "Slow"})).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert_eq!(body["error"]["step"], "hook command", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("did not finish within 300ms"), "{message}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    f.nothing_of("slow");
}
