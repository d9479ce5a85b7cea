//! Migrating existing tenants: one tenant in its own transaction, or every
//! tenant with bounded parallelism, going on past a failing tenant and
//! reporting per tenant. Applied migrations are recorded per schema, so a
//! re-run resumes where the last one stopped.

use std::sync::Arc;

use serde::Serialize;
use tokio::sync::Semaphore;

use super::hold::MaintenanceWindow;
use super::{migrations, sql_failed, store_failed, ProvisionError, Provisioner};
use crate::store::Store;
use crate::tenant::{Isolation, Tenant};

/// How many tenants `migrate_all` reads from the store per page.
const PAGE: usize = 500;

/// The outcome of migrating one tenant.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct TenantMigration {
    pub tenant: String,
    /// The migrations applied now (empty: it was up to date).
    pub applied: Vec<String>,
    /// Why it failed, naming the step; `None` on success.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Where a `migrate_all` run stands, reported after every tenant.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Progress {
    pub total: usize,
    pub done: usize,
    pub failed: usize,
}

impl Provisioner {
    /// Applies the migrations `tenant` has not had yet, in one transaction
    /// on its cluster.
    /// Table and cache tenants own no schema, and the public tenant's
    /// `public` schema holds the shared tables, not a tenant's: nothing to do.
    pub async fn migrate(&self, tenant: &Tenant) -> Result<Vec<String>, ProvisionError> {
        self.migrate_in(tenant, None).await
    }

    /// [`Provisioner::migrate`]; with a `window`, a tenant that has
    /// migrations to apply is under maintenance while they run (see `hold`).
    pub async fn migrate_in(
        &self,
        tenant: &Tenant,
        window: Option<&MaintenanceWindow>,
    ) -> Result<Vec<String>, ProvisionError> {
        if tenant.schema == "public" {
            return Ok(Vec::new());
        }
        let database = match tenant.isolation {
            Isolation::Schema => None,
            Isolation::Database => Some(tenant.schema.as_str()),
            Isolation::Table | Isolation::Cache => return Ok(Vec::new()),
        };
        let cluster = self.clusters.get(tenant.cluster.as_deref())?;
        let step = match database {
            None => "connect",
            Some(_) => "connect to the tenant's database",
        };
        let mut conn = cluster.connect(&self.store, database, step).await?;
        let opened = match window {
            Some(window)
                if migrations::pending(&*conn, &tenant.schema, &self.migrations).await? =>
            {
                window.open(tenant).await?
            }
            _ => None,
        };
        let migrated = async {
            let tx = conn
                .transaction()
                .await
                .map_err(|e| sql_failed("begin", e))?;
            self.limit_statements(&tx).await?;
            let applied = migrations::apply(&tx, &tenant.schema, &self.migrations).await?;
            tx.commit().await.map_err(|e| sql_failed("commit", e))?;
            Ok(applied)
        }
        .await;
        match opened {
            Some(opened) => opened.close(migrated).await,
            None => migrated,
        }
    }

    /// Migrates every tenant of `store`, at most `parallel` at a time, each
    /// in its own transaction. A failing tenant is reported and the others
    /// go on; `progress` is called after each tenant. Results are in tenant
    /// id order. With a `window`, each tenant is under maintenance only
    /// while its own migrations run (and not at all if it has none).
    pub async fn migrate_all(
        self: &Arc<Self>,
        store: &dyn Store,
        parallel: usize,
        window: Option<MaintenanceWindow>,
        progress: impl Fn(Progress) + Send + Sync + 'static,
    ) -> Result<Vec<TenantMigration>, ProvisionError> {
        let mut tenants = Vec::new();
        let mut after = None;
        loop {
            let page = store
                .list_tenants(after.take(), PAGE)
                .await
                .map_err(store_failed("list tenants"))?;
            let full = page.len() == PAGE;
            after = page.last().map(|r| r.tenant.id.clone());
            tenants.extend(page.into_iter().map(|r| r.tenant));
            if !full {
                break;
            }
        }
        let permits = Arc::new(Semaphore::new(parallel.max(1)));
        let state = Arc::new(std::sync::Mutex::new(Progress {
            total: tenants.len(),
            ..Progress::default()
        }));
        let progress = Arc::new(progress);
        let window = Arc::new(window);
        progress(*state.lock().unwrap_or_else(|e| e.into_inner()));
        let mut tasks = tokio::task::JoinSet::new();
        for (i, tenant) in tenants.into_iter().enumerate() {
            let (this, permits, state, progress, window) = (
                self.clone(),
                permits.clone(),
                state.clone(),
                progress.clone(),
                window.clone(),
            );
            tasks.spawn(async move {
                let _permit = permits.acquire_owned().await;
                let outcome = this.migrate_in(&tenant, window.as_ref().as_ref()).await;
                let now = {
                    let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
                    s.done += 1;
                    s.failed += usize::from(outcome.is_err());
                    *s
                };
                progress(now);
                let (applied, error) = match outcome {
                    Ok(applied) => (applied, None),
                    Err(e) => (Vec::new(), Some(e.to_string())),
                };
                (
                    i,
                    TenantMigration {
                        tenant: tenant.id,
                        applied,
                        error,
                    },
                )
            });
        }
        let mut results = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(result) => results.push(result),
                Err(e) => tracing::error!(error = %e, "a migration task panicked"),
            }
        }
        results.sort_by_key(|(i, _)| *i);
        Ok(results.into_iter().map(|(_, r)| r).collect())
    }
}
