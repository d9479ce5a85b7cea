//! A tenant's own traffic controls (limits, maintenance) as both stores keep
//! them: one JSON text each, `NULL` when unset, so a new control needs no
//! new column. The SQLite store keeps them on the tenant row, the
//! PostgreSQL store in `gateway_tenant_controls` beside any layout's tenant
//! table (django-tenants' own table cannot take columns of ours).

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::StoreError;
use crate::tenant::{Maintenance, Tenant, TenantLimits, TenantPatch};

/// The stored text of a control; `None` (and empty limits) is `NULL`.
pub(crate) fn encode<T: Serialize>(value: Option<&T>) -> Result<Option<String>, StoreError> {
    value
        .map(|v| serde_json::to_string(v))
        .transpose()
        .map_err(|e| StoreError::Backend(format!("cannot encode tenant controls: {e}")))
}

/// A control read back; text this gateway cannot read is an error naming it.
pub(crate) fn decode<T: DeserializeOwned>(
    what: &str,
    text: Option<String>,
) -> Result<Option<T>, String> {
    text.map(|t| serde_json::from_str(&t).map_err(|e| format!("bad {what} '{t}': {e}")))
        .transpose()
}

/// The controls a tenant has after `patch`: `(limits, maintenance)` as stored.
pub(crate) fn patched(
    current: &Tenant,
    patch: &TenantPatch,
) -> Result<(Option<String>, Option<String>), StoreError> {
    let limits: Option<&TenantLimits> = match &patch.limits {
        Some(new) => new.as_ref(),
        None => current.limits.as_ref(),
    };
    let maintenance: Option<&Maintenance> = match &patch.maintenance {
        Some(new) => new.as_ref(),
        None => current.maintenance.as_ref(),
    };
    Ok((
        encode(limits.filter(|l| !l.is_empty()))?,
        encode(maintenance)?,
    ))
}

/// Whether `patch` changes the controls at all.
pub(crate) fn touches(patch: &TenantPatch) -> bool {
    patch.limits.is_some() || patch.maintenance.is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn controls_survive_the_round_trip_and_empty_limits_are_none() {
        let tenant = Tenant::example("acme");
        let patch = TenantPatch {
            limits: Some(Some(TenantLimits {
                rate: Some("50/s".parse().unwrap()),
                burst: Some(10),
                concurrency: None,
            })),
            maintenance: Some(Some(Maintenance {
                hold: Some(Duration::from_secs(10)),
                since: "2026-12-07T19:00:00Z".into(),
            })),
            ..TenantPatch::default()
        };
        let (limits, maintenance) = patched(&tenant, &patch).unwrap();
        let limits: Option<TenantLimits> = decode("limits", limits).unwrap();
        assert_eq!(limits, patch.limits.clone().unwrap());
        let maintenance: Option<Maintenance> = decode("maintenance", maintenance).unwrap();
        assert_eq!(maintenance, patch.maintenance.clone().unwrap());

        let empty = TenantPatch {
            limits: Some(Some(TenantLimits::default())),
            ..TenantPatch::default()
        };
        assert_eq!(patched(&tenant, &empty).unwrap(), (None, None));
        let err = decode::<TenantLimits>("limits", Some("{\"rate\":\"x\"}".into())).unwrap_err();
        assert!(err.contains("bad limits"), "{err}");
    }
}
