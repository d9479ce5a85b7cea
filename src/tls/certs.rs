//! PEM certificate chains and keys turned into what rustls serves, with the
//! names and expiry read from the leaf certificate.

use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::TlsError;

/// A certificate ready to serve, and what the leaf says about itself.
#[derive(Debug, Clone)]
pub struct LoadedCert {
    pub key: Arc<CertifiedKey>,
    /// DNS names of the leaf (subject alternative names), lowercase.
    pub names: Vec<String>,
    /// Expiry of the leaf, seconds since the Unix epoch.
    pub not_after: i64,
}

/// Parses a PEM chain (leaf first) and its PEM private key.
pub fn load_pem(
    cert_pem: &[u8],
    key_pem: &[u8],
    provider: &CryptoProvider,
    what: &str,
) -> Result<LoadedCert, TlsError> {
    let bad = |reason: String| TlsError::Certificate {
        what: what.to_owned(),
        reason,
    };
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(format!("certificate PEM: {e}")))?;
    let Some(leaf) = chain.first() else {
        return Err(bad("no certificate in the PEM".into()));
    };
    let (names, not_after) = leaf_facts(leaf).map_err(bad)?;
    let key =
        PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| bad(format!("private key PEM: {e}")))?;
    let key = CertifiedKey::from_der(chain, key, provider)
        .map_err(|e| bad(format!("key does not fit the certificate: {e}")))?;
    Ok(LoadedCert {
        key: Arc::new(key),
        names,
        not_after,
    })
}

/// The leaf's DNS names and its expiry.
fn leaf_facts(leaf: &CertificateDer<'_>) -> Result<(Vec<String>, i64), String> {
    let (_, cert) = x509_parser::parse_x509_certificate(leaf.as_ref())
        .map_err(|e| format!("cannot parse the leaf certificate: {e}"))?;
    let not_after = cert.validity().not_after.timestamp();
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            if let x509_parser::extensions::GeneralName::DNSName(dns) = name {
                names.push(dns.to_ascii_lowercase());
            }
        }
    }
    if names.is_empty() {
        for cn in cert.subject().iter_common_name() {
            if let Ok(cn) = cn.as_str() {
                names.push(cn.to_ascii_lowercase());
            }
        }
    }
    Ok((names, not_after))
}
