//! Moves the meter's counts into the store: every `usage.flush_interval`,
//! before a usage read (so a read on this replica is exact), and once more
//! after the data path has drained at shutdown.
//!
//! A drained batch is kept, under its id, until the store confirms it. A
//! failed flush sends the same batch with the same id again next time (new
//! counts wait in the meter); the store records batch ids in the same
//! transaction as the counts, so a batch whose commit succeeded but whose
//! answer was lost is not added twice.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use prometheus::{IntCounterVec, Opts};
use tokio_util::sync::CancellationToken;

use super::Meter;
use crate::metrics::Metrics;
use crate::store::{Store, StoreError, UsageBatch, UsageQuery, UsageRow};

/// Tries of the last flush at exit (half a second apart).
const FINAL_FLUSH_ATTEMPTS: u32 = 5;

/// Flushes one meter into one store.
pub struct Flusher {
    meter: Arc<Meter>,
    store: Arc<dyn Store>,
    /// The batch drained and not yet confirmed; the lock also keeps two
    /// flushes from running at once.
    pending: tokio::sync::Mutex<Option<UsageBatch>>,
    /// Names this process's batches (`store::new_writer_name`).
    writer: String,
    sequence: AtomicU64,
    flushes: Option<IntCounterVec>,
    /// Stops the periodic flushes (see [`Flusher::finish`]).
    stop: CancellationToken,
}

impl Flusher {
    pub fn new(meter: Arc<Meter>, store: Arc<dyn Store>, metrics: Option<&Metrics>) -> Flusher {
        let flushes = metrics.and_then(|m| {
            let opts = Opts::new(
                "tenant_gateway_usage_flushes_total",
                "Usage flushes to the store, by result (ok, error)",
            );
            let vec = IntCounterVec::new(opts, &["result"]).ok()?;
            m.registry().register(Box::new(vec.clone())).ok()?;
            // Both at 0 from the start, so the first failure is a rise that
            // `rate()` and the alert see (not a series appearing at 1).
            for result in ["ok", "error"] {
                vec.with_label_values(&[result]);
            }
            Some(vec)
        });
        Flusher {
            meter,
            store,
            pending: tokio::sync::Mutex::new(None),
            writer: crate::store::new_writer_name(),
            sequence: AtomicU64::new(0),
            flushes,
            stop: CancellationToken::new(),
        }
    }

    /// A meter for `workers` data-path workers and its flusher, flushing
    /// into `store` every `interval` until [`Flusher::finish`].
    pub fn start(
        workers: usize,
        store: &Arc<dyn Store>,
        metrics: &Metrics,
        interval: Duration,
    ) -> Arc<Flusher> {
        let meter = Arc::new(Meter::new(workers));
        let flusher = Arc::new(Flusher::new(meter, store.clone(), Some(metrics)));
        tokio::spawn(flusher.clone().run(interval));
        flusher
    }

    /// Stops the periodic flushes and flushes one last time: call it once
    /// the data path has drained.
    pub async fn finish(&self) {
        self.stop.cancel();
        self.final_flush(FINAL_FLUSH_ATTEMPTS).await;
    }

    pub fn meter(&self) -> &Arc<Meter> {
        &self.meter
    }

    /// Sends the unconfirmed batch, if any, then everything counted since.
    /// On an error the counts stay (in the batch or the meter) for the next
    /// try.
    pub async fn flush(&self) -> Result<(), StoreError> {
        let result = self.flush_inner().await;
        if let Some(flushes) = &self.flushes {
            let label = if result.is_ok() { "ok" } else { "error" };
            flushes.with_label_values(&[label]).inc();
        }
        result
    }

    async fn flush_inner(&self) -> Result<(), StoreError> {
        let mut pending = self.pending.lock().await;
        if let Some(batch) = pending.as_ref() {
            self.store.add_usage(batch).await?;
            *pending = None;
        }
        let rows = self.meter.drain();
        if rows.is_empty() {
            return Ok(());
        }
        let id = format!(
            "{}-{}",
            self.writer,
            self.sequence.fetch_add(1, Ordering::Relaxed)
        );
        // Kept before sending: a flush cancelled mid-way leaves the batch
        // for the next one, under the same id.
        let batch = pending.insert(UsageBatch { id, rows });
        self.store.add_usage(batch).await?;
        *pending = None;
        Ok(())
    }

    /// Flushes this replica's counts, then reads the store: exact for
    /// this replica at any moment (other replicas' counts are there up to
    /// their last flush).
    pub async fn read(&self, query: &UsageQuery) -> Result<Vec<UsageRow>, StoreError> {
        self.flush().await?;
        self.store.read_usage(query).await
    }

    /// Flushes every `interval` until [`Flusher::finish`]; a failure is
    /// logged and its counts retried at the next tick.
    async fn run(self: Arc<Self>, interval: Duration) {
        let start = tokio::time::Instant::now() + interval;
        let mut ticks = tokio::time::interval_at(start, interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                () = self.stop.cancelled() => return,
            }
            if let Err(e) = self.flush().await {
                tracing::warn!(error = %e, "usage flush failed; its counts are kept for the next one");
            }
        }
    }

    /// The last flush, after the data path drained: retried a few times,
    /// since counts still unflushed when the process exits are lost.
    async fn final_flush(&self, attempts: u32) {
        let attempts = attempts.max(1);
        for attempt in 1..=attempts {
            match self.flush().await {
                Ok(()) => return,
                Err(e) if attempt < attempts => {
                    tracing::warn!(error = %e, attempt, "final usage flush failed, retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => {
                    let tenants = self.meter.tenants_held();
                    tracing::error!(error = %e, tenants, "final usage flush failed: these counts are lost");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{OpenMode, SqliteStore, UsageStore};
    use crate::traffic::usage::Sample;

    #[tokio::test]
    async fn a_batch_sent_again_is_not_counted_twice() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("s.db"), OpenMode::CreateIfMissing).unwrap();
        let meter = Arc::new(Meter::new(1));
        meter.record(0, "acme", &Sample::default());
        let rows = meter.drain();
        let batch = UsageBatch {
            id: "w-0".into(),
            rows,
        };
        store.add_usage(&batch).await.unwrap();
        // The commit went through but the answer was lost: sent again.
        store.add_usage(&batch).await.unwrap();
        let query = UsageQuery {
            from: 0,
            to: i64::MAX / 2,
            limit: 10,
            ..UsageQuery::default()
        };
        let stored = store.read_usage(&query).await.unwrap();
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].counts.requests, 1);
    }

    #[tokio::test]
    async fn a_read_includes_what_was_not_flushed_yet() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("s.db"), OpenMode::CreateIfMissing).unwrap();
        let meter = Arc::new(Meter::new(2));
        let flusher = Flusher::new(meter.clone(), Arc::new(store), None);
        for worker in [0, 1, 1] {
            meter.record(worker, "acme", &Sample::default());
        }
        let query = UsageQuery {
            tenant: Some("acme".into()),
            from: 0,
            to: i64::MAX / 2,
            limit: 10,
            ..UsageQuery::default()
        };
        let rows = flusher.read(&query).await.unwrap();
        assert_eq!(rows[0].counts.requests, 3);
        meter.record(0, "acme", &Sample::default());
        let rows = flusher.read(&query).await.unwrap();
        assert_eq!(rows[0].counts.requests, 4);
        assert_eq!(meter.tenants_held(), 0);
    }
}
