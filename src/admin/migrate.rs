//! `POST /v1/tenants/{id}/migrate` (one tenant, answered when done),
//! `POST /v1/migrate` (every tenant, as a background job: `202` and a
//! `Location`), and `GET /v1/jobs/{id}` (a job's progress and results).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::error::ApiError;
use super::extract::ApiPath;
use super::AdminState;
use crate::provision::jobs::Job;
use crate::provision::Provisioner;

fn provisioner(state: &AdminState) -> Result<&Arc<Provisioner>, ApiError> {
    state
        .provisioner
        .as_ref()
        .ok_or_else(|| ApiError::BadRequest("migrations need a PostgreSQL store".into()))
}

pub async fn one(
    State(state): State<Arc<AdminState>>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let provisioner = provisioner(&state)?;
    let record = state
        .store
        .get_tenant(&id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("tenant '{id}' not found")))?;
    let applied = provisioner.migrate(&record.tenant).await?;
    tracing::info!(tenant = %id, applied = applied.len(), "tenant migrated");
    Ok(Json(json!({ "tenant": id, "applied": applied })))
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

pub async fn all(State(state): State<Arc<AdminState>>) -> Result<Response, ApiError> {
    let provisioner = provisioner(&state)?.clone();
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
            .migrate_all(store.as_ref(), parallel, move |p| reporter.progress(id, p))
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
