//! Where tenants are kept (the embedded file or PostgreSQL, native or
//! django-tenants tables) and how new tenants are provisioned there.

use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// The embedded single-file store.
    #[default]
    Sqlite,
    /// A PostgreSQL database (`url`), which also enables provisioning.
    Postgres,
}

/// Which tables a PostgreSQL store reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum StoreLayout {
    /// The gateway's own tables, created on start.
    #[default]
    Native,
    /// An existing django-tenants deployment's client and domain tables.
    DjangoTenants,
}

impl std::str::FromStr for StoreLayout {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "native" => Ok(StoreLayout::Native),
            "django-tenants" => Ok(StoreLayout::DjangoTenants),
            _ => Err(format!(
                "invalid store layout '{s}': valid options are native, django-tenants"
            )),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    pub kind: StoreKind,
    /// The embedded store's file.
    pub path: PathBuf,
    /// PostgreSQL connection URL (`postgres://user@host:port/db`).
    pub url: Option<String>,
    /// Connections kept by the PostgreSQL pool.
    pub pool_size: u32,
    /// How long to wait for a pooled connection before answering "unavailable".
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Server-side limit on any one registry statement.
    #[serde(with = "humantime_serde")]
    pub statement_timeout: Duration,
    /// PostgreSQL: how often the change feed re-reads the change log even
    /// without a notification (repairs anything a lost connection missed).
    #[serde(with = "humantime_serde")]
    pub resync_interval: Duration,
    pub layout: StoreLayout,
    pub django: DjangoLayoutConfig,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            kind: StoreKind::Sqlite,
            path: PathBuf::from("./tenant-gateway.db"),
            url: None,
            pool_size: 16,
            connect_timeout: Duration::from_secs(3),
            statement_timeout: Duration::from_secs(5),
            resync_interval: Duration::from_secs(10),
            layout: StoreLayout::Native,
            django: DjangoLayoutConfig::default(),
        }
    }
}

/// Table and column names of a django-tenants deployment.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DjangoLayoutConfig {
    pub tenant_table: String,
    pub domain_table: String,
    /// The tenant column sent to the app as the tenant id.
    pub tenant_id_column: String,
    /// A tenant column holding the display name (written on create).
    pub name_column: Option<String>,
    /// A tenant column holding the plan (read, written on create and PATCH);
    /// without it tenants have no plan.
    pub plan_column: Option<String>,
}

impl Default for DjangoLayoutConfig {
    fn default() -> Self {
        DjangoLayoutConfig {
            tenant_table: "customers_client".into(),
            domain_table: "customers_domain".into(),
            tenant_id_column: "schema_name".into(),
            name_column: None,
            plan_column: None,
        }
    }
}

/// How new tenants get their place in the database (PostgreSQL store only).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProvisioningConfig {
    /// Directory of ordered `NNNN_name.sql` migrations (schema and database isolation).
    pub migrations: Option<PathBuf>,
    /// SQL template loaded after the migrations (schema and database isolation).
    pub content: Option<PathBuf>,
    /// SQL template loaded for table isolation (shared tables, tenant id bound).
    pub table_content: Option<PathBuf>,
    /// Server-side limit on each provisioning statement.
    #[serde(with = "humantime_serde")]
    pub statement_timeout: Duration,
    /// How many tenants `POST /v1/migrate` and `tenants migrate-all` migrate at once.
    pub migrate_parallel: usize,
    /// A schema kept fully migrated; new schema tenants are cloned from it
    /// instead of replaying the migrations (the fast path).
    pub template_schema: Option<String>,
}

impl Default for ProvisioningConfig {
    fn default() -> Self {
        ProvisioningConfig {
            migrations: None,
            content: None,
            table_content: None,
            statement_timeout: Duration::from_secs(120),
            migrate_parallel: 4,
            template_schema: None,
        }
    }
}
