//! The `tls:` section: the HTTPS listener, static certificate files, the
//! HTTP → HTTPS redirect, and on-demand certificates from an ACME CA.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::ConfigError;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// HTTPS listener of the data path.
    pub listen: SocketAddr,
    /// PEM certificate chains and keys, chosen by SNI before any ACME one
    /// (a `*.app.example.com` certificate covers one label below).
    pub certificates: Vec<CertificateFiles>,
    /// Answer plain-HTTP requests with a redirect to HTTPS (except the ACME
    /// challenge path).
    pub redirect_http: bool,
    /// A client must finish its TLS handshake within this time.
    #[serde(with = "humantime_serde")]
    pub handshake_timeout: Duration,
    /// On-demand certificates for registered domains.
    pub acme: Option<AcmeConfig>,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8443)),
            certificates: Vec::new(),
            redirect_http: false,
            handshake_timeout: Duration::from_secs(10),
            acme: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateFiles {
    /// The certificate chain, leaf first (PEM).
    pub cert: PathBuf,
    /// Its private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AcmeConfig {
    /// The CA's directory URL.
    pub directory: String,
    /// Account contacts, e.g. `mailto:ops@example.com`.
    pub contact: Vec<String>,
    /// A root (PEM) to trust for the CA's directory over HTTPS instead of
    /// the system roots, e.g. a test CA such as pebble.
    pub ca_root: Option<PathBuf>,
    /// How the CA checks that we control a domain.
    pub challenge: AcmeChallenge,
    /// Renew a certificate this long before it expires.
    #[serde(with = "humantime_serde")]
    pub renew_before: Duration,
    /// How often the background renewal looks at stored certificates.
    #[serde(with = "humantime_serde")]
    pub renew_check_interval: Duration,
    /// Orders running at once, across all domains.
    pub max_concurrent_orders: usize,
    /// First wait after a failed order for a domain; doubled on each failure.
    #[serde(with = "humantime_serde")]
    pub failure_backoff: Duration,
    /// How long one order may take (challenge, finalize, download).
    #[serde(with = "humantime_serde")]
    pub order_timeout: Duration,
}

impl Default for AcmeConfig {
    fn default() -> Self {
        AcmeConfig {
            directory: "https://acme-v02.api.letsencrypt.org/directory".into(),
            contact: Vec::new(),
            ca_root: None,
            challenge: AcmeChallenge::Http01,
            renew_before: Duration::from_secs(30 * 24 * 3600),
            renew_check_interval: Duration::from_secs(3600),
            max_concurrent_orders: 4,
            failure_backoff: Duration::from_secs(60),
            order_timeout: Duration::from_secs(90),
        }
    }
}

/// The ACME challenge the gateway answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum AcmeChallenge {
    /// A token at `http://{domain}/.well-known/acme-challenge/` on the plain-HTTP listener.
    #[serde(rename = "http-01")]
    Http01,
    /// A special certificate on the HTTPS listener for ALPN `acme-tls/1`.
    #[serde(rename = "tls-alpn-01")]
    TlsAlpn01,
}

/// Every problem in the `tls:` section, with its key.
pub(super) fn problems(tls: &TlsConfig, listen: SocketAddr, out: &mut Vec<ConfigError>) {
    if tls.listen == listen && listen.port() != 0 {
        out.push(ConfigError::new(
            "tls.listen",
            format!("{listen} is also the plain-HTTP listen address"),
        ));
    }
    for (i, files) in tls.certificates.iter().enumerate() {
        for (field, path) in [("cert", &files.cert), ("key", &files.key)] {
            if !path.is_file() {
                out.push(ConfigError::new(
                    format!("tls.certificates[{i}].{field}"),
                    format!("{} is not a readable file", path.display()),
                ));
            }
        }
    }
    if tls.handshake_timeout.is_zero() {
        out.push(ConfigError::new(
            "tls.handshake_timeout",
            "must be longer than 0s",
        ));
    }
    if let Some(acme) = &tls.acme {
        if !acme.directory.starts_with("https://") || acme.directory.parse::<http::Uri>().is_err() {
            out.push(ConfigError::new(
                "tls.acme.directory",
                format!("'{}' is not an https URL", acme.directory),
            ));
        }
        if acme.max_concurrent_orders == 0 {
            out.push(ConfigError::new(
                "tls.acme.max_concurrent_orders",
                "must be at least 1",
            ));
        }
        if acme.renew_check_interval.is_zero() {
            out.push(ConfigError::new(
                "tls.acme.renew_check_interval",
                "must be longer than 0s",
            ));
        }
        for (i, contact) in acme.contact.iter().enumerate() {
            if !contact.starts_with("mailto:") || contact.len() <= "mailto:".len() {
                out.push(ConfigError::new(
                    format!("tls.acme.contact[{i}]"),
                    format!("'{contact}' is not a mailto: URL"),
                ));
            }
        }
        for (key, value) in [
            ("tls.acme.renew_before", acme.renew_before),
            ("tls.acme.failure_backoff", acme.failure_backoff),
            ("tls.acme.order_timeout", acme.order_timeout),
        ] {
            if value.is_zero() {
                out.push(ConfigError::new(key, "must be longer than 0s"));
            }
        }
        if let Some(ca) = &acme.ca_root {
            if !ca.is_file() {
                out.push(ConfigError::new(
                    "tls.acme.ca_root",
                    format!("{} is not a readable file", ca.display()),
                ));
            }
        }
    }
}
