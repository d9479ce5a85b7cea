//! django-tenants compatibility: the gateway pointed at a django-tenants
//! database (tables created exactly as Django's migrations create them)
//! routes its existing tenants with no data migration, and its writes keep
//! django-tenants' invariants (is_primary always written, one primary per
//! tenant, domains deleted before their tenant).

mod common;

use std::time::Duration;

use common::pg::{fresh_database, psql, DJANGO_TABLES};
use common::tls::https_get;
use common::{api_error, eventually, Backend, Gateway, GatewayOptions};
use hyper::{Method, StatusCode};
use serde_json::json;

/// A gateway on the django-tenants tables of `db`, with `yaml` as config.
async fn django_gateway(db: &str, options: GatewayOptions, yaml: &str) -> Gateway {
    Gateway::start(options.config(yaml).store(db).django_layout()).await
}

#[tokio::test]
async fn an_existing_django_tenants_database_is_routed_and_written_as_django_would() {
    let db = fresh_database();
    psql(&db, DJANGO_TABLES);
    let backend = Backend::start("django").await;
    let options = GatewayOptions::new().backend(&backend);
    let gw = django_gateway(&db, options, "store:\n  django:\n    name_column: name\n").await;

    // Without tls.acme, the gateway adds no table of its own.
    let acme_table = psql(&db, "SELECT to_regclass('gateway_acme_certificates')");
    assert_eq!(acme_table.trim(), "", "{acme_table}");

    // It loaded django-tenants' domains (wildcards too) into its table at start.
    let domains: f64 = psql(&db, "SELECT count(*) FROM customers_domain")
        .parse()
        .unwrap();
    eventually(Duration::from_secs(5), "the cache is warm", || async {
        gw.admin(Method::GET, "/readyz", None).await.0 == StatusCode::OK
    })
    .await;
    assert_eq!(
        gw.metric("tenant_gateway_domain_table_domains").await,
        domains
    );

    // Existing rows route as they are: the tenant id is the schema name.
    let seen = gw.get("shop.acme.test", "/").await.seen();
    assert_eq!(seen.header("x-tenant-id"), Some("acme"));
    assert_eq!(seen.header("x-tenant-schema"), Some("acme"));
    let (status, body) = gw.admin(Method::GET, "/v1/tenants/acme", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["name"], "Acme Corp");
    assert_eq!(body["domains"][0]["domain"], "acme.test");

    // A new tenant gets its schema and django-shaped rows.
    gw.create_tenant(json!({"id": "globex", "name": "Globex", "domains": ["globex.test"]}))
        .await;
    assert_eq!(
        psql(&db, "SELECT c.schema_name || '|' || c.name || '|' || d.domain || '|' || d.is_primary FROM customers_client c JOIN customers_domain d ON d.tenant_id = c.id WHERE c.schema_name = 'globex'"),
        "globex|Globex|globex.test|true"
    );
    assert_eq!(
        psql(
            &db,
            "SELECT count(*) FROM pg_namespace WHERE nspname = 'globex'"
        ),
        "1"
    );
    assert_eq!(
        gw.get("globex.test", "/")
            .await
            .seen()
            .header("x-tenant-id"),
        Some("globex")
    );

    // One primary domain per tenant, written explicitly.
    gw.admin(
        Method::POST,
        "/v1/tenants/acme/domains",
        Some(json!({"domain": "acme.example", "primary": true})),
    )
    .await;
    assert_eq!(
        psql(&db, "SELECT string_agg(domain, ',' ORDER BY domain) FROM customers_domain WHERE tenant_id = 2 AND is_primary"),
        "acme.example"
    );

    // A duplicate is a conflict, as in the seed's CLI.
    let (status, body) = gw
        .admin(
            Method::POST,
            "/v1/tenants",
            Some(json!({"id": "acme", "name": "Again", "provision": false})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(
        body["error"]["message"],
        "Tenant with ID 'acme' already exists"
    );

    // django-tenants has no status or pool columns: a clear 400, nothing changed.
    let (status, body) = gw
        .patch_tenant("acme", json!({"status": "suspended"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("no status or pool columns"));
    // Nor a plan column unless one is configured.
    let (status, body) = gw.patch_tenant("acme", json!({"plan": "premium"})).await;
    let message = api_error(status, &body, StatusCode::BAD_REQUEST, "bad_request");
    assert!(message.contains("store.django.plan_column"), "{message}");

    // Without store.django.cluster_column only the default cluster exists.
    let (status, body) = gw
        .admin(
            Method::POST,
            "/v1/tenants",
            Some(json!({"id": "initech", "name": "Initech", "cluster": "eu1"})),
        )
        .await;
    let message = api_error(status, &body, StatusCode::BAD_REQUEST, "bad_request");
    assert!(message.contains("unknown cluster 'eu1'"), "{message}");

    // Delete removes the domains, then the tenant.
    let (status, _) = gw
        .admin(Method::DELETE, "/v1/tenants/acme?drop=true", None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        psql(
            &db,
            "SELECT count(*) FROM customers_domain WHERE tenant_id = 2"
        ),
        "0"
    );
    assert_eq!(
        psql(
            &db,
            "SELECT count(*) FROM pg_namespace WHERE nspname = 'acme'"
        ),
        "0"
    );
    assert_eq!(gw.get("acme.test", "/").await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        gw.get("example.test", "/")
            .await
            .seen()
            .header("x-tenant-schema"),
        Some("public")
    );
}

#[tokio::test]
async fn a_mapped_plan_column_picks_the_pool_and_is_written() {
    let db = fresh_database();
    psql(&db, DJANGO_TABLES);
    psql(
        &db,
        "ALTER TABLE customers_client ADD COLUMN plan varchar(32) NULL;
         UPDATE customers_client SET plan = 'premium' WHERE schema_name = 'acme';",
    );
    let shared = Backend::start("shared").await;
    let dedicated = Backend::start("dedicated").await;
    let config = format!(
        "store:\n  django: {{name_column: name, plan_column: plan}}\npools:\n  default: {{backends: [{}]}}\n  \
         dedicated: {{backends: [{}]}}\nplans: {{premium: dedicated}}\n",
        shared.yaml(),
        dedicated.yaml()
    );
    let gw = django_gateway(&db, GatewayOptions::new(), &config).await;

    assert_eq!(gw.get("acme.test", "/").await.seen().backend(), "dedicated");
    assert_eq!(gw.get("example.test", "/").await.seen().backend(), "shared");

    gw.create_tenant(
        json!({"id": "globex", "name": "G", "plan": "premium", "domains": ["globex.test"]}),
    )
    .await;
    assert_eq!(
        psql(
            &db,
            "SELECT plan FROM customers_client WHERE schema_name = 'globex'"
        ),
        "premium"
    );
    assert_eq!(
        gw.get("globex.test", "/").await.seen().backend(),
        "dedicated"
    );

    let (status, body) = gw.patch_tenant("globex", json!({"plan": "basic"})).await;
    assert_eq!(
        (status, &body["plan"]),
        (StatusCode::OK, &json!("basic")),
        "{body}"
    );
    assert_eq!(
        psql(
            &db,
            "SELECT plan FROM customers_client WHERE schema_name = 'globex'"
        ),
        "basic"
    );
    assert_eq!(gw.get("globex.test", "/").await.seen().backend(), "shared");
}

#[tokio::test]
async fn a_mapped_cluster_column_records_where_the_schema_was_placed() {
    let db = fresh_database();
    psql(&db, DJANGO_TABLES);
    psql(
        &db,
        "ALTER TABLE customers_client ADD COLUMN cluster varchar(32)",
    );
    let eu1 = fresh_database();
    let backend = Backend::start("django").await;
    let options = GatewayOptions::new().backend(&backend);
    let yaml = format!(
        "store:\n  django: {{name_column: name, cluster_column: cluster}}\nprovisioning:\n  clusters:\n    eu1: {{url: \"{eu1}\"}}\n"
    );
    let gw = django_gateway(&db, options, &yaml).await;

    let body = gw
        .create_tenant(json!({"id": "globex", "name": "Globex", "domains": ["globex.test"]}))
        .await;
    assert_eq!(body["cluster"], "eu1", "{body}");
    assert_eq!(
        psql(
            &db,
            "SELECT cluster FROM customers_client WHERE schema_name = 'globex'"
        ),
        "eu1"
    );
    let schema = "SELECT count(*) FROM pg_namespace WHERE nspname = 'globex'";
    assert_eq!(
        (psql(&db, schema), psql(&eu1, schema)),
        ("0".into(), "1".into())
    );
    let seen = gw.get("globex.test", "/").await.seen();
    assert_eq!(seen.header("x-tenant-cluster"), Some("eu1"));
    // Tenants from before the column route as before, with no cluster.
    let seen = gw.get("acme.test", "/").await.seen();
    assert_eq!(seen.header("x-tenant-cluster"), None);
}

#[tokio::test]
async fn with_a_django_template_schemas_stay_on_the_registrys_cluster() {
    let db = fresh_database();
    psql(&db, DJANGO_TABLES);
    psql(
        &db,
        "ALTER TABLE customers_client ADD COLUMN cluster varchar(32);
         CREATE SCHEMA tenant_template;
         CREATE TABLE tenant_template.django_migrations (id bigserial PRIMARY KEY, app text, name text)",
    );
    let eu1 = fresh_database();
    let backend = Backend::start("django").await;
    let options = GatewayOptions::new().backend(&backend);
    let yaml = format!(
        "store:\n  django: {{name_column: name, cluster_column: cluster}}\nprovisioning:\n  template_schema: tenant_template\n  clusters:\n    eu1: {{url: \"{eu1}\"}}\n"
    );
    let gw = django_gateway(&db, options, &yaml).await;
    let schema = |name: &str| {
        let sql = format!("SELECT count(*) FROM pg_namespace WHERE nspname = '{name}'");
        (psql(&db, &sql), psql(&eu1, &sql))
    };

    // Only the registry's database has the template to clone: another
    // cluster is refused before anything is written.
    let (status, body) = gw
        .admin(
            Method::POST,
            "/v1/tenants",
            Some(json!({"id": "away", "name": "Away", "cluster": "eu1"})),
        )
        .await;
    let message = api_error(status, &body, StatusCode::BAD_REQUEST, "bad_request");
    assert!(message.contains("django-tenants"), "{message}");
    assert_eq!(schema("away"), ("0".into(), "0".into()));
    // Not placed on eu1 either: cloned beside the template.
    gw.create_tenant(json!({"id": "home", "name": "Home"}))
        .await;
    assert_eq!(schema("home"), ("1".into(), "0".into()));
    assert_eq!(
        psql(&db, "SELECT count(*) FROM home.django_migrations"),
        "0"
    );
}

#[tokio::test]
async fn acme_certificates_are_kept_beside_the_django_tenants_tables() {
    let pebble = common::pebble::Pebble::start(None).await;
    let db = fresh_database();
    psql(&db, DJANGO_TABLES);
    let backend = Backend::start("django").await;
    let yaml = format!(
        "store:\n  django:\n    name_column: name\ntls:\n  listen: 127.0.0.1:0\n{}",
        pebble.acme_yaml(&[])
    );
    let options = GatewayOptions::new().backend(&backend);
    let mut gw = django_gateway(&db, options, &yaml).await;
    let roots = pebble.issuing_roots().await;
    let name = "shop.acme.test";

    let first = https_get(gw.https_addr.unwrap(), &roots, name, name, "/")
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", gw.log()));
    assert_eq!(first.reply.seen().header("x-tenant-id"), Some("acme"));
    let stored = psql(
        &db,
        "SELECT domain FROM gateway_acme_certificates WHERE cert_pem IS NOT NULL",
    );
    assert_eq!(stored.trim(), name);

    gw.restart().await;
    let again = https_get(gw.https_addr.unwrap(), &roots, name, name, "/")
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", gw.log()));
    assert_eq!(again.leaf, first.leaf, "the stored certificate");
    assert_eq!(
        gw.metric("tenant_gateway_acme_certificates_loaded_total")
            .await,
        1.0
    );
}

#[tokio::test]
async fn with_change_triggers_writes_django_makes_itself_reach_the_gateway_at_once() {
    let db = fresh_database();
    psql(&db, DJANGO_TABLES);
    let backend = Backend::start("django").await;
    // Hour-long TTLs: only the change feed can explain the gateway noticing.
    let yaml = "cache: {ttl: 1h, negative_ttl: 1h}\nstore:\n  django: {change_triggers: true}\n";
    let gw = django_gateway(&db, GatewayOptions::new().backend(&backend), yaml).await;
    assert_eq!(
        gw.get("new.acme.test", "/").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        gw.tenant_everywhere("shop.acme.test").await.as_deref(),
        Some("acme")
    );

    // As Django's admin or a signup view would write them.
    psql(
        &db,
        "INSERT INTO customers_domain (domain, is_primary, tenant_id) VALUES ('new.acme.test', false, 2)",
    );
    common::eventually(Duration::from_secs(5), "the new domain routes", || async {
        gw.get("new.acme.test", "/").await.status == StatusCode::OK
    })
    .await;
    psql(
        &db,
        "DELETE FROM customers_domain WHERE domain = 'shop.acme.test'",
    );
    common::eventually(
        Duration::from_secs(5),
        "the removed domain is refused",
        || async { gw.get("shop.acme.test", "/").await.status == StatusCode::NOT_FOUND },
    )
    .await;
    psql(
        &db,
        "UPDATE customers_client SET schema_name = 'acme_v2' WHERE id = 2",
    );
    common::eventually(
        Duration::from_secs(5),
        "the renamed schema is sent",
        || async {
            gw.get("acme.test", "/")
                .await
                .seen()
                .header("x-tenant-schema")
                == Some("acme_v2")
        },
    )
    .await;
    // A restart keeps (re-installs) the triggers without error.
    let mut gw = gw;
    gw.restart().await;
    assert_eq!(gw.get("new.acme.test", "/").await.status, StatusCode::OK);
}
