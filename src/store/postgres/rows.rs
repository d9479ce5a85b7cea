//! How the PostgreSQL store talks to the server: its errors in the store's
//! terms, one-round-trip typed queries, and tenants read from rows.

use tokio_postgres::error::SqlState;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{GenericClient, Row};

use super::layout::KEY_COLUMN;
use crate::store::controls::decode;
use crate::store::{HostMatch, RouteSink, StoreError};
use crate::tenant::{DomainEntry, Tenant, TenantRecord};

/// Quotes an SQL identifier (`my"table` → `"my""table"`): the one quoting
/// of names the store and provisioning write into SQL.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
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

pub(super) type Param<'a> = (&'a (dyn ToSql + Sync), Type);

/// One round trip (parse, bind and execute together) with typed parameters.
pub(super) async fn query(
    client: &impl GenericClient,
    sql: &str,
    params: &[Param<'_>],
) -> Result<Vec<Row>, StoreError> {
    client.query_typed(sql, params).await.map_err(pg_error)
}

pub(super) async fn query_opt(
    client: &impl GenericClient,
    sql: &str,
    params: &[Param<'_>],
) -> Result<Option<Row>, StoreError> {
    Ok(query(client, sql, params).await?.into_iter().next())
}

/// A tenant with the domain that matched (`resolve_host`, `routes_page`):
/// the tenant's columns, its key, then the domain.
pub(super) fn host_match_from_row(row: &Row) -> Result<HostMatch, StoreError> {
    Ok(HostMatch {
        tenant: tenant_from_row(row)?,
        domain: row.get(KEY_COLUMN + 1),
    })
}

/// Columns `0..TENANT_COLUMNS` of the layout's tenant select.
pub(super) fn tenant_from_row(row: &Row) -> Result<Tenant, StoreError> {
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
        limits: decode("limits", row.get(9)).map_err(bad)?,
        maintenance: decode("maintenance", row.get(10)).map_err(bad)?,
    })
}

/// The tenants of `rows` (a tenant select) with their domains, read in
/// one more query (`domains_of_many`).
pub(super) async fn with_domains(
    client: &impl GenericClient,
    domains_of_many: &str,
    rows: &[Row],
) -> Result<Vec<TenantRecord>, StoreError> {
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
    let params: [Param; 1] = [(&keys, Type::INT8_ARRAY)];
    for row in query(client, domains_of_many, &params).await? {
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

/// Every route of `routes_all` into `sink`: one query (one snapshot) read
/// through a portal, `SCAN_BATCH` rows a round trip, instead of a query per page.
pub(super) async fn scan_routes(
    conn: &mut tokio_postgres::Client,
    routes_all: &str,
    mut sink: Box<dyn RouteSink>,
) -> Result<(), StoreError> {
    const SCAN_BATCH: i32 = 50_000;
    let tx = conn.transaction().await.map_err(pg_error)?;
    let portal = tx.bind(routes_all, &[]).await.map_err(pg_error)?;
    loop {
        let rows = tx
            .query_portal(&portal, SCAN_BATCH)
            .await
            .map_err(pg_error)?;
        for row in &rows {
            let m = host_match_from_row(row)?;
            if !sink.route(Some(&m.tenant), &m.domain) {
                return Ok(());
            }
        }
        if rows.len() < SCAN_BATCH as usize {
            return Ok(());
        }
    }
}
