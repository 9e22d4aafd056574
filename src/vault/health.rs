//! Readiness: can this vault serve requests right now?

use serde::Serialize;

use super::Vault;
use crate::error::Result;
use crate::store::rows;

/// What `/readyz` reports. Each check is `ok` or says what failed (never a secret).
#[derive(Debug, Serialize)]
pub struct Readiness {
    /// A read connection answers and the writer thread commits.
    pub database: String,
    /// The keyring is unlocked and holds the current key-encryption key.
    pub keyring: String,
    /// The policy set in force validated in strict mode when it was loaded (the vault does
    /// not open on a policy that does not validate).
    pub policy: String,
    /// `sha256:<hex>` of the policy set in force.
    pub policy_hash: String,
}

impl Readiness {
    /// Whether every check passed.
    pub fn ready(&self) -> bool {
        self.database == "ok" && self.keyring == "ok" && self.policy == "ok"
    }
}

impl Vault {
    /// Checks the database (a read and an empty write through the writer), the keyring and
    /// the policy. Appends nothing to the audit trail.
    pub fn readiness(&self) -> Readiness {
        let read: Result<Option<String>> = self
            .readers()
            .read(|conn| rows::meta(conn, "current_kek_version"));
        let database =
            match read.and_then(|current| self.writer().write(|_| Ok(())).map(|()| current)) {
                Ok(_) => "ok".to_owned(),
                Err(e) => {
                    tracing::error!(error = %e, "readiness: the database does not answer");
                    "unavailable".to_owned()
                }
            };
        let ring = self.keyring();
        let keyring = if ring.versions().contains(&ring.current_version()) {
            "ok".to_owned()
        } else {
            "the current key-encryption key is missing from the keyring".to_owned()
        };
        Readiness {
            database,
            keyring,
            policy: "ok".to_owned(),
            policy_hash: format!("sha256:{}", hex::encode(self.policy().policy_hash())),
        }
    }
}
