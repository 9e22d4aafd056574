//! Key rotation, recipients and key checks. Rotation adds a new KEK, rewraps every DEK in
//! batches, then destroys the old KEK. Data ciphertexts are never touched.
//!
//! Rotation cannot lose keys, by construction:
//! - one at a time: an exclusive lock on `keys/keyring.lock` is held from before the keyring
//!   is read until the old KEK is destroyed; a second run is refused at once;
//! - the keyring is re-read under the lock, and the new one is written to a private
//!   temporary file, proven to open with the unlocking identity (or passphrase) to exactly
//!   the keys meant, and only then renamed into place, before the first DEK is rewrapped;
//! - the database records the new KEK's version *and fingerprint* in the transaction that
//!   starts the rotation, and every wrapped DEK's associated data binds the fingerprint, so
//!   a keyring that holds another "version N" is refused instead of trusted;
//! - the old KEK is destroyed only when no DEK is left under it, and only if the keyring on
//!   disk is still the one this run wrote;
//! - the keyring is written to the recipients it records itself, never to a public file.
//!
//! An interrupted rotation resumes: the keyring still holds both versions, the database
//! records the rotation, and only DEKs still under an old version are rewrapped.

use std::fs::OpenOptions;
use std::path::Path;
use std::sync::Arc;

use fs2::FileExt;

use super::{Vault, META_CURRENT_KEK};
use crate::crypto::envelope::{Dek, WrappedDek};
use crate::crypto::keyring::{self, Keyring, Protection, Unlock};
use crate::error::{Error, Result};
use crate::store::rows;

const REWRAP_BATCH: usize = 1_000;
/// `vault_meta` key that marks a rotation in progress: the version it rotates to.
const META_ROTATION: &str = "rotation_to";

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
    /// The recipients the keyring records (empty for a passphrase keyring).
    pub recipients: Vec<String>,
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
    /// The new identity file, when the rotation changed the identity.
    pub new_identity: Option<std::path::PathBuf>,
}

/// How `keys rotate` protects the new keyring.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum RotateIdentity {
    /// The same recipients (or passphrase) as now.
    #[default]
    Keep,
    /// A fresh X25519 identity replaces the operator's (recovery recipients stay), so that
    /// old copies of the keyring on disk die with the old identity.
    New,
}

/// What `keys verify` found.
#[derive(Debug, serde::Serialize)]
pub struct KeyCheck {
    /// DEKs that unwrap and pass their commitment.
    pub ok: u64,
    /// Key slots whose DEK does not open (tampered, or lost to an old bug).
    pub failed: Vec<String>,
}

/// Holds the keyring lock for as long as it lives.
struct KeyringLock(std::fs::File);

impl KeyringLock {
    fn take(path: &Path) -> Result<KeyringLock> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(|e| Error::io(path, e))?;
        file.try_lock_exclusive()
            .map_err(|_| Error::RotationLocked {
                path: path.to_path_buf(),
            })?;
        Ok(KeyringLock(file))
    }
}

impl Drop for KeyringLock {
    fn drop(&mut self) {
        let _ = FileExt::unlock(&self.0);
    }
}

impl Vault {
    /// Key status from the keyring and the store.
    pub fn keys_status(&self) -> Result<KeysStatus> {
        let ring = self.keyring();
        let (counts, recorded) = self.readers().read(|conn| {
            Ok((
                rows::deks_per_version(conn)?,
                rows::meta(conn, META_ROTATION)?,
            ))
        })?;
        Ok(KeysStatus {
            current_kek_version: ring.current_version(),
            rotation_pending: ring.versions().len() > 1 || recorded.is_some(),
            keyring_versions: ring.versions(),
            deks_per_version: counts,
            recipients: ring
                .recipients()
                .map(<[String]>::to_vec)
                .unwrap_or_default(),
        })
    }

    /// Unwraps every stored DEK and checks its commitment (reads only; nothing is released).
    pub fn verify_keys(&self, progress: &dyn Fn(u64, u64)) -> Result<KeyCheck> {
        let ring = self.keyring();
        let total = self.readers().read(|conn| {
            Ok(rows::deks_per_version(conn)?
                .iter()
                .map(|(_, n)| n)
                .sum::<u64>())
        })?;
        let mut check = KeyCheck {
            ok: 0,
            failed: Vec::new(),
        };
        let mut after = 0i64;
        loop {
            let batch = self
                .readers()
                .read(|conn| rows::wrapped_deks_after(conn, after, None, REWRAP_BATCH))?;
            let Some((last, _, _)) = batch.last() else {
                break;
            };
            after = *last;
            for (key_id, id, wrapped) in &batch {
                match Dek::unwrap(&ring, id, wrapped) {
                    Ok(_) => check.ok += 1,
                    Err(_) => check.failed.push(format!("key slot {key_id}")),
                }
            }
            progress(check.ok + check.failed.len() as u64, total);
        }
        Ok(check)
    }

    /// Rotates the KEK (or resumes an interrupted rotation). `progress(done, total)`.
    pub fn rotate_keys(
        &self,
        unlock: &Unlock,
        identity: RotateIdentity,
        progress: &dyn Fn(u64, u64),
    ) -> Result<RotationReport> {
        let _lock = KeyringLock::take(&self.paths().keyring_lock())?;
        // Under the lock the keyring on disk is the truth: another run may have finished
        // between this process's start and now.
        let mut ring = keyring::open_finishing_identity_change(&self.paths().keyring(), unlock)?;
        let recorded_rotation = self
            .readers()
            .read(|conn| rows::meta(conn, META_ROTATION))?;
        let resumed = ring.versions().len() > 1 || recorded_rotation.is_some();
        let mut new_identity = None;
        let mut unlock_now = clone_unlock(unlock);
        if identity == RotateIdentity::New && resumed {
            return Err(Error::Conflict(
                "a rotation is pending: finish it first with `cvvault keys rotate`, then run `cvvault keys rotate --new-identity` (nothing was changed)".into(),
            ));
        }
        if ring.versions().len() == 1
            && recorded_rotation.as_deref() == Some(ring.current_version().to_string().as_str())
        {
            // The old KEK was destroyed but the run stopped before recording the end: finish
            // that, if the database agrees that every DEK is under the current KEK.
            return self.finish_recorded_rotation(&ring);
        }
        if ring.versions().len() == 1 {
            if recorded_rotation.is_some() {
                return Err(Error::Conflict(
                    "the database records a key rotation that the keyring does not hold: the keyring file was replaced by an older copy. Nothing was changed; restore the keyring that holds both KEK versions (keys/keyring.age from the time of the rotation), then run `cvvault keys rotate` again".into(),
                ));
            }
            self.check_keyring_matches_store(&ring)?;
            let protection = match identity {
                RotateIdentity::Keep => ring.protection(unlock)?,
                RotateIdentity::New => {
                    let (protection, pending) = self.new_identity_protection(&mut ring, unlock)?;
                    unlock_now = Unlock::Identity(pending.clone());
                    new_identity = Some(pending);
                    protection
                }
            };
            ring.begin_rotation()?;
            // INVARIANT: the keyring with both versions is durable, and proven to open with
            // the identity that will open it next, before any DEK is rewrapped.
            keyring::write_keyring(&self.paths().keyring(), &ring, &protection, &unlock_now)?;
        } else if let Unlock::Identity(path) = unlock {
            // A resumed rotation may be one that changes the identity.
            let pending = keyring::pending_identity(path);
            if pending.exists() && Keyring::open(&self.paths().keyring(), unlock).is_err() {
                unlock_now = Unlock::Identity(pending.clone());
                new_identity = Some(pending);
            }
        }
        let new_version = ring.current_version();
        let new_kek_id = ring.kek_id(new_version).ok_or(Error::Corrupt {
            what: "the keyring does not hold its current KEK",
        })?;
        let ring = Arc::new(ring);
        self.replace_keyring(ring.clone());
        let note = format!(
            "kek_version={new_version} kek_id={new_kek_id} recipients={}",
            recipients_note(&ring)
        );
        let kek_id = new_kek_id.clone();
        self.writer().write(move |ctx| {
            let recorded = rows::meta(ctx.conn, &rows::meta_kek_id(new_version))?;
            if recorded.as_deref().is_some_and(|id| id != kek_id) {
                return Err(Error::Conflict(format!(
                    "the database records another key as KEK version {new_version} than the keyring holds: nothing was rewrapped. The keyring file was replaced during a rotation; restore the keyring written by that rotation"
                )));
            }
            rows::set_meta(ctx.conn, META_CURRENT_KEK, &new_version.to_string())?;
            rows::set_meta(ctx.conn, &rows::meta_kek_id(new_version), &kek_id)?;
            rows::set_meta(ctx.conn, META_ROTATION, &new_version.to_string())?;
            let record = super::operator_entry("keys.rotate.begin", note);
            ctx.audit.append(record).map(|_| ())
        })?;

        let rewrapped = self.rewrap_all(&ring, new_version, progress)?;

        // Every DEK is under the new KEK: destroy the old ones, but only from the keyring
        // this run wrote, and only if nothing is left under them.
        let left = self
            .readers()
            .read(|conn| rows::deks_not_under(conn, new_version))?;
        if left > 0 {
            return Err(Error::Conflict(format!(
                "{left} data keys are still wrapped under an old KEK version: nothing was destroyed; run `cvvault keys rotate` again"
            )));
        }
        let mut on_disk = Keyring::open(&self.paths().keyring(), &unlock_now)?;
        if on_disk.digest()? != ring.digest()? {
            return Err(Error::Conflict(
                "keys/keyring.age changed while the rotation ran: nothing was destroyed. Check who else writes the keyring, then run `cvvault keys rotate` again".into(),
            ));
        }
        let retired = on_disk.retire_old();
        let protection = on_disk.protection(&unlock_now)?;
        keyring::write_keyring(&self.paths().keyring(), &on_disk, &protection, &unlock_now)?;
        if let Some(pending) = &new_identity {
            if let Unlock::Identity(identity) = unlock {
                // The keyring opens only with the new identity now; it takes the old one's
                // place, and the old identity opens nothing but old keyring copies.
                crate::files::commit_temporary(pending, identity)?;
            }
        }
        if let Protection::Recipients(list) = &protection {
            keyring::write_recipients_mirror(&self.paths().keyring_recipients(), list)?;
        }
        self.replace_keyring(Arc::new(on_disk));
        let note = format!("kek_version={new_version} retired={retired:?} rewrapped={rewrapped}");
        let destroyed = retired.clone();
        self.writer().write(move |ctx| {
            rows::delete_meta(ctx.conn, META_ROTATION)?;
            for version in &destroyed {
                rows::delete_meta(ctx.conn, &rows::meta_kek_id(*version))?;
            }
            let record = super::operator_entry("keys.rotate.end", note);
            ctx.audit.append(record).map(|_| ())
        })?;
        Ok(RotationReport {
            new_version,
            retired,
            rewrapped,
            resumed,
            new_identity: new_identity.map(|_| match unlock {
                Unlock::Identity(path) => path.clone(),
                Unlock::Passphrase(_) => self.paths().default_identity(),
            }),
        })
    }

    /// Ends a rotation whose old KEK is already destroyed but whose end was not recorded.
    fn finish_recorded_rotation(&self, ring: &Keyring) -> Result<RotationReport> {
        self.check_keyring_matches_store(ring)?;
        let version = ring.current_version();
        let left = self
            .readers()
            .read(|conn| rows::deks_not_under(conn, version))?;
        if left > 0 {
            return Err(Error::Conflict(format!(
                "the database records a rotation to KEK version {version}, but {left} data keys are wrapped under a KEK this keyring no longer holds: nothing was changed. Restore keys/keyring.age from the backup taken during that rotation (it holds both versions), then run `cvvault keys rotate`"
            )));
        }
        self.writer().write(move |ctx| {
            rows::delete_meta(ctx.conn, META_ROTATION)?;
            let record = super::operator_entry(
                "keys.rotate.end",
                format!("kek_version={version} finished-after-interruption"),
            );
            ctx.audit.append(record).map(|_| ())
        })?;
        Ok(RotationReport {
            new_version: version,
            retired: Vec::new(),
            rewrapped: 0,
            resumed: true,
            new_identity: None,
        })
    }

    /// Rewraps every DEK not yet under `new_version`, in batches, each in one transaction.
    fn rewrap_all(
        &self,
        ring: &Keyring,
        new_version: u32,
        progress: &dyn Fn(u64, u64),
    ) -> Result<u64> {
        let total = self
            .readers()
            .read(|conn| rows::deks_not_under(conn, new_version))?;
        let mut rewrapped = 0u64;
        let mut after_key_id = 0i64;
        progress(0, total);
        loop {
            // Walk the key slots in order; each batch starts where the last ended.
            let batch = self.readers().read(|conn| {
                rows::wrapped_deks_after(conn, after_key_id, Some(new_version), REWRAP_BATCH)
            })?;
            let Some((last, _, _)) = batch.last() else {
                break;
            };
            after_key_id = *last;
            let mut rewrapped_batch: Vec<(i64, u32, WrappedDek)> = Vec::with_capacity(batch.len());
            for (key_id, id, old) in &batch {
                let dek = Dek::unwrap(ring, id, old)?;
                rewrapped_batch.push((
                    *key_id,
                    old.kek_version,
                    dek.wrap_under(ring, new_version, id)?,
                ));
            }
            let n = rewrapped_batch.len() as u64;
            self.writer()
                .write(move |ctx| rows::rewrap(ctx.conn, &rewrapped_batch))?;
            rewrapped += n;
            progress(rewrapped, total);
        }
        Ok(rewrapped)
    }

    /// Refuses a keyring whose current KEK is not the one the database records: a keyring
    /// file replaced by a copy from another vault or another rotation.
    fn check_keyring_matches_store(&self, ring: &Keyring) -> Result<()> {
        let version = ring.current_version();
        let (current, recorded) = self.readers().read(|conn| {
            Ok((
                rows::meta(conn, META_CURRENT_KEK)?,
                rows::meta(conn, &rows::meta_kek_id(version))?,
            ))
        })?;
        let mismatch = current.as_deref() != Some(version.to_string().as_str())
            || recorded
                .as_deref()
                .is_some_and(|id| Some(id) != ring.kek_id(version).as_deref());
        if mismatch {
            return Err(Error::Conflict(format!(
                "keys/keyring.age does not hold the KEK the database records as current (version {}): nothing was changed. Restore the keyring that belongs to this database from its backup",
                current.unwrap_or_else(|| "unknown".into())
            )));
        }
        Ok(())
    }

    /// A fresh identity for `keys rotate --new-identity`, written to `<identity>.next`, and
    /// the protection that puts it in the operator's place among the recorded recipients.
    fn new_identity_protection(
        &self,
        ring: &mut Keyring,
        unlock: &Unlock,
    ) -> Result<(Protection, std::path::PathBuf)> {
        let Unlock::Identity(current) = unlock else {
            return Err(Error::invalid_input(
                "--new-identity is for a keyring opened with an identity file; this one is opened with a passphrase (CVVAULT_PASSPHRASE)",
            ));
        };
        let Protection::Recipients(recorded) = ring.protection(unlock)? else {
            return Err(Error::invalid_input(
                "--new-identity is for a keyring encrypted to an identity",
            ));
        };
        let old_own: Vec<String> = keyring::identity_recipients(current)?
            .iter()
            .map(ToString::to_string)
            .collect();
        let pending = keyring::pending_identity(current);
        if pending.exists() {
            return Err(Error::Conflict(format!(
                "{} exists: an earlier identity change did not finish. If the keyring opens with it, move it to {} by hand; otherwise remove it, then run `cvvault keys rotate --new-identity` again",
                pending.display(),
                current.display()
            )));
        }
        let (text, recipient) = keyring::generate_identity();
        crate::files::write_new_private_file(&pending, text.as_bytes())?;
        let mut recipients = vec![recipient];
        recipients.extend(
            recorded
                .into_iter()
                .filter(|r| !old_own.contains(&r.to_string())),
        );
        ring.set_recipients(&recipients);
        Ok((Protection::Recipients(recipients), pending))
    }

    /// Re-encrypts the keyring to the recipients listed in `file` (an explicit, audited
    /// change; the unlocking identity must be among them, so nobody locks themselves out).
    pub fn set_recipients(&self, unlock: &Unlock, file: &Path) -> Result<Vec<String>> {
        let Unlock::Identity(identity) = unlock else {
            return Err(Error::invalid_input(
                "this keyring is protected by a passphrase, which has no recipients: set CVVAULT_IDENTITY to use an identity keyring",
            ));
        };
        let recipients = keyring::read_recipients(file)?;
        let own: Vec<String> = keyring::identity_recipients(identity)?
            .iter()
            .map(ToString::to_string)
            .collect();
        if !recipients.iter().any(|r| own.contains(&r.to_string())) {
            return Err(Error::invalid_input(format!(
                "{} does not list the public key of the identity at {} (age1...): the keyring would no longer open with it. Add that key to the file and run the command again",
                file.display(),
                identity.display()
            )));
        }
        let _lock = KeyringLock::take(&self.paths().keyring_lock())?;
        let mut ring = Keyring::open(&self.paths().keyring(), unlock)?;
        let before = recipients_note(&ring);
        ring.set_recipients(&recipients);
        let protection = Protection::Recipients(recipients.clone());
        keyring::write_keyring(&self.paths().keyring(), &ring, &protection, unlock)?;
        keyring::write_recipients_mirror(&self.paths().keyring_recipients(), &recipients)?;
        let note = format!("before={before} after={}", recipients_note(&ring));
        self.replace_keyring(Arc::new(ring));
        self.audit_operator("keys.recipients.set", Some(note))?;
        Ok(recipients.iter().map(ToString::to_string).collect())
    }

    pub(super) fn replace_keyring(&self, ring: Arc<Keyring>) {
        match self.keyring.write() {
            Ok(mut guard) => *guard = ring,
            Err(poisoned) => *poisoned.into_inner() = ring,
        }
    }
}

/// The recipients a keyring records, as short fingerprints for the audit trail.
fn recipients_note(ring: &Keyring) -> String {
    match ring.recipients() {
        None => "passphrase-or-unrecorded".into(),
        Some(list) => list
            .iter()
            .map(|r| {
                let digest = ring::digest::digest(&ring::digest::SHA256, r.as_bytes());
                hex::encode(digest.as_ref().get(..4).unwrap_or_default())
            })
            .collect::<Vec<_>>()
            .join(","),
    }
}

pub(super) fn clone_unlock(unlock: &Unlock) -> Unlock {
    match unlock {
        Unlock::Identity(path) => Unlock::Identity(path.clone()),
        Unlock::Passphrase(pass) => Unlock::Passphrase(pass.clone()),
    }
}

/// Whether the public mirror `keys/keyring.recipients` lists what the keyring records.
pub fn mirror_agrees(ring: &Keyring, mirror: &Path) -> bool {
    let Some(recorded) = ring.recipients() else {
        return true;
    };
    keyring::read_recipients(mirror).is_ok_and(|listed| {
        let mut listed: Vec<String> = listed.iter().map(ToString::to_string).collect();
        let mut recorded = recorded.to_vec();
        listed.sort();
        recorded.sort();
        listed == recorded
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;
    use crate::crypto::keyring::{read_recipients, write_private_file};
    use crate::paths::Paths;
    use crate::vault::InitOptions;
    use crate::vocabulary::Role;

    #[test]
    fn an_interrupted_rotation_resumes_without_a_new_version() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::under(dir.path());
        Vault::init(
            &paths,
            InitOptions {
                passphrase: None,
                identity: None,
                recovery_recipients: vec![],
            },
        )
        .unwrap();
        let unlock = Unlock::Identity(paths.default_identity());
        let vault = Vault::open(&paths, &unlock).unwrap();
        vault
            .add_principal(
                "cw".parse().unwrap(),
                Role::Caseworker,
                "agency".parse().unwrap(),
                None,
            )
            .unwrap();
        let cw = vault.principal(&"cw".parse().unwrap()).unwrap();
        let mut synth = crate::synth::Synth::new(5);
        let ids: Vec<_> = (0..5)
            .map(|i| {
                vault
                    .register(&cw, &synth.profile_with_marker(&format!("RES-{i}")))
                    .unwrap()
            })
            .collect();
        vault.close().unwrap();
        drop(vault);
        // A crash after the keyring gained version 2 and before the database recorded the
        // rotation (the mid-batch case is in `tests/keys.rs`).
        let mut ring = Keyring::open(&paths.keyring(), &unlock).unwrap();
        ring.begin_rotation().unwrap();
        let recipients = read_recipients(&paths.keyring_recipients()).unwrap();
        let sealed = ring.seal(&Protection::Recipients(recipients)).unwrap();
        write_private_file(&paths.keyring(), &sealed).unwrap();

        let vault = Vault::open(&paths, &unlock).unwrap();
        assert!(vault.keys_status().unwrap().rotation_pending);
        let report = vault
            .rotate_keys(&unlock, RotateIdentity::Keep, &|_, _| {})
            .unwrap();
        assert!(report.resumed);
        assert_eq!(report.new_version, 2);
        assert_eq!(vault.keys_status().unwrap().deks_per_version, vec![(2, 5)]);
        // Every candidate still opens under the new version.
        let subject = vault
            .add_subject(*ids.first().unwrap(), "self".parse().unwrap())
            .unwrap();
        let me = vault.principal(&subject).unwrap();
        let extract = vault.extract(
            &me,
            ids.first().unwrap(),
            &"subject-access".parse().unwrap(),
        );
        assert!(extract.is_ok());
    }
}
