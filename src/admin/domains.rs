//! `/v1/tenants/{id}/domains` and `/v1/domains/{domain}`: route a domain to a
//! tenant, or stop routing it (effective on the very next request).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;

use super::error::ApiError;
use super::extract::ApiJson;
use super::AdminState;
use crate::tenant::Domain;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddDomain {
    domain: String,
    #[serde(default)]
    primary: bool,
}

pub async fn add(
    State(state): State<Arc<AdminState>>,
    Path(tenant_id): Path<String>,
    ApiJson(req): ApiJson<AddDomain>,
) -> Result<(StatusCode, Json<Domain>), ApiError> {
    let domain = state.rules().normalize_domain(&req.domain)?;
    let added = state
        .store
        .add_domain(&tenant_id, domain, req.primary)
        .await?;
    state
        .data_path
        .router
        .invalidate_domain(&added.domain)
        .await;
    tracing::info!(tenant = %tenant_id, domain = %added.domain, "domain added");
    Ok((StatusCode::CREATED, Json(added)))
}

pub async fn remove(
    State(state): State<Arc<AdminState>>,
    Path(domain): Path<String>,
) -> Result<StatusCode, ApiError> {
    let domain = state.rules().normalize_domain(&domain)?;
    let removed = state.store.remove_domain(&domain).await?;
    state
        .data_path
        .router
        .invalidate_domain(&removed.domain)
        .await;
    tracing::info!(tenant = %removed.tenant_id, domain = %removed.domain, "domain removed");
    Ok(StatusCode::NO_CONTENT)
}
