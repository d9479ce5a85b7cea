//! HTTP-01 challenge answers: the key authorization for each pending token,
//! served by the plain-HTTP listener at `/.well-known/acme-challenge/{token}`.
//! The orders of this replica are answered from memory; those of other
//! replicas from the store (see `TlsFront::http01_answer`).

use std::collections::HashMap;
use std::sync::RwLock;

/// The path prefix the CA fetches challenge answers from.
pub const HTTP01_PREFIX: &str = "/.well-known/acme-challenge/";

/// The store key of a domain's pending TLS-ALPN-01 answer (HTTP-01 answers
/// are kept under their token).
pub fn alpn_key(domain: &str) -> String {
    format!("tls-alpn-01:{domain}")
}

/// Whether `token` can be an ACME token (base64url), so that junk paths
/// never reach the store.
pub fn is_token(token: &str) -> bool {
    (16..=128).contains(&token.len())
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Pending HTTP-01 tokens and their key authorizations.
#[derive(Debug, Default)]
pub struct Challenges {
    tokens: RwLock<HashMap<String, String>>,
}

impl Challenges {
    pub fn insert(&self, token: &str, key_authorization: String) {
        self.tokens
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(token.to_owned(), key_authorization);
    }

    pub fn remove(&self, token: &str) {
        self.tokens
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(token);
    }

    /// The answer for a request path under [`HTTP01_PREFIX`], if the token is pending.
    pub fn answer(&self, path: &str) -> Option<String> {
        let token = path.strip_prefix(HTTP01_PREFIX)?;
        self.tokens
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(token)
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_pending_tokens_under_the_challenge_path_are_answered() {
        let challenges = Challenges::default();
        challenges.insert("tok", "tok.thumb".into());
        assert_eq!(
            challenges
                .answer("/.well-known/acme-challenge/tok")
                .as_deref(),
            Some("tok.thumb")
        );
        assert_eq!(challenges.answer("/.well-known/acme-challenge/other"), None);
        assert_eq!(challenges.answer("/tok"), None);
        challenges.remove("tok");
        assert_eq!(challenges.answer("/.well-known/acme-challenge/tok"), None);
    }

    #[test]
    fn only_base64url_tokens_may_be_looked_up() {
        assert!(is_token("LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0"));
        assert!(!is_token("short"));
        assert!(!is_token("../../etc/passwd-aaaaaaaaaaaaaaa"));
        assert!(!is_token(&"a".repeat(129)));
    }
}
