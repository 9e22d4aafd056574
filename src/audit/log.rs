//! Appending audit entries in the caller's transaction: the entry commits with the change
//! it records, or neither does (fail closed).

use crate::store::sql::Db;
use ring::hmac;
use std::sync::Arc;

use super::entry::{Entry, Outcome, ENTRY_VERSION};
use super::merkle::{self, Frontier};
use super::note::{Checkpoint, NoteSigner};
use crate::clock::{rfc3339, Clock};
use crate::crypto::integrity::{Domain, IntegrityKey};
use crate::error::{Error, Result};
use crate::ids::{AssignmentId, CandidateId};
use crate::store::audit_rows;

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

    fn tag(&self, domain: &[u8], id: &[u8]) -> String {
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

    /// `hmac-sha256:<hex>` of a subject's principal id: the audit trail names the people
    /// whose data it is by pseudonym only, even as actors, so that their entries say nothing
    /// once their data is erased.
    pub fn principal(&self, id: &str) -> String {
        self.tag(b"cvvault/audit/principal/v1\n", id.as_bytes())
    }

    /// `hmac-sha256:<hex>` of an assignment id.
    pub fn assignment(&self, id: &AssignmentId) -> String {
        self.tag(b"cvvault/audit/assignment/v1\n", id.as_bytes())
    }
}

/// Turns records into entries, all but the two values that only the writer knows: the
/// entry's index and its time. Import workers prepare their entries in parallel with this,
/// so that the single writer only splices, hashes and inserts them.
#[derive(Clone)]
pub struct Renderer {
    pseudonyms: Pseudonymizer,
    policy_hash: String,
}

/// An entry rendered but for its index and time (see [`Appender::append_prepared`]).
#[cfg_attr(test, derive(Debug, PartialEq, Eq))]
pub struct PreparedEntry {
    /// The canonical JSON up to the index value: `{"action":...,"groups":[...],"index":`.
    head: String,
    /// From the index value to the time value: `,"note":...,"request_id":"...","time":`.
    middle: String,
    /// The candidate's pseudonym, for the search column.
    candidate: Option<String>,
}

/// The entries of a bulk registration, which differ only in the candidate they name: the
/// record is rendered once, and each candidate's pseudonym spliced into it.
pub struct CandidateEntries {
    /// The prepared head up to the candidate's pseudonym, `..."candidate":"`.
    before: String,
    /// The prepared head after the pseudonym, `","decision":...,"index":`.
    after: String,
    /// As in [`PreparedEntry`].
    middle: String,
    pseudonyms: Pseudonymizer,
}

impl CandidateEntries {
    /// The entry naming `candidate`: what [`Renderer::prepare`] gives for the record with
    /// that candidate.
    pub fn entry(&self, candidate: &CandidateId) -> PreparedEntry {
        let pseudonym = self.pseudonyms.candidate(candidate);
        let mut head =
            String::with_capacity(self.before.len() + pseudonym.len() + self.after.len());
        head.push_str(&self.before);
        head.push_str(&pseudonym);
        head.push_str(&self.after);
        PreparedEntry {
            head,
            middle: self.middle.clone(),
            candidate: Some(pseudonym),
        }
    }
}

/// What follows the time value in every entry.
const ENTRY_TAIL: &str = ",\"v\":1}";
const _: () = assert!(ENTRY_VERSION == 1, "ENTRY_TAIL spells the version out");

impl Renderer {
    /// Pseudonyms under `pseudonyms`, and the policy set's SHA-256.
    pub fn new(pseudonyms: Pseudonymizer, policy_hash: [u8; 32]) -> Renderer {
        Renderer {
            pseudonyms,
            policy_hash: format!("sha256:{}", hex::encode(policy_hash)),
        }
    }

    /// The pseudonymizer.
    pub fn pseudonyms(&self) -> &Pseudonymizer {
        &self.pseudonyms
    }

    /// Renders `record` once for many candidates (its own candidate, if any, is replaced):
    /// see [`CandidateEntries::entry`].
    pub fn prepare_for_candidates(&self, mut record: Record) -> Result<CandidateEntries> {
        // Any id will do: its pseudonym marks where each candidate's goes.
        let placeholder = CandidateId::random();
        record.candidate = Some(placeholder);
        let prepared = self.prepare(record)?;
        let marker = format!(
            ",\"candidate\":\"{}\"",
            self.pseudonyms.candidate(&placeholder)
        );
        // INVARIANT: as in `prepare`, the marker cannot occur inside an earlier string value,
        // where every `"` is escaped.
        let (before, after) = prepared.head.split_once(&marker).ok_or(Error::AuditWrite {
            reason: "an entry could not be rendered".into(),
        })?;
        Ok(CandidateEntries {
            before: format!("{before},\"candidate\":\""),
            after: format!("\"{after}"),
            middle: prepared.middle,
            pseudonyms: self.pseudonyms.clone(),
        })
    }

    /// Renders `record` as its canonical entry, leaving out the index and time.
    ///
    /// INVARIANT: splicing an index and a time into the result gives exactly
    /// [`Entry::canonical_bytes`] of the entry with those values (a property test checks
    /// this): the entry is serialized by serde with index 0 and an empty time, and cut at
    /// those two values. The cut cannot land inside a string value, where every `"` is
    /// escaped; the keys before `index` are fixed, so its first occurrence is the key's.
    pub fn prepare(&self, record: Record) -> Result<PreparedEntry> {
        let candidate = record.candidate.map(|c| self.pseudonyms.candidate(&c));
        // INVARIANT: a subject is named by pseudonym, whichever use case recorded them.
        let actor = if record.actor.role == crate::vocabulary::Role::Subject.as_str() {
            self.pseudonyms.principal(&record.actor.id)
        } else {
            record.actor.id
        };
        let entry = Entry {
            action: record.action.to_owned(),
            actor,
            actor_org: record.actor.org,
            actor_role: record.actor.role,
            assignment: record.assignment.map(|a| self.pseudonyms.assignment(&a)),
            candidate: candidate.clone(),
            decision: record.decision,
            groups: record.groups,
            index: 0,
            note: record.note,
            policy_hash: self.policy_hash.clone(),
            policy_ids: record.policy_ids,
            purpose: record.purpose,
            request_id: record.request_id,
            time: String::new(),
            v: ENTRY_VERSION,
        };
        let unrenderable = || Error::AuditWrite {
            reason: "an entry could not be rendered".into(),
        };
        let text = String::from_utf8(entry.canonical_bytes()).map_err(|_| unrenderable())?;
        let body = text
            .strip_suffix(ENTRY_TAIL)
            .and_then(|body| body.strip_suffix(",\"time\":\"\""))
            .ok_or_else(unrenderable)?;
        let (before, after) = body.split_once(",\"index\":0,").ok_or_else(unrenderable)?;
        Ok(PreparedEntry {
            head: format!("{before},\"index\":"),
            middle: format!(",{after},\"time\":"),
            candidate,
        })
    }
}

/// Appends entries and keeps the tree's right edge. Owned by the writer thread.
pub struct Appender {
    frontier: Frontier,
    /// Proves the stored frontier (see `load_frontier`).
    integrity: Arc<IntegrityKey>,
    dirty: bool,
    renderer: Renderer,
    clock: Arc<dyn Clock>,
    /// The last time rendered, as Unix seconds and as a JSON string: entries written in the
    /// same second share it.
    time: (i64, String),
    /// Entries appended in this transaction: [`Appender::persist`] writes those not yet
    /// written all at once (one `COPY` on PostgreSQL), before the tree edge they lead to. They
    /// are kept until the transaction commits ([`Appender::committed`]): a job that persists
    /// (a checkpoint) and then rolls back to its savepoint undoes the rows of the jobs before
    /// it too, and its snapshot must be able to write them again.
    pending: Vec<audit_rows::NewEntry>,
    /// How many of `pending` are in the transaction already.
    written: usize,
}

/// A copy of the appender's state, restored when a job rolls back.
pub struct Snapshot {
    frontier: Frontier,
    dirty: bool,
    pending: usize,
    written: usize,
}

fn audit_write(e: Error) -> Error {
    match e {
        Error::AuditWrite { .. } => e,
        other => Error::AuditWrite {
            reason: other.to_string(),
        },
    }
}

impl Appender {
    /// Loads the tree's right edge and checks it against the entries.
    pub fn load(
        conn: &Db,
        pseudonyms: Pseudonymizer,
        integrity: Arc<IntegrityKey>,
        policy_hash: [u8; 32],
        clock: Arc<dyn Clock>,
    ) -> Result<Appender> {
        let frontier = load_frontier(conn, &integrity)?;
        Ok(Appender {
            frontier,
            integrity,
            dirty: false,
            renderer: Renderer::new(pseudonyms, policy_hash),
            clock,
            time: (i64::MIN, String::new()),
            pending: Vec::new(),
            written: 0,
        })
    }

    /// Re-reads the persisted state (after a failed commit).
    pub fn reload(&mut self, conn: &Db) -> Result<()> {
        self.committed();
        self.frontier = load_frontier(conn, &self.integrity)?;
        self.dirty = false;
        Ok(())
    }

    /// Reloads the tree's right edge if another process appended since this appender last
    /// wrote (e.g. `cvvault token issue` while `cvvault serve` runs). Called by the writer at
    /// the start of each group transaction, which holds SQLite's write lock, so the state read
    /// here cannot change before the group commits.
    pub fn sync(&mut self, conn: &Db) -> Result<()> {
        audit_rows::lock_head(conn)?;
        let next = audit_rows::next_entry_index(conn)?;
        // More entries than this appender wrote: another process appended, and its tree edge
        // committed with them. Fewer can only be tampering: appending goes on as before, so
        // that the next `audit verify` (whose own entry is appended first) names the damage.
        if u64::try_from(next).is_ok_and(|next| next > self.frontier.size()) {
            self.reload(conn)?;
        }
        Ok(())
    }

    /// The renderer entries are prepared with.
    pub fn renderer(&self) -> &Renderer {
        &self.renderer
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
            pending: self.pending.len(),
            written: self.written,
        }
    }

    /// Restores a snapshot: the entries appended since are dropped, and those written since
    /// (which the job's rollback took out of the transaction) are written again by the next
    /// [`Appender::persist`].
    pub fn restore(&mut self, snapshot: Snapshot) {
        self.frontier = snapshot.frontier;
        self.dirty = snapshot.dirty;
        self.pending.truncate(snapshot.pending);
        self.written = snapshot.written;
    }

    /// The transaction committed (or was given up and reloaded): its entries are no longer
    /// kept.
    pub fn committed(&mut self) {
        self.pending.clear();
        self.written = 0;
    }

    /// Appends one entry to the group transaction and returns its index: it is written by
    /// [`Appender::persist`], with the group, or undone with its job ([`Appender::restore`]).
    pub fn append(&mut self, record: Record) -> Result<u64> {
        let prepared = self.renderer.prepare(record)?;
        self.append_prepared(prepared)
    }

    /// Appends an entry prepared by [`Renderer::prepare`] (possibly on another thread), with
    /// the next index and the current time, and returns its index.
    pub fn append_prepared(&mut self, entry: PreparedEntry) -> Result<u64> {
        self.append_with(&entry)
    }

    /// Appends prepared entries in order, as an import batch does; returns the index of the
    /// first.
    pub fn append_all<'a>(
        &mut self,
        entries: impl IntoIterator<Item = &'a PreparedEntry>,
    ) -> Result<u64> {
        let first = self.frontier.size();
        for entry in entries {
            self.append_with(entry)?;
        }
        Ok(first)
    }

    fn append_with(&mut self, entry: &PreparedEntry) -> Result<u64> {
        let index = self.frontier.size();
        let stored_index = i64::try_from(index).map_err(|_| Error::AuditWrite {
            reason: "the log is full".into(),
        })?;
        let now = self.clock.now();
        if self.time.0 != now {
            let time = serde_json::to_string(&rfc3339(now)).map_err(|_| Error::AuditWrite {
                reason: "the entry time could not be rendered".into(),
            })?;
            self.time = (now, time);
        }
        let digits = index.to_string();
        let mut text = String::with_capacity(
            entry.head.len() + digits.len() + entry.middle.len() + self.time.1.len() + 8,
        );
        text.push_str(&entry.head);
        text.push_str(&digits);
        text.push_str(&entry.middle);
        text.push_str(&self.time.1);
        text.push_str(ENTRY_TAIL);
        let leaf = merkle::leaf_hash(text.as_bytes());
        let mac = self.renderer.pseudonyms.entry_mac(&leaf);
        self.frontier.push(leaf).map_err(|e| Error::AuditWrite {
            reason: e.to_string(),
        })?;
        self.pending.push(audit_rows::NewEntry {
            index: stored_index,
            text,
            mac,
            candidate_hmac: entry.candidate.clone(),
        });
        self.dirty = true;
        Ok(index)
    }

    /// Writes the entries appended since the last call, then the right edge, into the
    /// transaction (once per group, and before a checkpoint is signed).
    pub fn persist(&mut self, conn: &Db) -> Result<()> {
        let unwritten = self.pending.get(self.written..).unwrap_or_default();
        if !unwritten.is_empty() {
            audit_rows::insert_entries(conn, unwritten).map_err(audit_write)?;
            self.written = self.pending.len();
        }
        if self.dirty {
            let bytes = self.frontier.to_bytes();
            let mac = self.integrity.mac(Domain::Frontier, &[&bytes]);
            audit_rows::save_frontier(conn, &bytes, &mac).map_err(audit_write)?;
            self.dirty = false;
        }
        Ok(())
    }

    /// Signs a checkpoint of the current tree and stores it (if the tree grew since the last).
    pub fn checkpoint(
        &mut self,
        conn: &Db,
        signer: &NoteSigner,
        origin: &str,
    ) -> Result<Option<String>> {
        let size = self.frontier.size();
        let stored_size = i64::try_from(size).map_err(|_| Error::AuditWrite {
            reason: "the log is full".into(),
        })?;
        let latest = audit_rows::latest_checkpoint_size(conn).map_err(audit_write)?;
        if latest == Some(stored_size) {
            return Ok(None);
        }
        if latest.is_some_and(|latest| latest > stored_size) {
            // C2SP tlog-checkpoint: a log must never sign a checkpoint inconsistent with one
            // it signed before. A tree smaller than a signed one was truncated.
            return Err(Error::AuditTampered(format!(
                "the log holds {size} entries but a checkpoint of {} was signed: entries were removed outside cvvault, and no checkpoint is signed over the shortened log. Run `cvvault audit verify` and restore the database from a backup",
                latest.unwrap_or_default()
            )));
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
        audit_rows::insert_checkpoint(conn, stored_size, &note, self.clock.now())
            .map_err(audit_write)?;
        Ok(Some(note))
    }
}

/// Loads the stored right edge of the tree and proves it: its MAC (under the keyring's
/// integrity key) shows cvvault wrote it, and its size must match the entries. The vault
/// signs checkpoints over this edge, so a frontier replaced in the database would otherwise
/// make it sign a forged history.
fn load_frontier(conn: &Db, integrity: &IntegrityKey) -> Result<Frontier> {
    // INVARIANT: the edge and the entries are read in one snapshot; another process that
    // appends between two separate reads would look like tampering.
    audit_rows::in_snapshot(conn, |conn| load_frontier_in(conn, integrity))
}

fn load_frontier_in(conn: &Db, integrity: &IntegrityKey) -> Result<Frontier> {
    let audit_rows::StoredFrontier { bytes, mac } =
        audit_rows::stored_frontier(conn)?.ok_or(Error::Corrupt {
            what: "the audit frontier row is missing",
        })?;
    // The empty edge of a new log is the only one with nothing to prove.
    let unwritten = bytes.is_empty() && mac.is_none();
    if !unwritten && !integrity.verify(Domain::Frontier, &[&bytes], mac.as_deref()) {
        return Err(Error::AuditTampered(
            "the stored tree edge (audit_frontier) fails its integrity check: it was written outside cvvault, and no checkpoint is signed over it. Locate the altered entries with `cvvault audit verify --key VERIFIER_KEY` (it reads the entries, not the stored edge), then restore the database from a backup".into(),
        ));
    }
    let frontier = if bytes.is_empty() {
        Frontier::new()
    } else {
        Frontier::from_bytes(&bytes).map_err(|_| Error::Corrupt {
            what: "the audit frontier is malformed",
        })?
    };
    let next = audit_rows::next_entry_index(conn)?;
    if u64::try_from(next).ok() != Some(frontier.size()) {
        return Err(Error::AuditTampered(format!(
            "the log has {next} entries but its tree edge covers {}: entries were added or removed outside cvvault. Run `cvvault audit verify` with your last checkpoint and restore the database from a backup",
            frontier.size()
        )));
    }
    Ok(frontier)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::clock::ManualClock;
    use proptest::prelude::*;

    /// Text that tries to break the cut: quotes, escapes, the markers themselves, non-ASCII.
    fn awkward() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z0-9._-]{0,12}",
            Just(",\"index\":0,".to_owned()),
            Just(",\"time\":\"\",\"v\":1}".to_owned()),
            Just("\"index\":0,\"note\":null".to_owned()),
            "\\PC{0,16}",
            "[\"\\\\\u{0}-\u{1f}]{0,6}",
        ]
    }

    fn record() -> impl Strategy<Value = Record> {
        (
            (awkward(), awkward(), proptest::option::of(awkward())),
            (any::<bool>(), any::<bool>(), any::<bool>()),
            proptest::collection::vec(awkward(), 0..4),
            proptest::collection::vec(awkward(), 0..3),
            (
                proptest::option::of(awkward()),
                proptest::option::of(awkward()),
            ),
            awkward(),
        )
            .prop_map(
                |(
                    (id, role, org),
                    (candidate, assignment, allow),
                    groups,
                    ids,
                    (purpose, note),
                    request,
                )| {
                    let actor = Actor { id, role, org };
                    let decision = if allow { Outcome::Allow } else { Outcome::Deny };
                    let mut record = Record::new("extract", &actor, decision, &request);
                    record.candidate = candidate.then(CandidateId::random);
                    record.assignment = assignment.then(AssignmentId::random);
                    record.groups = groups;
                    record.policy_ids = ids;
                    record.purpose = purpose;
                    record.note = note;
                    record
                },
            )
    }

    #[test]
    fn a_subject_actor_is_named_by_pseudonym_only() {
        // An e-mail-like subject id stayed in clear in the trail after erasure (2026-12).
        let renderer = Renderer::new(Pseudonymizer::new(&[3; 32]), [9; 32]);
        let actor = Actor {
            id: "anna.lindqvist@example.org".into(),
            role: "subject".into(),
            org: Some("self".into()),
        };
        let prepared = renderer
            .prepare(Record::new("extract", &actor, Outcome::Allow, "r"))
            .unwrap();
        assert!(!prepared.head.contains("anna"), "{}", prepared.head);
        assert!(prepared.head.contains(&format!(
            "\"actor\":\"{}\"",
            renderer
                .pseudonyms()
                .principal("anna.lindqvist@example.org")
        )));
        let caseworker = Actor {
            role: "caseworker".into(),
            ..actor
        };
        let prepared = renderer
            .prepare(Record::new("extract", &caseworker, Outcome::Allow, "r"))
            .unwrap();
        assert!(
            prepared.head.contains("anna.lindqvist"),
            "other actors stay named"
        );
    }

    proptest! {
        /// A bulk registration's entries are those `prepare` gives for each candidate.
        #[test]
        fn entries_for_many_candidates_are_the_entries_for_each(record in record()) {
            let renderer = Renderer::new(Pseudonymizer::new(&[3; 32]), [9; 32]);
            let entries = renderer.prepare_for_candidates(record.clone()).unwrap();
            for _ in 0..3 {
                let candidate = CandidateId::random();
                let mut one = record.clone();
                one.candidate = Some(candidate);
                prop_assert_eq!(entries.entry(&candidate), renderer.prepare(one).unwrap());
            }
        }

        /// The splice the writer does gives exactly the canonical encoding of the same entry.
        #[test]
        fn a_prepared_entry_spliced_is_the_canonical_entry(
            record in record(),
            index in prop_oneof![Just(0u64), 1u64..1_000, any::<u32>().prop_map(u64::from)],
            now in 0i64..4_102_444_800,
        ) {
            let renderer = Renderer::new(Pseudonymizer::new(&[3; 32]), [9; 32]);
            let pseudonyms = renderer.pseudonyms().clone();
            let expected = Entry {
                action: record.action.to_owned(),
                actor: if record.actor.role == "subject" {
                    pseudonyms.principal(&record.actor.id)
                } else {
                    record.actor.id.clone()
                },
                actor_org: record.actor.org.clone(),
                actor_role: record.actor.role.clone(),
                assignment: record.assignment.map(|a| pseudonyms.assignment(&a)),
                candidate: record.candidate.map(|c| pseudonyms.candidate(&c)),
                decision: record.decision,
                groups: record.groups.clone(),
                index,
                note: record.note.clone(),
                policy_hash: format!("sha256:{}", hex::encode([9; 32])),
                policy_ids: record.policy_ids.clone(),
                purpose: record.purpose.clone(),
                request_id: record.request_id.clone(),
                time: rfc3339(now),
                v: ENTRY_VERSION,
            };
            let prepared = renderer.prepare(record).unwrap();
            prop_assert_eq!(prepared.candidate.clone(), expected.candidate.clone());

            let conn = Db::sqlite(rusqlite::Connection::open_in_memory().unwrap());
            conn.batch(
                "CREATE TABLE audit_entries (entry_index INTEGER PRIMARY KEY, entry TEXT NOT NULL,
                                             entry_mac BLOB NOT NULL, candidate_hmac TEXT);
                 CREATE TABLE audit_frontier (id INTEGER PRIMARY KEY, frontier BLOB NOT NULL, mac BLOB);
                 INSERT INTO audit_frontier VALUES (1, x'', NULL);",
            )
            .unwrap();
            let mut appender = Appender::load(
                &conn,
                Pseudonymizer::new(&[3; 32]),
                Arc::new(IntegrityKey::new(&[4; 32])),
                [9; 32],
                Arc::new(ManualClock::at(now)),
            )
            .unwrap();
            // The index comes from the tree's size: start the tree there.
            let mut edge = vec![1u8]; // the frontier format's version
            edge.extend_from_slice(&index.to_be_bytes());
            edge.resize(edge.len() + 32 * index.count_ones() as usize, 0);
            appender.frontier = Frontier::from_bytes(&edge).unwrap();
            let stored = appender.append_prepared(prepared).unwrap();
            appender.persist(&conn).unwrap();
            prop_assert_eq!(stored, expected.index);
            let text: String = conn
                .query_one("SELECT entry FROM audit_entries", crate::store::sql::args![], |r| r.get(0))
                .unwrap();
            prop_assert_eq!(text.as_bytes(), &expected.canonical_bytes()[..]);
        }
    }
}
