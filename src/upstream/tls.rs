//! TLS to `https://` backends: one rustls `ClientConfig` per pool (built on
//! each start or reload, shared by every connection of the pool), verifying
//! against the pool's `tls.ca` or the system roots, with an optional client
//! certificate; and telling certificate failures from other TLS errors.

use std::error::Error as StdError;
use std::sync::{Arc, OnceLock};

use rustls::{AlertDescription, ClientConfig, RootCertStore};

use crate::config::{load_certificates, load_private_key, BackendTlsConfig};

/// The system's trust roots, read once per process (it takes milliseconds).
fn system_roots() -> Arc<RootCertStore> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let found = rustls_native_certs::load_native_certs();
            for error in &found.errors {
                tracing::warn!(%error, "cannot read some system trust roots");
            }
            let mut roots = RootCertStore::empty();
            let (added, ignored) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                tracing::warn!(ignored, "no system trust roots: https:// backends without tls.ca will fail verification");
            }
            Arc::new(roots)
        })
        .clone()
}

/// The client config of a pool's `https://` backends. `Err` names the key
/// at fault (the files are checked with the config, so only a file changed
/// since gets here).
pub fn client_config(tls: Option<&BackendTlsConfig>) -> Result<Arc<ClientConfig>, String> {
    let default = BackendTlsConfig::default();
    let tls = tls.unwrap_or(&default);
    let roots = match &tls.ca {
        Some(path) => {
            let mut roots = RootCertStore::empty();
            for cert in load_certificates(path).map_err(|e| format!("tls.ca: {e}"))? {
                roots
                    .add(cert)
                    .map_err(|e| format!("tls.ca: {}: {e}", path.display()))?;
            }
            Arc::new(roots)
        }
        None => system_roots(),
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots);
    let mut config = match (&tls.client_cert, &tls.client_key) {
        (Some(cert), Some(key)) => {
            let chain = load_certificates(cert).map_err(|e| format!("tls.client_cert: {e}"))?;
            let key = load_private_key(key).map_err(|e| format!("tls.client_key: {e}"))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("tls.client_key: {e}"))?
        }
        _ => builder.with_no_client_auth(),
    };
    config.alpn_protocols = if tls.h2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    Ok(Arc::new(config))
}

/// Whether `err` (or an error it wraps) is a certificate failure: ours did
/// not verify the backend, or the backend refused ours (or its absence).
pub fn certificate_error<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a rustls::Error> {
    let mut source = Some(err);
    while let Some(e) = source {
        let tls = e.downcast_ref::<rustls::Error>().or_else(|| {
            e.downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        });
        if let Some(tls) = tls {
            return is_about_certificates(tls).then_some(tls);
        }
        source = e.source();
    }
    None
}

fn is_about_certificates(err: &rustls::Error) -> bool {
    match err {
        rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented => true,
        rustls::Error::AlertReceived(alert) => matches!(
            alert,
            AlertDescription::BadCertificate
                | AlertDescription::UnsupportedCertificate
                | AlertDescription::CertificateRevoked
                | AlertDescription::CertificateExpired
                | AlertDescription::CertificateUnknown
                | AlertDescription::UnknownCA
                | AlertDescription::CertificateRequired
                | AlertDescription::AccessDenied
        ),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_failures_are_told_from_other_tls_errors() {
        let bad = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        );
        assert!(certificate_error(&bad).is_some());
        let refused = rustls::Error::AlertReceived(AlertDescription::CertificateRequired);
        assert!(certificate_error(&refused).is_some());
        let other =
            std::io::Error::new(std::io::ErrorKind::InvalidData, rustls::Error::DecryptError);
        assert!(certificate_error(&other).is_none());
    }

    #[test]
    fn alpn_offers_h2_only_when_asked() {
        let h1 = client_config(None).unwrap();
        assert_eq!(h1.alpn_protocols, vec![b"http/1.1".to_vec()]);
        let tls = BackendTlsConfig {
            h2: true,
            ..BackendTlsConfig::default()
        };
        let h2 = client_config(Some(&tls)).unwrap();
        assert_eq!(h2.alpn_protocols[0], b"h2");
    }
}
