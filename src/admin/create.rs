//! `POST /v1/tenants`: create a tenant (and provision it), by id or from a
//! `name_hint` (a sign-up); a retry of a create that succeeded answers with
//! the tenant as it is.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa::ToSchema;

use super::error::{ApiError, ErrorBody};
use super::extract::ApiJson;
use super::AdminState;
use crate::provision::{events, ProvisionError, ProvisionFailure, Provisioned};
use crate::store::StoreError;
use crate::tenant::signup::{candidate, id_from_hint};
use crate::tenant::spec::TenantSpec;
#[allow(unused_imports)] // named in the OpenAPI annotations only
use crate::tenant::{spec::DomainName, Isolation};
use crate::tenant::{NewTenant, TenantRecord, TenantStatus};

/// The body of `POST /v1/tenants`: a tenant spec (`columns` included, as
/// an import row takes them), plus what only a create through the API
/// takes (`name_hint`). It repeats
/// [`TenantSpec`]'s fields rather than `#[serde(flatten)]` it: serde cannot
/// combine `flatten` with `deny_unknown_fields`, and a misspelt field must
/// stay a 400.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    /// The tenant id (1-63 lowercase letters, digits, `-` or `_`); absent
    /// with `name_hint`, derived from it.
    #[schema(pattern = r"^[a-z0-9][a-z0-9_-]{0,62}$")]
    pub id: Option<String>,
    /// A username or email to derive the id and schema from when `id` is
    /// absent (`john.doe@email.com` → `john_doe_email_com`, then `_2`, …).
    pub name_hint: Option<String>,
    /// Shown to people; required with `id`.
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
    /// A configured pool; absent: the plan's, else `default`.
    pub pool: Option<String>,
    #[schema(pattern = r"^[a-z0-9][a-z0-9_-]{0,62}$")]
    pub plan: Option<String>,
    /// A configured cluster; absent: the emptiest one.
    #[schema(pattern = r"^[a-z0-9][a-z0-9_-]{0,62}$")]
    pub cluster: Option<String>,
    #[serde(default)]
    #[schema(inline, value_type = Vec<DomainName>)]
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
            columns: self.columns.clone(),
        }
    }
}

/// Ids tried for one `name_hint` (`base`, `base_2`, … `base_100`).
const MAX_SIGNUP_TRIES: u32 = 100;

/// Create a tenant
///
/// With a PostgreSQL store the tenant's schema or database is provisioned
/// too (unless `provision` is `false`), all or nothing.
#[utoipa::path(post, path = "/tenants", operation_id = "create_tenant", tag = "tenants",
    request_body = CreateTenant,
    responses(
        (status = 201, description = "Created (and provisioned)", body = Provisioned, links(
            ("show" = (operation_id = "show_tenant", parameters(("id" = "$response.body#/id")))),
            ("update" = (operation_id = "update_tenant", parameters(("id" = "$response.body#/id")))),
            ("add_domain" = (operation_id = "add_domain", parameters(("id" = "$response.body#/id")))),
            ("migrate" = (operation_id = "migrate_tenant", parameters(("id" = "$response.body#/id")))),
            ("delete" = (operation_id = "delete_tenant", parameters(("id" = "$response.body#/id")))),
        )),
        (status = 200, description = "A repeat of a create that succeeded: the tenant as it is", body = Provisioned),
        (status = 409, description = "The id, a domain or the schema is taken (or left over on the server)", body = ErrorBody),
        (status = 422, description = "`columns` a django-tenants tenant table cannot take", body = ErrorBody),
        (status = 503, description = "The store is unreachable", body = ErrorBody),
    ))]
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
    let new = req.spec(id).validate(&state.rules())?;
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
    // The schema is derived with the id and numbered with it: a fixed one
    // would be taken on every try after the first.
    if req.schema.is_some() {
        return Err(ApiError::BadRequest(
            "`schema` and `name_hint` cannot be given together: the schema follows the id derived from the hint (give `id` to choose both)".into(),
        ));
    }
    let base = id_from_hint(hint)
        .ok_or_else(|| ApiError::BadRequest("name_hint must hold some letters or digits".into()))?;
    for n in 1..=MAX_SIGNUP_TRIES {
        let id = candidate(&base, n);
        if state.store.get_tenant(&id).await?.is_some() {
            continue;
        }
        let new = req.spec(id).validate(&state.rules())?;
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
