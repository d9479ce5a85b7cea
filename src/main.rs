//! The `tenant-gateway` command: `serve`, `check-config`, and the store
//! commands (`tenants …`, `domains …`, `setup-public`).

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use tenant_gateway::config::{Config, LogFormat, Overrides};
use tenant_gateway::reload::ConfigSource;
use tracing_subscriber::EnvFilter;

mod cli;

// mimalloc: fewer cycles per small allocation than glibc malloc on the
// request path (header maps, body frames).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "tenant-gateway",
    version,
    about = "Multi-tenant routing reverse proxy"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the data path and the admin API.
    Serve(ConfigArgs),
    /// Check a config file (and overrides) and report every problem.
    CheckConfig(ConfigArgs),
    /// Manage tenants in the configured store directly.
    Tenants {
        #[command(subcommand)]
        command: cli::tenants::TenantsCommand,
    },
    /// Route domains to tenants in the configured store directly.
    Domains {
        #[command(subcommand)]
        command: cli::domains::DomainsCommand,
    },
    /// Register the public tenant (schema `public`) for the main domain.
    SetupPublic {
        /// The main domain, e.g. example.com.
        #[arg(long)]
        domain: String,
        #[arg(long, default_value = "Public")]
        name: String,
        #[command(flatten)]
        config: ConfigArgs,
    },
}

#[derive(Args)]
pub struct ConfigArgs {
    /// YAML config file; without it, the built-in defaults.
    #[arg(long, short = 'c', env = "TENANT_GATEWAY_CONFIG")]
    config: Option<PathBuf>,
    /// Data path address (default 127.0.0.1:8080).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Admin API address (default 127.0.0.1:9090).
    #[arg(long)]
    admin_listen: Option<SocketAddr>,
    /// The embedded store's file (default ./tenant-gateway.db).
    #[arg(long)]
    data: Option<PathBuf>,
    /// The store: `sqlite:PATH` or `postgres://user@host:port/db` (wins over --data).
    #[arg(long, env = "TENANT_GATEWAY_STORE")]
    store: Option<String>,
    /// Table layout of a PostgreSQL store: `native` or `django-tenants`.
    #[arg(long, value_name = "LAYOUT")]
    store_layout: Option<tenant_gateway::config::StoreLayout>,
    /// Directory of ordered `NNNN_name.sql` migrations applied to new tenants.
    #[arg(long, value_name = "DIR")]
    migrations: Option<PathBuf>,
    /// SQL template of the default content loaded into new tenants.
    #[arg(long, value_name = "FILE")]
    content: Option<PathBuf>,
    /// A backend of the `default` pool, e.g. http://127.0.0.1:8000 (repeatable).
    #[arg(long = "default-backend")]
    default_backends: Vec<String>,
    /// Threads serving the data path (default: one per core).
    #[arg(long)]
    workers: Option<usize>,
    /// Turn the per-request access log off.
    #[arg(long)]
    no_access_log: bool,
}

impl ConfigArgs {
    /// Where the config comes from: the file and these flags (kept for reloads).
    pub fn source(&self) -> ConfigSource {
        ConfigSource {
            path: self.config.clone(),
            overrides: self.overrides(),
        }
    }

    fn overrides(&self) -> Overrides {
        Overrides {
            listen: self.listen,
            admin_listen: self.admin_listen,
            data: self.data.clone(),
            store: self.store.clone(),
            store_layout: self.store_layout,
            migrations: self.migrations.clone(),
            content: self.content.clone(),
            default_backends: self.default_backends.clone(),
            workers: self.workers,
        }
    }

    pub fn load(&self) -> anyhow::Result<Config> {
        let mut config =
            Config::load(self.config.as_deref(), &self.overrides()).map_err(|errors| {
                let source = self
                    .config
                    .as_ref()
                    .map_or("the defaults".into(), |p| p.display().to_string());
                anyhow::anyhow!("invalid configuration ({source}):\n{errors}")
            })?;
        if self.no_access_log {
            config.log.access_log = false;
        }
        Ok(config)
    }
}

fn init_logging(config: &Config) -> anyhow::Result<()> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(env) if !env.is_empty() => {
            EnvFilter::try_new(env).context("RUST_LOG is not a valid filter")?
        }
        _ => config.log.filter()?,
    };
    // Colours only on a terminal: a log file or collector would get raw escape codes.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match config.log.format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
    Ok(())
}

/// `check-config` with the django-tenants layout: the tables' required
/// columns that nothing fills, and `store.django.column_defaults` checked
/// against them (the database is read, never written).
fn check_django_tables(config: &Config) -> anyhow::Result<()> {
    use tenant_gateway::config::{StoreKind, StoreLayout};
    use tenant_gateway::store::postgres::columns;
    if config.store.kind != StoreKind::Postgres || config.store.layout != StoreLayout::DjangoTenants
    {
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (found, problems) = runtime
        .block_on(columns::check(&config.store))
        .context("cannot read the django-tenants tables")?;
    if !problems.is_empty() {
        let lines: Vec<String> = problems
            .iter()
            .map(|(key, why)| format!("  {key}: {why}"))
            .collect();
        anyhow::bail!("invalid configuration:\n{}", lines.join("\n"));
    }
    let django = &config.store.django;
    match found.uncovered.as_slice() {
        [] => println!("{}: every required column has a value", django.tenant_table),
        columns => println!(
            "{}: required columns without a default: {} (each create gives them in \"columns\", or set store.django.column_defaults)",
            django.tenant_table,
            columns.join(", ")
        ),
    }
    if !found.domain_uncovered.is_empty() {
        println!(
            "{}: required columns the gateway cannot fill: {} (creating domains will fail)",
            django.domain_table,
            found.domain_uncovered.join(", ")
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::CheckConfig(args) => {
            let config = args.load()?;
            for warning in config.warnings() {
                eprintln!("warning: {warning}");
            }
            println!(
                "config OK: data {} admin {}, {} pool(s), {} static tenant(s)",
                config.listen,
                config.admin.listen,
                config.pools.len(),
                config.tenants.len()
            );
            check_django_tables(&config)
        }
        Command::Tenants { command } => cli::tenants::run(command),
        Command::Domains { command } => cli::domains::run(command),
        Command::SetupPublic {
            domain,
            name,
            config,
        } => cli::domains::setup_public(&config, domain, name),
        Command::Serve(args) => {
            let config = args.load()?;
            init_logging(&config)?;
            tenant_gateway::server::run(config, args.source())
                .context("gateway stopped with an error")
        }
    }
}
