//! `domains add|remove` and `setup-public` (the public tenant, schema
//! `public`, for the main domain), against the configured store directly.

use anyhow::anyhow;
use clap::Subcommand;
use tenant_gateway::store::OpenMode;
use tenant_gateway::tenant::spec::TenantSpec;
use tenant_gateway::tenant::PUBLIC_TENANT_ID;

use super::store::{store_error, with_store};
use super::ConfigArgs;

#[derive(Subcommand)]
pub enum DomainsCommand {
    /// Route a domain to a tenant.
    Add {
        domain: String,
        /// The tenant it routes to.
        #[arg(long)]
        tenant: String,
        /// Make it the tenant's primary domain.
        #[arg(long)]
        primary: bool,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Stop routing a domain.
    Remove {
        domain: String,
        #[command(flatten)]
        config: ConfigArgs,
    },
}

pub fn run(command: DomainsCommand) -> anyhow::Result<()> {
    match command {
        DomainsCommand::Add {
            domain,
            tenant,
            primary,
            config,
        } => with_store(&config, OpenMode::Existing, |s| async move {
            let domain = s
                .rules()
                .normalize_domain(&domain)
                .map_err(|e| anyhow!(e.message))?;
            let added = s
                .store
                .add_domain(&tenant, domain, primary)
                .await
                .map_err(store_error)?;
            let primary = if added.is_primary { " (primary)" } else { "" };
            println!(
                "Domain '{}' routes to tenant '{tenant}'{primary}",
                added.domain
            );
            Ok(())
        }),
        DomainsCommand::Remove { domain, config } => {
            with_store(&config, OpenMode::Existing, |s| async move {
                let domain = s
                    .rules()
                    .normalize_domain(&domain)
                    .map_err(|e| anyhow!(e.message))?;
                let removed = s.store.remove_domain(&domain).await.map_err(store_error)?;
                println!(
                    "Domain '{}' removed from tenant '{}'",
                    removed.domain, removed.tenant_id
                );
                Ok(())
            })
        }
    }
}

/// Registers the public tenant (schema `public`, which always exists) for
/// the main domain, like the seed's `setup_public`.
pub fn setup_public(config: &ConfigArgs, domain: String, name: String) -> anyhow::Result<()> {
    with_store(config, OpenMode::CreateIfMissing, |s| async move {
        let spec = TenantSpec {
            id: PUBLIC_TENANT_ID.into(),
            name: Some(name),
            schema: Some("public".into()),
            domains: vec![domain],
            ..TenantSpec::default()
        };
        let new = spec.validate(&s.rules()).map_err(|e| anyhow!(e.message))?;
        let record = s.store.create_tenant(new).await.map_err(store_error)?;
        println!(
            "Public tenant created for {}",
            record
                .domains
                .first()
                .map_or("(no domain)", |d| d.domain.as_str())
        );
        Ok(())
    })
}
