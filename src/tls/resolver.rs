//! Picks the certificate for a handshake by its SNI name: static
//! certificates first (exact name, then the wildcard one label above), then
//! certificates obtained by ACME. No match fails the handshake; a client
//! sending no SNI name (e.g. connecting by IP) gets the first static one.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::certs::LoadedCert;

/// Certificates by name. The static ones never change after start; the ACME
/// ones are replaced on issue and renewal (a short write lock, never held
/// across an `.await`).
#[derive(Debug, Default)]
pub struct CertResolver {
    static_exact: HashMap<String, Arc<CertifiedKey>>,
    /// `*.app.example.com` is stored as `app.example.com`.
    static_wildcard: HashMap<String, Arc<CertifiedKey>>,
    /// The first static certificate, for handshakes without SNI.
    default: Option<Arc<CertifiedKey>>,
    dynamic: RwLock<HashMap<String, DynamicCert>>,
}

/// An ACME certificate in memory, with its expiry for renewal decisions.
#[derive(Debug, Clone)]
pub struct DynamicCert {
    pub key: Arc<CertifiedKey>,
    pub not_after: i64,
}

impl CertResolver {
    /// Indexes static certificates by every DNS name they carry; the first
    /// certificate listed wins a name.
    pub fn with_static(certs: Vec<LoadedCert>) -> CertResolver {
        let mut resolver = CertResolver {
            default: certs.first().map(|cert| cert.key.clone()),
            ..CertResolver::default()
        };
        for cert in certs {
            for name in &cert.names {
                let (map, key) = match name.strip_prefix("*.") {
                    Some(parent) => (&mut resolver.static_wildcard, parent),
                    None => (&mut resolver.static_exact, name.as_str()),
                };
                map.entry(key.to_owned())
                    .or_insert_with(|| cert.key.clone());
            }
        }
        resolver
    }

    /// The static certificate covering `name` (lowercase), if any.
    pub fn static_for(&self, name: &str) -> Option<Arc<CertifiedKey>> {
        if let Some(key) = self.static_exact.get(name) {
            return Some(key.clone());
        }
        let (_, parent) = name.split_once('.')?;
        self.static_wildcard.get(parent).cloned()
    }

    /// The ACME certificate for `name`, if one is loaded.
    pub fn dynamic_for(&self, name: &str) -> Option<DynamicCert> {
        self.dynamic
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(name)
            .cloned()
    }

    /// Installs (or replaces) the ACME certificate for `name`; handshakes
    /// from now on get it, established connections keep theirs.
    pub fn install(&self, name: &str, cert: DynamicCert) {
        self.dynamic
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(name.to_owned(), cert);
    }

    /// Stops serving the ACME certificate of `name` (its domain was removed).
    pub fn remove(&self, name: &str) {
        self.dynamic
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(name);
    }

    /// Whether a handshake for `name` would find a certificate now.
    pub fn has(&self, name: &str) -> bool {
        self.static_for(name).is_some() || self.dynamic_for(name).is_some()
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let Some(name) = hello.server_name() else {
            return self.default.clone();
        };
        let name = name.to_ascii_lowercase();
        let name = name.trim_end_matches('.');
        self.static_for(name)
            .or_else(|| self.dynamic_for(name).map(|cert| cert.key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(names: &[&str]) -> LoadedCert {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let generated = rcgen::generate_simple_self_signed(names.clone()).unwrap();
        let provider = rustls::crypto::ring::default_provider();
        super::super::certs::load_pem(
            generated.cert.pem().as_bytes(),
            generated.signing_key.serialize_pem().as_bytes(),
            &provider,
            "test",
        )
        .unwrap()
    }

    #[test]
    fn exact_name_beats_the_wildcard_and_wildcards_cover_one_label() {
        let exact = cert(&["shop.app.example.com"]);
        let wildcard = cert(&["*.app.example.com"]);
        let exact_key = exact.key.clone();
        let wildcard_key = wildcard.key.clone();
        let resolver = CertResolver::with_static(vec![exact, wildcard]);
        assert!(Arc::ptr_eq(
            &resolver.static_for("shop.app.example.com").unwrap(),
            &exact_key
        ));
        assert!(Arc::ptr_eq(
            &resolver.static_for("acme.app.example.com").unwrap(),
            &wildcard_key
        ));
        assert!(resolver.static_for("a.b.app.example.com").is_none());
        assert!(resolver.static_for("app.example.com").is_none());
    }

    #[test]
    fn acme_certificates_are_found_after_install_and_replaced_on_renewal() {
        let resolver = CertResolver::default();
        assert!(!resolver.has("shop.customer.com"));
        let first = cert(&["shop.customer.com"]);
        resolver.install(
            "shop.customer.com",
            DynamicCert {
                key: first.key,
                not_after: 1,
            },
        );
        assert!(resolver.has("shop.customer.com"));
        let second = cert(&["shop.customer.com"]);
        resolver.install(
            "shop.customer.com",
            DynamicCert {
                key: second.key.clone(),
                not_after: 2,
            },
        );
        let now = resolver.dynamic_for("shop.customer.com").unwrap();
        assert_eq!(now.not_after, 2);
        assert!(Arc::ptr_eq(&now.key, &second.key));
    }
}
