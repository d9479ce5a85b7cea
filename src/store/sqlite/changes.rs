//! The embedded store's change log, so a running gateway sees what other
//! processes write to its file (the CLI's `tenants suspend`, a second
//! gateway): each registry write records the domains it touched in
//! `changes`, in its own transaction and tagged with its writer, and
//! [`SqliteStore::follow_changes`] reads the log every [`POLL`], passing on
//! other writers' rows (a process's own writes invalidate its cache
//! directly). SQLite serialises writers, so versions grow in commit order
//! and "everything after the last version read" misses nothing.

use std::time::Duration;

use rusqlite::{params, Connection, Transaction};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{backend, SqliteStore};
use crate::store::feed::{Change, ChangeBatch, FeedEvent};
use crate::store::StoreError;

/// Schema step 6: the change log. `domains` is a JSON array of domain
/// names; `at` is in milliseconds since the epoch.
pub(super) const SCHEMA_CHANGES: &str = "
CREATE TABLE changes (
    version INTEGER PRIMARY KEY AUTOINCREMENT,
    writer  TEXT NOT NULL,
    domains TEXT NOT NULL,
    at      INTEGER NOT NULL
);
CREATE INDEX changes_at ON changes(at);
";

/// How often a gateway reads the log: a CLI change reaches it within this.
pub const POLL: Duration = Duration::from_millis(200);
/// How long rows are kept: far longer than a poll, so no follower misses one.
const RETENTION: Duration = Duration::from_secs(3600);

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Records that `domains` changed, on the writer's transaction.
pub(super) fn record(
    tx: &Transaction<'_>,
    writer: &str,
    domains: &[String],
) -> Result<(), StoreError> {
    if domains.is_empty() {
        return Ok(());
    }
    let domains = serde_json::to_string(domains)
        .map_err(|e| StoreError::Backend(format!("cannot log the change: {e}")))?;
    let now = now_ms();
    tx.prepare_cached("INSERT INTO changes (writer, domains, at) VALUES (?1, ?2, ?3)")
        .map_err(backend)?
        .execute(params![writer, domains, now])
        .map_err(backend)?;
    // Trimming now and then keeps the log small without a janitor.
    if fastrand::u8(..) == 0 {
        tx.execute(
            "DELETE FROM changes WHERE at < ?1",
            [now - RETENTION.as_millis() as i64],
        )
        .map_err(backend)?;
    }
    Ok(())
}

/// The newest version the log has given out (0 before its first row),
/// trimmed rows included.
pub(super) fn newest_version(conn: &Connection) -> Result<i64, StoreError> {
    conn.query_row(
        "SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'changes'), 0)",
        [],
        |r| r.get(0),
    )
    .map_err(backend)
}

/// Other writers' changes after version `after`: the newest version read
/// (own rows included) and the batch to apply.
fn changes_after(
    conn: &Connection,
    after: i64,
    writer: &str,
) -> Result<(i64, ChangeBatch), StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT version, writer, domains, at FROM changes WHERE version > ?1 ORDER BY version",
        )
        .map_err(backend)?;
    let rows = stmt
        .query_map([after], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })
        .map_err(backend)?;
    let mut newest = after;
    let mut changes = Vec::new();
    let mut newest_at = None;
    for row in rows {
        let (version, by, domains, at) = row.map_err(backend)?;
        // Versions have no holes (a rolled-back write gives its number
        // back), so a jump means rows were trimmed before this read them.
        if newest == after && version != after + 1 {
            changes.push(Change::Everything);
        }
        newest = version;
        if by == writer {
            continue;
        }
        newest_at = Some(at);
        // A row this gateway cannot read must still make it forget.
        changes.push(match serde_json::from_str(&domains) {
            Ok(domains) => Change::Domains(domains),
            Err(_) => Change::Everything,
        });
    }
    let lag = newest_at.map(|at| Duration::from_millis((now_ms() - at).max(0) as u64));
    Ok((newest, ChangeBatch { changes, lag }))
}

impl SqliteStore {
    /// Follows other processes' writes to the file until `shutdown`: a task
    /// that reads the change log every [`POLL`].
    pub fn follow_changes(
        &self,
        shutdown: CancellationToken,
    ) -> mpsc::UnboundedReceiver<FeedEvent> {
        let (events, rx) = mpsc::unbounded_channel();
        let store = self.clone();
        tokio::spawn(async move {
            // Changes before the start are in what the cache loads from now on.
            let mut late = false;
            let mut last = loop {
                match store.read(newest_version).await {
                    Ok(version) => break version,
                    Err(e) => {
                        if !late {
                            tracing::warn!(error = %e, "cannot read the store's change log; retrying");
                        }
                        late = true;
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(POLL) => {}
                    _ = shutdown.cancelled() => return,
                }
            };
            let _ = events.send(FeedEvent::Connected(true));
            if late {
                // Routes may have been cached meanwhile, from before changes
                // this reading no longer shows.
                let everything = ChangeBatch {
                    changes: vec![Change::Everything],
                    lag: None,
                };
                let _ = events.send(FeedEvent::Changes(everything));
            }
            let _ = events.send(FeedEvent::CaughtUp);
            let mut failing = false;
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(POLL) => {}
                    _ = shutdown.cancelled() => return,
                }
                let writer = store.inner.writer.clone();
                match store
                    .read(move |conn| changes_after(conn, last, &writer))
                    .await
                {
                    Ok((newest, batch)) => {
                        last = newest;
                        if failing {
                            failing = false;
                            let _ = events.send(FeedEvent::Connected(true));
                        }
                        if !batch.changes.is_empty()
                            && events.send(FeedEvent::Changes(batch)).is_err()
                        {
                            return;
                        }
                    }
                    Err(e) => {
                        // A busy file: the next poll reads the same rows.
                        if !failing {
                            tracing::warn!(error = %e, "cannot read the store's change log; retrying");
                            let _ = events.send(FeedEvent::Connected(false));
                        }
                        failing = true;
                    }
                }
            }
        });
        rx
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_trimmed_before_they_were_read_make_the_follower_forget_everything() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(SCHEMA_CHANGES).unwrap();
        for domain in ["a.test", "b.test", "c.test"] {
            conn.execute(
                "INSERT INTO changes (writer, domains, at) VALUES ('cli', ?1, 0)",
                [format!("[\"{domain}\"]")],
            )
            .unwrap();
        }
        let one = |d: &str| Change::Domains(vec![d.to_owned()]);
        let (newest, batch) = changes_after(&conn, 1, "gateway").unwrap();
        assert_eq!(newest, 3);
        assert_eq!(batch.changes, [one("b.test"), one("c.test")]);

        conn.execute("DELETE FROM changes WHERE version <= 2", [])
            .unwrap();
        let (_, batch) = changes_after(&conn, 1, "gateway").unwrap();
        assert_eq!(batch.changes, [Change::Everything, one("c.test")]);
        assert_eq!(newest_version(&conn).unwrap(), 3, "trimmed rows count");
    }
}
