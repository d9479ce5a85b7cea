//! Provisioning (control plane): giving a new tenant its isolated place in
//! PostgreSQL, all or nothing, together with its registry rows.
//!
//! - schema in the registry's database: registry rows, `CREATE SCHEMA`,
//!   migrations and default content in ONE transaction; any failure rolls
//!   all of it back.
//! - schema on another cluster: the registry rows in the registry's
//!   transaction (uncommitted), the schema, migrations and content in a
//!   transaction on the cluster, committed first; the registry commits
//!   last, and if it cannot, the schema is dropped again.
//! - database: `CREATE DATABASE` on the tenant's cluster (outside any
//!   transaction), then a schema of the same name, migrations and content
//!   in it; the registry rows commit last, and on any failure the database
//!   is dropped again.
//! - table: the table-content template with the tenant id bound; cache: nothing.
//!
//! The hooks (`provisioning.hooks`) run last, before the registry commits;
//! a failing hook undoes everything like any other step.

mod clone;
pub mod cluster;
mod commit;
mod error;
pub mod events;
pub mod hold;
pub mod hooks;
pub mod jobs;
pub mod migrate;
pub mod migrations;
pub mod role;
mod storage;
pub mod template;
mod webhook;

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use tokio_postgres::error::SqlState;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::Transaction;

pub(crate) use self::error::{operator_sql_failed, sql_failed, store_failed};
pub use self::error::{ProvisionError, ProvisionFailure};

use self::cluster::Clusters;
use self::hooks::{HookValues, Hooks};
use self::migrations::Migration;
use self::role::DatabaseRole;
use self::template::{Statement, Values};
use crate::config::{ProvisioningConfig, StoreLayout};
use crate::store::postgres::{pg_message, quote_ident};
use crate::store::{PgStore, StoreError};
use crate::tenant::{Isolation, NewTenant, TenantRecord};

/// A provisioned tenant, with what is shown only this once.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Provisioned {
    #[serde(flatten)]
    pub record: TenantRecord,
    /// The database tenant's login role (`provisioning.database_role`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_role: Option<DatabaseRole>,
}

/// Creates and drops tenants' schemas and databases.
pub struct Provisioner {
    store: PgStore,
    migrations: Vec<Migration>,
    content: Vec<Statement>,
    table_content: Vec<Statement>,
    statement_timeout: Duration,
    /// `provisioning.template_schema`, and what cloning it does (read once).
    template_schema: Option<String>,
    /// `provisioning.template_copy_data`: tables whose rows the clone copies.
    template_copy_data: Vec<String>,
    recipe: tokio::sync::OnceCell<Option<clone::Recipe>>,
    /// Where schemas and databases go (`provisioning.clusters`).
    clusters: Clusters,
    /// `provisioning.database_role`: a login role per database tenant.
    database_role: bool,
    /// `provisioning.hooks`, run before the registry commits.
    hooks: Hooks,
    /// Tenants migrated at once by `POST /v1/migrate`.
    pub migrate_parallel: usize,
    /// `provisioning.maintenance_hold` and `maintenance_settle`.
    maintenance_hold: Duration,
    maintenance_settle: Duration,
    /// Background work (`POST /v1/migrate`) and its progress.
    pub jobs: jobs::Jobs,
}

impl Provisioner {
    /// Reads the migrations and templates named by the configuration.
    pub fn load(
        store: PgStore,
        config: &ProvisioningConfig,
    ) -> Result<Provisioner, ProvisionError> {
        let read = |path: &Option<std::path::PathBuf>| -> Result<Vec<Statement>, ProvisionError> {
            match path {
                None => Ok(Vec::new()),
                Some(path) => std::fs::read_to_string(path)
                    .map(|text| template::parse(&text))
                    .map_err(|e| ProvisionError {
                        step: format!("load {}", path.display()),
                        source: ProvisionFailure::Migration(e.to_string()),
                    }),
            }
        };
        let clusters = Clusters::new(config, store.connect_config())?;
        if store.layout() == crate::config::StoreLayout::DjangoTenants
            && config.template_schema.is_none()
        {
            tracing::warn!("django-tenants layout without provisioning.template_schema: new tenants' schemas get no Django tables (see docs/django.md)");
        }
        Ok(Provisioner {
            clusters,
            database_role: config.database_role,
            hooks: Hooks::new(&config.hooks),
            migrations: match &config.migrations {
                Some(dir) => migrations::load(dir)?,
                None => Vec::new(),
            },
            content: read(&config.content)?,
            table_content: read(&config.table_content)?,
            statement_timeout: config.statement_timeout,
            store,
            jobs: jobs::Jobs::default(),
            migrate_parallel: config.migrate_parallel,
            maintenance_hold: config.maintenance_hold,
            maintenance_settle: config.maintenance_settle,
            template_schema: config.template_schema.clone(),
            template_copy_data: config.template_copy_data.clone(),
            recipe: tokio::sync::OnceCell::new(),
        })
    }

    /// How a `--maintenance` migration holds its tenant: `hold`, else
    /// `provisioning.maintenance_hold`; `router` is this process's own.
    pub fn maintenance_window(
        &self,
        store: std::sync::Arc<dyn crate::store::Store>,
        hold: Option<Duration>,
        router: Option<std::sync::Arc<crate::routing::Router>>,
    ) -> hold::MaintenanceWindow {
        hold::MaintenanceWindow {
            store,
            hold: Some(hold.unwrap_or(self.maintenance_hold)),
            settle: self.maintenance_settle,
            router,
        }
    }

    pub fn migrations(&self) -> &[Migration] {
        &self.migrations
    }

    /// Registers and provisions `tenant`; nothing remains if any step fails.
    /// A schema or database tenant naming no cluster is placed on the
    /// configured cluster with the fewest tenants.
    pub async fn create(&self, mut tenant: NewTenant) -> Result<Provisioned, ProvisionError> {
        // With django-tenants a schema is only complete as a clone of
        // Django's template, which is in the registry's database: such a
        // tenant stays there, unplaced.
        let django_schema = self.store.layout() == StoreLayout::DjangoTenants
            && self.template_schema.is_some()
            && tenant.isolation == Isolation::Schema;
        // Counted on its cluster until this create is done (`Clusters::place`).
        let placement =
            if tenant.cluster.is_none() && tenant.isolation.owns_schema() && !django_schema {
                self.clusters.place(&self.store).await?
            } else {
                None
            };
        if let Some(placement) = &placement {
            tenant.cluster = Some(placement.cluster.clone());
        }
        let cluster = self.clusters.get(tenant.cluster.as_deref())?;
        if django_schema && !cluster.is_registry {
            return Err(store_failed("cluster")(StoreError::Unsupported(format!(
                "cluster {}: with the django-tenants layout schema tenants are created only on the registry's cluster, where Django's template is (see docs/django.md)",
                cluster.name
            ))));
        }
        let mut conn = self.store.conn().await.map_err(store_failed("connect"))?;
        let tx = conn
            .transaction()
            .await
            .map_err(|e| sql_failed("begin", e))?;
        self.limit_statements(&tx).await?;
        // The registry rows first: a concurrent create of the same id or
        // domain waits here on the unique index, then gets a conflict.
        self.store
            .insert_tenant(&tx, &tenant)
            .await
            .map_err(store_failed("register"))?;
        let values = Values {
            tenant_id: &tenant.id,
            tenant_name: &tenant.name,
            schema: &tenant.schema,
        };
        // What was committed on the cluster, to remove if the registry's
        // commit does not happen.
        let mut database_role = None;
        let outside = match tenant.isolation {
            Isolation::Schema if cluster.is_registry => {
                self.fill_schema(&tx, &values, true).await?;
                None
            }
            Isolation::Schema => {
                self.create_schema_on(cluster, &values).await?;
                Some(Isolation::Schema)
            }
            Isolation::Database => {
                database_role = self.create_database(cluster, &values).await?;
                Some(Isolation::Database)
            }
            Isolation::Table => {
                run_template(&tx, "default content", &self.table_content, &values).await?;
                None
            }
            Isolation::Cache => None,
        };
        let store = &self.store;
        let id = &tenant.id;
        let hooks = &self.hooks;
        let hook_values = HookValues {
            tenant_id: &tenant.id,
            tenant_name: &tenant.name,
            schema: &tenant.schema,
            database: match tenant.isolation {
                Isolation::Database => &tenant.schema,
                _ => cluster.database(),
            },
            cluster: &cluster.name,
            isolation: tenant.isolation.as_str(),
        };
        // The registry transaction's id, kept when its COMMIT failed: it may
        // have happened all the same (see `committed_after_all`).
        let unanswered_commit = AtomicI64::new(commit::NO_TRANSACTION);
        let unanswered = &unanswered_commit;
        let committed = async move {
            hooks.run(&hook_values).await?;
            let record = store
                .record_on(&tx, id)
                .await
                .map_err(store_failed("commit"))?
                .ok_or_else(|| {
                    store_failed("commit")(StoreError::Backend("tenant vanished".into()))
                })?;
            // Logged for the other replicas as the last statement before the commit.
            store
                .record_change(&tx, Some(&record.domain_names()))
                .await
                .map_err(store_failed("commit"))?;
            let xid = store
                .transaction_id(&tx)
                .await
                .map_err(store_failed("commit"))?;
            tx.commit().await.map_err(|e| {
                // Even an error answer may come from a proxy (PgBouncer) or a
                // shutdown after the server committed: ask, don't assume.
                unanswered.store(xid, Ordering::Relaxed);
                sql_failed("commit", e)
            })?;
            Ok(record)
        }
        .await;
        match committed {
            Ok(record) => Ok(Provisioned {
                record,
                database_role,
            }),
            Err(e) => {
                let xid = unanswered_commit.load(Ordering::Relaxed);
                if xid != commit::NO_TRANSACTION {
                    // The connection goes back first: the pool may be small.
                    drop(conn);
                    match self.committed_after_all(&tenant, xid, &e).await {
                        Ok(Some(record)) => {
                            return Ok(Provisioned {
                                record,
                                database_role,
                            })
                        }
                        Ok(None) => {}
                        // Unknown: what was made on the cluster stays.
                        Err(unknown) => return Err(unknown),
                    }
                }
                if let Some(isolation) = outside {
                    let role = database_role.is_some();
                    self.remove_quietly(cluster, isolation, &tenant.schema, role)
                        .await;
                }
                Err(e)
            }
        }
    }

    /// The store this provisioner writes its registry rows to.
    pub fn store(&self) -> &PgStore {
        &self.store
    }

    /// The clusters tenants can be placed on.
    pub fn clusters(&self) -> &Clusters {
        &self.clusters
    }

    /// `provisioning.statement_timeout` for the rest of `tx`.
    async fn limit_statements(&self, tx: &Transaction<'_>) -> Result<(), ProvisionError> {
        tx.batch_execute(&format!(
            "SET LOCAL statement_timeout = {}",
            self.statement_timeout.as_millis()
        ))
        .await
        .map_err(|e| sql_failed("begin", e))
    }

    /// `CREATE SCHEMA`, the migrations and the default content, on `tx`.
    /// The template is cloned only in the registry's database, where it is.
    async fn fill_schema(
        &self,
        tx: &Transaction<'_>,
        values: &Values<'_>,
        in_registry: bool,
    ) -> Result<(), ProvisionError> {
        tx.batch_execute(&format!("CREATE SCHEMA {}", quote_ident(values.schema)))
            .await
            .map_err(|e| match e.code() {
                // A schema no tenant owns (left over, or a template): taken.
                Some(&SqlState::DUPLICATE_SCHEMA) => ProvisionError {
                    step: "create schema".into(),
                    source: ProvisionFailure::Store(StoreError::Conflict {
                        what: "schema",
                        key: values.schema.to_owned(),
                    }),
                },
                _ => sql_failed("create schema", e),
            })?;
        if !(in_registry && self.clone_template(tx, values.schema).await?) {
            migrations::apply(tx, values.schema, &self.migrations).await?;
        }
        run_template(tx, "default content", &self.content, values).await
    }
}

/// Runs each statement of a template with its values bound.
async fn run_template(
    tx: &Transaction<'_>,
    step: &str,
    statements: &[Statement],
    values: &Values<'_>,
) -> Result<(), ProvisionError> {
    for statement in statements {
        let (sql, bound) = statement.render(values);
        let params: Vec<(&(dyn ToSql + Sync), Type)> = bound
            .iter()
            .map(|v| (v as &(dyn ToSql + Sync), Type::TEXT))
            .collect();
        tx.query_typed(&sql, &params)
            .await
            .map_err(|e| ProvisionError {
                step: step.to_owned(),
                source: ProvisionFailure::OperatorSql(pg_message(&e)),
            })?;
    }
    Ok(())
}
