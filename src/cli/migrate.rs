//! `tenants migrate ID` and `tenants migrate-all [--parallel N]`, with a
//! progress bar on a terminal (a line per tenant otherwise); with
//! `--maintenance [--hold 5s]` each tenant is under maintenance while its
//! own migrations run (`provision::hold`).

use std::time::{Duration, Instant};

use anyhow::anyhow;
use clap::Args;
use tenant_gateway::provision::hold::MaintenanceWindow;
use tenant_gateway::store::OpenMode;

use super::progress::Shown;
use super::store::{provision_error, store_error, with_store};
use super::ConfigArgs;

/// `--maintenance [--hold D]` of both commands.
#[derive(Args)]
pub struct MaintenanceFlags {
    /// Put each tenant with migrations to apply under maintenance while its
    /// own migrations run: its requests wait (`--hold`), then go on.
    #[arg(long)]
    maintenance: bool,
    /// How long requests wait, e.g. `5s` (default
    /// `provisioning.maintenance_hold`; `0s` answers 503 at once).
    #[arg(long, requires = "maintenance", value_parser = super::controls::duration)]
    hold: Option<Duration>,
}

impl MaintenanceFlags {
    /// The window asked for; running gateways see its switches through
    /// the change feed.
    fn window(&self, s: &super::store::Opened) -> anyhow::Result<Option<MaintenanceWindow>> {
        if !self.maintenance {
            return Ok(None);
        }
        let provisioner = s.provisioner("--maintenance")?;
        Ok(Some(provisioner.maintenance_window(
            s.store.clone(),
            self.hold,
            None,
        )))
    }
}

pub fn one(config: &ConfigArgs, id: String, flags: MaintenanceFlags) -> anyhow::Result<()> {
    with_store(config, OpenMode::Existing, |s| async move {
        let provisioner = s.provisioner("migrate")?;
        let window = flags.window(&s)?;
        let record = s.store.get_tenant(&id).await.map_err(store_error)?;
        let record = record.ok_or_else(|| anyhow!("Tenant with ID '{id}' does not exist"))?;
        let applied = provisioner
            .migrate_in(&record.tenant, window.as_ref())
            .await
            .map_err(provision_error)?;
        if applied.is_empty() {
            println!("Tenant '{id}' is up to date");
        } else {
            println!("Tenant '{id}': applied {}", applied.join(", "));
        }
        Ok(())
    })
}

pub fn all(
    config: &ConfigArgs,
    parallel: Option<usize>,
    flags: MaintenanceFlags,
) -> anyhow::Result<()> {
    with_store(config, OpenMode::Existing, |s| async move {
        let provisioner = s.provisioner("migrate-all")?.clone();
        let window = flags.window(&s)?;
        let parallel = parallel.unwrap_or(s.config.provisioning.migrate_parallel);
        let started = Instant::now();
        let shown = Shown::new("tenants");
        let reporter = shown.clone();
        let results = provisioner
            .migrate_all(s.store.as_ref(), parallel, window, move |p| {
                reporter.update(p)
            })
            .await
            .map_err(provision_error)?;
        shown.finish();
        let mut failed = 0;
        let mut migrated = 0;
        for r in &results {
            match &r.error {
                Some(e) => {
                    failed += 1;
                    eprintln!("tenant {}: FAILED: {e}", r.tenant);
                }
                None if !r.applied.is_empty() => {
                    migrated += 1;
                    println!("tenant {}: applied {}", r.tenant, r.applied.join(", "));
                }
                None => {}
            }
        }
        println!(
            "{} tenant(s): {migrated} migrated, {} up to date, {failed} failed, in {:.1} s",
            results.len(),
            results.len() - migrated - failed,
            started.elapsed().as_secs_f64()
        );
        if failed > 0 {
            anyhow::bail!(
                "{failed} tenant(s) failed; fix them and run migrate-all again to resume"
            );
        }
        Ok(())
    })
}
