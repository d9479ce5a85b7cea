//! Long provisioning work run in the background (`202` + `GET /v1/jobs/{id}`):
//! an in-memory registry of jobs with their progress and, once finished,
//! their per-tenant results. Jobs do not survive a restart; the newest
//! `KEEP` are kept.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;

use super::migrate::{Progress, TenantMigration};

/// How many jobs are remembered (the oldest finished ones are forgotten).
const KEEP: usize = 100;

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Running,
    /// Finished; some tenants may have failed (see `progress.failed`).
    Finished,
    /// Could not run at all (e.g. the store was unreachable).
    Failed,
}

/// A job as `GET /v1/jobs/{id}` shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Job {
    pub id: u64,
    /// What the job does: `migrate`.
    #[schema(value_type = String)]
    pub kind: &'static str,
    pub status: JobStatus,
    pub progress: Progress,
    /// Per tenant, once finished.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub results: Vec<TenantMigration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The registry. Cloning shares it.
#[derive(Clone, Default)]
pub struct Jobs {
    inner: Arc<Mutex<Registry>>,
}

#[derive(Default)]
struct Registry {
    next: u64,
    jobs: BTreeMap<u64, Job>,
}

impl Jobs {
    fn with<T>(&self, f: impl FnOnce(&mut Registry) -> T) -> T {
        f(&mut self.inner.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Registers a running job of `kind`, unless one of that kind is
    /// already running (then `Err` with that job).
    pub fn start(&self, kind: &'static str) -> Result<Job, Job> {
        self.with(|r| {
            if let Some(running) = r
                .jobs
                .values()
                .find(|j| j.kind == kind && j.status == JobStatus::Running)
            {
                return Err(running.clone());
            }
            r.next += 1;
            let job = Job {
                id: r.next,
                kind,
                status: JobStatus::Running,
                progress: Progress::default(),
                results: Vec::new(),
                error: None,
            };
            r.jobs.insert(job.id, job.clone());
            while r.jobs.len() > KEEP {
                let Some(oldest) = r
                    .jobs
                    .values()
                    .find(|j| j.status != JobStatus::Running)
                    .map(|j| j.id)
                else {
                    break;
                };
                r.jobs.remove(&oldest);
            }
            Ok(job)
        })
    }

    pub fn progress(&self, id: u64, progress: Progress) {
        self.with(|r| {
            if let Some(job) = r.jobs.get_mut(&id) {
                job.progress = progress;
            }
        })
    }

    /// Records the end of a job: its results, or why it could not run.
    pub fn finish(&self, id: u64, outcome: Result<Vec<TenantMigration>, String>) {
        self.with(|r| {
            if let Some(job) = r.jobs.get_mut(&id) {
                match outcome {
                    Ok(results) => {
                        job.status = JobStatus::Finished;
                        job.results = results;
                    }
                    Err(e) => {
                        job.status = JobStatus::Failed;
                        job.error = Some(e);
                    }
                }
            }
        })
    }

    pub fn get(&self, id: u64) -> Option<Job> {
        self.with(|r| r.jobs.get(&id).cloned())
    }

    /// Every remembered job, newest first, through `view` (which sees the
    /// job under the lock, so a list need not clone every job's results).
    pub fn list<T>(&self, view: impl Fn(&Job) -> T) -> Vec<T> {
        self.with(|r| r.jobs.values().rev().map(&view).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_running_job_per_kind_and_results_on_finish() {
        let jobs = Jobs::default();
        let first = jobs.start("migrate").unwrap();
        assert_eq!(jobs.start("migrate").unwrap_err().id, first.id);
        jobs.progress(
            first.id,
            Progress {
                total: 2,
                done: 1,
                failed: 0,
            },
        );
        assert_eq!(jobs.get(first.id).unwrap().progress.done, 1);
        jobs.finish(first.id, Ok(Vec::new()));
        assert_eq!(jobs.get(first.id).unwrap().status, JobStatus::Finished);
        let second = jobs.start("migrate").unwrap();
        assert!(second.id > first.id);
        assert!(jobs.get(999).is_none());
        let listed = jobs.list(|j| (j.id, j.status));
        assert_eq!(
            listed,
            [
                (second.id, JobStatus::Running),
                (first.id, JobStatus::Finished)
            ]
        );
    }
}
