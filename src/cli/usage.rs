//! `tenant-gateway tenants usage`: the usage counters in the store, one
//! tenant's hours as a table (or JSON), or every tenant's as CSV or NDJSON
//! for billing. Reads the store directly: a running gateway's counts are
//! there up to its last flush (`usage.flush_interval`).

use std::io::Write;

use anyhow::{anyhow, bail};
use clap::Args;
use tenant_gateway::admin::usage::{range, TenantUsage, UsageHour};
use tenant_gateway::admin::usage_export::{ExportFormat, CSV_HEADER};
use tenant_gateway::store::{OpenMode, UsageQuery};

use super::store::{store_error, with_store};
use super::ConfigArgs;

/// Rows read from the store at a time.
const PAGE: usize = 5000;

#[derive(Args)]
pub struct UsageArgs {
    /// The tenant (or `--all`).
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    id: Option<String>,
    /// Every tenant, as CSV or NDJSON (`--format`).
    #[arg(long)]
    all: bool,
    /// The first hour: RFC 3339 or a date (default: 24 hours ago).
    #[arg(long)]
    from: Option<String>,
    /// The end, exclusive (default: the end of the current hour).
    #[arg(long)]
    to: Option<String>,
    /// One tenant: JSON as `GET /v1/tenants/{id}/usage` answers.
    #[arg(long, conflicts_with = "all")]
    json: bool,
    /// With `--all`: csv (default) or ndjson.
    #[arg(long, requires = "all")]
    format: Option<String>,
    #[command(flatten)]
    config: ConfigArgs,
}

pub fn run(args: UsageArgs) -> anyhow::Result<()> {
    let (from, to) =
        range(args.from.as_deref(), args.to.as_deref()).map_err(|e| anyhow!("--{e}"))?;
    let format = match args.format.as_deref() {
        None => ExportFormat::Csv,
        Some(text) => ExportFormat::parse(text)
            .ok_or_else(|| anyhow!("--format: '{text}' is neither csv nor ndjson"))?,
    };
    let tenant = args.id.clone();
    let json = args.json;
    with_store(&args.config, OpenMode::Existing, |s| async move {
        let mut query = UsageQuery {
            tenant: tenant.clone(),
            from,
            to,
            after: None,
            limit: PAGE,
        };
        let mut out = std::io::stdout().lock();
        if tenant.is_none() && format == ExportFormat::Csv {
            out.write_all(CSV_HEADER.as_bytes())?;
        }
        let mut hours = Vec::new();
        loop {
            let rows = s.store.read_usage(&query).await.map_err(store_error)?;
            if tenant.is_none() {
                let mut text = String::new();
                for row in &rows {
                    format.line(row, &mut text);
                }
                out.write_all(text.as_bytes())?;
            }
            let full = rows.len() == PAGE;
            query.after = rows.last().map(|r| (r.tenant.clone(), r.hour));
            hours.extend(rows.into_iter().filter(|_| tenant.is_some()));
            if !full {
                break;
            }
        }
        let Some(id) = tenant else {
            return Ok(());
        };
        if hours.is_empty()
            && s.store
                .get_tenant(&id)
                .await
                .map_err(store_error)?
                .is_none()
        {
            bail!("Tenant with ID '{id}' does not exist");
        }
        let hours: Vec<UsageHour> = hours.iter().map(UsageHour::from_row).collect();
        if json {
            let body = TenantUsage { tenant: id, hours };
            writeln!(out, "{}", serde_json::to_string_pretty(&body)?)?;
            return Ok(());
        }
        writeln!(
            out,
            "{:<20} {:>10} {:>14} {:>14} {:>8} {:>8} {:>12}",
            "HOUR", "REQUESTS", "BYTES_IN", "BYTES_OUT", "4XX", "5XX", "UPSTREAM_S"
        )?;
        for h in &hours {
            writeln!(
                out,
                "{:<20} {:>10} {:>14} {:>14} {:>8} {:>8} {:>12.3}",
                h.hour,
                h.requests,
                h.bytes_in,
                h.bytes_out,
                h.status_4xx,
                h.status_5xx,
                h.upstream_seconds
            )?;
        }
        Ok(())
    })
}
