//! `/v1/tenants/{id}/domains` and `/v1/domains/{domain}`: route a domain to a
//! tenant (optionally ordering its certificate at once), show a domain with
//! its certificate state, or stop routing it (effective on the very next
//! request).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiPath};
use super::AdminState;
use crate::tenant::Domain;
use crate::tls::acme::status::{CertState, CertStatus};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddDomain {
    #[schema(value_type = crate::tenant::spec::DomainName)]
    domain: String,
    #[serde(default)]
    primary: bool,
    /// `"issue"`: order the domain's certificate now, not on its first handshake.
    #[serde(default)]
    tls: Option<TlsRequest>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TlsRequest {
    Issue,
}

/// A domain and the state of its ACME certificate.
#[derive(Debug, Serialize, ToSchema)]
pub struct DomainView {
    #[serde(flatten)]
    domain: Domain,
    #[serde(skip_serializing_if = "Option::is_none")]
    certificate: Option<CertStatus>,
}

/// Route a domain to a tenant
#[utoipa::path(post, path = "/tenants/{id}/domains", operation_id = "add_domain", tag = "domains",
    params(("id" = String, Path, description = "The tenant's id")),
    request_body = AddDomain,
    responses(
        (status = 201, description = "Routed (with the certificate ordered, if asked)", body = DomainView, links(
            ("show" = (operation_id = "show_domain", parameters(("domain" = "$response.body#/domain")))),
            ("remove" = (operation_id = "remove_domain", parameters(("domain" = "$response.body#/domain")))),
        )),
        (status = 404, description = "No such tenant", body = ErrorBody),
        (status = 409, description = "The domain is routed already", body = ErrorBody),
        (status = 503, description = "The store is unreachable", body = ErrorBody),
    ))]
pub async fn add(
    State(state): State<Arc<AdminState>>,
    ApiPath(tenant_id): ApiPath<String>,
    ApiJson(req): ApiJson<AddDomain>,
) -> Result<(StatusCode, Json<DomainView>), ApiError> {
    let domain = state.rules().normalize_domain(&req.domain)?;
    // Refused before anything is written: the caller asked for a certificate.
    let acme = match req.tls {
        Some(TlsRequest::Issue) => Some(state.acme.as_ref().ok_or_else(|| {
            ApiError::BadRequest("\"tls\": \"issue\" needs tls.acme in the config".into())
        })?),
        None => None,
    };
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
    // The domain is added either way; a refusal (e.g. a suspended tenant)
    // shows as a failed certificate rather than failing the request.
    let certificate = match acme {
        Some(acme) => Some(match acme.issue(&added.domain).await {
            Ok(status) => status,
            Err(refusal) => CertStatus {
                state: CertState::Failed,
                not_after: None,
                error: Some(refusal.to_string()),
            },
        }),
        None => None,
    };
    Ok((
        StatusCode::CREATED,
        Json(DomainView {
            domain: added,
            certificate,
        }),
    ))
}

/// Show a domain, its tenant and its certificate state
#[utoipa::path(get, path = "/domains/{domain}", operation_id = "show_domain", tag = "domains",
    params(("domain" = String, Path, description = "The domain name")),
    responses(
        (status = 200, description = "The domain", body = DomainView),
        (status = 404, description = "No such domain", body = ErrorBody),
        (status = 503, description = "The store is unreachable", body = ErrorBody),
    ))]
pub async fn show(
    State(state): State<Arc<AdminState>>,
    ApiPath(domain): ApiPath<String>,
) -> Result<Json<DomainView>, ApiError> {
    let domain = state.rules().normalize_domain(&domain)?;
    let not_found = || ApiError::NotFound(format!("domain '{domain}' not found"));
    let matched = state
        .store
        .resolve_host(&domain)
        .await?
        .filter(|m| m.domain == domain)
        .ok_or_else(not_found)?;
    let is_primary = state
        .store
        .get_tenant(&matched.tenant.id)
        .await?
        .and_then(|record| record.domains.into_iter().find(|d| d.domain == domain))
        .ok_or_else(not_found)?
        .is_primary;
    let certificate = match &state.acme {
        Some(acme) => acme.status(&domain).await?,
        None => CertStatus {
            state: CertState::None,
            not_after: None,
            error: None,
        },
    };
    Ok(Json(DomainView {
        domain: Domain {
            domain,
            tenant_id: matched.tenant.id,
            is_primary,
        },
        certificate: Some(certificate),
    }))
}

/// Stop routing a domain (from the very next request)
#[utoipa::path(delete, path = "/domains/{domain}", operation_id = "remove_domain", tag = "domains",
    params(("domain" = String, Path, description = "The domain name")),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "No such domain", body = ErrorBody),
        (status = 503, description = "The store is unreachable", body = ErrorBody),
    ))]
pub async fn remove(
    State(state): State<Arc<AdminState>>,
    ApiPath(domain): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let domain = state.rules().normalize_domain(&domain)?;
    let removed = state.store.remove_domain(&domain).await?;
    state
        .data_path
        .router
        .invalidate_domain(&removed.domain)
        .await;
    if let Some(acme) = &state.acme {
        acme.forget(&removed.domain);
    }
    tracing::info!(tenant = %removed.tenant_id, domain = %removed.domain, "domain removed");
    Ok(StatusCode::NO_CONTENT)
}
