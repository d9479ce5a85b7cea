//! The template fast path: a tenant cloned from `provisioning.template_schema`
//! has the same tables, columns, defaults, constraints, indexes and
//! sequences as one built by replaying the migrations, with its foreign keys
//! and sequences pointing into its own schema.

mod common;

use common::pg::{fresh_database, psql};
use common::{Backend, Gateway, GatewayOptions};
use serde_json::json;

const MIGRATIONS: &[(&str, &str)] = &[
    (
        "0001_init.sql",
        "CREATE TABLE users (id serial PRIMARY KEY, email text NOT NULL UNIQUE,
             created timestamptz NOT NULL DEFAULT now(), age int CHECK (age >= 0));
         CREATE TABLE pages (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
             title text NOT NULL DEFAULT 'untitled', body text);
         COMMENT ON TABLE pages IS 'content pages';",
    ),
    (
        "0002_orders.sql",
        "CREATE SEQUENCE invoice_no START 1000 INCREMENT 10;
         CREATE TABLE orders (id bigserial PRIMARY KEY,
             user_id int NOT NULL REFERENCES users (id) ON DELETE CASCADE,
             invoice int NOT NULL DEFAULT nextval('invoice_no'),
             total numeric(10, 2), UNIQUE (user_id, invoice));
         CREATE INDEX orders_total_idx ON orders (total) WHERE total > 0;
         CREATE TABLE order_lines (order_id bigint REFERENCES orders, n int,
             PRIMARY KEY (order_id, n));",
    ),
];

/// The catalog of `schema` with its own name replaced by `S`, one line per fact.
fn catalog(db: &str, schema: &str) -> String {
    let sql = format!(
        "SELECT string_agg(fact, E'\\n' ORDER BY fact) FROM (
           SELECT 'column ' || table_name || '.' || column_name || ' ' || data_type || ' ' ||
                  is_nullable || ' ' || coalesce(column_default, '-') || ' ' || is_identity AS fact
             FROM information_schema.columns WHERE table_schema = '{schema}'
           UNION ALL
           SELECT 'constraint ' || conrelid::regclass::text || ' ' || conname || ' ' ||
                  pg_get_constraintdef(oid) || ' -> ' || coalesce(confrelid::regclass::text, '-')
             FROM pg_constraint WHERE connamespace = '{schema}'::regnamespace AND contype <> 'n'
           UNION ALL
           SELECT 'index ' || indexdef FROM pg_indexes WHERE schemaname = '{schema}'
           UNION ALL
           SELECT 'sequence ' || sequencename || ' ' || data_type::text || ' ' || start_value ||
                  ' ' || increment_by || ' ' || coalesce(last_value, 0)
             FROM pg_sequences WHERE schemaname = '{schema}'
           UNION ALL
           SELECT 'comment ' || c.relname || ' ' || obj_description(c.oid, 'pg_class')
             FROM pg_class c WHERE c.relnamespace = '{schema}'::regnamespace
              AND obj_description(c.oid, 'pg_class') IS NOT NULL
         ) facts"
    );
    let _ = psql(db, "SET search_path TO pg_catalog");
    psql(db, &format!("SET search_path TO pg_catalog;\n{sql}")).replace(&format!("{schema}."), "S.")
}

async fn gateway(template: bool) -> (Gateway, String, Backend, tempfile::TempDir) {
    let db = fresh_database();
    let dir = tempfile::tempdir().unwrap();
    for (name, sql) in MIGRATIONS {
        std::fs::write(dir.path().join(name), sql).unwrap();
    }
    let backend = Backend::start("app").await;
    let yaml = if template {
        "provisioning:\n  template_schema: tenant_template\n"
    } else {
        ""
    };
    let options = GatewayOptions::new()
        .backend(&backend)
        .config(yaml)
        .store(&db)
        .args(["--migrations", &dir.path().display().to_string()]);
    (Gateway::start(options).await, db, backend, dir)
}

#[tokio::test]
async fn a_cloned_tenant_matches_a_migrated_one() {
    let (migrating, migrated_db, _b1, _d1) = gateway(false).await;
    migrating
        .create_tenant(json!({"id": "acme", "name": "Acme", "domains": ["acme.test"]}))
        .await;
    let (cloning, cloned_db, _b2, _d2) = gateway(true).await;
    for id in ["acme", "globex"] {
        cloning
            .create_tenant(json!({"id": id, "name": id, "domains": [format!("{id}.test")]}))
            .await;
    }
    // Use the template's sequences: a clone must start afresh anyway.
    psql(&cloned_db, "SELECT nextval('tenant_template.invoice_no'); SELECT nextval('tenant_template.users_id_seq')");
    let expected = catalog(&migrated_db, "acme");
    assert!(expected.contains("-> S.users"), "{expected}");
    assert!(expected.contains("orders_total_idx"), "{expected}");
    assert_eq!(catalog(&cloned_db, "acme"), expected);
    assert_eq!(catalog(&cloned_db, "globex"), expected);
    assert_eq!(
        psql(
            &cloned_db,
            "SELECT string_agg(name, ',' ORDER BY name) FROM globex.gateway_migrations"
        ),
        "0001_init.sql,0002_orders.sql"
    );
    // The clone works on its own: sequences and foreign keys in its schema.
    psql(
        &cloned_db,
        "INSERT INTO globex.users (email) VALUES ('a@x'); INSERT INTO globex.orders (user_id) VALUES (1);
         INSERT INTO globex.pages (title) VALUES ('p');",
    );
    assert_eq!(
        psql(&cloned_db, "SELECT id || ',' || invoice FROM globex.orders"),
        "1,1000"
    );
    assert_eq!(psql(&cloned_db, "SELECT count(*) FROM acme.users"), "0");
    psql(&cloned_db, "DROP SCHEMA tenant_template CASCADE");
    assert_eq!(
        psql(&cloned_db, "SELECT count(*) FROM globex.orders"),
        "1",
        "nothing depends on the template"
    );
}
