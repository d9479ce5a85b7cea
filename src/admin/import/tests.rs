//! The import's parsing: CSV headers and rows, NDJSON lines, bad rows by line.

use super::csv::split_csv;
use super::*;
use serde_json::json;

/// The whole file parsed, as the import takes it row by row.
fn parse(text: &str) -> Result<Vec<Parsed>, ImportError> {
    read(text).map(Iterator::collect)
}

/// Asserts that `text`'s header (line 1) refuses the import, saying `says`.
fn header_refused(text: &str, says: &str) {
    match parse(text) {
        Err(ImportError::Header { line: 1, message }) => {
            assert!(message.contains(says), "{text:?}: {message}")
        }
        other => panic!("{text:?}: {other:?}"),
    }
}

#[test]
fn csv_rows_of_one_tenant_merge_and_headers_reorder_columns() {
    let text = "tenant,domain,schema,name\nacme,a.test,acme_s,\"Acme, Inc.\"\nacme,b.test,,\n\nbeta,beta.test,,\n";
    let parsed = parse(text).unwrap();
    assert_eq!(parsed.len(), 2);
    let (line, acme) = &parsed[0];
    let acme = acme.as_ref().unwrap();
    assert_eq!(
        (*line, acme.name.as_deref(), acme.schema.as_deref()),
        (2, Some("Acme, Inc."), Some("acme_s"))
    );
    assert_eq!(acme.domains, ["a.test", "b.test"]);
    assert_eq!(parsed[1].0, 5);
}

#[test]
fn the_plan_column_and_field_are_read() {
    let csv = parse("id,domain,plan\nacme,acme.test,premium\n").unwrap();
    assert_eq!(csv[0].1.as_ref().unwrap().plan.as_deref(), Some("premium"));
    let ndjson = parse("{\"id\":\"a\",\"plan\":\"premium\"}\n").unwrap();
    assert_eq!(
        ndjson[0].1.as_ref().unwrap().plan.as_deref(),
        Some("premium")
    );
}

#[test]
fn the_cluster_column_and_field_are_read() {
    let csv = parse("id,domain,cluster\nacme,acme.test,eu2\n").unwrap();
    assert_eq!(csv[0].1.as_ref().unwrap().cluster.as_deref(), Some("eu2"));
    let ndjson = parse("{\"id\":\"a\",\"cluster\":\"eu1\"}\n").unwrap();
    assert_eq!(
        ndjson[0].1.as_ref().unwrap().cluster.as_deref(),
        Some("eu1")
    );
}

#[test]
fn headerless_csv_uses_id_schema_domain() {
    // One field that is also a column name (`schema` isolation) is data.
    let first = parse("acme,acme_s,acme.test,Acme,schema\n").unwrap();
    assert_eq!(first[0].1.as_ref().unwrap().id, "acme");
    let parsed = parse("t1,s1,t1.test\nt2,,t2.test,Two\n").unwrap();
    let t2 = parsed[1].1.as_ref().unwrap();
    assert_eq!(
        (t2.id.as_str(), t2.schema.as_deref(), t2.name.as_deref()),
        ("t2", None, Some("Two"))
    );
}

#[test]
fn ndjson_lines_are_tenants_and_bad_lines_are_numbered() {
    let parsed =
        parse("{\"id\":\"a\",\"domains\":[\"a.test\"]}\n\n{\"id\":\"b\",\"oops\":1}\n").unwrap();
    assert_eq!(parsed.len(), 2);
    assert!(parsed[0].1.is_ok());
    assert_eq!(parsed[1].0, 3);
    assert!(parsed[1].1.as_ref().unwrap_err().contains("unknown field"));
}

#[test]
fn csv_errors_name_the_problem() {
    assert!(split_csv("a,\"b").is_err());
    let parsed = parse("a,s,a.test\na,\"b\n").unwrap();
    assert_eq!(parsed[1].0, 2);
    assert_eq!(parsed[1].1.as_ref().unwrap_err(), "unclosed quote");
}

#[test]
fn a_first_line_naming_columns_in_any_order_is_the_header() {
    let parsed = parse("domain,id,schema,name\nhdr1.test,hdr1,hdr1_s,H1\n").unwrap();
    assert_eq!(parsed.len(), 1);
    let (line, spec) = &parsed[0];
    let spec = spec.as_ref().unwrap();
    assert_eq!(
        (*line, spec.id.as_str(), spec.schema.as_deref()),
        (2, "hdr1", Some("hdr1_s"))
    );
    assert_eq!(spec.domains, ["hdr1.test"]);
}

#[test]
fn a_header_with_an_unknown_repeated_or_no_id_column_refuses_the_import() {
    for (text, says) in [
        (
            "id,schema,domain,bogus\na,a,a.test,x\n",
            "unknown column 'bogus'",
        ),
        ("id,id,schema,domain\n", "column 'id' is named twice"),
        ("tenant,domain,id\n", "column 'id' is named twice"),
        ("domain,name\n", "no 'id' column"),
    ] {
        header_refused(text, says);
    }
}

#[test]
fn a_repeated_row_with_other_tenant_fields_is_a_bad_row() {
    let parsed = parse("x2,x2,x2.test,X\nx2,other,x2b.test,Y\nx2,,x2c.test,X\n").unwrap();
    assert_eq!(parsed.len(), 2);
    assert_eq!(
        parsed[0].1.as_ref().unwrap().domains,
        ["x2.test", "x2c.test"]
    );
    let (line, error) = &parsed[1];
    let error = error.as_ref().unwrap_err();
    assert_eq!(*line, 2);
    assert!(error.contains("line 1"), "{error}");
    assert!(error.contains("schema, name"), "{error}");
}

#[test]
fn rows_stream_in_line_order_with_bad_rows_after_the_open_tenant() {
    let text = "#c\n\"oops\na,sa,a.test\nb,\"x\na,,a2.test\nb,sb,b.test\n";
    let parsed = read(text).unwrap();
    assert_eq!(parsed.len(), 5, "data lines bound the tenants");
    let rows: Vec<(usize, bool)> = parsed.map(|(line, r)| (line, r.is_ok())).collect();
    assert_eq!(rows, [(2, false), (3, true), (4, false), (6, true)]);
    let a = parse(text).unwrap().swap_remove(1).1.unwrap();
    assert_eq!(a.domains, ["a.test", "a2.test"]);
}

#[test]
fn a_csv_header_names_further_columns_as_column_name() {
    let text = "id,schema,domain,column:paid_until,column:on_trial\n\
                acme,,acme.test,2027-12-31,true\n\
                beta,,beta.test,,false\n";
    let parsed = parse(text).unwrap();
    let acme = parsed[0].1.as_ref().unwrap();
    assert_eq!(
        serde_json::to_value(&acme.columns).unwrap(),
        json!({"paid_until": "2027-12-31", "on_trial": "true"}),
        "values are strings, cast by the store"
    );
    let beta = parsed[1].1.as_ref().unwrap();
    assert_eq!(
        serde_json::to_value(&beta.columns).unwrap(),
        json!({"on_trial": "false"}),
        "an empty field sets no column"
    );
    // The columns reach the validated tenant, as from `POST /v1/tenants`.
    let rules = SpecRules {
        strip_www: true,
        pools: vec![],
        clusters: vec![],
    };
    let tenant = acme.clone().validate(&rules).unwrap();
    assert_eq!(tenant.columns["paid_until"], json!("2027-12-31"));
    // A header may start with one, and tolerates spaces after the prefix.
    let first = parse("column: owner_id,id\n7,acme\n").unwrap();
    let acme = first[0].1.as_ref().unwrap();
    assert_eq!(
        (acme.id.as_str(), &acme.columns["owner_id"]),
        ("acme", &json!("7"))
    );
}

#[test]
fn headerless_csv_has_no_further_columns() {
    let parsed = parse("acme,,acme.test\n").unwrap();
    assert!(parsed[0].1.as_ref().unwrap().columns.is_empty());
    // A tenth field has no column to go to.
    let parsed = parse("acme,,acme.test,A,schema,active,default,free,eu1,x\n").unwrap();
    assert_eq!(
        parsed[0].1.as_ref().unwrap_err(),
        "10 fields, expected at most 9"
    );
}

#[test]
fn a_header_naming_a_further_column_twice_or_no_name_refuses_the_import() {
    for (text, says) in [
        ("id,column:a,column:a\n", "column 'column:a' is named twice"),
        ("id,domain,column:\n", "'column:' names no column"),
        ("id,colour\n", "or column:NAME"),
    ] {
        header_refused(text, says);
    }
}

#[test]
fn a_repeated_row_may_repeat_a_further_column_but_not_change_it() {
    let text = "id,domain,column:paid_until\n\
                a,a.test,2027-12-31\n\
                a,a2.test,\n\
                a,a3.test,2027-12-31\n\
                a,a4.test,2028-01-01\n\
                b,b.test,\n\
                b,b2.test,2027-12-31\n";
    let parsed = parse(text).unwrap();
    let rows: Vec<(usize, bool)> = parsed.iter().map(|(l, r)| (*l, r.is_ok())).collect();
    assert_eq!(rows, [(2, true), (5, false), (6, true), (7, false)]);
    assert_eq!(
        parsed[0].1.as_ref().unwrap().domains,
        ["a.test", "a2.test", "a3.test"]
    );
    let error = parsed[1].1.as_ref().unwrap_err();
    assert!(
        error.contains("line 2") && error.contains("column:paid_until"),
        "{error}"
    );
    // A column the first row left unset is set differently too.
    let error = parsed[3].1.as_ref().unwrap_err();
    assert!(error.contains("column:paid_until"), "{error}");
}

#[test]
fn ndjson_rows_take_columns_as_the_create_body_does() {
    let parsed = parse(
        "{\"id\":\"a\",\"columns\":{\"paid_until\":\"2027-12-31\",\"on_trial\":true,\"owner_id\":7}}\n\
         {\"id\":\"b\",\"columns\":[\"paid_until\"]}\n",
    )
    .unwrap();
    let a = parsed[0].1.as_ref().unwrap();
    assert_eq!(
        serde_json::to_value(&a.columns).unwrap(),
        json!({"paid_until": "2027-12-31", "on_trial": true, "owner_id": 7}),
        "JSON values are kept as typed"
    );
    let (line, error) = &parsed[1];
    let error = error.as_ref().unwrap_err();
    assert_eq!(*line, 2);
    assert!(error.contains("invalid type"), "{error}");
}
