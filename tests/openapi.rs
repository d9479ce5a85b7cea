//! The admin API's OpenAPI description (`GET /v1/openapi.json`) holds up:
//! it is behind the token, valid OpenAPI 3.1 (openapi-spec-validator), every
//! operation it lists is served and no other method is, and schemathesis,
//! run against a live gateway on PostgreSQL (so creates provision schemas),
//! finds no server error and no answer that does not conform to it.
//!
//! The Python tools come from the virtualenv `scripts/test.sh` makes
//! (`tests/requirements-openapi.txt`); without it these tests say so and
//! skip, as the Django tests do.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use bytes::Bytes;
use common::django::python;
use common::pg::{fresh_database, psql};
use common::{api_error, Backend, Gateway, GatewayOptions, ProvisioningFiles, TOKEN};
use hyper::{Method, StatusCode};
use serde_json::{json, Value};

/// Examples schemathesis tries per operation and phase, and its seed: a
/// fixed amount of work (a few minutes on one core) that CI can repeat.
const EXAMPLES: &str = "25";
const SEED: &str = "20261207";

/// The checks schemathesis runs on every answer: all of them (no server
/// error; status, content type, headers and body as described; 405 with
/// `Allow` for other methods; the token enforced; deleted resources gone),
/// but the two that read the schema as the whole of the validation: what
/// the gateway accepts also depends on its config (cluster and pool names,
/// whether ACME is on), and an import reports bad rows in a 200.
const CHECKS: &str = "all";
const EXCLUDED_CHECKS: &str = "positive_data_acceptance,negative_data_rejection";

const MIGRATIONS: &[(&str, &str)] = &[(
    "0001_init.sql",
    "CREATE TABLE pages (id serial PRIMARY KEY, title text NOT NULL);",
)];

/// A gateway with a token, on a fresh PostgreSQL registry that provisions.
struct Fixture {
    gw: Gateway,
    db: String,
    _backend: Backend,
    _files: ProvisioningFiles,
}

async fn start() -> Fixture {
    let files = ProvisioningFiles::new(MIGRATIONS, None);
    let backend = Backend::start("app").await;
    let db = fresh_database();
    let options = GatewayOptions::new()
        .with_token()
        .backend(&backend)
        .store(&db)
        .provisioning(&files);
    Fixture {
        gw: Gateway::start(options).await,
        db,
        _backend: backend,
        _files: files,
    }
}

async fn fetch_spec(gw: &Gateway) -> Value {
    let reply = gw
        .admin_raw(Some(TOKEN), Method::GET, "/v1/openapi.json", Bytes::new())
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.header("content-type"), Some("application/json"));
    serde_json::from_slice(&reply.body).expect("the spec is JSON")
}

/// `(METHOD, path)` of every operation in `spec`.
fn operations(spec: &Value) -> Vec<(Method, String)> {
    let mut all = Vec::new();
    for (path, item) in spec["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
            all.push((method, path.clone()));
        }
    }
    all
}

/// `path` with every `{parameter}` filled in.
fn concrete(path: &str) -> String {
    path.replace("{id}", "no-such-id")
        .replace("{domain}", "no-such.example")
}

/// The virtualenv's tool `name`, next to its `python`.
fn tool(python: &Path, name: &str) -> PathBuf {
    python.with_file_name(name)
}

#[tokio::test]
async fn the_spec_is_valid_openapi_3_1_behind_the_token() {
    let fx = start().await;
    let (status, body) = fx
        .gw
        .admin_as(None, Method::GET, "/v1/openapi.json", None)
        .await;
    assert!(
        status == StatusCode::UNAUTHORIZED,
        "{}",
        api_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized")
    );

    let spec = fetch_spec(&fx.gw).await;
    assert_eq!(spec["openapi"], "3.1.0");
    let mut ids: Vec<&str> = spec["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|item| item.as_object().unwrap().values())
        .map(|op| {
            op["operationId"]
                .as_str()
                .expect("every operation has an id")
        })
        .collect();
    let count = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), count, "operation ids are unique: {ids:?}");

    let Some(python) = python() else { return };
    let file = tempfile::NamedTempFile::new().expect("temporary file");
    std::fs::write(file.path(), spec.to_string()).expect("write the spec");
    let out = Command::new(tool(&python, "openapi-spec-validator"))
        .arg(file.path())
        .output()
        .expect("run openapi-spec-validator");
    assert!(
        out.status.success(),
        "openapi-spec-validator refused the spec:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn every_listed_operation_is_served_and_no_other_method() {
    let fx = start().await;
    let spec = fetch_spec(&fx.gw).await;
    let listed = operations(&spec);
    assert!(listed.len() >= 18, "{listed:?}");
    for (method, path) in &listed {
        let body = match *method {
            Method::POST | Method::PATCH => Bytes::from_static(b"{}"),
            _ => Bytes::new(),
        };
        let reply = fx
            .gw
            .admin_raw(Some(TOKEN), method.clone(), &concrete(path), body)
            .await;
        let unrouted = reply.status == StatusCode::METHOD_NOT_ALLOWED
            || reply.text().contains("no such endpoint");
        assert!(
            !unrouted,
            "{method} {path} is listed but not served: {}",
            reply.text()
        );
    }
    let others = [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
    ];
    for path in spec["paths"].as_object().unwrap().keys() {
        for method in &others {
            if listed.contains(&(method.clone(), path.clone())) {
                continue;
            }
            let reply = fx
                .gw
                .admin_raw(Some(TOKEN), method.clone(), &concrete(path), Bytes::new())
                .await;
            assert_eq!(
                reply.status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path} is served but not listed: {}",
                reply.text()
            );
        }
    }
}

#[tokio::test]
async fn malformed_paths_and_queries_are_4xx_json_errors() {
    let fx = start().await;
    for (method, path) in [
        (Method::GET, "/v1/tenants/%00"),
        (Method::GET, "/v1/tenants/a%00b"),
        (Method::GET, "/v1/tenants/%ff"),
        (Method::DELETE, "/v1/tenants/%00"),
        (Method::POST, "/v1/tenants/%00/migrate"),
        (Method::GET, "/v1/domains/%00"),
        (Method::DELETE, "/v1/domains/%00.example"),
        (Method::GET, "/v1/jobs/%00"),
        (Method::GET, "/v1/tenants?after=%00"),
        (Method::GET, "/v1/tenants?limit=%00"),
        (Method::DELETE, "/v1/tenants/x?drop=%00"),
        (Method::GET, "/v1/resolve?host=%00"),
        (Method::GET, "/v1/resolve?host=a%00b.example"),
    ] {
        let reply = fx
            .gw
            .admin_raw(Some(TOKEN), method.clone(), path, Bytes::new())
            .await;
        let body: Value = serde_json::from_slice(&reply.body)
            .unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e}): {}", reply.text()));
        assert!(
            reply.status.is_client_error() && body["error"]["code"].is_string(),
            "{method} {path}: {} {body}",
            reply.status
        );
    }
}

#[tokio::test]
async fn a_leftover_schema_or_a_missing_one_is_a_conflict_not_a_server_error() {
    let fx = start().await;
    psql(&fx.db, "CREATE SCHEMA leftover");
    let (status, body) = fx
        .gw
        .admin(
            Method::POST,
            "/v1/tenants",
            Some(json!({ "id": "newcomer", "name": "N", "schema": "leftover" })),
        )
        .await;
    assert!(
        status == StatusCode::CONFLICT,
        "{}",
        api_error(status, &body, StatusCode::CONFLICT, "conflict")
    );
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("leftover"), "{message}");
    // Registered without its schema: migrating it cannot work.
    fx.gw
        .create_tenant(json!({ "id": "bare", "name": "B", "provision": false }))
        .await;
    let (status, body) = fx
        .gw
        .admin(Method::POST, "/v1/tenants/bare/migrate", None)
        .await;
    assert!(
        status == StatusCode::CONFLICT,
        "{}",
        api_error(status, &body, StatusCode::CONFLICT, "conflict")
    );
}

#[tokio::test]
async fn schemathesis_finds_no_server_error_and_no_nonconforming_answer() {
    let Some(python) = python() else { return };
    let fx = start().await;
    let base = format!("http://{}", fx.gw.admin_addr);
    let reports = tempfile::tempdir().expect("temporary directory");
    let out = Command::new(tool(&python, "schemathesis"))
        .current_dir(reports.path())
        .args(["run", &format!("{base}/v1/openapi.json"), "--url", &base])
        .args(["--header", &format!("Authorization: Bearer {TOKEN}")])
        .args(["--checks", CHECKS, "--exclude-checks", EXCLUDED_CHECKS])
        .args(["--max-examples", EXAMPLES, "--seed", SEED])
        .args(["--workers", "1", "--generation-database", "none"])
        .args(["--no-color", "--output-truncate", "false"])
        .args(["--report", "junit", "--report-junit-path", "junit.xml"])
        .output()
        .expect("run schemathesis");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{report}");
    assert!(
        out.status.success(),
        "schemathesis found problems:\n{report}\ngateway log:\n{}",
        fx.gw.log()
    );
    // Every operation was tested (a skipped one would also exit 0), but
    // the spec's own, which schemathesis leaves out.
    let junit = std::fs::read_to_string(reports.path().join("junit.xml")).expect("junit report");
    for (method, path) in operations(&fetch_spec(&fx.gw).await) {
        if path == "/v1/openapi.json" {
            continue;
        }
        let case = format!("<testcase name=\"{method} {path}\"");
        let tested = junit
            .split(&case)
            .nth(1)
            .map(|rest| rest.split("</testcase>").next());
        assert!(
            matches!(tested, Some(Some(case)) if !case.contains("<skipped")),
            "schemathesis did not test {method} {path}:\n{junit}"
        );
    }
}
