//! The import's fast path: a batch's tenants written in one transaction with
//! their statements pipelined (up to [`IN_FLIGHT`] tenants' inserts on the
//! wire at once), where the careful path takes a savepoint and waits a round
//! trip for every statement. A bulk file rarely holds a bad row, so a batch
//! is tried whole; if any row fails, nothing of it is kept and the caller
//! writes it again row by row, to tell which rows fail.

use futures_util::stream::{FuturesUnordered, StreamExt};

use super::{pg_error, PgConn, PgStore};
use crate::store::StoreError;
use crate::tenant::NewTenant;

/// Tenants whose statements are sent before the first one's answer is read.
const IN_FLIGHT: usize = 64;

impl PgStore {
    /// Writes all of `batch` in one transaction: `true` when every row went
    /// in (and is committed), `false` when one failed (nothing is written).
    pub(super) async fn import_pipelined(
        &self,
        conn: &mut PgConn,
        batch: &[NewTenant],
    ) -> Result<bool, StoreError> {
        let tx = conn.transaction().await.map_err(pg_error)?;
        let mut rows = batch.iter();
        let mut in_flight = FuturesUnordered::new();
        let mut failed = false;
        loop {
            while in_flight.len() < IN_FLIGHT {
                let Some(tenant) = rows.next() else { break };
                in_flight.push(self.insert_tenant(&tx, tenant));
            }
            match in_flight.next().await {
                Some(Ok(_)) => {}
                Some(Err(_)) => {
                    failed = true;
                    break;
                }
                None => break,
            }
        }
        drop(in_flight);
        if failed {
            // A failed statement aborted the transaction: every row goes.
            tx.rollback().await.map_err(pg_error)?;
            return Ok(false);
        }
        let imported: Vec<String> = batch
            .iter()
            .flat_map(|t| t.domains.iter().cloned())
            .collect();
        self.record_change(&tx, Some(&imported)).await?;
        tx.commit().await.map_err(pg_error)?;
        Ok(true)
    }
}
