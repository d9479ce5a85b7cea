//! A tenant's own traffic controls through the API: `limits` in
//! `PATCH /v1/tenants/{id}` (read here), and
//! `POST /v1/tenants/{id}/maintenance` to switch maintenance on and off.
//! Like every change, the local router forgets the tenant's routes at once;
//! other replicas hear of it through the change feed.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use utoipa::ToSchema;

use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiPath};
use super::AdminState;
use crate::tenant::controls::MAX_HOLD;
use crate::tenant::{Maintenance, TenantLimits, TenantPatch, TenantRecord};

/// `limits` of a tenant update: an object, or `null` to clear; a bad field
/// is a 400 naming it (`limits.rate: invalid rate '5'…`).
pub(super) fn read_limits(value: serde_json::Value) -> Result<Option<TenantLimits>, ApiError> {
    if value.is_null() {
        return Ok(None);
    }
    let limits: TenantLimits = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let at = if path == "." {
            "limits".to_owned()
        } else {
            format!("limits.{path}")
        };
        ApiError::BadRequest(format!("{at}: {}", e.inner()))
    })?;
    if limits.burst == Some(0) || limits.concurrency == Some(0) {
        return Err(ApiError::BadRequest(
            "limits: burst and concurrency must be at least 1".into(),
        ));
    }
    Ok(Some(limits).filter(|l| !l.is_empty()))
}

/// Switch maintenance on or off.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetMaintenance {
    /// `true` puts the tenant under maintenance, `false` ends it.
    enabled: bool,
    /// With `enabled`: how long a request waits for maintenance to end
    /// before its 503 (at most 1h); without, requests get 503 at once.
    #[serde(default, with = "humantime_serde")]
    #[schema(value_type = Option<String>, example = "10s")]
    hold: Option<Duration>,
}

/// Put a tenant under maintenance, or end it
///
/// While on, the tenant's requests get `503` with `Retry-After` and a small
/// page, or with `hold` wait up to that long and are released in arrival
/// order when maintenance ends. Every replica sees the switch through the
/// change feed.
#[utoipa::path(post, path = "/tenants/{id}/maintenance", operation_id = "set_maintenance", tag = "tenants",
    params(("id" = String, Path, description = "The tenant's id")),
    request_body = SetMaintenance,
    responses(
        (status = 200, description = "The tenant as changed", body = TenantRecord),
        (status = 404, description = "No such tenant", body = ErrorBody),
        (status = 503, description = "The store is unreachable", body = ErrorBody),
    ))]
pub async fn maintenance(
    State(state): State<Arc<AdminState>>,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<SetMaintenance>,
) -> Result<Json<TenantRecord>, ApiError> {
    let maintenance = match (req.enabled, req.hold) {
        (false, Some(_)) => {
            return Err(ApiError::BadRequest(
                "hold: only with \"enabled\": true".into(),
            ))
        }
        (true, Some(hold)) if hold > MAX_HOLD => {
            return Err(ApiError::BadRequest(
                "hold: at most 1h (held requests keep their connections open)".into(),
            ))
        }
        (true, hold) => Some(Maintenance::starting_now(hold)),
        (false, None) => None,
    };
    let patch = TenantPatch {
        maintenance: Some(maintenance),
        ..TenantPatch::default()
    };
    let record = state.store.update_tenant(&id, patch).await?;
    state
        .data_path
        .router
        .invalidate_domains(&record.domains)
        .await;
    tracing::info!(tenant = %id, enabled = req.enabled, hold = ?req.hold, "tenant maintenance switched");
    Ok(Json(record))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_limits_name_their_field() {
        let err = |v: serde_json::Value| read_limits(v).unwrap_err().to_string();
        let e = err(serde_json::json!({"rate": "fast"}));
        assert!(e.starts_with("limits.rate: invalid rate 'fast'"), "{e}");
        let e = err(serde_json::json!({"rat": "5/s"}));
        assert!(e.starts_with("limits") && e.contains("rat"), "{e}");
        let e = err(serde_json::json!({"burst": 0}));
        assert!(e.contains("burst"), "{e}");
        assert_eq!(read_limits(serde_json::Value::Null).unwrap(), None);
        assert_eq!(read_limits(serde_json::json!({})).unwrap(), None);
        let limits = read_limits(serde_json::json!({"rate": "50/s", "burst": 80})).unwrap();
        assert_eq!(limits.unwrap().burst, Some(80));
    }
}
