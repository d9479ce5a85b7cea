//! Provisioning (control plane): giving a new tenant its isolated place in
//! PostgreSQL, all or nothing, together with its registry rows.
//!
//! - schema: registry rows, `CREATE SCHEMA`, migrations and default content
//!   in ONE transaction; any failure rolls all of it back.
//! - database: `CREATE DATABASE` (outside any transaction), then a schema of
//!   the same name, migrations and content in it; the registry rows commit
//!   last, and on any failure the database is dropped again.
//! - table: the table-content template with the tenant id bound; cache: nothing.

mod clone;
pub mod jobs;
pub mod migrate;
pub mod migrations;
pub mod template;

use std::time::Duration;

use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{NoTls, Transaction};

use self::migrations::Migration;
use self::template::{quote_ident, Statement, Values};
use crate::config::ProvisioningConfig;
use crate::store::postgres::{pg_error, pg_message};
use crate::store::{PgStore, StoreError};
use crate::tenant::{Isolation, NewTenant, Tenant, TenantRecord};

/// A provisioning failure and the step it happened in, e.g.
/// `migration 0003_orders.sql`.
#[derive(Debug, thiserror::Error)]
#[error("{step}: {source}")]
pub struct ProvisionError {
    pub step: String,
    #[source]
    pub source: ProvisionFailure,
}

#[derive(Debug, thiserror::Error)]
pub enum ProvisionFailure {
    /// The registry refused (conflict, outage, …).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// PostgreSQL refused a statement.
    #[error("{0}")]
    Sql(String),
    /// A migration or template file is unusable.
    #[error("{0}")]
    Migration(String),
}

pub(crate) fn sql_failed(step: &str, e: tokio_postgres::Error) -> ProvisionError {
    let source = match pg_error(e) {
        StoreError::Backend(message) => ProvisionFailure::Sql(message),
        other => ProvisionFailure::Store(other),
    };
    ProvisionError {
        step: step.to_owned(),
        source,
    }
}

pub(crate) fn store_failed(step: &str) -> impl FnOnce(StoreError) -> ProvisionError + '_ {
    move |e| ProvisionError {
        step: step.to_owned(),
        source: ProvisionFailure::Store(e),
    }
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
    recipe: tokio::sync::OnceCell<Option<clone::Recipe>>,
    /// Tenants migrated at once by `POST /v1/migrate`.
    pub migrate_parallel: usize,
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
        Ok(Provisioner {
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
            template_schema: config.template_schema.clone(),
            recipe: tokio::sync::OnceCell::new(),
        })
    }

    pub fn migrations(&self) -> &[Migration] {
        &self.migrations
    }

    /// Registers and provisions `tenant`; nothing remains if any step fails.
    pub async fn create(&self, tenant: NewTenant) -> Result<TenantRecord, ProvisionError> {
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
        match tenant.isolation {
            Isolation::Schema => self.fill_schema(&tx, &values).await?,
            Isolation::Table => {
                run_template(&tx, "default content", &self.table_content, &values).await?
            }
            Isolation::Cache => {}
            Isolation::Database => {
                self.create_database(&values).await?;
                let committed = match self.record_and_notify(&tx, &tenant).await {
                    Ok(record) => tx
                        .commit()
                        .await
                        .map(|()| record)
                        .map_err(|e| sql_failed("commit", e)),
                    Err(e) => Err(e),
                };
                if committed.is_err() {
                    self.drop_database_quietly(&tenant.schema).await;
                }
                return committed;
            }
        }
        let record = self.record_and_notify(&tx, &tenant).await?;
        tx.commit().await.map_err(|e| sql_failed("commit", e))?;
        Ok(record)
    }

    /// The new tenant's record, read back on `tx`, and its domains logged for
    /// the other replicas (the last statements before the commit).
    async fn record_and_notify(
        &self,
        tx: &Transaction<'_>,
        tenant: &NewTenant,
    ) -> Result<TenantRecord, ProvisionError> {
        let record = self
            .store
            .record_on(tx, &tenant.id)
            .await
            .map_err(store_failed("commit"))?
            .ok_or_else(|| store_failed("commit")(StoreError::Backend("tenant vanished".into())))?;
        self.store
            .record_change(tx, Some(&tenant.domains))
            .await
            .map_err(store_failed("commit"))?;
        Ok(record)
    }

    /// The store this provisioner writes its registry rows to.
    pub fn store(&self) -> &PgStore {
        &self.store
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
    async fn fill_schema(
        &self,
        tx: &Transaction<'_>,
        values: &Values<'_>,
    ) -> Result<(), ProvisionError> {
        tx.batch_execute(&format!("CREATE SCHEMA {}", quote_ident(values.schema)))
            .await
            .map_err(|e| sql_failed("create schema", e))?;
        if !self.clone_template(tx, values.schema).await? {
            migrations::apply(tx, values.schema, &self.migrations).await?;
        }
        run_template(tx, "default content", &self.content, values).await
    }

    /// A connection to another database of the registry's server.
    async fn connect_to(
        &self,
        database: &str,
    ) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
        let mut config = self.store.connect_config().clone();
        config.dbname(database);
        let (client, connection) = config.connect(NoTls).await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "provisioning connection ended");
            }
        });
        Ok(client)
    }

    async fn create_database(&self, values: &Values<'_>) -> Result<(), ProvisionError> {
        let admin = self
            .store
            .conn()
            .await
            .map_err(store_failed("create database"))?;
        admin
            .batch_execute(&format!("CREATE DATABASE {}", quote_ident(values.schema)))
            .await
            .map_err(|e| sql_failed("create database", e))?;
        drop(admin);
        let filled = async {
            let mut client = self
                .connect_to(values.schema)
                .await
                .map_err(|e| sql_failed("connect to the new database", e))?;
            let tx = client
                .transaction()
                .await
                .map_err(|e| sql_failed("begin", e))?;
            self.fill_schema(&tx, values).await?;
            tx.commit().await.map_err(|e| sql_failed("commit", e))
        }
        .await;
        if filled.is_err() {
            self.drop_database_quietly(values.schema).await;
        }
        filled
    }

    async fn drop_database_quietly(&self, name: &str) {
        if let Err(e) = self.drop_database(name).await {
            tracing::error!(database = name, error = %e, "cannot drop the database of a failed provisioning");
        }
    }

    async fn drop_database(&self, name: &str) -> Result<(), ProvisionError> {
        let admin = self
            .store
            .conn()
            .await
            .map_err(store_failed("drop database"))?;
        admin
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                quote_ident(name)
            ))
            .await
            .map_err(|e| sql_failed("drop database", e))
    }

    /// Drops a removed tenant's schema or database (table and cache
    /// isolation own nothing to drop).
    pub async fn drop_storage(&self, tenant: &Tenant) -> Result<(), ProvisionError> {
        match tenant.isolation {
            Isolation::Schema => {
                let conn = self
                    .store
                    .conn()
                    .await
                    .map_err(store_failed("drop schema"))?;
                conn.batch_execute(&format!(
                    "DROP SCHEMA IF EXISTS {} CASCADE",
                    quote_ident(&tenant.schema)
                ))
                .await
                .map_err(|e| sql_failed("drop schema", e))
            }
            Isolation::Database => self.drop_database(&tenant.schema).await,
            Isolation::Table | Isolation::Cache => Ok(()),
        }
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
                source: ProvisionFailure::Sql(pg_message(&e)),
            })?;
    }
    Ok(())
}
