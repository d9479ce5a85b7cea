//! `GET /v1/pools`: every backend pool of the running config with its
//! backends' live state (active-check verdict, passive ejection, requests in
//! flight), as the data path sees them now.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::AdminState;
use crate::upstream::{now_ms, Backend, Pool};

#[derive(Debug, Serialize, ToSchema)]
pub struct PoolList {
    pools: Vec<PoolView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PoolView {
    name: String,
    /// Whether active health checks run (`health_check` in the config).
    health_checked: bool,
    /// Retries on another backend a request may make.
    retries: u32,
    /// Backends taking traffic now.
    available: usize,
    backends: Vec<BackendView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BackendView {
    /// The configured URL (`unix:/path`, `http(s)://host:port`), plus
    /// `#address` for each address of a DNS name: the metrics' `backend` label.
    url: String,
    weight: u32,
    /// The active health check's verdict (true without checks).
    healthy: bool,
    /// Out of rotation for a while after a failure streak (outlier ejection).
    ejected: bool,
    /// Requests being served by it now.
    in_flight: usize,
}

impl BackendView {
    fn of(backend: &Backend, now: u64) -> BackendView {
        let healthy = backend.is_healthy();
        BackendView {
            url: backend.name.clone(),
            weight: backend.weight,
            healthy,
            ejected: healthy && !backend.is_available(now),
            in_flight: backend.in_flight(),
        }
    }
}

impl PoolView {
    fn of(pool: &Pool, now: u64) -> PoolView {
        let backends: Vec<BackendView> = pool
            .backends
            .iter()
            .map(|b| BackendView::of(b, now))
            .collect();
        PoolView {
            name: pool.name.clone(),
            health_checked: pool.health_check.is_some(),
            retries: pool.retries,
            available: backends.iter().filter(|b| b.healthy && !b.ejected).count(),
            backends,
        }
    }
}

/// Every backend pool with its backends' live state
#[utoipa::path(get, path = "/pools", operation_id = "list_pools", tag = "operations",
    responses((status = 200, description = "The pools, by name", body = PoolList)))]
pub async fn list(State(state): State<Arc<AdminState>>) -> Json<PoolList> {
    let now = now_ms();
    let pools = state.data_path.pools.load();
    let mut pools: Vec<PoolView> = pools.iter().map(|p| PoolView::of(p, now)).collect();
    pools.sort_by(|a, b| a.name.cmp(&b.name));
    Json(PoolList { pools })
}
