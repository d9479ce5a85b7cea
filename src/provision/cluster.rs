//! The PostgreSQL servers tenants' schemas and databases live on
//! (`provisioning.clusters`): connecting to one, telling whether it is the
//! registry's own database (where a new schema can share the registry's
//! transaction), and placing a new tenant on the emptiest one. Without
//! configured clusters the registry's server is the only one, `default`.

use std::collections::BTreeMap;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex};

use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, NoTls};

use super::{store_failed, ProvisionError, ProvisionFailure};
use crate::config::ProvisioningConfig;
use crate::store::postgres::{pg_error, PgConn};
use crate::store::{PgStore, StoreError};
use crate::tenant::DEFAULT_CLUSTER;

/// One server (and the database schemas go into) tenants can be placed on.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// `default` for the registry's own server.
    pub name: String,
    config: tokio_postgres::Config,
    /// Its schemas live in the registry's database: provisioning a schema
    /// there is one transaction with the registry rows.
    pub is_registry: bool,
}

/// Every cluster of this gateway.
#[derive(Debug, Clone)]
pub struct Clusters {
    registry: Cluster,
    named: BTreeMap<String, Cluster>,
    /// Tenants this process is placing now, per cluster: counted with the
    /// registry's rows so that concurrent creates spread out.
    placing: Arc<Mutex<BTreeMap<String, u64>>>,
}

/// A tenant being placed on a cluster, counted there until dropped (after
/// its create committed or failed).
#[derive(Debug)]
pub struct Placement {
    pub cluster: String,
    placing: Arc<Mutex<BTreeMap<String, u64>>>,
}

impl Drop for Placement {
    fn drop(&mut self) {
        let mut placing = self.placing.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = placing.get_mut(&self.cluster) {
            *count -= 1;
            if *count == 0 {
                placing.remove(&self.cluster);
            }
        }
    }
}

/// A connection to a cluster: the registry's pool where possible, else a
/// connection of its own (provisioning is rare; no pool per cluster).
pub enum Conn {
    Pooled(PgConn),
    Direct(Client),
}

impl Deref for Conn {
    type Target = Client;
    fn deref(&self) -> &Client {
        match self {
            Conn::Pooled(conn) => conn,
            Conn::Direct(client) => client,
        }
    }
}

impl DerefMut for Conn {
    fn deref_mut(&mut self) -> &mut Client {
        match self {
            Conn::Pooled(conn) => &mut *conn,
            Conn::Direct(client) => client,
        }
    }
}

/// Whether `a` and `b` reach the same database of the same server.
fn same_database(a: &tokio_postgres::Config, b: &tokio_postgres::Config) -> bool {
    a.get_hosts() == b.get_hosts()
        && a.get_ports() == b.get_ports()
        && a.get_dbname() == b.get_dbname()
}

impl Clusters {
    /// The configured clusters (URLs were checked by config validation),
    /// with the registry's server as `default`.
    pub fn new(
        config: &ProvisioningConfig,
        registry: &tokio_postgres::Config,
    ) -> Result<Clusters, ProvisionError> {
        let mut named = BTreeMap::new();
        for (name, cluster) in &config.clusters {
            let mut parsed: tokio_postgres::Config =
                cluster.url.parse().map_err(|e| ProvisionError {
                    step: format!("cluster {name}"),
                    source: ProvisionFailure::Config(format!("invalid PostgreSQL URL: {e}")),
                })?;
            if let Some(timeout) = registry.get_connect_timeout() {
                parsed.connect_timeout(*timeout);
            }
            let cluster = Cluster {
                name: name.clone(),
                is_registry: same_database(&parsed, registry),
                config: parsed,
            };
            named.insert(name.clone(), cluster);
        }
        Ok(Clusters {
            registry: Cluster {
                name: DEFAULT_CLUSTER.to_owned(),
                config: registry.clone(),
                is_registry: true,
            },
            named,
            placing: Arc::default(),
        })
    }

    /// The names a tenant may name (see `ProvisioningConfig::cluster_names`).
    pub fn names(&self) -> Vec<String> {
        if self.named.is_empty() {
            vec![DEFAULT_CLUSTER.to_owned()]
        } else {
            self.named.keys().cloned().collect()
        }
    }

    /// The cluster a tenant records (`None`: the registry's server).
    pub fn get(&self, name: Option<&str>) -> Result<&Cluster, ProvisionError> {
        match name {
            None => Ok(&self.registry),
            Some(name) => self.named.get(name).ok_or_else(|| ProvisionError {
                step: "cluster".into(),
                source: ProvisionFailure::Config(format!(
                    "cluster '{name}' is not configured (provisioning.clusters has {:?})",
                    self.names()
                )),
            }),
        }
    }

    /// The configured cluster with the fewest tenants in the registry plus
    /// those this process is placing (the first by name on a tie); `None`
    /// without configured clusters. Other replicas' creates in flight are not
    /// seen: placement balances over time, it is not a reservation.
    pub async fn place(&self, store: &PgStore) -> Result<Option<Placement>, ProvisionError> {
        if self.named.is_empty() {
            return Ok(None);
        }
        let names: Vec<String> = self.named.keys().cloned().collect();
        let counts = store
            .tenants_per_cluster(&names)
            .await
            .map_err(store_failed("place"))?;
        let mut placing = self.placing.lock().unwrap_or_else(|p| p.into_inner());
        let count = |name: &String| {
            let registered = counts
                .iter()
                .find(|(c, _)| c == name)
                .map_or(0, |(_, n)| *n);
            registered as u64 + placing.get(name).copied().unwrap_or(0)
        };
        let Some(cluster) = names.into_iter().min_by_key(count) else {
            return Ok(None);
        };
        *placing.entry(cluster.clone()).or_default() += 1;
        Ok(Some(Placement {
            cluster,
            placing: self.placing.clone(),
        }))
    }
}

impl Cluster {
    /// The database schemas go into (from the URL; empty if it names none).
    pub fn database(&self) -> &str {
        self.config.get_dbname().unwrap_or_default()
    }

    /// A connection to this cluster's database (or to `database` on the
    /// same server); the registry's own database comes from `store`'s pool.
    pub async fn connect(
        &self,
        store: &PgStore,
        database: Option<&str>,
        step: &str,
    ) -> Result<Conn, ProvisionError> {
        if self.is_registry && database.is_none() {
            return store
                .conn()
                .await
                .map(Conn::Pooled)
                .map_err(store_failed(step));
        }
        let mut config = self.config.clone();
        if let Some(database) = database {
            config.dbname(database);
        }
        let (client, connection) = config.connect(NoTls).await.map_err(|e| {
            let missing = e.code() == Some(&SqlState::INVALID_CATALOG_NAME);
            ProvisionError {
                step: step.to_owned(),
                source: match pg_error(e) {
                    StoreError::Backend(message) if missing => ProvisionFailure::Missing(message),
                    other => ProvisionFailure::Store(other),
                },
            }
        })?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "provisioning connection ended");
            }
        });
        Ok(Conn::Direct(client))
    }
}
