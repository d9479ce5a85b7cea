//! `tenants limit ID --rate 50/s [--burst N] [--concurrency N] [--clear]`
//! and `tenants maintenance ID on|off [--hold 10s]`: a tenant's own traffic
//! controls, written to the configured store; running gateways see them
//! through the change feed.

use std::time::Duration;

use anyhow::anyhow;
use clap::{Args, ValueEnum};
use tenant_gateway::tenant::controls::MAX_HOLD;
use tenant_gateway::tenant::{Maintenance, Rate, TenantLimits, TenantPatch};

use super::store::patch_tenant;
use super::ConfigArgs;

#[derive(Args)]
pub struct LimitArgs {
    id: String,
    /// Requests per period, e.g. `50/s`, `600/m`, `3600/h`.
    #[arg(long, value_parser = rate)]
    rate: Option<Rate>,
    /// Requests admitted at once above the rate (the bucket's size).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    burst: Option<u32>,
    /// Requests in flight at once.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    concurrency: Option<u32>,
    /// Remove the tenant's own limits (its plan's apply again).
    #[arg(long, conflicts_with_all = ["rate", "burst", "concurrency"])]
    clear: bool,
    #[command(flatten)]
    config: ConfigArgs,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Switch {
    On,
    Off,
}

#[derive(Args)]
pub struct MaintenanceArgs {
    id: String,
    #[arg(value_enum)]
    switch: Switch,
    /// With `on`: how long requests wait for maintenance to end before
    /// their 503 (e.g. `10s`); without, they get 503 at once.
    #[arg(long, value_parser = duration)]
    hold: Option<Duration>,
    #[command(flatten)]
    config: ConfigArgs,
}

fn rate(text: &str) -> Result<Rate, String> {
    text.parse()
}

/// A hold such as `10s` or `1m30s`, at most [`MAX_HOLD`].
pub fn duration(text: &str) -> Result<Duration, String> {
    let d = humantime_serde::re::humantime::parse_duration(text).map_err(|e| e.to_string())?;
    if d > MAX_HOLD {
        return Err("at most 1h (held requests keep their connections open)".into());
    }
    Ok(d)
}

pub fn limit(args: LimitArgs) -> anyhow::Result<()> {
    let limits = TenantLimits {
        rate: args.rate,
        burst: args.burst,
        concurrency: args.concurrency,
    };
    if !args.clear && limits.is_empty() {
        anyhow::bail!("give --rate, --burst or --concurrency (or --clear)");
    }
    let id = args.id;
    let patch = TenantPatch {
        limits: Some((!args.clear).then_some(limits)),
        ..TenantPatch::default()
    };
    let record = patch_tenant(&args.config, &id, patch)?;
    match &record.tenant.limits {
        Some(limits) => println!("Tenant '{id}' limits: {}", serde_json::to_string(limits)?),
        None => println!("Tenant '{id}' has no limits of its own"),
    }
    Ok(())
}

pub fn maintenance(args: MaintenanceArgs) -> anyhow::Result<()> {
    let maintenance = match (args.switch, args.hold) {
        (Switch::Off, Some(_)) => return Err(anyhow!("--hold goes with `on`")),
        (Switch::Off, None) => None,
        (Switch::On, hold) => Some(Maintenance::starting_now(hold)),
    };
    let id = args.id;
    let patch = TenantPatch {
        maintenance: Some(maintenance),
        ..TenantPatch::default()
    };
    let record = patch_tenant(&args.config, &id, patch)?;
    match &record.tenant.maintenance {
        Some(Maintenance {
            hold: Some(hold), ..
        }) => println!(
            "Tenant '{id}' is under maintenance: requests wait up to {}",
            humantime_serde::re::humantime::format_duration(*hold)
        ),
        Some(_) => println!("Tenant '{id}' is under maintenance: requests get 503"),
        None => println!("Tenant '{id}' is out of maintenance"),
    }
    Ok(())
}
