//! What every store command shares: the configured store opened (with its
//! provisioner when it is PostgreSQL), a runtime to drive it, and the error
//! wording of the seed's management commands ("Tenant with ID 'acme' already
//! exists", "Cannot connect to database server").

use std::future::Future;
use std::sync::Arc;

use anyhow::anyhow;
use tenant_gateway::admin::ApiError;
use tenant_gateway::config::Config;
use tenant_gateway::provision::{ProvisionError, ProvisionFailure, Provisioner};
use tenant_gateway::store::{self, OpenMode, Store, StoreError};
use tenant_gateway::tenant::spec::SpecRules;
use tenant_gateway::tenant::{TenantPatch, TenantRecord};

use super::ConfigArgs;

/// The configured store, opened.
pub struct Opened {
    pub config: Config,
    pub store: Arc<dyn Store>,
    /// Present with a PostgreSQL store.
    pub provisioner: Option<Arc<Provisioner>>,
}

impl Opened {
    /// The validation rules the admin API would apply.
    pub fn rules(&self) -> SpecRules {
        self.config.spec_rules()
    }

    /// The provisioner, or why `what` cannot run without one.
    pub fn provisioner(&self, what: &str) -> anyhow::Result<&Arc<Provisioner>> {
        self.provisioner
            .as_ref()
            .ok_or_else(|| anyhow!("{what} needs a PostgreSQL store (--store postgres://…)"))
    }
}

/// Loads the config, opens the store and runs `work` on it. A command that
/// adds tenants opens with `OpenMode::CreateIfMissing`; every other one with
/// `OpenMode::Existing`, so a mistyped `--data` is an error, not a new empty store.
pub fn with_store<T, F, Fut>(args: &ConfigArgs, mode: OpenMode, work: F) -> anyhow::Result<T>
where
    F: FnOnce(Opened) -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    let config = args.load()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let opened = store::open(&config.store, mode)
            .await
            .map_err(|e| match e {
                StoreError::Unavailable(_) => store_error(e),
                StoreError::NotFound { .. } => missing_store(&config),
                other => anyhow!(
                    "cannot open the store {}: {other}",
                    store::describe(&config.store)
                ),
            })?;
        let provisioner = match opened.postgres() {
            Some(pg) => Some(Arc::new(
                Provisioner::load(pg.clone(), &config.provisioning).map_err(provision_error)?,
            )),
            None => None,
        };
        work(Opened {
            config,
            store: opened.store,
            provisioner,
        })
        .await
    })
}

/// Why a command that needs an existing store found none, and how to make one.
fn missing_store(config: &Config) -> anyhow::Error {
    anyhow!(
        "no store at {} (create one with `serve` or `tenants create`)",
        store::describe(&config.store)
    )
}

/// Applies `patch` to tenant `id` in the configured store (`tenants
/// suspend|resume|limit|maintenance`) and returns the tenant as it is now.
pub fn patch_tenant(
    args: &ConfigArgs,
    id: &str,
    patch: TenantPatch,
) -> anyhow::Result<TenantRecord> {
    with_store(args, OpenMode::Existing, |s| async move {
        s.store.update_tenant(id, patch).await.map_err(store_error)
    })
}

/// A store error as the seed's commands word it.
pub fn store_error(e: StoreError) -> anyhow::Error {
    match e {
        StoreError::Unavailable(message) => {
            let detail = message
                .strip_prefix("cannot connect to the database server: ")
                .unwrap_or(&message);
            anyhow!("Cannot connect to database server: {detail}")
        }
        // The admin API's wording: "Tenant with ID 'acme' already exists".
        e @ StoreError::Conflict { .. } => anyhow!("{}", ApiError::from(e)),
        other => anyhow!(other),
    }
}

/// A provisioning error: the registry's own refusals as store errors, the
/// rest naming the step that failed.
pub fn provision_error(e: ProvisionError) -> anyhow::Error {
    match e.source {
        ProvisionFailure::Store(inner) => match inner {
            StoreError::Unavailable(_) | StoreError::Conflict { .. } => store_error(inner),
            other => anyhow!("provisioning failed at step '{}': {other}", e.step),
        },
        source => anyhow!("provisioning failed at step '{}': {source}", e.step),
    }
}
