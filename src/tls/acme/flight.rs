//! One order at a time per domain: handshakes and renewals join the running
//! order, the order waits for one of `max_concurrent_orders` slots, checks
//! whether another replica stored what is needed, then orders and records
//! the outcome (store, metrics, backoff after failures).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::{order, AcmeError, Inner, Reason};
use crate::tls::certs::unix_now;

/// One domain's order in flight and its failure backoff.
#[derive(Debug, Default)]
pub(super) struct DomainState {
    /// Turns `true` when the running order ends.
    running: Option<watch::Receiver<bool>>,
    failures: u32,
    retry_at: Option<Instant>,
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

    /// Waits for an order slot, then orders unless the store already has
    /// what is needed (another replica's order), and records the outcome.
    async fn run_order(&self, name: &str, reason: Reason) {
        let Ok(_permit) = self.orders.acquire().await else {
            return;
        };
        let wanted_expiry = match reason {
            Reason::Renewal => unix_now() + self.config.renew_before.as_secs() as i64,
            Reason::First | Reason::Admin => unix_now(),
        };
        if reason != Reason::Admin && self.load_stored(name, wanted_expiry).await {
            return;
        }
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
        let mut failures = 0;
        match outcome {
            Ok((issued, not_after)) => {
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
                let wait = {
                    let mut domains = self.domains.lock().unwrap_or_else(|p| p.into_inner());
                    let state = domains.entry(name.to_owned()).or_default();
                    state.failures += 1;
                    failures = state.failures;
                    let wait = backoff(self.config.failure_backoff, failures);
                    state.retry_at = Some(Instant::now() + wait);
                    wait
                };
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
        if failures == 0 {
            let mut domains = self.domains.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(state) = domains.get_mut(name) {
                state.failures = 0;
                state.retry_at = None;
            }
        }
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
