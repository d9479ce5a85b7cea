//! The tenant and domain registry behind one async trait, so the data path and
//! the control plane do not care whether it is the embedded file or PostgreSQL.

pub mod certs;
mod controls;
pub mod feed;
pub mod postgres;
pub mod scan;
pub mod search;
mod sqlite;
pub mod usage;

pub use postgres::PgStore;
pub use sqlite::SqliteStore;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio_util::sync::CancellationToken;

use crate::config::{StoreConfig, StoreKind};
use feed::FeedEvent;

use crate::tenant::{Domain, NewTenant, Tenant, TenantPatch, TenantRecord};
pub use certs::{CertificateStore, StoredCert};
pub use scan::RouteSink;
pub use usage::{UsageBatch, UsageCounts, UsageQuery, UsageRow, UsageStore};

/// What went wrong in a store, in terms the admin API and the data path act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("{what} '{key}' not found")]
    NotFound { what: &'static str, key: String },
    #[error("{what} '{key}' already exists")]
    Conflict { what: &'static str, key: String },
    /// The store cannot do this (e.g. a column its layout lacks): bad input.
    #[error("{0}")]
    Unsupported(String),
    /// Values for the tenant table's columns that cannot be written: an
    /// unknown column, a value of the wrong type, a foreign key to nothing,
    /// or required columns left without a value. Nothing was written.
    #[error("{message}")]
    Unprocessable {
        message: String,
        columns: Vec<String>,
    },
    /// The store cannot be reached now; the caller may retry later.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("store failure: {0}")]
    Backend(String),
}

/// The tenant a host resolved to, and the domain entry that matched
/// (the host itself, or the wildcard covering it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostMatch {
    pub tenant: Tenant,
    pub domain: String,
}

/// The registry of tenants and their domains.
///
/// Every write is atomic: it either happens whole or not at all. Lookups are
/// single indexed reads so that a cache miss costs one round trip.
#[async_trait]
pub trait Store: CertificateStore + UsageStore + Send + Sync + 'static {
    /// Answers once the store can serve reads (used by `/readyz`).
    async fn ping(&self) -> Result<(), StoreError>;

    /// Resolves a normalised host: the exact domain first, then the wildcard
    /// one label above it (`a.example.com` → `*.example.com`).
    async fn resolve_host(&self, host: &str) -> Result<Option<HostMatch>, StoreError>;

    /// Creates a tenant with its domains; the first domain becomes primary.
    /// Conflicts on id, owned schema or domain are reported as `Conflict`.
    async fn create_tenant(&self, tenant: NewTenant) -> Result<TenantRecord, StoreError>;

    /// Creates many tenants in one transaction. A row that conflicts (id,
    /// owned schema or domain, including with an earlier row of the batch) is
    /// skipped and reported by its index; the others commit together.
    async fn import_tenants(
        &self,
        batch: Vec<NewTenant>,
    ) -> Result<Vec<(usize, StoreError)>, StoreError>;

    async fn get_tenant(&self, id: &str) -> Result<Option<TenantRecord>, StoreError>;

    /// Tenants ordered by id, starting after `after`.
    async fn list_tenants(
        &self,
        after: Option<String>,
        limit: usize,
    ) -> Result<Vec<TenantRecord>, StoreError>;

    /// Tenants whose id, name or schema, or one of whose domains, contains
    /// `text` (case-insensitively; `%` and `_` are plain characters),
    /// ordered by id, starting after `after`. By default, `list_tenants`
    /// page after page, filtered: a store with a query of its own overrides it.
    async fn search_tenants(
        &self,
        text: &str,
        after: Option<String>,
        limit: usize,
    ) -> Result<Vec<TenantRecord>, StoreError> {
        search::by_pages(self, text, after, limit).await
    }

    async fn update_tenant(&self, id: &str, patch: TenantPatch)
        -> Result<TenantRecord, StoreError>;

    /// Removes a tenant and its domains, returning what was removed.
    async fn delete_tenant(&self, id: &str) -> Result<TenantRecord, StoreError>;

    /// Adds a domain; `primary` (or being the tenant's first domain) makes it
    /// the one primary domain of the tenant.
    async fn add_domain(
        &self,
        tenant_id: &str,
        domain: String,
        primary: bool,
    ) -> Result<Domain, StoreError>;

    /// Removes a domain; if it was primary, the tenant's oldest other domain
    /// becomes primary.
    async fn remove_domain(&self, domain: &str) -> Result<Domain, StoreError>;

    /// Domains (exact and wildcard) with their tenants, ordered by domain,
    /// after `after`: pages for loading the warm domain table at start. A
    /// store that cannot page cheaply returns nothing, and routes load on demand.
    async fn routes_page(
        &self,
        after: Option<String>,
        limit: usize,
    ) -> Result<Vec<HostMatch>, StoreError> {
        let _ = (after, limit);
        Ok(Vec::new())
    }

    /// Every domain (exact and wildcard) with its tenant, in no set order,
    /// pushed into `sink` until it has them all or says stop: loading the
    /// warm domain table. One consistent read where the store can; by
    /// default, `routes_page` after `routes_page`.
    async fn scan_routes(&self, sink: Box<dyn RouteSink>) -> Result<(), StoreError> {
        scan::by_pages(self, sink).await
    }

    /// The rows of exactly these domains (wildcards as written, `*.x`), with
    /// their tenants; a domain not registered is left out. The warm domain
    /// table re-reads changed domains with it.
    async fn routes_for(&self, domains: &[String]) -> Result<Vec<HostMatch>, StoreError> {
        let mut found = Vec::with_capacity(domains.len());
        for domain in domains {
            if let Some(m) = self.resolve_host(domain).await? {
                if m.domain == *domain {
                    found.push(m);
                }
            }
        }
        Ok(found)
    }
}

/// An opened store: the trait object everyone uses, and the store itself
/// (for its change feed, and PostgreSQL's connections for provisioning).
pub struct OpenedStore {
    pub store: Arc<dyn Store>,
    kind: OpenedKind,
}

enum OpenedKind {
    Sqlite(SqliteStore),
    Postgres(Box<PgStore>),
}

impl OpenedStore {
    /// The PostgreSQL store, when it is one (provisioning needs its connections).
    pub fn postgres(&self) -> Option<&PgStore> {
        match &self.kind {
            OpenedKind::Postgres(pg) => Some(pg),
            OpenedKind::Sqlite(_) => None,
        }
    }

    /// Follows what other processes write to the store (its change feed)
    /// until `shutdown`; `resync` is the PostgreSQL feed's periodic catch-up.
    pub fn follow_changes(
        &self,
        resync: Duration,
        shutdown: CancellationToken,
    ) -> UnboundedReceiver<FeedEvent> {
        match &self.kind {
            OpenedKind::Postgres(pg) => pg.follow_changes(resync, shutdown),
            OpenedKind::Sqlite(sqlite) => sqlite.follow_changes(shutdown),
        }
    }
}

/// Refuses `columns` in a create for a layout whose tenant table has only
/// the gateway's own columns (the embedded store, the native layout).
pub fn no_extra_columns(t: &NewTenant) -> Result<(), StoreError> {
    if t.columns.is_empty() {
        return Ok(());
    }
    Err(StoreError::Unprocessable {
        message: "columns can be set only with the django-tenants layout; this store's tenant table has no such columns".into(),
        columns: t.columns.keys().cloned().collect(),
    })
}

/// Whether opening the embedded store may create its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// Create a missing file and its directories: serving, and commands that add tenants.
    CreateIfMissing,
    /// A missing file is `NotFound`: a command that only reads would otherwise
    /// turn a mistyped path into a new, empty store and report it as empty.
    Existing,
}

/// Opens the configured store (the one function the server and the CLI use).
/// `mode` is about the embedded file; a PostgreSQL database is never created.
pub async fn open(config: &StoreConfig, mode: OpenMode) -> Result<OpenedStore, StoreError> {
    match config.kind {
        StoreKind::Sqlite => {
            let sqlite = SqliteStore::open(&config.path, mode)?;
            Ok(OpenedStore {
                store: Arc::new(sqlite.clone()),
                kind: OpenedKind::Sqlite(sqlite),
            })
        }
        StoreKind::Postgres => {
            let pg = PgStore::open(config).await?;
            Ok(OpenedStore {
                store: Arc::new(pg.clone()),
                kind: OpenedKind::Postgres(Box::new(pg)),
            })
        }
    }
}

/// A new name for whoever writes rows other processes read (an ACME order
/// lease's holder, the embedded store's change log): the pid, to tell
/// processes apart in the store, plus a random part, since pids are reused
/// and one process may open the store more than once.
pub fn new_writer_name() -> String {
    format!("{}-{:016x}", std::process::id(), fastrand::u64(..))
}

/// The store as the ready line names it: the file, or the server and database
/// (never the password).
pub fn describe(config: &StoreConfig) -> String {
    match (config.kind, config.url.as_deref()) {
        (StoreKind::Postgres, Some(url)) => match url.parse::<tokio_postgres::Config>() {
            Ok(pg) => format!(
                "postgres {:?}/{}",
                pg.get_hosts().first(),
                pg.get_dbname().unwrap_or("")
            ),
            Err(_) => "postgres".into(),
        },
        _ => config.path.display().to_string(),
    }
}
