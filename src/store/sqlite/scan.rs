//! The embedded store's one-pass read of every route (`Store::scan_routes`):
//! one query on a connection of its own, so lookups are not queued behind
//! it, reading the file through a memory map (no copy of each page into
//! SQLite's cache), tenants in the outer loop so each tenant's domains come
//! together and its row is decoded once.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

use super::backend;
use super::rows::{tenant_from_row, TENANT_COLUMNS, TENANT_COLUMN_COUNT};
use crate::store::{RouteSink, StoreError};
use crate::tenant::Tenant;

/// Bytes of the file mapped for the read (SQLite caps it at its own maximum).
const MMAP_BYTES: i64 = 1 << 40;

/// Reads every domain with its tenant into `sink`, in one statement (so
/// from one snapshot of the file), on a blocking thread.
pub(super) async fn routes(path: PathBuf, sink: Box<dyn RouteSink>) -> Result<(), StoreError> {
    tokio::task::spawn_blocking(move || read(&path, sink))
        .await
        .map_err(|e| StoreError::Backend(format!("store task failed: {e}")))?
}

fn read(path: &Path, mut sink: Box<dyn RouteSink>) -> Result<(), StoreError> {
    let mut flags = OpenFlags::default();
    flags.remove(OpenFlags::SQLITE_OPEN_CREATE);
    let conn = Connection::open_with_flags(path, flags)
        .map_err(|e| StoreError::Backend(format!("cannot open {}: {e}", path.display())))?;
    conn.pragma_update(None, "query_only", true)
        .map_err(backend)?;
    conn.pragma_update(None, "mmap_size", MMAP_BYTES)
        .map_err(backend)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(backend)?;
    // Rowids only grow (short of deletes), so the largest bounds the count
    // in one index step, where count(*) would read every row.
    let most: i64 = conn
        .query_row("SELECT coalesce(max(rowid), 0) FROM domains", [], |r| {
            r.get(0)
        })
        .map_err(backend)?;
    sink.expect(usize::try_from(most).unwrap_or(0));
    sink.grouped();
    // CROSS JOIN keeps tenants the outer loop: a tenant's domains in a row.
    let mut stmt = conn
        .prepare(&format!(
            "SELECT {TENANT_COLUMNS}, d.domain, t.rowid FROM tenants t CROSS JOIN domains d \
             ON d.tenant_id = t.id"
        ))
        .map_err(backend)?;
    let mut rows = stmt.query([]).map_err(backend)?;
    let mut last: Option<i64> = None;
    let mut tenant: Option<Tenant> = None;
    while let Some(row) = rows.next().map_err(backend)? {
        let key: i64 = row.get(TENANT_COLUMN_COUNT + 1).map_err(backend)?;
        let same = last == Some(key);
        if !same {
            tenant = Some(tenant_from_row(row).map_err(backend)?);
            last = Some(key);
        }
        let domain = row
            .get_ref(TENANT_COLUMN_COUNT)
            .and_then(|v| Ok(v.as_str()?))
            .map_err(backend)?;
        let given = if same { None } else { tenant.as_ref() };
        if !sink.route(given, domain) {
            break;
        }
    }
    Ok(())
}
