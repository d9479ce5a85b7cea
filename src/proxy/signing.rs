//! The tenant-header signature (`X-Tenant-Signature`, part of the prepare
//! phase): an HMAC-SHA256 with a shared secret over the tenant id, schema,
//! request id and a timestamp, so an app reachable without the gateway can
//! refuse forged tenant headers.
//!
//! Header value: `v1;kid=<key id>;ts=<unix seconds>;sig=<64 lowercase hex>`.
//! Signed bytes: `v1\n<key id>\n<ts>\n<tenant id>\n<schema>\n<request id>`,
//! the values exactly as sent (schema empty when none is sent). A header
//! value cannot hold `\n`, so no two field lists give the same bytes.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use http::HeaderValue;
use ring::hmac;

use crate::config::{ConfigError, HeaderNamesConfig, SigningConfig};

/// The format version, first in both the header and the signed bytes.
const VERSION: &[u8] = b"v1";
/// `v1;kid=` + 32 + `;ts=` + 20 digits + `;sig=` + 64 hex fits.
const MAX_VALUE_LEN: usize = 160;

/// Signs with the first (current) configured key; built once, so the data
/// path only copies the key's precomputed HMAC state.
pub struct Signer {
    key: hmac::Key,
    /// `v1;kid=<id>;ts=`: the fixed start of every header value.
    value_prefix: Box<[u8]>,
    key_id: Box<[u8]>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("key_id", &String::from_utf8_lossy(&self.key_id))
            .finish_non_exhaustive()
    }
}

/// The signer `headers.signing` asks for, if any.
pub fn signer_for(headers: &HeaderNamesConfig) -> Result<Option<Arc<Signer>>, ConfigError> {
    headers
        .signing
        .as_ref()
        .map(|signing| Signer::from_config(signing).map(Arc::new))
        .transpose()
}

impl Signer {
    /// The signer of the current key (`keys[0]`); config validation has
    /// checked the ids and secrets, this only reads them.
    pub fn from_config(config: &SigningConfig) -> Result<Signer, ConfigError> {
        let current = config
            .keys
            .first()
            .ok_or_else(|| ConfigError::new("headers.signing.keys", "needs at least one key"))?;
        let secret = current
            .secret_bytes()
            .map_err(|reason| ConfigError::new("headers.signing.keys[0]", reason))?;
        let mut value_prefix = b"v1;kid=".to_vec();
        value_prefix.extend_from_slice(current.id.as_bytes());
        value_prefix.extend_from_slice(b";ts=");
        Ok(Signer {
            key: hmac::Key::new(hmac::HMAC_SHA256, &secret),
            value_prefix: value_prefix.into(),
            key_id: current.id.as_bytes().into(),
        })
    }

    /// The header value for these tenant headers, signed at the current time.
    pub fn sign_now(&self, tenant_id: &[u8], schema: &[u8], request_id: &[u8]) -> HeaderValue {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.sign(tenant_id, schema, request_id, now)
    }

    /// The header value for these tenant headers signed at `unix_secs`.
    pub fn sign(
        &self,
        tenant_id: &[u8],
        schema: &[u8],
        request_id: &[u8],
        unix_secs: u64,
    ) -> HeaderValue {
        let mut digits = [0u8; 20];
        let ts = decimal(unix_secs, &mut digits);

        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(VERSION);
        for part in [&self.key_id[..], ts, tenant_id, schema, request_id] {
            ctx.update(b"\n");
            ctx.update(part);
        }
        let tag = ctx.sign();

        // Assembled on the stack: the header value is the only allocation.
        let mut buf = [0u8; MAX_VALUE_LEN];
        let mut len = 0;
        for part in [&self.value_prefix[..], ts, b";sig="] {
            buf[len..len + part.len()].copy_from_slice(part);
            len += part.len();
        }
        const HEX: &[u8; 16] = b"0123456789abcdef";
        for byte in tag.as_ref() {
            buf[len] = HEX[usize::from(byte >> 4)];
            buf[len + 1] = HEX[usize::from(byte & 0xf)];
            len += 2;
        }
        HeaderValue::from_bytes(&buf[..len]).expect("ASCII key id, digits and hex")
    }
}

/// Writes `n` in decimal at the end of `buf` and returns those digits.
fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut start = buf.len();
    loop {
        start -= 1;
        buf[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[start..];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SigningKeyConfig;

    const SECRET: &str = "an-example-secret-of-32-bytes-or-more!";

    fn signer(id: &str) -> Signer {
        Signer::from_config(&SigningConfig {
            keys: vec![SigningKeyConfig {
                id: id.into(),
                secret: Some(SECRET.into()),
                secret_env: None,
            }],
        })
        .unwrap()
    }

    #[test]
    fn the_value_is_the_documented_format_over_the_documented_bytes() {
        let value = signer("k1").sign(b"acme", b"acme_s", b"req-1", 1_700_000_000);
        let value = value.to_str().unwrap();
        let (head, sig) = value.split_once(";sig=").unwrap();
        assert_eq!(head, "v1;kid=k1;ts=1700000000");
        let key = hmac::Key::new(hmac::HMAC_SHA256, SECRET.as_bytes());
        let signed = b"v1\nk1\n1700000000\nacme\nacme_s\nreq-1";
        let expected: String = hmac::sign(&key, signed)
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(sig, expected);
        // The same vector is pinned in integrations/django/tests/test_signature.py.
        assert_eq!(
            sig,
            "719956d5765079556594ca0551efa634f91017215b456a133eab4f81623824b3"
        );
    }

    #[test]
    fn moving_a_byte_between_fields_changes_the_signature() {
        let s = signer("k1");
        assert_ne!(
            s.sign(b"ab", b"c", b"r", 1),
            s.sign(b"a", b"bc", b"r", 1),
            "field boundaries are signed"
        );
        assert_ne!(s.sign(b"a", b"", b"r", 1), s.sign(b"a", b"", b"r", 2));
    }

    #[test]
    fn decimal_digits() {
        let mut buf = [0u8; 20];
        assert_eq!(decimal(0, &mut buf), b"0");
        assert_eq!(decimal(u64::MAX, &mut buf), b"18446744073709551615");
    }
}
