//! The store file's schema and its upgrades: one step per version, applied
//! in order and recorded in `PRAGMA user_version`.

use rusqlite::Connection;

use super::{backend, certs, changes};
use crate::store::StoreError;

/// The store file's schema, one step per version: step `i` brings
/// `PRAGMA user_version` from `i` to `i + 1`. Append new steps; never edit one.
pub(super) const SCHEMA_STEPS: &[&str] = &[
    SCHEMA_V1,
    SCHEMA_V2,
    SCHEMA_V3,
    certs::SCHEMA_ACME,
    certs::SCHEMA_ACME_ORDERS,
    changes::SCHEMA_CHANGES,
    SCHEMA_V7,
];

/// Schema version kept in `PRAGMA user_version`.
const SCHEMA_VERSION: i64 = SCHEMA_STEPS.len() as i64;

pub(super) const SCHEMA_V1: &str = "
CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    schema_name TEXT NOT NULL,
    isolation   TEXT NOT NULL,
    status      TEXT NOT NULL,
    pool        TEXT,
    created_at  TEXT NOT NULL
);
CREATE UNIQUE INDEX tenants_owned_schema ON tenants(schema_name) WHERE isolation IN ('schema', 'database');
CREATE TABLE domains (
    domain     TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL REFERENCES tenants(id),
    is_primary INTEGER NOT NULL
);
CREATE INDEX domains_tenant ON domains(tenant_id);
CREATE UNIQUE INDEX domains_one_primary ON domains(tenant_id) WHERE is_primary = 1;
";

/// Version 2: a tenant's plan (picks its pool through `plans:`).
const SCHEMA_V2: &str = "ALTER TABLE tenants ADD COLUMN plan TEXT;";

/// Version 3: the PostgreSQL cluster holding a tenant's schema or database
/// (recorded for imports and static tenants; provisioning needs PostgreSQL).
const SCHEMA_V3: &str = "ALTER TABLE tenants ADD COLUMN cluster TEXT;";

/// Version 7: a tenant's own traffic controls, as JSON (`store::controls`).
const SCHEMA_V7: &str = "ALTER TABLE tenants ADD COLUMN limits TEXT; \
                         ALTER TABLE tenants ADD COLUMN maintenance TEXT;";

/// Brings the file's schema to this gateway's version; refuses a newer file.
pub(super) fn migrate(conn: &Connection) -> Result<(), StoreError> {
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(backend)?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::Backend(format!(
            "store file has schema version {version}, newer than this gateway's {SCHEMA_VERSION}"
        )));
    }
    for (done, step) in SCHEMA_STEPS.iter().enumerate().skip(version as usize) {
        let next = done + 1;
        conn.execute_batch(&format!(
            "BEGIN; {step} PRAGMA user_version = {next}; COMMIT;"
        ))
        .map_err(backend)?;
    }
    Ok(())
}
