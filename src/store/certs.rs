//! What the store keeps for on-demand TLS, shared by every replica: each
//! domain's ACME certificate (or why its last order failed) and the ACME
//! account credentials per CA directory.

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
pub(super) fn unsupported() -> super::StoreError {
    super::StoreError::Unsupported("this store keeps no ACME certificates".into())
}
