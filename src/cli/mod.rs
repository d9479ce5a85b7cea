//! Subcommands beyond `serve` and `check-config`.

mod controls;
pub mod domains;
mod import;
mod migrate;
mod progress;
mod store;
pub mod tenants;

pub use crate::ConfigArgs;
