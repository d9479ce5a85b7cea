//! Usage metering's side of the store: per tenant per hour counters that
//! every replica adds to (`gateway_usage`), written a batch at a time with
//! the batch's id recorded in the same transaction, so a batch sent again
//! after a lost answer is not counted twice.

use async_trait::async_trait;

use super::StoreError;

/// One tenant's counts for one hour (or the sum of many requests').
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UsageCounts {
    pub requests: u64,
    /// Request body bytes read from the client (heads not counted).
    pub bytes_in: u64,
    /// Response body bytes sent to the client (heads not counted).
    pub bytes_out: u64,
    pub status_4xx: u64,
    pub status_5xx: u64,
    /// Time the backend spent on the requests, in microseconds.
    pub upstream_micros: u64,
}

impl UsageCounts {
    /// Adds `other` to these counts.
    pub fn add(&mut self, other: &UsageCounts) {
        self.requests += other.requests;
        self.bytes_in += other.bytes_in;
        self.bytes_out += other.bytes_out;
        self.status_4xx += other.status_4xx;
        self.status_5xx += other.status_5xx;
        self.upstream_micros += other.upstream_micros;
    }

    /// The counts as the store's signed 64-bit columns take them.
    pub(crate) fn as_i64(&self) -> [i64; 6] {
        [
            self.requests,
            self.bytes_in,
            self.bytes_out,
            self.status_4xx,
            self.status_5xx,
            self.upstream_micros,
        ]
        .map(|v| i64::try_from(v).unwrap_or(i64::MAX))
    }

    /// Counts read back from the store's columns.
    pub(crate) fn from_i64(v: [i64; 6]) -> UsageCounts {
        let [requests, bytes_in, bytes_out, status_4xx, status_5xx, upstream_micros] =
            v.map(|v| u64::try_from(v).unwrap_or(0));
        UsageCounts {
            requests,
            bytes_in,
            bytes_out,
            status_4xx,
            status_5xx,
            upstream_micros,
        }
    }
}

/// A tenant's counts for the hour starting at `hour` (Unix seconds, a
/// multiple of 3600, UTC).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageRow {
    pub tenant: String,
    pub hour: i64,
    pub counts: UsageCounts,
}

/// What one flush adds: at most one row per tenant and hour, under an id
/// that is the same each time the batch is sent again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageBatch {
    pub id: String,
    pub rows: Vec<UsageRow>,
}

/// Which rows to read: hours in `from..to` (Unix seconds, `to` exclusive),
/// of one tenant or all, ordered by tenant then hour, after the row
/// `after` names (a page's `next`).
#[derive(Debug, Clone, Default)]
pub struct UsageQuery {
    pub tenant: Option<String>,
    pub from: i64,
    pub to: i64,
    pub after: Option<(String, i64)>,
    pub limit: usize,
}

/// How long a batch id is remembered: a batch retried later than this
/// would be counted again (flushes retry every `usage.flush_interval`).
pub const BATCH_IDS_KEPT_SECS: i64 = 7 * 24 * 3600;

/// Rows per statement when a batch is written (one transaction still).
pub const ROWS_PER_STATEMENT: usize = 5000;

/// The usage counters of every replica. The defaults keep nothing (stores
/// made for tests and benches).
#[async_trait]
pub trait UsageStore {
    /// Adds the batch's counts to the stored ones, in one transaction that
    /// also records the batch id; a batch id already recorded adds nothing.
    async fn add_usage(&self, batch: &UsageBatch) -> Result<(), StoreError> {
        let _ = batch;
        Err(StoreError::Unsupported(
            "this store keeps no usage counters".into(),
        ))
    }

    /// The stored rows `query` selects.
    async fn read_usage(&self, query: &UsageQuery) -> Result<Vec<UsageRow>, StoreError> {
        let _ = query;
        Ok(Vec::new())
    }
}
