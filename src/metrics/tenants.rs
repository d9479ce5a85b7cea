//! Per-tenant request and error counters (opt-in): a series per tenant up to
//! a limit, the rest counted together as `_other`, so a tenant count in the
//! millions cannot blow up the metrics. Both counters admit the same tenants.

use std::collections::HashMap;
use std::sync::RwLock;

use prometheus::{IntCounter, IntCounterVec};

/// Where tenants past the limit are counted.
const OTHER_TENANT: &str = "_other";

/// One tenant's series: its requests, and those answered with a 5xx.
struct TenantCounters {
    requests: IntCounter,
    errors: IntCounter,
}

impl TenantCounters {
    fn new(requests: &IntCounterVec, errors: &IntCounterVec, tenant: &str) -> TenantCounters {
        TenantCounters {
            requests: requests.with_label_values(&[tenant]),
            errors: errors.with_label_values(&[tenant]),
        }
    }

    fn inc(&self, error: bool) {
        self.requests.inc();
        if error {
            self.errors.inc();
        }
    }
}

/// Per-tenant counters, at most `limit` tenants plus `_other`.
pub(super) struct TenantSeries {
    requests: IntCounterVec,
    errors: IntCounterVec,
    limit: usize,
    admitted: RwLock<HashMap<String, TenantCounters>>,
    other: TenantCounters,
}

impl TenantSeries {
    pub(super) fn new(
        requests: IntCounterVec,
        errors: IntCounterVec,
        limit: usize,
    ) -> TenantSeries {
        TenantSeries {
            other: TenantCounters::new(&requests, &errors, OTHER_TENANT),
            requests,
            errors,
            limit,
            admitted: RwLock::new(HashMap::new()),
        }
    }

    /// Counts a request of `tenant`, and an error too when `error`.
    pub(super) fn inc(&self, tenant: &str, error: bool) {
        if let Some(c) = self
            .admitted
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(tenant)
        {
            c.inc(error);
            return;
        }
        let mut admitted = self.admitted.write().unwrap_or_else(|p| p.into_inner());
        if admitted.len() < self.limit {
            admitted
                .entry(tenant.to_owned())
                .or_insert_with(|| TenantCounters::new(&self.requests, &self.errors, tenant))
                .inc(error);
        } else {
            self.other.inc(error);
        }
    }
}
