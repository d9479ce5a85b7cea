//! One order at a time per domain: handshakes and renewals join the running
//! order, which checks whether another replica stored what is needed, then
//! takes one of `max_concurrent_orders` slots and the store's order lease,
//! orders, and records the outcome (store, metrics, backoff after failures).
//! While another replica holds the lease, the order waits for its outcome
//! without a slot, so the wait never holds up this replica's other orders.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{watch, SemaphorePermit};

use super::{order, AcmeError, Inner, Reason};
use crate::clock::unix_now;
use crate::store::StoredCert;

/// One domain's order in flight and its failure backoff.
#[derive(Debug, Default)]
pub(super) struct DomainState {
    /// Turns `true` when the running order ends.
    running: Option<watch::Receiver<bool>>,
    failures: u32,
    retry_at: Option<Instant>,
}

/// How often a replica waiting on another's order looks at the store.
const LEASE_POLL: Duration = Duration::from_millis(200);
/// How long an order lease outlasts `order_timeout`: the holder's store
/// writes after the order, and clock steps.
const LEASE_SLACK: Duration = Duration::from_secs(30);

/// Whose turn it is to order a domain's certificate.
enum Turn<'a> {
    /// This replica holds the lease (or the store cannot say: see
    /// `take_turn`) and an order slot.
    Ours(SemaphorePermit<'a>),
    /// Another replica's order stored a certificate; it is served here now.
    Served,
    /// Another replica's order failed for this reason.
    FailedElsewhere(String),
}

/// The failure a certificate row records and when (by the recorder's clock).
fn failure_of(row: StoredCert) -> Option<(String, i64)> {
    Some((row.failure?, row.updated_at))
}

/// The wait before the next order after `failures` failures in a row:
/// `base` doubled per further failure, at most 64 times `base`.
pub fn backoff(base: Duration, failures: u32) -> Duration {
    base * 2u32.pow(failures.saturating_sub(1).min(6))
}

impl Inner {
    pub(super) fn is_running(&self, name: &str) -> bool {
        let domains = self.domains.lock().unwrap_or_else(|p| p.into_inner());
        domains.get(name).is_some_and(|d| d.running.is_some())
    }

    /// Starts an order for `name` unless one runs (then joins it) or the
    /// domain is backing off after failures (then `None`; an admin order
    /// ignores the backoff). The receiver turns `true` when the order ends.
    pub(super) fn start(
        self: &Arc<Self>,
        name: &str,
        reason: Reason,
    ) -> Option<watch::Receiver<bool>> {
        let (tx, rx) = watch::channel(false);
        {
            let mut domains = self.domains.lock().unwrap_or_else(|p| p.into_inner());
            let state = domains.entry(name.to_owned()).or_default();
            if let Some(running) = &state.running {
                return Some(running.clone());
            }
            let backing_off = state.retry_at.is_some_and(|at| Instant::now() < at);
            if backing_off && reason != Reason::Admin {
                return None;
            }
            state.running = Some(rx.clone());
        }
        let (inner, name) = (self.clone(), name.to_owned());
        self.runtime.spawn(async move {
            inner.run_order(&name, reason).await;
            {
                // Only domains backing off keep an entry.
                let mut domains = inner.domains.lock().unwrap_or_else(|p| p.into_inner());
                match domains.get_mut(&name) {
                    Some(state) if state.failures > 0 => state.running = None,
                    _ => {
                        domains.remove(&name);
                    }
                }
            }
            let _ = tx.send(true);
        });
        Some(rx)
    }

    /// Orders unless the store already has what is needed (another
    /// replica's order), and records the outcome.
    async fn run_order(&self, name: &str, reason: Reason) {
        let wanted_expiry = match reason {
            Reason::Renewal => unix_now() + self.config.renew_before.as_secs() as i64,
            Reason::First | Reason::Admin => unix_now(),
        };
        let stored = self.read_stored(name).await;
        let row = stored.as_ref().and_then(Option::as_ref);
        if reason != Reason::Admin && self.serve_stored(name, row, wanted_expiry) {
            self.clear_backoff(name);
            return;
        }
        // A failure recorded after this is another replica's outcome (told
        // by value, not by time stamp: replicas' clocks need not agree).
        let failure_before = stored.map(|row| row.and_then(failure_of));
        let _slot = match self
            .take_turn(name, reason, wanted_expiry, &failure_before)
            .await
        {
            Turn::Ours(slot) => slot,
            Turn::Served => {
                self.clear_backoff(name);
                return;
            }
            Turn::FailedElsewhere(why) => {
                let (failures, wait) = self.back_off(name);
                tracing::warn!(domain = name, error = %why, failures, retry_in = ?wait, "another replica's ACME order failed");
                return;
            }
        };
        self.order_and_record(name, reason).await;
        self.release_lease(name).await;
    }

    async fn release_lease(&self, name: &str) {
        if let Err(e) = self
            .store
            .release_certificate_order(name, &self.holder)
            .await
        {
            tracing::debug!(domain = name, error = %e, "cannot release the order lease; it runs out");
        }
    }

    /// Takes an order slot and the store's order lease for `name`, so
    /// replicas never order one certificate twice; while another replica
    /// holds the lease, gives the slot back and waits for the outcome of its
    /// order. A store that cannot answer does not stop the order (serving
    /// the handshake matters more than a duplicate order).
    async fn take_turn(
        &self,
        name: &str,
        reason: Reason,
        wanted_expiry: i64,
        failure_before: &Option<Option<(String, i64)>>,
    ) -> Turn<'_> {
        let lease = self.config.order_timeout + LEASE_SLACK;
        let mut announced = false;
        loop {
            // Claimed only with a slot in hand, so the lease's time is the order's.
            let slot = self
                .orders
                .acquire()
                .await
                .expect("the order semaphore is never closed");
            match self
                .store
                .claim_certificate_order(name, &self.holder, lease)
                .await
            {
                Ok(true) => {
                    // The holder may have finished just before this claim.
                    let Some(done) = self
                        .outcome_elsewhere(name, reason, wanted_expiry, failure_before)
                        .await
                    else {
                        return Turn::Ours(slot);
                    };
                    self.release_lease(name).await;
                    return done;
                }
                Ok(false) => {
                    drop(slot);
                    if !announced {
                        announced = true;
                        tracing::info!(
                            domain = name,
                            "another replica is ordering this certificate; waiting for its outcome"
                        );
                    }
                }
                Err(e) => {
                    tracing::warn!(domain = name, error = %e, "cannot take the order lease; ordering anyway");
                    return Turn::Ours(slot);
                }
            }
            tokio::time::sleep(LEASE_POLL).await;
            if let Some(done) = self
                .outcome_elsewhere(name, reason, wanted_expiry, failure_before)
                .await
            {
                return done;
            }
        }
    }

    /// What another replica's order left in the store, if anything: a
    /// certificate (now served here) or a new failure.
    async fn outcome_elsewhere(
        &self,
        name: &str,
        reason: Reason,
        wanted_expiry: i64,
        failure_before: &Option<Option<(String, i64)>>,
    ) -> Option<Turn<'_>> {
        // An admin order wants a certificate of its own: it only waits.
        if reason == Reason::Admin {
            return None;
        }
        // One reading of the row answers both questions.
        let row = self.read_stored(name).await?;
        if self.serve_stored(name, row.as_ref(), wanted_expiry) {
            return Some(Turn::Served);
        }
        // Without a first reading, no failure can be told new.
        let before = failure_before.as_ref()?;
        match row.and_then(failure_of) {
            Some(now) if Some(&now) != before.as_ref() => Some(Turn::FailedElsewhere(now.0)),
            _ => None,
        }
    }

    /// Orders, serves and stores the certificate, or records the failure.
    async fn order_and_record(&self, name: &str, reason: Reason) {
        let started = Instant::now();
        let outcome =
            match tokio::time::timeout(self.config.order_timeout, order::run(self, name)).await {
                Ok(Ok(issued)) => self
                    .install(name, &issued.cert_pem, &issued.key_pem)
                    .map(|not_after| (issued, not_after))
                    .map_err(AcmeError::from),
                Ok(Err(e)) => Err(e),
                Err(_) => Err(AcmeError::Timeout(self.config.order_timeout)),
            };
        let result = if outcome.is_ok() { "issued" } else { "failed" };
        self.metrics
            .acme
            .orders
            .with_label_values(&[reason.as_str(), result])
            .inc();
        match outcome {
            Ok((issued, not_after)) => {
                self.clear_backoff(name);
                tracing::info!(
                    domain = name,
                    reason = reason.as_str(),
                    not_after,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "certificate issued"
                );
                if let Err(e) = self
                    .store
                    .put_certificate(name, &issued.cert_pem, &issued.key_pem, not_after)
                    .await
                {
                    // Served by this replica anyway; others will order their own.
                    tracing::error!(domain = name, error = %e, "cannot store the new certificate");
                }
            }
            Err(e) => {
                let (failures, wait) = self.back_off(name);
                tracing::warn!(domain = name, reason = reason.as_str(), error = %e, failures, retry_in = ?wait, "ACME order failed");
                if let Err(e) = self
                    .store
                    .record_certificate_failure(name, &e.to_string())
                    .await
                {
                    tracing::warn!(domain = name, error = %e, "cannot record the failure");
                }
            }
        }
    }
}

impl Inner {
    /// Forgets earlier failures of `name` (it has a certificate now).
    fn clear_backoff(&self, name: &str) {
        let mut domains = self.domains.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(state) = domains.get_mut(name) {
            state.failures = 0;
            state.retry_at = None;
        }
    }

    /// Counts a failed order of `name` and sets when the next may start;
    /// returns the failures in a row and the wait.
    fn back_off(&self, name: &str) -> (u32, Duration) {
        let mut domains = self.domains.lock().unwrap_or_else(|p| p.into_inner());
        let state = domains.entry(name.to_owned()).or_default();
        state.failures += 1;
        let wait = backoff(self.config.failure_backoff, state.failures);
        state.retry_at = Some(Instant::now() + wait);
        (state.failures, wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_per_failure_up_to_64_times() {
        let base = Duration::from_secs(60);
        assert_eq!(backoff(base, 1), base);
        assert_eq!(backoff(base, 2), base * 2);
        assert_eq!(backoff(base, 4), base * 8);
        assert_eq!(backoff(base, 7), base * 64);
        assert_eq!(backoff(base, 40), base * 64);
    }
}
