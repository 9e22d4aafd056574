//! Appending audit entries in the caller's transaction: the entry commits with the change
//! it records, or neither does (fail closed).

use ring::hmac;
use rusqlite::{params, Connection, OptionalExtension};
use std::sync::Arc;

use super::entry::{Entry, Outcome, ENTRY_VERSION};
use super::merkle::{self, Frontier};
use super::note::{Checkpoint, NoteSigner};
use crate::clock::{rfc3339, Clock};
use crate::error::{Error, Result};
use crate::ids::{AssignmentId, CandidateId};

/// Who acted, as the audit trail records it.
#[derive(Clone, Debug)]
pub struct Actor {
    /// Principal id (`operator`, `system`, or a registered principal).
    pub id: String,
    /// Role name.
    pub role: String,
    /// Organisation, where the principal has one.
    pub org: Option<String>,
}

impl Actor {
    /// The keyring holder acting outside policy (init, principals, tokens, key rotation).
    pub fn operator() -> Actor {
        Actor {
            id: "operator".into(),
            role: "operator".into(),
            org: None,
        }
    }
}

/// What a use case asks to record; the appender adds index, time, policy hash and version.
#[derive(Clone, Debug)]
pub struct Record {
    /// Action name.
    pub action: &'static str,
    /// Who.
    pub actor: Actor,
    /// Which candidate, if any.
    pub candidate: Option<CandidateId>,
    /// Which assignment, if any.
    pub assignment: Option<AssignmentId>,
    /// Allow or deny.
    pub decision: Outcome,
    /// Field groups concerned.
    pub groups: Vec<String>,
    /// Deciding policy ids.
    pub policy_ids: Vec<String>,
    /// Declared purpose.
    pub purpose: Option<String>,
    /// Fixed, non-personal detail.
    pub note: Option<String>,
    /// Request correlation id.
    pub request_id: String,
}

impl Record {
    /// A record with the common fields; the rest default to empty.
    pub fn new(action: &'static str, actor: &Actor, decision: Outcome, request_id: &str) -> Record {
        Record {
            action,
            actor: actor.clone(),
            candidate: None,
            assignment: None,
            decision,
            groups: Vec::new(),
            policy_ids: Vec::new(),
            purpose: None,
            note: None,
            request_id: request_id.to_owned(),
        }
    }
}

/// The pseudonymisation key and domain separation for audit ids.
#[derive(Clone)]
pub struct Pseudonymizer {
    key: hmac::Key,
}

impl Pseudonymizer {
    /// From the keyring's audit key.
    pub fn new(audit_key: &[u8; 32]) -> Pseudonymizer {
        Pseudonymizer {
            key: hmac::Key::new(hmac::HMAC_SHA256, audit_key),
        }
    }

    fn tag(&self, domain: &[u8], id: &[u8; 16]) -> String {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(domain);
        ctx.update(id);
        format!("hmac-sha256:{}", hex::encode(ctx.sign().as_ref()))
    }

    /// The MAC stored beside an entry: `HMAC-SHA256(audit key, "cvvault/audit/entry/v1\n" ||
    /// leaf hash)`. The leaf hash (SHA-256 of the entry) binds the whole entry, and the verifier
    /// computes it anyway, so a MAC costs a few hash blocks instead of a second pass.
    pub fn entry_mac(&self, leaf: &merkle::Hash) -> Vec<u8> {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(b"cvvault/audit/entry/v1\n");
        ctx.update(leaf);
        ctx.sign().as_ref().to_vec()
    }

    /// Checks an entry's MAC from its leaf hash, in constant time.
    pub fn entry_mac_ok(&self, leaf: &merkle::Hash, mac: &[u8]) -> bool {
        let mut message = [0u8; 23 + 32];
        let (domain, hash) = message.split_at_mut(23);
        domain.copy_from_slice(b"cvvault/audit/entry/v1\n");
        hash.copy_from_slice(leaf);
        hmac::verify(&self.key, &message, mac).is_ok()
    }

    /// `hmac-sha256:<hex>` of a candidate id.
    pub fn candidate(&self, id: &CandidateId) -> String {
        self.tag(b"cvvault/audit/candidate/v1\n", id.as_bytes())
    }

    /// `hmac-sha256:<hex>` of an assignment id.
    pub fn assignment(&self, id: &AssignmentId) -> String {
        self.tag(b"cvvault/audit/assignment/v1\n", id.as_bytes())
    }
}

/// Appends entries and keeps the tree's right edge. Owned by the writer thread.
pub struct Appender {
    frontier: Frontier,
    dirty: bool,
    pseudonyms: Pseudonymizer,
    policy_hash: String,
    clock: Arc<dyn Clock>,
}

/// A copy of the appender's state, restored when a job rolls back.
pub struct Snapshot {
    frontier: Frontier,
    dirty: bool,
}

fn audit_write(e: rusqlite::Error) -> Error {
    Error::AuditWrite {
        reason: e.to_string(),
    }
}

impl Appender {
    /// Loads the tree's right edge and checks it against the entries.
    pub fn load(
        conn: &Connection,
        pseudonyms: Pseudonymizer,
        policy_hash: [u8; 32],
        clock: Arc<dyn Clock>,
    ) -> Result<Appender> {
        let frontier = load_frontier(conn)?;
        Ok(Appender {
            frontier,
            dirty: false,
            pseudonyms,
            policy_hash: format!("sha256:{}", hex::encode(policy_hash)),
            clock,
        })
    }

    /// Re-reads the persisted state (after a failed commit).
    pub fn reload(&mut self, conn: &Connection) -> Result<()> {
        self.frontier = load_frontier(conn)?;
        self.dirty = false;
        Ok(())
    }

    /// Reloads the tree's right edge if another process appended since this appender last
    /// wrote (e.g. `cvvault token issue` while `cvvault serve` runs). Called by the writer at
    /// the start of each group transaction, which holds SQLite's write lock, so the state read
    /// here cannot change before the group commits.
    pub fn sync(&mut self, conn: &Connection) -> Result<()> {
        let next: i64 = conn.query_row(
            "SELECT coalesce(max(entry_index) + 1, 0) FROM audit_entries",
            [],
            |r| r.get(0),
        )?;
        // More entries than this appender wrote: another process appended, and its tree edge
        // committed with them. Fewer can only be tampering: appending goes on as before, so
        // that the next `audit verify` (whose own entry is appended first) names the damage.
        if u64::try_from(next).is_ok_and(|next| next > self.frontier.size()) {
            self.reload(conn)?;
        }
        Ok(())
    }

    /// The pseudonymizer.
    pub fn pseudonyms(&self) -> &Pseudonymizer {
        &self.pseudonyms
    }

    /// Entries in the log, including those appended in the open transaction.
    pub fn size(&self) -> u64 {
        self.frontier.size()
    }

    /// The current root.
    pub fn root(&self) -> merkle::Hash {
        self.frontier.root()
    }

    /// The clock entries are stamped with.
    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// The state to restore if the current job rolls back.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            frontier: self.frontier.clone(),
            dirty: self.dirty,
        }
    }

    /// Restores a snapshot.
    pub fn restore(&mut self, snapshot: Snapshot) {
        self.frontier = snapshot.frontier;
        self.dirty = snapshot.dirty;
    }

    /// Appends one entry in `conn`'s transaction and returns its index.
    pub fn append(&mut self, conn: &Connection, record: Record) -> Result<u64> {
        let index = self.frontier.size();
        let candidate = record.candidate.map(|c| self.pseudonyms.candidate(&c));
        let entry = Entry {
            action: record.action.to_owned(),
            actor: record.actor.id,
            actor_org: record.actor.org,
            actor_role: record.actor.role,
            assignment: record.assignment.map(|a| self.pseudonyms.assignment(&a)),
            candidate: candidate.clone(),
            decision: record.decision,
            groups: record.groups,
            index,
            note: record.note,
            policy_hash: self.policy_hash.clone(),
            policy_ids: record.policy_ids,
            purpose: record.purpose,
            request_id: record.request_id,
            time: rfc3339(self.clock.now()),
            v: ENTRY_VERSION,
        };
        let bytes = entry.canonical_bytes();
        let text = String::from_utf8(bytes).map_err(|_| Error::AuditWrite {
            reason: "an entry is not UTF-8".into(),
        })?;
        let stored_index = i64::try_from(index).map_err(|_| Error::AuditWrite {
            reason: "the log is full".into(),
        })?;
        let leaf = merkle::leaf_hash(text.as_bytes());
        conn.prepare_cached(
            "INSERT INTO audit_entries (entry_index, entry, entry_mac, candidate_hmac) VALUES (?1, ?2, ?3, ?4)",
        )
        .and_then(|mut stmt| {
            stmt.execute(params![stored_index, text, self.pseudonyms.entry_mac(&leaf), candidate])
        })
        .map_err(audit_write)?;
        self.frontier.push(leaf).map_err(|e| Error::AuditWrite {
            reason: e.to_string(),
        })?;
        self.dirty = true;
        Ok(index)
    }

    /// Writes the right edge into the transaction (once per group).
    pub fn persist(&mut self, conn: &Connection) -> Result<()> {
        if self.dirty {
            conn.execute(
                "UPDATE audit_frontier SET frontier = ?1 WHERE id = 1",
                params![self.frontier.to_bytes()],
            )
            .map_err(audit_write)?;
            self.dirty = false;
        }
        Ok(())
    }

    /// Signs a checkpoint of the current tree and stores it (if the tree grew since the last).
    pub fn checkpoint(
        &mut self,
        conn: &Connection,
        signer: &NoteSigner,
        origin: &str,
    ) -> Result<Option<String>> {
        let size = self.frontier.size();
        let stored_size = i64::try_from(size).map_err(|_| Error::AuditWrite {
            reason: "the log is full".into(),
        })?;
        let latest: Option<i64> = conn
            .query_row("SELECT max(tree_size) FROM audit_checkpoints", [], |r| {
                r.get(0)
            })
            .map_err(audit_write)?;
        if latest == Some(stored_size) {
            return Ok(None);
        }
        self.persist(conn)?;
        let note = signer
            .sign(&Checkpoint {
                origin: origin.to_owned(),
                size,
                root: self.frontier.root(),
            })
            .map_err(|e| Error::AuditWrite {
                reason: format!("the checkpoint could not be signed: {e}"),
            })?;
        conn.execute(
            "INSERT INTO audit_checkpoints (tree_size, note, created_at) VALUES (?1, ?2, ?3)",
            params![stored_size, note, self.clock.now()],
        )
        .map_err(audit_write)?;
        Ok(Some(note))
    }
}

fn load_frontier(conn: &Connection) -> Result<Frontier> {
    let bytes: Vec<u8> = conn
        .query_row(
            "SELECT frontier FROM audit_frontier WHERE id = 1",
            [],
            |r| r.get(0),
        )
        .optional()?
        .ok_or(Error::Corrupt {
            what: "the audit frontier row is missing",
        })?;
    let frontier = if bytes.is_empty() {
        Frontier::new()
    } else {
        Frontier::from_bytes(&bytes).map_err(|_| Error::Corrupt {
            what: "the audit frontier is malformed",
        })?
    };
    let next: i64 = conn.query_row(
        "SELECT coalesce(max(entry_index) + 1, 0) FROM audit_entries",
        [],
        |r| r.get(0),
    )?;
    if u64::try_from(next).ok() != Some(frontier.size()) {
        return Err(Error::AuditTampered(format!(
            "the log has {next} entries but its tree edge covers {}: entries were added or removed outside cvvault. Run `cvvault audit verify` with your last checkpoint and restore the database from a backup",
            frontier.size()
        )));
    }
    Ok(frontier)
}
