//! How new tenants get their place in PostgreSQL (`provisioning:`): the
//! migrations and templates, the named clusters they are placed on, and
//! the rules these keys must satisfy.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use super::{Config, HooksConfig, StoreKind, StoreLayout};
use crate::tenant::{validate_cluster, validate_schema, DEFAULT_CLUSTER};

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
    /// instead of replaying the migrations (the fast path). With the
    /// django-tenants layout it is a schema Django migrates
    /// (`migrate_schemas`) and the gateway only copies it.
    pub template_schema: Option<String>,
    /// Tables of the template whose rows the clone copies too (e.g.
    /// `django_content_type`), besides its migration records
    /// (`gateway_migrations`, `django_migrations`).
    pub template_copy_data: Vec<String>,
    /// Named PostgreSQL servers for tenants' schemas and databases; empty:
    /// the registry's own server, as the cluster `default`.
    pub clusters: BTreeMap<String, ClusterConfig>,
    /// Give each new database tenant a login role named like its database,
    /// with a generated password returned once in the create answer.
    pub database_role: bool,
    /// Run after the provisioning steps, before the registry commit.
    pub hooks: HooksConfig,
    /// How long a tenant's requests wait for a `--maintenance` migration
    /// when no `--hold` is given.
    #[serde(with = "humantime_serde")]
    pub maintenance_hold: Duration,
    /// How long a `--maintenance` migration waits after switching its
    /// tenant into maintenance before migrating, for every replica to see
    /// the switch and requests already forwarded to finish.
    #[serde(with = "humantime_serde")]
    pub maintenance_settle: Duration,
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
            template_copy_data: Vec::new(),
            clusters: BTreeMap::new(),
            database_role: false,
            hooks: HooksConfig::default(),
            maintenance_hold: Duration::from_secs(10),
            maintenance_settle: Duration::from_secs(1),
        }
    }
}

/// One PostgreSQL server (or database) tenants can be placed on.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// `postgres://user@host:port/db`: schemas go into `db`, databases are
    /// created next to it (the user needs CREATEDB for database isolation).
    pub url: String,
}

impl ProvisioningConfig {
    /// The cluster names a tenant may name: the configured ones, or
    /// `default` (the registry's server) when there are none.
    pub fn cluster_names(&self) -> Vec<String> {
        if self.clusters.is_empty() {
            vec![DEFAULT_CLUSTER.to_owned()]
        } else {
            self.clusters.keys().cloned().collect()
        }
    }
}

/// Every problem of the `provisioning` keys, with its key.
pub(super) fn problems(config: &Config, bad: &mut impl FnMut(String, String)) {
    let store = &config.store;
    let p = &config.provisioning;
    if p.migrations.is_some() && store.kind != StoreKind::Postgres {
        bad(
            "provisioning.migrations".into(),
            "provisioning needs store.kind postgres".into(),
        );
    }
    if let Some(dir) = p.migrations.as_ref().filter(|d| !d.is_dir()) {
        bad(
            "provisioning.migrations".into(),
            format!("{} is not a directory", dir.display()),
        );
    }
    if p.maintenance_hold > crate::tenant::controls::MAX_HOLD {
        bad(
            "provisioning.maintenance_hold".into(),
            "must be at most 1h (held requests keep their connections open)".into(),
        );
    }
    if p.migrate_parallel == 0 {
        bad(
            "provisioning.migrate_parallel".into(),
            "must be at least 1".into(),
        );
    }
    if let Some(t) = &p.template_schema {
        if validate_schema(t, "").is_err() || t == "public" {
            bad(
                "provisioning.template_schema".into(),
                format!("'{t}' is not a usable schema name"),
            );
        }
    }
    for (i, table) in p.template_copy_data.iter().enumerate() {
        let key = format!("provisioning.template_copy_data[{i}]");
        if p.template_schema.is_none() {
            bad(
                key,
                "copying rows needs provisioning.template_schema".into(),
            );
        } else if !super::validate::plain_name(table) {
            bad(
                key,
                format!("'{table}' is not a plain lowercase table name"),
            );
        }
    }
    for (key, file) in [
        ("provisioning.content", &p.content),
        ("provisioning.table_content", &p.table_content),
    ] {
        if let Some(file) = file.as_ref().filter(|f| !f.is_file()) {
            bad(key.into(), format!("{} is not a file", file.display()));
        }
    }
    let postgres = store.kind == StoreKind::Postgres;
    super::hooks::problems(&p.hooks, &config.events, postgres, bad);
    if p.database_role && store.kind != StoreKind::Postgres {
        bad(
            "provisioning.database_role".into(),
            "database roles need store.kind postgres".into(),
        );
    }
    if !p.clusters.is_empty() {
        if store.kind != StoreKind::Postgres {
            bad(
                "provisioning.clusters".into(),
                "clusters need store.kind postgres".into(),
            );
        }
        if store.layout == StoreLayout::DjangoTenants && store.django.cluster_column.is_none() {
            bad(
                "provisioning.clusters".into(),
                "the django-tenants layout records clusters only with store.django.cluster_column"
                    .into(),
            );
        }
    }
    for (name, cluster) in &p.clusters {
        let key = format!("provisioning.clusters.{name}");
        if name == DEFAULT_CLUSTER {
            bad(
                key.clone(),
                format!("'{DEFAULT_CLUSTER}' names the registry's own server; pick another name"),
            );
        } else if let Err(e) = validate_cluster(name) {
            bad(key.clone(), e.to_string());
        }
        match cluster.url.parse::<tokio_postgres::Config>() {
            Err(e) => bad(format!("{key}.url"), format!("not a PostgreSQL URL: {e}")),
            Ok(c) if c.get_dbname().is_none() => bad(
                format!("{key}.url"),
                "name the database schemas go into (postgres://…/DB)".into(),
            ),
            Ok(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::test_support::problem_keys as keys;
    use crate::config::Config;

    #[test]
    fn clusters_are_named_by_key_when_wrong() {
        let pg = "store: {kind: postgres, url: \"postgres://u@h/db\"}\n";
        let good = format!(
            "{pg}provisioning:\n  clusters:\n    eu1: {{url: \"postgres://u@a:5432/app\"}}\n"
        );
        assert_eq!(keys(&good), Vec::<String>::new());
        let bad = format!(
            "{pg}provisioning:\n  clusters:\n    default: {{url: \"postgres://u@a/app\"}}\n    \"EU 2\": {{url: \"postgres://u@b/app\"}}\n    eu3: {{url: \"postgres://u@c\"}}\n    eu4: {{url: \"postgres://u@c:port/db\"}}\n"
        );
        assert_eq!(
            keys(&bad),
            [
                "provisioning.clusters.EU 2",
                "provisioning.clusters.default",
                "provisioning.clusters.eu3.url",
                "provisioning.clusters.eu4.url",
            ]
        );
        let err = Config::from_yaml("provisioning:\n  clusters:\n    eu1: {uri: x}\n").unwrap_err();
        assert!(
            err.0[0].key.starts_with("provisioning.clusters"),
            "{:?}",
            err.0
        );
        assert_eq!(
            keys("provisioning:\n  clusters:\n    eu1: {url: \"postgres://u@a/app\"}\n"),
            ["provisioning.clusters"],
            "clusters need a PostgreSQL store"
        );
        let django =
            "store: {kind: postgres, url: \"postgres://u@h/db\", layout: django-tenants}\n";
        assert_eq!(
            keys(&format!(
                "{django}provisioning:\n  clusters:\n    eu1: {{url: \"postgres://u@a/app\"}}\n"
            )),
            ["provisioning.clusters"]
        );
    }
}
