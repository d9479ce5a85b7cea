//! On-demand certificates from an ACME CA (instant-acme). The first
//! handshake for a registered, active domain without a certificate takes one
//! from the store (another replica's order, or one from before a restart) or
//! places an order and waits for it; any other name never causes an order.
//! Orders are limited in number, single-flight per domain, and backed off
//! after failures; a background task renews certificates before expiry.

mod account;
mod flight;
mod order;
mod renew;
pub mod status;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use instant_acme::Account;
use rustls::crypto::CryptoProvider;
use tokio::sync::{OnceCell, Semaphore};
use tokio_util::sync::CancellationToken;

use super::alpn::AlpnChallenges;
use super::certs::load_pem;
use super::challenge::Challenges;
use super::resolver::{CertResolver, DynamicCert};
use super::{OnDemand, TlsError, TlsFront};
use crate::clock::unix_now;
use crate::config::AcmeConfig;
use crate::metrics::Metrics;
use crate::routing::{Resolution, Router};
use crate::store::{Store, StoreError, StoredCert};
use crate::tenant::TenantStatus;
use status::CertStatus;

/// How long a handshake waits for the change feed's first catch-up.
const FEED_WAIT: Duration = Duration::from_secs(5);

/// Why an order failed.
#[derive(Debug, thiserror::Error)]
pub enum AcmeError {
    #[error("ACME: {0}")]
    Protocol(#[from] instant_acme::Error),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Tls(#[from] TlsError),
    #[error("the CA refused: {0}")]
    Rejected(String),
    #[error("stored ACME account credentials: {0}")]
    Credentials(String),
    #[error("the order took longer than {0:?}")]
    Timeout(Duration),
}

/// Why a name may not get a certificate (no order is placed).
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("'{0}' is not a registered domain")]
    Unknown(String),
    #[error("'{0}' is only covered by the wildcard domain '{1}' (no certificate for wildcards); register the name exactly")]
    Wildcard(String, String),
    #[error("the tenant of '{0}' is suspended")]
    Suspended(String),
    #[error("cannot check '{0}' now: {1}")]
    Lookup(String, String),
}

/// Why an order was placed, for the `reason` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    First,
    Renewal,
    Admin,
}

impl Reason {
    fn as_str(self) -> &'static str {
        match self {
            Reason::First => "first",
            Reason::Renewal => "renewal",
            Reason::Admin => "admin",
        }
    }
}

/// The on-demand issuer, shared by the TLS front and the admin API.
#[derive(Clone)]
pub struct Acme {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    config: AcmeConfig,
    store: Arc<dyn Store>,
    router: Arc<Router>,
    resolver: Arc<CertResolver>,
    challenges: Arc<Challenges>,
    alpn: Arc<AlpnChallenges>,
    provider: Arc<CryptoProvider>,
    metrics: Arc<Metrics>,
    /// Orders run on the control runtime, whichever worker's handshake asked.
    runtime: tokio::runtime::Handle,
    account: OnceCell<Account>,
    /// Names this process in the store's order leases.
    holder: String,
    orders: Semaphore,
    domains: Mutex<HashMap<String, flight::DomainState>>,
}

impl Acme {
    /// Must be called on the runtime that should run orders (the control one).
    pub fn new(
        config: AcmeConfig,
        store: Arc<dyn Store>,
        router: Arc<Router>,
        front: &TlsFront,
        metrics: Arc<Metrics>,
    ) -> Acme {
        // Every order series exists from the start at 0, so that rate() and
        // increase() (the dashboard, the alerts) count the first order too.
        for reason in [Reason::First, Reason::Renewal, Reason::Admin] {
            for result in ["issued", "failed"] {
                metrics
                    .acme
                    .orders
                    .with_label_values(&[reason.as_str(), result]);
            }
        }
        Acme {
            inner: Arc::new(Inner {
                orders: Semaphore::new(config.max_concurrent_orders),
                config,
                store,
                router,
                resolver: front.resolver.clone(),
                challenges: front.challenges.clone(),
                alpn: front.alpn.clone(),
                provider: front.provider.clone(),
                metrics,
                runtime: tokio::runtime::Handle::current(),
                account: OnceCell::new(),
                holder: crate::store::new_writer_name(),
                domains: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Starts the background renewal (stops with `shutdown`).
    pub fn start_renewal(&self, shutdown: CancellationToken) {
        renew::spawn(self.inner.clone(), shutdown);
    }

    /// Orders a certificate for `domain` now (admin API), ignoring any
    /// backoff; returns its state (pending) without waiting.
    pub async fn issue(&self, domain: &str) -> Result<CertStatus, Refusal> {
        self.inner.eligible(domain).await?;
        self.inner.start(domain, Reason::Admin);
        Ok(self
            .status(domain)
            .await
            .unwrap_or_else(|_| CertStatus::pending()))
    }

    /// Stops serving this replica's copy of a domain's certificate (after the
    /// domain was removed here, or changed anywhere: see `routing::follow`).
    pub fn forget(&self, domain: &str) {
        self.inner.forget(domain);
    }

    /// The certificate state of `domain` as this replica and the store see
    /// it: pending while an order runs here or holds the store's lease.
    pub async fn status(&self, domain: &str) -> Result<CertStatus, StoreError> {
        let pending = self.inner.is_running(domain)
            || self.inner.store.certificate_order_running(domain).await?;
        let row = self.inner.store.get_certificate(domain).await?;
        Ok(status::describe(pending, row.as_ref(), unix_now()))
    }
}

#[async_trait]
impl OnDemand for Acme {
    async fn ensure(&self, name: &str) {
        let inner = &self.inner;
        // The feed's first catch-up replays recent changes, and a changed
        // domain's certificate is forgotten: let that happen before, not
        // just after, this handshake gets one.
        inner.router.until_feed_caught_up(FEED_WAIT).await;
        if let Err(refusal) = inner.eligible(name).await {
            inner.metrics.acme.refused.inc();
            tracing::debug!(%refusal, "no certificate for this handshake");
            return;
        }
        if inner.load_stored(name, unix_now()).await {
            return;
        }
        let Some(mut done) = inner.start(name, Reason::First) else {
            inner.metrics.acme.refused.inc();
            tracing::debug!(domain = name, "ACME orders for this domain are backing off");
            return;
        };
        // The handshake waits for the order; `TlsFront::accept`'s timeout
        // bounds the wait, and the order goes on if the handshake gives up.
        let _ = done.wait_for(|done| *done).await;
        // A change to the domain may have dropped the copy meanwhile (see
        // `Acme::forget`); the store still has it.
        if !inner.resolver.has(name) {
            inner.load_stored(name, unix_now()).await;
        }
    }

    async fn may_issue(&self, name: &str) -> bool {
        self.inner.eligible(name).await.is_ok()
    }
}

impl Inner {
    async fn account(&self) -> Result<Account, AcmeError> {
        self.account
            .get_or_try_init(|| account::load_or_create(self))
            .await
            .cloned()
    }

    /// Only exact registered domains of active tenants get certificates, so
    /// nobody can make the gateway order for names of their choosing. The
    /// name is normalised as a Host would be (with `routing.strip_www`,
    /// `www.shop.example.com` qualifies through `shop.example.com`).
    async fn eligible(&self, name: &str) -> Result<(), Refusal> {
        if name.starts_with("*.") {
            // HTTP-01 and TLS-ALPN-01 cannot prove a wildcard.
            return Err(Refusal::Wildcard(name.to_owned(), name.to_owned()));
        }
        let host = self
            .router
            .normalize(name.as_bytes())
            .map_err(|_| Refusal::Unknown(name.to_owned()))?;
        let resolution = self
            .router
            .resolve(host.as_str())
            .await
            .map_err(|e| Refusal::Lookup(name.to_owned(), e.to_string()))?;
        let Resolution::Tenant(routed) = resolution else {
            return Err(Refusal::Unknown(name.to_owned()));
        };
        if routed.matched_domain != host.as_str() {
            return Err(Refusal::Wildcard(
                name.to_owned(),
                routed.matched_domain.clone(),
            ));
        }
        if routed.tenant.status == TenantStatus::Suspended {
            return Err(Refusal::Suspended(name.to_owned()));
        }
        Ok(())
    }

    /// Serves the stored certificate of `name` if it expires after
    /// `not_before_expiry`; says whether it did.
    async fn load_stored(&self, name: &str, not_before_expiry: i64) -> bool {
        let row = self.read_stored(name).await.flatten();
        self.serve_stored(name, row.as_ref(), not_before_expiry)
    }

    /// The certificate row of `name`; `None` when the store cannot say.
    async fn read_stored(&self, name: &str) -> Option<Option<StoredCert>> {
        match self.store.get_certificate(name).await {
            Ok(row) => Some(row),
            Err(e) => {
                tracing::warn!(domain = name, error = %e, "cannot read the stored certificate");
                None
            }
        }
    }

    /// Serves the certificate of `row` (read for `name`) if it expires after
    /// `not_before_expiry`; says whether it did.
    fn serve_stored(&self, name: &str, row: Option<&StoredCert>, not_before_expiry: i64) -> bool {
        let Some((cert_pem, key_pem)) = row.and_then(|row| row.pem()) else {
            return false;
        };
        if row.and_then(|r| r.not_after).unwrap_or(0) <= not_before_expiry {
            return false;
        }
        match self.install(name, cert_pem, key_pem) {
            Ok(_) => {
                self.metrics.acme.loaded.inc();
                true
            }
            Err(e) => {
                tracing::warn!(domain = name, error = %e, "stored certificate is unusable");
                false
            }
        }
    }

    /// Parses and serves a certificate for `name`; returns its expiry.
    fn install(&self, name: &str, cert_pem: &str, key_pem: &str) -> Result<i64, TlsError> {
        let what = format!("ACME certificate for {name}");
        let loaded = load_pem(
            cert_pem.as_bytes(),
            key_pem.as_bytes(),
            &self.provider,
            &what,
        )?;
        self.resolver.install(
            name,
            DynamicCert {
                key: loaded.key,
                not_after: loaded.not_after,
            },
        );
        self.set_expiry_gauge(name, loaded.not_after);
        Ok(loaded.not_after)
    }

    fn forget(&self, name: &str) {
        self.resolver.remove(name);
        let _ = self.metrics.acme.expiry_days.remove_label_values(&[name]);
    }

    fn set_expiry_gauge(&self, name: &str, not_after: i64) {
        let days = (not_after - unix_now()) as f64 / 86_400.0;
        self.metrics
            .acme
            .expiry_days
            .with_label_values(&[name])
            .set(days);
    }
}
