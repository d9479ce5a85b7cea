//! The warm table against the embedded store: exact beats wildcard, unknown
//! hosts answered alone once loaded, changes re-read into the overlay and
//! merged, and a partial table that leaves what it lacks to the store.

use super::*;
use crate::store::{OpenMode, SqliteStore, Store};
use crate::tenant::{NewTenant, TenantPatch, TenantStatus};

async fn store(dir: &std::path::Path) -> Arc<SqliteStore> {
    let store = SqliteStore::open(&dir.join("gw.db"), OpenMode::CreateIfMissing).unwrap();
    let batch = vec![
        NewTenant::example("acme", &["acme.test", "*.acme.test"]),
        NewTenant::example("shop", &["shop.acme.test"]),
    ];
    assert!(store.import_tenants(batch).await.unwrap().is_empty());
    Arc::new(store)
}

fn tenant_of(lookup: Lookup) -> Option<String> {
    match lookup {
        Lookup::Found(route) => Some(format!("{}@{}", route.tenant.id, route.matched_domain)),
        Lookup::Unknown => None,
        Lookup::Miss => Some("miss".into()),
    }
}

#[tokio::test]
async fn a_loaded_table_answers_exact_wildcard_and_unknown_hosts() {
    let dir = tempfile::tempdir().unwrap();
    let table = DomainTable::new(store(dir.path()).await, 100);
    assert_eq!(tenant_of(table.lookup("acme.test")).unwrap(), "miss");
    assert_eq!(table.load().await.unwrap(), 3);
    assert!(table.is_authoritative());
    let at = |host| tenant_of(table.lookup(host));
    assert_eq!(at("acme.test").unwrap(), "acme@acme.test");
    assert_eq!(at("x.acme.test").unwrap(), "acme@*.acme.test");
    assert_eq!(
        at("shop.acme.test").unwrap(),
        "shop@shop.acme.test",
        "exact beats wildcard"
    );
    assert_eq!(at("a.b.acme.test"), None, "one label below only");
    assert_eq!(at("junk.example"), None);
}

#[tokio::test]
async fn changes_are_re_read_into_the_table() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path()).await;
    let table = DomainTable::new(store.clone(), 100);
    table.load().await.unwrap();

    store
        .add_domain("shop", "shop.test".into(), false)
        .await
        .unwrap();
    store.remove_domain("shop.acme.test").await.unwrap();
    let patch = TenantPatch {
        status: Some(TenantStatus::Suspended),
        ..TenantPatch::default()
    };
    store.update_tenant("acme", patch).await.unwrap();
    let changed = ["shop.test", "shop.acme.test", "acme.test", "*.acme.test"];
    table.changed(&changed.map(String::from)).await;

    let at = |host| tenant_of(table.lookup(host));
    assert_eq!(at("shop.test").unwrap(), "shop@shop.test");
    assert_eq!(
        at("shop.acme.test").unwrap(),
        "acme@*.acme.test",
        "the wildcard now"
    );
    let Lookup::Found(acme) = table.lookup("acme.test") else {
        panic!("acme.test is held");
    };
    assert_eq!(acme.tenant.status, TenantStatus::Suspended);
    assert_eq!(table.domains(), 3);
}

#[tokio::test]
async fn a_grown_overlay_is_merged_without_losing_a_domain() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path()).await;
    let table = DomainTable::new(store.clone(), 100_000);
    table.load().await.unwrap();
    let domains: Vec<String> = (0..MERGE_TEST_DOMAINS)
        .map(|i| format!("d{i}.test"))
        .collect();
    let batch = domains
        .chunks(100)
        .enumerate()
        .map(|(i, chunk)| {
            let names: Vec<&str> = chunk.iter().map(String::as_str).collect();
            NewTenant::example(&format!("t{i}"), &names)
        })
        .collect();
    assert!(store.import_tenants(batch).await.unwrap().is_empty());
    table.changed(&domains).await;
    // The merge runs in the background: wait for the overlay to empty.
    for _ in 0..200 {
        if table.inner.snapshot.load().overlay.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let snapshot = table.inner.snapshot.load();
    assert!(snapshot.overlay.is_empty(), "merged into the block");
    assert_eq!(snapshot.block.len(), MERGE_TEST_DOMAINS + 3);
    assert_eq!(table.domains() as usize, MERGE_TEST_DOMAINS + 3);
    assert_eq!(
        tenant_of(table.lookup("d4321.test")).unwrap(),
        "t43@d4321.test"
    );
    assert_eq!(
        tenant_of(table.lookup("x.acme.test")).unwrap(),
        "acme@*.acme.test"
    );
}

const MERGE_TEST_DOMAINS: usize = 5000;

#[tokio::test]
async fn a_partial_table_leaves_what_it_lacks_to_the_store() {
    let dir = tempfile::tempdir().unwrap();
    // Ordered by domain: `*.acme.test` and `acme.test` fit, `shop.acme.test` does not.
    let table = DomainTable::new(store(dir.path()).await, 2);
    assert_eq!(table.load().await.unwrap(), 2);
    assert!(!table.is_authoritative());
    assert_eq!(
        tenant_of(table.lookup("acme.test")).unwrap(),
        "acme@acme.test"
    );
    for host in ["shop.acme.test", "x.acme.test", "junk.example"] {
        assert_eq!(tenant_of(table.lookup(host)).unwrap(), "miss", "{host}");
    }
}

#[tokio::test]
async fn a_load_on_two_threads_finds_every_domain_across_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("gw.db"), OpenMode::CreateIfMissing).unwrap();
    // Two halves of more than a chunk each, tenants of three domains so
    // some straddle a chunk's end.
    let tenants = 12_000;
    let batch: Vec<NewTenant> = (0..tenants)
        .map(|i| {
            let domains = [0, 1, 2].map(|d| format!("d{d}.t{i}.test"));
            let domains: Vec<&str> = domains.iter().map(String::as_str).collect();
            NewTenant::example(&format!("t{i}"), &domains)
        })
        .collect();
    assert!(store.import_tenants(batch).await.unwrap().is_empty());
    let table = DomainTable::new(Arc::new(store), 1_000_000);
    assert_eq!(table.load().await.unwrap(), 3 * tenants as u64);
    for i in (0..tenants).step_by(7) {
        for d in 0..3 {
            let host = format!("d{d}.t{i}.test");
            assert_eq!(
                tenant_of(table.lookup(&host)).unwrap(),
                format!("t{i}@{host}")
            );
        }
    }
    assert_eq!(
        table.inner.snapshot.load().block.records.len(),
        tenants,
        "tenants kept once each"
    );
}
