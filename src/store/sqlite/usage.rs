//! The embedded store's usage counters (schema step 8): one row per tenant
//! and hour, added to by each flush in one transaction with its batch id.

use async_trait::async_trait;
use rusqlite::params;

use super::{backend, SqliteStore};
use crate::clock::unix_now;
use crate::store::usage::BATCH_IDS_KEPT_SECS;
use crate::store::usage::{UsageBatch, UsageCounts, UsageQuery, UsageRow, UsageStore};
use crate::store::StoreError;

/// Schema step adding the usage counters and the ids of the batches added.
pub(super) const SCHEMA_USAGE: &str = "
CREATE TABLE gateway_usage (
    tenant_id  TEXT NOT NULL,
    hour       INTEGER NOT NULL,
    requests   INTEGER NOT NULL,
    bytes_in   INTEGER NOT NULL,
    bytes_out  INTEGER NOT NULL,
    status_4xx INTEGER NOT NULL,
    status_5xx INTEGER NOT NULL,
    upstream_us INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, hour)
);
CREATE INDEX gateway_usage_hour ON gateway_usage(hour);
CREATE TABLE gateway_usage_batches (
    id       TEXT PRIMARY KEY,
    added_at INTEGER NOT NULL
);
";

#[async_trait]
impl UsageStore for SqliteStore {
    async fn add_usage(&self, batch: &UsageBatch) -> Result<(), StoreError> {
        let batch = batch.clone();
        self.write(move |tx| {
            let now = unix_now();
            tx.execute(
                "DELETE FROM gateway_usage_batches WHERE added_at < ?1",
                params![now - BATCH_IDS_KEPT_SECS],
            )
            .map_err(backend)?;
            let fresh = tx
                .execute(
                    "INSERT INTO gateway_usage_batches (id, added_at) VALUES (?1, ?2)
                     ON CONFLICT (id) DO NOTHING",
                    params![batch.id, now],
                )
                .map_err(backend)?;
            if fresh == 0 {
                return Ok(());
            }
            let mut upsert = tx
                .prepare_cached(
                    "INSERT INTO gateway_usage (tenant_id, hour, requests, bytes_in, bytes_out,
                         status_4xx, status_5xx, upstream_us)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                     ON CONFLICT (tenant_id, hour) DO UPDATE SET
                         requests = requests + excluded.requests,
                         bytes_in = bytes_in + excluded.bytes_in,
                         bytes_out = bytes_out + excluded.bytes_out,
                         status_4xx = status_4xx + excluded.status_4xx,
                         status_5xx = status_5xx + excluded.status_5xx,
                         upstream_us = upstream_us + excluded.upstream_us",
                )
                .map_err(backend)?;
            for row in &batch.rows {
                let [r, bi, bo, c4, c5, us] = row.counts.as_i64();
                upsert
                    .execute(params![row.tenant, row.hour, r, bi, bo, c4, c5, us])
                    .map_err(backend)?;
            }
            Ok(())
        })
        .await
    }

    async fn read_usage(&self, query: &UsageQuery) -> Result<Vec<UsageRow>, StoreError> {
        let query = query.clone();
        self.read(move |conn| {
            let (after_tenant, after_hour) = match &query.after {
                Some((tenant, hour)) => (Some(tenant.clone()), *hour),
                None => (None, 0),
            };
            let mut select = conn
                .prepare_cached(
                    "SELECT tenant_id, hour, requests, bytes_in, bytes_out, status_4xx,
                         status_5xx, upstream_us
                     FROM gateway_usage
                     WHERE hour >= ?1 AND hour < ?2
                       AND (?3 IS NULL OR tenant_id = ?3)
                       AND (?4 IS NULL OR tenant_id > ?4 OR (tenant_id = ?4 AND hour > ?5))
                     ORDER BY tenant_id, hour LIMIT ?6",
                )
                .map_err(backend)?;
            let limit = i64::try_from(query.limit).unwrap_or(i64::MAX);
            let rows = select
                .query_map(
                    params![
                        query.from,
                        query.to,
                        query.tenant,
                        after_tenant,
                        after_hour,
                        limit
                    ],
                    |r| {
                        Ok(UsageRow {
                            tenant: r.get(0)?,
                            hour: r.get(1)?,
                            counts: UsageCounts::from_i64([
                                r.get(2)?,
                                r.get(3)?,
                                r.get(4)?,
                                r.get(5)?,
                                r.get(6)?,
                                r.get(7)?,
                            ]),
                        })
                    },
                )
                .map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
    }
}
