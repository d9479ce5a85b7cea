//! Bulk import: many tenants in one call (`POST /v1/tenants/import`) or one
//! command (`tenants import FILE`), bad rows reported by line number while
//! the good ones are imported and routable at once.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{api_error, run_command, Backend, Gateway, GatewayOptions};
use hyper::{Method, StatusCode};
use serde_json::{json, Value};

#[tokio::test]
async fn csv_import_routes_good_rows_and_reports_bad_ones_by_line() {
    let app = Backend::start("app").await;
    let gw = Gateway::start(GatewayOptions::new().backend(&app)).await;
    gw.create_tenant(json!({"id": "taken", "name": "Taken", "domains": ["taken.test"]}))
        .await;
    // Cached as unknown before the import: the import must make it routable at once.
    assert_eq!(gw.get("beta.test", "/").await.status, StatusCode::NOT_FOUND);

    let csv = "id,schema,domain,name\n\
               alpha,alpha_s,alpha.test,\"Alpha, Inc.\"\n\
               alpha,,alpha2.test,\n\
               Bad Id,,bad.test,\n\
               beta,,beta.test,Beta\n\
               dup,,taken.test,Dup\n\
               gamma,pg_gamma,gamma.test,\n";
    let reply = gw
        .admin_raw(None, Method::POST, "/v1/tenants/import", Bytes::from(csv))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let report: Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(report["imported"], 2, "{report}");
    assert_eq!(report["failed"], 3, "{report}");
    let lines: Vec<u64> = report["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["line"].as_u64().unwrap())
        .collect();
    assert_eq!(
        lines,
        [4, 7, 6],
        "validation errors first, then store conflicts: {report}"
    );
    assert!(report["errors"][1]["message"]
        .as_str()
        .unwrap()
        .contains("pg_gamma"));
    assert!(report["errors"][2]["message"]
        .as_str()
        .unwrap()
        .contains("taken.test"));

    for (host, tenant, schema) in [
        ("alpha.test", "alpha", "alpha_s"),
        ("alpha2.test", "alpha", "alpha_s"),
        ("beta.test", "beta", "beta"),
    ] {
        let reply = gw.get(host, "/").await;
        assert_eq!(reply.status, StatusCode::OK, "{host}");
        let seen = reply.seen();
        assert_eq!(seen.header("x-tenant-id"), Some(tenant), "{host}");
        assert_eq!(seen.header("x-tenant-schema"), Some(schema), "{host}");
    }
    let (_, alpha) = gw.admin(Method::GET, "/v1/tenants/alpha", None).await;
    assert_eq!(alpha["name"], "Alpha, Inc.");
    assert_eq!(
        gw.get("gamma.test", "/").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn ndjson_import_takes_api_bodies_one_per_line() {
    let app = Backend::start("app").await;
    let gw = Gateway::start(GatewayOptions::new().backend(&app)).await;
    let body = "{\"id\": \"one\", \"name\": \"One\", \"isolation\": \"table\", \"domains\": [\"one.test\"]}\n\
                {\"id\": \"two\", \"domains\": [\"two.test\"], \"colour\": \"red\"}\n";
    let reply = gw
        .admin_raw(None, Method::POST, "/v1/tenants/import", Bytes::from(body))
        .await;
    let report: Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(
        (report["imported"].as_u64(), report["failed"].as_u64()),
        (Some(1), Some(1)),
        "{report}"
    );
    assert!(report["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("unknown field `colour`"));
    let seen = gw.get("one.test", "/").await.seen();
    assert_eq!(seen.header("x-tenant-id"), Some("one"));
    assert_eq!(
        seen.header("x-tenant-schema"),
        None,
        "table isolation sends only the id"
    );
}

#[tokio::test]
async fn an_empty_import_is_a_json_400() {
    let gw = Gateway::start(GatewayOptions::new()).await;
    let reply = gw
        .admin_raw(
            None,
            Method::POST,
            "/v1/tenants/import",
            Bytes::from("  \n"),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let error: Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(error["error"]["code"], "bad_request");
}

/// `POST /v1/tenants/import` with `body`: the status and the JSON answer.
async fn import(gw: &Gateway, body: impl Into<Bytes>) -> (StatusCode, Value) {
    let reply = gw
        .admin_raw(None, Method::POST, "/v1/tenants/import", body.into())
        .await;
    let json = serde_json::from_slice(&reply.body)
        .unwrap_or_else(|e| panic!("a JSON answer ({e}): {}", reply.text()));
    (reply.status, json)
}

/// The message of the one bad row (on `line`) of a report that imported
/// one tenant.
fn one_bad_row(report: &Value, line: u64) -> &str {
    assert_eq!(
        (report["imported"].as_u64(), report["failed"].as_u64()),
        (Some(1), Some(1)),
        "{report}"
    );
    assert_eq!(report["errors"][0]["line"], line, "{report}");
    report["errors"][0]["message"].as_str().unwrap()
}

#[tokio::test]
async fn a_csv_header_may_name_its_columns_in_any_order() {
    let gw = Gateway::start(GatewayOptions::new()).await;
    let (status, report) = import(&gw, "domain,id,schema,name\nhdr1.test,hdr1,hdr1_s,H1\n").await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(
        (report["imported"].as_u64(), report["failed"].as_u64()),
        (Some(1), Some(0)),
        "the header is no tenant: {report}"
    );
    let (_, tenant) = gw.admin(Method::GET, "/v1/tenants/hdr1", None).await;
    assert_eq!(
        (
            &tenant["name"],
            &tenant["schema"],
            &tenant["domains"][0]["domain"]
        ),
        (&json!("H1"), &json!("hdr1_s"), &json!("hdr1.test")),
        "{tenant}"
    );
}

#[tokio::test]
async fn a_csv_header_with_an_unknown_or_repeated_column_refuses_the_whole_import() {
    let gw = Gateway::start(GatewayOptions::new()).await;
    for (csv, says) in [
        (
            "id,schema,domain,bogus\nhdr2,hdr2,hdr2.test,x\n",
            "unknown column 'bogus'",
        ),
        (
            "id,id,schema,domain\nhdr2,hdr2,hdr2,hdr2.test\n",
            "column 'id' is named twice",
        ),
    ] {
        let (status, body) = import(&gw, csv).await;
        let message = api_error(status, &body, StatusCode::BAD_REQUEST, "bad_request");
        assert!(message.contains(says), "{csv:?}: {message}");
        assert!(message.starts_with("line 1: "), "{message}");
    }
    let (_, listed) = gw.admin(Method::GET, "/v1/tenants", None).await;
    assert_eq!(listed["tenants"], json!([]), "nothing imported: {listed}");
}

#[tokio::test]
async fn a_repeated_csv_row_may_add_a_domain_but_not_change_the_tenant() {
    let gw = Gateway::start(GatewayOptions::new()).await;
    let csv = "x2,x2,x2.test\n\
               x2,DIFFERENT,x2b.test\n\
               x2,x2,x2c.test\n\
               x2,,x2d.test\n";
    let (status, report) = import(&gw, csv).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    let message = one_bad_row(&report, 2);
    assert!(
        message.contains("line 1") && message.contains("schema"),
        "{message}"
    );
    let (_, tenant) = gw.admin(Method::GET, "/v1/tenants/x2", None).await;
    assert_eq!(tenant["schema"], "x2", "{tenant}");
    let domains: Vec<&str> = tenant["domains"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["domain"].as_str().unwrap())
        .collect();
    assert_eq!(domains, ["x2.test", "x2c.test", "x2d.test"], "{tenant}");
}

#[tokio::test]
async fn an_import_body_that_is_not_utf8_is_a_json_400() {
    let gw = Gateway::start(GatewayOptions::new()).await;
    let (status, body) = import(&gw, &b"\xff\xfe\x00garbage"[..]).await;
    let message = api_error(status, &body, StatusCode::BAD_REQUEST, "bad_request");
    assert!(message.contains("UTF-8"), "{message}");
}

/// Runs `tenant-gateway tenants import CSV --data STORE`.
async fn cli_import(csv: &std::path::Path, store: &std::path::Path) -> common::Finished {
    let (csv, store) = (csv.to_str().unwrap(), store.to_str().unwrap());
    run_command(&["tenants", "import", csv, "--data", store], "", &[]).await
}

#[tokio::test]
async fn the_cli_imports_into_the_store_a_running_gateway_reads() {
    let app = Backend::start("app").await;
    let gw = Gateway::start(GatewayOptions::new().backend(&app)).await;
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("tenants.csv");
    std::fs::write(&csv, "cli1,,cli1.test\ncli2,,cli2.test\n-bad,,x.test\n").unwrap();
    let data = gw.data_file();
    let done = cli_import(&csv, &data).await;
    assert!(!done.status.success(), "a bad row makes the command fail");
    assert!(
        done.stdout.contains("imported 2 tenant(s), 1 failed"),
        "{}",
        done.stdout
    );
    assert!(
        done.stderr.contains("line 3: invalid tenant id '-bad'"),
        "{}",
        done.stderr
    );
    // Not a terminal: a plain progress line per batch, no bar.
    assert!(
        done.stderr.contains("progress: 3/3 (1 failed)"),
        "{}",
        done.stderr
    );
    // The gateway's warm table learns of the CLI's rows from the store
    // file's change log, within a poll.
    for host in ["cli1.test", "cli2.test"] {
        common::eventually(Duration::from_secs(3), host, || async {
            gw.get(host, "/").await.status == StatusCode::OK
        })
        .await;
    }

    // A bad header refuses the whole file.
    std::fs::write(&csv, "id,schema,domain,bogus\ncli3,,cli3.test,x\n").unwrap();
    let done = cli_import(&csv, &data).await;
    assert!(!done.status.success());
    assert!(
        done.stderr.contains("line 1: unknown column 'bogus'"),
        "{}",
        done.stderr
    );
    assert_eq!(gw.get("cli3.test", "/").await.status, StatusCode::NOT_FOUND);

    // ... before any store is opened: a mistyped path gets no new, empty store.
    let mistyped = dir.path().join("typo").join("gw.db");
    let done = cli_import(&csv, &mistyped).await;
    assert!(!done.status.success());
    assert!(!dir.path().join("typo").exists(), "no store is created");
}

#[tokio::test]
async fn the_cli_import_draws_a_progress_bar_in_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("tenants.csv");
    std::fs::write(&csv, "tty1,,tty1.test\ntty2,,tty2.test\n-bad,,x.test\n").unwrap();
    let store = dir.path().join("gw.db");
    // `script` runs the command on a pseudo-terminal (both stdout and
    // stderr) and copies what it wrote to its own stdout.
    let command = format!(
        "{} tenants import {} --data {}",
        env!("CARGO_BIN_EXE_tenant-gateway"),
        csv.display(),
        store.display()
    );
    let out = tokio::process::Command::new("script")
        .args(["--quiet", "--return", "--command", &command, "/dev/null"])
        .env("TERM", "xterm")
        .output()
        .await
        .expect("script (util-linux) runs");
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "a bad row still fails: {screen}");
    assert!(screen.contains("3/3 tenants (1 failed)"), "{screen}");
    assert!(!screen.contains("progress:"), "a bar, not lines: {screen}");
    assert!(
        screen.contains("imported 2 tenant(s), 1 failed"),
        "{screen}"
    );
}

#[tokio::test]
async fn the_embedded_store_reports_rows_with_columns_as_bad_rows_by_line() {
    rows_with_columns_are_bad_rows(GatewayOptions::new()).await;
}

#[tokio::test]
async fn the_native_postgres_layout_reports_rows_with_columns_as_bad_rows_by_line() {
    let database = common::pg::fresh_database();
    rows_with_columns_are_bad_rows(GatewayOptions::new().store(&database)).await;
}

/// A store without django-tenants' table imports the rows without
/// `columns` and refuses the others, each by line with the 422's message.
async fn rows_with_columns_are_bad_rows(options: GatewayOptions) {
    let gw = Gateway::start(options).await;
    let refused = "columns can be set only with the django-tenants layout";
    let csv = "id,domain,column:paid_until\n\
               plain,plain.test,\n\
               paid,paid.test,2027-12-31\n";
    let (status, report) = import(&gw, csv).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    // Line 2's empty field sets no column.
    let message = one_bad_row(&report, 3);
    assert!(message.contains(refused), "the 422's message: {message}");

    let ndjson = "{\"id\": \"nd\", \"domains\": [\"nd.test\"]}\n\
                  {\"id\": \"ndcols\", \"columns\": {\"on_trial\": true}}\n";
    let (_, report) = import(&gw, ndjson).await;
    let message = one_bad_row(&report, 2);
    assert!(message.contains(refused), "{message}");
    for (id, exists) in [
        ("plain", true),
        ("paid", false),
        ("nd", true),
        ("ndcols", false),
    ] {
        let (status, _) = gw
            .admin(Method::GET, &format!("/v1/tenants/{id}"), None)
            .await;
        assert_eq!(status == StatusCode::OK, exists, "{id}");
    }
}
