//! One ACME order for one domain: answer its challenge (HTTP-01 token or
//! TLS-ALPN-01 certificate), wait until the CA validates, finalize with a
//! fresh key, download the chain. The answers are withdrawn however it ends.

use std::time::Duration;

use instant_acme::{
    AuthorizationStatus, ChallengeType, Identifier, NewOrder, OrderStatus, RetryPolicy,
};

use super::{AcmeError, Inner};
use crate::config::AcmeChallenge;

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

impl Drop for Answers<'_> {
    fn drop(&mut self) {
        for token in &self.tokens {
            self.inner.challenges.remove(token);
        }
        if let Some(domain) = &self.alpn_domain {
            self.inner.alpn.remove(domain);
        }
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
            }
            AcmeChallenge::TlsAlpn01 => {
                inner
                    .alpn
                    .insert(domain, key_authorization.digest().as_ref(), &inner.provider)?;
                answers.alpn_domain = Some(domain.to_owned());
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
