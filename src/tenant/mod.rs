//! The tenant model shared by the data path and the control plane, and the pure
//! rules for tenant ids and schema names.

pub mod controls;
pub mod host;
pub mod signup;
pub mod spec;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use utoipa::ToSchema;

pub use controls::{Maintenance, Rate, RatePeriod, TenantLimits};

/// How a tenant's data is kept apart from other tenants' data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Isolation {
    /// One PostgreSQL schema per tenant (django-tenants' model).
    #[default]
    Schema,
    /// One database per tenant.
    Database,
    /// Shared tables, rows carry the tenant id.
    Table,
    /// Shared storage, keys carry a tenant prefix.
    Cache,
}

impl Isolation {
    pub const ALL: [Isolation; 4] = [
        Isolation::Schema,
        Isolation::Database,
        Isolation::Table,
        Isolation::Cache,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Isolation::Schema => "schema",
            Isolation::Database => "database",
            Isolation::Table => "table",
            Isolation::Cache => "cache",
        }
    }

    /// Whether the schema name must be unique among tenants of this kind.
    pub fn owns_schema(self) -> bool {
        matches!(self, Isolation::Schema | Isolation::Database)
    }
}

impl FromStr for Isolation {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Isolation::ALL
            .into_iter()
            .find(|i| i.as_str() == s)
            .ok_or_else(|| {
                format!("invalid isolation type '{s}': valid options are schema, database, table, cache")
            })
    }
}

impl fmt::Display for Isolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether the data path forwards a tenant's requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TenantStatus {
    #[default]
    Active,
    Suspended,
}

impl TenantStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TenantStatus::Active => "active",
            TenantStatus::Suspended => "suspended",
        }
    }
}

impl FromStr for TenantStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "active" => Ok(TenantStatus::Active),
            "suspended" => Ok(TenantStatus::Suspended),
            _ => Err(format!(
                "invalid status '{s}': valid options are active, suspended"
            )),
        }
    }
}

/// A registered tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Tenant {
    pub id: String,
    pub name: String,
    pub schema: String,
    pub isolation: Isolation,
    pub status: TenantStatus,
    /// Backend pool; `None` means its plan's pool (`plans:`), else `default`.
    pub pool: Option<String>,
    /// Billing plan (e.g. `premium`); `plans:` in the config maps it to a pool.
    pub plan: Option<String>,
    /// The PostgreSQL cluster holding its schema or database
    /// (`provisioning.clusters`); `None` is the registry's own server.
    pub cluster: Option<String>,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// Its own limits, over its plan's (`PATCH /v1/tenants/{id}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limits: Option<TenantLimits>,
    /// Set while the tenant is under maintenance (`POST /v1/tenants/{id}/maintenance`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maintenance: Option<Maintenance>,
}

/// A domain routed to a tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Domain {
    pub domain: String,
    pub tenant_id: String,
    pub is_primary: bool,
}

/// A tenant with its domains, as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct TenantRecord {
    #[serde(flatten)]
    pub tenant: Tenant,
    pub domains: Vec<DomainEntry>,
}

impl TenantRecord {
    /// The tenant's domains, without their primary flags.
    pub fn domain_names(&self) -> Vec<String> {
        self.domains.iter().map(|d| d.domain.clone()).collect()
    }
}

/// A domain as listed under its tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct DomainEntry {
    pub domain: String,
    pub is_primary: bool,
}

/// A validated request to create a tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTenant {
    pub id: String,
    pub name: String,
    pub schema: String,
    pub isolation: Isolation,
    pub status: TenantStatus,
    pub pool: Option<String>,
    pub plan: Option<String>,
    /// A configured cluster; `None` is the registry's own server (or, when
    /// provisioning, "let the gateway place it").
    pub cluster: Option<String>,
    /// Normalised domains; the first becomes primary.
    pub domains: Vec<String>,
    /// Values for further columns of a django-tenants tenant table (e.g. an
    /// `owner_id`), bound as parameters; other layouts refuse any.
    pub columns: BTreeMap<String, serde_json::Value>,
}

#[cfg(test)]
impl Tenant {
    /// An active schema tenant `id` (its name and schema too), on no pool,
    /// plan or cluster and with no controls: the unit tests' fixture.
    pub(crate) fn example(id: &str) -> Tenant {
        Tenant {
            id: id.into(),
            name: id.into(),
            schema: id.into(),
            isolation: Isolation::Schema,
            status: TenantStatus::Active,
            pool: None,
            plan: None,
            cluster: None,
            created_at: String::new(),
            limits: None,
            maintenance: None,
        }
    }
}

#[cfg(test)]
impl NewTenant {
    /// An active schema tenant `id` (its name and schema too) with these
    /// domains: the unit tests' fixture.
    pub(crate) fn example(id: &str, domains: &[&str]) -> NewTenant {
        NewTenant {
            id: id.into(),
            name: id.into(),
            schema: id.into(),
            isolation: Isolation::Schema,
            status: TenantStatus::Active,
            pool: None,
            plan: None,
            cluster: None,
            domains: domains.iter().map(|d| d.to_string()).collect(),
            columns: Default::default(),
        }
    }
}

impl NewTenant {
    /// Whether `record` is what creating this tenant would have made (same
    /// fields, same domains, same primary): a retried create.
    pub fn matches(&self, record: &TenantRecord) -> bool {
        let t = &record.tenant;
        let mut have: Vec<&str> = record.domains.iter().map(|d| d.domain.as_str()).collect();
        let mut want: Vec<&str> = self.domains.iter().map(String::as_str).collect();
        let primary = record
            .domains
            .iter()
            .find(|d| d.is_primary)
            .map(|d| d.domain.as_str());
        have.sort_unstable();
        want.sort_unstable();
        t.id == self.id
            && t.name == self.name
            && t.schema == self.schema
            && t.isolation == self.isolation
            && t.status == self.status
            && t.pool == self.pool
            && t.plan == self.plan
            // A create that named no cluster accepts the one it was placed on.
            && (self.cluster.is_none() || t.cluster == self.cluster)
            && have == want
            && primary == self.domains.first().map(String::as_str)
    }
}

/// A validated change to a tenant; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TenantPatch {
    pub name: Option<String>,
    pub status: Option<TenantStatus>,
    /// `Some(None)` moves the tenant back to the default pool.
    pub pool: Option<Option<String>>,
    /// `Some(None)` removes the tenant's plan.
    pub plan: Option<Option<String>>,
    /// `Some(None)` clears the tenant's own limits (its plan's apply).
    pub limits: Option<Option<TenantLimits>>,
    /// `Some(Some(_))` puts the tenant under maintenance, `Some(None)` ends it.
    pub maintenance: Option<Option<Maintenance>>,
}

impl TenantPatch {
    /// Whether the patch changes nothing.
    pub fn is_empty(&self) -> bool {
        *self == TenantPatch::default()
    }
}

/// The name of the registry's own PostgreSQL server as a cluster: the only
/// cluster when `provisioning.clusters` is empty (stored as no cluster).
pub const DEFAULT_CLUSTER: &str = "default";

/// The id of the tenant that owns the `public` schema.
pub const PUBLIC_TENANT_ID: &str = "public";

/// Why an id or schema name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NameError(pub String);

/// Whether `s` is a slug: 1-63 lowercase letters, digits, `-` and `_`,
/// starting with a letter or digit.
fn is_slug(s: &str) -> bool {
    let mut chars = s.bytes();
    (1..=63).contains(&s.len())
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'_')
}

fn slug_error(what: &str, value: &str) -> NameError {
    NameError(format!(
        "invalid {what} '{value}': use 1-63 lowercase letters, digits, '-' or '_', starting with a letter or digit"
    ))
}

/// Tenant ids are slugs (see `is_slug`).
pub fn validate_tenant_id(id: &str) -> Result<(), NameError> {
    is_slug(id)
        .then_some(())
        .ok_or_else(|| slug_error("tenant id", id))
}

/// Plan names are slugs too: they are config keys and label-like values.
pub fn validate_plan(plan: &str) -> Result<(), NameError> {
    is_slug(plan)
        .then_some(())
        .ok_or_else(|| slug_error("plan", plan))
}

/// Cluster names are slugs too (config keys, and an injected header value).
pub fn validate_cluster(cluster: &str) -> Result<(), NameError> {
    is_slug(cluster)
        .then_some(())
        .ok_or_else(|| slug_error("cluster name", cluster))
}

/// Derives a schema name from a tenant id: lowercase, every character outside
/// `[a-z0-9_]` becomes `_`, and a leading digit gets the prefix `tenant_`.
pub fn derive_schema(id: &str) -> String {
    let mut schema: String = id
        .chars()
        .flat_map(char::to_lowercase)
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if schema.starts_with(|c: char| c.is_ascii_digit()) {
        schema.insert_str(0, "tenant_");
    }
    schema
}

/// Checks a schema name against `^[a-z_][a-z0-9_]{0,62}$` and the names
/// PostgreSQL reserves. `public` belongs to the public tenant only.
pub fn validate_schema(schema: &str, tenant_id: &str) -> Result<(), NameError> {
    let bytes = schema.as_bytes();
    let shape_ok = (1..=63).contains(&bytes.len())
        && (bytes[0].is_ascii_lowercase() || bytes[0] == b'_')
        && bytes[1..]
            .iter()
            .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_');
    if !shape_ok {
        return Err(NameError(format!(
            "invalid schema name '{schema}': must match ^[a-z_][a-z0-9_]{{0,62}}$"
        )));
    }
    if schema == "information_schema" || schema.starts_with("pg_") {
        return Err(NameError(format!(
            "invalid schema name '{schema}': reserved by PostgreSQL"
        )));
    }
    if schema == "public" && tenant_id != PUBLIC_TENANT_ID {
        return Err(NameError(
            "invalid schema name 'public': only the public tenant may use it".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_is_derived_by_the_seed_rule() {
        assert_eq!(derive_schema("acme"), "acme");
        assert_eq!(derive_schema("acme-corp"), "acme_corp");
        assert_eq!(derive_schema("42shop"), "tenant_42shop");
        assert_eq!(derive_schema("Big.Co"), "big_co");
    }

    #[test]
    fn schema_validation_rejects_reserved_and_malformed_names() {
        assert!(validate_schema("acme", "acme").is_ok());
        assert!(validate_schema("_x", "x").is_ok());
        assert!(validate_schema("public", "public").is_ok());
        assert!(validate_schema("public", "acme").is_err());
        assert!(validate_schema("pg_catalog", "acme").is_err());
        assert!(validate_schema("information_schema", "acme").is_err());
        assert!(validate_schema("1abc", "acme").is_err());
        assert!(validate_schema("Acme", "acme").is_err());
        assert!(validate_schema("a;drop", "acme").is_err());
        assert!(validate_schema(&"a".repeat(64), "acme").is_err());
        assert!(validate_schema(&"a".repeat(63), "acme").is_ok());
        assert!(validate_schema("", "acme").is_err());
    }

    #[test]
    fn tenant_ids_are_slugs() {
        assert!(validate_tenant_id("acme").is_ok());
        assert!(validate_tenant_id("42-shop_x").is_ok());
        assert!(validate_tenant_id("-acme").is_err());
        assert!(validate_tenant_id("Acme").is_err());
        assert!(validate_tenant_id("a b").is_err());
        assert!(validate_tenant_id("").is_err());
        assert!(validate_plan("premium").is_ok());
        let err = validate_plan("Premium Plus").unwrap_err().0;
        assert!(err.starts_with("invalid plan 'Premium Plus'"), "{err}");
        assert!(validate_plan(&"p".repeat(64)).is_err());
    }

    #[test]
    fn isolation_parse_names_valid_options() {
        assert_eq!("table".parse::<Isolation>(), Ok(Isolation::Table));
        let err = "row".parse::<Isolation>().unwrap_err();
        assert!(err.contains("valid options are schema, database, table, cache"));
    }
}
