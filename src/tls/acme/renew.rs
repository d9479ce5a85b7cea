//! Background renewal: every `renew_check_interval` (plus jitter, so
//! replicas do not check in step) look at every stored certificate: drop
//! those of removed domains, serve newer ones other replicas obtained,
//! update the expiry gauge, and order a replacement for those expiring
//! within `renew_before` (not for suspended tenants). The new certificate
//! replaces the old one for new handshakes; open connections keep theirs.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{Inner, Reason, Refusal};
use crate::clock::unix_now;
use crate::store::StoreError;

pub(super) fn spawn(inner: Arc<Inner>, shutdown: CancellationToken) {
    let runtime = inner.runtime.clone();
    runtime.spawn(async move {
        let interval = inner.config.renew_check_interval;
        loop {
            let jitter_ms = fastrand::u64(0..=interval.as_millis() as u64 / 10);
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(interval + Duration::from_millis(jitter_ms)) => {}
            }
            if let Err(e) = check(&inner).await {
                tracing::warn!(error = %e, "cannot check certificates for renewal");
            }
        }
    });
}

async fn check(inner: &Arc<Inner>) -> Result<(), StoreError> {
    let now = unix_now();
    let renew_before = inner.config.renew_before.as_secs() as i64;
    for row in inner.store.list_certificates().await? {
        let (Some(not_after), Some((cert_pem, key_pem))) = (row.not_after, row.pem()) else {
            continue;
        };
        let domain = row.domain.as_str();
        let eligible = inner.eligible(domain).await;
        if let Err(Refusal::Unknown(_)) = eligible {
            // The domain was removed: stop serving its certificate.
            inner.forget(domain);
            continue;
        }
        match inner.resolver.dynamic_for(domain) {
            Some(held) if held.not_after < not_after => {
                if let Err(e) = inner.install(domain, cert_pem, key_pem) {
                    tracing::warn!(domain, error = %e, "stored certificate is unusable");
                }
            }
            Some(_) => inner.set_expiry_gauge(domain, not_after),
            None => {}
        }
        if not_after - now >= renew_before {
            continue;
        }
        match eligible {
            Ok(()) => {
                inner.start(domain, Reason::Renewal);
            }
            Err(refusal) => tracing::debug!(%refusal, "not renewing"),
        }
    }
    Ok(())
}
