use super::schema::SCHEMA_V1;
use super::*;

#[tokio::test]
async fn exact_domains_beat_wildcards_and_data_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gw.db");
    let store = SqliteStore::open(&path, OpenMode::CreateIfMissing).unwrap();
    store
        .create_tenant(NewTenant::example("wild", &["*.example.com"]))
        .await
        .unwrap();
    store
        .create_tenant(NewTenant::example("exact", &["shop.example.com"]))
        .await
        .unwrap();
    drop(store);

    let store = SqliteStore::open(&path, OpenMode::CreateIfMissing).unwrap();
    let hit = |h: &'static str| {
        let store = store.clone();
        async move {
            store
                .resolve_host(h)
                .await
                .unwrap()
                .map(|m| (m.tenant.id, m.domain))
        }
    };
    assert_eq!(
        hit("shop.example.com").await,
        Some(("exact".into(), "shop.example.com".into()))
    );
    assert_eq!(
        hit("any.example.com").await,
        Some(("wild".into(), "*.example.com".into()))
    );
    assert_eq!(hit("a.b.example.com").await, None);
    assert_eq!(hit("example.com").await, None);
}

#[tokio::test]
async fn a_version_1_file_is_upgraded_and_keeps_its_tenants() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gw.db");
    let v1 = Connection::open(&path).unwrap();
    v1.execute_batch(&format!("{SCHEMA_V1} PRAGMA user_version = 1;"))
        .unwrap();
    v1.execute(
        "INSERT INTO tenants VALUES ('old', 'Old', 'old', 'schema', 'active', NULL, '')",
        [],
    )
    .unwrap();
    drop(v1);

    let store = SqliteStore::open(&path, OpenMode::CreateIfMissing).unwrap();
    let old = store.get_tenant("old").await.unwrap().unwrap();
    assert_eq!(old.tenant.plan, None);
    let mut premium = NewTenant::example("new", &[]);
    premium.plan = Some("premium".into());
    store.create_tenant(premium).await.unwrap();
    let patch = TenantPatch {
        plan: Some(Some("basic".into())),
        ..TenantPatch::default()
    };
    let updated = store.update_tenant("old", patch).await.unwrap();
    assert_eq!(updated.tenant.plan.as_deref(), Some("basic"));
    assert_eq!(
        updated.tenant.limits, None,
        "no controls before any are set"
    );
    let controls = TenantPatch {
        limits: Some(Some(crate::tenant::TenantLimits {
            concurrency: Some(3),
            ..Default::default()
        })),
        maintenance: Some(Some(crate::tenant::Maintenance::starting_now(None))),
        ..TenantPatch::default()
    };
    store.update_tenant("old", controls).await.unwrap();
    drop(store);
    let store = SqliteStore::open(&path, OpenMode::CreateIfMissing).unwrap();
    let new = store.get_tenant("new").await.unwrap().unwrap();
    assert_eq!(new.tenant.plan.as_deref(), Some("premium"));
    let old = store.get_tenant("old").await.unwrap().unwrap().tenant;
    assert_eq!(old.limits.unwrap().concurrency, Some(3));
    assert!(old.maintenance.is_some() && old.plan.as_deref() == Some("basic"));
}

#[tokio::test]
async fn conflicts_are_reported_and_leave_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("gw.db"), OpenMode::CreateIfMissing).unwrap();
    store
        .create_tenant(NewTenant::example("acme", &["acme.test"]))
        .await
        .unwrap();
    let dup_domain = store
        .create_tenant(NewTenant::example("other", &["other.test", "acme.test"]))
        .await;
    assert_eq!(
        dup_domain,
        Err(StoreError::Conflict {
            what: "domain",
            key: "acme.test".into()
        })
    );
    assert_eq!(
        store.resolve_host("other.test").await.unwrap(),
        None,
        "partial create must roll back"
    );
    let mut dup_schema = NewTenant::example("acme2", &[]);
    dup_schema.schema = "acme".into();
    assert!(matches!(
        store.create_tenant(dup_schema).await,
        Err(StoreError::Conflict { what: "schema", .. })
    ));
}

#[tokio::test]
async fn import_commits_good_rows_and_reports_conflicts() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("gw.db"), OpenMode::CreateIfMissing).unwrap();
    store
        .create_tenant(NewTenant::example("taken", &["taken.test"]))
        .await
        .unwrap();
    let batch = vec![
        NewTenant::example("a", &["a.test"]),
        NewTenant::example("taken", &["other.test"]),
        NewTenant::example("b", &["a.test"]),
        NewTenant::example("c", &["c.test", "c2.test"]),
    ];
    let rejected = store.import_tenants(batch).await.unwrap();
    let indexes: Vec<usize> = rejected.iter().map(|(i, _)| *i).collect();
    assert_eq!(indexes, [1, 2]);
    assert_eq!(
        store
            .resolve_host("c2.test")
            .await
            .unwrap()
            .unwrap()
            .tenant
            .id,
        "c"
    );
    assert!(store.get_tenant("b").await.unwrap().is_none());
    assert!(store.resolve_host("other.test").await.unwrap().is_none());
}

#[tokio::test]
async fn primary_domain_moves_when_removed() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("gw.db"), OpenMode::CreateIfMissing).unwrap();
    store
        .create_tenant(NewTenant::example("acme", &["a.test", "b.test"]))
        .await
        .unwrap();
    store
        .add_domain("acme", "c.test".into(), true)
        .await
        .unwrap();
    let rec = store.get_tenant("acme").await.unwrap().unwrap();
    assert_eq!(rec.domains.iter().filter(|d| d.is_primary).count(), 1);
    assert!(rec.domains[0].is_primary && rec.domains[0].domain == "c.test");
    store.remove_domain("c.test").await.unwrap();
    let rec = store.get_tenant("acme").await.unwrap().unwrap();
    assert_eq!(
        rec.domains
            .iter()
            .filter(|d| d.is_primary)
            .map(|d| d.domain.as_str())
            .collect::<Vec<_>>(),
        ["a.test"]
    );
}

#[tokio::test]
async fn a_process_follows_the_other_writers_of_its_file_and_not_itself() {
    use crate::store::feed::{Change, FeedEvent};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gw.db");
    let gateway = SqliteStore::open(&path, OpenMode::CreateIfMissing).unwrap();
    let cli = SqliteStore::open(&path, OpenMode::CreateIfMissing).unwrap();
    gateway
        .create_tenant(NewTenant::example("before", &["before.test"]))
        .await
        .unwrap();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let mut feed = gateway.follow_changes(shutdown.clone());
    assert!(matches!(
        feed.recv().await,
        Some(FeedEvent::Connected(true))
    ));
    assert!(matches!(feed.recv().await, Some(FeedEvent::CaughtUp)));

    gateway
        .create_tenant(NewTenant::example("own", &["own.test"]))
        .await
        .unwrap();
    cli.create_tenant(NewTenant::example("acme", &["acme.test", "www2.acme.test"]))
        .await
        .unwrap();
    cli.remove_domain("www2.acme.test").await.unwrap();
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let event = tokio::time::timeout(std::time::Duration::from_secs(5), feed.recv())
            .await
            .expect("the other writer's changes arrive")
            .unwrap();
        if let FeedEvent::Changes(batch) = event {
            seen.extend(batch.changes);
        }
    }
    // Neither the row from before following nor the gateway's own write.
    assert_eq!(
        seen,
        [
            Change::Domains(vec!["acme.test".into(), "www2.acme.test".into()]),
            Change::Domains(vec!["www2.acme.test".into()]),
        ]
    );
    shutdown.cancel();
}

#[tokio::test]
async fn opening_an_existing_store_never_creates_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing").join("gw.db");
    let missing = SqliteStore::open(&path, OpenMode::Existing).err();
    assert!(
        matches!(missing, Some(StoreError::NotFound { what: "store", .. })),
        "{missing:?}"
    );
    assert!(!dir.path().join("missing").exists(), "nothing is created");

    let store = SqliteStore::open(&path, OpenMode::CreateIfMissing).unwrap();
    store
        .create_tenant(NewTenant::example("acme", &["acme.test"]))
        .await
        .unwrap();
    drop(store);
    let store = SqliteStore::open(&path, OpenMode::Existing).unwrap();
    assert!(store.get_tenant("acme").await.unwrap().is_some());
}

/// What a scan gave: whether grouped, and (the tenant id when given, the domain).
type Scanned = (bool, Vec<(Option<String>, String)>);

/// Collects what a scan gives.
struct Collect(std::sync::Arc<std::sync::Mutex<Scanned>>);

impl crate::store::RouteSink for Collect {
    fn grouped(&mut self) {
        self.0.lock().unwrap().0 = true;
    }
    fn route(&mut self, tenant: Option<&crate::tenant::Tenant>, domain: &str) -> bool {
        let given = tenant.map(|t| t.id.clone());
        self.0.lock().unwrap().1.push((given, domain.to_owned()));
        true
    }
}

/// Reads grouped routes as a sink gets them: the tenants given (`given`),
/// and each domain with the tenant given last before it (`tenant_of`).
fn read_grouped(
    routes: Vec<(Option<String>, String)>,
    given: &mut Vec<String>,
    tenant_of: &mut Vec<(String, String)>,
) {
    let mut current = None;
    for (tenant, domain) in routes {
        if tenant.is_some() {
            given.extend(tenant.clone());
            current = tenant;
        }
        tenant_of.push((domain, current.clone().expect("a tenant comes first")));
    }
}

#[tokio::test]
async fn a_scan_gives_every_domain_once_after_its_tenant_grouped() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("gw.db"), OpenMode::CreateIfMissing).unwrap();
    let batch = vec![
        NewTenant::example("acme", &["acme.test", "*.acme.test"]),
        NewTenant::example("shop", &["shop.test"]),
    ];
    assert!(store.import_tenants(batch).await.unwrap().is_empty());
    // Added last, so not next to acme's other domains in the file.
    store
        .add_domain("acme", "late.test".into(), false)
        .await
        .unwrap();
    let seen = std::sync::Arc::default();
    store
        .scan_routes(Box::new(Collect(std::sync::Arc::clone(&seen))))
        .await
        .unwrap();
    let (grouped, routes) = std::mem::take(&mut *seen.lock().unwrap());
    assert!(grouped);
    let (mut given_tenants, mut tenant_of) = (Vec::new(), Vec::new());
    read_grouped(routes, &mut given_tenants, &mut tenant_of);
    given_tenants.sort();
    assert_eq!(given_tenants, ["acme", "shop"], "each tenant given once");
    tenant_of.sort();
    let expected = [
        ("*.acme.test", "acme"),
        ("acme.test", "acme"),
        ("late.test", "acme"),
        ("shop.test", "shop"),
    ]
    .map(|(d, t)| (d.to_owned(), t.to_owned()));
    assert_eq!(tenant_of, expected);
}

/// What each sink of a split scan gave: (the tenant id when given, the domain).
type ScannedHalves = std::sync::Arc<std::sync::Mutex<Vec<Vec<(Option<String>, String)>>>>;

/// Collects what each sink of a split scan gives, a list per sink.
struct Halves(ScannedHalves, usize);

impl crate::store::RouteSink for Halves {
    fn split(&mut self) -> Option<Box<dyn crate::store::RouteSink>> {
        let mut all = self.0.lock().unwrap();
        all.push(Vec::new());
        Some(Box::new(Halves(self.0.clone(), all.len() - 1)))
    }
    fn route(&mut self, tenant: Option<&crate::tenant::Tenant>, domain: &str) -> bool {
        let given = tenant.map(|t| t.id.clone());
        self.0.lock().unwrap()[self.1].push((given, domain.to_owned()));
        true
    }
}

#[tokio::test]
async fn a_split_scan_gives_each_half_whole_tenants_and_every_domain_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("gw.db"), OpenMode::CreateIfMissing).unwrap();
    let batch: Vec<NewTenant> = (0..100)
        .map(|i| {
            NewTenant::example(
                &format!("t{i}"),
                &[&format!("a{i}.test"), &format!("b{i}.test")],
            )
        })
        .collect();
    assert!(store.import_tenants(batch).await.unwrap().is_empty());
    store
        .add_domain("t0", "late.test".into(), false)
        .await
        .unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(vec![Vec::new()]));
    store
        .scan_routes(Box::new(Halves(seen.clone(), 0)))
        .await
        .unwrap();
    let halves = std::mem::take(&mut *seen.lock().unwrap());
    assert_eq!(halves.len(), 2, "the store read on two threads");
    let (mut tenant_of, mut given) = (Vec::new(), Vec::new());
    for half in halves {
        assert!(
            half.len() >= 50,
            "each half reads about half: {}",
            half.len()
        );
        read_grouped(half, &mut given, &mut tenant_of);
    }
    given.sort();
    let mut ids: Vec<String> = (0..100).map(|i| format!("t{i}")).collect();
    ids.sort();
    assert_eq!(given, ids, "each tenant given once, in one half");
    tenant_of.sort();
    let mut expected: Vec<(String, String)> = (0..100)
        .flat_map(|i| {
            [
                (format!("a{i}.test"), format!("t{i}")),
                (format!("b{i}.test"), format!("t{i}")),
            ]
        })
        .chain([("late.test".to_owned(), "t0".to_owned())])
        .collect();
    expected.sort();
    assert_eq!(tenant_of, expected);
}
