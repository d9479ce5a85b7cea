//! A domain's certificate state as the admin API shows it: `none`,
//! `pending` (an order runs on this replica), `valid` (with `not_after`) or
//! `failed` (with why).

use serde::Serialize;

use crate::store::StoredCert;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CertState {
    None,
    Pending,
    Valid,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct CertStatus {
    pub state: CertState,
    /// Expiry of the certificate held (RFC 3339), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_after: Option<String>,
    /// Why the last order failed (for a valid certificate: its last renewal).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl CertStatus {
    pub fn pending() -> CertStatus {
        CertStatus {
            state: CertState::Pending,
            not_after: None,
            error: None,
        }
    }
}

fn rfc3339(unix: i64) -> Option<String> {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()?
        .format(&time::format_description::well_known::Rfc3339)
        .ok()
}

/// The state from whether an order runs here and the stored row, at `now`.
pub fn describe(pending: bool, row: Option<&StoredCert>, now: i64) -> CertStatus {
    let held = row.filter(|r| r.pem().is_some()).and_then(|r| r.not_after);
    let failure = row.and_then(|r| r.failure.clone());
    let not_after = held.and_then(rfc3339);
    let (state, error) = match held {
        _ if pending => (CertState::Pending, failure),
        Some(expiry) if expiry > now => (CertState::Valid, failure),
        Some(_) => (
            CertState::Failed,
            Some(failure.unwrap_or_else(|| "the certificate has expired".into())),
        ),
        None if failure.is_some() => (CertState::Failed, failure),
        None => (CertState::None, None),
    };
    CertStatus {
        state,
        not_after,
        error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(pem: bool, not_after: Option<i64>, failure: Option<&str>) -> StoredCert {
        StoredCert {
            domain: "a.test".into(),
            cert_pem: pem.then(|| "C".into()),
            key_pem: pem.then(|| "K".into()),
            not_after,
            failure: failure.map(Into::into),
            updated_at: 0,
        }
    }

    #[test]
    fn states_follow_the_order_and_the_stored_row() {
        assert_eq!(describe(false, None, 100).state, CertState::None);
        assert_eq!(describe(true, None, 100).state, CertState::Pending);
        let valid = describe(false, Some(&row(true, Some(0), None)), -5);
        assert_eq!(valid.state, CertState::Valid);
        assert_eq!(valid.not_after.as_deref(), Some("1970-01-01T00:00:00Z"));
        let failed = describe(false, Some(&row(false, None, Some("rate limited"))), 100);
        assert_eq!(
            (failed.state, failed.error.as_deref()),
            (CertState::Failed, Some("rate limited"))
        );
        let renewal_failed = describe(false, Some(&row(true, Some(200), Some("timeout"))), 100);
        assert_eq!(renewal_failed.state, CertState::Valid);
        assert_eq!(renewal_failed.error.as_deref(), Some("timeout"));
        let expired = describe(false, Some(&row(true, Some(50), None)), 100);
        assert_eq!(expired.state, CertState::Failed);
    }
}
