//! The PostgreSQL store's writes, each on a caller's transaction so that
//! provisioning can put the registry rows and the tenant's schema in one.
//! Uniqueness is left to the database's constraints (so two concurrent
//! creates cannot both win) and a violation is reported as `Conflict`.

use tokio_postgres::error::SqlState;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::GenericClient;

use super::columns::ExtraValue;
use super::layout::{Field, OWNED_SCHEMA_CONSTRAINT};
use super::rows::Param;
use super::{pg_error, query, query_opt, quote_ident, PgStore};
use crate::config::StoreLayout;
use crate::store::{controls, no_extra_columns, StoreError};
use crate::tenant::{Domain, NewTenant, TenantPatch, TenantRecord};

/// Maps a unique violation to the conflict it means; other errors as usual.
fn conflict_or(e: tokio_postgres::Error, what: &'static str, key: &str) -> StoreError {
    match e.as_db_error() {
        Some(db) if db.code() == &SqlState::UNIQUE_VIOLATION => StoreError::Conflict {
            what,
            key: key.to_owned(),
        },
        _ => pg_error(e),
    }
}

/// The column a NOT NULL violation names.
fn not_null_column(e: &tokio_postgres::Error) -> Option<String> {
    let db = e.as_db_error()?;
    (db.code() == &SqlState::NOT_NULL_VIOLATION)
        .then(|| db.column().map(str::to_owned))
        .flatten()
}

impl PgStore {
    /// Inserts a tenant and its domains (the first primary) on `tx`.
    pub async fn insert_tenant(
        &self,
        tx: &impl GenericClient,
        t: &NewTenant,
    ) -> Result<i64, StoreError> {
        if t.plan.is_some() && !self.sql.insert_fields.contains(&Field::Plan) {
            return Err(no_plan_column());
        }
        if t.cluster.is_some() && !self.sql.insert_fields.contains(&Field::Cluster) {
            return Err(StoreError::Unsupported(
                "this django-tenants layout has no cluster column (set store.django.cluster_column); only the default cluster is available".into(),
            ));
        }
        // Checked before anything is written.
        let extra = match self.sql.layout {
            StoreLayout::Native => {
                no_extra_columns(t)?;
                Vec::new()
            }
            StoreLayout::DjangoTenants => self.columns.extra(tx, &t.columns).await?,
        };
        let isolation = t.isolation.as_str();
        let status = t.status.as_str();
        let mut params: Vec<(&(dyn ToSql + Sync), Type)> = self
            .sql
            .insert_fields
            .iter()
            .map(|field| -> (&(dyn ToSql + Sync), Type) {
                match field {
                    Field::Id => (&t.id, Type::TEXT),
                    Field::Name => (&t.name, Type::TEXT),
                    Field::Schema => (&t.schema, Type::TEXT),
                    Field::Isolation => (&isolation, Type::TEXT),
                    Field::Status => (&status, Type::TEXT),
                    Field::Pool => (&t.pool, Type::TEXT),
                    Field::Plan => (&t.plan, Type::TEXT),
                    Field::Cluster => (&t.cluster, Type::TEXT),
                }
            })
            .collect();
        let sql = if extra.is_empty() {
            std::borrow::Cow::Borrowed(&self.sql.insert_tenant)
        } else {
            let [head, middle, tail] = &self.sql.insert_parts;
            let (mut names, mut values) = (String::new(), String::new());
            for e in &extra {
                names += ", ";
                names += &quote_ident(&e.column);
                values += ", ";
                match &e.value {
                    ExtraValue::Expr(expr) => values += &format!("({expr})"),
                    ExtraValue::Param { text, cast } => {
                        params.push((text, Type::TEXT));
                        values += &format!("${}::text::{cast}", params.len());
                    }
                }
            }
            std::borrow::Cow::Owned(format!("{head}{names}{middle}{values}{tail}"))
        };

        let row = tx
            .query_typed(&sql, &params)
            .await
            .map_err(|e| {
                if let Some(column) = not_null_column(&e) {
                    // A NOT NULL column added (by a Django migration) after
                    // the columns were read at start.
                    return StoreError::Unprocessable {
                        message: format!(
                            "required column without a value: {column} (give it in \"columns\", or set store.django.column_defaults)"
                        ),
                        columns: vec![column],
                    };
                }
                let schema = e
                    .as_db_error()
                    .and_then(|db| db.constraint())
                    .is_some_and(|c| c == OWNED_SCHEMA_CONSTRAINT);
                if schema {
                    conflict_or(e, "schema", &t.schema)
                } else {
                    conflict_or(e, "tenant", &t.id)
                }
            })?
            .into_iter()
            .next()
            .ok_or_else(|| StoreError::Backend("insert returned no key".into()))?;
        let pk: i64 = row.get(0);
        // A tenant of this id that Django deleted itself left its controls.
        query(tx, &self.sql.delete_controls, &[(&t.id, Type::TEXT)]).await?;
        for (i, domain) in t.domains.iter().enumerate() {
            let primary = i == 0;
            tx.query_typed(
                &self.sql.insert_domain,
                &[
                    (domain, Type::TEXT),
                    (&pk, Type::INT8),
                    (&primary, Type::BOOL),
                ],
            )
            .await
            .map_err(|e| conflict_or(e, "domain", domain))?;
        }
        Ok(pk)
    }

    pub(super) async fn existing_record(
        &self,
        client: &impl GenericClient,
        id: &str,
    ) -> Result<TenantRecord, StoreError> {
        self.record_on(client, id)
            .await?
            .ok_or_else(|| not_found("tenant", id))
    }

    /// Locks the tenant's row for the rest of `tx`; returns its key.
    async fn lock_tenant(&self, tx: &impl GenericClient, id: &str) -> Result<i64, StoreError> {
        query_opt(tx, &self.sql.lock_tenant, &[(&id, Type::TEXT)])
            .await?
            .map(|r| r.get(0))
            .ok_or_else(|| not_found("tenant", id))
    }

    pub(super) async fn apply_patch(
        &self,
        tx: &impl GenericClient,
        id: &str,
        patch: TenantPatch,
    ) -> Result<(), StoreError> {
        let pk = self.lock_tenant(tx, id).await?;
        let current = self.existing_record(tx, id).await?.tenant;
        if controls::touches(&patch) {
            let (limits, maintenance) = controls::patched(&current, &patch)?;
            let (sql, params): (_, &[Param<'_>]) = match (&limits, &maintenance) {
                (None, None) => (&self.sql.delete_controls, &[(&id, Type::TEXT)]),
                _ => (
                    &self.sql.upsert_controls,
                    &[
                        (&id, Type::TEXT),
                        (&limits, Type::TEXT),
                        (&maintenance, Type::TEXT),
                    ],
                ),
            };
            query(tx, sql, params).await?;
        }
        match (&self.sql.update_tenant, &self.sql.update_name) {
            (Some(sql), _) => {
                let name = patch.name.unwrap_or(current.name);
                let status = patch.status.unwrap_or(current.status).as_str();
                let pool = patch.pool.unwrap_or(current.pool);
                let plan = patch.plan.unwrap_or(current.plan);
                query(
                    tx,
                    sql,
                    &[
                        (&pk, Type::INT8),
                        (&name, Type::TEXT),
                        (&status, Type::TEXT),
                        (&pool, Type::TEXT),
                        (&plan, Type::TEXT),
                    ],
                )
                .await?;
            }
            (None, name_sql) => {
                if patch.status.is_some() || patch.pool.is_some() {
                    return Err(StoreError::Unsupported(
                        "the django-tenants layout has no status or pool columns; only name (and plan with store.django.plan_column) can change".into(),
                    ));
                }
                if patch.plan.is_some() && self.sql.update_plan.is_none() {
                    return Err(no_plan_column());
                }
                if let (Some(sql), Some(name)) = (name_sql, &patch.name) {
                    query(tx, sql, &[(&pk, Type::INT8), (name, Type::TEXT)]).await?;
                }
                if let (Some(sql), Some(plan)) = (&self.sql.update_plan, &patch.plan) {
                    query(tx, sql, &[(&pk, Type::INT8), (plan, Type::TEXT)]).await?;
                }
            }
        }
        Ok(())
    }

    /// Deletes the tenant's domains, then the tenant (django-tenants' order).
    pub async fn remove_tenant(
        &self,
        tx: &impl GenericClient,
        id: &str,
    ) -> Result<TenantRecord, StoreError> {
        let pk = self.lock_tenant(tx, id).await?;
        let removed = self.existing_record(tx, id).await?;
        query(tx, &self.sql.delete_domains_of, &[(&pk, Type::INT8)]).await?;
        query(tx, &self.sql.delete_tenant, &[(&pk, Type::INT8)]).await?;
        query(tx, &self.sql.delete_controls, &[(&id, Type::TEXT)]).await?;
        Ok(removed)
    }

    pub(super) async fn insert_domain(
        &self,
        tx: &impl GenericClient,
        tenant_id: &str,
        domain: String,
        primary: bool,
    ) -> Result<Domain, StoreError> {
        let pk = self.lock_tenant(tx, tenant_id).await?;
        let has_domains = !query(tx, &self.sql.domains_of, &[(&pk, Type::INT8)])
            .await?
            .is_empty();
        let is_primary = primary || !has_domains;
        if is_primary {
            query(tx, &self.sql.clear_primary, &[(&pk, Type::INT8)]).await?;
        }
        tx.query_typed(
            &self.sql.insert_domain,
            &[
                (&domain, Type::TEXT),
                (&pk, Type::INT8),
                (&is_primary, Type::BOOL),
            ],
        )
        .await
        .map_err(|e| conflict_or(e, "domain", &domain))?;
        Ok(Domain {
            domain,
            tenant_id: tenant_id.to_owned(),
            is_primary,
        })
    }

    pub(super) async fn delete_domain(
        &self,
        tx: &impl GenericClient,
        domain: &str,
    ) -> Result<Domain, StoreError> {
        let owner = query_opt(tx, &self.sql.domain_owner, &[(&domain, Type::TEXT)])
            .await?
            .ok_or_else(|| not_found("domain", domain))?;
        let tenant_id: String = owner.get(0);
        let pk = self.lock_tenant(tx, &tenant_id).await?;
        let is_primary: bool = owner.get(2);
        query(tx, &self.sql.delete_domain, &[(&domain, Type::TEXT)]).await?;
        if is_primary {
            query(tx, &self.sql.promote_oldest, &[(&pk, Type::INT8)]).await?;
        }
        Ok(Domain {
            domain: domain.to_owned(),
            tenant_id,
            is_primary,
        })
    }
}

/// A plan sent to a django-tenants layout without `store.django.plan_column`.
fn no_plan_column() -> StoreError {
    StoreError::Unsupported(
        "this django-tenants layout has no plan column (set store.django.plan_column)".into(),
    )
}

fn not_found(what: &'static str, key: &str) -> StoreError {
    StoreError::NotFound {
        what,
        key: key.to_owned(),
    }
}
