//! The PostgreSQL store's ACME tables: certificates by domain, account
//! credentials by CA directory and pending challenge answers, shared by
//! every replica on the database, and which replica is ordering what
//! (native migrations 4 and 5; with the django-tenants layout, created beside its
//! tables only when `tls.acme` is configured).

use std::time::Duration;

use async_trait::async_trait;

use crate::store::CertificateStore;
use tokio_postgres::types::Type;
use tokio_postgres::Row;

use super::{pg_error, query, query_opt, PgStore};
use crate::clock::unix_now;
use crate::store::{StoreError, StoredCert};

/// The ACME tables (idempotent, so the django-tenants layout can run it at
/// every start).
pub(super) const ACME_TABLES: &str = "
CREATE TABLE IF NOT EXISTS gateway_acme_certificates (
    domain     text PRIMARY KEY,
    cert_pem   text,
    key_pem    text,
    not_after  bigint,
    failure    text,
    updated_at bigint NOT NULL
);
CREATE TABLE IF NOT EXISTS gateway_acme_accounts (
    directory   text PRIMARY KEY,
    credentials text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS gateway_acme_challenges (
    key               text PRIMARY KEY,
    key_authorization text NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now()
);
";

/// Which replica is ordering a domain's certificate, until when (native
/// migration 5; idempotent like `ACME_TABLES`).
pub(super) const ACME_ORDER_LEASES: &str = "
CREATE TABLE IF NOT EXISTS gateway_acme_orders (
    domain     text PRIMARY KEY,
    holder     text NOT NULL,
    expires_at timestamptz NOT NULL
);
";

const CERT_COLUMNS: &str = "domain, cert_pem, key_pem, not_after, failure, updated_at";

fn cert_from_row(r: &Row) -> StoredCert {
    StoredCert {
        domain: r.get(0),
        cert_pem: r.get(1),
        key_pem: r.get(2),
        not_after: r.get(3),
        failure: r.get(4),
        updated_at: r.get(5),
    }
}

#[async_trait]
impl CertificateStore for PgStore {
    /// Creates the ACME tables if missing (django-tenants layout; the native
    /// layout has them from its migrations).
    async fn prepare_certificates(&self) -> Result<(), StoreError> {
        if self.layout() == crate::config::StoreLayout::Native {
            return Ok(());
        }
        let conn = self.conn().await?;
        let tables = format!("{ACME_TABLES}{ACME_ORDER_LEASES}");
        conn.batch_execute(&tables).await.map_err(|e| {
            let e = pg_error(e);
            StoreError::Backend(format!(
                "cannot create the ACME tables beside django-tenants' (tls.acme): {e}"
            ))
        })
    }

    async fn get_certificate(&self, domain: &str) -> Result<Option<StoredCert>, StoreError> {
        let conn = self.conn().await?;
        let row = query_opt(
            &*conn,
            &format!("SELECT {CERT_COLUMNS} FROM gateway_acme_certificates WHERE domain = $1"),
            &[(&domain, Type::TEXT)],
        )
        .await?;
        Ok(row.as_ref().map(cert_from_row))
    }

    async fn put_certificate(
        &self,
        domain: &str,
        cert_pem: &str,
        key_pem: &str,
        not_after: i64,
    ) -> Result<(), StoreError> {
        let conn = self.conn().await?;
        let now = unix_now();
        query(
            &*conn,
            "INSERT INTO gateway_acme_certificates \
             (domain, cert_pem, key_pem, not_after, failure, updated_at) \
             VALUES ($1, $2, $3, $4, NULL, $5) ON CONFLICT (domain) DO UPDATE SET \
             cert_pem = excluded.cert_pem, key_pem = excluded.key_pem, \
             not_after = excluded.not_after, failure = NULL, updated_at = excluded.updated_at",
            &[
                (&domain, Type::TEXT),
                (&cert_pem, Type::TEXT),
                (&key_pem, Type::TEXT),
                (&not_after, Type::INT8),
                (&now, Type::INT8),
            ],
        )
        .await?;
        Ok(())
    }

    async fn record_certificate_failure(
        &self,
        domain: &str,
        reason: &str,
    ) -> Result<(), StoreError> {
        let conn = self.conn().await?;
        let now = unix_now();
        query(
            &*conn,
            "INSERT INTO gateway_acme_certificates (domain, failure, updated_at) \
             VALUES ($1, $2, $3) ON CONFLICT (domain) DO UPDATE SET \
             failure = excluded.failure, updated_at = excluded.updated_at",
            &[
                (&domain, Type::TEXT),
                (&reason, Type::TEXT),
                (&now, Type::INT8),
            ],
        )
        .await?;
        Ok(())
    }

    async fn list_certificates(&self) -> Result<Vec<StoredCert>, StoreError> {
        let conn = self.conn().await?;
        let rows = query(
            &*conn,
            &format!(
                "SELECT {CERT_COLUMNS} FROM gateway_acme_certificates \
                 WHERE cert_pem IS NOT NULL ORDER BY not_after, domain"
            ),
            &[],
        )
        .await?;
        Ok(rows.iter().map(cert_from_row).collect())
    }

    async fn put_acme_challenge(
        &self,
        key: &str,
        key_authorization: &str,
    ) -> Result<(), StoreError> {
        let conn = self.conn().await?;
        // Answers left behind by a replica that died mid-order go here
        // (orders take minutes at most).
        query(
            &*conn,
            "DELETE FROM gateway_acme_challenges WHERE created_at < now() - interval '1 day'",
            &[],
        )
        .await?;
        query(
            &*conn,
            "INSERT INTO gateway_acme_challenges (key, key_authorization) VALUES ($1, $2) \
             ON CONFLICT (key) DO UPDATE SET key_authorization = excluded.key_authorization, \
             created_at = now()",
            &[(&key, Type::TEXT), (&key_authorization, Type::TEXT)],
        )
        .await?;
        Ok(())
    }

    async fn get_acme_challenge(&self, key: &str) -> Result<Option<String>, StoreError> {
        let conn = self.conn().await?;
        let row = query_opt(
            &*conn,
            "SELECT key_authorization FROM gateway_acme_challenges WHERE key = $1",
            &[(&key, Type::TEXT)],
        )
        .await?;
        Ok(row.map(|r| r.get(0)))
    }

    async fn delete_acme_challenge(&self, key: &str) -> Result<(), StoreError> {
        let conn = self.conn().await?;
        query(
            &*conn,
            "DELETE FROM gateway_acme_challenges WHERE key = $1",
            &[(&key, Type::TEXT)],
        )
        .await?;
        Ok(())
    }

    async fn claim_certificate_order(
        &self,
        domain: &str,
        holder: &str,
        lease: Duration,
    ) -> Result<bool, StoreError> {
        let conn = self.conn().await?;
        // The database's clock, so replicas' clocks need not agree.
        let claimed = query_opt(
            &*conn,
            "INSERT INTO gateway_acme_orders (domain, holder, expires_at) \
             VALUES ($1, $2, now() + make_interval(secs => $3)) \
             ON CONFLICT (domain) DO UPDATE SET \
             holder = excluded.holder, expires_at = excluded.expires_at \
             WHERE gateway_acme_orders.expires_at < now() \
                OR gateway_acme_orders.holder = excluded.holder \
             RETURNING holder",
            &[
                (&domain, Type::TEXT),
                (&holder, Type::TEXT),
                (&lease.as_secs_f64(), Type::FLOAT8),
            ],
        )
        .await?;
        Ok(claimed.is_some())
    }

    async fn certificate_order_running(&self, domain: &str) -> Result<bool, StoreError> {
        let conn = self.conn().await?;
        let row = query_opt(
            &*conn,
            "SELECT 1 FROM gateway_acme_orders WHERE domain = $1 AND expires_at >= now()",
            &[(&domain, Type::TEXT)],
        )
        .await?;
        Ok(row.is_some())
    }

    async fn release_certificate_order(
        &self,
        domain: &str,
        holder: &str,
    ) -> Result<(), StoreError> {
        let conn = self.conn().await?;
        query(
            &*conn,
            "DELETE FROM gateway_acme_orders WHERE domain = $1 AND holder = $2",
            &[(&domain, Type::TEXT), (&holder, Type::TEXT)],
        )
        .await?;
        Ok(())
    }

    async fn get_acme_account(&self, directory: &str) -> Result<Option<String>, StoreError> {
        let conn = self.conn().await?;
        let row = query_opt(
            &*conn,
            "SELECT credentials FROM gateway_acme_accounts WHERE directory = $1",
            &[(&directory, Type::TEXT)],
        )
        .await?;
        Ok(row.map(|r| r.get(0)))
    }

    async fn put_acme_account(
        &self,
        directory: &str,
        credentials: &str,
    ) -> Result<String, StoreError> {
        let conn = self.conn().await?;
        // A replica that loses the race reads the winner's credentials.
        conn.execute(
            "INSERT INTO gateway_acme_accounts (directory, credentials) VALUES ($1, $2) \
             ON CONFLICT (directory) DO NOTHING",
            &[&directory, &credentials],
        )
        .await
        .map_err(pg_error)?;
        let row = query_opt(
            &*conn,
            "SELECT credentials FROM gateway_acme_accounts WHERE directory = $1",
            &[(&directory, Type::TEXT)],
        )
        .await?;
        row.map(|r| r.get(0)).ok_or_else(|| {
            StoreError::Backend(format!(
                "ACME account for {directory} vanished after insert"
            ))
        })
    }
}
