//! The ACME account: created once per CA directory and kept in the store, so
//! every replica (and every restart) orders under the same account.

use instant_acme::{Account, AccountBuilder, AccountCredentials, NewAccount};

use super::{AcmeError, Inner};

/// An HTTP client for the CA: the system roots, or only `ca_root`.
fn builder(inner: &Inner) -> Result<AccountBuilder, AcmeError> {
    Ok(match &inner.config.ca_root {
        Some(root) => Account::builder_with_root(root)?,
        None => Account::builder()?,
    })
}

fn parse(json: &str) -> Result<AccountCredentials, AcmeError> {
    serde_json::from_str(json).map_err(|e| AcmeError::Credentials(e.to_string()))
}

/// The stored account of the configured directory, creating (and storing)
/// one on first use. A replica that loses the race to store its new account
/// uses the winner's.
pub(super) async fn load_or_create(inner: &Inner) -> Result<Account, AcmeError> {
    let directory = &inner.config.directory;
    if let Some(json) = inner.store.get_acme_account(directory).await? {
        return Ok(builder(inner)?.from_credentials(parse(&json)?).await?);
    }
    let contact: Vec<&str> = inner.config.contact.iter().map(String::as_str).collect();
    let (account, credentials) = builder(inner)?
        .create(
            &NewAccount {
                contact: &contact,
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            directory.clone(),
            None,
        )
        .await?;
    let json =
        serde_json::to_string(&credentials).map_err(|e| AcmeError::Credentials(e.to_string()))?;
    let stored = inner.store.put_acme_account(directory, &json).await?;
    if stored == json {
        tracing::info!(%directory, id = account.id(), "ACME account created");
        Ok(account)
    } else {
        Ok(builder(inner)?.from_credentials(parse(&stored)?).await?)
    }
}
