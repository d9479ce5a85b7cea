//! TLS-ALPN-01 challenge answers (RFC 8737): while an order for a domain is
//! pending, a handshake for it offering ALPN `acme-tls/1` gets a self-signed
//! certificate carrying the key authorization digest, and the connection ends
//! after the handshake. This replica's orders are answered from memory, other
//! replicas' from the store (see `TlsFront::handshake`).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use rcgen::{CertificateParams, CustomExtension, KeyPair};
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use super::TlsError;

/// The ALPN protocol of the challenge.
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

/// Pending TLS-ALPN-01 answers: a server configuration per domain.
#[derive(Debug, Default)]
pub struct AlpnChallenges {
    configs: RwLock<HashMap<String, Arc<ServerConfig>>>,
}

impl AlpnChallenges {
    /// Prepares the answer for `domain` from the SHA-256 digest of the key
    /// authorization.
    pub fn insert(
        &self,
        domain: &str,
        digest: &[u8],
        provider: &Arc<CryptoProvider>,
    ) -> Result<(), TlsError> {
        let config = answer_config(domain, digest, provider)?;
        self.configs
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(domain.to_owned(), config);
        Ok(())
    }

    pub fn remove(&self, domain: &str) {
        self.configs
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(domain);
    }

    /// The local answer for `name`, if this replica's order put one up.
    pub fn config_for(&self, name: &str) -> Option<Arc<ServerConfig>> {
        self.configs
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(name)
            .cloned()
    }
}

/// Whether the client asks for `acme-tls/1` (a CA validating TLS-ALPN-01).
pub fn offers_acme(hello: &ClientHello<'_>) -> bool {
    hello
        .alpn()
        .is_some_and(|mut protocols| protocols.any(|p| p == ACME_TLS_ALPN))
}

/// The SHA-256 digest of a key authorization, as the challenge certificate carries it.
pub fn digest(key_authorization: &str) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(key_authorization.as_bytes()).into()
}

/// A server configuration answering the challenge for `domain`: only ALPN
/// `acme-tls/1`, a self-signed certificate with the acmeIdentifier extension.
pub fn answer_config(
    domain: &str,
    digest: &[u8],
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let bad = |e: String| TlsError::Certificate {
        what: format!("tls-alpn-01 answer for {domain}"),
        reason: e,
    };
    let mut params =
        CertificateParams::new(vec![domain.to_owned()]).map_err(|e| bad(e.to_string()))?;
    params
        .custom_extensions
        .push(CustomExtension::new_acme_identifier(digest));
    let key = KeyPair::generate().map_err(|e| bad(e.to_string()))?;
    let cert = params.self_signed(&key).map_err(|e| bad(e.to_string()))?;
    let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    // Not `CertifiedKey::from_der`: its consistency check parses the
    // certificate with webpki, which rejects the critical acmeIdentifier
    // extension the challenge requires.
    let signing_key = provider
        .key_provider
        .load_private_key(key_der)
        .map_err(|e| bad(e.to_string()))?;
    let certified = CertifiedKey::new(vec![CertificateDer::from(cert.der().to_vec())], signing_key);
    let mut config = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(One(Arc::new(certified))));
    config.alpn_protocols = vec![ACME_TLS_ALPN.to_vec()];
    Ok(Arc::new(config))
}

/// Always the one challenge certificate.
#[derive(Debug)]
struct One(Arc<CertifiedKey>);

impl ResolvesServerCert for One {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}
