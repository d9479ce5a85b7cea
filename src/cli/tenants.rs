//! `tenant-gateway tenants …`: work on the configured store directly, with
//! no gateway running. A running gateway sees the changes once its cache
//! entries expire (unknown hosts after `cache.negative_ttl`).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::Subcommand;
use tenant_gateway::admin::import;
use tenant_gateway::store;
use tenant_gateway::tenant::spec::SpecRules;

use super::ConfigArgs;

#[derive(Subcommand)]
pub enum TenantsCommand {
    /// Import tenants from a CSV (`id,schema,domain[,name,isolation,status,pool]`,
    /// optional header) or NDJSON file, one transaction per batch.
    Import {
        /// The file to import (`-` for standard input).
        file: PathBuf,
        #[command(flatten)]
        config: ConfigArgs,
    },
}

pub fn run(command: TenantsCommand) -> anyhow::Result<()> {
    match command {
        TenantsCommand::Import { file, config } => import_file(&file, &config),
    }
}

fn import_file(file: &PathBuf, args: &ConfigArgs) -> anyhow::Result<()> {
    let config = args.load()?;
    let text = if file.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).context("cannot read standard input")?
    } else {
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let report = runtime.block_on(async {
        let store = store::open(&config.store)
            .await
            .with_context(|| format!("cannot open the store {}", store::describe(&config.store)))?
            .store;
        let pools: Vec<String> = config.pools.keys().cloned().collect();
        let rules = SpecRules {
            strip_www: config.routing.strip_www,
            pools,
        };
        let started = Instant::now();
        let report = import::import(store.as_ref(), &text, &rules)
            .await
            .context("import failed")?;
        anyhow::Ok((report, started.elapsed()))
    })?;
    let (report, elapsed) = report;
    for error in &report.errors {
        eprintln!("line {}: {}", error.line, error.message);
    }
    println!(
        "imported {} tenant(s), {} failed, in {:.1} s",
        report.imported,
        report.failed,
        elapsed.as_secs_f64()
    );
    if report.failed > 0 {
        anyhow::bail!("{} row(s) were not imported", report.failed);
    }
    Ok(())
}
