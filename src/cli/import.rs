//! `tenants import FILE`: tenants from a CSV or NDJSON file (or standard
//! input) into the configured store, a batch per transaction, with a
//! progress bar on a terminal.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use tenant_gateway::admin::import;
use tenant_gateway::store::{self, OpenMode};

use super::progress::Shown;
use super::ConfigArgs;

pub fn import_file(file: &PathBuf, args: &ConfigArgs) -> anyhow::Result<()> {
    let config = args.load()?;
    let text = if file.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).context("cannot read standard input")?
    } else {
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?
    };
    // A bad header is refused before the store is opened (or created).
    let parsed = import::read(&text)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let report = runtime.block_on(async {
        let store = store::open(&config.store, OpenMode::CreateIfMissing)
            .await
            .with_context(|| format!("cannot open the store {}", store::describe(&config.store)))?
            .store;
        let rules = config.spec_rules();
        let started = Instant::now();
        let shown = Shown::new("tenants");
        let report = import::import(store.as_ref(), parsed, &rules, |p| shown.update(p))
            .await
            .context("import failed")?;
        shown.finish();
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
