//! Subcommands beyond `serve` and `check-config`.

pub mod domains;
mod migrate;
mod store;
pub mod tenants;

pub use crate::ConfigArgs;
