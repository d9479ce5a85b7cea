//! A bulk import into a django-tenants deployment whose tenant model has
//! required columns Django fills in Python (the example's `Client`:
//! `paid_until`, `on_trial` and `owner`, none with a database default): the
//! rows give them (CSV `column:NAME`, NDJSON `columns`), they land in the
//! tenant table as Django reads them, and a row that cannot be written is
//! a bad row by line with the message a create would get, the others
//! imported.

mod common;

use bytes::Bytes;
use common::django::{self, DjangoSite};
use common::pg::psql;
use common::{run_command, Backend, Gateway, GatewayOptions};
use hyper::{Method, StatusCode};
use serde_json::{json, Value};

/// No `column_defaults`: every row must give the required columns itself.
const CONFIG: &str = "store:\n  django:\n    name_column: name\n";

/// `schema,name,owner,paid_until,on_trial` of these tenants, a line each.
fn client_rows(site: &DjangoSite, schemas: &[&str]) -> String {
    let list: Vec<String> = schemas.iter().map(|s| format!("'{s}'")).collect();
    psql(
        &site.database,
        &format!(
            "SELECT c.schema_name, c.name, u.username, c.paid_until, c.on_trial
               FROM customers_client c JOIN auth_user u ON u.id = c.owner_id
              WHERE c.schema_name IN ({}) ORDER BY 1",
            list.join(", ")
        ),
    )
}

/// The error messages of an import report, by line.
fn errors(report: &Value) -> Vec<(u64, String)> {
    report["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| {
            (
                e["line"].as_u64().unwrap(),
                e["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn imported_rows_give_the_django_tenant_tables_required_columns() {
    let Some(python) = django::python() else {
        return;
    };
    let site = DjangoSite::create(python).await;
    let app = Backend::start("app").await;
    let gw = Gateway::start(
        GatewayOptions::new()
            .backend(&app)
            .config(CONFIG)
            .store(&site.database)
            .django_layout(),
    )
    .await;
    let owner: i64 = psql(
        &site.database,
        "SELECT id FROM auth_user WHERE username = 'owner'",
    )
    .parse()
    .expect("the owner's id");

    // CSV through the API: `column:NAME` values are strings PostgreSQL
    // casts to the column's type; a repeated row adds a domain.
    let csv = format!(
        "id,domain,name,column:owner_id,column:paid_until,column:on_trial\n\
         csv1,csv1.test,CSV One,{owner},2027-12-31,false\n\
         csv1,csv1b.test,,,,\n\
         csv1,csv1c.test,,,2030-01-01,\n\
         csv2,csv2.test,CSV Two,{owner},2028-06-30,true\n\
         unpaid,unpaid.test,Unpaid,{owner},,true\n\
         soon,soon.test,Soon,{owner},soon,true\n"
    );
    let reply = gw
        .admin_raw(None, Method::POST, "/v1/tenants/import", Bytes::from(csv))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let report: Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(
        (report["imported"].as_u64(), report["failed"].as_u64()),
        (Some(2), Some(3)),
        "{report}"
    );
    let errors = errors(&report);
    let lines: Vec<u64> = errors.iter().map(|(line, _)| *line).collect();
    assert_eq!(
        lines,
        [4, 6, 7],
        "parse errors first, then the store's: {report}"
    );
    assert!(errors[0].1.contains("column:paid_until"), "{report}");
    assert!(
        errors[1]
            .1
            .contains("required column(s) without a value: paid_until"),
        "the 422's message: {report}"
    );
    assert!(
        errors[2]
            .1
            .contains("column 'paid_until': 'soon' is not a value of type date"),
        "{report}"
    );
    assert_eq!(
        client_rows(&site, &["csv1", "csv2", "unpaid", "soon"]),
        "csv1|CSV One|owner|2027-12-31|f\ncsv2|CSV Two|owner|2028-06-30|t"
    );
    assert_eq!(
        psql(
            &site.database,
            "SELECT string_agg(d.domain, ',' ORDER BY d.domain) FROM customers_domain d
               JOIN customers_client c ON c.id = d.tenant_id WHERE c.schema_name = 'csv1'"
        ),
        "csv1.test,csv1b.test"
    );
    let seen = gw.get("csv1b.test", "/").await.seen();
    assert_eq!(seen.header("x-tenant-id"), Some("csv1"));

    // NDJSON through the command line: `columns` as `POST /v1/tenants`
    // takes them, typed JSON values included.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tenants.ndjson");
    let rows = [
        json!({"id": "nd1", "name": "ND One", "domains": ["nd1.test"],
               "columns": {"owner_id": owner, "paid_until": "2029-01-01", "on_trial": true}}),
        json!({"id": "noowner", "name": "No owner",
               "columns": {"paid_until": "2029-01-01", "on_trial": true}}),
        json!({"id": "colour", "name": "Colour",
               "columns": {"owner_id": owner, "paid_until": "2029-01-01", "on_trial": true, "colour": "red"}}),
        json!({"id": "nobody", "name": "Nobody",
               "columns": {"owner_id": 999_999, "paid_until": "2029-01-01", "on_trial": true}}),
    ];
    let ndjson: Vec<String> = rows.iter().map(Value::to_string).collect();
    std::fs::write(&file, ndjson.join("\n")).unwrap();
    let args = site.command(&["tenants", "import", file.to_str().unwrap()]);
    let done = run_command(&args, CONFIG, &[]).await;
    assert!(!done.status.success(), "bad rows fail the command");
    assert!(
        done.stdout.contains("imported 1 tenant(s), 3 failed"),
        "{}\n{}",
        done.stdout,
        done.stderr
    );
    for said in [
        "line 2: required column(s) without a value: owner_id",
        "line 3: unknown column(s) of the tenant table: colour",
        "line 4: column 'owner_id': no row of",
    ] {
        assert!(done.stderr.contains(said), "{said}: {}", done.stderr);
    }
    assert_eq!(
        client_rows(&site, &["nd1", "noowner", "colour", "nobody"]),
        "nd1|ND One|owner|2029-01-01|t"
    );

    // Django's ORM reads the imported tenants like its own.
    let seen = site
        .manage(&[
            "shell",
            "-c",
            "from customers.models import Client\n\
             for c in Client.objects.filter(schema_name__in=['csv1', 'nd1']).order_by('schema_name'):\n    \
                 print(c.schema_name, c.on_trial, c.paid_until.isoformat(), c.owner.username)",
        ])
        .await;
    assert!(
        seen.contains("csv1 False 2027-12-31 owner\nnd1 True 2029-01-01 owner"),
        "{seen}"
    );
}
