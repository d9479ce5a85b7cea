//! Data path: per-tenant traffic controls applied after the decide phase,
//! each reading the routed tenant's own settings (`tenant::controls`) and
//! keeping its per-replica state here, apart from routing and forwarding.

pub mod maintenance;
