//! The template fast path: `provisioning.template_schema` is kept fully
//! migrated, and a new schema tenant gets copies of its tables (columns,
//! defaults, identity, storage, comments), sequences (fresh: current values
//! reset), constraints (foreign keys re-pointed into the new schema) and
//! indexes, plus the rows of its migration records (`gateway_migrations`,
//! Django's `django_migrations`) and of the tables named in
//! `provisioning.template_copy_data` (identity and serial sequences moved
//! past the copied rows), instead of a replay of every migration.
//!
//! With the native layout the gateway migrates the template itself and
//! reads the recipe once per process. With django-tenants, Django migrates
//! the template (`migrate_schemas`) and the gateway never does: the recipe
//! is read in each create's own transaction, so a template Django migrated
//! since is cloned as it is now, structure and records alike (its
//! `django_migrations` locked meanwhile, so all reads see one state).
//!
//! Views, functions, triggers and custom types are not cloned: a template
//! holding any of them makes provisioning fall back to the migrations.

use tokio_postgres::Transaction;

mod catalog;

use self::catalog::{CONSTRAINTS, COPY_COLUMNS, DEFAULTS, INDEXES, SEQUENCES, TABLES, UNSUPPORTED};
use super::{migrations, sql_failed, store_failed, ProvisionError, ProvisionFailure, Provisioner};
use crate::config::StoreLayout;
use crate::store::postgres::quote_ident;

/// A sequence: name, `AS … START … CACHE … CYCLE` options, and the
/// `(table, column)` owning it.
type Sequence = (String, String, Option<(String, String)>);

/// What cloning the template does, read from its catalog.
#[derive(Debug)]
pub struct Recipe {
    /// `quote_ident(template)` as the server writes it in definitions.
    template_q: String,
    /// (name, its comment as a quoted literal; `LIKE` copies only column ones).
    tables: Vec<(String, Option<String>)>,
    sequences: Vec<Sequence>,
    /// (table, column, expression printed with the template on `search_path`).
    defaults: Vec<(String, String, String)>,
    /// (table, name, definition); foreign keys last.
    constraints: Vec<(String, String, String)>,
    /// `CREATE INDEX` statements of indexes that back no constraint.
    indexes: Vec<String>,
    /// Tables whose rows are copied: (name, columns to copy, the columns
    /// among them with an identity or serial sequence).
    copied: Vec<CopiedTable>,
}

/// A table whose rows the clone copies.
#[derive(Debug)]
struct CopiedTable {
    name: String,
    columns: Vec<String>,
    sequenced: Vec<String>,
}

/// Migration records copied whenever the template has them.
const MIGRATION_RECORDS: [&str; 2] = ["gateway_migrations", "django_migrations"];

impl Recipe {
    /// Reads the recipe of `template`; `None` if it holds objects the clone
    /// does not cover.
    async fn read(
        tx: &Transaction<'_>,
        template: &str,
        copy_data: &[String],
    ) -> Result<Option<Recipe>, ProvisionError> {
        let step = "read the template";
        let fail = |e| sql_failed(step, e);
        // Definitions printed with the template on the path name its objects
        // unqualified, so they resolve into the new schema when replayed.
        tx.batch_execute(&format!(
            "SET LOCAL search_path TO {}",
            quote_ident(template)
        ))
        .await
        .map_err(fail)?;
        let unsupported: i64 = tx
            .query_one(UNSUPPORTED, &[&template])
            .await
            .map_err(fail)?
            .get(0);
        if unsupported > 0 {
            tracing::warn!(template, "the template holds views, functions, triggers or types: new tenants replay the migrations instead");
            return Ok(None);
        }
        let rows = |sql| async move { tx.query(sql, &[&template]).await.map_err(fail) };
        let mut copied = Vec::new();
        let wanted = MIGRATION_RECORDS
            .iter()
            .map(|t| (*t, false))
            .chain(copy_data.iter().map(|t| (t.as_str(), true)));
        for (table, required) in wanted {
            let rows = tx
                .query(COPY_COLUMNS, &[&template, &table])
                .await
                .map_err(fail)?;
            if rows.is_empty() {
                if required {
                    return Err(ProvisionError {
                        step: step.into(),
                        source: ProvisionFailure::Config(format!(
                            "provisioning.template_copy_data names {table}, which the template {template} does not have"
                        )),
                    });
                }
                continue;
            }
            copied.push(CopiedTable {
                name: table.to_owned(),
                columns: rows.iter().map(|r| r.get(0)).collect(),
                sequenced: rows
                    .iter()
                    .filter(|r| r.get::<_, bool>(1))
                    .map(|r| r.get(0))
                    .collect(),
            });
        }
        let template_q: String = tx
            .query_one("SELECT quote_ident($1)", &[&template])
            .await
            .map_err(fail)?
            .get(0);
        Ok(Some(Recipe {
            template_q,
            tables: rows(TABLES)
                .await?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect(),
            sequences: rows(SEQUENCES)
                .await?
                .iter()
                .map(|r| {
                    let owner = r
                        .get::<_, Option<String>>(2)
                        .zip(r.get::<_, Option<String>>(3));
                    (r.get(0), r.get(1), owner)
                })
                .collect(),
            defaults: rows(DEFAULTS)
                .await?
                .iter()
                .map(|r| (r.get(0), r.get(1), r.get(2)))
                .collect(),
            constraints: rows(CONSTRAINTS)
                .await?
                .iter()
                .map(|r| (r.get(0), r.get(1), r.get(2)))
                .collect(),
            indexes: rows(INDEXES).await?.iter().map(|r| r.get(0)).collect(),
            copied,
        }))
    }

    /// The SQL that creates a copy of the template in `schema` (which exists).
    fn script(&self, template: &str, schema: &str) -> String {
        let (t, s) = (quote_ident(template), quote_ident(schema));
        let mut sql = format!("SET LOCAL search_path TO {s}, public;\n");
        for (table, comment) in &self.tables {
            let q = quote_ident(table);
            sql += &format!(
                "CREATE TABLE {s}.{q} (LIKE {t}.{q} INCLUDING ALL EXCLUDING INDEXES EXCLUDING CONSTRAINTS);\n"
            );
            if let Some(comment) = comment {
                sql += &format!("COMMENT ON TABLE {s}.{q} IS {comment};\n");
            }
        }
        for (name, options, owner) in &self.sequences {
            sql += &format!("CREATE SEQUENCE {s}.{} {options};\n", quote_ident(name));
            if let Some((table, column)) = owner {
                sql += &format!(
                    "ALTER SEQUENCE {s}.{} OWNED BY {s}.{}.{};\n",
                    quote_ident(name),
                    quote_ident(table),
                    quote_ident(column)
                );
            }
        }
        for (table, column, expr) in &self.defaults {
            sql += &format!(
                "ALTER TABLE {s}.{} ALTER COLUMN {} SET DEFAULT {expr};\n",
                quote_ident(table),
                quote_ident(column)
            );
        }
        for (table, name, def) in &self.constraints {
            sql += &format!(
                "ALTER TABLE {s}.{} ADD CONSTRAINT {} {def};\n",
                quote_ident(table),
                quote_ident(name)
            );
        }
        let on_template = format!(" ON {}.", self.template_q);
        for index in &self.indexes {
            sql += &index.replacen(&on_template, &format!(" ON {s}."), 1);
            sql += ";\n";
        }
        for table in &self.copied {
            let q = quote_ident(&table.name);
            let columns: Vec<String> = table.columns.iter().map(|c| quote_ident(c)).collect();
            let columns = columns.join(", ");
            sql += &format!(
                "INSERT INTO {s}.{q} ({columns}) OVERRIDING SYSTEM VALUE SELECT {columns} FROM {t}.{q};\n"
            );
            // The copy's sequences continue after the copied rows.
            for column in &table.sequenced {
                sql += &format!(
                    "SELECT setval(pg_get_serial_sequence({}, {}), max({})) FROM {s}.{q} HAVING max({}) IS NOT NULL;\n",
                    literal(&format!("{s}.{q}")),
                    literal(column),
                    quote_ident(column),
                    quote_ident(column),
                );
            }
        }
        sql
    }
}

/// Holds Django's migration records of `template` still until `tx` ends.
///
/// The recipe is read with some eight catalog queries and the rows copied
/// by a last `INSERT … SELECT`, each statement seeing what is committed
/// when it starts (READ COMMITTED): a `migrate_schemas` committing on the
/// template in between would have the clone copy `django_migrations` rows
/// for tables it did not create, and Django would never create them.
/// Django writes its record in each migration's own transaction, so SHARE
/// mode (which its `INSERT` waits for, and which waits for a migration that
/// has written its record) keeps every read at one migration state. A
/// migration that altered a table but has not written its record yet can
/// deadlock with the clone; PostgreSQL aborts one of the two, never a
/// half-copied schema.
async fn lock_migration_records(
    tx: &Transaction<'_>,
    template: &str,
) -> Result<(), ProvisionError> {
    let step = "read the template";
    let records = format!("{}.django_migrations", quote_ident(template));
    let present: bool = tx
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&records])
        .await
        .map_err(|e| sql_failed(step, e))?
        .get(0);
    if present {
        tx.batch_execute(&format!("LOCK TABLE {records} IN SHARE MODE"))
            .await
            .map_err(|e| sql_failed(step, e))?;
    }
    Ok(())
}

/// An SQL string literal.
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

impl Provisioner {
    /// Migrates the template schema (creating it if needed) and reads its
    /// recipe, once per process; `None`: no template, or one that cannot be
    /// cloned. Native layout only (see [`Provisioner::clone_template`]).
    async fn recipe(&self) -> Result<Option<&Recipe>, ProvisionError> {
        let Some(template) = &self.template_schema else {
            return Ok(None);
        };
        self.recipe
            .get_or_try_init(|| async {
                let mut conn = self.store.conn().await.map_err(store_failed("template"))?;
                let tx = conn
                    .transaction()
                    .await
                    .map_err(|e| sql_failed("template", e))?;
                self.limit_statements(&tx).await?;
                tx.batch_execute(&format!(
                    "SELECT pg_advisory_xact_lock(7417265436353); CREATE SCHEMA IF NOT EXISTS {}",
                    quote_ident(template)
                ))
                .await
                .map_err(|e| sql_failed("template", e))?;
                let applied = migrations::apply(&tx, template, &self.migrations).await?;
                let recipe = Recipe::read(&tx, template, &self.template_copy_data).await?;
                tx.commit().await.map_err(|e| sql_failed("template", e))?;
                tracing::info!(
                    template,
                    applied = applied.len(),
                    cloneable = recipe.is_some(),
                    "template schema ready"
                );
                Ok(recipe)
            })
            .await
            .map(Option::as_ref)
    }

    /// Fills the new (empty) `schema` from the template; `false` when there
    /// is no usable template and the caller must migrate instead. With the
    /// django-tenants layout the template is Django's: read as it is now, on
    /// `tx`, and never migrated here; one that is missing or cannot be
    /// cloned fails the create (replaying the gateway's migrations would
    /// give a schema without Django's tables).
    pub(super) async fn clone_template(
        &self,
        tx: &Transaction<'_>,
        schema: &str,
    ) -> Result<bool, ProvisionError> {
        let Some(template) = &self.template_schema else {
            return Ok(false);
        };
        let script = if self.store.layout() == StoreLayout::DjangoTenants {
            let step = "read the template";
            let exists: bool = tx
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)",
                    &[template],
                )
                .await
                .map_err(|e| sql_failed(step, e))?
                .get(0);
            if exists {
                lock_migration_records(tx, template).await?;
            }
            let recipe = match exists {
                true => Recipe::read(tx, template, &self.template_copy_data).await?,
                false => None,
            };
            let Some(recipe) = recipe else {
                return Err(ProvisionError {
                    step: step.into(),
                    source: ProvisionFailure::Config(format!(
                        "the template schema {template} (provisioning.template_schema) is missing or holds views, functions, triggers or types: keep it as a tenant schema Django migrates"
                    )),
                });
            };
            recipe.script(template, schema)
        } else {
            match self.recipe().await? {
                Some(recipe) => recipe.script(template, schema),
                None => return Ok(false),
            }
        };
        tx.batch_execute(&script)
            .await
            .map_err(|e| sql_failed("clone the template", e))?;
        Ok(true)
    }
}
