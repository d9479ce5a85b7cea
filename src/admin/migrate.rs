//! `POST /v1/tenants/{id}/migrate` (one tenant, answered when done),
//! `POST /v1/migrate` (every tenant, as a background job: `202` and a
//! `Location`), and `GET /v1/jobs/{id}` (a job's progress and results).
//! Both migrations take `?maintenance=true[&hold=5s]` (`provision::hold`).

use std::sync::Arc;

use super::error::{ApiError, ErrorBody};
use super::extract::{ApiPath, ApiQuery};
use super::AdminState;
use crate::provision::hold::MaintenanceWindow;
use crate::provision::jobs::Job;
use crate::provision::migrate::TenantMigration;
use crate::provision::Provisioner;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::tenant::controls::MAX_HOLD;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MigrateQuery {
    /// Put each tenant that has migrations to apply under maintenance while
    /// its own migrations run (its requests held, then released).
    #[serde(default)]
    maintenance: bool,
    /// With `maintenance`: how long requests wait, e.g. `5s` (default
    /// `provisioning.maintenance_hold`; `0s` answers 503 at once).
    hold: Option<String>,
}

impl MigrateQuery {
    /// The maintenance window asked for, if any.
    fn window(
        &self,
        state: &AdminState,
        provisioner: &Provisioner,
    ) -> Result<Option<MaintenanceWindow>, ApiError> {
        let hold = self
            .hold
            .as_deref()
            .map(|text| {
                humantime_serde::re::humantime::parse_duration(text)
                    .map_err(|e| ApiError::BadRequest(format!("hold: '{text}': {e}")))
            })
            .transpose()?;
        match (self.maintenance, hold) {
            (false, Some(_)) => Err(ApiError::BadRequest(
                "hold: only with maintenance=true".into(),
            )),
            (false, None) => Ok(None),
            (true, Some(hold)) if hold > MAX_HOLD => Err(ApiError::BadRequest(
                "hold: at most 1h (held requests keep their connections open)".into(),
            )),
            (true, hold) => Ok(Some(provisioner.maintenance_window(
                state.store.clone(),
                hold,
                Some(state.data_path.router.clone()),
            ))),
        }
    }
}

fn provisioner(state: &AdminState) -> Result<&Arc<Provisioner>, ApiError> {
    state
        .provisioner
        .as_ref()
        .ok_or_else(|| ApiError::BadRequest("migrations need a PostgreSQL store".into()))
}

/// Apply a tenant's pending migrations (answered when done)
#[utoipa::path(post, path = "/tenants/{id}/migrate", operation_id = "migrate_tenant", tag = "migrations",
    params(("id" = String, Path, description = "The tenant's id"), MigrateQuery),
    responses(
        (status = 200, description = "The migrations applied now", body = TenantMigration),
        (status = 400, description = "No PostgreSQL store", body = ErrorBody),
        (status = 404, description = "No such tenant", body = ErrorBody),
        (status = 409, description = "The tenant's schema or database is missing", body = ErrorBody),
        (status = 503, description = "The store is unreachable", body = ErrorBody),
    ))]
pub async fn one(
    State(state): State<Arc<AdminState>>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<MigrateQuery>,
) -> Result<Json<TenantMigration>, ApiError> {
    let provisioner = provisioner(&state)?;
    let window = query.window(&state, provisioner)?;
    let record = state
        .store
        .get_tenant(&id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("tenant '{id}' not found")))?;
    let applied = provisioner
        .migrate_in(&record.tenant, window.as_ref())
        .await?;
    tracing::info!(tenant = %id, applied = applied.len(), "tenant migrated");
    Ok(Json(TenantMigration {
        tenant: id,
        applied,
        error: None,
    }))
}

fn accepted(job: &Job) -> Response {
    let location = format!("/v1/jobs/{}", job.id);
    (
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        Json(job.clone()),
    )
        .into_response()
}

/// Migrate every tenant, as a background job
#[utoipa::path(post, path = "/migrate", operation_id = "migrate_all", tag = "migrations",
    params(MigrateQuery),
    responses(
        (status = 202, description = "Started: follow `Location`", body = Job,
            headers(("Location" = String, description = "The job: /v1/jobs/{id}")),
            links(("show" = (operation_id = "show_job", parameters(("id" = "$response.body#/id")))))),
        (status = 400, description = "No PostgreSQL store", body = ErrorBody),
        (status = 409, description = "A migrate job is running already", body = ErrorBody),
    ))]
pub async fn all(
    State(state): State<Arc<AdminState>>,
    ApiQuery(query): ApiQuery<MigrateQuery>,
) -> Result<Response, ApiError> {
    let provisioner = provisioner(&state)?.clone();
    let window = query.window(&state, &provisioner)?;
    let jobs = provisioner.jobs.clone();
    let job = jobs.start("migrate").map_err(|running| {
        ApiError::Conflict(format!(
            "a migrate job is already running: /v1/jobs/{}",
            running.id
        ))
    })?;
    let (id, store) = (job.id, state.store.clone());
    tokio::spawn(async move {
        let parallel = provisioner.migrate_parallel;
        let reporter = jobs.clone();
        let outcome = provisioner
            .migrate_all(store.as_ref(), parallel, window, move |p| {
                reporter.progress(id, p)
            })
            .await;
        match &outcome {
            Ok(results) => tracing::info!(
                job = id,
                tenants = results.len(),
                failed = results.iter().filter(|r| r.error.is_some()).count(),
                "migrate job finished"
            ),
            Err(e) => tracing::error!(job = id, error = %e, "migrate job failed"),
        }
        jobs.finish(id, outcome.map_err(|e| e.to_string()));
    });
    Ok(accepted(&job))
}

/// A job's progress and, once finished, its results
#[utoipa::path(get, path = "/jobs/{id}", operation_id = "show_job", tag = "migrations",
    params(("id" = String, Path, description = "The job's number")),
    responses(
        (status = 200, description = "The job", body = Job),
        (status = 404, description = "No such job", body = ErrorBody),
    ))]
pub async fn job(
    State(state): State<Arc<AdminState>>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Job>, ApiError> {
    let not_found = || ApiError::NotFound(format!("job '{id}' not found"));
    let number: u64 = id.parse().map_err(|_| not_found())?;
    state
        .provisioner
        .as_ref()
        .and_then(|p| p.jobs.get(number))
        .map(Json)
        .ok_or_else(not_found)
}
