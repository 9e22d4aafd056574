//! Reading the audit trail back: full verification, inclusion proofs, export and search.
//!
//! Verification recomputes the RFC 6962 tree from the stored entries and compares it with
//! every signed checkpoint (those in the database and any kept elsewhere). It names:
//! - a deleted entry (a gap in the indices),
//! - a truncated tail (a checkpoint covers more entries than the log holds),
//! - an altered entry (its MAC under the audit key fails; or, without the key, the range
//!   between the last matching and the first failing checkpoint),
//! - an entry stored at another position than its own `index` (deleted and renumbered),
//! - a `candidate_hmac` column that disagrees with the entry's `candidate` (a search or a
//!   subject access report would otherwise miss or misattribute the entry).

use std::sync::{mpsc, Arc};

use crate::store::sql::Db;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::log::Pseudonymizer;
use super::merkle::{self, Frontier, Hash};
use super::note::{Checkpoint, NoteVerifier};
use crate::error::{Error, Result};
use crate::store::audit_rows;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
const CHUNK: usize = 8_192;

/// A checkpoint to check, and where it came from (for messages).
pub struct CheckpointSource {
    /// `database` or a file path.
    pub source: String,
    /// The signed note.
    pub note: String,
}

/// What verification found (only returned when everything verified).
#[derive(Debug, Serialize)]
pub struct VerifyReport {
    /// Entries in the log.
    pub entries: u64,
    /// Bytes of entry text hashed.
    pub bytes: u64,
    /// The recomputed root, base64.
    pub root: String,
    /// Checkpoints checked: (tree size, source).
    pub checkpoints: Vec<(u64, String)>,
    /// Whether entry MACs were checked (needs the audit key).
    pub macs_checked: bool,
}

fn tampered(message: String) -> Error {
    Error::AuditTampered(message)
}

/// Entries read but not yet hashed: their text back to back, and per entry the end of its
/// text and (when MACs are checked) its stored MAC, `None` if it is not 32 bytes. One
/// allocation per chunk, shared by the hashing and the MAC threads.
#[derive(Default)]
struct Chunk {
    /// The index of the first entry.
    first: u64,
    text: Vec<u8>,
    ends: Vec<usize>,
    macs: Vec<Option<[u8; 32]>>,
}

impl Chunk {
    fn starting_at(first: u64, with_macs: bool) -> Chunk {
        Chunk {
            first,
            text: Vec::with_capacity(CHUNK * 768),
            ends: Vec::with_capacity(CHUNK),
            macs: Vec::with_capacity(if with_macs { CHUNK } else { 0 }),
        }
    }

    /// (index, entry text) of each entry, in order.
    fn entries(&self) -> impl Iterator<Item = (u64, &[u8])> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        (self.first..)
            .zip(starts.zip(self.ends.iter().copied()))
            .map(|(index, (start, end))| (index, self.text.get(start..end).unwrap_or_default()))
    }
}

/// The value text that follows the top-level key `key` (given as `,"key":`). Scans commas
/// (a fast byte search) rather than building a substring searcher per entry.
fn value_after<'a>(entry: &'a str, key: &str) -> Option<&'a str> {
    let mut from = 0usize;
    loop {
        let at = from.checked_add(entry.get(from..)?.find(',')?)?;
        let rest = entry.get(at..)?;
        if let Some(value) = rest.strip_prefix(key) {
            return Some(value);
        }
        from = at.checked_add(1)?;
    }
}

/// The `index` and `candidate` of a stored entry, read without a full JSON parse.
///
/// INVARIANT: an entry is a flat compact JSON object with its keys in lexicographic order
/// (see [`super::entry`]), so `candidate` comes before `index`. Inside a JSON string every `"`
/// is escaped, so `,"candidate":` and `,"index":` occur only as keys.
fn index_and_candidate(entry: &str) -> Option<(u64, Option<&str>)> {
    let rest = value_after(entry, ",\"candidate\":")?;
    let (candidate, rest) = match rest.strip_prefix("null") {
        Some(rest) => (None, rest),
        None => {
            let value = rest.strip_prefix('"')?;
            let end = value.find('"')?;
            (Some(value.get(..end)?), value.get(end..)?)
        }
    };
    let digits = value_after(rest, ",\"index\":")?;
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    let index = digits.get(..end)?.parse().ok()?;
    Some((index, candidate))
}

/// The tree as rebuilt from hashed leaves, and how far its checkpoints have been checked.
struct Tree {
    frontier: Frontier,
    /// The next checkpoint (by size) to compare.
    next_checkpoint: usize,
    /// The size of the last checkpoint that matched.
    last_good: u64,
    /// The first checkpoint that did not match.
    mismatch: Option<Error>,
}

impl Tree {
    /// Adds leaves in order and compares the tree with each checkpoint it reaches.
    fn absorb(
        &mut self,
        leaves: Vec<Hash>,
        checkpoints: &[(Checkpoint, String)],
        macs_checked: bool,
        progress: &dyn Fn(u64),
    ) -> Result<()> {
        for leaf in leaves {
            if self.mismatch.is_some() {
                return Ok(());
            }
            self.frontier
                .push(leaf)
                .map_err(|e| tampered(e.to_string()))?;
            while let Some((checkpoint, source)) = checkpoints.get(self.next_checkpoint) {
                if checkpoint.size != self.frontier.size() {
                    break;
                }
                if checkpoint.root != self.frontier.root() {
                    self.mismatch = Some(tampered(format!(
                        "the entries up to {} do not match the checkpoint from {source}: an entry between {} and {} was altered{}",
                        checkpoint.size,
                        self.last_good,
                        checkpoint.size.saturating_sub(1),
                        if macs_checked { "" } else { " (give the audit key to name it exactly)" }
                    )));
                    break;
                }
                self.last_good = checkpoint.size;
                self.next_checkpoint += 1;
            }
            if self.frontier.size().is_multiple_of(CHUNK as u64) {
                progress(self.frontier.size());
            }
        }
        Ok(())
    }
}

/// Hands a full (or the last) chunk to the hashing thread (which also checks the MACs); a
/// thread that has stopped is sent nothing more.
fn send_chunk(chunk: Chunk, hasher: &mut Option<mpsc::SyncSender<Arc<Chunk>>>) {
    if hasher
        .as_ref()
        .is_some_and(|s| s.send(Arc::new(chunk)).is_err())
    {
        *hasher = None;
    }
}

/// Verifies the whole log. `progress(done)` is called per chunk.
pub fn verify(
    conn: &Db,
    verifier: &NoteVerifier,
    macs: Option<&Pseudonymizer>,
    sources: &[CheckpointSource],
    progress: &dyn Fn(u64),
) -> Result<VerifyReport> {
    verify_observing(conn, verifier, macs, sources, progress, &mut |_| {})
}

/// [`verify`], handing every entry's text, in index order, to `observe` on the hashing
/// thread: what else must be learnt from the whole trail (the state it records for the
/// authorization rows) is learnt in the same pass and the same snapshot, not by reading the
/// trail a second time.
pub fn verify_observing(
    conn: &Db,
    verifier: &NoteVerifier,
    macs: Option<&Pseudonymizer>,
    sources: &[CheckpointSource],
    progress: &dyn Fn(u64),
    observe: &mut (dyn FnMut(&[u8]) + Send),
) -> Result<VerifyReport> {
    // 1. Every checkpoint's signature first: a forged checkpoint proves nothing.
    let mut checkpoints: Vec<(Checkpoint, String)> = Vec::new();
    for source in sources {
        let checkpoint = verifier.verify(&source.note).map_err(|e| {
            tampered(format!(
                "the checkpoint from {} does not verify: {e}",
                source.source
            ))
        })?;
        checkpoints.push((checkpoint, source.source.clone()));
    }
    checkpoints.sort_by_key(|(c, _)| c.size);
    // A checkpoint of the empty log is checked here: the loop below meets sizes from 1.
    let mut next_checkpoint = 0usize;
    while let Some((checkpoint, source)) = checkpoints.get(next_checkpoint) {
        if checkpoint.size != 0 {
            break;
        }
        if checkpoint.root != Frontier::new().root() {
            return Err(tampered(format!(
                "the checkpoint from {source} of the empty log has a wrong root: do not trust it"
            )));
        }
        next_checkpoint += 1;
    }

    // 2. Recompute the tree. This thread reads rows and checks their structure; another hashes
    //    the leaves and checks each MAC over its leaf (in order, so the tree is built here from
    //    its results). Reading and hashing cost about the same, so they overlap.
    let mut tree = Tree {
        frontier: Frontier::new(),
        next_checkpoint,
        last_good: 0,
        mismatch: None,
    };
    let mut read = 0u64;
    let mut bytes = 0u64;
    let result = std::thread::scope(|scope| -> Result<()> {
        let (chunk_sender, chunk_receiver) = mpsc::sync_channel::<Arc<Chunk>>(4);
        // Unbounded, so the hasher never waits on this thread: it is drained after every send.
        let (leaf_sender, leaf_receiver) = mpsc::channel::<Vec<Hash>>();
        // The hasher also checks each entry's MAC, which is over the leaf it just computed.
        let checker = scope.spawn(move || -> Option<u64> {
            let mut bad = None;
            for chunk in chunk_receiver {
                for (_, entry) in chunk.entries() {
                    observe(entry);
                }
                let leaves: Vec<Hash> = chunk
                    .entries()
                    .map(|(_, entry)| merkle::leaf_hash(entry))
                    .collect();
                if let (Some(keys), None) = (macs, bad) {
                    bad = chunk
                        .entries()
                        .zip(leaves.iter().zip(&chunk.macs))
                        .find(|(_, (leaf, mac))| {
                            !mac.is_some_and(|mac| keys.entry_mac_ok(leaf, &mac))
                        })
                        .map(|((index, _), _)| index);
                }
                if leaf_sender.send(leaves).is_err() {
                    break;
                }
            }
            bad
        });
        let mut chunk_sender = Some(chunk_sender);

        let mut chunk = Chunk::starting_at(0, macs.is_some());
        audit_rows::each_entry(conn, |row| {
            let index = row.index;
            let expected = read;
            // Borrowed from SQLite's row buffer: copied once, into the chunk.
            let entry: &str = row.text.ok_or_else(|| {
                tampered(format!(
                    "entry {expected} is not text: it was altered outside cvvault"
                ))
            })?;
            if u64::try_from(index).ok() != Some(expected) {
                return Err(tampered(format!(
                    "entry {expected} is missing: the log jumps from {} to {index}, so entries were deleted",
                    expected.saturating_sub(1)
                )));
            }
            let Some((own_index, candidate)) = index_and_candidate(entry) else {
                return Err(tampered(format!(
                    "entry {expected} is not a well-formed entry: it was altered outside cvvault"
                )));
            };
            if own_index != expected {
                return Err(tampered(format!(
                    "entry {expected} holds the text of entry {own_index}: entries were deleted or moved and the rest renumbered"
                )));
            }
            if row.candidate != Some(candidate) {
                return Err(tampered(format!(
                    "entry {expected}'s candidate index column does not match its content: it was changed outside cvvault, so searches and subject access reports would miss or misattribute the entry"
                )));
            }
            chunk.text.extend_from_slice(entry.as_bytes());
            chunk.ends.push(chunk.text.len());
            if macs.is_some() {
                chunk.macs.push(row.mac.and_then(|mac| mac.try_into().ok()));
            }
            bytes += entry.len() as u64;
            read += 1;
            if chunk.ends.len() == CHUNK {
                let full = std::mem::replace(&mut chunk, Chunk::starting_at(read, macs.is_some()));
                send_chunk(full, &mut chunk_sender);
                for leaves in leaf_receiver.try_iter() {
                    tree.absorb(leaves, &checkpoints, macs.is_some(), progress)?;
                }
                if tree.mismatch.is_some() {
                    return Ok(false);
                }
            }
            Ok(true)
        })?;
        if tree.mismatch.is_none() && !chunk.ends.is_empty() {
            send_chunk(chunk, &mut chunk_sender);
        }
        // Closing the inputs lets both threads finish what they have and stop.
        drop(chunk_sender);
        for leaves in leaf_receiver.iter() {
            tree.absorb(leaves, &checkpoints, macs.is_some(), progress)?;
        }
        {
            let bad = checker.join().map_err(|_| Error::Corrupt {
                what: "the hashing thread failed",
            })?;
            if let Some(index) = bad {
                return Err(tampered(format!(
                    "entry {index} was altered: its MAC under the audit key does not match its content"
                )));
            }
        }
        Ok(())
    });
    // A MAC failure names the exact entry and is the more precise message: check it first.
    result?;
    let Tree {
        frontier,
        next_checkpoint,
        mismatch,
        ..
    } = tree;
    if let Some(error) = mismatch {
        return Err(error);
    }
    if let Some((checkpoint, source)) = checkpoints.get(next_checkpoint) {
        return Err(tampered(format!(
            "the log holds {} entries but the checkpoint from {source} covers {}: the last {} entries were removed",
            frontier.size(),
            checkpoint.size,
            checkpoint.size.saturating_sub(frontier.size())
        )));
    }
    let stored = audit_rows::stored_frontier(conn)?
        .map(|stored| stored.bytes)
        .unwrap_or_default();
    let stored_ok = if stored.is_empty() {
        frontier.size() == 0
    } else {
        Frontier::from_bytes(&stored).is_ok_and(|f| f == frontier)
    };
    if !stored_ok {
        return Err(tampered(
            "the stored tree edge does not match the entries: rows were changed outside cvvault"
                .into(),
        ));
    }
    progress(frontier.size());
    Ok(VerifyReport {
        entries: frontier.size(),
        bytes,
        root: B64.encode(frontier.root()),
        checkpoints: checkpoints
            .iter()
            .map(|(c, s)| (c.size, s.clone()))
            .collect(),
        macs_checked: macs.is_some(),
    })
}

/// The signed checkpoints stored in the database, oldest first.
pub fn stored_checkpoints(conn: &Db) -> Result<Vec<CheckpointSource>> {
    Ok(audit_rows::checkpoint_notes(conn)?
        .into_iter()
        .map(|note| CheckpointSource {
            source: "the database".into(),
            note,
        })
        .collect())
}

/// The latest stored checkpoint note.
pub fn latest_checkpoint(conn: &Db) -> Result<Option<String>> {
    audit_rows::latest_checkpoint_note(conn)
}

/// An inclusion proof, self-contained: a verifier needs only this and the verifier key.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct InclusionProof {
    /// `cvvault-inclusion-proof/v1`.
    pub format: String,
    /// The entry's index.
    pub index: u64,
    /// The tree size the proof is for (equals the checkpoint's size).
    pub tree_size: u64,
    /// The entry text exactly as stored (its leaf hash is SHA-256(0x00 || entry)).
    pub entry: String,
    /// The audit path, base64 hashes, leaf to root (RFC 6962 §2.1.1).
    pub proof: Vec<String>,
    /// The signed checkpoint of size `tree_size`.
    pub checkpoint: String,
}

/// The proof format tag.
pub const PROOF_FORMAT: &str = "cvvault-inclusion-proof/v1";

/// All leaf hashes up to `size`.
fn leaves(conn: &Db, size: u64) -> Result<Vec<Hash>> {
    let limit = i64::try_from(size).map_err(|_| Error::invalid_input("tree size out of range"))?;
    let mut out = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    audit_rows::each_entry_text(conn, Some(limit), |entry| {
        out.push(merkle::leaf_hash(entry.as_bytes()));
        Ok(())
    })?;
    if out.len() as u64 != size {
        return Err(tampered(format!(
            "the log holds {} entries, fewer than {size}",
            out.len()
        )));
    }
    Ok(out)
}

/// Builds an inclusion proof of entry `index` against a checkpoint note of the current tree.
pub fn prove(
    conn: &Db,
    index: u64,
    checkpoint_note: &str,
    checkpoint: &Checkpoint,
) -> Result<InclusionProof> {
    if index >= checkpoint.size {
        return Err(Error::invalid_input(format!(
            "there is no entry {index}: the log holds {} entries (0 to {})",
            checkpoint.size,
            checkpoint.size.saturating_sub(1)
        )));
    }
    let all = leaves(conn, checkpoint.size)?;
    let path =
        merkle::inclusion_proof(&all, index).map_err(|e| Error::invalid_input(e.to_string()))?;
    let stored_index =
        i64::try_from(index).map_err(|_| Error::invalid_input("index out of range"))?;
    let entry = audit_rows::entry_text(conn, stored_index)?.ok_or(Error::Corrupt {
        what: "an entry the checkpoint covers is missing",
    })?;
    Ok(InclusionProof {
        format: PROOF_FORMAT.into(),
        index,
        tree_size: checkpoint.size,
        entry,
        proof: path.iter().map(|h| B64.encode(h)).collect(),
        checkpoint: checkpoint_note.to_owned(),
    })
}

/// Checks a proof offline: the checkpoint's signature, then the audit path to its root.
pub fn verify_proof(proof: &InclusionProof, verifier: &NoteVerifier) -> Result<Checkpoint> {
    if proof.format != PROOF_FORMAT {
        return Err(Error::invalid_input(format!(
            "not a {PROOF_FORMAT} document"
        )));
    }
    let checkpoint = verifier
        .verify(&proof.checkpoint)
        .map_err(|e| tampered(format!("the proof's checkpoint does not verify: {e}")))?;
    if checkpoint.size != proof.tree_size {
        return Err(tampered(format!(
            "the proof is for a tree of {} entries but its checkpoint covers {}",
            proof.tree_size, checkpoint.size
        )));
    }
    let path = proof
        .proof
        .iter()
        .map(|h| {
            let bytes = B64
                .decode(h)
                .map_err(|_| tampered("a proof hash is not base64".into()))?;
            Hash::try_from(bytes.as_slice())
                .map_err(|_| tampered("a proof hash is not 32 bytes".into()))
        })
        .collect::<Result<Vec<Hash>>>()?;
    merkle::verify_inclusion(
        &merkle::leaf_hash(proof.entry.as_bytes()),
        proof.index,
        proof.tree_size,
        &path,
        &checkpoint.root,
    )
    .map_err(|e| tampered(format!("the inclusion proof does not verify: {e}")))?;
    Ok(checkpoint)
}

/// A consistency proof, self-contained: the log of `checkpoint`'s size extends the log of
/// `old_size` entries whose root is `old_root` (RFC 9162 §2.1.4). A DPO compares `old_root`
/// with a checkpoint of that size kept elsewhere.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyProof {
    /// `cvvault-consistency-proof/v1`.
    pub format: String,
    /// The older tree's size.
    pub old_size: u64,
    /// The older tree's root, base64.
    pub old_root: String,
    /// The newer tree's size (equals the checkpoint's size).
    pub new_size: u64,
    /// The consistency path, base64 hashes (RFC 9162 §2.1.4.1).
    pub proof: Vec<String>,
    /// The signed checkpoint of size `new_size`.
    pub checkpoint: String,
}

/// The consistency proof format tag.
pub const CONSISTENCY_FORMAT: &str = "cvvault-consistency-proof/v1";

/// Builds a consistency proof from `old_size` entries to the tree of `checkpoint`.
pub fn prove_consistency(
    conn: &Db,
    old_size: u64,
    checkpoint_note: &str,
    checkpoint: &Checkpoint,
) -> Result<ConsistencyProof> {
    if old_size > checkpoint.size {
        return Err(Error::invalid_input(format!(
            "--from {old_size} is past the checkpoint's {} entries: give a size from 0 to {}",
            checkpoint.size, checkpoint.size
        )));
    }
    let all = leaves(conn, checkpoint.size)?;
    let old_len = usize::try_from(old_size).unwrap_or(usize::MAX);
    let old_root = merkle::root(all.get(..old_len).unwrap_or(&all));
    let path = merkle::consistency_proof(&all, old_size)
        .map_err(|e| Error::invalid_input(e.to_string()))?;
    Ok(ConsistencyProof {
        format: CONSISTENCY_FORMAT.into(),
        old_size,
        old_root: B64.encode(old_root),
        new_size: checkpoint.size,
        proof: path.iter().map(|h| B64.encode(h)).collect(),
        checkpoint: checkpoint_note.to_owned(),
    })
}

/// Checks a consistency proof offline: the checkpoint's signature, then the path from the old
/// root to the checkpoint's. Returns the checkpoint and the old root it was checked against.
pub fn verify_consistency_proof(
    proof: &ConsistencyProof,
    verifier: &NoteVerifier,
) -> Result<(Checkpoint, Hash)> {
    if proof.format != CONSISTENCY_FORMAT {
        return Err(Error::invalid_input(format!(
            "not a {CONSISTENCY_FORMAT} document"
        )));
    }
    let checkpoint = verifier
        .verify(&proof.checkpoint)
        .map_err(|e| tampered(format!("the proof's checkpoint does not verify: {e}")))?;
    if checkpoint.size != proof.new_size {
        return Err(tampered(format!(
            "the proof is for a tree of {} entries but its checkpoint covers {}",
            proof.new_size, checkpoint.size
        )));
    }
    let decode = |h: &String| -> Result<Hash> {
        let bytes = B64
            .decode(h)
            .map_err(|_| tampered("a proof hash is not base64".into()))?;
        Hash::try_from(bytes.as_slice())
            .map_err(|_| tampered("a proof hash is not 32 bytes".into()))
    };
    let old_root = decode(&proof.old_root)?;
    let path = proof
        .proof
        .iter()
        .map(decode)
        .collect::<Result<Vec<Hash>>>()?;
    merkle::verify_consistency(
        proof.old_size,
        proof.new_size,
        &old_root,
        &checkpoint.root,
        &path,
    )
    .map_err(|e| tampered(format!("the consistency proof does not verify: {e}")))?;
    Ok((checkpoint, old_root))
}

/// An export that carries its own proof: the entries `start..end` (covering every entry of
/// the time window asked for), the right edge of the tree of `start` entries (its subtree
/// roots), and the signed checkpoints of sizes `start` and `end`. A verifier folds the
/// subtrees to the root of `start_checkpoint`, appends the entries' leaf hashes and must reach
/// the root of `end_checkpoint`: no entry in between was changed, left out or added.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ExportBundle {
    /// `cvvault-audit-export/v1`.
    pub format: String,
    /// The index of the first entry, and the size of `start_checkpoint`.
    pub start: u64,
    /// One past the last entry, and the size of `end_checkpoint`.
    pub end: u64,
    /// The roots of the perfect subtrees of the tree of `start` entries, largest first,
    /// base64 (one per set bit of `start`; none for 0).
    pub start_subtrees: Vec<String>,
    /// The signed checkpoint of `start` entries (`None` when `start` is 0).
    pub start_checkpoint: Option<String>,
    /// The signed checkpoint of `end` entries.
    pub end_checkpoint: String,
    /// The entries `start..end`, byte for byte as hashed.
    pub entries: Vec<String>,
    /// Their MACs (hex), when asked for (a verifier with the audit key checks them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub macs: Option<Vec<String>>,
}

/// The export bundle format tag.
pub const BUNDLE_FORMAT: &str = "cvvault-audit-export/v1";

/// Builds an [`ExportBundle`] of the entries within `[since, until)` (all when both are
/// `None`), widened to the nearest signed checkpoints around them; `checkpoints` are the
/// signed checkpoints (note, size) the vault holds, the latest covering the whole log.
pub fn export_bundle(
    conn: &Db,
    (since, until): (Option<i64>, Option<i64>),
    checkpoints: &[(String, u64)],
    with_macs: bool,
) -> Result<ExportBundle> {
    // Pass 1: which entries the window holds.
    let (mut first, mut last) = (None::<u64>, None::<u64>);
    let mut total = 0u64;
    audit_rows::each_entry_text(conn, None, |entry| {
        let index = total;
        total += 1;
        let time = serde_json::from_str::<super::entry::Entry>(entry)
            .ok()
            .and_then(|e| crate::clock::parse_time(&e.time));
        let inside =
            time.is_some_and(|t| since.is_none_or(|s| t >= s) && until.is_none_or(|u| t < u));
        if inside {
            first.get_or_insert(index);
            last = Some(index);
        }
        Ok(())
    })?;
    let (lo, hi) = match (first, last) {
        (Some(first), Some(last)) => (first, last + 1),
        _ => {
            return Err(Error::invalid_input(
                "no audit entry falls in that time window: widen --since/--until",
            ))
        }
    };
    let start = checkpoints
        .iter()
        .map(|(_, size)| *size)
        .filter(|size| *size <= lo)
        .max()
        .unwrap_or(0);
    let Some((end_note, end)) = checkpoints
        .iter()
        .filter(|(_, size)| *size >= hi)
        .min_by_key(|(_, size)| *size)
    else {
        return Err(Error::Internal("no signed checkpoint covers the log"));
    };
    let start_note = checkpoints
        .iter()
        .find(|(_, size)| *size == start && start > 0)
        .map(|(note, _)| note.clone());
    // Pass 2: the frontier at `start`, and the entries (and MACs) `start..end`.
    let mut frontier = Frontier::new();
    let mut start_subtrees = Vec::new();
    let (mut entries, mut macs) = (Vec::new(), Vec::new());
    audit_rows::each_entry(conn, |row| {
        let index = u64::try_from(row.index).unwrap_or(u64::MAX);
        if index >= *end {
            return Ok(false);
        }
        if index == start {
            start_subtrees = frontier.subtrees().iter().map(|h| B64.encode(h)).collect();
        }
        let text = row
            .text
            .ok_or_else(|| tampered(format!("entry {index} is not text")))?;
        frontier
            .push(merkle::leaf_hash(text.as_bytes()))
            .map_err(|e| tampered(e.to_string()))?;
        if index >= start {
            entries.push(text.to_owned());
            if with_macs {
                macs.push(row.mac.map(hex::encode).unwrap_or_default());
            }
        }
        Ok(true)
    })?;
    if frontier.size() == start {
        start_subtrees = frontier.subtrees().iter().map(|h| B64.encode(h)).collect();
    }
    Ok(ExportBundle {
        format: BUNDLE_FORMAT.into(),
        start,
        end: *end,
        start_subtrees,
        start_checkpoint: start_note,
        end_checkpoint: end_note.clone(),
        entries,
        macs: with_macs.then_some(macs),
    })
}

/// Checks an [`ExportBundle`] offline with the verifier key: both checkpoints' signatures, the
/// start subtrees against the start checkpoint's root, then the entries from there to the end
/// checkpoint's root, and that each entry carries its own index. Returns the end checkpoint.
pub fn verify_bundle(bundle: &ExportBundle, verifier: &NoteVerifier) -> Result<Checkpoint> {
    if bundle.format != BUNDLE_FORMAT {
        return Err(Error::invalid_input(format!(
            "not a {BUNDLE_FORMAT} document"
        )));
    }
    let signed = |note: &str, size: u64, which: &str| -> Result<Checkpoint> {
        let checkpoint = verifier
            .verify(note)
            .map_err(|e| tampered(format!("the {which} checkpoint does not verify: {e}")))?;
        if checkpoint.size != size {
            return Err(tampered(format!(
                "the {which} checkpoint covers {} entries, not {size}",
                checkpoint.size
            )));
        }
        Ok(checkpoint)
    };
    let end = signed(&bundle.end_checkpoint, bundle.end, "end")?;
    let subtrees = bundle
        .start_subtrees
        .iter()
        .map(|h| {
            let bytes = B64
                .decode(h)
                .map_err(|_| tampered("a subtree hash is not base64".into()))?;
            Hash::try_from(bytes.as_slice())
                .map_err(|_| tampered("a subtree hash is not 32 bytes".into()))
        })
        .collect::<Result<Vec<Hash>>>()?;
    let mut frontier = Frontier::from_subtrees(bundle.start, subtrees)
        .map_err(|e| tampered(format!("the start subtrees do not fit the start size: {e}")))?;
    match &bundle.start_checkpoint {
        Some(note) => {
            let start = signed(note, bundle.start, "start")?;
            if frontier.root() != start.root {
                return Err(tampered(
                    "the start subtrees are not those of the start checkpoint's tree".into(),
                ));
            }
        }
        None if bundle.start == 0 => {}
        None => return Err(tampered("the bundle has no start checkpoint".into())),
    }
    if bundle.entries.len() as u64 != bundle.end.saturating_sub(bundle.start) {
        return Err(tampered(format!(
            "the bundle holds {} entries, not the {} from {} to {}",
            bundle.entries.len(),
            bundle.end.saturating_sub(bundle.start),
            bundle.start,
            bundle.end
        )));
    }
    for (offset, entry) in bundle.entries.iter().enumerate() {
        let index = bundle.start + offset as u64;
        let stated = serde_json::from_str::<super::entry::Entry>(entry)
            .map_err(|_| tampered(format!("entry {index} does not parse")))?
            .index;
        if stated != index {
            return Err(tampered(format!("entry {index} says it is entry {stated}")));
        }
        frontier
            .push(merkle::leaf_hash(entry.as_bytes()))
            .map_err(|e| tampered(e.to_string()))?;
    }
    if frontier.root() != end.root {
        return Err(tampered(
            "the entries do not lead from the start checkpoint to the end checkpoint: one was changed, left out or added".into(),
        ));
    }
    Ok(end)
}

/// Entries (raw text) in index order, optionally within `[since, until)` by their time.
pub fn export(
    conn: &Db,
    since: Option<i64>,
    until: Option<i64>,
    mut out: impl FnMut(&str) -> Result<()>,
) -> Result<u64> {
    let mut written = 0u64;
    audit_rows::each_entry_text(conn, None, |entry| {
        if since.is_some() || until.is_some() {
            let time = serde_json::from_str::<super::entry::Entry>(entry)
                .ok()
                .and_then(|e| crate::clock::parse_time(&e.time));
            let Some(time) = time else { return Ok(()) };
            if since.is_some_and(|s| time < s) || until.is_some_and(|u| time >= u) {
                return Ok(());
            }
        }
        out(entry)?;
        written += 1;
        Ok(())
    })?;
    Ok(written)
}

/// The entries about one candidate pseudonym, in order.
pub fn search(conn: &Db, candidate_hmac: &str) -> Result<Vec<super::entry::Entry>> {
    audit_rows::entries_about(conn, candidate_hmac)?
        .iter()
        .map(|text| {
            serde_json::from_str(text).map_err(|_| Error::Corrupt {
                what: "an audit entry does not parse",
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::audit::entry::Outcome;
    use crate::audit::log::{Actor, Appender, Record};
    use crate::audit::note::{generate_pkcs8, NoteSigner};
    use crate::clock::ManualClock;
    use crate::ids::CandidateId;

    const ORIGIN: &str = "example.com/cvvault-test";

    /// A store with `n` entries (every other one about a candidate) and a signer of its log.
    fn log_of(n: u64) -> (tempfile::TempDir, Db, NoteSigner, Pseudonymizer) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vault.db");
        crate::store::create(&path).unwrap();
        let conn = crate::store::open_connection(&path, false).unwrap();
        let keys = Pseudonymizer::new(&[7; 32]);
        let mut appender = Appender::load(
            &conn,
            keys.clone(),
            Arc::new(crate::crypto::integrity::IntegrityKey::new(&[8; 32])),
            [1; 32],
            Arc::new(ManualClock::at(0)),
        )
        .unwrap();
        for i in 0..n {
            let mut record = Record::new("extract", &Actor::operator(), Outcome::Allow, "r");
            record.candidate = (i % 2 == 0).then(CandidateId::random);
            appender.append(record).unwrap();
        }
        appender.persist(&conn).unwrap();
        let signer = NoteSigner::from_pkcs8(ORIGIN, &generate_pkcs8().unwrap()).unwrap();
        (dir, conn, signer, keys)
    }

    fn checkpoint(signer: &NoteSigner, size: u64, root: Hash) -> CheckpointSource {
        let note = signer
            .sign(&Checkpoint {
                origin: ORIGIN.into(),
                size,
                root,
            })
            .unwrap();
        CheckpointSource {
            source: format!("size {size}"),
            note,
        }
    }

    #[test]
    fn a_checkpoint_of_the_empty_log_does_not_hide_the_later_ones() {
        let (_dir, conn, signer, keys) = log_of(5);
        let verifier = NoteVerifier::parse(&signer.verifier_key()).unwrap();
        let empty = checkpoint(&signer, 0, Frontier::new().root());
        let report = verify(&conn, &verifier, Some(&keys), &[empty], &|_| {}).unwrap();
        assert_eq!((report.entries, report.checkpoints.len()), (5, 1));

        // A wrong later checkpoint is still compared, not skipped behind the empty one.
        let empty = checkpoint(&signer, 0, Frontier::new().root());
        let wrong = checkpoint(&signer, 3, [9; 32]);
        let err = verify(&conn, &verifier, None, &[empty, wrong], &|_| {})
            .unwrap_err()
            .to_string();
        assert!(err.contains("between 0 and 2"), "{err}");
        let forged_empty = checkpoint(&signer, 0, [9; 32]);
        assert!(verify(&conn, &verifier, None, &[forged_empty], &|_| {}).is_err());
    }

    #[test]
    fn tampering_is_located_across_chunk_boundaries() {
        let n = 3 * CHUNK as u64 + 17;
        let (_dir, conn, signer, keys) = log_of(n);
        let verifier = NoteVerifier::parse(&signer.verifier_key()).unwrap();
        let frontier_at = |size: u64| {
            let mut frontier = Frontier::new();
            audit_rows::each_entry_text(&conn, Some(size as i64), |entry| {
                frontier.push(merkle::leaf_hash(entry.as_bytes())).unwrap();
                Ok(())
            })
            .unwrap();
            frontier.root()
        };
        let sizes = [CHUNK as u64 - 1, CHUNK as u64 + 5, 2 * CHUNK as u64, n];
        let sources: Vec<CheckpointSource> = sizes
            .iter()
            .map(|s| checkpoint(&signer, *s, frontier_at(*s)))
            .collect();
        let report = verify(&conn, &verifier, Some(&keys), &sources, &|_| {}).unwrap();
        assert_eq!((report.entries, report.checkpoints.len()), (n, 4));

        conn.batch("DROP TRIGGER audit_entries_append_only_update;")
            .unwrap();
        for k in [
            0,
            CHUNK as u64 - 1,
            CHUNK as u64,
            2 * CHUNK as u64 + 3,
            n - 1,
        ] {
            let text: String = audit_rows::entry_text(&conn, k as i64).unwrap().unwrap();
            let altered = text.replacen("\"request_id\":\"r\"", "\"request_id\":\"s\"", 1);
            let update = "UPDATE audit_entries SET entry = ?2 WHERE entry_index = ?1";
            conn.execute(update, crate::store::sql::args![k as i64, &altered])
                .unwrap();
            let err = verify(&conn, &verifier, Some(&keys), &sources, &|_| {})
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(&format!("entry {k} was altered")),
                "{k}: {err}"
            );
            let err = verify(&conn, &verifier, None, &sources, &|_| {})
                .unwrap_err()
                .to_string();
            let below = sizes.iter().copied().filter(|s| *s <= k).max().unwrap_or(0);
            let above = sizes.iter().copied().find(|s| *s > k).unwrap();
            assert!(
                err.contains(&format!("between {below} and {}", above - 1)),
                "{k}: {err}"
            );
            conn.execute(update, crate::store::sql::args![k as i64, &text])
                .unwrap();
        }
        verify(&conn, &verifier, Some(&keys), &sources, &|_| {}).unwrap();
    }

    #[test]
    fn index_and_candidate_are_read_from_canonical_entries() {
        let (_dir, conn, _signer, _keys) = log_of(4);
        let rows: Vec<(String, Option<String>)> = conn
            .query_all(
                "SELECT entry, candidate_hmac FROM audit_entries ORDER BY entry_index",
                crate::store::sql::args![],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        for (n, (entry, column)) in rows.iter().enumerate() {
            assert_eq!(
                index_and_candidate(entry),
                Some((n as u64, column.as_deref())),
                "{entry}"
            );
        }
        assert_eq!(index_and_candidate("{}"), None);
        assert_eq!(
            index_and_candidate("{\"a\":\",\\\"index\\\":7\"}"),
            None,
            "a key inside a string is not a key"
        );
    }
}
