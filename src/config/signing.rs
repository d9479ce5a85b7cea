//! The `headers.signing:` section: the shared secrets the gateway signs its
//! tenant headers with (`X-Tenant-Signature`), so an app reachable without
//! the gateway can refuse forged ones. Two keys at most, for rotation.

use serde::Deserialize;

use super::ConfigError;

/// Fewer bytes than this and the HMAC key is guessable offline.
pub const MIN_SECRET_BYTES: usize = 32;
/// The current key and the one being rotated out (or in).
pub const MAX_KEYS: usize = 2;
/// Key ids travel in the header (`kid=…`), so they stay short and plain.
const MAX_KEY_ID_LEN: usize = 32;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigningConfig {
    /// Active keys; the first one signs. Apps accept any of them.
    pub keys: Vec<SigningKeyConfig>,
}

/// One shared secret, given inline or through an environment variable.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigningKeyConfig {
    /// Sent as `kid=` so the app knows which secret to check with.
    pub id: String,
    pub secret: Option<String>,
    /// Name of an environment variable holding the secret.
    pub secret_env: Option<String>,
}

// Keeps secrets out of logs and error messages.
impl std::fmt::Debug for SigningKeyConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyConfig")
            .field("id", &self.id)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("secret_env", &self.secret_env)
            .finish()
    }
}

impl SigningKeyConfig {
    /// The secret's bytes (inline, or read from `secret_env` now), or why
    /// there is none.
    pub fn secret_bytes(&self) -> Result<Vec<u8>, String> {
        match (&self.secret, &self.secret_env) {
            (Some(secret), None) => Ok(secret.as_bytes().to_vec()),
            (None, Some(var)) => match std::env::var(var) {
                Ok(secret) if !secret.is_empty() => Ok(secret.into_bytes()),
                _ => Err(format!("environment variable {var} is not set")),
            },
            (Some(_), Some(_)) => Err("give secret or secret_env, not both".into()),
            (None, None) => Err("needs secret or secret_env".into()),
        }
    }
}

/// Whether `id` can travel in the header unambiguously.
pub fn is_valid_key_id(id: &str) -> bool {
    (1..=MAX_KEY_ID_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

pub(super) fn problems(signing: &SigningConfig, out: &mut Vec<ConfigError>) {
    let key = "headers.signing.keys";
    if signing.keys.is_empty() {
        out.push(ConfigError::new(key, "needs at least one key"));
    }
    if signing.keys.len() > MAX_KEYS {
        out.push(ConfigError::new(
            key,
            format!(
                "{} keys: at most {MAX_KEYS} (the current one and the one being rotated)",
                signing.keys.len()
            ),
        ));
    }
    for (i, k) in signing.keys.iter().enumerate() {
        if !is_valid_key_id(&k.id) {
            out.push(ConfigError::new(
                format!("{key}[{i}].id"),
                format!(
                    "'{}' must be 1-{MAX_KEY_ID_LEN} of [A-Za-z0-9._-]",
                    k.id.escape_debug()
                ),
            ));
        }
        if signing.keys[..i].iter().any(|earlier| earlier.id == k.id) {
            out.push(ConfigError::new(
                format!("{key}[{i}].id"),
                format!("'{}' is used by two keys", k.id),
            ));
        }
        let secret_key = match k.secret_env {
            Some(_) => format!("{key}[{i}].secret_env"),
            None => format!("{key}[{i}].secret"),
        };
        match k.secret_bytes() {
            Err(reason) => out.push(ConfigError::new(secret_key, reason)),
            Ok(secret) if secret.len() < MIN_SECRET_BYTES => out.push(ConfigError::new(
                secret_key,
                format!(
                    "the secret has {} bytes; at least {MIN_SECRET_BYTES} (e.g. `openssl rand -hex 32`)",
                    secret.len()
                ),
            )),
            Ok(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    fn errors(yaml: &str) -> Vec<String> {
        match Config::from_yaml(yaml).unwrap().validate() {
            Ok(()) => vec![],
            Err(e) => e.0.iter().map(|e| e.to_string()).collect(),
        }
    }

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn one_or_two_keys_with_long_secrets_are_accepted() {
        let yaml = format!(
            "headers:\n  signing:\n    keys:\n      - {{id: k2, secret: {SECRET}}}\n      - {{id: k1, secret: {SECRET}x}}\n"
        );
        assert_eq!(errors(&yaml), Vec::<String>::new());
    }

    #[test]
    fn bad_signing_keys_are_named() {
        let yaml = format!(
            "headers:\n  signing:\n    keys:\n      - {{id: 'a b', secret: short}}\n      - {{id: k, secret_env: TGW_TEST_UNSET_SECRET_VAR}}\n      - {{id: k, secret: {SECRET}, secret_env: X}}\n"
        );
        let errors = errors(&yaml);
        let expected = [
            "config key `headers.signing.keys`: 3 keys: at most 2",
            "config key `headers.signing.keys[0].id`: 'a b' must be 1-32 of [A-Za-z0-9._-]",
            "config key `headers.signing.keys[0].secret`: the secret has 5 bytes; at least 32",
            "config key `headers.signing.keys[1].secret_env`: environment variable TGW_TEST_UNSET_SECRET_VAR is not set",
            "config key `headers.signing.keys[2].id`: 'k' is used by two keys",
            "config key `headers.signing.keys[2].secret_env`: give secret or secret_env, not both",
        ];
        for want in expected {
            assert!(
                errors.iter().any(|e| e.starts_with(want)),
                "missing {want:?} in {errors:#?}"
            );
        }
        assert!(!format!("{errors:?}").contains(SECRET), "secrets leak");
    }

    #[test]
    fn an_empty_key_list_is_refused() {
        assert_eq!(
            errors("headers:\n  signing:\n    keys: []\n"),
            ["config key `headers.signing.keys`: needs at least one key"]
        );
    }
}
