//! Turning a tenant as a caller describes it (admin API body, import row,
//! static config) into a validated `NewTenant`, with one set of rules for
//! every source.

use std::collections::{BTreeMap, HashSet};

use serde::Deserialize;

use super::host::normalize_domain;
use super::{
    derive_schema, validate_plan, validate_schema, validate_tenant_id, Isolation, NewTenant,
    TenantStatus, DEFAULT_CLUSTER,
};

/// A tenant as a caller describes it; only `id` is required here (the admin
/// API additionally requires `name`).
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantSpec {
    /// 1-63 lowercase letters, digits, `-` or `_`, starting with a letter or digit.
    #[schema(pattern = r"^[a-z0-9][a-z0-9_-]{0,62}$")]
    pub id: String,
    /// Shown to people; the admin API requires it.
    #[schema(min_length = 1, max_length = 200)]
    pub name: Option<String>,
    /// Derived from the id when absent; not `public`, `information_schema`
    /// or `pg_*`.
    #[schema(pattern = r"^[a-z_][a-z0-9_]{0,62}$")]
    pub schema: Option<String>,
    /// `schema` when absent.
    #[schema(value_type = Option<Isolation>)]
    pub isolation: Option<String>,
    /// `active` when absent.
    #[schema(value_type = Option<TenantStatus>)]
    pub status: Option<String>,
    pub pool: Option<String>,
    /// Billing plan; picks the pool through `plans:` when `pool` is absent.
    #[schema(pattern = r"^[a-z0-9][a-z0-9_-]{0,62}$")]
    pub plan: Option<String>,
    /// The PostgreSQL cluster (`provisioning.clusters`) for its schema or
    /// database; absent: the gateway places it on the emptiest one.
    #[schema(pattern = r"^[a-z0-9][a-z0-9_-]{0,62}$")]
    pub cluster: Option<String>,
    /// Host names (`*.` for a wildcard), routed to the tenant.
    #[serde(default)]
    #[schema(inline, value_type = Vec<DomainName>)]
    pub domains: Vec<String>,
    /// `false`: only register (the schema or database already exists). With
    /// a PostgreSQL store a new tenant is provisioned unless this says no.
    pub provision: Option<bool>,
    /// Values for further columns of a django-tenants tenant table
    /// (`{"owner_id": 7, "paid_until": "2027-12-31"}`), bound as parameters
    /// and checked by the store against the column's type; other stores
    /// refuse them (422).
    #[serde(default)]
    pub columns: BTreeMap<String, serde_json::Value>,
}

/// A domain name as the admin API takes it: labels of letters, digits and
/// `-`, optionally after `*.` (only in the OpenAPI description).
#[derive(utoipa::ToSchema)]
#[schema(
    value_type = String,
    pattern = r"^(\*\.)?([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.?$",
    max_length = 253
)]
#[allow(dead_code)]
pub struct DomainName(String);

/// What validation needs to know beyond the spec itself.
pub struct SpecRules {
    pub strip_www: bool,
    /// Names of the configured backend pools.
    pub pools: Vec<String>,
    /// Cluster names a tenant may name (`provisioning.clusters`, or just
    /// `default` when none are configured).
    pub clusters: Vec<String>,
}

/// Why a spec was refused: the field at fault and what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SpecError {
    pub field: &'static str,
    pub message: String,
}

impl SpecError {
    fn new(field: &'static str, message: impl Into<String>) -> SpecError {
        SpecError {
            field,
            message: message.into(),
        }
    }
}

impl SpecRules {
    pub fn check_pool(&self, pool: Option<&str>) -> Result<(), SpecError> {
        match pool {
            Some(pool) if !self.pools.iter().any(|p| p == pool) => Err(SpecError::new(
                "pool",
                format!(
                    "unknown pool '{pool}': configured pools are {:?}",
                    self.pools
                ),
            )),
            _ => Ok(()),
        }
    }

    /// A plan is any slug: plans without an entry in `plans:` use `default`.
    pub fn check_plan(&self, plan: Option<&str>) -> Result<(), SpecError> {
        match plan {
            Some(plan) => validate_plan(plan).map_err(|e| SpecError::new("plan", e.to_string())),
            None => Ok(()),
        }
    }

    /// A named cluster must be configured, and only tenants that own a
    /// schema or database live on one. `default` without configured
    /// clusters is the registry's server, stored as no cluster.
    pub fn check_cluster(
        &self,
        cluster: Option<String>,
        isolation: Isolation,
    ) -> Result<Option<String>, SpecError> {
        let Some(cluster) = cluster else {
            return Ok(None);
        };
        if !self.clusters.contains(&cluster) {
            return Err(SpecError::new(
                "cluster",
                format!(
                    "unknown cluster '{cluster}': configured clusters are {:?}",
                    self.clusters
                ),
            ));
        }
        if !isolation.owns_schema() {
            return Err(SpecError::new(
                "cluster",
                format!("a {isolation} tenant owns no schema or database to place on a cluster"),
            ));
        }
        Ok(Some(cluster).filter(|c| c != DEFAULT_CLUSTER))
    }

    pub fn normalize_domain(&self, domain: &str) -> Result<String, SpecError> {
        normalize_domain(domain, self.strip_www)
            .map_err(|e| SpecError::new("domains", format!("invalid domain '{domain}': {e}")))
    }
}

/// Longest display name, in characters: a label for people, not a document.
pub const MAX_NAME_CHARS: usize = 200;

/// A display name is shown and logged: some visible text, not too long, and
/// no control characters (NUL, newlines) to break a log line or a column.
pub fn check_name(name: &str) -> Result<(), SpecError> {
    if name.trim().is_empty() {
        return Err(SpecError::new("name", "name must not be empty"));
    }
    let chars = name.chars().count();
    if chars > MAX_NAME_CHARS {
        return Err(SpecError::new(
            "name",
            format!("name is {chars} characters long: at most {MAX_NAME_CHARS} are allowed"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(SpecError::new(
            "name",
            "name must not contain control characters",
        ));
    }
    Ok(())
}

impl TenantSpec {
    /// Checks every field; the name defaults to the id and the schema is
    /// derived from the id when absent.
    pub fn validate(self, rules: &SpecRules) -> Result<NewTenant, SpecError> {
        validate_tenant_id(&self.id).map_err(|e| SpecError::new("id", e.to_string()))?;
        let name = self.name.unwrap_or_else(|| self.id.clone());
        check_name(&name)?;
        let schema = self.schema.unwrap_or_else(|| derive_schema(&self.id));
        validate_schema(&schema, &self.id).map_err(|e| SpecError::new("schema", e.to_string()))?;
        let isolation = match self.isolation.as_deref() {
            Some(text) => text
                .parse::<Isolation>()
                .map_err(|e| SpecError::new("isolation", e))?,
            None => Isolation::default(),
        };
        let status = match self.status.as_deref() {
            Some(text) => text
                .parse::<TenantStatus>()
                .map_err(|e| SpecError::new("status", e))?,
            None => TenantStatus::Active,
        };
        rules.check_pool(self.pool.as_deref())?;
        rules.check_plan(self.plan.as_deref())?;
        let cluster = rules.check_cluster(self.cluster, isolation)?;
        let mut seen = HashSet::new();
        let mut domains = Vec::with_capacity(self.domains.len());
        for raw in &self.domains {
            let domain = rules.normalize_domain(raw)?;
            if !seen.insert(domain.clone()) {
                return Err(SpecError::new(
                    "domains",
                    format!("domain '{domain}' is listed twice"),
                ));
            }
            domains.push(domain);
        }
        Ok(NewTenant {
            id: self.id,
            name,
            schema,
            isolation,
            status,
            pool: self.pool,
            plan: self.plan,
            cluster,
            domains,
            columns: self.columns,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_are_validated_with_defaults_filled_in() {
        let pools = vec!["default".to_string()];
        let rules = SpecRules {
            strip_www: true,
            pools,
            clusters: vec!["eu1".into(), "eu2".into()],
        };
        let spec = TenantSpec {
            id: "42-shop".into(),
            domains: vec!["WWW.Shop.Test".into()],
            ..Default::default()
        };
        let new = spec.validate(&rules).unwrap();
        assert_eq!(
            (new.name.as_str(), new.schema.as_str()),
            ("42-shop", "tenant_42_shop")
        );
        assert_eq!(new.domains, ["shop.test"]);

        let dup = TenantSpec {
            id: "a".into(),
            domains: vec!["x.test".into(), "X.test".into()],
            ..Default::default()
        };
        assert!(dup
            .validate(&rules)
            .unwrap_err()
            .message
            .contains("listed twice"));
        let pool = TenantSpec {
            id: "a".into(),
            pool: Some("gold".into()),
            ..Default::default()
        };
        let err = pool.validate(&rules).unwrap_err();
        assert_eq!(err.field, "pool");
        assert!(err.message.contains("unknown pool 'gold'"));
        let plan = TenantSpec {
            id: "a".into(),
            plan: Some("Gold!".into()),
            ..Default::default()
        };
        assert_eq!(plan.validate(&rules).unwrap_err().field, "plan");
    }

    #[test]
    fn names_are_short_visible_text() {
        assert!(check_name("Acme, Inc. – Zürich").is_ok());
        assert!(check_name(&"é".repeat(MAX_NAME_CHARS)).is_ok());
        for bad in [" ", "a\0b", "a\nb", &"x".repeat(MAX_NAME_CHARS + 1)] {
            assert_eq!(check_name(bad).unwrap_err().field, "name", "{bad:?}");
        }
    }

    #[test]
    fn clusters_must_be_configured_and_hold_a_schema_or_database() {
        let rules = |clusters: &[&str]| SpecRules {
            strip_www: true,
            pools: vec![],
            clusters: clusters.iter().map(|c| c.to_string()).collect(),
        };
        let spec = |cluster: &str, isolation: &str| TenantSpec {
            id: "a".into(),
            cluster: Some(cluster.into()),
            isolation: Some(isolation.into()),
            ..Default::default()
        };
        let two = rules(&["eu1", "eu2"]);
        let placed = spec("eu2", "database").validate(&two).unwrap();
        assert_eq!(placed.cluster.as_deref(), Some("eu2"));
        let err = spec("mars", "schema").validate(&two).unwrap_err();
        assert_eq!(err.field, "cluster");
        assert!(err.message.contains("unknown cluster 'mars'"), "{err}");
        assert_eq!(
            spec("eu1", "table").validate(&two).unwrap_err().field,
            "cluster"
        );
        assert!(spec("default", "schema").validate(&two).is_err());
        let implicit = rules(&[DEFAULT_CLUSTER]);
        assert_eq!(
            spec("default", "schema")
                .validate(&implicit)
                .unwrap()
                .cluster,
            None
        );
    }
}
