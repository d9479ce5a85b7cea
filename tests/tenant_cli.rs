//! The store commands (`tenants …`, `domains …`, `setup-public`) against a
//! real PostgreSQL store, with no gateway running: they provision, list,
//! suspend, migrate and drop, and fail with the seed's wording. Against the
//! embedded store, only commands that add tenants create its file.

mod common;

use common::pg::{fresh_database, psql};
use common::{run_command, Finished};

/// Runs `tenant-gateway ARGS --store URL --migrations DIR`.
async fn cli(args: &[&str], store: &str, migrations: &str) -> Finished {
    let mut all = args.to_vec();
    all.extend(["--store", store, "--migrations", migrations]);
    run_command(&all, "", &[]).await
}

/// Runs `tenant-gateway ARGS --data FILE`: the embedded store.
async fn on_file(args: &[&str], file: &str) -> Finished {
    let mut all = args.to_vec();
    all.extend(["--data", file]);
    run_command(&all, "", &[]).await
}

fn ok(out: &Finished) -> &str {
    assert!(out.status.success(), "{}{}", out.stdout, out.stderr);
    &out.stdout
}

fn failed(out: &Finished) -> &str {
    assert!(!out.status.success(), "unexpected success: {}", out.stdout);
    &out.stderr
}

#[tokio::test]
async fn tenant_lifecycle_from_the_command_line() {
    let db = fresh_database();
    let files = tempfile::tempdir().unwrap();
    let dir = files.path().display().to_string();
    std::fs::write(
        files.path().join("0001_init.sql"),
        "CREATE TABLE users (id serial PRIMARY KEY);",
    )
    .unwrap();
    let run = |args: &'static [&'static str]| cli(args, &db, &dir);

    let out = run(&[
        "tenants",
        "create",
        "--id",
        "acme",
        "--name",
        "Acme",
        "--domain",
        "acme.test",
    ])
    .await;
    assert!(ok(&out).contains("Tenant 'acme' created"), "{}", out.stdout);
    assert_eq!(psql(&db, "SELECT count(*) FROM acme.users"), "0");

    let out = run(&["tenants", "create", "--id", "acme", "--name", "Acme"]).await;
    assert!(
        failed(&out).contains("Tenant with ID 'acme' already exists"),
        "{}",
        out.stderr
    );
    let out = run(&[
        "tenants",
        "create",
        "--id",
        "other",
        "--isolation",
        "shared",
    ])
    .await;
    assert!(
        failed(&out)
            .contains("Invalid isolation type: valid options are schema, database, table, cache"),
        "{}",
        out.stderr
    );

    let out = run(&["setup-public", "--domain", "example.test"]).await;
    ok(&out);
    let out = run(&["domains", "add", "shop.acme.test", "--tenant", "acme"]).await;
    ok(&out);
    let out = run(&["tenants", "suspend", "acme"]).await;
    ok(&out);
    let list = run(&["tenants", "list"]).await;
    let acme = ok(&list)
        .lines()
        .find(|l| l.starts_with("acme "))
        .unwrap()
        .to_owned();
    assert!(
        acme.contains("suspended") && acme.contains("acme.test, shop.acme.test"),
        "{acme}"
    );
    assert!(list
        .stdout
        .lines()
        .any(|l| l.starts_with("public ") && l.contains("example.test")));

    let out = run(&["tenants", "resume", "acme"]).await;
    ok(&out);
    let out = run(&["domains", "remove", "shop.acme.test"]).await;
    ok(&out);
    let show = run(&["tenants", "show", "acme"]).await;
    let shown: serde_json::Value = serde_json::from_str(ok(&show)).unwrap();
    assert_eq!(shown["status"], "active");
    assert_eq!(shown["domains"].as_array().unwrap().len(), 1);

    std::fs::write(
        files.path().join("0002_pages.sql"),
        "CREATE TABLE pages (id serial PRIMARY KEY);",
    )
    .unwrap();
    let out = run(&["tenants", "migrate", "acme"]).await;
    assert!(
        ok(&out).contains("applied 0002_pages.sql"),
        "{}",
        out.stdout
    );
    let out = run(&["tenants", "migrate-all", "--parallel", "2"]).await;
    assert!(ok(&out).contains("0 migrated"), "{}", out.stdout);
    assert!(
        out.stderr.contains("progress: 2/2 (0 failed)"),
        "{}",
        out.stderr
    );

    let out = run(&["tenants", "delete", "acme", "--drop"]).await;
    ok(&out);
    assert_eq!(
        psql(
            &db,
            "SELECT count(*) FROM pg_namespace WHERE nspname = 'acme'"
        ),
        "0"
    );
    let out = run(&["tenants", "show", "acme"]).await;
    assert!(
        failed(&out).contains("'acme' does not exist"),
        "{}",
        out.stderr
    );
}

#[tokio::test]
async fn an_unreachable_store_is_named_plainly() {
    let dir = tempfile::tempdir().unwrap();
    let out = cli(
        &["tenants", "list"],
        "postgres://postgres@127.0.0.1:1/nothing",
        &dir.path().display().to_string(),
    )
    .await;
    assert!(
        failed(&out).contains("Cannot connect to database server"),
        "{}",
        out.stderr
    );
}

#[tokio::test]
async fn commands_that_need_tenants_refuse_a_missing_store_file_and_create_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("typo").join("gw.db").display().to_string();
    for args in [
        &["tenants", "list"][..],
        &["tenants", "show", "acme"],
        &["tenants", "suspend", "acme"],
        &["tenants", "delete", "acme"],
        &["domains", "remove", "acme.test"],
    ] {
        let out = on_file(args, &data).await;
        assert!(
            failed(&out).contains(&format!(
                "no store at {data} (create one with `serve` or `tenants create`)"
            )),
            "{args:?}: {}",
            out.stderr
        );
    }
    assert!(
        !dir.path().join("typo").exists(),
        "a refused command created the store's directory"
    );

    let out = on_file(&["tenants", "create", "--id", "acme"], &data).await;
    assert!(ok(&out).contains("Tenant 'acme' created"), "{}", out.stdout);
    let list = on_file(&["tenants", "list"], &data).await;
    assert!(
        ok(&list).lines().any(|l| l.starts_with("acme ")),
        "{}",
        list.stdout
    );
}
