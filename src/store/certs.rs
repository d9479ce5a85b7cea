//! What the store keeps for on-demand TLS, shared by every replica: each
//! domain's ACME certificate (or why its last order failed), which replica
//! is ordering it, and the ACME account credentials per CA directory.

use std::time::Duration;

use async_trait::async_trait;

use super::StoreError;

/// A domain's row in the certificate table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCert {
    pub domain: String,
    /// PEM chain (leaf first) and its PEM key; `None` until an order succeeds.
    pub cert_pem: Option<String>,
    pub key_pem: Option<String>,
    /// Expiry of the leaf, seconds since the Unix epoch.
    pub not_after: Option<i64>,
    /// Why the last order failed; cleared when one succeeds.
    pub failure: Option<String>,
    /// Last change, seconds since the Unix epoch.
    pub updated_at: i64,
}

impl StoredCert {
    /// The certificate and key, when the row has both.
    pub fn pem(&self) -> Option<(&str, &str)> {
        Some((self.cert_pem.as_deref()?, self.key_pem.as_deref()?))
    }
}

/// What a store without certificate tables answers.
fn unsupported() -> StoreError {
    StoreError::Unsupported("this store keeps no ACME certificates".into())
}

/// The ACME side of a store, kept apart from the registry so each store
/// implements it beside its certificate tables (`sqlite/certs.rs`,
/// `postgres/certs.rs`). A store without such tables answers `Unsupported`.
#[async_trait]
pub trait CertificateStore: Send + Sync {
    /// Readies the certificate tables for this process: creates them when
    /// they are not part of the store's own schema, and drops what an
    /// earlier run left that only it could use (called at start when
    /// `tls.acme` is configured).
    async fn prepare_certificates(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// The ACME certificate row of `domain`, if any.
    async fn get_certificate(&self, domain: &str) -> Result<Option<StoredCert>, StoreError> {
        let _ = domain;
        Err(unsupported())
    }

    /// Stores a newly issued certificate for `domain` (replacing the old one
    /// and clearing a recorded failure).
    async fn put_certificate(
        &self,
        domain: &str,
        cert_pem: &str,
        key_pem: &str,
        not_after: i64,
    ) -> Result<(), StoreError> {
        let _ = (domain, cert_pem, key_pem, not_after);
        Err(unsupported())
    }

    /// Records why an order for `domain` failed; a certificate already
    /// stored is kept (it still serves until it expires).
    async fn record_certificate_failure(
        &self,
        domain: &str,
        reason: &str,
    ) -> Result<(), StoreError> {
        let _ = (domain, reason);
        Err(unsupported())
    }

    /// Every row that holds a certificate, soonest expiry first (renewal).
    async fn list_certificates(&self) -> Result<Vec<StoredCert>, StoreError> {
        Err(unsupported())
    }

    /// Publishes a pending challenge answer (`key`: an HTTP-01 token, or
    /// `tls-alpn-01:{domain}`) so that whichever replica the CA reaches can
    /// answer it.
    async fn put_acme_challenge(
        &self,
        key: &str,
        key_authorization: &str,
    ) -> Result<(), StoreError> {
        let _ = (key, key_authorization);
        Err(unsupported())
    }

    /// The key authorization published under `key`, if any.
    async fn get_acme_challenge(&self, key: &str) -> Result<Option<String>, StoreError> {
        let _ = key;
        Err(unsupported())
    }

    /// Withdraws a challenge answer once its order is done.
    async fn delete_acme_challenge(&self, key: &str) -> Result<(), StoreError> {
        let _ = key;
        Err(unsupported())
    }

    /// Takes the right to order `domain`'s certificate for `lease`, so that
    /// replicas do not order the same certificate twice: true when `holder`
    /// now has it (also when it had it already). A lease past its time is
    /// free to take, so a replica that died mid-order blocks nobody for long.
    async fn claim_certificate_order(
        &self,
        domain: &str,
        holder: &str,
        lease: Duration,
    ) -> Result<bool, StoreError> {
        let _ = (domain, holder, lease);
        Err(unsupported())
    }

    /// Whether some process holds an unexpired order lease on `domain` (an
    /// order runs somewhere).
    async fn certificate_order_running(&self, domain: &str) -> Result<bool, StoreError> {
        let _ = domain;
        Err(unsupported())
    }

    /// Gives back the order lease of `domain`, if `holder` has it.
    async fn release_certificate_order(
        &self,
        domain: &str,
        holder: &str,
    ) -> Result<(), StoreError> {
        let _ = (domain, holder);
        Err(unsupported())
    }

    /// The ACME account credentials (JSON) kept for a CA directory URL.
    async fn get_acme_account(&self, directory: &str) -> Result<Option<String>, StoreError> {
        let _ = directory;
        Err(unsupported())
    }

    /// Keeps `credentials` for `directory` unless a replica stored some
    /// first; returns the credentials now stored (the first writer wins).
    async fn put_acme_account(
        &self,
        directory: &str,
        credentials: &str,
    ) -> Result<String, StoreError> {
        let _ = (directory, credentials);
        Err(unsupported())
    }
}
