//! The embedded store's one-pass read of every route (`Store::scan_routes`):
//! one query on a connection of its own, so lookups are not queued behind
//! it, reading the file through a memory map (no copy of each page into
//! SQLite's cache), tenants in the outer loop so each tenant's domains come
//! together and its row is decoded once. A sink that splits gets two such
//! reads on two threads, half the tenants each, from one snapshot: the read
//! is most of a load's CPU.

use std::path::{Path, PathBuf};

use rusqlite::Connection;

use super::reader::open_reader;
use super::rows::{tenant_from_row, TENANT_COLUMNS, TENANT_COLUMN_COUNT};
use super::{backend, changes};
use crate::store::{RouteSink, StoreError};
use crate::tenant::Tenant;

/// Reads every domain with its tenant into `sink` (and the sink it splits
/// off, if it does: half the tenants each, on two threads), from one
/// snapshot of the file, on a blocking thread.
pub(super) async fn routes(path: PathBuf, sink: Box<dyn RouteSink>) -> Result<(), StoreError> {
    tokio::task::spawn_blocking(move || read(&path, sink))
        .await
        .map_err(|e| StoreError::Backend(format!("store task failed: {e}")))?
}

fn read(path: &Path, mut sink: Box<dyn RouteSink>) -> Result<(), StoreError> {
    let first = open_reader(path)?;
    first.execute_batch("BEGIN").map_err(backend)?;
    // Rowids only grow (short of deletes), so the largest bounds the count
    // in one index step, where count(*) would read every row.
    let most = |table: &str| -> Result<i64, StoreError> {
        first
            .query_row(
                &format!("SELECT coalesce(max(rowid), 0) FROM {table}"),
                [],
                |r| r.get(0),
            )
            .map_err(backend)
    };
    sink.expect(usize::try_from(most("domains")?).unwrap_or(0));
    sink.grouped();
    let two = match sink.split() {
        Some(second) => {
            let other = open_reader(path)?;
            one_snapshot(&first, &other)?.then_some((other, second))
        }
        None => None,
    };
    let Some((other, second)) = two else {
        return read_tenants(&first, sink, i64::MIN, i64::MAX);
    };
    // Half the tenants each: rowids are dense short of deletes.
    let middle = most("tenants")? / 2;
    std::thread::scope(|threads| {
        let upper = std::thread::Builder::new()
            .name("store-scan".into())
            .spawn_scoped(threads, move || {
                read_tenants(&other, second, middle + 1, i64::MAX)
            })
            .map_err(|e| StoreError::Backend(format!("cannot start a scan thread: {e}")))?;
        let lower = read_tenants(&first, sink, i64::MIN, middle);
        let upper = upper
            .join()
            .unwrap_or_else(|_| Err(StoreError::Backend("the scan thread panicked".into())));
        lower.and(upper)
    })
}

/// Puts `other` in a read transaction on the snapshot `first` (in one
/// already) reads: every registry write logs a change version in its
/// transaction (`changes`), so two snapshots that see the same newest
/// version hold the same routes. False if a write came in between (`other`
/// is then newer; `first` stays where it is, as the size the sink was told
/// is from its snapshot). A `VACUUM` between the two, which may renumber
/// rowids without a change, is not seen: a hand-run maintenance at the very
/// moment a gateway starts.
fn one_snapshot(first: &Connection, other: &Connection) -> Result<bool, StoreError> {
    other.execute_batch("BEGIN").map_err(backend)?;
    // The first read fixes its snapshot.
    Ok(changes::newest_version(first)? == changes::newest_version(other)?)
}

/// Reads the domains of the tenants with rowids from `low` to `high` into
/// `sink`, tenants in the outer loop so each tenant's domains come together.
fn read_tenants(
    conn: &Connection,
    mut sink: Box<dyn RouteSink>,
    low: i64,
    high: i64,
) -> Result<(), StoreError> {
    // CROSS JOIN keeps tenants the outer loop: a tenant's domains in a row.
    let mut stmt = conn
        .prepare(&format!(
            "SELECT {TENANT_COLUMNS}, d.domain, t.rowid FROM tenants t CROSS JOIN domains d \
             ON d.tenant_id = t.id WHERE t.rowid BETWEEN ?1 AND ?2"
        ))
        .map_err(backend)?;
    let mut rows = stmt.query([low, high]).map_err(backend)?;
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
