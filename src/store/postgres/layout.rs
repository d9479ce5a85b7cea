//! The SQL of the PostgreSQL store, built once at start for one table layout:
//! the gateway's own tables (created and versioned here) or an existing
//! django-tenants deployment's `customers_client` / `customers_domain`.
//!
//! Both layouts have the same shape (a tenant table with an integer key, a
//! domain table pointing at it), so every query is one template with the
//! table and column names filled in.

use super::quote_ident;
use crate::config::{DjangoLayoutConfig, StoreLayout};

/// The gateway's own registry schema, one entry per version. Applied in
/// order under an advisory lock, each step recorded in `gateway_store_version`.
pub(super) const NATIVE_MIGRATIONS: &[&str] = &[
    "
CREATE TABLE gateway_tenants (
    pk          bigserial PRIMARY KEY,
    id          text NOT NULL CONSTRAINT gateway_tenants_id_key UNIQUE,
    name        text NOT NULL,
    schema_name text NOT NULL,
    isolation   text NOT NULL,
    status      text NOT NULL,
    pool        text,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX gateway_tenants_owned_schema ON gateway_tenants (schema_name)
    WHERE isolation IN ('schema', 'database');
CREATE TABLE gateway_domains (
    pk         bigserial PRIMARY KEY,
    domain     text NOT NULL CONSTRAINT gateway_domains_domain_key UNIQUE,
    tenant_pk  bigint NOT NULL REFERENCES gateway_tenants (pk),
    is_primary boolean NOT NULL
);
CREATE INDEX gateway_domains_tenant ON gateway_domains (tenant_pk);
CREATE UNIQUE INDEX gateway_domains_one_primary ON gateway_domains (tenant_pk) WHERE is_primary;
",
    "
ALTER TABLE gateway_tenants ADD COLUMN plan text;
",
    "
ALTER TABLE gateway_tenants ADD COLUMN cluster text;
CREATE INDEX gateway_tenants_cluster ON gateway_tenants (cluster);
",
    super::certs::ACME_TABLES,
    super::certs::ACME_ORDER_LEASES,
];

/// Columns `0..TENANT_COLUMNS` of a tenant select are the tenant (see
/// `tenant_from_row`; its controls last); the next one is its integer key,
/// then any extra (the matched domain of `resolve_host`).
pub(super) const TENANT_COLUMNS: usize = 11;

/// A tenant's own traffic controls, as JSON (`store::controls`), for every
/// layout: a side table keyed by tenant id, since django-tenants' tenant
/// table is Django's. Created idempotently at start like the change log;
/// rows go with their tenant (`delete_controls`).
pub(super) const CONTROLS_TABLE: &str = "
CREATE TABLE IF NOT EXISTS gateway_tenant_controls (
    tenant_id   text PRIMARY KEY,
    limits      jsonb,
    maintenance jsonb
);
";
pub(super) const KEY_COLUMN: usize = TENANT_COLUMNS;

/// The unique index that makes an owned schema name a conflict.
pub(super) const OWNED_SCHEMA_CONSTRAINT: &str = "gateway_tenants_owned_schema";

/// A tenant field written on create, in the order of `Sql::insert_tenant`'s parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Field {
    Id,
    Name,
    Schema,
    Isolation,
    Status,
    Pool,
    Plan,
    Cluster,
}

/// Every statement the store runs, for one layout.
#[derive(Debug, Clone)]
pub(super) struct Sql {
    pub layout: StoreLayout,
    /// Quoted tenant and domain table names (for existence checks and errors).
    pub tenant_table: String,
    pub domain_table: String,
    /// The tenant's columns, then its key (see `TENANT_COLUMNS`).
    pub get_tenant: String,
    pub lock_tenant: String,
    pub list_tenants: String,
    /// `list_tenants` of the tenants whose id, name or schema, or a domain,
    /// matches the `ILIKE` pattern `$3` (`store::search::like_pattern`).
    pub search_tenants: String,
    pub resolve_host: String,
    /// Domains (wildcards too) with their tenants after `$1`, `$2` at a time (warm start).
    pub routes_page: String,
    /// Every route, in no set order (`scan_routes`).
    pub routes_all: String,
    /// Exactly the domains in `$1` (a text array) with their tenants.
    pub routes_for: String,
    pub domains_of: String,
    pub domains_of_many: String,
    pub domain_owner: String,
    pub insert_tenant: String,
    /// `insert_tenant` cut where further columns and values go:
    /// `INSERT INTO t (a, b` | `) VALUES ($1, $2` | `) RETURNING …`.
    pub insert_parts: [String; 3],
    pub insert_fields: Vec<Field>,
    pub insert_domain: String,
    pub clear_primary: String,
    pub delete_domain: String,
    pub promote_oldest: String,
    pub delete_domains_of: String,
    pub delete_tenant: String,
    /// `UPDATE … SET name, status, pool, plan`; `None` for django-tenants,
    /// where only the mapped name and plan columns can change.
    pub update_tenant: Option<String>,
    pub update_name: Option<String>,
    pub update_plan: Option<String>,
    /// `(cluster, tenants)` for the given cluster names (`$1`); `None` when
    /// the layout records no cluster.
    pub count_by_cluster: Option<String>,
    /// Sets tenant `$1`'s controls (`$2` limits, `$3` maintenance, JSON text).
    pub upsert_controls: String,
    /// Forgets tenant `$1`'s controls (deleted, or created anew).
    pub delete_controls: String,
}

struct Names {
    tenant_table: String,
    t_pk: String,
    t_id: String,
    t_schema: String,
    name_expr: String,
    isolation_expr: String,
    status_expr: String,
    pool_expr: String,
    created_expr: String,
    plan_expr: String,
    cluster_expr: String,
    domain_table: String,
    d_pk: String,
    d_domain: String,
    d_fk: String,
    d_primary: String,
}

impl Sql {
    pub fn new(layout: StoreLayout, django: &DjangoLayoutConfig) -> Sql {
        let names = match layout {
            StoreLayout::Native => Names {
                tenant_table: "gateway_tenants".into(),
                t_pk: "pk".into(),
                t_id: "id".into(),
                t_schema: "schema_name".into(),
                name_expr: "t.name".into(),
                isolation_expr: "t.isolation".into(),
                status_expr: "t.status".into(),
                pool_expr: "t.pool".into(),
                created_expr:
                    "to_char(t.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
                        .into(),
                plan_expr: "t.plan".into(),
                cluster_expr: "t.cluster".into(),
                domain_table: "gateway_domains".into(),
                d_pk: "pk".into(),
                d_domain: "domain".into(),
                d_fk: "tenant_pk".into(),
                d_primary: "is_primary".into(),
            },
            StoreLayout::DjangoTenants => {
                let t_id = quote_ident(&django.tenant_id_column);
                Names {
                    tenant_table: quote_ident(&django.tenant_table),
                    t_pk: "id".into(),
                    name_expr: match &django.name_column {
                        Some(col) => format!("t.{}::text", quote_ident(col)),
                        None => format!("t.{t_id}::text"),
                    },
                    t_id,
                    t_schema: quote_ident("schema_name"),
                    isolation_expr: "'schema'".into(),
                    status_expr: "'active'".into(),
                    pool_expr: "NULL::text".into(),
                    created_expr: "''".into(),
                    plan_expr: match &django.plan_column {
                        Some(col) => format!("t.{}::text", quote_ident(col)),
                        None => "NULL::text".into(),
                    },
                    cluster_expr: match &django.cluster_column {
                        Some(col) => format!("t.{}::text", quote_ident(col)),
                        None => "NULL::text".into(),
                    },
                    domain_table: quote_ident(&django.domain_table),
                    d_pk: "id".into(),
                    d_domain: "domain".into(),
                    d_fk: "tenant_id".into(),
                    d_primary: "is_primary".into(),
                }
            }
        };
        let Names {
            tenant_table: tt,
            t_pk,
            t_id,
            t_schema,
            name_expr,
            isolation_expr,
            status_expr,
            pool_expr,
            created_expr,
            plan_expr,
            cluster_expr,
            domain_table: dt,
            d_pk,
            d_domain,
            d_fk,
            d_primary,
        } = names;
        let cols = format!(
            "t.{t_id}::text, {name_expr}, t.{t_schema}::text, {isolation_expr}, {status_expr}, \
             {pool_expr}, {created_expr}, {plan_expr}, {cluster_expr}, c.limits::text, \
             c.maintenance::text, t.{t_pk}::int8"
        );
        // One indexed probe more per tenant read; no row: no controls.
        let controls =
            format!("LEFT JOIN gateway_tenant_controls c ON c.tenant_id = t.{t_id}::text");
        let count_by_cluster = (layout == StoreLayout::Native || django.cluster_column.is_some())
            .then(|| {
                format!(
                    "SELECT {cluster_expr}, count(*) FROM {tt} t \
                     WHERE {cluster_expr} = ANY($1) GROUP BY 1"
                )
            });
        let (insert_parts, insert_fields) = match layout {
            StoreLayout::Native => (
                [
                    format!(
                        "INSERT INTO {tt} (id, name, schema_name, isolation, status, pool, plan, \
                         cluster"
                    ),
                    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8".to_owned(),
                    ") RETURNING pk".to_owned(),
                ],
                vec![
                    Field::Id,
                    Field::Name,
                    Field::Schema,
                    Field::Isolation,
                    Field::Status,
                    Field::Pool,
                    Field::Plan,
                    Field::Cluster,
                ],
            ),
            StoreLayout::DjangoTenants => {
                let mut columns = vec![(t_schema.clone(), Field::Schema)];
                if t_id != t_schema {
                    columns.push((t_id.clone(), Field::Id));
                }
                if let Some(name) = &django.name_column {
                    columns.push((quote_ident(name), Field::Name));
                }
                if let Some(plan) = &django.plan_column {
                    columns.push((quote_ident(plan), Field::Plan));
                }
                if let Some(cluster) = &django.cluster_column {
                    columns.push((quote_ident(cluster), Field::Cluster));
                }
                let names: Vec<&str> = columns.iter().map(|(c, _)| c.as_str()).collect();
                let params: Vec<String> = (1..=columns.len()).map(|i| format!("${i}")).collect();
                (
                    [
                        format!("INSERT INTO {tt} ({}", names.join(", ")),
                        format!(") VALUES ({}", params.join(", ")),
                        format!(") RETURNING {t_pk}::int8"),
                    ],
                    columns.into_iter().map(|(_, f)| f).collect(),
                )
            }
        };
        let insert_tenant = insert_parts.concat();
        Sql {
            layout,
            get_tenant: format!("SELECT {cols} FROM {tt} t {controls} WHERE t.{t_id} = $1"),
            lock_tenant: format!(
                "SELECT t.{t_pk}::int8 FROM {tt} t WHERE t.{t_id} = $1 FOR UPDATE"
            ),
            list_tenants: format!(
                "SELECT {cols} FROM {tt} t {controls} WHERE t.{t_id} > $1 ORDER BY t.{t_id} LIMIT $2"
            ),
            search_tenants: format!(
                "SELECT {cols} FROM {tt} t {controls} WHERE t.{t_id} > $1 AND ( \
                 t.{t_id}::text ILIKE $3 {esc} OR {name_expr} ILIKE $3 {esc} \
                 OR t.{t_schema}::text ILIKE $3 {esc} OR EXISTS (SELECT 1 FROM {dt} d \
                 WHERE d.{d_fk} = t.{t_pk} AND d.{d_domain}::text ILIKE $3 {esc})) \
                 ORDER BY t.{t_id} LIMIT $2",
                esc = crate::store::search::ESCAPE_CLAUSE,
            ),
            resolve_host: format!(
                "SELECT {cols}, d.{d_domain}::text FROM {dt} d JOIN {tt} t ON t.{t_pk} = d.{d_fk} \
                 {controls} WHERE d.{d_domain} IN ($1, $2) ORDER BY (d.{d_domain} = $1) DESC LIMIT 1"
            ),
            routes_page: format!(
                "SELECT {cols}, d.{d_domain}::text FROM {dt} d JOIN {tt} t ON t.{t_pk} = d.{d_fk} \
                 {controls} WHERE d.{d_domain} > $1 \
                 ORDER BY d.{d_domain} LIMIT $2"
            ),
            routes_all: format!(
                "SELECT {cols}, d.{d_domain}::text FROM {dt} d JOIN {tt} t ON t.{t_pk} = d.{d_fk} \
                 {controls}"
            ),
            routes_for: format!(
                "SELECT {cols}, d.{d_domain}::text FROM {dt} d JOIN {tt} t ON t.{t_pk} = d.{d_fk} \
                 {controls} WHERE d.{d_domain} = ANY($1)"
            ),
            domains_of: format!(
                "SELECT {d_domain}::text, {d_primary} FROM {dt} WHERE {d_fk} = $1 \
                 ORDER BY {d_primary} DESC, {d_pk}"
            ),
            domains_of_many: format!(
                "SELECT {d_fk}::int8, {d_domain}::text, {d_primary} FROM {dt} \
                 WHERE {d_fk} = ANY($1) ORDER BY {d_primary} DESC, {d_pk}"
            ),
            domain_owner: format!(
                "SELECT t.{t_id}::text, d.{d_fk}::int8, d.{d_primary} FROM {dt} d \
                 JOIN {tt} t ON t.{t_pk} = d.{d_fk} WHERE d.{d_domain} = $1"
            ),
            insert_tenant,
            insert_parts,
            insert_fields,
            // django-tenants has no database default for is_primary: always write it.
            insert_domain: format!(
                "INSERT INTO {dt} ({d_domain}, {d_fk}, {d_primary}) VALUES ($1, $2, $3)"
            ),
            clear_primary: format!(
                "UPDATE {dt} SET {d_primary} = false WHERE {d_fk} = $1 AND {d_primary}"
            ),
            delete_domain: format!("DELETE FROM {dt} WHERE {d_domain} = $1"),
            promote_oldest: format!(
                "UPDATE {dt} SET {d_primary} = true WHERE {d_pk} = \
                 (SELECT {d_pk} FROM {dt} WHERE {d_fk} = $1 ORDER BY {d_pk} LIMIT 1)"
            ),
            delete_domains_of: format!("DELETE FROM {dt} WHERE {d_fk} = $1"),
            delete_tenant: format!("DELETE FROM {tt} WHERE {t_pk} = $1"),
            update_tenant: (layout == StoreLayout::Native).then(|| {
                format!(
                    "UPDATE {tt} SET name = $2, status = $3, pool = $4, plan = $5 WHERE pk = $1"
                )
            }),
            update_name: match (layout, &django.name_column) {
                (StoreLayout::DjangoTenants, Some(col)) => Some(format!(
                    "UPDATE {tt} SET {} = $2 WHERE {t_pk} = $1",
                    quote_ident(col)
                )),
                _ => None,
            },
            update_plan: match (layout, &django.plan_column) {
                (StoreLayout::DjangoTenants, Some(col)) => Some(format!(
                    "UPDATE {tt} SET {} = $2 WHERE {t_pk} = $1",
                    quote_ident(col)
                )),
                _ => None,
            },
            count_by_cluster,
            upsert_controls: "INSERT INTO gateway_tenant_controls (tenant_id, limits, maintenance) \
                 VALUES ($1, $2::text::jsonb, $3::text::jsonb) ON CONFLICT (tenant_id) DO UPDATE \
                 SET limits = EXCLUDED.limits, maintenance = EXCLUDED.maintenance"
                .into(),
            delete_controls: "DELETE FROM gateway_tenant_controls WHERE tenant_id = $1".into(),
            tenant_table: tt,
            domain_table: dt,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn django_layout_writes_is_primary_and_maps_the_id_column() {
        let sql = Sql::new(StoreLayout::DjangoTenants, &DjangoLayoutConfig::default());
        assert!(sql.insert_domain.contains("\"customers_domain\""));
        assert!(sql.insert_domain.contains("is_primary"));
        assert_eq!(sql.insert_fields, [Field::Schema]);
        assert!(sql.resolve_host.contains("t.\"schema_name\"::text"));
        let custom = DjangoLayoutConfig {
            tenant_id_column: "slug".into(),
            name_column: Some("name".into()),
            ..Default::default()
        };
        let sql = Sql::new(StoreLayout::DjangoTenants, &custom);
        assert_eq!(sql.insert_fields, [Field::Schema, Field::Id, Field::Name]);
        assert!(sql.update_name.is_some() && sql.update_tenant.is_none());
        assert!(
            sql.update_plan.is_none()
                && sql.get_tenant.contains("NULL::text, NULL::text, c.limits")
        );
        let with_plan = DjangoLayoutConfig {
            plan_column: Some("plan".into()),
            ..Default::default()
        };
        let sql = Sql::new(StoreLayout::DjangoTenants, &with_plan);
        assert_eq!(sql.insert_fields, [Field::Schema, Field::Plan]);
        assert!(sql
            .get_tenant
            .contains("t.\"plan\"::text, NULL::text, c.limits"));
        assert!(sql.update_plan.is_some() && sql.count_by_cluster.is_none());
        let with_cluster = DjangoLayoutConfig {
            cluster_column: Some("cluster".into()),
            ..Default::default()
        };
        let sql = Sql::new(StoreLayout::DjangoTenants, &with_cluster);
        assert_eq!(sql.insert_fields, [Field::Schema, Field::Cluster]);
        assert!(sql.get_tenant.contains("t.\"cluster\"::text, c.limits"));
        assert!(sql.count_by_cluster.is_some());
    }
}
