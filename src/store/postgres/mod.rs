//! The PostgreSQL store: the registry in a database shared by every gateway
//! process, over a bb8 pool of tokio-postgres connections. It owns the
//! connection settings (timeouts, so an outage is an error, never a hang)
//! and the `Store` implementation. The SQL lives in `layout`, the writes in
//! `write`, table creation in `tables`, error mapping and row reading in
//! `rows`, the replicas' change feed in `changes`, ACME storage in `certs`,
//! the django-tenants tables' columns in `columns`, usage counters in `usage`.

mod certs;
mod changes;
pub mod columns;
mod import;
mod layout;
mod rows;
mod tables;
mod usage;
mod write;

pub use rows::{pg_error, pg_message, quote_ident};

use self::rows::{host_match_from_row, query, query_opt, tenant_from_row, with_domains, Param};

use std::time::Duration;

use async_trait::async_trait;
use bb8::{Pool, PooledConnection, RunError};
use bb8_postgres::PostgresConnectionManager;
use tokio_postgres::types::Type;
use tokio_postgres::{GenericClient, NoTls};

use self::layout::{Sql, KEY_COLUMN};
use super::search::like_pattern;
use super::{HostMatch, RouteSink, Store, StoreError};
use crate::config::{StoreConfig, StoreLayout};
use crate::tenant::host::wildcard_parent;
use crate::tenant::{Domain, DomainEntry, NewTenant, TenantPatch, TenantRecord};

type Manager = PostgresConnectionManager<NoTls>;
/// A pooled connection to the registry database.
pub type PgConn = PooledConnection<'static, Manager>;

/// The PostgreSQL registry. Cloning shares the pool.
#[derive(Clone)]
pub struct PgStore {
    pool: Pool<Manager>,
    sql: std::sync::Arc<Sql>,
    config: tokio_postgres::Config,
    connect_timeout: Duration,
    /// The django-tenants tenant table's columns (empty for the native layout).
    columns: std::sync::Arc<columns::Columns>,
}

impl PgStore {
    /// Connects, then creates or upgrades the gateway's tables (native
    /// layout) or checks that the django-tenants tables exist.
    pub async fn open(store: &StoreConfig) -> Result<PgStore, StoreError> {
        let django_triggers =
            store.layout == StoreLayout::DjangoTenants && store.django.change_triggers;
        let url = store
            .url
            .as_deref()
            .ok_or_else(|| StoreError::Backend("store.url is not set".into()))?;
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| StoreError::Backend(format!("invalid PostgreSQL URL: {e}")))?;
        config.connect_timeout(store.connect_timeout);
        let options = format!(
            "{} -c statement_timeout={}",
            config.get_options().unwrap_or_default(),
            store.statement_timeout.as_millis()
        );
        config.options(options.trim());
        let pool = Pool::builder()
            .max_size(store.pool_size)
            .connection_timeout(store.connect_timeout)
            // A dead server fails a checkout at once instead of after the timeout.
            .retry_connection(false)
            // Broken connections are dropped (`is_closed`); skipping the check
            // keeps a lookup to one round trip.
            .test_on_check_out(false)
            .build_unchecked(PostgresConnectionManager::new(config.clone(), NoTls));
        let mut pg = PgStore {
            pool,
            sql: std::sync::Arc::new(Sql::new(store.layout, &store.django)),
            config,
            connect_timeout: store.connect_timeout,
            columns: Default::default(),
        };
        pg.prepare_tables(django_triggers).await?;
        if store.layout == StoreLayout::DjangoTenants {
            pg.columns = std::sync::Arc::new(pg.read_columns(&store.django).await?);
        }
        Ok(pg)
    }

    /// Reads the django-tenants tables' columns; a bad
    /// `store.django.column_defaults` entry is an error naming its key.
    async fn read_columns(
        &self,
        django: &crate::config::DjangoLayoutConfig,
    ) -> Result<columns::Columns, StoreError> {
        let conn = self.conn().await?;
        let (columns, problems) = columns::Columns::read(
            &*conn,
            &self.sql.tenant_table,
            &self.sql.domain_table,
            django,
        )
        .await?;
        if let Some((key, why)) = problems.into_iter().next() {
            return Err(StoreError::Backend(format!("{key}: {why}")));
        }
        if !columns.uncovered.is_empty() {
            tracing::warn!(
                table = %self.sql.tenant_table,
                columns = %columns.uncovered.join(", "),
                "required tenant columns without a default: every create must give them in \"columns\" (or set store.django.column_defaults)"
            );
        }
        if !columns.domain_uncovered.is_empty() {
            tracing::warn!(
                table = %self.sql.domain_table,
                columns = %columns.domain_uncovered.join(", "),
                "required domain columns without a default: creating domains will fail until the table has defaults for them"
            );
        }
        Ok(columns)
    }

    /// A connection from the pool; "unavailable" when none comes in time.
    pub async fn conn(&self) -> Result<PgConn, StoreError> {
        self.pool.get_owned().await.map_err(|e| match e {
            RunError::User(e) => StoreError::Unavailable(format!(
                "cannot connect to the database server: {}",
                pg_message(&e)
            )),
            RunError::TimedOut => StoreError::Unavailable(format!(
                "cannot connect to the database server: no connection within {:?}",
                self.connect_timeout
            )),
        })
    }

    /// The connection settings of the registry database (provisioning opens
    /// connections to other databases of the same server with them).
    pub fn connect_config(&self) -> &tokio_postgres::Config {
        &self.config
    }

    pub fn layout(&self) -> StoreLayout {
        self.sql.layout
    }

    /// How many tenants each of `clusters` holds (absent: none), for placement.
    pub async fn tenants_per_cluster(
        &self,
        clusters: &[String],
    ) -> Result<Vec<(String, i64)>, StoreError> {
        let Some(sql) = &self.sql.count_by_cluster else {
            return Ok(Vec::new());
        };
        let conn = self.conn().await?;
        let rows = query(&*conn, sql, &[(&clusters, Type::TEXT_ARRAY)]).await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// The id of `client`'s open transaction (it must have written), to ask
    /// about it later with [`PgStore::transaction_status`].
    pub async fn transaction_id(&self, client: &impl GenericClient) -> Result<i64, StoreError> {
        let row = query_opt(client, "SELECT txid_current()", &[]).await?;
        row.map(|r| r.get(0))
            .ok_or_else(|| StoreError::Backend("txid_current() returned no row".into()))
    }

    /// What became of transaction `xid`: `committed`, `aborted` or
    /// `in progress`; `None` once the server no longer knows.
    pub async fn transaction_status(&self, xid: i64) -> Result<Option<String>, StoreError> {
        let conn = self.conn().await?;
        let row = query_opt(&*conn, "SELECT txid_status($1)", &[(&xid, Type::INT8)]).await?;
        Ok(row.and_then(|r| r.get(0)))
    }

    /// The tenant `id` with its domains, read through `client`.
    pub async fn record_on(
        &self,
        client: &impl GenericClient,
        id: &str,
    ) -> Result<Option<TenantRecord>, StoreError> {
        let Some(row) = query_opt(client, &self.sql.get_tenant, &[(&id, Type::TEXT)]).await? else {
            return Ok(None);
        };
        let tenant = tenant_from_row(&row)?;
        let pk: i64 = row.get(KEY_COLUMN);
        let domains = query(client, &self.sql.domains_of, &[(&pk, Type::INT8)])
            .await?
            .iter()
            .map(|r| DomainEntry {
                domain: r.get(0),
                is_primary: r.get(1),
            })
            .collect();
        Ok(Some(TenantRecord { tenant, domains }))
    }
}

#[async_trait]
impl Store for PgStore {
    async fn ping(&self) -> Result<(), StoreError> {
        let conn = self.conn().await?;
        conn.simple_query("SELECT 1").await.map_err(pg_error)?;
        Ok(())
    }

    async fn resolve_host(&self, host: &str) -> Result<Option<HostMatch>, StoreError> {
        let wildcard = wildcard_parent(host).unwrap_or_default();
        let conn = self.conn().await?;
        let row = query_opt(
            &*conn,
            &self.sql.resolve_host,
            &[(&host, Type::TEXT), (&wildcard, Type::TEXT)],
        )
        .await?;
        row.as_ref().map(host_match_from_row).transpose()
    }

    async fn routes_page(
        &self,
        after: Option<String>,
        limit: usize,
    ) -> Result<Vec<HostMatch>, StoreError> {
        let after = after.unwrap_or_default();
        let limit = limit as i64;
        let conn = self.conn().await?;
        let rows = query(
            &*conn,
            &self.sql.routes_page,
            &[(&after, Type::TEXT), (&limit, Type::INT8)],
        )
        .await?;
        rows.iter().map(host_match_from_row).collect()
    }

    async fn scan_routes(&self, sink: Box<dyn RouteSink>) -> Result<(), StoreError> {
        let mut conn = self.conn().await?;
        rows::scan_routes(&mut conn, &self.sql.routes_all, sink).await
    }

    async fn routes_for(&self, domains: &[String]) -> Result<Vec<HostMatch>, StoreError> {
        let conn = self.conn().await?;
        let rows = query(
            &*conn,
            &self.sql.routes_for,
            &[(&domains, Type::TEXT_ARRAY)],
        )
        .await?;
        rows.iter().map(host_match_from_row).collect()
    }

    async fn create_tenant(&self, tenant: NewTenant) -> Result<TenantRecord, StoreError> {
        let mut conn = self.conn().await?;
        let tx = conn.transaction().await.map_err(pg_error)?;
        self.insert_tenant(&tx, &tenant).await?;
        let record = self.existing_record(&tx, &tenant.id).await?;
        self.record_change(&tx, Some(&tenant.domains)).await?;
        tx.commit().await.map_err(pg_error)?;
        Ok(record)
    }

    async fn import_tenants(
        &self,
        batch: Vec<NewTenant>,
    ) -> Result<Vec<(usize, StoreError)>, StoreError> {
        let mut conn = self.conn().await?;
        if self.import_pipelined(&mut conn, &batch).await? {
            return Ok(Vec::new());
        }
        // Some row failed: the batch again, row by row, to tell which.
        let mut tx = conn.transaction().await.map_err(pg_error)?;
        let mut rejected = Vec::new();
        let mut imported = Vec::new();
        for (i, tenant) in batch.iter().enumerate() {
            // A savepoint per row: a conflict undoes that row only.
            let row = tx.transaction().await.map_err(pg_error)?;
            match self.insert_tenant(&row, tenant).await {
                Ok(_) => {
                    row.commit().await.map_err(pg_error)?;
                    imported.extend(tenant.domains.iter().cloned());
                }
                Err(e @ (StoreError::Conflict { .. } | StoreError::Unprocessable { .. })) => {
                    row.rollback().await.map_err(pg_error)?;
                    rejected.push((i, e));
                }
                Err(e) => return Err(e),
            }
        }
        self.record_change(&tx, Some(&imported)).await?;
        tx.commit().await.map_err(pg_error)?;
        Ok(rejected)
    }

    async fn get_tenant(&self, id: &str) -> Result<Option<TenantRecord>, StoreError> {
        let conn = self.conn().await?;
        self.record_on(&*conn, id).await
    }

    async fn list_tenants(
        &self,
        after: Option<String>,
        limit: usize,
    ) -> Result<Vec<TenantRecord>, StoreError> {
        let conn = self.conn().await?;
        let (after, limit) = (after.unwrap_or_default(), limit as i64);
        let params: [Param; 2] = [(&after, Type::TEXT), (&limit, Type::INT8)];
        let rows = query(&*conn, &self.sql.list_tenants, &params).await?;
        with_domains(&*conn, &self.sql.domains_of_many, &rows).await
    }

    async fn search_tenants(
        &self,
        text: &str,
        after: Option<String>,
        limit: usize,
    ) -> Result<Vec<TenantRecord>, StoreError> {
        let conn = self.conn().await?;
        let (after, limit) = (after.unwrap_or_default(), limit as i64);
        let pattern = like_pattern(text);
        let params: [Param; 3] = [
            (&after, Type::TEXT),
            (&limit, Type::INT8),
            (&pattern, Type::TEXT),
        ];
        let rows = query(&*conn, &self.sql.search_tenants, &params).await?;
        with_domains(&*conn, &self.sql.domains_of_many, &rows).await
    }

    async fn update_tenant(
        &self,
        id: &str,
        patch: TenantPatch,
    ) -> Result<TenantRecord, StoreError> {
        let mut conn = self.conn().await?;
        let tx = conn.transaction().await.map_err(pg_error)?;
        self.apply_patch(&tx, id, patch).await?;
        let record = self.existing_record(&tx, id).await?;
        self.record_change(&tx, Some(&record.domain_names()))
            .await?;
        tx.commit().await.map_err(pg_error)?;
        Ok(record)
    }

    async fn delete_tenant(&self, id: &str) -> Result<TenantRecord, StoreError> {
        let mut conn = self.conn().await?;
        let tx = conn.transaction().await.map_err(pg_error)?;
        let removed = self.remove_tenant(&tx, id).await?;
        self.record_change(&tx, Some(&removed.domain_names()))
            .await?;
        tx.commit().await.map_err(pg_error)?;
        Ok(removed)
    }

    async fn add_domain(
        &self,
        tenant_id: &str,
        domain: String,
        primary: bool,
    ) -> Result<Domain, StoreError> {
        let mut conn = self.conn().await?;
        let tx = conn.transaction().await.map_err(pg_error)?;
        let added = self.insert_domain(&tx, tenant_id, domain, primary).await?;
        self.record_change(&tx, Some(std::slice::from_ref(&added.domain)))
            .await?;
        tx.commit().await.map_err(pg_error)?;
        Ok(added)
    }

    async fn remove_domain(&self, domain: &str) -> Result<Domain, StoreError> {
        let mut conn = self.conn().await?;
        let tx = conn.transaction().await.map_err(pg_error)?;
        let removed = self.delete_domain(&tx, domain).await?;
        self.record_change(&tx, Some(std::slice::from_ref(&removed.domain)))
            .await?;
        tx.commit().await.map_err(pg_error)?;
        Ok(removed)
    }
}
