//! Subcommands beyond `serve` and `check-config`.

pub mod domains;
mod migrate;
mod progress;
mod store;
pub mod tenants;
mod usage;

pub use crate::ConfigArgs;
