//! What a tenant owns on its cluster outside the registry's transaction: a
//! schema on another cluster, or a database (and its login role). Each is
//! created and filled in a transaction of its own on the cluster, and
//! dropped again when the registry's commit does not follow (or on
//! `DELETE ?drop=true`).

use super::cluster::Cluster;
use super::role::{self, DatabaseRole};
use super::template::Values;
use super::{sql_failed, ProvisionError, ProvisionFailure, Provisioner};
use crate::store::postgres::quote_ident;
use crate::tenant::{Isolation, Tenant};

impl Provisioner {
    /// The schema, migrations and content in one transaction on `cluster`,
    /// committed before the registry's.
    pub(super) async fn create_schema_on(
        &self,
        cluster: &Cluster,
        values: &Values<'_>,
    ) -> Result<(), ProvisionError> {
        let mut conn = cluster
            .connect(
                &self.store,
                None,
                &format!("connect to cluster {}", cluster.name),
            )
            .await?;
        let tx = conn
            .transaction()
            .await
            .map_err(|e| sql_failed("begin", e))?;
        self.limit_statements(&tx).await?;
        self.fill_schema(&tx, values, false).await?;
        tx.commit().await.map_err(|e| sql_failed("commit", e))
    }

    /// `CREATE DATABASE` on `cluster`, its login role when configured, then
    /// the schema of the same name in it; the database (and the role) are
    /// dropped again if anything fails.
    pub(super) async fn create_database(
        &self,
        cluster: &Cluster,
        values: &Values<'_>,
    ) -> Result<Option<DatabaseRole>, ProvisionError> {
        let role = match self.database_role {
            true => Some(
                DatabaseRole::generate(values.schema).map_err(|e| ProvisionError {
                    step: "create role".into(),
                    source: ProvisionFailure::Config(e),
                })?,
            ),
            false => None,
        };
        let admin = cluster
            .connect(&self.store, None, "create database")
            .await?;
        admin
            .batch_execute(&format!("CREATE DATABASE {}", quote_ident(values.schema)))
            .await
            .map_err(|e| sql_failed("create database", e))?;
        if let Some(role) = &role {
            // A role of that name that exists already is not ours to drop.
            if let Err(e) = admin.batch_execute(&role.create_sql(values.schema)).await {
                drop(admin);
                self.remove_quietly(cluster, Isolation::Database, values.schema, false)
                    .await;
                return Err(sql_failed("create role", e));
            }
        }
        drop(admin);
        let filled = async {
            let mut client = cluster
                .connect(
                    &self.store,
                    Some(values.schema),
                    "connect to the new database",
                )
                .await?;
            let tx = client
                .transaction()
                .await
                .map_err(|e| sql_failed("begin", e))?;
            self.limit_statements(&tx).await?;
            self.fill_schema(&tx, values, false).await?;
            if let Some(role) = &role {
                tx.batch_execute(&role.grant_sql(values.schema))
                    .await
                    .map_err(|e| sql_failed("grant the role", e))?;
            }
            tx.commit().await.map_err(|e| sql_failed("commit", e))
        }
        .await;
        match filled {
            Ok(()) => Ok(role),
            Err(e) => {
                let with_role = role.is_some();
                self.remove_quietly(cluster, Isolation::Database, values.schema, with_role)
                    .await;
                Err(e)
            }
        }
    }

    /// Undoes a creation whose registry commit did not happen (`role`: its
    /// database's login role too); a failure is logged (the caller reports
    /// the original error).
    pub(super) async fn remove_quietly(
        &self,
        cluster: &Cluster,
        isolation: Isolation,
        name: &str,
        role: bool,
    ) {
        if let Err(e) = self.remove(cluster, isolation, name, role).await {
            tracing::error!(
                cluster = %cluster.name,
                name,
                error = %e,
                "cannot remove what a failed provisioning created"
            );
        }
    }

    /// Drops the schema or database `name` on `cluster` (`role`: and the
    /// database's login role, once the database is gone).
    async fn remove(
        &self,
        cluster: &Cluster,
        isolation: Isolation,
        name: &str,
        role: bool,
    ) -> Result<(), ProvisionError> {
        let (step, sql) = match isolation {
            Isolation::Schema => (
                "drop schema",
                format!("DROP SCHEMA IF EXISTS {} CASCADE", quote_ident(name)),
            ),
            Isolation::Database => (
                "drop database",
                format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote_ident(name)),
            ),
            Isolation::Table | Isolation::Cache => return Ok(()),
        };
        let conn = cluster.connect(&self.store, None, step).await?;
        conn.batch_execute(&sql)
            .await
            .map_err(|e| sql_failed(step, e))?;
        if role && isolation == Isolation::Database {
            conn.batch_execute(&role::drop_sql(name))
                .await
                .map_err(|e| sql_failed("drop role", e))?;
        }
        Ok(())
    }

    /// Drops a removed tenant's schema or database on its cluster, and
    /// with `provisioning.database_role` the database's role (table and
    /// cache isolation own nothing to drop).
    pub async fn drop_storage(&self, tenant: &Tenant) -> Result<(), ProvisionError> {
        let cluster = self.clusters.get(tenant.cluster.as_deref())?;
        let role = self.database_role;
        self.remove(cluster, tenant.isolation, &tenant.schema, role)
            .await
    }
}
