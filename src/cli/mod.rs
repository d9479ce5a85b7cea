//! Subcommands beyond `serve` and `check-config`.

pub mod tenants;

pub use crate::ConfigArgs;
