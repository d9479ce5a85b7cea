//! The PostgreSQL store's usage counters: `gateway_usage`, one row per
//! tenant and hour that every replica adds to with an upsert, and the ids
//! of the batches added (`gateway_usage_batches`). Both are the gateway's
//! own tables in every layout, made at start like the change log.

use async_trait::async_trait;

use super::{pg_error, PgStore};
use crate::store::usage::{
    UsageBatch, UsageCounts, UsageQuery, UsageRow, UsageStore, BATCH_IDS_KEPT_SECS,
    ROWS_PER_STATEMENT,
};
use crate::store::StoreError;

/// The usage tables (idempotent: run at every start, in every layout).
pub(super) const CREATE_TABLES: &str = "
CREATE TABLE IF NOT EXISTS gateway_usage (
    tenant_id   text NOT NULL,
    hour        timestamptz NOT NULL,
    requests    bigint NOT NULL,
    bytes_in    bigint NOT NULL,
    bytes_out   bigint NOT NULL,
    status_4xx  bigint NOT NULL,
    status_5xx  bigint NOT NULL,
    upstream_us bigint NOT NULL,
    PRIMARY KEY (tenant_id, hour)
);
CREATE INDEX IF NOT EXISTS gateway_usage_hour ON gateway_usage (hour);
CREATE TABLE IF NOT EXISTS gateway_usage_batches (
    id       text PRIMARY KEY,
    added_at timestamptz NOT NULL DEFAULT now()
);
";

/// Adds rows given as arrays (one statement for thousands of rows).
const UPSERT: &str = "
INSERT INTO gateway_usage AS u (tenant_id, hour, requests, bytes_in, bytes_out,
    status_4xx, status_5xx, upstream_us)
SELECT t, to_timestamp(h), r, bi, bo, c4, c5, us
FROM unnest($1::text[], $2::int8[], $3::int8[], $4::int8[], $5::int8[], $6::int8[],
    $7::int8[], $8::int8[]) AS x(t, h, r, bi, bo, c4, c5, us)
ON CONFLICT (tenant_id, hour) DO UPDATE SET
    requests = u.requests + EXCLUDED.requests,
    bytes_in = u.bytes_in + EXCLUDED.bytes_in,
    bytes_out = u.bytes_out + EXCLUDED.bytes_out,
    status_4xx = u.status_4xx + EXCLUDED.status_4xx,
    status_5xx = u.status_5xx + EXCLUDED.status_5xx,
    upstream_us = u.upstream_us + EXCLUDED.upstream_us";

#[async_trait]
impl UsageStore for PgStore {
    async fn add_usage(&self, batch: &UsageBatch) -> Result<(), StoreError> {
        let mut conn = self.conn().await?;
        let tx = conn.transaction().await.map_err(pg_error)?;
        tx.execute(
            "DELETE FROM gateway_usage_batches WHERE added_at < now() - make_interval(secs => $1)",
            &[&(BATCH_IDS_KEPT_SECS as f64)],
        )
        .await
        .map_err(pg_error)?;
        let fresh = tx
            .execute(
                "INSERT INTO gateway_usage_batches (id) VALUES ($1) ON CONFLICT (id) DO NOTHING",
                &[&batch.id],
            )
            .await
            .map_err(pg_error)?;
        if fresh == 0 {
            // Added before, its answer lost: adding it again would double it.
            return tx.commit().await.map_err(pg_error);
        }
        for rows in batch.rows.chunks(ROWS_PER_STATEMENT) {
            let tenants: Vec<&str> = rows.iter().map(|r| r.tenant.as_str()).collect();
            let hours: Vec<i64> = rows.iter().map(|r| r.hour).collect();
            let counts: Vec<[i64; 6]> = rows.iter().map(|r| r.counts.as_i64()).collect();
            let column = |i: usize| counts.iter().map(|c| c[i]).collect::<Vec<i64>>();
            let (r, bi, bo, c4, c5, us) = (
                column(0),
                column(1),
                column(2),
                column(3),
                column(4),
                column(5),
            );
            tx.execute(UPSERT, &[&tenants, &hours, &r, &bi, &bo, &c4, &c5, &us])
                .await
                .map_err(pg_error)?;
        }
        tx.commit().await.map_err(pg_error)
    }

    async fn read_usage(&self, query: &UsageQuery) -> Result<Vec<UsageRow>, StoreError> {
        let conn = self.conn().await?;
        let (after_tenant, after_hour) = match &query.after {
            Some((tenant, hour)) => (Some(tenant.as_str()), *hour),
            None => (None, 0),
        };
        let limit = i64::try_from(query.limit).unwrap_or(i64::MAX);
        let rows = conn
            .query(
                "SELECT tenant_id, extract(epoch FROM hour)::int8, requests, bytes_in, bytes_out,
                     status_4xx, status_5xx, upstream_us
                 FROM gateway_usage
                 WHERE hour >= to_timestamp($1) AND hour < to_timestamp($2)
                   AND ($3::text IS NULL OR tenant_id = $3)
                   AND ($4::text IS NULL OR (tenant_id, hour) > ($4, to_timestamp($5)))
                 ORDER BY tenant_id, hour LIMIT $6",
                &[
                    &(query.from as f64),
                    &(query.to as f64),
                    &query.tenant,
                    &after_tenant,
                    &(after_hour as f64),
                    &limit,
                ],
            )
            .await
            .map_err(pg_error)?;
        Ok(rows
            .iter()
            .map(|r| UsageRow {
                tenant: r.get(0),
                hour: r.get(1),
                counts: UsageCounts::from_i64([
                    r.get(2),
                    r.get(3),
                    r.get(4),
                    r.get(5),
                    r.get(6),
                    r.get(7),
                ]),
            })
            .collect())
    }
}
