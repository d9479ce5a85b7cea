//! Per-tenant request, error and limited counters (opt-in): a series per
//! tenant up to a limit, the rest counted together as `_other`, so a tenant
//! count in the millions cannot blow up the metrics. All counters admit the
//! same tenants.

use std::collections::HashMap;
use std::sync::RwLock;

use prometheus::{IntCounter, IntCounterVec};

/// Where tenants past the limit are counted.
const OTHER_TENANT: &str = "_other";

/// One tenant's series: its requests, those answered with a 5xx, and those
/// its limits refused.
struct TenantCounters {
    requests: IntCounter,
    errors: IntCounter,
    limited: IntCounter,
}

impl TenantCounters {
    fn new(vecs: &[IntCounterVec; 3], tenant: &str) -> TenantCounters {
        TenantCounters {
            requests: vecs[0].with_label_values(&[tenant]),
            errors: vecs[1].with_label_values(&[tenant]),
            limited: vecs[2].with_label_values(&[tenant]),
        }
    }

    fn inc(&self, error: bool, limited: bool) {
        self.requests.inc();
        if error {
            self.errors.inc();
        }
        if limited {
            self.limited.inc();
        }
    }
}

/// Per-tenant counters, at most `limit` tenants plus `_other`.
pub(super) struct TenantSeries {
    /// Requests, errors, limited requests.
    vecs: [IntCounterVec; 3],
    limit: usize,
    admitted: RwLock<HashMap<String, TenantCounters>>,
    other: TenantCounters,
}

impl TenantSeries {
    /// `vecs`: the requests, errors and limited requests families.
    pub(super) fn new(vecs: [IntCounterVec; 3], limit: usize) -> TenantSeries {
        TenantSeries {
            other: TenantCounters::new(&vecs, OTHER_TENANT),
            vecs,
            limit,
            admitted: RwLock::new(HashMap::new()),
        }
    }

    /// Counts a request of `tenant`, an error too when `error`, and a
    /// refusal by its limits when `limited`.
    pub(super) fn inc(&self, tenant: &str, error: bool, limited: bool) {
        if let Some(c) = self
            .admitted
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(tenant)
        {
            c.inc(error, limited);
            return;
        }
        let mut admitted = self.admitted.write().unwrap_or_else(|p| p.into_inner());
        if admitted.len() < self.limit {
            admitted
                .entry(tenant.to_owned())
                .or_insert_with(|| TenantCounters::new(&self.vecs, tenant))
                .inc(error, limited);
        } else {
            self.other.inc(error, limited);
        }
    }
}
