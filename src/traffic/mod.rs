//! Per-tenant traffic controls of the data path: the state each replica
//! keeps per tenant to hold it to its limits. Like `routing/`, it sits on the
//! data path's side and never imports the control plane; `proxy/` calls it
//! once per request, after the tenant is decided.

pub mod limits;
