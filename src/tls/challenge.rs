//! HTTP-01 challenge answers: the key authorization for each pending token,
//! served by the plain-HTTP listener at `/.well-known/acme-challenge/{token}`.

use std::collections::HashMap;
use std::sync::RwLock;

/// The path prefix the CA fetches challenge answers from.
pub const HTTP01_PREFIX: &str = "/.well-known/acme-challenge/";

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
}
