//! Tenant migrations: a directory of ordered `NNNN_name.sql` files, applied
//! with the tenant's schema first on `search_path` and recorded (name and
//! SHA-256) in that schema's `gateway_migrations` table, so a re-run applies
//! only what is new and refuses a file changed after it was applied.

use std::collections::HashMap;
use std::path::Path;

use sha2::{Digest, Sha256};
use tokio_postgres::{GenericClient, Transaction};

use super::{operator_sql_failed, sql_failed, ProvisionError, ProvisionFailure};
use crate::store::postgres::quote_ident;

/// One migration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    /// The file name, e.g. `0003_orders.sql`.
    pub name: String,
    pub sql: String,
    /// Hex SHA-256 of the file.
    pub checksum: String,
}

/// Reads every `NNNN_name.sql` of `dir`, ordered by name. Other files are
/// ignored; two files with one number are refused.
pub fn load(dir: &Path) -> Result<Vec<Migration>, ProvisionError> {
    let step = || format!("load migrations from {}", dir.display());
    let fail = |reason: String| ProvisionError {
        step: step(),
        source: ProvisionFailure::Migration(reason),
    };
    let entries = std::fs::read_dir(dir).map_err(|e| fail(e.to_string()))?;
    let mut out = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| fail(e.to_string()))?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let numbered = name
            .split_once('_')
            .is_some_and(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        if !numbered || !name.ends_with(".sql") {
            continue;
        }
        let sql = std::fs::read_to_string(&path).map_err(|e| fail(format!("{name}: {e}")))?;
        out.push(Migration {
            name: name.to_owned(),
            checksum: hex(&Sha256::digest(sql.as_bytes())),
            sql,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    for pair in out.windows(2) {
        let number = |m: &Migration| m.name.split('_').next().unwrap_or("").to_owned();
        if number(&pair[0]) == number(&pair[1]) {
            return Err(fail(format!(
                "{} and {} have the same number",
                pair[0].name, pair[1].name
            )));
        }
    }
    Ok(out)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Applies the migrations not yet recorded in `schema`, in `tx`, with
/// `schema` first on the search path. Returns the names applied.
pub async fn apply(
    tx: &Transaction<'_>,
    schema: &str,
    migrations: &[Migration],
) -> Result<Vec<String>, ProvisionError> {
    let q = quote_ident(schema);
    tx.batch_execute(&format!(
        "SET LOCAL search_path TO {q}, public;
         CREATE TABLE IF NOT EXISTS {q}.gateway_migrations (
             name       text PRIMARY KEY,
             checksum   text NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now()
         )"
    ))
    .await
    .map_err(|e| sql_failed("migration table", e))?;
    let recorded: HashMap<String, String> = tx
        .query(
            &format!("SELECT name, checksum FROM {q}.gateway_migrations"),
            &[],
        )
        .await
        .map_err(|e| sql_failed("migration table", e))?
        .into_iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let mut applied = Vec::new();
    for m in migrations {
        let step = format!("migration {}", m.name);
        match recorded.get(&m.name) {
            Some(sum) if *sum == m.checksum => continue,
            Some(sum) => {
                return Err(ProvisionError {
                    step,
                    source: ProvisionFailure::Migration(format!(
                        "the file changed after it was applied (recorded checksum {sum}, file {})",
                        m.checksum
                    )),
                })
            }
            None => {}
        }
        tx.batch_execute(&m.sql)
            .await
            .map_err(|e| operator_sql_failed(&step, e))?;
        tx.execute(
            &format!("INSERT INTO {q}.gateway_migrations (name, checksum) VALUES ($1, $2)"),
            &[&m.name, &m.checksum],
        )
        .await
        .map_err(|e| sql_failed(&step, e))?;
        applied.push(m.name.clone());
    }
    Ok(applied)
}

/// Whether `schema` lacks one of `migrations` (by name): a migration would
/// apply something. Read outside any transaction, before deciding to put
/// the tenant under maintenance.
pub async fn pending(
    client: &impl GenericClient,
    schema: &str,
    migrations: &[Migration],
) -> Result<bool, ProvisionError> {
    if migrations.is_empty() {
        return Ok(false);
    }
    let table = format!("{}.gateway_migrations", quote_ident(schema));
    let step = |e| sql_failed("migration table", e);
    let found: Option<String> = client
        .query_one("SELECT to_regclass($1)::text", &[&table])
        .await
        .map_err(step)?
        .get(0);
    if found.is_none() {
        return Ok(true);
    }
    let recorded: Vec<String> = client
        .query(&format!("SELECT name FROM {table}"), &[])
        .await
        .map_err(step)?
        .iter()
        .map(|r| r.get(0))
        .collect();
    Ok(migrations.iter().any(|m| !recorded.contains(&m.name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_ordered_and_other_files_ignored() {
        let dir = tempfile::tempdir().unwrap();
        for (name, body) in [
            ("0002_orders.sql", "CREATE TABLE orders (id int);"),
            ("0001_init.sql", "CREATE TABLE users (id int);"),
            ("README.md", "not a migration"),
            ("notes.sql", "no number"),
        ] {
            std::fs::write(dir.path().join(name), body).unwrap();
        }
        let loaded = load(dir.path()).unwrap();
        let names: Vec<&str> = loaded.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["0001_init.sql", "0002_orders.sql"]);
        assert_eq!(loaded[0].checksum.len(), 64);
        std::fs::write(dir.path().join("0002_dup.sql"), "").unwrap();
        let err = load(dir.path()).unwrap_err();
        assert!(err.to_string().contains("same number"), "{err}");
    }
}
