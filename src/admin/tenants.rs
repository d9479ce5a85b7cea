//! `/v1/tenants`: create, list (paged), show, update and delete tenants.

use std::collections::HashSet;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Deserializer, Serialize};

use super::error::ApiError;
use super::extract::{ApiJson, ApiQuery};
use super::AdminState;
use crate::routing::host::normalize_domain;
use crate::tenant::{
    derive_schema, validate_schema, validate_tenant_id, Isolation, NewTenant, TenantPatch,
    TenantRecord, TenantStatus,
};

const DEFAULT_PAGE: usize = 100;
const MAX_PAGE: usize = 1000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    id: String,
    name: String,
    schema: Option<String>,
    isolation: Option<String>,
    status: Option<String>,
    pool: Option<String>,
    #[serde(default)]
    domains: Vec<String>,
}

impl AdminState {
    /// Checks a pool name against the configured pools.
    pub(super) fn check_pool(&self, pool: Option<&str>) -> Result<(), ApiError> {
        match pool {
            Some(pool) if !self.data_path.pools.contains(pool) => {
                let known: Vec<&str> = self.data_path.pools.names().collect();
                Err(ApiError::BadRequest(format!(
                    "unknown pool '{pool}': configured pools are {known:?}"
                )))
            }
            _ => Ok(()),
        }
    }

    pub(super) fn normalize_domain(&self, domain: &str) -> Result<String, ApiError> {
        normalize_domain(domain, self.data_path.router.strip_www())
            .map_err(|e| ApiError::BadRequest(format!("invalid domain '{domain}': {e}")))
    }

    /// Validates a create request into what the store takes.
    pub fn validate_new_tenant(&self, req: CreateTenant) -> Result<NewTenant, ApiError> {
        validate_tenant_id(&req.id).map_err(|e| ApiError::BadRequest(e.to_string()))?;
        if req.name.trim().is_empty() {
            return Err(ApiError::BadRequest("name must not be empty".into()));
        }
        let schema = req.schema.unwrap_or_else(|| derive_schema(&req.id));
        validate_schema(&schema, &req.id).map_err(|e| ApiError::BadRequest(e.to_string()))?;
        let isolation = match req.isolation.as_deref() {
            Some(text) => text.parse::<Isolation>().map_err(ApiError::BadRequest)?,
            None => Isolation::default(),
        };
        let status = match req.status.as_deref() {
            Some(text) => text.parse::<TenantStatus>().map_err(ApiError::BadRequest)?,
            None => TenantStatus::Active,
        };
        self.check_pool(req.pool.as_deref())?;
        let mut seen = HashSet::new();
        let mut domains = Vec::with_capacity(req.domains.len());
        for raw in &req.domains {
            let domain = self.normalize_domain(raw)?;
            if !seen.insert(domain.clone()) {
                return Err(ApiError::BadRequest(format!(
                    "domain '{domain}' is listed twice"
                )));
            }
            domains.push(domain);
        }
        Ok(NewTenant {
            id: req.id,
            name: req.name,
            schema,
            isolation,
            status,
            pool: req.pool,
            domains,
        })
    }
}

pub async fn create(
    State(state): State<Arc<AdminState>>,
    ApiJson(req): ApiJson<CreateTenant>,
) -> Result<(StatusCode, Json<TenantRecord>), ApiError> {
    let new = state.validate_new_tenant(req)?;
    let record = state.store.create_tenant(new).await?;
    // Drop negative entries cached before these domains existed.
    let router = &state.data_path.router;
    router.invalidate_domains(&record.domains).await;
    tracing::info!(tenant = %record.tenant.id, domains = record.domains.len(), "tenant created");
    Ok((StatusCode::CREATED, Json(record)))
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
    Path(id): Path<String>,
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
}

/// Tells "absent" (`None`) from "null" (`Some(None)`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

pub async fn update(
    State(state): State<Arc<AdminState>>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<UpdateTenant>,
) -> Result<Json<TenantRecord>, ApiError> {
    if req.name.is_none() && req.status.is_none() && req.pool.is_none() {
        return Err(ApiError::BadRequest(
            "nothing to change: send name, status or pool".into(),
        ));
    }
    if req.name.as_deref().is_some_and(|n| n.trim().is_empty()) {
        return Err(ApiError::BadRequest("name must not be empty".into()));
    }
    let status = req
        .status
        .as_deref()
        .map(str::parse::<TenantStatus>)
        .transpose()
        .map_err(ApiError::BadRequest)?;
    if let Some(pool) = &req.pool {
        state.check_pool(pool.as_deref())?;
    }
    let record = state
        .store
        .update_tenant(
            &id,
            TenantPatch {
                name: req.name,
                status,
                pool: req.pool,
            },
        )
        .await?;
    let router = &state.data_path.router;
    router.invalidate_domains(&record.domains).await;
    tracing::info!(tenant = %id, status = record.tenant.status.as_str(), "tenant updated");
    Ok(Json(record))
}

pub async fn remove(
    State(state): State<Arc<AdminState>>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let removed = state.store.delete_tenant(&id).await?;
    let router = &state.data_path.router;
    router.invalidate_domains(&removed.domains).await;
    tracing::info!(tenant = %id, "tenant deleted");
    Ok(StatusCode::NO_CONTENT)
}
