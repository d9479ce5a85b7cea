//! The change feed that keeps every gateway replica's routing cache in step
//! with the shared registry.
//!
//! Writer side: each registry write records the domains it touched in
//! `gateway_changes`, in its own transaction, and `NOTIFY`s the channel
//! (PostgreSQL delivers the notification at commit, and drops it with a
//! rollback). Reader side: [`PgStore::follow_changes`] keeps one dedicated
//! connection that `LISTEN`s; a notification, a reconnect and a periodic
//! resync all run the same catch-up query, which returns every logged change
//! it has not applied yet. So a notification missed while the connection was
//! down is repaired when it comes back, and the log (not the notification)
//! is the truth.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_postgres::types::Type;
use tokio_postgres::{AsyncMessage, Client, GenericClient, NoTls};
use tokio_util::sync::CancellationToken;

use super::{pg_error, pg_message, PgStore};
use crate::store::feed::{Change, ChangeBatch, FeedEvent};
use crate::store::StoreError;

/// The `LISTEN` channel; its payload is the change's version (informational).
pub const CHANNEL: &str = "tenant_gateway_changes";

/// The change log. `domains` NULL means "everything may have changed".
/// Created (idempotently) by every layout, so replicas of a django-tenants
/// deployment follow each other too.
pub(super) const CREATE_TABLE: &str = "
CREATE TABLE IF NOT EXISTS gateway_changes (
    version bigserial PRIMARY KEY,
    at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    domains text[]
);
CREATE INDEX IF NOT EXISTS gateway_changes_at ON gateway_changes (at);
";

/// Row triggers on a django-tenants deployment's tables (quoted names) that
/// log the writes Django makes itself, like the gateway's own writes
/// (`store.django.change_triggers`). A domain row logs its domain (old and
/// new); a tenant row's update logs all of the tenant's domains. Django
/// deletes a tenant's domains before the tenant, so that is logged too.
pub(super) fn django_triggers(tenant_table: &str, domain_table: &str) -> String {
    format!(
        "
CREATE OR REPLACE FUNCTION gateway_log_domain_write() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE v bigint;
BEGIN
    INSERT INTO gateway_changes (domains)
    VALUES (CASE TG_OP
        WHEN 'INSERT' THEN ARRAY[NEW.domain::text]
        WHEN 'DELETE' THEN ARRAY[OLD.domain::text]
        ELSE ARRAY[NEW.domain::text, OLD.domain::text] END)
    RETURNING version INTO v;
    PERFORM pg_notify('{CHANNEL}', v::text);
    RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION gateway_log_tenant_write() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE v bigint;
BEGIN
    INSERT INTO gateway_changes (domains)
    SELECT coalesce(array_agg(d.domain::text), '{{}}') FROM {domain_table} d WHERE d.tenant_id = OLD.id
    RETURNING version INTO v;
    PERFORM pg_notify('{CHANNEL}', v::text);
    RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS gateway_log_domain_write ON {domain_table};
CREATE TRIGGER gateway_log_domain_write AFTER INSERT OR UPDATE OR DELETE ON {domain_table}
    FOR EACH ROW EXECUTE FUNCTION gateway_log_domain_write();
DROP TRIGGER IF EXISTS gateway_log_tenant_write ON {tenant_table};
CREATE TRIGGER gateway_log_tenant_write AFTER UPDATE ON {tenant_table}
    FOR EACH ROW EXECUTE FUNCTION gateway_log_tenant_write();
"
    )
}

/// How long logged changes are kept. A replica cut off for longer than this
/// forgets its whole cache when it reconnects instead of replaying the log.
const RETENTION: Duration = Duration::from_secs(3600);
/// Every catch-up re-reads this much of the log before its last one: a change
/// is stamped just before its commit, so one that committed after the last
/// read can carry a slightly older stamp. Already applied versions are skipped.
const OVERLAP: Duration = Duration::from_secs(30);
/// How long one catch-up query may take before the connection is given up
/// and made again.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(10);
/// Pauses between reconnection attempts, doubling up to the last.
const RECONNECT_BACKOFF: [Duration; 4] = [
    Duration::from_millis(100),
    Duration::from_millis(250),
    Duration::from_millis(500),
    Duration::from_secs(1),
];

impl PgStore {
    /// Records that `domains` changed (`None`: everything), on the writer's
    /// transaction, and notifies the replicas at its commit. Call it as the
    /// transaction's last statement, so its time stamp is close to the commit.
    pub async fn record_change(
        &self,
        tx: &impl GenericClient,
        domains: Option<&[String]>,
    ) -> Result<(), StoreError> {
        tx.query_typed(
            "WITH c AS (INSERT INTO gateway_changes (domains) VALUES ($1) RETURNING version)
             SELECT pg_notify($2, version::text) FROM c",
            &[(&domains, Type::TEXT_ARRAY), (&CHANNEL, Type::TEXT)],
        )
        .await
        .map_err(pg_error)?;
        // Trimming now and then keeps the log small without a janitor process.
        if fastrand::u8(..) == 0 {
            let cutoff = RETENTION.as_secs_f64();
            tx.query_typed(
                "DELETE FROM gateway_changes WHERE at < clock_timestamp() - make_interval(secs => $1)",
                &[(&cutoff, Type::FLOAT8)],
            )
            .await
            .map_err(pg_error)?;
        }
        Ok(())
    }

    /// Follows the registry's changes until `shutdown`: a task that listens
    /// on a connection of its own, reconnects with backoff, and catches up on
    /// every notification, every `resync` and every reconnect.
    pub fn follow_changes(
        &self,
        resync: Duration,
        shutdown: CancellationToken,
    ) -> mpsc::UnboundedReceiver<FeedEvent> {
        let (events, rx) = mpsc::unbounded_channel();
        let store = self.clone();
        tokio::spawn(async move {
            let mut log = AppliedLog::default();
            let mut failures = 0usize;
            while !shutdown.is_cancelled() {
                match store.listen().await {
                    Ok((client, notified)) => {
                        failures = 0;
                        let _ = events.send(FeedEvent::Connected(true));
                        let ended =
                            follow(&client, notified, &mut log, &events, resync, &shutdown).await;
                        let _ = events.send(FeedEvent::Connected(false));
                        if let Err(e) = ended {
                            tracing::warn!(error = %e, "change feed lost its connection; reconnecting");
                        }
                    }
                    Err(e) => {
                        if failures == 0 {
                            tracing::warn!(error = %e, "change feed cannot connect; retrying");
                        }
                        failures += 1;
                    }
                }
                let pause = RECONNECT_BACKOFF[failures.min(RECONNECT_BACKOFF.len() - 1)];
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = shutdown.cancelled() => {}
                }
            }
        });
        rx
    }

    /// A new connection (outside the pool, since it must be polled for
    /// notifications) that listens on [`CHANNEL`]; the receiver yields once
    /// per notification and closes when the connection ends.
    async fn listen(&self) -> Result<(Client, mpsc::UnboundedReceiver<()>), StoreError> {
        let (client, mut connection) = self
            .config
            .connect(NoTls)
            .await
            .map_err(|e| StoreError::Unavailable(pg_message(&e)))?;
        let (notify, notified) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(message) = std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                match message {
                    Ok(AsyncMessage::Notification(_)) => {
                        if notify.send(()).is_err() {
                            break;
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::debug!(error = %e, "change feed connection ended");
                        break;
                    }
                }
            }
        });
        client
            .batch_execute(&format!("LISTEN {CHANNEL}"))
            .await
            .map_err(pg_error)?;
        Ok((client, notified))
    }
}

/// Catches up now, then on each notification (a burst costs one query) and
/// each resync tick, until the connection ends or `shutdown`.
async fn follow(
    client: &Client,
    mut notified: mpsc::UnboundedReceiver<()>,
    log: &mut AppliedLog,
    events: &mpsc::UnboundedSender<FeedEvent>,
    resync: Duration,
    shutdown: &CancellationToken,
) -> Result<(), StoreError> {
    let mut tick = tokio::time::interval(resync);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut caught_up = false;
    loop {
        // The first tick fires at once: catch up on connecting.
        tokio::select! {
            got = notified.recv() => {
                if got.is_none() {
                    return Err(StoreError::Unavailable("connection closed".into()));
                }
                while notified.try_recv().is_ok() {}
            }
            _ = tick.tick() => {}
            _ = shutdown.cancelled() => return Ok(()),
        }
        // A silently dead network would leave the query waiting forever.
        let batch = tokio::time::timeout(CATCH_UP_TIMEOUT, log.catch_up(client))
            .await
            .map_err(|_| StoreError::Unavailable("change log read timed out".into()))??;
        if !batch.changes.is_empty() && events.send(FeedEvent::Changes(batch)).is_err() {
            return Ok(());
        }
        if !caught_up {
            caught_up = true;
            let _ = events.send(FeedEvent::CaughtUp);
        }
    }
}

/// Which logged changes this replica has applied: the database time of its
/// last catch-up, and the versions seen since `OVERLAP` before it.
#[derive(Debug, Default)]
struct AppliedLog {
    /// Seconds since the epoch, by the database's clock.
    synced_at: Option<f64>,
    /// Version → its time stamp (seconds), for versions inside the overlap.
    applied: BTreeMap<i64, f64>,
}

impl AppliedLog {
    /// Reads the changes not applied yet (one round trip).
    async fn catch_up(&mut self, client: &Client) -> Result<ChangeBatch, StoreError> {
        let overlap = OVERLAP.as_secs_f64();
        // First catch-up of the process: whatever the overlap holds.
        let since = self.synced_at.unwrap_or(f64::MAX) - overlap;
        let applied: Vec<i64> = self.applied.keys().copied().collect();
        let rows = client
            .query_typed(
                "WITH now AS (SELECT clock_timestamp() AS t)
                 SELECT extract(epoch FROM now.t)::float8, c.version, c.domains,
                        extract(epoch FROM c.at)::float8
                 FROM now LEFT JOIN gateway_changes c
                   ON c.at > least(now.t, to_timestamp($1)) - make_interval(secs => $3)
                  AND c.version <> ALL($2)
                 ORDER BY c.version",
                &[
                    (&since.min(f64::from(u32::MAX)), Type::FLOAT8),
                    (&applied, Type::INT8_ARRAY),
                    (&overlap, Type::FLOAT8),
                ],
            )
            .await
            .map_err(pg_error)?;
        let now: f64 = rows.first().map_or(0.0, |r| r.get(0));
        let mut changes = Vec::new();
        if self
            .synced_at
            .is_some_and(|last| now - last > RETENTION.as_secs_f64() - overlap)
        {
            // Cut off for longer than the log keeps: replaying is not enough.
            changes.push(Change::Everything);
        }
        let mut newest_at = None;
        for row in &rows {
            let Some(version) = row.get::<_, Option<i64>>(1) else {
                continue;
            };
            let at: f64 = row.get(3);
            self.applied.insert(version, at);
            newest_at = Some(at);
            changes.push(match row.get::<_, Option<Vec<String>>>(2) {
                Some(domains) => Change::Domains(domains),
                None => Change::Everything,
            });
        }
        self.synced_at = Some(now);
        // The next catch-up reads from `now - overlap`: older versions cannot recur.
        self.applied.retain(|_, at| *at > now - overlap - 1.0);
        Ok(ChangeBatch {
            changes,
            lag: newest_at.map(|at| Duration::from_secs_f64((now - at).max(0.0))),
        })
    }
}
