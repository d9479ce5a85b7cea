//! The ACME tables of the embedded store: certificates and the account
//! across reopening, challenge answers, and order leases.

use crate::store::{CertificateStore, OpenMode, SqliteStore};

#[tokio::test]
async fn certificates_and_the_account_survive_reopen_and_failures_keep_the_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gw.db");
    let store = SqliteStore::open(&path, OpenMode::CreateIfMissing).unwrap();
    assert_eq!(store.get_certificate("a.test").await.unwrap(), None);
    store
        .record_certificate_failure("a.test", "CA said no")
        .await
        .unwrap();
    let failed = store.get_certificate("a.test").await.unwrap().unwrap();
    assert_eq!(
        (failed.failure.as_deref(), failed.pem()),
        (Some("CA said no"), None)
    );
    assert!(store.list_certificates().await.unwrap().is_empty());

    store
        .put_certificate("a.test", "CERT", "KEY", 42)
        .await
        .unwrap();
    store
        .record_certificate_failure("a.test", "renewal failed")
        .await
        .unwrap();
    let first = store
        .put_acme_account("https://ca/dir", "{\"id\":1}")
        .await
        .unwrap();
    let second = store
        .put_acme_account("https://ca/dir", "{\"id\":2}")
        .await
        .unwrap();
    assert_eq!(
        (first.as_str(), second.as_str()),
        ("{\"id\":1}", "{\"id\":1}")
    );
    drop(store);

    let store = SqliteStore::open(&path, OpenMode::CreateIfMissing).unwrap();
    let kept = store.get_certificate("a.test").await.unwrap().unwrap();
    assert_eq!(kept.pem(), Some(("CERT", "KEY")));
    assert_eq!(
        (kept.not_after, kept.failure.as_deref()),
        (Some(42), Some("renewal failed"))
    );
    store
        .put_certificate("a.test", "CERT2", "KEY2", 43)
        .await
        .unwrap();
    let listed = store.list_certificates().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].not_after, listed[0].failure.as_deref()),
        (Some(43), None)
    );
    assert_eq!(
        store
            .get_acme_account("https://ca/dir")
            .await
            .unwrap()
            .as_deref(),
        Some("{\"id\":1}")
    );
    assert_eq!(
        store.get_acme_account("https://other/dir").await.unwrap(),
        None
    );
}

#[tokio::test]
async fn challenge_answers_are_published_withdrawn_and_purged_when_stale() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("gw.db"), OpenMode::CreateIfMissing).unwrap();
    store.put_acme_challenge("tok", "tok.thumb").await.unwrap();
    let got = store.get_acme_challenge("tok").await.unwrap();
    assert_eq!(got.as_deref(), Some("tok.thumb"));
    store.delete_acme_challenge("tok").await.unwrap();
    assert_eq!(store.get_acme_challenge("tok").await.unwrap(), None);

    // An answer left behind for a day goes when the next one is published.
    store.put_acme_challenge("old", "old.thumb").await.unwrap();
    store
        .write(|tx| {
            tx.execute("UPDATE acme_challenges SET created_at = 0", [])
                .map_err(super::backend)
        })
        .await
        .unwrap();
    store.put_acme_challenge("new", "new.thumb").await.unwrap();
    assert_eq!(store.get_acme_challenge("old").await.unwrap(), None);
    assert!(store.get_acme_challenge("new").await.unwrap().is_some());
}

#[tokio::test]
async fn one_holder_at_a_time_orders_a_domain_until_release_or_expiry() {
    use std::time::Duration;
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("gw.db"), OpenMode::CreateIfMissing).unwrap();
    let hour = Duration::from_secs(3600);
    let claim = |holder: &'static str, lease| {
        let store = &store;
        async move {
            store
                .claim_certificate_order("a.test", holder, lease)
                .await
                .unwrap()
        }
    };
    assert!(!store.certificate_order_running("a.test").await.unwrap());
    assert!(claim("one", hour).await);
    assert!(store.certificate_order_running("a.test").await.unwrap());
    assert!(!claim("two", hour).await, "held by one");
    assert!(claim("one", hour).await, "one may renew its own lease");
    assert!(store
        .claim_certificate_order("b.test", "two", hour)
        .await
        .unwrap());
    store
        .release_certificate_order("a.test", "two")
        .await
        .unwrap();
    assert!(!claim("two", hour).await, "only the holder releases");
    store
        .release_certificate_order("a.test", "one")
        .await
        .unwrap();
    assert!(claim("two", Duration::ZERO).await, "released");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(!store.certificate_order_running("a.test").await.unwrap());
    assert!(claim("one", hour).await, "two's lease ran out");
    store.prepare_certificates().await.unwrap();
    assert!(claim("two", hour).await, "a restart forgets old leases");
}
