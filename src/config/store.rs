//! Where tenants are kept: the embedded file or PostgreSQL, native or
//! django-tenants tables.

use serde::Deserialize;
use std::collections::BTreeMap;
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
    /// A tenant column holding the tenant's cluster (`provisioning.clusters`);
    /// without it every tenant is on the registry's own server.
    pub cluster_column: Option<String>,
    /// Install triggers on the two tables so that writes Django makes itself
    /// reach every gateway's cache through the change feed at once (without
    /// them, such writes are seen when cache entries expire).
    pub change_triggers: bool,
    /// SQL expressions PostgreSQL evaluates for tenant columns the gateway
    /// does not fill itself (`paid_until: "current_date + 365"`): Django's
    /// field defaults live in Python, so such columns have no database
    /// default. A create's own `columns` win over these.
    pub column_defaults: BTreeMap<String, String>,
}

impl Default for DjangoLayoutConfig {
    fn default() -> Self {
        DjangoLayoutConfig {
            tenant_table: "customers_client".into(),
            domain_table: "customers_domain".into(),
            tenant_id_column: "schema_name".into(),
            name_column: None,
            plan_column: None,
            cluster_column: None,
            change_triggers: false,
            column_defaults: BTreeMap::new(),
        }
    }
}
