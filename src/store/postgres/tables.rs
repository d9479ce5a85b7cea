//! The tables the PostgreSQL store needs, made at start under an advisory
//! lock (one gateway at a time): the change log and the tenants' controls
//! for every layout, the
//! versioned registry tables of the native layout, and the checks (and
//! optional change triggers) of the django-tenants layout.

use super::layout::{CONTROLS_TABLE, NATIVE_MIGRATIONS};
use super::{changes, pg_error, pg_message, PgStore};
use crate::config::StoreLayout;
use crate::store::StoreError;

impl PgStore {
    /// Creates the change log; then, for the native layout, creates or
    /// upgrades the registry tables, and for django-tenants checks its tables
    /// exist (and installs the change triggers when asked).
    pub(super) async fn prepare_tables(&self, django_triggers: bool) -> Result<(), StoreError> {
        let mut conn = self.conn().await?;
        // One gateway creates or upgrades tables at a time; the others wait,
        // then see it done.
        let tx = conn.transaction().await.map_err(pg_error)?;
        tx.batch_execute("SELECT pg_advisory_xact_lock(7417265436352)")
            .await
            .map_err(pg_error)?;
        tx.batch_execute(changes::CREATE_TABLE)
            .await
            .map_err(pg_error)?;
        tx.batch_execute(CONTROLS_TABLE).await.map_err(pg_error)?;
        if self.sql.layout == StoreLayout::DjangoTenants {
            for table in [&self.sql.tenant_table, &self.sql.domain_table] {
                let found: Option<String> = tx
                    .query_one("SELECT to_regclass($1)::text", &[table])
                    .await
                    .map_err(pg_error)?
                    .get(0);
                if found.is_none() {
                    return Err(StoreError::Backend(format!(
                        "django-tenants table {table} not found (store.django.*)"
                    )));
                }
            }
            if django_triggers {
                tx.batch_execute(&changes::django_triggers(
                    &self.sql.tenant_table,
                    &self.sql.domain_table,
                ))
                .await
                .map_err(|e| {
                    StoreError::Backend(format!(
                        "cannot install store.django.change_triggers: {}",
                        pg_message(&e)
                    ))
                })?;
            }
            return tx.commit().await.map_err(pg_error);
        }
        tx.batch_execute("CREATE TABLE IF NOT EXISTS gateway_store_version (version int NOT NULL)")
            .await
            .map_err(pg_error)?;
        let version: i32 = tx
            .query_one(
                "SELECT coalesce(max(version), 0) FROM gateway_store_version",
                &[],
            )
            .await
            .map_err(pg_error)?
            .get(0);
        if version as usize > NATIVE_MIGRATIONS.len() {
            return Err(StoreError::Backend(format!(
                "the store has version {version}, newer than this gateway's {}",
                NATIVE_MIGRATIONS.len()
            )));
        }
        for (i, step) in NATIVE_MIGRATIONS.iter().enumerate().skip(version as usize) {
            tx.batch_execute(step).await.map_err(pg_error)?;
            tx.execute(
                "INSERT INTO gateway_store_version (version) VALUES ($1)",
                &[&(i as i32 + 1)],
            )
            .await
            .map_err(pg_error)?;
        }
        tx.commit().await.map_err(pg_error)
    }
}
