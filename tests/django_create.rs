//! A tenant created through the gateway is a complete django-tenants
//! tenant: the example project (whose `Client` has `paid_until` and
//! `on_trial` with Python defaults and a required `owner`) behind the
//! gateway with `--store-layout django-tenants`, `column_defaults` for the
//! columns Django fills in Python, and new schemas cloned from
//! `tenant_template`, which Django keeps migrated. Django's ORM sees the new
//! tenant, serves its pages, and migrates it like one it made itself; a
//! create Django could not use is refused before anything is written.

mod common;

use common::django::{self, DjangoSite, Gunicorn};
use common::pg::psql;
use common::{api_error, run_command, Gateway, GatewayOptions};
use hyper::{Method, StatusCode};
use serde_json::{json, Value};

const CONFIG: &str = "store:
  django:
    name_column: name
    column_defaults: {paid_until: \"current_date + 365\", on_trial: \"true\"}
provisioning:
  template_schema: tenant_template
  template_copy_data: [django_content_type]
";

async fn gateway_for(site: &DjangoSite, app: &Gunicorn) -> Gateway {
    let options = GatewayOptions::new()
        .backend_url(&app.url)
        .config(CONFIG)
        .store(&site.database)
        .django_layout();
    Gateway::start(options).await
}

/// The id of the example's user `owner`.
fn owner_id(site: &DjangoSite) -> i64 {
    psql(
        &site.database,
        "SELECT id FROM auth_user WHERE username = 'owner'",
    )
    .parse()
    .expect("the owner's id")
}

/// A migration added to the project after the tenant was created: a new
/// table in every tenant schema.
const LATER_MIGRATION: &str = "from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [(\"notes\", \"0001_initial\")]

    operations = [
        migrations.CreateModel(
            name=\"Tag\",
            fields=[
                (\"id\", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name=\"ID\")),
                (\"label\", models.CharField(max_length=50)),
            ],
        ),
    ]
";

/// A create refused with 422 for one column, named in its message and its
/// `columns` list.
fn refused_naming(status: StatusCode, body: &Value, column: &str) {
    let message = api_error(
        status,
        body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unprocessable_entity",
    );
    assert!(message.contains(column), "{message}");
    assert_eq!(body["error"]["columns"], json!([column]), "{body}");
}

#[tokio::test]
async fn a_tenant_created_through_the_gateway_is_served_and_migrated_by_django() {
    let Some(python) = django::python() else {
        return;
    };
    let site = DjangoSite::create_copy(python).await;
    let app = site.serve("gateway", "", 1).await;
    let gw = gateway_for(&site, &app).await;
    let owner = owner_id(&site);

    let created = gw
        .create_tenant(
            json!({"id": "newco", "name": "NewCo", "domains": ["newco.test"],
                              "columns": {"owner_id": owner}}),
        )
        .await;
    assert_eq!(created["schema"], "newco", "{created}");

    // Django's ORM sees it, with the operator's defaults and the owner.
    let seen = site
        .manage(&[
            "shell",
            "-c",
            "from customers.models import Client\n\
             c = Client.objects.get(schema_name='newco')\n\
             print(c.name, c.on_trial, c.paid_until.isoformat(), c.owner.username)",
        ])
        .await;
    let next_year = psql(&site.database, "SELECT (current_date + 365)::text");
    let expected = format!("NewCo True {next_year} owner");
    assert!(
        seen.lines().any(|l| l == expected),
        "{seen}\nwanted {expected}"
    );

    // Its pages are served by Django: its tables exist.
    let reply = gw.get("newco.test", "/notes/").await;
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "{}\n{}",
        reply.text(),
        app.log()
    );
    let notes: Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(notes, json!({"schema": "newco", "notes": []}));
    let rows = |schema: &str, table: &str| {
        psql(
            &site.database,
            &format!("SELECT count(*) FROM {schema}.{table}"),
        )
    };
    for table in ["django_migrations", "django_content_type"] {
        assert_eq!(
            rows("newco", table),
            rows("tenant_template", table),
            "{table}"
        );
    }

    // A migration added afterwards is applied to it like to any tenant.
    std::fs::write(
        site.project.join("notes/migrations/0002_tag.py"),
        LATER_MIGRATION,
    )
    .unwrap();
    let out = site.manage(&["migrate_schemas", "--noinput"]).await;
    assert!(!out.contains("already exists"), "{out}");
    assert!(
        out.contains("standard:newco") && out.contains("Applying notes.0002_tag... OK"),
        "{out}"
    );
    let applied = "SELECT count(*) FROM newco.django_migrations WHERE app = 'notes'";
    assert_eq!(psql(&site.database, applied), "2");
    assert_eq!(rows("newco", "notes_tag"), "0");
    // Django can add rows to it: its sequences continue after the copied rows.
    site.manage(&[
        "shell",
        "-c",
        "from django.contrib.contenttypes.models import ContentType\n\
         from django_tenants.utils import schema_context\n\
         with schema_context('newco'):\n    ContentType.objects.create(app_label='x', model='y')",
    ])
    .await;

    // A tenant created after that is cloned from the template as it is now.
    gw.create_tenant(
        json!({"id": "later", "name": "Later", "domains": ["later.test"],
                           "columns": {"owner_id": owner}}),
    )
    .await;
    assert_eq!(rows("later", "notes_tag"), "0");
    let again = site.manage(&["migrate_schemas", "--noinput"]).await;
    assert!(!again.contains("already exists"), "{again}");
    assert!(
        !again.contains("Applying"),
        "nothing left to apply: {again}"
    );
}

#[tokio::test]
async fn creates_django_could_not_use_are_refused_before_anything_is_written() {
    let Some(python) = django::python() else {
        return;
    };
    let site = DjangoSite::create(python).await;
    // A column the database computes, which no create may give.
    psql(
        &site.database,
        "ALTER TABLE customers_client ADD COLUMN code text GENERATED ALWAYS AS (upper(schema_name)) STORED",
    );
    let app = site.serve("gateway", "", 1).await;
    let gw = gateway_for(&site, &app).await;
    let owner = owner_id(&site);
    let nothing_of = |schema: &str| {
        let sql = format!(
            "SELECT (SELECT count(*) FROM customers_client WHERE schema_name = '{schema}') || ',' ||
                    (SELECT count(*) FROM pg_namespace WHERE nspname = '{schema}')"
        );
        assert_eq!(psql(&site.database, &sql), "0,0", "{schema} was written");
    };

    // check-config names the column every create must give.
    let check_args = site.command(&["check-config"]);
    let check = run_command(&check_args, CONFIG, &[]).await;
    assert!(check.status.success(), "{}", check.stderr);
    assert!(
        check
            .stdout
            .contains("required columns without a default: owner_id"),
        "{}",
        check.stdout
    );
    let bad_default = "store:\n  django:\n    column_defaults: {paid_until: \"true\"}\n";
    let bad = run_command(&check_args, bad_default, &[]).await;
    assert!(!bad.status.success());
    assert!(
        bad.stderr
            .contains("store.django.column_defaults.paid_until"),
        "{}",
        bad.stderr
    );
    // Two expressions where one is wanted prepare as two columns: refused.
    let unbalanced = "store:\n  django:\n    column_defaults: {on_trial: \"true), (false\"}\n";
    let bad = run_command(&check_args, unbalanced, &[]).await;
    assert!(!bad.status.success());
    assert!(
        bad.stderr.contains("store.django.column_defaults.on_trial"),
        "{}",
        bad.stderr
    );

    // No owner: a 422 naming it; no row, no schema.
    let create = |id: &str, columns: Value| json!({"id": id, "name": "Nobody", "domains": [format!("{id}.test")], "columns": columns});
    let (status, body) = gw
        .admin(
            Method::POST,
            "/v1/tenants",
            Some(create("nobody", json!({}))),
        )
        .await;
    refused_naming(status, &body, "owner_id");
    nothing_of("nobody");
    // An owner that does not exist, a value of the wrong type, an unknown column.
    for (columns, named) in [
        (json!({"owner_id": 999_999}), "owner_id"),
        (
            json!({"owner_id": owner, "paid_until": "soon"}),
            "paid_until",
        ),
        (json!({"owner_id": owner, "colour": "red"}), "colour"),
        (json!({"owner_id": owner, "code": "X"}), "code"),
    ] {
        let (status, body) = gw
            .admin(Method::POST, "/v1/tenants", Some(create("nobody", columns)))
            .await;
        api_error(
            status,
            &body,
            StatusCode::UNPROCESSABLE_ENTITY,
            "unprocessable_entity",
        );
        assert_eq!(body["error"]["columns"], json!([named]), "{body}");
        nothing_of("nobody");
    }
    // A value given with the create wins over the configured default.
    gw.create_tenant(create(
        "paid",
        json!({"owner_id": owner, "paid_until": "2027-12-31", "on_trial": false}),
    ))
    .await;
    assert_eq!(
        psql(
            &site.database,
            "SELECT paid_until || ',' || on_trial FROM customers_client WHERE schema_name = 'paid'"
        ),
        "2027-12-31,false"
    );

    // The command line gives columns with --column, and is refused without them.
    let cli = |extra: &[&str]| {
        let mut args = vec!["tenants", "create", "--id", "cli"];
        args.extend_from_slice(extra);
        site.command(&args)
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
    };
    let args = cli(&[]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let refused = run_command(&args, CONFIG, &[]).await;
    assert!(!refused.status.success());
    assert!(refused.stderr.contains("owner_id"), "{}", refused.stderr);
    nothing_of("cli");
    let owner_arg = format!("owner_id={owner}");
    let args = cli(&["--column", &owner_arg, "--column", "on_trial=false"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let made = run_command(&args, CONFIG, &[]).await;
    assert!(made.status.success(), "{}", made.stderr);
    assert_eq!(
        psql(
            &site.database,
            "SELECT owner_id || ',' || on_trial FROM customers_client WHERE schema_name = 'cli'"
        ),
        format!("{owner},false")
    );

    // A store failure answers an error id, never the SQL; the log has both.
    psql(
        &site.database,
        "ALTER TABLE customers_client ADD CONSTRAINT client_name_not_boom CHECK (name <> 'Boom')",
    );
    let boom = json!({"id": "boom", "name": "Boom", "columns": {"owner_id": owner}});
    let (status, body) = gw.admin(Method::POST, "/v1/tenants", Some(boom)).await;
    api_error(status, &body, StatusCode::INTERNAL_SERVER_ERROR, "internal");
    let error_id = body["error"]["error_id"]
        .as_str()
        .expect("an error id")
        .to_owned();
    let text = body.to_string();
    for leak in [
        "customers_client",
        "client_name_not_boom",
        "violates",
        "INSERT",
        "Boom",
    ] {
        assert!(!text.contains(leak), "{leak} in {text}");
    }
    let log = gw.log();
    assert!(
        log.lines()
            .any(|l| l.contains(&error_id) && l.contains("client_name_not_boom")),
        "{log}"
    );
    nothing_of("boom");
    psql(
        &site.database,
        "ALTER TABLE customers_client DROP CONSTRAINT client_name_not_boom",
    );

    // So does a failure of the gateway's own SQL while cloning the template:
    // the step is named, PostgreSQL's message only logged.
    psql(
        &site.database,
        "ALTER TABLE tenant_template.django_migrations
           ADD CONSTRAINT records_refused CHECK (id < 0) NOT VALID",
    );
    let refused = json!({"id": "refused", "name": "Refused", "columns": {"owner_id": owner}});
    let (status, body) = gw.admin(Method::POST, "/v1/tenants", Some(refused)).await;
    api_error(
        status,
        &body,
        StatusCode::INTERNAL_SERVER_ERROR,
        "provisioning_failed",
    );
    assert_eq!(body["error"]["step"], "clone the template", "{body}");
    let error_id = body["error"]["error_id"].as_str().expect("an error id");
    let text = body.to_string();
    for leak in ["records_refused", "django_migrations", "violates"] {
        assert!(!text.contains(leak), "{leak} in {text}");
    }
    assert!(
        gw.log()
            .lines()
            .any(|l| l.contains(error_id) && l.contains("records_refused")),
        "{}",
        gw.log()
    );
    nothing_of("refused");
    psql(
        &site.database,
        "ALTER TABLE tenant_template.django_migrations DROP CONSTRAINT records_refused",
    );

    // A NOT NULL column Django added after the gateway read the table: a
    // 422 naming it, as for one known at start.
    psql(
        &site.database,
        "ALTER TABLE customers_client ADD COLUMN region text NOT NULL DEFAULT 'eu';
         ALTER TABLE customers_client ALTER COLUMN region DROP DEFAULT",
    );
    let (status, body) = gw
        .admin(
            Method::POST,
            "/v1/tenants",
            Some(create("late", json!({"owner_id": owner}))),
        )
        .await;
    refused_naming(status, &body, "region");
    nothing_of("late");
    psql(
        &site.database,
        "ALTER TABLE customers_client DROP COLUMN region",
    );

    // A sign-up derives its schema: one given with the hint is refused.
    let (status, body) = gw
        .admin(
            Method::POST,
            "/v1/tenants",
            Some(json!({"name_hint": "fixed@email.com", "schema": "fixed",
                        "columns": {"owner_id": owner}})),
        )
        .await;
    let message = api_error(status, &body, StatusCode::BAD_REQUEST, "bad_request");
    assert!(
        message.contains("schema") && message.contains("name_hint"),
        "{message}"
    );
    nothing_of("fixed");

    // Sign-up: the id and schema come from the name hint, numbered on a collision.
    for expected in ["john_doe_email_com", "john_doe_email_com_2"] {
        let body = gw
            .create_tenant(json!({"name_hint": "john.doe@email.com",
                                  "columns": {"owner_id": owner}}))
            .await;
        assert_eq!(body["id"], expected, "{body}");
        assert_eq!(body["schema"], expected, "{body}");
        let tables = format!("SELECT count(*) FROM {expected}.notes_note");
        assert_eq!(psql(&site.database, &tables), "0");
    }
}
