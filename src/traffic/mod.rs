//! Per-tenant traffic controls of the data path (like `routing/`, it knows
//! tenants but not the control plane): state that each request touches on
//! its way through `proxy/`.

pub mod usage;
