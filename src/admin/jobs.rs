//! `GET /v1/jobs`: the background jobs this process remembers (migrations of
//! every tenant), newest first, with their progress; a job's per-tenant
//! results stay at `GET /v1/jobs/{id}`.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::AdminState;
use crate::provision::jobs::{Job, JobStatus};
use crate::provision::migrate::Progress;

/// At most this many failed tenants are named per job in the list.
const FAILED_SHOWN: usize = 20;

#[derive(Debug, Serialize, ToSchema)]
pub struct JobList {
    /// Newest first; empty without a PostgreSQL store (no jobs can run).
    jobs: Vec<JobSummary>,
}

/// A job without its per-tenant results.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobSummary {
    id: u64,
    /// What the job does: `migrate`.
    #[schema(value_type = String)]
    kind: &'static str,
    status: JobStatus,
    progress: Progress,
    /// The first [`FAILED_SHOWN`] tenants that failed, once finished (all
    /// of them, with their errors, are in the job's results).
    failed_tenants: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

impl JobSummary {
    fn of(job: &Job) -> JobSummary {
        JobSummary {
            id: job.id,
            kind: job.kind,
            status: job.status,
            progress: job.progress,
            failed_tenants: job
                .results
                .iter()
                .filter(|r| r.error.is_some())
                .map(|r| r.tenant.clone())
                .take(FAILED_SHOWN)
                .collect(),
            error: job.error.clone(),
        }
    }
}

/// The background jobs this process remembers, newest first
#[utoipa::path(get, path = "/jobs", operation_id = "list_jobs", tag = "migrations",
    responses((status = 200, description = "The jobs, without their per-tenant results", body = JobList)))]
pub async fn list(State(state): State<Arc<AdminState>>) -> Json<JobList> {
    let jobs = match &state.provisioner {
        Some(provisioner) => provisioner.jobs.list(JobSummary::of),
        None => Vec::new(),
    };
    Json(JobList { jobs })
}
