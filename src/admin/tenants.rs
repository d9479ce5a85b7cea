//! `/v1/tenants`: list (paged), show, update, delete and import tenants;
//! creating one is [`super::create`].

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiPath, ApiQuery, ApiText};
use super::import::ImportReport;
use super::page::page_limit;
use super::AdminState;
use crate::provision::events;
use crate::tenant::spec::{check_name, SpecError, SpecRules};
use crate::tenant::{TenantLimits, TenantPatch, TenantRecord, TenantStatus, DEFAULT_CLUSTER};

/// The longest `search` text, in characters.
const MAX_SEARCH: usize = 200;

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

/// Import tenants from CSV or NDJSON
///
/// CSV: `id,schema,domain[,name,isolation,status,pool,plan,cluster]`, with
/// an optional header line (which may add `column:NAME` columns for a
/// django-tenants tenant table); NDJSON: one tenant per line, as for create
/// (`columns` included). Bad rows (a row whose `columns` cannot be
/// written among them) are reported by line; the others are imported.
#[utoipa::path(post, path = "/tenants/import", operation_id = "import_tenants", tag = "tenants",
    request_body(content(
        (String = "text/csv"),
        (String = "application/x-ndjson"),
    )),
    responses(
        (status = 200, description = "Imported, with the bad rows", body = ImportReport),
        (status = 503, description = "The store is unreachable", body = ErrorBody),
    ))]
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
    let router = &state.data_path.router;
    let report =
        match super::import::import(state.store.as_ref(), parsed, &state.rules(), |_| {}).await {
            Ok(report) => report,
            Err(e) => {
                // Batches before the failing one are committed, and this
                // process's own writes do not come back through the feed.
                router.invalidate_all();
                return Err(e.into());
            }
        };
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

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Tenants per page (1 to 1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
    /// The `next` of the previous page.
    after: Option<String>,
    /// Only tenants whose id, name or schema, or one of whose domains,
    /// contains this text (case-insensitively; `%` and `_` are plain
    /// characters). Empty: every tenant.
    #[param(max_length = 200)]
    search: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TenantPage {
    tenants: Vec<TenantRecord>,
    /// Pass as `after` to get the next page; `null` on the last page.
    next: Option<String>,
}

/// List tenants, by id, a page at a time
///
/// With `search`, only the tenants matching it, still by id and paged the same way.
#[utoipa::path(get, path = "/tenants", operation_id = "list_tenants", tag = "tenants",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of tenants", body = TenantPage),
        (status = 503, description = "The store is unreachable", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<Arc<AdminState>>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<TenantPage>, ApiError> {
    let limit = page_limit(query.limit)?;
    let search = query.search.as_deref().filter(|text| !text.is_empty());
    let tenants = match search {
        Some(text) if text.chars().count() > MAX_SEARCH => {
            return Err(ApiError::BadRequest(format!(
                "search must be at most {MAX_SEARCH} characters"
            )))
        }
        // PostgreSQL refuses a NUL in text; no id, name or domain holds one.
        Some(text) if text.chars().any(char::is_control) => {
            return Err(ApiError::BadRequest(
                "search must not contain control characters".into(),
            ))
        }
        Some(text) => state.store.search_tenants(text, query.after, limit).await?,
        None => state.store.list_tenants(query.after, limit).await?,
    };
    let next = (tenants.len() == limit)
        .then(|| tenants.last().map(|t| t.tenant.id.clone()))
        .flatten();
    Ok(Json(TenantPage { tenants, next }))
}

/// Show a tenant with its domains
#[utoipa::path(get, path = "/tenants/{id}", operation_id = "show_tenant", tag = "tenants",
    params(("id" = String, Path, description = "The tenant's id")),
    responses(
        (status = 200, description = "The tenant", body = TenantRecord),
        (status = 404, description = "No such tenant", body = ErrorBody),
        (status = 503, description = "The store is unreachable", body = ErrorBody),
    ))]
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

/// What to change; at least one field.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTenant {
    #[schema(min_length = 1, max_length = 200)]
    name: Option<String>,
    #[schema(value_type = Option<TenantStatus>)]
    status: Option<String>,
    /// `null` moves the tenant back to the default pool.
    #[serde(default, deserialize_with = "present")]
    pool: Option<Option<String>>,
    /// `null` removes the plan.
    #[serde(default, deserialize_with = "present")]
    plan: Option<Option<String>>,
    /// The tenant's own limits over its plan's, e.g. `{"rate": "50/s",
    /// "burst": 100, "concurrency": 20}`; `null` clears them.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<TenantLimits>)]
    limits: Option<serde_json::Value>,
}

/// Tells "absent" (`None`) from "null" (`Some(None)`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// Rename, suspend or resume a tenant, move it to another pool or plan, or set its own limits
#[utoipa::path(patch, path = "/tenants/{id}", operation_id = "update_tenant", tag = "tenants",
    params(("id" = String, Path, description = "The tenant's id")),
    request_body = UpdateTenant,
    responses(
        (status = 200, description = "The tenant as changed", body = TenantRecord),
        (status = 404, description = "No such tenant", body = ErrorBody),
        (status = 503, description = "The store is unreachable", body = ErrorBody),
    ))]
pub async fn update(
    State(state): State<Arc<AdminState>>,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<UpdateTenant>,
) -> Result<Json<TenantRecord>, ApiError> {
    let limits = req.limits.map(super::controls::read_limits).transpose()?;
    let patch = TenantPatch {
        name: req.name,
        status: None,
        pool: req.pool,
        plan: req.plan,
        limits,
        maintenance: None,
    };
    if patch.is_empty() && req.status.is_none() {
        return Err(ApiError::BadRequest(
            "nothing to change: send name, status, pool, plan or limits".into(),
        ));
    }
    if let Some(name) = &patch.name {
        check_name(name)?;
    }
    let status = req
        .status
        .as_deref()
        .map(str::parse::<TenantStatus>)
        .transpose()
        .map_err(ApiError::BadRequest)?;
    let rules = state.rules();
    if let Some(pool) = &patch.pool {
        rules.check_pool(pool.as_deref())?;
    }
    if let Some(plan) = &patch.plan {
        rules.check_plan(plan.as_deref())?;
    }
    let patch = TenantPatch { status, ..patch };
    let record = state.store.update_tenant(&id, patch).await?;
    let router = &state.data_path.router;
    router.invalidate_domains(&record.domains).await;
    tracing::info!(tenant = %id, status = record.tenant.status.as_str(), "tenant updated");
    Ok(Json(record))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RemoveQuery {
    /// Also drop the tenant's schema or database (after unrouting it).
    #[serde(default)]
    drop: bool,
}

/// Delete a tenant and its domains
///
/// Unrouted at once; with `drop=true` its schema or database is dropped too.
#[utoipa::path(delete, path = "/tenants/{id}", operation_id = "delete_tenant", tag = "tenants",
    params(("id" = String, Path, description = "The tenant's id"), RemoveQuery),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such tenant", body = ErrorBody),
        (status = 503, description = "The store is unreachable", body = ErrorBody),
    ))]
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
