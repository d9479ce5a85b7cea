//! Tenant search in the embedded store: one query walking the tenants by id
//! (the primary key) from `after`, each tested with `LIKE` on its id, name
//! and schema and on its domains (through the `domains_tenant` index). A
//! rare text reads every tenant after `after`, so the query runs on a
//! connection of its own (lookups are not queued behind it), and is
//! interrupted when its caller gives up (the admin request was dropped).

use std::path::PathBuf;

use rusqlite::{params, Connection, InterruptHandle};

use super::backend;
use super::reader::open_reader;
use super::rows::{records, tenant_from_row, TENANT_COLUMNS};
use crate::store::search::{like_pattern, ESCAPE_CLAUSE};
use crate::store::StoreError;
use crate::tenant::{Tenant, TenantRecord};

/// Tenants after `after` (by id) matching `text`, at most `limit`, read on
/// a connection of its own to the file at `path`, on a blocking thread.
pub(super) async fn search(
    path: PathBuf,
    text: String,
    after: Option<String>,
    limit: usize,
) -> Result<Vec<TenantRecord>, StoreError> {
    let (handle, interrupt) = tokio::sync::oneshot::channel();
    let task = tokio::task::spawn_blocking(move || {
        let conn = open_reader(&path)?;
        let _ = handle.send(conn.get_interrupt_handle());
        query(&conn, &text, after, limit)
    });
    // Held while the query runs (none if the file would not open).
    let _interrupt = interrupt.await.ok().map(InterruptOnDrop);
    task.await
        .map_err(|e| StoreError::Backend(format!("store task failed: {e}")))?
}

/// Interrupts the search's query when dropped: once it has finished this
/// does nothing; dropped before (the caller's future was), it stops the query.
struct InterruptOnDrop(InterruptHandle);

impl Drop for InterruptOnDrop {
    fn drop(&mut self) {
        self.0.interrupt();
    }
}

/// The query itself; SQLite's `LIKE` folds the case of ASCII letters.
fn query(
    conn: &Connection,
    text: &str,
    after: Option<String>,
    limit: usize,
) -> Result<Vec<TenantRecord>, StoreError> {
    let mut stmt = conn
        .prepare(&format!(
            "SELECT {TENANT_COLUMNS} FROM tenants t WHERE t.id > ?1 AND ( \
             t.id LIKE ?3 {ESCAPE_CLAUSE} OR t.name LIKE ?3 {ESCAPE_CLAUSE} \
             OR t.schema_name LIKE ?3 {ESCAPE_CLAUSE} OR EXISTS (SELECT 1 FROM domains d \
             WHERE d.tenant_id = t.id AND d.domain LIKE ?3 {ESCAPE_CLAUSE})) \
             ORDER BY t.id LIMIT ?2"
        ))
        .map_err(backend)?;
    let tenants: Vec<Tenant> = stmt
        .query_map(
            params![after.unwrap_or_default(), limit as i64, like_pattern(text)],
            tenant_from_row,
        )
        .map_err(backend)?
        .collect::<Result<_, _>>()
        .map_err(backend)?;
    records(conn, tenants)
}

#[cfg(test)]
mod tests {
    use crate::store::{search, OpenMode, SqliteStore, Store};
    use crate::tenant::NewTenant;

    fn tenant(id: &str, name: &str, schema: &str, domains: &[&str]) -> NewTenant {
        NewTenant {
            name: name.into(),
            schema: schema.into(),
            ..NewTenant::example(id, domains)
        }
    }

    async fn store_with(tenants: Vec<NewTenant>) -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store =
            SqliteStore::open(&dir.path().join("gw.db"), OpenMode::CreateIfMissing).unwrap();
        for t in tenants {
            store.create_tenant(t).await.unwrap();
        }
        (dir, store)
    }

    async fn ids(store: &SqliteStore, text: &str) -> Vec<String> {
        let found = store.search_tenants(text, None, 100).await.unwrap();
        // The fallback (for stores without a query) decides the same.
        let fallback = search::by_pages(store, text, None, 100).await.unwrap();
        assert_eq!(found, fallback, "search {text:?}");
        found.into_iter().map(|r| r.tenant.id).collect()
    }

    #[tokio::test]
    async fn search_matches_id_name_schema_and_domains_case_insensitively() {
        let (_dir, store) = store_with(vec![
            tenant(
                "acme",
                "Acme Corp",
                "acme_prod",
                &["acme.test", "shop.acme.test"],
            ),
            tenant("globex", "Globex", "gx", &["globex.example"]),
            tenant("initech", "Initech", "it", &[]),
        ])
        .await;
        assert_eq!(ids(&store, "ACME").await, ["acme"]);
        assert_eq!(ids(&store, "corp").await, ["acme"], "by name");
        assert_eq!(ids(&store, "prod").await, ["acme"], "by schema");
        assert_eq!(
            ids(&store, "shop.acme").await,
            ["acme"],
            "by a second domain"
        );
        assert_eq!(ids(&store, "EXAMPLE").await, ["globex"], "by domain");
        assert_eq!(ids(&store, "e").await, ["acme", "globex", "initech"]);
        assert!(ids(&store, "umbrella").await.is_empty());
        // Each tenant comes once, with all its domains.
        let acme = store.search_tenants("acme", None, 10).await.unwrap();
        assert_eq!(acme[0].domain_names(), ["acme.test", "shop.acme.test"]);
    }

    #[tokio::test]
    async fn percent_underscore_and_the_escape_are_plain_characters() {
        let (_dir, store) = store_with(vec![
            tenant("a_b", "A and B", "ab", &[]),
            tenant("axb", "Axb", "axb", &[]),
            tenant("sale", "50% off", "sale", &[]),
            tenant("sales", "500 off", "sales", &[]),
            tenant("slash", "back\\slash", "slash", &[]),
            tenant("bang", "Wow! Big", "bang", &[]),
            tenant("wobig", "Wo Big", "wobig", &[]),
        ])
        .await;
        assert_eq!(ids(&store, "a_b").await, ["a_b"]);
        assert_eq!(ids(&store, "_").await, ["a_b"]);
        assert_eq!(ids(&store, "50%").await, ["sale"]);
        assert_eq!(ids(&store, "%").await, ["sale"]);
        assert_eq!(ids(&store, "k\\s").await, ["slash"]);
        // The escape character itself is escaped too.
        assert_eq!(ids(&store, "! b").await, ["bang"]);
        assert_eq!(ids(&store, "!").await, ["bang"]);
    }

    #[tokio::test]
    async fn search_pages_by_id_after_the_last_one_seen() {
        let mut tenants: Vec<NewTenant> = (0..25)
            .map(|i| {
                let domain = format!("p{i:02}.paged.test");
                tenant(&format!("t{i:02}"), "T", &format!("t{i:02}"), &[&domain])
            })
            .collect();
        tenants.push(tenant("other", "Other", "other", &["other.test"]));
        let (_dir, store) = store_with(tenants).await;
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = store.search_tenants("PAGED", after, 10).await.unwrap();
            seen.extend(page.iter().map(|r| r.tenant.id.clone()));
            if page.len() < 10 {
                break;
            }
            after = page.last().map(|r| r.tenant.id.clone());
        }
        let expected: Vec<String> = (0..25).map(|i| format!("t{i:02}")).collect();
        assert_eq!(seen, expected);
        let rest = store
            .search_tenants("paged", Some("t20".into()), 10)
            .await
            .unwrap();
        assert_eq!(rest.len(), 4);
        assert_eq!(rest[0].tenant.id, "t21");
    }
}
