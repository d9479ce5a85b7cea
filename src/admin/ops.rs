//! Operational endpoints: liveness, readiness (the store answers), Prometheus
//! metrics, and `/v1/resolve`, which explains what the data path would do.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ErrorBody};
use super::extract::ApiQuery;
use super::AdminState;
use crate::proxy::decide::Decision;

/// `{"status": "ok"}` or `{"status": "ready"}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    status: &'static str,
}

/// Liveness: the process answers
#[utoipa::path(get, path = "/healthz", tag = "operations", security(()),
    responses((status = 200, description = "Alive", body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Readiness: the store answers and the routing cache is warm
#[utoipa::path(get, path = "/readyz", tag = "operations", security(()),
    responses(
        (status = 200, description = "Ready", body = Health),
        (status = 503, description = "Not ready, and why", body = ErrorBody),
    ))]
pub async fn readyz(State(state): State<Arc<AdminState>>) -> Result<Json<Health>, ApiError> {
    state
        .store
        .ping()
        .await
        .map_err(|e| ApiError::Unavailable(format!("not ready: {e}")))?;
    let router = &state.data_path.router;
    if !router.is_warm() {
        let loaded = router.cached_entries().await;
        return Err(ApiError::Unavailable(format!(
            "not ready: warming the routing cache ({loaded} hosts so far)"
        )));
    }
    Ok(Json(Health { status: "ready" }))
}

/// Prometheus metrics (text exposition format)
#[utoipa::path(get, path = "/metrics", tag = "operations", security(()),
    responses((status = 200, description = "The metrics", body = String, content_type = "text/plain")))]
pub async fn metrics(State(state): State<Arc<AdminState>>) -> impl IntoResponse {
    let body = state
        .data_path
        .metrics
        .render(state.data_path.router.cached_entries().await);
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        body,
    )
}

/// Re-read the config file and swap in its pools
#[utoipa::path(post, path = "/reload", operation_id = "reload", tag = "operations",
    responses(
        (status = 200, description = "The pools now in place", body = crate::reload::Reloaded),
        (status = 400, description = "The config file is invalid: nothing changed", body = ErrorBody),
    ))]
pub async fn reload(
    State(state): State<Arc<AdminState>>,
) -> Result<Json<crate::reload::Reloaded>, ApiError> {
    state
        .reloader
        .reload()
        .await
        .map(Json)
        .map_err(|errors| ApiError::BadRequest(format!("config not reloaded: {errors}")))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ResolveQuery {
    /// A `Host` header value, as a client would send it.
    host: String,
}

/// What the data path would do with a request for `host`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Explanation {
    host: String,
    normalized: Option<String>,
    /// forward | suspended | not_found | redirect | bad_request
    #[schema(value_type = String)]
    action: &'static str,
    /// The status the data path would answer with (200: forwarded).
    status: u16,
    reason: Option<String>,
    #[schema(value_type = Option<crate::tenant::Tenant>)]
    tenant: Option<Value>,
    matched_domain: Option<String>,
    pool: Option<String>,
    backends: Vec<String>,
    /// The tenant headers the backend would get.
    #[schema(value_type = std::collections::BTreeMap<String, String>)]
    headers: serde_json::Map<String, Value>,
    location: Option<String>,
}

/// Explain what the data path would do with a request for a host
#[utoipa::path(get, path = "/resolve", operation_id = "resolve", tag = "operations",
    params(ResolveQuery),
    responses(
        (status = 200, description = "The decision, and why", body = Explanation),
        (status = 503, description = "The store is unreachable", body = ErrorBody),
    ))]
pub async fn resolve(
    State(state): State<Arc<AdminState>>,
    ApiQuery(query): ApiQuery<ResolveQuery>,
) -> Result<Json<Explanation>, ApiError> {
    let dp = &state.data_path;
    let mut out = Explanation {
        host: query.host.clone(),
        normalized: None,
        action: "bad_request",
        status: 400,
        reason: None,
        tenant: None,
        matched_domain: None,
        pool: None,
        backends: Vec::new(),
        headers: serde_json::Map::new(),
        location: None,
    };
    let host = match dp.router.normalize(query.host.as_bytes()) {
        Ok(host) => host,
        Err(e) => {
            out.reason = Some(e.to_string());
            return Ok(Json(out));
        }
    };
    out.normalized = Some(host.as_str().to_owned());
    let resolution = dp
        .router
        .resolve(host.as_str())
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    match dp.policy.decide(&resolution) {
        Decision::Forward(t) => {
            out.action = "forward";
            out.status = 200;
            let pools = dp.pools.load();
            match pools.resolve(t.tenant.pool.as_deref(), t.tenant.plan.as_deref()) {
                Some(pool) => {
                    out.backends = pool.backends.iter().map(|b| b.name.clone()).collect();
                    out.pool = Some(pool.name.clone());
                }
                None => {
                    let missing = t.tenant.pool.as_deref();
                    out.pool = Some(missing.unwrap_or(crate::upstream::DEFAULT_POOL).to_owned());
                }
            }
            let mut headers = http::HeaderMap::new();
            crate::proxy::headers::inject_tenant(&mut headers, &dp.names, &t);
            for (name, value) in &headers {
                out.headers.insert(
                    name.to_string(),
                    Value::String(value.to_str().unwrap_or_default().to_owned()),
                );
            }
            out.matched_domain = Some(t.matched_domain.clone()).filter(|d| !d.is_empty());
            out.tenant = serde_json::to_value(&t.tenant).ok();
        }
        Decision::Suspended { tenant, status } => {
            out.action = "suspended";
            out.status = status.as_u16();
            out.matched_domain = Some(tenant.matched_domain.clone());
            out.tenant = serde_json::to_value(&tenant.tenant).ok();
        }
        Decision::NotFound => {
            out.action = "not_found";
            out.status = 404;
        }
        Decision::Redirect(location) => {
            out.action = "redirect";
            out.status = 302;
            out.location = Some(location);
        }
    }
    Ok(Json(out))
}
