//! Moving a vault from its SQLite file into PostgreSQL (`cvvault migrate --to`), with the
//! proof that the copy is the same vault: the same rows, the same audit trail (size and
//! root), every stored checkpoint verifying on the copy, and every row that authorization
//! depends on passing its MAC there.

use serde::Serialize;

use super::Vault;
use crate::audit::verify;
use crate::error::{Error, Result};
use crate::store::{postgres, rows, PgTarget};

/// What `migrate --to` copied and proved.
#[derive(Debug, Serialize)]
pub struct MigrationReport {
    /// The PostgreSQL database (without password).
    pub target: String,
    /// Rows copied per table, equal in the source and the copy.
    pub rows: Vec<(&'static str, u64)>,
    /// Audit entries, in both.
    pub audit_entries: u64,
    /// The audit tree's root, recomputed from the copy's entries, equal to the source's.
    pub audit_root: String,
    /// Stored checkpoints that verify against the copy.
    pub checkpoints_verified: usize,
}

impl Vault {
    /// Copies this vault's store (SQLite) into the empty PostgreSQL database `target` and
    /// proves the copy. The source is locked for writing meanwhile (other processes wait)
    /// and is never changed but for the `store.migrate` entry the copy starts with; on any
    /// difference nothing is pointed at the copy, and the source goes on as before.
    pub fn migrate_to(&self, target: &PgTarget, progress: &dyn Fn(u64)) -> Result<MigrationReport> {
        let source_location = self.paths().store();
        if source_location.is_postgres() {
            return Err(Error::invalid_input(
                "this vault is on PostgreSQL already: migrate copies a vault's SQLite file into PostgreSQL",
            ));
        }
        // The target is checked (and given the schema) first; then the migration goes on the
        // record, under a checkpoint, so that the copy carries both.
        postgres::create(target)?;
        self.audit_operator("store.migrate", Some(format!("to={target}")))?;
        self.sign_checkpoint()?;
        let copy = target.connect()?;
        let source = source_location.open()?;
        // INVARIANT: the source's write lock is held from before the first row is read until
        // the proof is done, so the copy is of one state and nothing is appended meanwhile.
        source.begin_write()?;
        let result = (|| {
            let copied = postgres::copy_vault(&source, &copy, progress)?;
            let verifier = self.note_verifier()?;
            let mut proofs = Vec::new();
            for db in [&source, &copy] {
                let checkpoints = verify::stored_checkpoints(db)?;
                let report = verify::verify(
                    db,
                    &verifier,
                    Some(self.pseudonyms()),
                    &checkpoints,
                    &|_| {},
                )?;
                proofs.push((report, postgres::row_counts(db)?));
            }
            let findings = rows::integrity_findings(&copy, &self.integrity)?;
            let [(before, before_rows), (after, after_rows)] = proofs.as_slice() else {
                return Err(Error::Internal("the copy was proved against no source"));
            };
            if before.entries != after.entries
                || before.root != after.root
                || before.checkpoints.len() != after.checkpoints.len()
                || before_rows != after_rows
                || copied != *before_rows
                || !findings.is_empty()
            {
                return Err(Error::Conflict(format!(
                    "the copy in {target} differs from this vault (audit entries {} and {}, roots {} and {}, rows {:?} and {:?}, {} row(s) failing their MAC): do not use it. Drop that database and create it empty again; this vault is unchanged",
                    before.entries,
                    after.entries,
                    before.root,
                    after.root,
                    before_rows,
                    after_rows,
                    findings.len()
                )));
            }
            Ok(MigrationReport {
                target: target.to_string(),
                rows: copied,
                audit_entries: after.entries,
                audit_root: after.root.clone(),
                checkpoints_verified: after.checkpoints.len(),
            })
        })();
        // The source was only read: ending its transaction cannot lose anything.
        let _ = source.rollback();
        result.map_err(|e| match e {
            Error::Conflict(_) | Error::Internal(_) => e,
            other => Error::Conflict(format!(
                "copying into {target} failed: {other}. Nothing was copied (one transaction) and this vault is unchanged; drop the database's tables (or create it empty again) before the next try"
            )),
        })
    }
}
