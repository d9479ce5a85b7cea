//! The PostgreSQL store: the registry in a database shared by every gateway
//! process, over a bb8 pool of tokio-postgres connections. It owns the
//! connection settings (timeouts, so an outage is an error, never a hang),
//! the versioned creation of its own tables, and the error mapping.
//! The queries live in `layout`, the writes in `write`.

mod certs;
mod changes;
mod layout;
mod write;

pub use changes::{Change, ChangeBatch, FeedEvent};

use std::time::Duration;

use async_trait::async_trait;
use bb8::{Pool, PooledConnection, RunError};
use bb8_postgres::PostgresConnectionManager;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{GenericClient, NoTls, Row};

use self::layout::{Sql, KEY_COLUMN, NATIVE_MIGRATIONS};
use super::{HostMatch, Store, StoreError, StoredCert};
use crate::config::{StoreConfig, StoreLayout};
use crate::routing::host::wildcard_parent;
use crate::tenant::{Domain, DomainEntry, NewTenant, Tenant, TenantPatch, TenantRecord};

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
        let store = PgStore {
            pool,
            sql: std::sync::Arc::new(Sql::new(store.layout, &store.django)),
            config,
            connect_timeout: store.connect_timeout,
        };
        store.prepare_tables(django_triggers).await?;
        Ok(store)
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

    /// Creates the change log; then, for the native layout, creates or
    /// upgrades the registry tables, and for django-tenants checks its tables
    /// exist (and installs the change triggers when asked).
    async fn prepare_tables(&self, django_triggers: bool) -> Result<(), StoreError> {
        let mut conn = self.conn().await?;
        // One gateway creates or upgrades tables at a time; the others wait,
        // then see it done.
        let tx = conn.transaction().await.map_err(pg_error)?;
        tx.batch_execute("SELECT pg_advisory_xact_lock(7417265436352)")
            .await
            .map_err(pg_error)?;
        tx.batch_execute(changes::CREATE_TABLE)
            .await
            .map_err(pg_error)?;
        if self.sql.layout == StoreLayout::DjangoTenants {
            for table in [&self.sql.tenant_table, &self.sql.domain_table] {
                let found: Option<String> = tx
                    .query_one("SELECT to_regclass($1)::text", &[table])
                    .await
                    .map_err(pg_error)?
                    .get(0);
                if found.is_none() {
                    return Err(StoreError::Backend(format!(
                        "django-tenants table {table} not found (store.django.*)"
                    )));
                }
            }
            if django_triggers {
                tx.batch_execute(&changes::django_triggers(
                    &self.sql.tenant_table,
                    &self.sql.domain_table,
                ))
                .await
                .map_err(|e| {
                    StoreError::Backend(format!(
                        "cannot install store.django.change_triggers: {}",
                        pg_message(&e)
                    ))
                })?;
            }
            return tx.commit().await.map_err(pg_error);
        }
        tx.batch_execute("CREATE TABLE IF NOT EXISTS gateway_store_version (version int NOT NULL)")
            .await
            .map_err(pg_error)?;
        let version: i32 = tx
            .query_one(
                "SELECT coalesce(max(version), 0) FROM gateway_store_version",
                &[],
            )
            .await
            .map_err(pg_error)?
            .get(0);
        if version as usize > NATIVE_MIGRATIONS.len() {
            return Err(StoreError::Backend(format!(
                "the store has version {version}, newer than this gateway's {}",
                NATIVE_MIGRATIONS.len()
            )));
        }
        for (i, step) in NATIVE_MIGRATIONS.iter().enumerate().skip(version as usize) {
            tx.batch_execute(step).await.map_err(pg_error)?;
            tx.execute(
                "INSERT INTO gateway_store_version (version) VALUES ($1)",
                &[&(i as i32 + 1)],
            )
            .await
            .map_err(pg_error)?;
        }
        tx.commit().await.map_err(pg_error)
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

/// A message for a PostgreSQL error: the server's text when it sent one.
pub fn pg_message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => match db.detail() {
            Some(detail) => format!("{} ({detail})", db.message()),
            None => db.message().to_owned(),
        },
        None => match std::error::Error::source(e) {
            Some(source) => format!("{e}: {source}"),
            None => e.to_string(),
        },
    }
}

/// Lost connections, refused connections and timeouts are "unavailable"
/// (retry later); everything else is a backend failure.
pub fn pg_error(e: tokio_postgres::Error) -> StoreError {
    let unavailable = e.is_closed()
        || match e.code() {
            None => e.as_db_error().is_none(),
            Some(code) => {
                code.code().starts_with("08")
                    || [
                        SqlState::QUERY_CANCELED,
                        SqlState::ADMIN_SHUTDOWN,
                        SqlState::CRASH_SHUTDOWN,
                        SqlState::CANNOT_CONNECT_NOW,
                        SqlState::TOO_MANY_CONNECTIONS,
                    ]
                    .contains(code)
            }
        };
    if unavailable {
        StoreError::Unavailable(format!("database server: {}", pg_message(&e)))
    } else {
        StoreError::Backend(pg_message(&e))
    }
}

type Param<'a> = (&'a (dyn ToSql + Sync), Type);

/// One round trip (parse, bind and execute together) with typed parameters.
async fn query(
    client: &impl GenericClient,
    sql: &str,
    params: &[Param<'_>],
) -> Result<Vec<Row>, StoreError> {
    client.query_typed(sql, params).await.map_err(pg_error)
}

async fn query_opt(
    client: &impl GenericClient,
    sql: &str,
    params: &[Param<'_>],
) -> Result<Option<Row>, StoreError> {
    Ok(query(client, sql, params).await?.into_iter().next())
}

/// Columns `0..TENANT_COLUMNS` of the layout's tenant select.
fn tenant_from_row(row: &Row) -> Result<Tenant, StoreError> {
    let bad = |e: String| StoreError::Backend(format!("bad tenant row: {e}"));
    Ok(Tenant {
        id: row.get(0),
        name: row.get(1),
        schema: row.get(2),
        isolation: row.get::<_, String>(3).parse().map_err(bad)?,
        status: row.get::<_, String>(4).parse().map_err(bad)?,
        pool: row.get(5),
        created_at: row.get(6),
        plan: row.get(7),
        cluster: row.get(8),
    })
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
        row.map(|row| {
            Ok(HostMatch {
                tenant: tenant_from_row(&row)?,
                domain: row.get(KEY_COLUMN + 1),
            })
        })
        .transpose()
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
                Err(e @ StoreError::Conflict { .. }) => {
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
        let after = after.unwrap_or_default();
        let limit = limit as i64;
        let rows = query(
            &*conn,
            &self.sql.list_tenants,
            &[(&after, Type::TEXT), (&limit, Type::INT8)],
        )
        .await?;
        let keys: Vec<i64> = rows.iter().map(|r| r.get(KEY_COLUMN)).collect();
        let mut records = rows
            .iter()
            .map(|r| {
                Ok(TenantRecord {
                    tenant: tenant_from_row(r)?,
                    domains: Vec::new(),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        for row in query(
            &*conn,
            &self.sql.domains_of_many,
            &[(&keys, Type::INT8_ARRAY)],
        )
        .await?
        {
            let pk: i64 = row.get(0);
            if let Some(i) = keys.iter().position(|k| *k == pk) {
                records[i].domains.push(DomainEntry {
                    domain: row.get(1),
                    is_primary: row.get(2),
                });
            }
        }
        Ok(records)
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

    async fn prepare_certificates(&self) -> Result<(), StoreError> {
        self.prepare_acme_tables().await
    }

    async fn get_certificate(&self, domain: &str) -> Result<Option<StoredCert>, StoreError> {
        self.certificate(domain).await
    }

    async fn put_certificate(
        &self,
        domain: &str,
        cert_pem: &str,
        key_pem: &str,
        not_after: i64,
    ) -> Result<(), StoreError> {
        self.store_certificate(domain, cert_pem, key_pem, not_after)
            .await
    }

    async fn record_certificate_failure(
        &self,
        domain: &str,
        reason: &str,
    ) -> Result<(), StoreError> {
        self.store_failure(domain, reason).await
    }

    async fn list_certificates(&self) -> Result<Vec<StoredCert>, StoreError> {
        self.certificates().await
    }

    async fn put_acme_challenge(
        &self,
        key: &str,
        key_authorization: &str,
    ) -> Result<(), StoreError> {
        self.store_challenge(key, key_authorization).await
    }

    async fn get_acme_challenge(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.challenge(key).await
    }

    async fn delete_acme_challenge(&self, key: &str) -> Result<(), StoreError> {
        self.drop_challenge(key).await
    }

    async fn get_acme_account(&self, directory: &str) -> Result<Option<String>, StoreError> {
        self.account(directory).await
    }

    async fn put_acme_account(
        &self,
        directory: &str,
        credentials: &str,
    ) -> Result<String, StoreError> {
        self.store_account(directory, credentials).await
    }
}
