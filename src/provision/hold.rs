//! Migrations under maintenance (`tenants migrate --maintenance`, the
//! migrate endpoints' `maintenance=true`): a tenant with migrations to apply
//! is switched into maintenance, the switch is given `settle` to reach
//! every replica, its migrations run, and maintenance is switched off again
//! whatever the outcome. Requests meanwhile are held (`hold`) or refused,
//! so none reaches a half-migrated schema; other tenants are not touched.
//!
//! `settle` is the bound this relies on: the change feed reaches a replica
//! within milliseconds while its `LISTEN` connection is up (the embedded
//! store's within its 200 ms poll), and requests forwarded just before the
//! switch finish meanwhile. A replica whose feed is down sees the switch
//! only when it reconnects: keep `settle` above what an outage of the feed
//! may last if that matters, or watch `tenant_gateway_store_change_feed_connected`.

use std::sync::Arc;
use std::time::Duration;

use super::{store_failed, ProvisionError};
use crate::routing::Router;
use crate::store::{Store, StoreError};
use crate::tenant::{Maintenance, Tenant, TenantPatch, TenantRecord};

/// How many times switching maintenance off is tried before giving up.
const OFF_ATTEMPTS: u32 = 5;

/// How migrations switch their tenant into maintenance and out again.
#[derive(Clone)]
pub struct MaintenanceWindow {
    pub store: Arc<dyn Store>,
    /// How long the tenant's requests wait for the migration (`None`: 503).
    pub hold: Option<Duration>,
    /// How long after switching on the migration waits (see the module doc).
    pub settle: Duration,
    /// This process's router (the admin API's), told of each switch at once.
    pub router: Option<Arc<Router>>,
}

/// A tenant switched into maintenance by a [`MaintenanceWindow`].
pub struct Switched<'a> {
    window: &'a MaintenanceWindow,
    tenant: String,
}

impl MaintenanceWindow {
    /// Switches `tenant` into maintenance and waits `settle`. `None` when
    /// it was under maintenance already: an operator's, left as it is.
    pub async fn open(&self, tenant: &Tenant) -> Result<Option<Switched<'_>>, ProvisionError> {
        if tenant.maintenance.is_some() {
            return Ok(None);
        }
        self.switch(&tenant.id, Some(Maintenance::starting_now(self.hold)))
            .await
            .map_err(store_failed("maintenance on"))?;
        tracing::info!(tenant = %tenant.id, hold = ?self.hold, "maintenance on for the migration");
        tokio::time::sleep(self.settle).await;
        Ok(Some(Switched {
            window: self,
            tenant: tenant.id.clone(),
        }))
    }

    async fn switch(
        &self,
        id: &str,
        maintenance: Option<Maintenance>,
    ) -> Result<TenantRecord, StoreError> {
        let patch = TenantPatch {
            maintenance: Some(maintenance),
            ..TenantPatch::default()
        };
        let record = self.store.update_tenant(id, patch).await?;
        if let Some(router) = &self.router {
            router.invalidate_domains(&record.domains).await;
        }
        Ok(record)
    }
}

impl Switched<'_> {
    /// Switches maintenance off (retrying a store that is briefly away),
    /// and passes on what the migration came to. A migration that worked
    /// but whose tenant stays under maintenance is reported as failed.
    pub async fn close<T>(self, migrated: Result<T, ProvisionError>) -> Result<T, ProvisionError> {
        let mut attempt = 1;
        let off = loop {
            match self.window.switch(&self.tenant, None).await {
                Ok(_) => break Ok(()),
                Err(e) if attempt < OFF_ATTEMPTS => {
                    tracing::warn!(tenant = %self.tenant, error = %e, "cannot end maintenance yet; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    attempt += 1;
                }
                Err(e) => break Err(e),
            }
        };
        match off {
            Ok(()) => {
                tracing::info!(tenant = %self.tenant, "maintenance off after the migration");
                migrated
            }
            Err(e) => {
                tracing::error!(tenant = %self.tenant, error = %e, "the tenant is still under maintenance: end it with `tenants maintenance ID off`");
                migrated.and(Err(store_failed("maintenance off")(e)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provision::ProvisionFailure;
    use crate::store::{OpenMode, SqliteStore};
    use crate::tenant::NewTenant;

    async fn window() -> (tempfile::TempDir, MaintenanceWindow) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("gw.db"), OpenMode::CreateIfMissing);
        let store: Arc<dyn Store> = Arc::new(store.unwrap());
        store
            .create_tenant(NewTenant::example("acme", &["acme.test"]))
            .await
            .unwrap();
        let window = MaintenanceWindow {
            store,
            hold: Some(Duration::from_secs(5)),
            settle: Duration::ZERO,
            router: None,
        };
        (dir, window)
    }

    async fn tenant(window: &MaintenanceWindow) -> Tenant {
        window
            .store
            .get_tenant("acme")
            .await
            .unwrap()
            .unwrap()
            .tenant
    }

    #[tokio::test]
    async fn maintenance_is_on_while_the_migration_runs_and_off_even_when_it_fails() {
        let (_dir, window) = window().await;
        let switched = window.open(&tenant(&window).await).await.unwrap().unwrap();
        let during = tenant(&window).await.maintenance.unwrap();
        assert_eq!(during.hold, Some(Duration::from_secs(5)));
        let failed: Result<(), _> = Err(ProvisionError {
            step: "migration 0002_slow.sql".into(),
            source: ProvisionFailure::Migration("boom".into()),
        });
        let err = switched.close(failed).await.unwrap_err();
        assert_eq!(err.step, "migration 0002_slow.sql", "the migration's error");
        assert_eq!(tenant(&window).await.maintenance, None);
    }

    #[tokio::test]
    async fn an_operators_maintenance_is_left_as_it_is() {
        let (_dir, window) = window().await;
        let theirs = Maintenance::starting_now(None);
        window.switch("acme", Some(theirs.clone())).await.unwrap();
        assert!(window.open(&tenant(&window).await).await.unwrap().is_none());
        assert_eq!(tenant(&window).await.maintenance, Some(theirs));
    }
}
