//! Paths and settings: flags > CVVAULT_* environment > defaults (clap resolves the order).

use std::path::{Path, PathBuf};

pub use crate::store::PgTarget;

/// Where a deployment keeps its files.
#[derive(Clone, Debug)]
pub struct Paths {
    /// `keys/`: keyring, identity, recipients.
    pub keys_dir: PathBuf,
    /// `data/`: the SQLite database and the retention lock.
    pub data_dir: PathBuf,
    /// `policy/`: Cedar schema and policies, retention.toml, limits.toml.
    pub policy_dir: PathBuf,
    /// A PostgreSQL database to keep the rows in instead of `data/vault.db`
    /// (`--database postgres://...`, `CVVAULT_DATABASE_URL`).
    pub postgres: Option<crate::store::PgTarget>,
}

impl Paths {
    /// Paths under one root folder (used by the demo and tests).
    pub fn under(root: &Path) -> Paths {
        Paths {
            keys_dir: root.join("keys"),
            data_dir: root.join("data"),
            policy_dir: root.join("policy"),
            postgres: None,
        }
    }

    /// Where the rows are: the PostgreSQL database named, or the SQLite file `data/vault.db`.
    pub fn store(&self) -> crate::store::Location {
        match &self.postgres {
            Some(target) => crate::store::Location::Postgres(target.clone()),
            None => crate::store::Location::Sqlite(self.database()),
        }
    }

    /// `keys/keyring.age`.
    pub fn keyring(&self) -> PathBuf {
        self.keys_dir.join("keyring.age")
    }

    /// `keys/keyring.recipients`: who the keyring is encrypted to.
    pub fn keyring_recipients(&self) -> PathBuf {
        self.keys_dir.join("keyring.recipients")
    }

    /// `keys/keyring.lock`: held by a key rotation (or recipient change) while it runs.
    pub fn keyring_lock(&self) -> PathBuf {
        self.keys_dir.join("keyring.lock")
    }

    /// `keys/identity.txt`: the default operator identity.
    pub fn default_identity(&self) -> PathBuf {
        self.keys_dir.join("identity.txt")
    }

    /// `keys/recipients/<principal>.txt`: a principal's public age key for extracts.
    pub fn principal_recipient(&self, principal: &crate::ids::PrincipalId) -> PathBuf {
        self.keys_dir
            .join("recipients")
            .join(format!("{principal}.txt"))
    }

    /// `data/vault.db`.
    pub fn database(&self) -> PathBuf {
        self.data_dir.join("vault.db")
    }

    /// `data/retention.lock`.
    pub fn retention_lock(&self) -> PathBuf {
        self.data_dir.join("retention.lock")
    }

    /// `policy/retention.toml`.
    pub fn retention_settings(&self) -> PathBuf {
        self.policy_dir.join("retention.toml")
    }

    /// `policy/limits.toml`.
    pub fn limits_settings(&self) -> PathBuf {
        self.policy_dir.join("limits.toml")
    }
}
