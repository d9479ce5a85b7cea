//! Data path: per-tenant traffic controls applied after the decide phase,
//! each reading the routed tenant's own settings (`tenant::controls`) and
//! keeping its per-replica state here, apart from routing and forwarding:
//! maintenance holds, rate limits with concurrency caps, and usage metering
//! (what each finished request adds to its tenant's hour, for billing).

pub mod limits;
pub mod maintenance;
pub mod usage;
