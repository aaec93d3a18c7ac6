//! PostgreSQL roles: the schema owner applies migrations (`paymentsctl db migrate`), the
//! services run as a role granted only row access. Such a role cannot drop or disable the
//! ledger's and the history's triggers, alter or drop tables, or TRUNCATE (none of which a
//! service needs), so a compromised gateway or worker cannot rewrite the books the triggers
//! keep append-only.

use crate::{Backend, Store, StoreError};

/// The grants of a service role: rows only, on every table and sequence of the schema, now
/// and (default privileges of the granting owner) on those later migrations create.
const GRANTS: [&str; 5] = [
    "GRANT USAGE ON SCHEMA public TO {role}",
    "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}",
    "GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {role}",
    "ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {role}",
    "ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO {role}",
];

/// Whether `role` is a plain lower-case identifier (what the grants splice in, quoted).
pub fn is_role_name(role: &str) -> bool {
    let mut chars = role.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && role.len() <= 63
}

impl Store {
    /// Grants `role` (which must exist) row access to every table of the schema, as of now:
    /// run it after each migration (`paymentsctl db migrate --grant-to` does). PostgreSQL only.
    pub async fn grant_service_role(&self, role: &str) -> Result<(), StoreError> {
        if self.backend() != Backend::Postgres {
            return Err(StoreError::Precondition("service roles are a PostgreSQL feature".into()));
        }
        if !is_role_name(role) {
            return Err(StoreError::Precondition(format!("{role:?} is not a role name ([a-z_][a-z0-9_]*)")));
        }
        let mut tx = self.pool().begin().await?;
        for grant in GRANTS {
            sqlx::query(&grant.replace("{role}", &format!("\"{role}\""))).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        tracing::info!(role, "service role granted row access");
        Ok(())
    }
}
