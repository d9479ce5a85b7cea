//! tenant-gateway: a reverse proxy that resolves the tenant from the Host header,
//! injects trusted tenant headers and forwards to backend pools.
//!
//! The data path (`proxy`, `routing`, `upstream`) never imports the control plane
//! (`admin`); both reach tenants through the [`store::Store`] trait and the
//! [`routing::Router`] (look up, invalidate).

pub mod admin;
pub mod clock;
pub mod config;
pub mod metrics;
pub mod provision;
pub mod proxy;
pub mod reload;
pub mod routing;
pub mod server;
pub mod store;
pub mod tenant;
pub mod tls;
pub mod traffic;
pub mod upstream;
