//! The embedded default store: one SQLite file in WAL mode with synchronous
//! commits, so registered tenants survive restarts and a crash mid-write.

use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};

mod certs;

use super::{HostMatch, Store, StoreError, StoredCert};
use crate::routing::host::wildcard_parent;
use crate::tenant::{Domain, DomainEntry, NewTenant, Tenant, TenantPatch, TenantRecord};

/// The store file's schema, one step per version: step `i` brings
/// `PRAGMA user_version` from `i` to `i + 1`. Append new steps; never edit one.
const SCHEMA_STEPS: &[&str] = &[SCHEMA_V1, SCHEMA_V2, SCHEMA_V3, certs::SCHEMA_ACME];

/// Schema version kept in `PRAGMA user_version`.
const SCHEMA_VERSION: i64 = SCHEMA_STEPS.len() as i64;

const SCHEMA_V1: &str = "
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

const TENANT_COLUMNS: &str =
    "t.id, t.name, t.schema_name, t.isolation, t.status, t.pool, t.created_at, t.plan, t.cluster";
/// Columns of `TENANT_COLUMNS`; a select's further columns start here.
const TENANT_COLUMN_COUNT: usize = 9;

/// The embedded store. Reads and writes use separate connections so a lookup
/// is never queued behind a slow write (WAL lets them run side by side).
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    read: Mutex<Connection>,
    write: Mutex<Connection>,
}

fn backend(e: rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
            StoreError::Unavailable(e.to_string())
        }
        _ => StoreError::Backend(e.to_string()),
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the store file and brings its schema up to date.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::Backend(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        let open = || -> Result<Connection, StoreError> {
            let conn = Connection::open(path)
                .map_err(|e| StoreError::Backend(format!("cannot open {}: {e}", path.display())))?;
            conn.pragma_update(None, "journal_mode", "WAL")
                .map_err(backend)?;
            conn.pragma_update(None, "synchronous", "FULL")
                .map_err(backend)?;
            conn.pragma_update(None, "foreign_keys", "ON")
                .map_err(backend)?;
            conn.busy_timeout(std::time::Duration::from_secs(5))
                .map_err(backend)?;
            Ok(conn)
        };
        let write = open()?;
        migrate(&write)?;
        let read = open()?;
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                read: Mutex::new(read),
                write: Mutex::new(write),
            }),
        })
    }

    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let conn = inner.read.lock().unwrap_or_else(|p| p.into_inner());
            f(&conn)
        })
        .await
        .map_err(|e| StoreError::Backend(format!("store task failed: {e}")))?
    }

    /// Runs `f` inside one immediate (write-locked) transaction.
    async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = inner.write.lock().unwrap_or_else(|p| p.into_inner());
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(backend)?;
            let out = f(&tx)?;
            tx.commit().map_err(backend)?;
            Ok(out)
        })
        .await
        .map_err(|e| StoreError::Backend(format!("store task failed: {e}")))?
    }
}

fn migrate(conn: &Connection) -> Result<(), StoreError> {
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

fn tenant_from_row(row: &Row<'_>) -> rusqlite::Result<Tenant> {
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
    })
}

fn domains_of(conn: &Connection, tenant_id: &str) -> Result<Vec<DomainEntry>, StoreError> {
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

fn record(conn: &Connection, id: &str) -> Result<Option<TenantRecord>, StoreError> {
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

fn existing_record(conn: &Connection, id: &str) -> Result<TenantRecord, StoreError> {
    record(conn, id)?.ok_or_else(|| StoreError::NotFound {
        what: "tenant",
        key: id.to_owned(),
    })
}

fn domain_owner(conn: &Connection, domain: &str) -> Result<Option<(String, bool)>, StoreError> {
    conn.prepare_cached("SELECT tenant_id, is_primary FROM domains WHERE domain = ?1")
        .map_err(backend)?
        .query_row([domain], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
        .map_err(backend)
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// Inserts a tenant and its domains after checking every uniqueness rule, so
/// a conflict is reported as `Conflict` and nothing of the row is written.
fn insert_tenant(tx: &Connection, t: &NewTenant) -> Result<(), StoreError> {
    if record(tx, &t.id)?.is_some() {
        return Err(StoreError::Conflict {
            what: "tenant",
            key: t.id.clone(),
        });
    }
    if t.isolation.owns_schema() {
        let taken: Option<String> = tx
            .prepare_cached("SELECT id FROM tenants WHERE schema_name = ?1 AND isolation IN ('schema', 'database')")
            .map_err(backend)?
            .query_row([&t.schema], |r| r.get(0))
            .optional()
            .map_err(backend)?;
        if taken.is_some() {
            return Err(StoreError::Conflict {
                what: "schema",
                key: t.schema.clone(),
            });
        }
    }
    for domain in &t.domains {
        if domain_owner(tx, domain)?.is_some() {
            return Err(StoreError::Conflict {
                what: "domain",
                key: domain.clone(),
            });
        }
    }
    tx.prepare_cached(
        "INSERT INTO tenants (id, name, schema_name, isolation, status, pool, created_at, plan, cluster) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )
    .map_err(backend)?
    .execute(params![t.id, t.name, t.schema, t.isolation.as_str(), t.status.as_str(), t.pool, now_rfc3339(), t.plan, t.cluster])
    .map_err(backend)?;
    let mut insert_domain = tx
        .prepare_cached("INSERT INTO domains (domain, tenant_id, is_primary) VALUES (?1, ?2, ?3)")
        .map_err(backend)?;
    for (i, domain) in t.domains.iter().enumerate() {
        insert_domain
            .execute(params![domain, t.id, i == 0])
            .map_err(backend)?;
    }
    Ok(())
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.read(|conn| conn.query_row("SELECT 1", [], |_| Ok(())).map_err(backend))
            .await
    }

    async fn resolve_host(&self, host: &str) -> Result<Option<HostMatch>, StoreError> {
        let exact = host.to_owned();
        let wildcard = wildcard_parent(host).unwrap_or_default();
        self.read(move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {TENANT_COLUMNS}, d.domain FROM domains d JOIN tenants t ON t.id = d.tenant_id \
                 WHERE d.domain IN (?1, ?2) ORDER BY d.domain = ?1 DESC LIMIT 1"
            ))
            .map_err(backend)?
            .query_row([&exact, &wildcard], |r| Ok(HostMatch { tenant: tenant_from_row(r)?, domain: r.get(TENANT_COLUMN_COUNT)? }))
            .optional()
            .map_err(backend)
        })
        .await
    }

    async fn routes_page(
        &self,
        after: Option<String>,
        limit: usize,
    ) -> Result<Vec<HostMatch>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {TENANT_COLUMNS}, d.domain FROM domains d JOIN tenants t ON t.id = d.tenant_id \
                     WHERE d.domain > ?1 AND d.domain NOT LIKE '*.%' ORDER BY d.domain LIMIT ?2"
                ))
                .map_err(backend)?;
            let rows = stmt
                .query_map(params![after.unwrap_or_default(), limit as i64], |r| {
                    Ok(HostMatch { tenant: tenant_from_row(r)?, domain: r.get(TENANT_COLUMN_COUNT)? })
                })
                .map_err(backend)?;
            rows.collect::<Result<_, _>>().map_err(backend)
        })
        .await
    }

    async fn create_tenant(&self, tenant: NewTenant) -> Result<TenantRecord, StoreError> {
        self.write(move |tx| {
            insert_tenant(tx, &tenant)?;
            existing_record(tx, &tenant.id)
        })
        .await
    }

    async fn import_tenants(
        &self,
        batch: Vec<NewTenant>,
    ) -> Result<Vec<(usize, StoreError)>, StoreError> {
        self.write(move |tx| {
            let mut rejected = Vec::new();
            for (i, tenant) in batch.iter().enumerate() {
                match insert_tenant(tx, tenant) {
                    Ok(()) => {}
                    Err(e @ StoreError::Conflict { .. }) => rejected.push((i, e)),
                    Err(e) => return Err(e),
                }
            }
            Ok(rejected)
        })
        .await
    }

    async fn get_tenant(&self, id: &str) -> Result<Option<TenantRecord>, StoreError> {
        let id = id.to_owned();
        self.read(move |conn| record(conn, &id)).await
    }

    async fn list_tenants(
        &self,
        after: Option<String>,
        limit: usize,
    ) -> Result<Vec<TenantRecord>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {TENANT_COLUMNS} FROM tenants t WHERE t.id > ?1 ORDER BY t.id LIMIT ?2"
                ))
                .map_err(backend)?;
            let tenants: Vec<Tenant> = stmt
                .query_map(
                    params![after.unwrap_or_default(), limit as i64],
                    tenant_from_row,
                )
                .map_err(backend)?
                .collect::<Result<_, _>>()
                .map_err(backend)?;
            tenants
                .into_iter()
                .map(|tenant| {
                    Ok(TenantRecord {
                        domains: domains_of(conn, &tenant.id)?,
                        tenant,
                    })
                })
                .collect()
        })
        .await
    }

    async fn update_tenant(
        &self,
        id: &str,
        patch: TenantPatch,
    ) -> Result<TenantRecord, StoreError> {
        let id = id.to_owned();
        self.write(move |tx| {
            let current = existing_record(tx, &id)?.tenant;
            let name = patch.name.unwrap_or(current.name);
            let status = patch.status.unwrap_or(current.status);
            let pool = patch.pool.unwrap_or(current.pool);
            let plan = patch.plan.unwrap_or(current.plan);
            tx.prepare_cached(
                "UPDATE tenants SET name = ?2, status = ?3, pool = ?4, plan = ?5 WHERE id = ?1",
            )
            .map_err(backend)?
            .execute(params![id, name, status.as_str(), pool, plan])
            .map_err(backend)?;
            existing_record(tx, &id)
        })
        .await
    }

    async fn delete_tenant(&self, id: &str) -> Result<TenantRecord, StoreError> {
        let id = id.to_owned();
        self.write(move |tx| {
            let removed = existing_record(tx, &id)?;
            tx.execute("DELETE FROM domains WHERE tenant_id = ?1", [&id])
                .map_err(backend)?;
            tx.execute("DELETE FROM tenants WHERE id = ?1", [&id])
                .map_err(backend)?;
            Ok(removed)
        })
        .await
    }

    async fn add_domain(
        &self,
        tenant_id: &str,
        domain: String,
        primary: bool,
    ) -> Result<Domain, StoreError> {
        let tenant_id = tenant_id.to_owned();
        self.write(move |tx| {
            let existing = existing_record(tx, &tenant_id)?;
            if domain_owner(tx, &domain)?.is_some() {
                return Err(StoreError::Conflict {
                    what: "domain",
                    key: domain,
                });
            }
            let is_primary = primary || existing.domains.is_empty();
            if is_primary {
                tx.execute(
                    "UPDATE domains SET is_primary = 0 WHERE tenant_id = ?1",
                    [&tenant_id],
                )
                .map_err(backend)?;
            }
            tx.execute(
                "INSERT INTO domains (domain, tenant_id, is_primary) VALUES (?1, ?2, ?3)",
                params![domain, tenant_id, is_primary],
            )
            .map_err(backend)?;
            Ok(Domain {
                domain,
                tenant_id,
                is_primary,
            })
        })
        .await
    }

    async fn remove_domain(&self, domain: &str) -> Result<Domain, StoreError> {
        let domain = domain.to_owned();
        self.write(move |tx| {
            let Some((tenant_id, is_primary)) = domain_owner(tx, &domain)? else {
                return Err(StoreError::NotFound {
                    what: "domain",
                    key: domain,
                });
            };
            tx.execute("DELETE FROM domains WHERE domain = ?1", [&domain])
                .map_err(backend)?;
            if is_primary {
                tx.execute(
                    "UPDATE domains SET is_primary = 1 WHERE rowid = \
                     (SELECT rowid FROM domains WHERE tenant_id = ?1 ORDER BY rowid LIMIT 1)",
                    [&tenant_id],
                )
                .map_err(backend)?;
            }
            Ok(Domain {
                domain,
                tenant_id,
                is_primary,
            })
        })
        .await
    }

    async fn get_certificate(&self, domain: &str) -> Result<Option<StoredCert>, StoreError> {
        self.certificate(domain).await
    }

    async fn put_certificate(
        &self,
        domain: &str,
        cert_pem: &str,
        key_pem: &str,
        not_after: i64,
    ) -> Result<(), StoreError> {
        self.store_certificate(domain, cert_pem, key_pem, not_after)
            .await
    }

    async fn record_certificate_failure(
        &self,
        domain: &str,
        reason: &str,
    ) -> Result<(), StoreError> {
        self.store_failure(domain, reason).await
    }

    async fn list_certificates(&self) -> Result<Vec<StoredCert>, StoreError> {
        self.certificates().await
    }

    async fn put_acme_challenge(
        &self,
        key: &str,
        key_authorization: &str,
    ) -> Result<(), StoreError> {
        self.store_challenge(key, key_authorization).await
    }

    async fn get_acme_challenge(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.challenge(key).await
    }

    async fn delete_acme_challenge(&self, key: &str) -> Result<(), StoreError> {
        self.drop_challenge(key).await
    }

    async fn get_acme_account(&self, directory: &str) -> Result<Option<String>, StoreError> {
        self.account(directory).await
    }

    async fn put_acme_account(
        &self,
        directory: &str,
        credentials: &str,
    ) -> Result<String, StoreError> {
        self.store_account(directory, credentials).await
    }
}

#[cfg(test)]
mod tests;
