//! `/v1/tenants`: create, list (paged), show, update and delete tenants.

use std::collections::BTreeMap;
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
use crate::tenant::signup::{candidate, id_from_hint};
use crate::tenant::spec::{check_name, SpecError, SpecRules, TenantSpec};
use crate::tenant::{NewTenant, TenantPatch, TenantRecord, TenantStatus, DEFAULT_CLUSTER};

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

/// The body of `POST /v1/tenants`: a tenant spec, plus what only a create
/// through the API takes (`name_hint`, `columns`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    /// The tenant id; absent with `name_hint`, derived from it.
    pub id: Option<String>,
    /// A username or email to derive the id and schema from when `id` is
    /// absent (`john.doe@email.com` → `john_doe_email_com`, then `_2`, …).
    pub name_hint: Option<String>,
    pub name: Option<String>,
    pub schema: Option<String>,
    pub isolation: Option<String>,
    pub status: Option<String>,
    pub pool: Option<String>,
    pub plan: Option<String>,
    pub cluster: Option<String>,
    #[serde(default)]
    pub domains: Vec<String>,
    pub provision: Option<bool>,
    /// Values for further columns of a django-tenants tenant table
    /// (`{"owner_id": 7, "paid_until": "2027-12-31"}`), bound as parameters.
    #[serde(default)]
    pub columns: BTreeMap<String, serde_json::Value>,
}

impl CreateTenant {
    /// The spec for tenant `id`.
    fn spec(&self, id: String) -> TenantSpec {
        TenantSpec {
            id,
            name: self.name.clone().or_else(|| self.name_hint.clone()),
            schema: self.schema.clone(),
            isolation: self.isolation.clone(),
            status: self.status.clone(),
            pool: self.pool.clone(),
            plan: self.plan.clone(),
            cluster: self.cluster.clone(),
            domains: self.domains.clone(),
            provision: self.provision,
        }
    }
}

/// Ids tried for one `name_hint` (`base`, `base_2`, … `base_100`).
const MAX_SIGNUP_TRIES: u32 = 100;

pub async fn create(
    State(state): State<Arc<AdminState>>,
    ApiJson(req): ApiJson<CreateTenant>,
) -> Result<(StatusCode, Json<Provisioned>), ApiError> {
    let provision = req.provision != Some(false);
    let created = match (&req.id, &req.name_hint) {
        (Some(id), _) => {
            if req.name.is_none() {
                return Err(ApiError::BadRequest("missing field `name`".into()));
            }
            match create_with_id(&state, &req, id.clone(), provision).await? {
                (StatusCode::CREATED, created) => created,
                retried => return Ok((retried.0, Json(retried.1))),
            }
        }
        (None, Some(hint)) => signup(&state, &req, hint, provision).await?,
        (None, None) => {
            return Err(ApiError::BadRequest(
                "missing field `id` (or `name_hint`, to derive one)".into(),
            ))
        }
    };
    // Drop negative entries cached before these domains existed.
    let router = &state.data_path.router;
    router.invalidate_domains(&created.record.domains).await;
    let tenant = &created.record.tenant;
    tracing::info!(tenant = %tenant.id, cluster = tenant.cluster.as_deref(), domains = created.record.domains.len(), "tenant created");
    state.events.send(events::PROVISIONED, &created.record);
    Ok((StatusCode::CREATED, Json(created)))
}

/// A create naming its id (201). A retry of a create that succeeded answers
/// with the tenant as it is (200); a different body for the same id stays a
/// conflict.
async fn create_with_id(
    state: &AdminState,
    req: &CreateTenant,
    id: String,
    provision: bool,
) -> Result<(StatusCode, Provisioned), ApiError> {
    let mut new = req.spec(id).validate(&state.rules())?;
    new.columns = req.columns.clone();
    match register(state, new.clone(), provision).await {
        Ok(created) => Ok((StatusCode::CREATED, created)),
        Err((Some("tenant"), conflict)) => match state.store.get_tenant(&new.id).await? {
            // A role's password is shown once: not again on a retry.
            Some(existing) if new.matches(&existing) => Ok((StatusCode::OK, registered(existing))),
            _ => Err(conflict),
        },
        Err((_, e)) => Err(e),
    }
}

/// A sign-up: the id (and schema) derived from `hint`, with `_2`, `_3`, …
/// while the id or schema is taken.
async fn signup(
    state: &AdminState,
    req: &CreateTenant,
    hint: &str,
    provision: bool,
) -> Result<Provisioned, ApiError> {
    let base = id_from_hint(hint)
        .ok_or_else(|| ApiError::BadRequest("name_hint must hold some letters or digits".into()))?;
    for n in 1..=MAX_SIGNUP_TRIES {
        let id = candidate(&base, n);
        if state.store.get_tenant(&id).await?.is_some() {
            continue;
        }
        let mut new = req.spec(id).validate(&state.rules())?;
        new.columns = req.columns.clone();
        match register(state, new, provision).await {
            Err((Some("tenant" | "schema"), _)) => continue,
            other => return other.map_err(|(_, e)| e),
        }
    }
    Err(ApiError::Conflict(format!(
        "the ids {base} to {} are all taken",
        candidate(&base, MAX_SIGNUP_TRIES)
    )))
}

/// Registers (and provisions, when asked and possible) `new`; a failure
/// says what kind of conflict it was, if it was one.
async fn register(
    state: &AdminState,
    new: NewTenant,
    provision: bool,
) -> Result<Provisioned, (Option<&'static str>, ApiError)> {
    match &state.provisioner {
        Some(provisioner) if provision => provisioner
            .create(new)
            .await
            .map_err(|e| (conflict_in(&e), ApiError::from(e))),
        _ => state
            .store
            .create_tenant(new)
            .await
            .map(registered)
            .map_err(|e| (conflict(&e), ApiError::from(e))),
    }
}

/// A tenant registered without provisioning: nothing shown once.
fn registered(record: TenantRecord) -> Provisioned {
    Provisioned {
        record,
        database_role: None,
    }
}

/// What a conflict was about (`tenant`, `schema`, `domain`), if it was one.
fn conflict(e: &StoreError) -> Option<&'static str> {
    match e {
        StoreError::Conflict { what, .. } => Some(what),
        _ => None,
    }
}

fn conflict_in(e: &ProvisionError) -> Option<&'static str> {
    match &e.source {
        ProvisionFailure::Store(s) => conflict(s),
        _ => None,
    }
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
        Some(domains) => {
            for domain in domains {
                router.invalidate_domain(domain).await;
            }
        }
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
