//! A pool's `tls:` section, for its `https://` backends: which roots verify
//! them, the name they are verified as, an optional client certificate
//! (mTLS), and whether to offer HTTP/2. The PEM files are read when config
//! is checked, so a CA or key that does not parse is refused with its key.

use std::path::{Path, PathBuf};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde::Deserialize;

use super::ConfigError;

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct BackendTlsConfig {
    /// PEM file of the CA(s) the backends' certificates must chain to,
    /// instead of the system roots.
    pub ca: Option<PathBuf>,
    /// Name sent as SNI and verified in the certificate, instead of the
    /// URL's host.
    pub server_name: Option<String>,
    /// PEM certificate (chain) presented to backends that ask for one.
    pub client_cert: Option<PathBuf>,
    /// PEM private key of `client_cert`.
    pub client_key: Option<PathBuf>,
    /// Offer HTTP/2 by ALPN (else HTTP/1.1 only).
    pub h2: bool,
}

/// Every certificate of a PEM file (at least one).
pub fn load_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{} is not PEM: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{} holds no certificate", path.display()));
    }
    Ok(certs)
}

/// The private key of a PEM file.
pub fn load_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_file(path)
        .map_err(|e| format!("{} holds no usable private key: {e}", path.display()))
}

/// Every problem in `pools.{pool}.tls`, with its key.
pub(super) fn problems(pool: &str, tls: &BackendTlsConfig, out: &mut Vec<ConfigError>) {
    let key = |field: &str| format!("pools.{pool}.tls.{field}");
    if let Some(ca) = &tls.ca {
        if let Err(reason) = load_certificates(ca) {
            out.push(ConfigError::new(key("ca"), reason));
        }
    }
    if let Some(name) = &tls.server_name {
        if ServerName::try_from(name.as_str()).is_err() {
            out.push(ConfigError::new(
                key("server_name"),
                format!("'{name}' is not a DNS name or IP address"),
            ));
        }
    }
    match (&tls.client_cert, &tls.client_key) {
        (Some(cert), Some(private_key)) => {
            if let Err(reason) = load_certificates(cert) {
                out.push(ConfigError::new(key("client_cert"), reason));
            }
            if let Err(reason) = load_private_key(private_key) {
                out.push(ConfigError::new(key("client_key"), reason));
            }
        }
        (Some(_), None) => out.push(ConfigError::new(
            key("client_key"),
            "required with client_cert",
        )),
        (None, Some(_)) => out.push(ConfigError::new(
            key("client_cert"),
            "required with client_key",
        )),
        (None, None) => {}
    }
}
