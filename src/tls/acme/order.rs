//! One ACME order for one domain: answer its challenge (HTTP-01 token or
//! TLS-ALPN-01 certificate) here and, for the other replicas the CA may
//! reach, in the store; wait until the CA validates, finalize with a fresh
//! key, download the chain. The answers are withdrawn however it ends.

use std::time::Duration;

use instant_acme::{
    AuthorizationStatus, ChallengeType, Identifier, NewOrder, OrderStatus, RetryPolicy,
};

use super::{AcmeError, Inner};
use crate::config::AcmeChallenge;
use crate::tls::challenge::alpn_key;

/// A certificate chain and its key, both PEM.
pub(super) struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
}

/// Withdraws the challenge answers put up for an order when dropped.
struct Answers<'a> {
    inner: &'a Inner,
    tokens: Vec<String>,
    alpn_domain: Option<String>,
}

impl Answers<'_> {
    /// Publishes an answer for the other replicas; without the store only
    /// this replica can answer, which is enough when it is the only one.
    async fn publish(&self, key: &str, key_authorization: &str) {
        if let Err(e) = self
            .inner
            .store
            .put_acme_challenge(key, key_authorization)
            .await
        {
            tracing::warn!(error = %e, "cannot publish the challenge answer to other replicas");
        }
    }
}

impl Drop for Answers<'_> {
    fn drop(&mut self) {
        let mut keys = Vec::with_capacity(self.tokens.len() + 1);
        for token in self.tokens.drain(..) {
            self.inner.challenges.remove(&token);
            keys.push(token);
        }
        if let Some(domain) = self.alpn_domain.take() {
            self.inner.alpn.remove(&domain);
            keys.push(alpn_key(&domain));
        }
        let store = self.inner.store.clone();
        self.inner.runtime.spawn(async move {
            for key in keys {
                let _ = store.delete_acme_challenge(&key).await;
            }
        });
    }
}

/// Runs one order for `domain` to the end (the caller bounds its time).
pub(super) async fn run(inner: &Inner, domain: &str) -> Result<Issued, AcmeError> {
    let account = inner.account().await?;
    let identifiers = [Identifier::Dns(domain.to_owned())];
    let mut order = account.new_order(&NewOrder::new(&identifiers)).await?;
    let kind = match inner.config.challenge {
        AcmeChallenge::Http01 => ChallengeType::Http01,
        AcmeChallenge::TlsAlpn01 => ChallengeType::TlsAlpn01,
    };
    let mut answers = Answers {
        inner,
        tokens: Vec::new(),
        alpn_domain: None,
    };
    let mut authorizations = order.authorizations();
    while let Some(authz) = authorizations.next().await {
        let mut authz = authz?;
        match authz.status {
            AuthorizationStatus::Pending => {}
            AuthorizationStatus::Valid => continue,
            status => return Err(AcmeError::Rejected(format!("authorization is {status:?}"))),
        }
        let mut challenge = authz
            .challenge(kind.clone())
            .ok_or_else(|| AcmeError::Rejected(format!("the CA offers no {kind:?} challenge")))?;
        let key_authorization = challenge.key_authorization();
        match inner.config.challenge {
            AcmeChallenge::Http01 => {
                inner
                    .challenges
                    .insert(&challenge.token, key_authorization.as_str().to_owned());
                answers.tokens.push(challenge.token.clone());
                answers
                    .publish(&challenge.token, key_authorization.as_str())
                    .await;
            }
            AcmeChallenge::TlsAlpn01 => {
                inner
                    .alpn
                    .insert(domain, key_authorization.digest().as_ref(), &inner.provider)?;
                answers.alpn_domain = Some(domain.to_owned());
                answers
                    .publish(&alpn_key(domain), key_authorization.as_str())
                    .await;
            }
        }
        challenge.set_ready().await?;
    }
    let retries = RetryPolicy::new()
        .initial_delay(Duration::from_millis(100))
        .backoff(1.5)
        .timeout(inner.config.order_timeout);
    let status = order.poll_ready(&retries).await?;
    drop(answers);
    if status != OrderStatus::Ready {
        let why = order
            .state()
            .error
            .as_ref()
            .map_or_else(|| format!("order is {status:?}"), |p| p.to_string());
        return Err(AcmeError::Rejected(why));
    }
    let key_pem = order.finalize().await?;
    let cert_pem = order.poll_certificate(&retries).await?;
    Ok(Issued { cert_pem, key_pem })
}
