//! Read-only connections of their own to the store file, for the long reads
//! (the warm-up's scan, a tenant search): lookups on the shared read
//! connection are not queued behind them, and the file is read through a
//! memory map (no copy of each page into SQLite's cache).

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use super::backend;
use crate::store::StoreError;

/// Bytes of the file mapped (SQLite caps it at its own maximum).
const MMAP_BYTES: i64 = 1 << 40;

/// Opens the existing store file at `path` read-only.
pub(super) fn open_reader(path: &Path) -> Result<Connection, StoreError> {
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
    Ok(conn)
}
