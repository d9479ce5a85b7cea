//! A resolved route as the data path uses it: the tenant with its header
//! values built once, and what a host resolves to.

use std::sync::Arc;

use http::HeaderValue;

use crate::tenant::{Isolation, Tenant};
use crate::upstream::PoolSlot;

/// A tenant as the data path needs it, with its header values built once
/// when the cache is filled rather than on every request.
#[derive(Debug)]
pub struct RoutedTenant {
    pub tenant: Tenant,
    /// The domain entry that matched (the host itself or its wildcard).
    pub matched_domain: String,
    pub id_value: HeaderValue,
    /// `X-Tenant-Schema` for schema and database isolation.
    pub schema_value: Option<HeaderValue>,
    /// `X-Tenant-Database` for database isolation.
    pub database_value: Option<HeaderValue>,
    /// `X-Tenant-Cache-Prefix` for cache isolation.
    pub cache_prefix_value: Option<HeaderValue>,
    /// `X-Tenant-Cluster` for tenants placed on a named cluster.
    pub cluster_value: Option<HeaderValue>,
    /// The tenant's pool as last resolved (see `Pools::for_tenant`).
    pub pool_slot: PoolSlot,
}

impl RoutedTenant {
    pub fn new(tenant: Tenant, matched_domain: String) -> RoutedTenant {
        // Ids and schemas are validated ASCII, so these conversions cannot fail;
        // a store holding something else still must not panic the data path.
        let value = |s: &str| {
            HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
        };
        let schema_value = matches!(tenant.isolation, Isolation::Schema | Isolation::Database)
            .then(|| value(&tenant.schema));
        let database_value =
            (tenant.isolation == Isolation::Database).then(|| value(&tenant.schema));
        let cache_prefix_value =
            (tenant.isolation == Isolation::Cache).then(|| value(&format!("{}:", tenant.id)));
        let cluster_value = tenant.cluster.as_deref().map(value);
        RoutedTenant {
            id_value: value(&tenant.id),
            cluster_value,
            schema_value,
            database_value,
            cache_prefix_value,
            pool_slot: PoolSlot::default(),
            tenant,
            matched_domain,
        }
    }
}

/// What a host resolves to.
#[derive(Debug, Clone)]
pub enum Resolution {
    Tenant(Arc<RoutedTenant>),
    Unknown,
}
