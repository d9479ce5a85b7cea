//! Per-tenant request counters (opt-in): a series per tenant up to a limit,
//! the rest counted together as `_other`, so a tenant count in the millions
//! cannot blow up the metrics.

use std::collections::HashMap;
use std::sync::RwLock;

use prometheus::{IntCounter, IntCounterVec};

/// Where tenants past the limit are counted.
const OTHER_TENANT: &str = "_other";

/// Per-tenant request counters, at most `limit` tenants plus `_other`.
pub(super) struct TenantSeries {
    vec: IntCounterVec,
    limit: usize,
    admitted: RwLock<HashMap<String, IntCounter>>,
    other: IntCounter,
}

impl TenantSeries {
    pub(super) fn new(vec: IntCounterVec, limit: usize) -> TenantSeries {
        TenantSeries {
            other: vec.with_label_values(&[OTHER_TENANT]),
            vec,
            limit,
            admitted: RwLock::new(HashMap::new()),
        }
    }

    pub(super) fn inc(&self, tenant: &str) {
        if let Some(c) = self
            .admitted
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(tenant)
        {
            c.inc();
            return;
        }
        let mut admitted = self.admitted.write().unwrap_or_else(|p| p.into_inner());
        if admitted.len() < self.limit {
            let c = admitted
                .entry(tenant.to_owned())
                .or_insert_with(|| self.vec.with_label_values(&[tenant]));
            c.inc();
        } else {
            self.other.inc();
        }
    }
}
