//! Key rotation and status. Rotation adds KEK version v+1, rewraps every DEK in batches,
//! then destroys the old version. Data ciphertexts are never touched. An interrupted
//! rotation resumes: the keyring still holds both versions, and only DEKs wrapped under an
//! old version are rewrapped.

use std::sync::Arc;

use rusqlite::params;

use super::{new_request_id, Vault, META_CURRENT_KEK};
use crate::audit::entry::Outcome;
use crate::audit::log::{Actor, Record};
use crate::crypto::envelope::{Dek, WrappedDek};
use crate::crypto::keyring::{self, Keyring, Protection, Unlock};
use crate::error::{Error, Result};
use crate::ids::CandidateId;
use crate::store::rows;

const REWRAP_BATCH: usize = 1_000;

/// What `keys status` reports.
#[derive(Debug, serde::Serialize)]
pub struct KeysStatus {
    /// The version new DEKs are wrapped under.
    pub current_kek_version: u32,
    /// Versions the keyring holds.
    pub keyring_versions: Vec<u32>,
    /// DEKs per KEK version in the store.
    pub deks_per_version: Vec<(u32, u64)>,
    /// True when a rotation was interrupted and `keys rotate` should be run again.
    pub rotation_pending: bool,
}

/// What `keys rotate` did.
#[derive(Debug, serde::Serialize)]
pub struct RotationReport {
    /// The new current version.
    pub new_version: u32,
    /// The versions destroyed.
    pub retired: Vec<u32>,
    /// DEKs rewrapped in this run.
    pub rewrapped: u64,
    /// Whether this run resumed an interrupted rotation.
    pub resumed: bool,
}

impl Vault {
    /// Key status from the keyring and the store.
    pub fn keys_status(&self) -> Result<KeysStatus> {
        let ring = self.keyring();
        let counts = self.readers().read(|conn| {
            let mut stmt = conn.prepare(
                "SELECT kek_version, count(*) FROM candidate_keys WHERE kek_version != 0 GROUP BY kek_version ORDER BY 1",
            )?;
            let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))?;
            rows.map(|r| {
                let (v, n) = r?;
                Ok((u32::try_from(v).unwrap_or(0), u64::try_from(n).unwrap_or(0)))
            })
            .collect::<Result<Vec<_>>>()
        })?;
        Ok(KeysStatus {
            current_kek_version: ring.current_version(),
            rotation_pending: ring.versions().len() > 1,
            keyring_versions: ring.versions(),
            deks_per_version: counts,
        })
    }

    /// Rotates the KEK (or resumes an interrupted rotation). `progress(done, total)`.
    pub fn rotate_keys(
        &self,
        unlock: &Unlock,
        progress: &dyn Fn(u64, u64),
    ) -> Result<RotationReport> {
        let protection = self.keyring_protection(unlock)?;
        let mut ring = Keyring::open(&self.paths().keyring(), unlock)?;
        let resumed = ring.versions().len() > 1;
        if !resumed {
            ring.begin_rotation()?;
            // The keyring with both versions is durable before any DEK is rewrapped.
            keyring::write_private_file(&self.paths().keyring(), &ring.seal(&protection)?)?;
        }
        let new_version = ring.current_version();
        let ring = Arc::new(ring);
        self.replace_keyring(ring.clone());
        let note = format!("kek_version={new_version}");
        self.writer().write(move |ctx| {
            rows::set_meta(ctx.conn, META_CURRENT_KEK, &new_version.to_string())?;
            let mut record = Record::new(
                "keys.rotate.begin",
                &Actor::operator(),
                Outcome::Allow,
                &new_request_id(),
            );
            record.note = Some(note);
            ctx.audit.append(ctx.conn, record).map(|_| ())
        })?;

        let total = self.readers().read(|conn| {
            let n: i64 = conn.query_row(
                "SELECT count(*) FROM candidate_keys WHERE kek_version NOT IN (0, ?1)",
                params![new_version],
                |r| r.get(0),
            )?;
            Ok(u64::try_from(n).unwrap_or(0))
        })?;
        let mut rewrapped = 0u64;
        let mut after_key_id = 0i64;
        progress(0, total);
        loop {
            // Walk the key slots in order; each batch starts where the last ended.
            let batch: Vec<(i64, CandidateId, WrappedDek)> = self.readers().read(|conn| {
                let mut stmt = conn.prepare_cached(
                    "SELECT key_id, candidate_id, kek_version, wrapped_dek, dek_commitment
                     FROM candidate_keys
                     WHERE key_id > ?1 AND kek_version NOT IN (0, ?2)
                     ORDER BY key_id LIMIT ?3",
                )?;
                let rows = stmt.query_map(
                    params![after_key_id, new_version, REWRAP_BATCH as i64],
                    |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, Vec<u8>>(1)?,
                            r.get::<_, i64>(2)?,
                            r.get(3)?,
                            r.get(4)?,
                        ))
                    },
                )?;
                rows.map(|r| {
                    let (key_id, id, v, wrapped, commitment) = r?;
                    Ok((
                        key_id,
                        CandidateId::from_slice(&id)?,
                        WrappedDek {
                            kek_version: u32::try_from(v).map_err(|_| Error::Corrupt {
                                what: "a KEK version is out of range",
                            })?,
                            wrapped,
                            commitment,
                        },
                    ))
                })
                .collect()
            })?;
            let Some((last, _, _)) = batch.last() else {
                break;
            };
            after_key_id = *last;
            let mut rewrapped_batch = Vec::with_capacity(batch.len());
            for (key_id, id, old) in &batch {
                let dek = Dek::unwrap(&ring, id, old)?;
                rewrapped_batch.push((
                    *key_id,
                    old.kek_version,
                    dek.wrap_under(&ring, new_version, id)?,
                ));
            }
            let n = rewrapped_batch.len() as u64;
            self.writer().write(move |ctx| {
                // Same lengths as before: each slot is overwritten where it is.
                let mut stmt = ctx.conn.prepare_cached(
                    "UPDATE candidate_keys SET kek_version = ?2, wrapped_dek = ?3, dek_commitment = ?4
                     WHERE key_id = ?1 AND kek_version = ?5",
                )?;
                for (key_id, old_version, new) in &rewrapped_batch {
                    stmt.execute(params![key_id, new.kek_version, new.wrapped, new.commitment, old_version])?;
                }
                Ok(())
            })?;
            rewrapped += n;
            progress(rewrapped, total);
        }

        // Every DEK is under the new version: destroy the old ones.
        let mut ring = Keyring::open(&self.paths().keyring(), unlock)?;
        let retired = ring.retire_old();
        keyring::write_private_file(&self.paths().keyring(), &ring.seal(&protection)?)?;
        self.replace_keyring(Arc::new(ring));
        let note = format!("kek_version={new_version} retired={retired:?} rewrapped={rewrapped}");
        self.writer().write(move |ctx| {
            let mut record = Record::new(
                "keys.rotate.end",
                &Actor::operator(),
                Outcome::Allow,
                &new_request_id(),
            );
            record.note = Some(note);
            ctx.audit.append(ctx.conn, record).map(|_| ())
        })?;
        Ok(RotationReport {
            new_version,
            retired,
            rewrapped,
            resumed,
        })
    }

    fn replace_keyring(&self, ring: Arc<Keyring>) {
        match self.keyring.write() {
            Ok(mut guard) => *guard = ring,
            Err(poisoned) => *poisoned.into_inner() = ring,
        }
    }

    /// How the keyring is protected now: the same recipients file, or the same passphrase.
    fn keyring_protection(&self, unlock: &Unlock) -> Result<Protection> {
        match unlock {
            Unlock::Passphrase(pass) => Ok(Protection::Passphrase(pass.clone())),
            Unlock::Identity(_) => Ok(Protection::Recipients(keyring::read_recipients(
                &self.paths().keyring_recipients(),
            )?)),
        }
    }
}
