//! The embedded default store: one SQLite file in WAL mode with synchronous
//! commits, so registered tenants survive restarts and a crash mid-write.
//! Registry writes are logged for other processes on the file (`changes`).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};

mod certs;
mod changes;
mod reader;
mod rows;
mod scan;
mod schema;
mod search;
mod usage;

use self::rows::{
    domain_owner, existing_record, insert_tenant, record, records, tenant_from_row, TENANT_COLUMNS,
    TENANT_COLUMN_COUNT,
};
use self::schema::migrate;

use super::{controls, HostMatch, OpenMode, RouteSink, Store, StoreError};
use crate::tenant::host::wildcard_parent;
use crate::tenant::{Domain, NewTenant, Tenant, TenantPatch, TenantRecord};

/// The embedded store. Reads and writes use separate connections so a lookup
/// is never queued behind a slow write (WAL lets them run side by side).
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    read: Mutex<Connection>,
    write: Mutex<Connection>,
    /// Names this process's rows in the change log.
    writer: Arc<str>,
    /// The file, for connections of their own (`scan_routes`).
    path: PathBuf,
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
    /// Opens the store file and brings its schema up to date. With
    /// `OpenMode::CreateIfMissing` a missing file (and its directories) is
    /// created; with `OpenMode::Existing` it is `NotFound`, and nothing is created.
    pub fn open(path: &Path, mode: OpenMode) -> Result<SqliteStore, StoreError> {
        let mut flags = OpenFlags::default();
        match mode {
            OpenMode::CreateIfMissing => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        StoreError::Backend(format!("cannot create {}: {e}", dir.display()))
                    })?;
                }
            }
            OpenMode::Existing => flags.remove(OpenFlags::SQLITE_OPEN_CREATE),
        }
        let open = || -> Result<Connection, StoreError> {
            let conn = Connection::open_with_flags(path, flags).map_err(|e| {
                if mode == OpenMode::Existing && !path.exists() {
                    StoreError::NotFound {
                        what: "store",
                        key: path.display().to_string(),
                    }
                } else {
                    StoreError::Backend(format!("cannot open {}: {e}", path.display()))
                }
            })?;
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
                writer: super::new_writer_name().into(),
                path: path.to_owned(),
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

    /// Runs a registry write (as `write` does) that returns what it did and
    /// the domains it touched, and logs those in the same transaction.
    async fn write_logged<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Transaction<'_>) -> Result<(T, Vec<String>), StoreError>
            + Send
            + 'static,
    {
        let writer = self.inner.writer.clone();
        self.write(move |tx| {
            let (out, touched) = f(tx)?;
            changes::record(tx, &writer, &touched)?;
            Ok(out)
        })
        .await
    }
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
                     WHERE d.domain > ?1 ORDER BY d.domain LIMIT ?2"
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

    async fn scan_routes(&self, sink: Box<dyn RouteSink>) -> Result<(), StoreError> {
        scan::routes(self.inner.path.clone(), sink).await
    }

    async fn routes_for(&self, domains: &[String]) -> Result<Vec<HostMatch>, StoreError> {
        let list =
            serde_json::to_string(domains).map_err(|e| StoreError::Backend(e.to_string()))?;
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {TENANT_COLUMNS}, d.domain FROM domains d JOIN tenants t ON t.id = d.tenant_id \
                     WHERE d.domain IN (SELECT value FROM json_each(?1))"
                ))
                .map_err(backend)?;
            let rows = stmt
                .query_map([list], |r| {
                    Ok(HostMatch { tenant: tenant_from_row(r)?, domain: r.get(TENANT_COLUMN_COUNT)? })
                })
                .map_err(backend)?;
            rows.collect::<Result<_, _>>().map_err(backend)
        })
        .await
    }

    async fn create_tenant(&self, tenant: NewTenant) -> Result<TenantRecord, StoreError> {
        self.write_logged(move |tx| {
            insert_tenant(tx, &tenant)?;
            Ok((existing_record(tx, &tenant.id)?, tenant.domains))
        })
        .await
    }

    async fn import_tenants(
        &self,
        batch: Vec<NewTenant>,
    ) -> Result<Vec<(usize, StoreError)>, StoreError> {
        self.write_logged(move |tx| {
            let mut rejected = Vec::new();
            let mut imported = Vec::new();
            for (i, tenant) in batch.iter().enumerate() {
                match insert_tenant(tx, tenant) {
                    Ok(()) => imported.extend(tenant.domains.iter().cloned()),
                    // `columns` (refused before anything of the row is written)
                    // make a bad row, as a conflict does.
                    Err(e @ (StoreError::Conflict { .. } | StoreError::Unprocessable { .. })) => {
                        rejected.push((i, e))
                    }
                    Err(e) => return Err(e),
                }
            }
            Ok((rejected, imported))
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
            records(conn, tenants)
        })
        .await
    }

    async fn search_tenants(
        &self,
        text: &str,
        after: Option<String>,
        limit: usize,
    ) -> Result<Vec<TenantRecord>, StoreError> {
        search::search(self.inner.path.clone(), text.to_owned(), after, limit).await
    }

    async fn update_tenant(
        &self,
        id: &str,
        patch: TenantPatch,
    ) -> Result<TenantRecord, StoreError> {
        let id = id.to_owned();
        self.write_logged(move |tx| {
            let current = existing_record(tx, &id)?.tenant;
            let (limits, maintenance) = controls::patched(&current, &patch)?;
            let name = patch.name.unwrap_or(current.name);
            let status = patch.status.unwrap_or(current.status);
            let pool = patch.pool.unwrap_or(current.pool);
            let plan = patch.plan.unwrap_or(current.plan);
            tx.prepare_cached(
                "UPDATE tenants SET name = ?2, status = ?3, pool = ?4, plan = ?5, limits = ?6, \
                 maintenance = ?7 WHERE id = ?1",
            )
            .map_err(backend)?
            .execute(params![
                id,
                name,
                status.as_str(),
                pool,
                plan,
                limits,
                maintenance
            ])
            .map_err(backend)?;
            let updated = existing_record(tx, &id)?;
            let touched = updated.domain_names();
            Ok((updated, touched))
        })
        .await
    }

    async fn delete_tenant(&self, id: &str) -> Result<TenantRecord, StoreError> {
        let id = id.to_owned();
        self.write_logged(move |tx| {
            let removed = existing_record(tx, &id)?;
            tx.execute("DELETE FROM domains WHERE tenant_id = ?1", [&id])
                .map_err(backend)?;
            tx.execute("DELETE FROM tenants WHERE id = ?1", [&id])
                .map_err(backend)?;
            let touched = removed.domain_names();
            Ok((removed, touched))
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
        self.write_logged(move |tx| {
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
            let touched = vec![domain.clone()];
            let added = Domain {
                domain,
                tenant_id,
                is_primary,
            };
            Ok((added, touched))
        })
        .await
    }

    async fn remove_domain(&self, domain: &str) -> Result<Domain, StoreError> {
        let domain = domain.to_owned();
        self.write_logged(move |tx| {
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
            let touched = vec![domain.clone()];
            let removed = Domain {
                domain,
                tenant_id,
                is_primary,
            };
            Ok((removed, touched))
        })
        .await
    }
}

#[cfg(test)]
mod tests;
