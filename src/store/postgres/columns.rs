//! The columns of a django-tenants deployment's tenant and domain tables,
//! read from PostgreSQL's catalog at start and by `check-config`: which NOT
//! NULL columns have no database default and are not filled by the gateway
//! (Django's field defaults live in Python, so `paid_until` or `on_trial`
//! are such columns), the checks of `store.django.column_defaults`, and a
//! create's own `columns` turned into bound, type-checked values, all
//! before anything is written.

use std::collections::BTreeMap;

use tokio_postgres::error::SqlState;
use tokio_postgres::types::Type;
use tokio_postgres::GenericClient;

use super::layout::quote;
use super::{pg_error, pg_message};
use crate::config::{DjangoLayoutConfig, StoreConfig};
use crate::store::StoreError;

/// One column of a table, as the catalog describes it.
#[derive(Debug, Clone)]
pub struct Column {
    pub name: String,
    /// The type as SQL writes it (`date`, `character varying(100)`): what a
    /// bound value is cast to.
    pub type_sql: String,
    pub not_null: bool,
    /// A database default, identity or generated value.
    pub has_default: bool,
    /// `(table, column)` of a single-column foreign key, quoted as SQL.
    pub references: Option<(String, String)>,
}

impl Column {
    fn required(&self) -> bool {
        self.not_null && !self.has_default
    }
}

/// Every column of `table` (quoted, as in `Sql`), in table order.
const COLUMNS: &str = "
SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), a.attnotnull,
       a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> '',
       fk.confrelid::regclass::text, quote_ident(fa.attname)
  FROM pg_attribute a
  LEFT JOIN LATERAL (SELECT co.confrelid, co.confkey[1] AS confkey FROM pg_constraint co
                      WHERE co.conrelid = a.attrelid AND co.contype = 'f'
                        AND co.conkey = ARRAY[a.attnum] LIMIT 1) fk ON true
  LEFT JOIN pg_attribute fa ON fa.attrelid = fk.confrelid AND fa.attnum = fk.confkey
 WHERE a.attrelid = $1::text::regclass AND a.attnum > 0 AND NOT a.attisdropped
 ORDER BY a.attnum";

async fn read_table(client: &impl GenericClient, table: &str) -> Result<Vec<Column>, StoreError> {
    let rows = client
        .query_typed(COLUMNS, &[(&table, Type::TEXT)])
        .await
        .map_err(pg_error)?;
    Ok(rows
        .iter()
        .map(|r| Column {
            name: r.get(0),
            type_sql: r.get(1),
            not_null: r.get(2),
            has_default: r.get(3),
            references: r
                .get::<_, Option<String>>(4)
                .zip(r.get::<_, Option<String>>(5)),
        })
        .collect())
}

/// What the gateway knows of the tenant table's columns, for creates.
#[derive(Debug, Clone, Default)]
pub struct Columns {
    tenant: Vec<Column>,
    /// Columns the gateway writes itself (schema, id, mapped name, …).
    filled: Vec<String>,
    /// `store.django.column_defaults`, checked against the table.
    defaults: BTreeMap<String, String>,
    /// Required tenant columns that no default covers: each create names them.
    pub uncovered: Vec<String>,
    /// Required domain columns the gateway does not fill (no create with a
    /// domain can succeed until the table has defaults for them).
    pub domain_uncovered: Vec<String>,
}

/// A problem of the configuration found in the tables: the key, and why.
pub type Problem = (String, String);

/// The tenant columns the gateway writes itself in this layout.
fn filled_by_gateway(django: &DjangoLayoutConfig) -> Vec<String> {
    let mut filled = vec!["schema_name".to_owned(), django.tenant_id_column.clone()];
    filled.extend(
        [
            &django.name_column,
            &django.plan_column,
            &django.cluster_column,
        ]
        .into_iter()
        .flatten()
        .cloned(),
    );
    filled
}

impl Columns {
    /// Reads both tables and checks `column_defaults` against them: each
    /// names a column the gateway does not fill, and its expression is valid
    /// SQL of the column's type (prepared, never run). `client` must not be
    /// in a transaction: a refused expression would abort it.
    pub async fn read(
        client: &impl GenericClient,
        tenant_table: &str,
        domain_table: &str,
        django: &DjangoLayoutConfig,
    ) -> Result<(Columns, Vec<Problem>), StoreError> {
        let tenant = read_table(client, tenant_table).await?;
        let domain = read_table(client, domain_table).await?;
        let filled = filled_by_gateway(django);
        let mut problems = Vec::new();
        let mut defaults = BTreeMap::new();
        for (name, expr) in &django.column_defaults {
            let key = format!("store.django.column_defaults.{name}");
            let Some(column) = tenant.iter().find(|c| &c.name == name) else {
                problems.push((key, format!("{tenant_table} has no column '{name}'")));
                continue;
            };
            if filled.contains(name) {
                problems.push((key, format!("the gateway writes '{name}' itself")));
                continue;
            }
            let probe = format!("SELECT ({expr})::{}", column.type_sql);
            match client.prepare(&probe).await {
                Ok(_) => {
                    defaults.insert(name.clone(), expr.clone());
                }
                Err(e) => problems.push((
                    key,
                    format!(
                        "'{expr}' is not an SQL expression of type {}: {}",
                        column.type_sql,
                        pg_message(&e)
                    ),
                )),
            }
        }
        let uncovered = tenant
            .iter()
            .filter(|c| c.required() && !filled.contains(&c.name))
            .filter(|c| !defaults.contains_key(&c.name))
            .map(|c| c.name.clone())
            .collect();
        let domain_filled = ["domain", "tenant_id", "is_primary"];
        let domain_uncovered = domain
            .iter()
            .filter(|c| c.required() && !domain_filled.contains(&c.name.as_str()))
            .map(|c| c.name.clone())
            .collect();
        let columns = Columns {
            tenant,
            filled,
            defaults,
            uncovered,
            domain_uncovered,
        };
        Ok((columns, problems))
    }

    /// The extra columns of one insert: `column_defaults` and the create's
    /// own `columns` (which win), checked against the table before anything
    /// is written: unknown columns, columns the gateway writes, values of
    /// the wrong type, foreign keys to nothing and required columns left
    /// without a value are all `Unprocessable`, naming the columns.
    pub(super) async fn extra(
        &self,
        client: &impl GenericClient,
        given: &BTreeMap<String, serde_json::Value>,
    ) -> Result<Vec<Extra>, StoreError> {
        let unknown: Vec<String> = given
            .keys()
            .filter(|k| !self.tenant.iter().any(|c| &c.name == *k))
            .cloned()
            .collect();
        if !unknown.is_empty() {
            return Err(unprocessable(
                format!(
                    "unknown column(s) of the tenant table: {}",
                    unknown.join(", ")
                ),
                unknown,
            ));
        }
        let ours: Vec<String> = given
            .keys()
            .filter(|k| self.filled.contains(k))
            .cloned()
            .collect();
        if !ours.is_empty() {
            return Err(unprocessable(
                format!(
                    "column(s) {} are written by the gateway: use the tenant's own fields (id, name, plan, cluster)",
                    ours.join(", ")
                ),
                ours,
            ));
        }
        let missing: Vec<String> = self
            .tenant
            .iter()
            .filter(|c| c.required() && !self.filled.contains(&c.name))
            .filter(|c| match given.get(&c.name) {
                Some(value) => value.is_null(),
                None => !self.defaults.contains_key(&c.name),
            })
            .map(|c| c.name.clone())
            .collect();
        if !missing.is_empty() {
            return Err(unprocessable(
                format!(
                    "required column(s) without a value: {} (give them in \"columns\", or set store.django.column_defaults)",
                    missing.join(", ")
                ),
                missing,
            ));
        }
        let mut extra = Vec::new();
        for (name, expr) in &self.defaults {
            if !given.contains_key(name) {
                extra.push(Extra {
                    column: name.clone(),
                    value: ExtraValue::Expr(expr.clone()),
                });
            }
        }
        for (name, value) in given {
            let column = self
                .tenant
                .iter()
                .find(|c| &c.name == name)
                .expect("checked above");
            let text = as_text(value);
            if let Some(text) = &text {
                check_value(client, column, text).await?;
            }
            extra.push(Extra {
                column: name.clone(),
                value: ExtraValue::Param {
                    text,
                    cast: column.type_sql.clone(),
                },
            });
        }
        Ok(extra)
    }
}

/// One extra column of an insert and where its value comes from.
#[derive(Debug, Clone)]
pub(super) struct Extra {
    pub column: String,
    pub value: ExtraValue,
}

#[derive(Debug, Clone)]
pub(super) enum ExtraValue {
    /// An operator's SQL expression (`store.django.column_defaults`).
    Expr(String),
    /// A caller's value, bound as text and cast to the column's type.
    Param { text: Option<String>, cast: String },
}

/// A JSON value as the text PostgreSQL parses into the column's type.
fn as_text(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// Casts `text` to the column's type and, for a foreign key, finds the row
/// it points at: a refusal names the column.
async fn check_value(
    client: &impl GenericClient,
    column: &Column,
    text: &str,
) -> Result<(), StoreError> {
    let name = &column.name;
    let sql = match &column.references {
        Some((table, key)) => format!(
            "SELECT EXISTS (SELECT 1 FROM {table} WHERE {key} = $1::text::{})",
            column.type_sql
        ),
        // Used in the result, so the cast is evaluated (an unused one may not be).
        None => format!("SELECT $1::text::{} IS NOT NULL", column.type_sql),
    };
    let found: bool = match client.query_typed(&sql, &[(&text, Type::TEXT)]).await {
        Ok(rows) => rows.first().is_some_and(|r| r.get(0)),
        Err(e) => {
            let data_error = e.code().is_some_and(|c| c.code().starts_with("22"))
                || e.code() == Some(&SqlState::INVALID_TEXT_REPRESENTATION);
            if data_error {
                let why = e.as_db_error().map(|db| db.message().to_owned());
                return Err(unprocessable(
                    format!(
                        "column '{name}': '{text}' is not a value of type {}{}",
                        column.type_sql,
                        why.map(|w| format!(" ({w})")).unwrap_or_default()
                    ),
                    vec![name.clone()],
                ));
            }
            return Err(pg_error(e));
        }
    };
    if !found {
        let (table, key) = column
            .references
            .as_ref()
            .expect("only a key finds nothing");
        return Err(unprocessable(
            format!("column '{name}': no row of {table} has {key} = {text}"),
            vec![name.clone()],
        ));
    }
    Ok(())
}

fn unprocessable(message: String, columns: Vec<String>) -> StoreError {
    StoreError::Unprocessable { message, columns }
}

/// `check-config` for the django-tenants layout: connects to the store's
/// database (writing nothing), reads both tables' columns and returns them
/// with the problems of `store.django.column_defaults`.
pub async fn check(store: &StoreConfig) -> Result<(Columns, Vec<Problem>), StoreError> {
    let url = store.url.as_deref().unwrap_or_default();
    let mut config: tokio_postgres::Config = url
        .parse()
        .map_err(|e| StoreError::Backend(format!("invalid PostgreSQL URL: {e}")))?;
    config.connect_timeout(store.connect_timeout);
    let django = &store.django;
    let (tenant_table, domain_table) = (quote(&django.tenant_table), quote(&django.domain_table));
    let (client, connection) = config
        .connect(tokio_postgres::NoTls)
        .await
        .map_err(pg_error)?;
    let driver = tokio::spawn(connection);
    let result = Columns::read(&client, &tenant_table, &domain_table, django).await;
    drop(client);
    let _ = driver.await;
    result
}
