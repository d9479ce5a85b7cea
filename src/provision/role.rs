//! A login role per database tenant (`provisioning.database_role`): named
//! like the database, with a generated password that is returned once to
//! the caller and never logged or stored. The server receives only a
//! SCRAM-SHA-256 verifier, so not even its statement log holds the password.

use std::fmt;

use ring::rand::{SecureRandom, SystemRandom};
use serde::Serialize;

use super::template::quote_ident;

/// The credentials of a new database tenant's role.
#[derive(Clone, Serialize, utoipa::ToSchema)]
pub struct DatabaseRole {
    /// The role (and database) name.
    pub name: String,
    /// Shown once, in the create answer.
    pub password: String,
}

impl fmt::Debug for DatabaseRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseRole")
            .field("name", &self.name)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl DatabaseRole {
    /// A role for `database` with 32 random bytes (hex) as its password.
    pub fn generate(database: &str) -> Result<DatabaseRole, String> {
        let mut bytes = [0u8; 32];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| "no random numbers for a password".to_owned())?;
        let password = bytes.iter().map(|b| format!("{b:02x}")).collect();
        Ok(DatabaseRole {
            name: database.to_owned(),
            password,
        })
    }

    /// Creates the role and makes it the only one (besides superusers and
    /// the owner) that may connect to `database`, in one implicit transaction.
    pub(super) fn create_sql(&self, database: &str) -> String {
        let verifier = postgres_protocol::password::scram_sha_256(self.password.as_bytes());
        let (role, db) = (quote_ident(&self.name), quote_ident(database));
        // The verifier is base64 and `$`/`:`: nothing to escape in a literal.
        format!(
            "CREATE ROLE {role} LOGIN PASSWORD '{verifier}';
             REVOKE ALL ON DATABASE {db} FROM PUBLIC;
             GRANT CONNECT, TEMPORARY ON DATABASE {db} TO {role};"
        )
    }

    /// Data (not schema) privileges on everything in `schema`, now and for
    /// objects later migrations create.
    pub(super) fn grant_sql(&self, schema: &str) -> String {
        let (role, s) = (quote_ident(&self.name), quote_ident(schema));
        format!(
            "GRANT USAGE ON SCHEMA {s} TO {role};
             GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {s} TO {role};
             GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA {s} TO {role};
             ALTER DEFAULT PRIVILEGES IN SCHEMA {s} GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {role};
             ALTER DEFAULT PRIVILEGES IN SCHEMA {s} GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO {role};"
        )
    }
}

/// Drops the role of a dropped database tenant (its database must be gone).
pub(super) fn drop_sql(name: &str) -> String {
    format!("DROP ROLE IF EXISTS {}", quote_ident(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_random_and_never_printed() {
        let a = DatabaseRole::generate("acme").unwrap();
        let b = DatabaseRole::generate("acme").unwrap();
        assert_eq!(a.password.len(), 64);
        assert_ne!(a.password, b.password);
        assert!(!format!("{a:?}").contains(&a.password));
        let sql = a.create_sql("acme");
        assert!(sql.contains("PASSWORD 'SCRAM-SHA-256$4096:"), "{sql}");
        assert!(
            !sql.contains(&a.password),
            "only the verifier goes to the server"
        );
    }
}
