//! What a registry COMMIT came to when its answer was lost: the
//! transaction's fate, asked of the registry on a new connection, decides
//! whether a tenant is answered as created or cleaned up (or, when nobody
//! can tell, left alone and reported unknown).

use std::time::Duration;

use super::{ProvisionError, ProvisionFailure, Provisioner};
use crate::store::{Store, StoreError};
use crate::tenant::{NewTenant, TenantRecord};

/// No registry transaction (transaction ids are positive).
pub(super) const NO_TRANSACTION: i64 = 0;
/// How long a COMMIT whose answer was lost may stay in progress before its
/// outcome is reported unknown (a synchronous standby may hold it).
const COMMIT_CHECK_TIMEOUT: Duration = Duration::from_secs(10);

impl Provisioner {
    /// After the COMMIT of registry transaction `xid` lost its answer
    /// (`failed`), asks the registry on a new connection what became of it
    /// (waiting a little while it is still committing): the tenant's record
    /// if it committed, `None` if it aborted, and an error saying the outcome
    /// is unknown (and that nothing was removed) if the registry cannot tell.
    pub(super) async fn committed_after_all(
        &self,
        tenant: &NewTenant,
        xid: i64,
        failed: &ProvisionError,
    ) -> Result<Option<TenantRecord>, ProvisionError> {
        let unknown = |why: String| ProvisionError {
            step: "commit".into(),
            source: ProvisionFailure::Store(StoreError::Unavailable(format!(
                "the commit's outcome is unknown ({failed}; {why}); nothing was removed: \
                 see GET /v1/tenants/{}",
                tenant.id
            ))),
        };
        let deadline = tokio::time::Instant::now() + COMMIT_CHECK_TIMEOUT;
        loop {
            let status = self.store.transaction_status(xid).await;
            match status.as_ref().map(|s| s.as_deref()) {
                Ok(Some("committed")) => break,
                Ok(Some("aborted")) => return Ok(None),
                Ok(Some("in progress")) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Ok(other) => return Err(unknown(format!("transaction {xid} is {other:?}"))),
                Err(e) => return Err(unknown(format!("asking again failed: {e}"))),
            }
        }
        tracing::warn!(tenant = %tenant.id, error = %failed, "the commit's answer was lost, but the tenant was committed");
        match self.store.get_tenant(&tenant.id).await {
            Ok(Some(record)) => Ok(Some(record)),
            Ok(None) => Err(unknown("committed, then deleted".into())),
            Err(e) => Err(unknown(format!("committed, but reading it failed: {e}"))),
        }
    }
}
