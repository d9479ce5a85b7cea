//! The embedded store's ACME tables: certificates by domain, account
//! credentials by CA directory, pending challenge answers (schema step 4),
//! and order leases (step 5).

use std::time::Duration;

use async_trait::async_trait;

use crate::store::CertificateStore;
use rusqlite::{params, OptionalExtension, Row};

use super::{backend, SqliteStore};
use crate::clock::unix_now;
use crate::store::{StoreError, StoredCert};

/// Schema step adding the ACME tables.
pub(super) const SCHEMA_ACME: &str = "
CREATE TABLE acme_certificates (
    domain     TEXT PRIMARY KEY,
    cert_pem   TEXT,
    key_pem    TEXT,
    not_after  INTEGER,
    failure    TEXT,
    updated_at INTEGER NOT NULL
);
CREATE TABLE acme_accounts (
    directory   TEXT PRIMARY KEY,
    credentials TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE TABLE acme_challenges (
    key               TEXT PRIMARY KEY,
    key_authorization TEXT NOT NULL,
    created_at        INTEGER NOT NULL
);
";

/// Schema step adding the order leases (which process orders what, until when).
pub(super) const SCHEMA_ACME_ORDERS: &str = "
CREATE TABLE acme_orders (
    domain     TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
";

/// A published challenge answer older than this is left over (orders take
/// minutes at most) and removed with the next one published.
const STALE_CHALLENGE_SECS: i64 = 24 * 3600;

const CERT_COLUMNS: &str = "domain, cert_pem, key_pem, not_after, failure, updated_at";

fn cert_from_row(r: &Row<'_>) -> rusqlite::Result<StoredCert> {
    Ok(StoredCert {
        domain: r.get(0)?,
        cert_pem: r.get(1)?,
        key_pem: r.get(2)?,
        not_after: r.get(3)?,
        failure: r.get(4)?,
        updated_at: r.get(5)?,
    })
}

#[async_trait]
impl CertificateStore for SqliteStore {
    /// Drops order leases left by an earlier run: the embedded store belongs
    /// to one gateway process, and a restart mid-order would otherwise wait
    /// out its own old lease before ordering that certificate again.
    async fn prepare_certificates(&self) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.execute("DELETE FROM acme_orders", []).map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn get_certificate(&self, domain: &str) -> Result<Option<StoredCert>, StoreError> {
        let domain = domain.to_owned();
        self.read(move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {CERT_COLUMNS} FROM acme_certificates WHERE domain = ?1"
            ))
            .map_err(backend)?
            .query_row([&domain], cert_from_row)
            .optional()
            .map_err(backend)
        })
        .await
    }

    async fn put_certificate(
        &self,
        domain: &str,
        cert_pem: &str,
        key_pem: &str,
        not_after: i64,
    ) -> Result<(), StoreError> {
        let (domain, cert_pem, key_pem) =
            (domain.to_owned(), cert_pem.to_owned(), key_pem.to_owned());
        self.write(move |tx| {
            tx.execute(
                "INSERT INTO acme_certificates (domain, cert_pem, key_pem, not_after, failure, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, NULL, ?5) ON CONFLICT (domain) DO UPDATE SET \
                 cert_pem = excluded.cert_pem, key_pem = excluded.key_pem, \
                 not_after = excluded.not_after, failure = NULL, updated_at = excluded.updated_at",
                params![domain, cert_pem, key_pem, not_after, unix_now()],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn record_certificate_failure(
        &self,
        domain: &str,
        reason: &str,
    ) -> Result<(), StoreError> {
        let (domain, reason) = (domain.to_owned(), reason.to_owned());
        self.write(move |tx| {
            tx.execute(
                "INSERT INTO acme_certificates (domain, failure, updated_at) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (domain) DO UPDATE SET failure = excluded.failure, \
                 updated_at = excluded.updated_at",
                params![domain, reason, unix_now()],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn list_certificates(&self) -> Result<Vec<StoredCert>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {CERT_COLUMNS} FROM acme_certificates \
                     WHERE cert_pem IS NOT NULL ORDER BY not_after, domain"
                ))
                .map_err(backend)?;
            let rows = stmt.query_map([], cert_from_row).map_err(backend)?;
            rows.collect::<Result<_, _>>().map_err(backend)
        })
        .await
    }

    async fn put_acme_challenge(
        &self,
        key: &str,
        key_authorization: &str,
    ) -> Result<(), StoreError> {
        let (key, key_authorization) = (key.to_owned(), key_authorization.to_owned());
        self.write(move |tx| {
            // Answers left behind by a replica that died mid-order go here.
            tx.execute(
                "DELETE FROM acme_challenges WHERE created_at < ?1",
                [unix_now() - STALE_CHALLENGE_SECS],
            )
            .map_err(backend)?;
            tx.execute(
                "INSERT INTO acme_challenges (key, key_authorization, created_at) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (key) DO UPDATE SET key_authorization = excluded.key_authorization, \
                 created_at = excluded.created_at",
                params![key, key_authorization, unix_now()],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn get_acme_challenge(&self, key: &str) -> Result<Option<String>, StoreError> {
        let key = key.to_owned();
        self.read(move |conn| {
            conn.prepare_cached("SELECT key_authorization FROM acme_challenges WHERE key = ?1")
                .map_err(backend)?
                .query_row([&key], |r| r.get(0))
                .optional()
                .map_err(backend)
        })
        .await
    }

    async fn delete_acme_challenge(&self, key: &str) -> Result<(), StoreError> {
        let key = key.to_owned();
        self.write(move |tx| {
            tx.execute("DELETE FROM acme_challenges WHERE key = ?1", [&key])
                .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn claim_certificate_order(
        &self,
        domain: &str,
        holder: &str,
        lease: Duration,
    ) -> Result<bool, StoreError> {
        let (domain, holder) = (domain.to_owned(), holder.to_owned());
        let now = unix_now();
        let expires_at = now + lease.as_secs() as i64;
        self.write(move |tx| {
            let changed = tx
                .execute(
                    "INSERT INTO acme_orders (domain, holder, expires_at) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (domain) DO UPDATE SET \
                     holder = excluded.holder, expires_at = excluded.expires_at \
                     WHERE acme_orders.expires_at < ?4 OR acme_orders.holder = excluded.holder",
                    params![domain, holder, expires_at, now],
                )
                .map_err(backend)?;
            Ok(changed == 1)
        })
        .await
    }

    async fn certificate_order_running(&self, domain: &str) -> Result<bool, StoreError> {
        let domain = domain.to_owned();
        let now = unix_now();
        self.read(move |conn| {
            conn.prepare_cached("SELECT 1 FROM acme_orders WHERE domain = ?1 AND expires_at >= ?2")
                .map_err(backend)?
                .query_row(params![domain, now], |_| Ok(()))
                .optional()
                .map(|found| found.is_some())
                .map_err(backend)
        })
        .await
    }

    async fn release_certificate_order(
        &self,
        domain: &str,
        holder: &str,
    ) -> Result<(), StoreError> {
        let (domain, holder) = (domain.to_owned(), holder.to_owned());
        self.write(move |tx| {
            tx.execute(
                "DELETE FROM acme_orders WHERE domain = ?1 AND holder = ?2",
                [&domain, &holder],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn get_acme_account(&self, directory: &str) -> Result<Option<String>, StoreError> {
        let directory = directory.to_owned();
        self.read(move |conn| {
            conn.prepare_cached("SELECT credentials FROM acme_accounts WHERE directory = ?1")
                .map_err(backend)?
                .query_row([&directory], |r| r.get(0))
                .optional()
                .map_err(backend)
        })
        .await
    }

    async fn put_acme_account(
        &self,
        directory: &str,
        credentials: &str,
    ) -> Result<String, StoreError> {
        let (directory, credentials) = (directory.to_owned(), credentials.to_owned());
        self.write(move |tx| {
            tx.execute(
                "INSERT INTO acme_accounts (directory, credentials, created_at) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (directory) DO NOTHING",
                params![directory, credentials, unix_now()],
            )
            .map_err(backend)?;
            tx.query_row(
                "SELECT credentials FROM acme_accounts WHERE directory = ?1",
                [&directory],
                |r| r.get(0),
            )
            .map_err(backend)
        })
        .await
    }
}

#[cfg(test)]
mod tests;
