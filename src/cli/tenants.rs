//! `tenant-gateway tenants …`: work on the configured store directly, with
//! no gateway running, like the seed's management commands. A running
//! gateway sees the changes once its cache entries expire (unknown hosts
//! after `cache.negative_ttl`).

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::anyhow;
use clap::{Args, Subcommand};
use tenant_gateway::provision::events::{self, Events};
use tenant_gateway::provision::Provisioned;
use tenant_gateway::store::OpenMode;
use tenant_gateway::tenant::spec::TenantSpec;
use tenant_gateway::tenant::{Isolation, TenantPatch, TenantRecord, TenantStatus};

use super::controls::{LimitArgs, MaintenanceArgs};
use super::migrate::MaintenanceFlags;
use super::store::{patch_tenant, provision_error, store_error, with_store};
use super::ConfigArgs;

#[derive(Subcommand)]
pub enum TenantsCommand {
    /// Create (and, with a PostgreSQL store, provision) a tenant; prompts for
    /// missing values when run in a terminal.
    Create(CreateArgs),
    /// List every tenant.
    List {
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Show one tenant as JSON.
    Show {
        id: String,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Delete a tenant and its domains; `--drop` also drops its schema or database.
    Delete {
        id: String,
        #[arg(long)]
        drop: bool,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Stop routing a tenant (the data path answers 403).
    Suspend {
        id: String,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Route a suspended tenant again.
    Resume {
        id: String,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Apply the migrations one tenant has not had yet.
    Migrate {
        id: String,
        #[command(flatten)]
        maintenance: MaintenanceFlags,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Migrate every tenant, each in its own transaction, going on past failures.
    MigrateAll {
        /// Tenants migrated at once (default `provisioning.migrate_parallel`).
        #[arg(long)]
        parallel: Option<usize>,
        #[command(flatten)]
        maintenance: MaintenanceFlags,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Set a tenant's own limits over its plan's, or `--clear` them.
    Limit(LimitArgs),
    /// Put a tenant under maintenance (`on [--hold 10s]`) or end it (`off`).
    Maintenance(MaintenanceArgs),
    /// Import tenants from a CSV (`id,schema,domain[,name,isolation,status,pool,plan,cluster]`,
    /// optional header) or NDJSON file, one transaction per batch.
    Import {
        /// The file to import (`-` for standard input).
        file: PathBuf,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Usage by hour: one tenant's as a table (`--json`), or every
    /// tenant's as CSV or NDJSON for billing (`--all --format`).
    Usage(super::usage::UsageArgs),
}

#[derive(Args)]
pub struct CreateArgs {
    /// The tenant id (a slug).
    #[arg(long)]
    id: Option<String>,
    /// The display name (default: the id).
    #[arg(long)]
    name: Option<String>,
    /// A domain routed to the tenant; the first is primary (repeatable).
    #[arg(long = "domain")]
    domains: Vec<String>,
    /// The schema (or database) name (default: derived from the id).
    #[arg(long)]
    schema: Option<String>,
    /// schema, database, table or cache (default schema).
    #[arg(long)]
    isolation: Option<String>,
    /// The backend pool (default: the plan's pool, else `default`).
    #[arg(long)]
    pool: Option<String>,
    /// The billing plan (`plans:` in the config maps plans to pools).
    #[arg(long)]
    plan: Option<String>,
    /// The PostgreSQL cluster (`provisioning.clusters`) for its schema or
    /// database (default: the one with the fewest tenants).
    #[arg(long)]
    cluster: Option<String>,
    /// Only register: the schema or database already exists.
    #[arg(long)]
    no_provision: bool,
    /// A value for a further column of a django-tenants tenant table,
    /// `COLUMN=VALUE` (e.g. `owner_id=7`; repeatable); bound as a parameter
    /// and checked against the column's type.
    #[arg(long = "column", value_name = "COLUMN=VALUE", value_parser = column_value)]
    columns: Vec<(String, String)>,
    #[command(flatten)]
    config: ConfigArgs,
}

/// `COLUMN=VALUE` of `--column`.
fn column_value(arg: &str) -> Result<(String, String), String> {
    match arg.split_once('=') {
        Some((column, value)) if !column.is_empty() => Ok((column.to_owned(), value.to_owned())),
        _ => Err(format!("'{arg}' is not COLUMN=VALUE")),
    }
}

pub fn run(command: TenantsCommand) -> anyhow::Result<()> {
    match command {
        TenantsCommand::Create(args) => create(args),
        TenantsCommand::List { json, config } => list(&config, json),
        TenantsCommand::Show { id, config } => {
            with_store(&config, OpenMode::Existing, |s| async move {
                let record = s.store.get_tenant(&id).await.map_err(store_error)?;
                let record =
                    record.ok_or_else(|| anyhow!("Tenant with ID '{id}' does not exist"))?;
                println!("{}", serde_json::to_string_pretty(&record)?);
                Ok(())
            })
        }
        TenantsCommand::Delete { id, drop, config } => delete(&config, id, drop),
        TenantsCommand::Suspend { id, config } => set_status(&config, id, TenantStatus::Suspended),
        TenantsCommand::Resume { id, config } => set_status(&config, id, TenantStatus::Active),
        TenantsCommand::Migrate {
            id,
            maintenance,
            config,
        } => super::migrate::one(&config, id, maintenance),
        TenantsCommand::MigrateAll {
            parallel,
            maintenance,
            config,
        } => super::migrate::all(&config, parallel, maintenance),
        TenantsCommand::Limit(args) => super::controls::limit(args),
        TenantsCommand::Maintenance(args) => super::controls::maintenance(args),
        TenantsCommand::Import { file, config } => super::import::import_file(&file, &config),
        TenantsCommand::Usage(args) => super::usage::run(args),
    }
}

/// Asks `question` on the terminal; an empty answer gives `default`.
fn prompt(question: &str, default: Option<&str>) -> anyhow::Result<Option<String>> {
    match default {
        Some(d) => eprint!("{question} [{d}]: "),
        None => eprint!("{question}: "),
    }
    std::io::stderr().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let answer = line.trim();
    Ok(if answer.is_empty() {
        default.map(str::to_owned)
    } else {
        Some(answer.to_owned())
    })
}

/// Fills in what the flags left out: by asking on a terminal, else an error
/// for a missing id.
fn complete(mut args: CreateArgs) -> anyhow::Result<CreateArgs> {
    if !std::io::stdin().is_terminal() {
        if args.id.is_none() {
            anyhow::bail!("--id is required (or run in a terminal to be prompted)");
        }
        return Ok(args);
    }
    while args.id.is_none() {
        args.id = prompt("Tenant ID", None)?;
    }
    if args.name.is_none() {
        args.name = prompt("Tenant name", args.id.as_deref())?;
    }
    if args.domains.is_empty() {
        args.domains
            .extend(prompt("Domain (empty for none)", None)?);
    }
    if args.isolation.is_none() {
        args.isolation = prompt("Isolation (schema, database, table, cache)", Some("schema"))?;
    }
    Ok(args)
}

fn create(args: CreateArgs) -> anyhow::Result<()> {
    let args = complete(args)?;
    if let Some(isolation) = &args.isolation {
        isolation.parse::<Isolation>().map_err(|_| {
            let valid: Vec<&str> = Isolation::ALL.iter().map(|i| i.as_str()).collect();
            anyhow!(
                "Invalid isolation type: valid options are {}",
                valid.join(", ")
            )
        })?;
    }
    let spec = TenantSpec {
        id: args.id.unwrap_or_default(),
        name: args.name,
        schema: args.schema,
        isolation: args.isolation,
        status: None,
        pool: args.pool,
        plan: args.plan,
        cluster: args.cluster,
        domains: args.domains,
        provision: None,
        columns: args
            .columns
            .into_iter()
            .map(|(column, value)| (column, serde_json::Value::String(value)))
            .collect(),
    };
    let provision = !args.no_provision;
    with_store(&args.config, OpenMode::CreateIfMissing, |s| async move {
        let new = spec.validate(&s.rules()).map_err(|e| anyhow!(e.message))?;
        let started = Instant::now();
        let record = match &s.provisioner {
            Some(p) if provision => p.create(new).await.map_err(provision_error)?,
            _ => Provisioned {
                record: s.store.create_tenant(new).await.map_err(store_error)?,
                database_role: None,
            },
        };
        let Provisioned {
            record,
            database_role,
        } = record;
        let t = &record.tenant;
        let cluster = match &t.cluster {
            Some(cluster) => format!(" on cluster {cluster}"),
            None => String::new(),
        };
        println!(
            "Tenant '{}' created: {} isolation, schema {}{cluster}, domains [{}] ({} ms)",
            t.id,
            t.isolation,
            t.schema,
            domains(&record),
            started.elapsed().as_millis()
        );
        Events::new(&s.config.events)
            .deliver(events::PROVISIONED, &record)
            .await;
        if let Some(role) = database_role {
            // Shown once: the registry keeps no copy.
            println!("Database role '{}' password: {}", role.name, role.password);
        }
        Ok(())
    })
}

fn domains(record: &TenantRecord) -> String {
    record
        .domains
        .iter()
        .map(|d| d.domain.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn list(config: &ConfigArgs, json: bool) -> anyhow::Result<()> {
    with_store(config, OpenMode::Existing, |s| async move {
        let mut after = None;
        let mut out = std::io::stdout().lock();
        if !json {
            writeln!(
                out,
                "{:<24} {:<24} {:<9} {:<10} DOMAINS",
                "ID", "SCHEMA", "ISOLATION", "STATUS"
            )?;
        }
        loop {
            let page = s
                .store
                .list_tenants(after.take(), 1000)
                .await
                .map_err(store_error)?;
            for r in &page {
                if json {
                    writeln!(out, "{}", serde_json::to_string(r)?)?;
                } else {
                    let t = &r.tenant;
                    writeln!(
                        out,
                        "{:<24} {:<24} {:<9} {:<10} {}",
                        t.id,
                        t.schema,
                        t.isolation.as_str(),
                        t.status.as_str(),
                        domains(r)
                    )?;
                }
            }
            if page.len() < 1000 {
                return Ok(());
            }
            after = page.last().map(|r| r.tenant.id.clone());
        }
    })
}

fn delete(config: &ConfigArgs, id: String, drop: bool) -> anyhow::Result<()> {
    with_store(config, OpenMode::Existing, |s| async move {
        if drop {
            let provisioner = s.provisioner("--drop")?;
            // Refuse before deleting if its storage could not be dropped after.
            if let Some(existing) = s.store.get_tenant(&id).await.map_err(store_error)? {
                provisioner
                    .clusters()
                    .get(existing.tenant.cluster.as_deref())
                    .map_err(provision_error)?;
            }
        }
        let removed = s.store.delete_tenant(&id).await.map_err(store_error)?;
        if let Some(p) = s.provisioner.as_ref().filter(|_| drop) {
            p.drop_storage(&removed.tenant)
                .await
                .map_err(provision_error)?;
        }
        Events::new(&s.config.events)
            .deliver(events::DELETED, &removed)
            .await;
        let kept = if drop { "dropped" } else { "kept" };
        println!(
            "Tenant '{id}' deleted (its {} {} was {kept})",
            removed.tenant.isolation, removed.tenant.schema
        );
        Ok(())
    })
}

fn set_status(config: &ConfigArgs, id: String, status: TenantStatus) -> anyhow::Result<()> {
    let patch = TenantPatch {
        status: Some(status),
        ..TenantPatch::default()
    };
    patch_tenant(config, &id, patch)?;
    println!("Tenant '{id}' is {}", status.as_str());
    Ok(())
}
