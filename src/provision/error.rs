//! How provisioning fails: the step it failed in, and why, sorted by whose
//! the problem is (the gateway's SQL, the operator's files, a leftover on
//! the server, a hook), so the admin API can answer each rightly.

use tokio_postgres::error::SqlState;

use crate::store::postgres::pg_error;
use crate::store::StoreError;

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
    /// PostgreSQL refused a statement of the gateway's own (its message
    /// names tables and constraints: logged, never answered).
    #[error("{0}")]
    Sql(String),
    /// What this tenant was to get exists already on the server (a
    /// leftover schema, database or role that the registry does not know):
    /// the caller should register it with `provision: false`, or drop it.
    #[error("{0}")]
    Exists(String),
    /// The tenant's schema or database is not on its cluster (registered
    /// with `provision: false` and never made, or dropped by hand).
    #[error("{0}")]
    Missing(String),
    /// PostgreSQL refused a statement the operator wrote (a migration, the
    /// default content): its message is the operator's to see.
    #[error("{0}")]
    OperatorSql(String),
    /// A migration or template file is unusable.
    #[error("{0}")]
    Migration(String),
    /// The configuration does not allow it (e.g. a tenant's cluster is no
    /// longer configured).
    #[error("{0}")]
    Config(String),
    /// A hook command or webhook failed (exit status and stderr tail, or
    /// the webhook's answer).
    #[error("{0}")]
    Hook(String),
}

pub(crate) fn sql_failed(step: &str, e: tokio_postgres::Error) -> ProvisionError {
    let exists = e.code().is_some_and(|code| {
        *code == SqlState::DUPLICATE_SCHEMA
            || *code == SqlState::DUPLICATE_DATABASE
            || (*code == SqlState::DUPLICATE_OBJECT && step == "create role")
    });
    // Migrating starts by making the migration table in the tenant's schema.
    let missing = step == "migration table"
        && e.code()
            .is_some_and(|code| *code == SqlState::INVALID_SCHEMA_NAME);
    let source = match pg_error(e) {
        StoreError::Backend(message) if exists => ProvisionFailure::Exists(message),
        StoreError::Backend(message) if missing => ProvisionFailure::Missing(message),
        StoreError::Backend(message) => ProvisionFailure::Sql(message),
        other => ProvisionFailure::Store(other),
    };
    ProvisionError {
        step: step.to_owned(),
        source,
    }
}

/// Like [`sql_failed`], for SQL the operator wrote (a migration file).
pub(crate) fn operator_sql_failed(step: &str, e: tokio_postgres::Error) -> ProvisionError {
    let mut failed = sql_failed(step, e);
    if let ProvisionFailure::Sql(message) = failed.source {
        failed.source = ProvisionFailure::OperatorSql(message);
    }
    failed
}

pub(crate) fn store_failed(step: &str) -> impl FnOnce(StoreError) -> ProvisionError + '_ {
    move |e| ProvisionError {
        step: step.to_owned(),
        source: ProvisionFailure::Store(e),
    }
}
