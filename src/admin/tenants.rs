//! `/v1/tenants`: create, list (paged), show, update and delete tenants.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Deserializer, Serialize};

use super::error::ApiError;
use super::extract::{ApiJson, ApiPath, ApiQuery, ApiText};
use super::import::ImportReport;
use super::AdminState;
use crate::provision::{events, ProvisionError, ProvisionFailure, Provisioned};
use crate::store::StoreError;
use crate::tenant::spec::{check_name, SpecError, SpecRules, TenantSpec};
use crate::tenant::{TenantPatch, TenantRecord, TenantStatus, DEFAULT_CLUSTER};

const DEFAULT_PAGE: usize = 100;
const MAX_PAGE: usize = 1000;

impl AdminState {
    /// The validation rules of this gateway: its `www.` rule, pool names
    /// and cluster names.
    pub(super) fn rules(&self) -> SpecRules {
        SpecRules {
            strip_www: self.data_path.router.strip_www(),
            pools: self.data_path.pools.load().names(),
            clusters: match &self.provisioner {
                Some(p) => p.clusters().names(),
                None => vec![DEFAULT_CLUSTER.to_owned()],
            },
        }
    }
}

impl From<SpecError> for ApiError {
    fn from(e: SpecError) -> ApiError {
        ApiError::BadRequest(e.message)
    }
}

pub async fn create(
    State(state): State<Arc<AdminState>>,
    ApiJson(spec): ApiJson<TenantSpec>,
) -> Result<(StatusCode, Json<Provisioned>), ApiError> {
    if spec.name.is_none() {
        return Err(ApiError::BadRequest("missing field `name`".into()));
    }
    let provision = spec.provision != Some(false);
    let new = spec.validate(&state.rules())?;
    let created = match &state.provisioner {
        Some(provisioner) if provision => provisioner
            .create(new.clone())
            .await
            .map_err(|e| (id_conflict_in(&e), ApiError::from(e))),
        _ => state
            .store
            .create_tenant(new.clone())
            .await
            .map(registered)
            .map_err(|e| (id_conflict(&e), ApiError::from(e))),
    };
    let record = match created {
        Ok(record) => record,
        // A retry of a create that succeeded: answer with the tenant as it
        // is (200); a different body for the same id stays a conflict.
        Err((true, conflict)) => match state.store.get_tenant(&new.id).await? {
            // A role's password is shown once: not again on a retry.
            Some(existing) if new.matches(&existing) => {
                return Ok((StatusCode::OK, Json(registered(existing))))
            }
            _ => return Err(conflict),
        },
        Err((false, e)) => return Err(e),
    };
    // Drop negative entries cached before these domains existed.
    let router = &state.data_path.router;
    router.invalidate_domains(&record.record.domains).await;
    let tenant = &record.record.tenant;
    tracing::info!(tenant = %tenant.id, cluster = tenant.cluster.as_deref(), domains = record.record.domains.len(), "tenant created");
    state.events.send(events::PROVISIONED, &record.record);
    Ok((StatusCode::CREATED, Json(record)))
}

/// A tenant registered without provisioning: nothing shown once.
fn registered(record: TenantRecord) -> Provisioned {
    Provisioned {
        record,
        database_role: None,
    }
}

fn id_conflict(e: &StoreError) -> bool {
    matches!(e, StoreError::Conflict { what: "tenant", .. })
}

fn id_conflict_in(e: &ProvisionError) -> bool {
    matches!(&e.source, ProvisionFailure::Store(s) if id_conflict(s))
}

/// `POST /v1/tenants/import`: a CSV or NDJSON body (see `admin::import`).
pub async fn import(
    State(state): State<Arc<AdminState>>,
    ApiText(body): ApiText,
) -> Result<Json<ImportReport>, ApiError> {
    if body.trim().is_empty() {
        return Err(ApiError::BadRequest(
            "the body must hold CSV or NDJSON rows".into(),
        ));
    }
    let parsed = super::import::read(&body)?;
    let report =
        super::import::import(state.store.as_ref(), parsed, &state.rules(), |_| {}).await?;
    let router = &state.data_path.router;
    match &report.domains {
        Some(domains) => router.invalidate_names(domains).await,
        None => router.invalidate_all(),
    }
    tracing::info!(
        imported = report.imported,
        failed = report.failed,
        "tenants imported"
    );
    Ok(Json(report))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    limit: Option<usize>,
    after: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct TenantPage {
    tenants: Vec<TenantRecord>,
    /// Pass as `after` to get the next page; `null` on the last page.
    next: Option<String>,
}

pub async fn list(
    State(state): State<Arc<AdminState>>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<TenantPage>, ApiError> {
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "limit must be between 1 and {MAX_PAGE}"
        )));
    }
    let tenants = state.store.list_tenants(query.after, limit).await?;
    let next = (tenants.len() == limit)
        .then(|| tenants.last().map(|t| t.tenant.id.clone()))
        .flatten();
    Ok(Json(TenantPage { tenants, next }))
}

pub async fn show(
    State(state): State<Arc<AdminState>>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<TenantRecord>, ApiError> {
    state
        .store
        .get_tenant(&id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("tenant '{id}' not found")))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateTenant {
    name: Option<String>,
    status: Option<String>,
    /// `null` moves the tenant back to the default pool.
    #[serde(default, deserialize_with = "present")]
    pool: Option<Option<String>>,
    /// `null` removes the plan.
    #[serde(default, deserialize_with = "present")]
    plan: Option<Option<String>>,
}

/// Tells "absent" (`None`) from "null" (`Some(None)`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

pub async fn update(
    State(state): State<Arc<AdminState>>,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<UpdateTenant>,
) -> Result<Json<TenantRecord>, ApiError> {
    if req.name.is_none() && req.status.is_none() && req.pool.is_none() && req.plan.is_none() {
        return Err(ApiError::BadRequest(
            "nothing to change: send name, status, pool or plan".into(),
        ));
    }
    if let Some(name) = &req.name {
        check_name(name)?;
    }
    let status = req
        .status
        .as_deref()
        .map(str::parse::<TenantStatus>)
        .transpose()
        .map_err(ApiError::BadRequest)?;
    let rules = state.rules();
    if let Some(pool) = &req.pool {
        rules.check_pool(pool.as_deref())?;
    }
    if let Some(plan) = &req.plan {
        rules.check_plan(plan.as_deref())?;
    }
    let record = state
        .store
        .update_tenant(
            &id,
            TenantPatch {
                name: req.name,
                status,
                pool: req.pool,
                plan: req.plan,
            },
        )
        .await?;
    let router = &state.data_path.router;
    router.invalidate_domains(&record.domains).await;
    tracing::info!(tenant = %id, status = record.tenant.status.as_str(), "tenant updated");
    Ok(Json(record))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoveQuery {
    /// Also drop the tenant's schema or database (after unrouting it).
    #[serde(default)]
    drop: bool,
}

pub async fn remove(
    State(state): State<Arc<AdminState>>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<RemoveQuery>,
) -> Result<StatusCode, ApiError> {
    let provisioner = match (&state.provisioner, query.drop) {
        (None, true) => {
            return Err(ApiError::BadRequest(
                "drop=true needs a PostgreSQL store".into(),
            ))
        }
        (provisioner, drop) => provisioner.as_ref().filter(|_| drop),
    };
    if let Some(provisioner) = provisioner {
        // Refuse before deleting if its storage could not be dropped after.
        if let Some(existing) = state.store.get_tenant(&id).await? {
            provisioner
                .clusters()
                .get(existing.tenant.cluster.as_deref())?;
        }
    }
    let removed = state.store.delete_tenant(&id).await?;
    let router = &state.data_path.router;
    router.invalidate_domains(&removed.domains).await;
    if let Some(provisioner) = provisioner {
        provisioner.drop_storage(&removed.tenant).await?;
    }
    tracing::info!(tenant = %id, dropped = query.drop, "tenant deleted");
    state.events.send(events::DELETED, &removed);
    Ok(StatusCode::NO_CONTENT)
}
