//! Typed reads and writes of the store's rows. SQL lives here, in `audit_rows.rs` (the audit
//! trail's) and in the schema files, nowhere else; callers pass the connection of their
//! transaction.
//!
//! Every row that authorization depends on (principals, tokens, assignments, candidates
//! with their legal holds) carries a MAC under the keyring's integrity key
//! ([`crate::crypto::integrity`]). It is written with the row and checked wherever the row is
//! read; a change to such a row checks the old MAC first, so that no update blesses a row
//! written outside cvvault. A row that fails is refused: a lookup returns
//! [`Error::Forged`], a listing or a grant leaves it out (and logs it), and
//! [`integrity_findings`] names it for `cvvault audit verify`.
//!
//! Every operation that releases or changes candidate data takes the proof of an allowed
//! decision ([`Allowed`] or [`ReadGrant`], which only `policy` can make) and acts on the
//! candidate the proof names, not on an id of its own: code that forgot to decide does not
//! compile. What policy decides on (a candidate's keys and lifecycle, its control group, its
//! open assignments) is read without one, and never leaves the vault.

use super::sql::{args, Db, Dialect, Kind, Row, Table, Value};

use crate::crypto::envelope::WrappedDek;
use crate::crypto::integrity::{optional, Domain, IntegrityKey};
use crate::error::{Error, Result};
use crate::ids::{AssignmentId, CandidateId, OrgId, PrincipalId};
use crate::policy::{Action, Allowed, ReadGrant};
use crate::vault::retention::Rule;
use crate::vocabulary::{AssignmentKind, FieldGroup, OrgKind, Role};

/// The format version bound into every sealed group's associated data.
pub const RECORD_VERSION: u32 = 1;

/// A candidate's keys and lifecycle (the small row).
pub struct CandidateKeys {
    /// The wrapped DEK and its commitment.
    pub dek: WrappedDek,
    /// Under legal hold.
    pub legal_hold: bool,
    /// The hold's stated ground.
    pub legal_hold_reason: Option<String>,
    /// The key slot the lifecycle row points to.
    pub key_slot: i64,
    /// The HMAC of the agency reference, if one was given.
    pub reference_mac: Option<Vec<u8>>,
}

/// The sealed groups of one candidate, in [`FieldGroup::ALL`] order.
pub struct SealedProfile {
    /// Format version bound into the associated data.
    pub record_version: u32,
    /// One sealed blob per group.
    pub groups: [Vec<u8>; 5],
}

impl SealedProfile {
    /// The sealed blob of one group.
    pub fn group(&self, group: FieldGroup) -> &[u8] {
        let [identity, contact, professional, special, control] = &self.groups;
        match group {
            FieldGroup::Identity => identity,
            FieldGroup::Contact => contact,
            FieldGroup::Professional => professional,
            FieldGroup::Special => special,
            FieldGroup::Control => control,
        }
    }
}

/// The fields a candidate's lifecycle row's MAC covers: id, key slot, legal hold and its
/// ground, and the agency reference's HMAC when there is one (a row without one has the four
/// fields it had before references existed, so its MAC stays valid).
fn candidate_fields(
    id: &CandidateId,
    key_id: i64,
    hold: bool,
    reason: Option<&str>,
    reference: Option<&[u8]>,
) -> Vec<Vec<u8>> {
    let mut fields = vec![
        id.as_bytes().to_vec(),
        key_id.to_be_bytes().to_vec(),
        vec![u8::from(hold)],
        optional(reason.map(str::as_bytes)),
    ];
    if let Some(reference) = reference {
        fields.push(reference.to_vec());
    }
    fields
}

/// The MAC of a candidate's lifecycle row (see [`candidate_fields`]).
fn candidate_mac(
    key: &IntegrityKey,
    id: &CandidateId,
    key_id: i64,
    hold: bool,
    reason: Option<&str>,
    reference: Option<&[u8]>,
) -> Vec<u8> {
    let fields = candidate_fields(id, key_id, hold, reason, reference);
    key.mac(Domain::Candidate, &borrowed(&fields))
}

fn candidate_row_ok(
    key: &IntegrityKey,
    id: &CandidateId,
    row: (i64, bool, Option<&str>, Option<&[u8]>),
    mac: Option<&[u8]>,
) -> bool {
    let (key_id, hold, reason, reference) = row;
    let fields = candidate_fields(id, key_id, hold, reason, reference);
    key.verify(Domain::Candidate, &borrowed(&fields), mac)
}

fn forged(table: &'static str, row: impl std::fmt::Display) -> Error {
    tracing::error!(table, row = %row, "a row fails its integrity check: it was written or changed outside cvvault and is refused");
    Error::Forged {
        table,
        row: row.to_string(),
    }
}

fn version_u32(v: i64) -> Result<u32> {
    u32::try_from(v).map_err(|_| Error::Corrupt {
        what: "a stored version number is out of range",
    })
}

/// A new key slot, at the right edge: `?1` candidate, `?2` KEK version, `?3` wrapped DEK,
/// `?4` commitment.
const INSERT_KEY_SLOT: &str =
    "INSERT INTO candidate_keys (candidate_id, kek_version, wrapped_dek, dek_commitment)
     VALUES (?1, ?2, ?3, ?4) RETURNING key_id";
/// A sealed profile: `?1` candidate, `?2` record version, `?3`..`?7` the groups, `?8` slot.
const INSERT_SEALED: &str = "INSERT INTO sealed_profiles (key_id, candidate_id, record_version, identity, contact, professional, special, control)
     VALUES (?8, ?1, ?2, ?3, ?4, ?5, ?6, ?7)";

/// A new candidate for [`CandidateInserter::insert_all`].
pub struct NewCandidate<'a> {
    /// Its id.
    pub id: &'a CandidateId,
    /// Its wrapped DEK.
    pub dek: &'a WrappedDek,
    /// Its sealed profile.
    pub sealed: &'a SealedProfile,
    /// The HMAC of its agency reference, if it has one.
    pub reference_mac: Option<&'a [u8]>,
}

const CANDIDATE_KEYS: Table<5> = Table {
    name: "candidate_keys",
    columns: [
        ("key_id", Kind::Int),
        ("candidate_id", Kind::Blob),
        ("kek_version", Kind::Int),
        ("wrapped_dek", Kind::Blob),
        ("dek_commitment", Kind::Blob),
    ],
};

const CANDIDATES: Table<6> = Table {
    name: "candidates",
    columns: [
        ("candidate_id", Kind::Blob),
        ("key_id", Kind::Int),
        ("created_at", Kind::Int),
        ("idle_since", Kind::Int),
        ("row_mac", Kind::Blob),
        ("reference_mac", Kind::Blob),
    ],
};

const SEALED_PROFILES: Table<8> = Table {
    name: "sealed_profiles",
    columns: [
        ("key_id", Kind::Int),
        ("candidate_id", Kind::Blob),
        ("record_version", Kind::Int),
        ("identity", Kind::Blob),
        ("contact", Kind::Blob),
        ("professional", Kind::Blob),
        ("special", Kind::Blob),
        ("control", Kind::Blob),
    ],
};

/// Inserts new candidates (key slot, lifecycle row and sealed row each), a whole import
/// batch at a time: one multi-row insert per table (one `COPY` each on PostgreSQL).
pub struct CandidateInserter<'conn> {
    conn: &'conn Db,
    integrity: &'conn IntegrityKey,
}

impl<'conn> CandidateInserter<'conn> {
    /// An inserter on `conn` (inside the caller's transaction), for a principal whose
    /// registering candidates policy allowed.
    pub fn new(
        conn: &'conn Db,
        integrity: &'conn IntegrityKey,
        allowed: &Allowed,
    ) -> Result<CandidateInserter<'conn>> {
        allowed.check_action(Action::Register)?;
        Ok(CandidateInserter { conn, integrity })
    }

    /// Inserts new candidates, each with the HMAC of its agency reference if it has one (the
    /// caller checks first that no candidate has it: [`registered_references`]).
    pub fn insert_all(&mut self, created_at: i64, candidates: &[NewCandidate<'_>]) -> Result<()> {
        if candidates.is_empty() {
            return Ok(());
        }
        let slots = new_key_slots(self.conn, candidates.len())?;
        let ids: Vec<&[u8]> = candidates.iter().map(|c| &c.id.as_bytes()[..]).collect();
        let keys: Vec<[Value<'_>; 5]> = candidates
            .iter()
            .zip(&slots)
            .zip(&ids)
            .map(|((c, slot), id)| {
                [
                    Value::Int(*slot),
                    Value::Blob(id),
                    c.dek.kek_version.into(),
                    Value::Blob(&c.dek.wrapped),
                    Value::Blob(&c.dek.commitment),
                ]
            })
            .collect();
        self.conn.insert_rows(&CANDIDATE_KEYS, &keys)?;
        let macs: Vec<Vec<u8>> = candidates
            .iter()
            .zip(&slots)
            .map(|(c, slot)| {
                candidate_mac(self.integrity, c.id, *slot, false, None, c.reference_mac)
            })
            .collect();
        let lifecycle: Vec<[Value<'_>; 6]> = candidates
            .iter()
            .zip(&slots)
            .zip(ids.iter().zip(&macs))
            .map(|((c, slot), (id, mac))| {
                [
                    Value::Blob(id),
                    Value::Int(*slot),
                    Value::Int(created_at),
                    Value::Int(created_at),
                    Value::Blob(mac),
                    c.reference_mac.into(),
                ]
            })
            .collect();
        self.conn.insert_rows(&CANDIDATES, &lifecycle)?;
        let sealed: Vec<[Value<'_>; 8]> = candidates
            .iter()
            .zip(&slots)
            .zip(&ids)
            .map(|((c, slot), id)| {
                let [identity, contact, professional, special, control] = &c.sealed.groups;
                [
                    Value::Int(*slot),
                    Value::Blob(id),
                    c.sealed.record_version.into(),
                    Value::Blob(identity),
                    Value::Blob(contact),
                    Value::Blob(professional),
                    Value::Blob(special),
                    Value::Blob(control),
                ]
            })
            .collect();
        self.conn.insert_rows(&SEALED_PROFILES, &sealed)?;
        Ok(())
    }
}

/// Numbers for `count` new key slots. On SQLite, inside the write transaction that holds the
/// database's lock, the numbers after the highest (the ones SQLite would give itself); on
/// PostgreSQL, from the slots' identity sequence, which every node draws from.
fn new_key_slots(conn: &Db, count: usize) -> Result<Vec<i64>> {
    let count = i64::try_from(count).map_err(|_| Error::Internal("too many key slots at once"))?;
    match conn.dialect() {
        Dialect::Sqlite => {
            let highest: i64 = conn.query_one(
                "SELECT coalesce(max(key_id), 0) FROM candidate_keys",
                args![],
                |r| r.get(0),
            )?;
            Ok((1..=count).map(|n| highest + n).collect())
        }
        Dialect::Postgres => conn.query_all(
            "SELECT nextval(pg_get_serial_sequence('candidate_keys', 'key_id')) FROM generate_series(1, ?1)",
            args![count],
            |r| r.get(0),
        ),
    }
}

/// Appends a key slot; returns its number.
fn insert_key_slot(conn: &Db, id: &CandidateId, dek: &WrappedDek) -> Result<i64> {
    conn.query_one(
        INSERT_KEY_SLOT,
        args![
            &id.as_bytes()[..],
            dek.kek_version,
            &dek.wrapped,
            &dek.commitment
        ],
        |r| r.get(0),
    )
}

/// Inserts the sealed row of slot `key_id`.
fn insert_sealed(conn: &Db, id: &CandidateId, key_id: i64, sealed: &SealedProfile) -> Result<()> {
    let [identity, contact, professional, special, control] = &sealed.groups;
    conn.execute(
        INSERT_SEALED,
        args![
            &id.as_bytes()[..],
            sealed.record_version,
            identity,
            contact,
            professional,
            special,
            control,
            key_id
        ],
    )?;
    Ok(())
}

/// `vault_meta` key of the KEK version new DEKs are wrapped under.
pub const META_CURRENT_KEK: &str = "current_kek_version";
/// `vault_meta` key of the fingerprint of KEK version `v`: `kek_id.<v>`.
pub fn meta_kek_id(version: u32) -> String {
    format!("kek_id.{version}")
}

/// Refuses to store a DEK wrapped under a KEK other than the one the database records as
/// current (by version and, where recorded, by fingerprint): another process rotated the
/// keys and will destroy this one.
pub fn check_current_kek(conn: &Db, kek_version: u32, kek_id: Option<&str>) -> Result<()> {
    let current = meta(conn, META_CURRENT_KEK)?;
    match current.as_deref().map(str::parse::<u32>) {
        Some(Ok(current)) if current != kek_version => {
            return Err(Error::KeysRotated {
                current,
                prepared_under: kek_version,
            })
        }
        _ => {}
    }
    if let (Some(ours), Some(recorded)) = (kek_id, meta(conn, &meta_kek_id(kek_version))?) {
        if ours != recorded {
            return Err(Error::Conflict(format!(
                "this process's KEK version {kek_version} is not the key the database records for that version: nothing was stored. Another rotation replaced the keyring; restart this process so that it loads the new keyring"
            )));
        }
    }
    Ok(())
}

/// A candidate's lifecycle row as read: key slot, open count, hold, ground, created, MAC,
/// and the slot's KEK version, wrapped DEK and commitment.
type RawCandidate = (
    i64,
    i64,
    Option<String>,
    Option<Vec<u8>>,
    i64,
    Vec<u8>,
    Vec<u8>,
    Option<Vec<u8>>,
);

/// The keys and lifecycle of a candidate, or `None` when there is no such candidate; a
/// lifecycle row that fails its MAC is [`Error::Forged`].
pub fn candidate_keys(
    conn: &Db,
    integrity: &IntegrityKey,
    id: &CandidateId,
) -> Result<Option<CandidateKeys>> {
    let raw: Option<RawCandidate> = conn.query_opt(
        "SELECT c.key_id, c.legal_hold, c.legal_hold_reason, c.row_mac,
                    k.kek_version, k.wrapped_dek, k.dek_commitment, c.reference_mac
             FROM candidates c JOIN candidate_keys k ON k.key_id = c.key_id
             WHERE c.candidate_id = ?1",
        args![&id.as_bytes()[..]],
        raw_candidate,
    )?;
    raw.map(|raw| checked_candidate(integrity, id, raw))
        .transpose()
}

/// A sealed `control` group: its record version and ciphertext.
pub type SealedControl = (u32, Vec<u8>);

/// [`candidate_keys`] and the sealed `control` group (what policy needs) in one statement,
/// without reading the large groups: `None` for the group when the candidate has no sealed
/// profile (which only a damaged store shows).
pub fn candidate_keys_and_control(
    conn: &Db,
    integrity: &IntegrityKey,
    id: &CandidateId,
) -> Result<Option<(CandidateKeys, Option<SealedControl>)>> {
    let raw = conn.query_opt(
        "SELECT c.key_id, c.legal_hold, c.legal_hold_reason, c.row_mac,
                    k.kek_version, k.wrapped_dek, k.dek_commitment, c.reference_mac,
                    s.record_version, s.control
             FROM candidates c JOIN candidate_keys k ON k.key_id = c.key_id
                  LEFT JOIN sealed_profiles s ON s.key_id = c.key_id
             WHERE c.candidate_id = ?1",
        args![&id.as_bytes()[..]],
        |r| {
            let control = match (r.get::<Option<i64>>(8)?, r.get::<Option<Vec<u8>>>(9)?) {
                (Some(version), Some(control)) => Some((version, control)),
                _ => None,
            };
            Ok((raw_candidate(r)?, control))
        },
    )?;
    let Some((raw, control)) = raw else {
        return Ok(None);
    };
    let keys = checked_candidate(integrity, id, raw)?;
    let control = control
        .map(|(version, control)| Ok::<_, Error>((version_u32(version)?, control)))
        .transpose()?;
    Ok(Some((keys, control)))
}

fn raw_candidate(r: &Row<'_>) -> Result<RawCandidate> {
    r.columns(0)
}

/// Checks a candidate's lifecycle row against its MAC and types its keys.
fn checked_candidate(
    integrity: &IntegrityKey,
    id: &CandidateId,
    raw: RawCandidate,
) -> Result<CandidateKeys> {
    let (key_id, hold, reason, mac, v, wrapped, commitment, reference) = raw;
    let row = (key_id, hold != 0, reason.as_deref(), reference.as_deref());
    if !candidate_row_ok(integrity, id, row, mac.as_deref()) {
        return Err(forged("candidates", id));
    }
    Ok(CandidateKeys {
        dek: WrappedDek {
            kek_version: version_u32(v)?,
            wrapped,
            commitment,
        },
        legal_hold: hold != 0,
        legal_hold_reason: reason,
        key_slot: key_id,
        reference_mac: reference,
    })
}

/// The sealed groups of the candidate a read was granted on, when policy allowed at least one
/// of them (the caller opens only the groups the grant allows).
pub fn sealed_profile(conn: &Db, grant: &ReadGrant) -> Result<Option<SealedProfile>> {
    if grant.is_empty() {
        return Err(Error::Internal("a profile was read on a grant of no group"));
    }
    sealed_row(conn, &grant.candidate_id())
}

/// The sealed groups of the candidate an update was allowed on (a proof of
/// [`Action::Update`]): the vault opens the groups the update keeps, to seal them anew.
pub fn sealed_for_update(conn: &Db, allowed: &Allowed) -> Result<Option<SealedProfile>> {
    let id = allowed.candidate_for(Action::Update)?;
    sealed_row(conn, &id)
}

fn sealed_row(conn: &Db, id: &CandidateId) -> Result<Option<SealedProfile>> {
    conn.query_opt(
        "SELECT s.record_version, s.identity, s.contact, s.professional, s.special, s.control
         FROM candidates c JOIN sealed_profiles s ON s.key_id = c.key_id WHERE c.candidate_id = ?1",
        args![&id.as_bytes()[..]],
        |r| {
            Ok((
                r.get::<i64>(0)?,
                [r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?],
            ))
        },
    )?
    .map(|(v, groups)| {
        Ok(SealedProfile {
            record_version: version_u32(v)?,
            groups,
        })
    })
    .transpose()
}

/// Replaces the profile of the candidate an update was allowed on with `sealed`, under a new
/// data key `dek`: the new key goes to a new slot at the table's right edge, the lifecycle row
/// points to it (with its MAC, the old one checked first), the old sealed row is deleted
/// (secure_delete zeroes it) and the new one appended, and the old key slot is overwritten in
/// place with zeros, exactly as an erasure shreds it. So whatever copy of the old ciphertext a
/// page split may have left in the file is under a key that no longer exists. `false` when
/// the candidate is gone.
pub fn replace_profile(
    conn: &Db,
    integrity: &IntegrityKey,
    allowed: &Allowed,
    dek: &WrappedDek,
    sealed: &SealedProfile,
) -> Result<bool> {
    let id = allowed.candidate_for(Action::Update)?;
    let Some(keys) = candidate_keys(conn, integrity, &id)? else {
        return Ok(false);
    };
    let old_slot = keys.key_slot;
    let new_slot = insert_key_slot(conn, &id, dek)?;
    let mac = candidate_mac(
        integrity,
        &id,
        new_slot,
        keys.legal_hold,
        keys.legal_hold_reason.as_deref(),
        keys.reference_mac.as_deref(),
    );
    conn.execute(
        "UPDATE candidates SET key_id = ?2, row_mac = ?3 WHERE candidate_id = ?1",
        args![&id.as_bytes()[..], new_slot, &mac],
    )?;
    conn.execute(
        "DELETE FROM sealed_profiles WHERE key_id = ?1",
        args![old_slot],
    )?;
    insert_sealed(conn, &id, new_slot, sealed)?;
    shred_slot(conn, old_slot)?;
    Ok(true)
}

/// Overwrites a key slot in place with zeros of the same length (crypto-shredding).
fn shred_slot(conn: &Db, key_id: i64) -> Result<()> {
    let sql = conn.pick(
        "UPDATE candidate_keys SET kek_version = 0,
             candidate_id = zeroblob(length(candidate_id)),
             wrapped_dek = zeroblob(length(wrapped_dek)),
             dek_commitment = zeroblob(length(dek_commitment))
         WHERE key_id = ?1",
        "UPDATE candidate_keys SET kek_version = 0,
             candidate_id = decode(repeat('00', length(candidate_id)), 'hex'),
             wrapped_dek = decode(repeat('00', length(wrapped_dek)), 'hex'),
             dek_commitment = decode(repeat('00', length(dek_commitment)), 'hex')
         WHERE key_id = ?1",
    );
    conn.execute(sql, args![key_id])?;
    Ok(())
}

/// The candidate whose agency reference has this HMAC, if any. What `find` decides on; the
/// row's MAC (which covers the reference) is checked, so a reference moved to another row
/// outside cvvault is [`Error::Forged`], not a wrong answer.
pub fn candidate_by_reference(
    conn: &Db,
    integrity: &IntegrityKey,
    reference_mac: &[u8],
) -> Result<Option<CandidateId>> {
    let raw: Option<Vec<u8>> = conn.query_opt(
        "SELECT candidate_id FROM candidates WHERE reference_mac = ?1",
        args![reference_mac],
        |r| r.get(0),
    )?;
    let Some(raw) = raw else {
        return Ok(None);
    };
    let id = CandidateId::from_slice(&raw)?;
    match candidate_keys(conn, integrity, &id)? {
        Some(keys) if keys.reference_mac.as_deref() == Some(reference_mac) => Ok(Some(id)),
        _ => Err(forged("candidates", id)),
    }
}

/// The reference HMACs among `macs` that a candidate already holds, each checked as
/// [`candidate_by_reference`] checks it (a forged row is [`Error::Forged`]). One query on
/// PostgreSQL; one lookup each on SQLite, where a lookup costs no round trip.
pub fn registered_references(
    conn: &Db,
    integrity: &IntegrityKey,
    macs: &[&[u8]],
) -> Result<std::collections::HashSet<Vec<u8>>> {
    let mut taken = std::collections::HashSet::new();
    match conn.dialect() {
        Dialect::Sqlite => {
            for mac in macs {
                if candidate_by_reference(conn, integrity, mac)?.is_some() {
                    taken.insert(mac.to_vec());
                }
            }
        }
        Dialect::Postgres => {
            let found: Vec<Vec<u8>> = conn.query_all(
                "SELECT reference_mac FROM candidates WHERE reference_mac = ANY(?1)",
                args![Value::BlobList(macs)],
                |r| r.get(0),
            )?;
            for mac in found {
                if candidate_by_reference(conn, integrity, &mac)?.is_some() {
                    taken.insert(mac);
                }
            }
        }
    }
    Ok(taken)
}

/// What an erasure must still find true inside its own transaction, where nothing can
/// change it any more (a hold placed or an assignment opened a moment earlier counts).
#[derive(Clone, Copy, Debug)]
pub enum EraseCondition {
    /// An erasure on request: no legal hold stands.
    NotHeld,
    /// A retention erasure: no legal hold stands and `rule` still makes the candidate due at
    /// `cutoff` (Unix seconds).
    Due {
        /// The rule.
        rule: Rule,
        /// The rule's cut-off time.
        cutoff: i64,
    },
}

/// What an erasure found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Erasure {
    /// The candidate was crypto-shredded.
    Erased,
    /// A legal hold stands: nothing was changed.
    Held,
    /// The retention rule no longer applies (an assignment was opened): nothing was changed.
    NotDue,
    /// There is no such candidate (any more).
    Gone,
}

/// `SELECT` of due candidates for one rule; `?1` = cut-off, `?2` = hold flag, `?3` = limit.
/// SQLite is told which lifecycle index to use; PostgreSQL's planner picks it from the
/// statistics.
fn rule_query(conn: &Db, rule: Rule) -> &'static str {
    let postgres = conn.dialect() == super::sql::Dialect::Postgres;
    match (rule, postgres) {
        (Rule::ClosedGrace, false) => {
            "SELECT candidate_id, idle_since FROM candidates INDEXED BY candidates_by_idle
             WHERE idle_since IS NOT NULL AND idle_since <= ?1 AND ever_assigned = 1 AND legal_hold = ?2 LIMIT ?3"
        }
        (Rule::ClosedGrace, true) => {
            "SELECT candidate_id, idle_since FROM candidates
             WHERE idle_since IS NOT NULL AND idle_since <= ?1 AND ever_assigned = 1 AND legal_hold = ?2 LIMIT ?3"
        }
        (Rule::MaxIdle, false) => {
            "SELECT candidate_id, idle_since FROM candidates INDEXED BY candidates_by_idle
             WHERE idle_since IS NOT NULL AND idle_since <= ?1 AND legal_hold = ?2 LIMIT ?3"
        }
        (Rule::MaxIdle, true) => {
            "SELECT candidate_id, idle_since FROM candidates
             WHERE idle_since IS NOT NULL AND idle_since <= ?1 AND legal_hold = ?2 LIMIT ?3"
        }
        (Rule::MaxLife, false) => {
            "SELECT candidate_id, created_at FROM candidates INDEXED BY candidates_by_age
             WHERE created_at <= ?1 AND legal_hold = ?2 LIMIT ?3"
        }
        (Rule::MaxLife, true) => {
            "SELECT candidate_id, created_at FROM candidates
             WHERE created_at <= ?1 AND legal_hold = ?2 LIMIT ?3"
        }
    }
}

/// The condition of `rule` on one candidate, re-checked in the erasing transaction: the
/// open assignments are counted from the assignment rows themselves.
fn rule_holds_for(rule: Rule) -> &'static str {
    match rule {
        Rule::ClosedGrace => {
            "SELECT 1 FROM candidates c WHERE c.candidate_id = ?1 AND c.idle_since IS NOT NULL
               AND c.idle_since <= ?2 AND c.ever_assigned = 1
               AND NOT EXISTS (SELECT 1 FROM assignments a WHERE a.candidate_id = c.candidate_id AND a.closed_at IS NULL)"
        }
        Rule::MaxIdle => {
            "SELECT 1 FROM candidates c WHERE c.candidate_id = ?1 AND c.idle_since IS NOT NULL
               AND c.idle_since <= ?2
               AND NOT EXISTS (SELECT 1 FROM assignments a WHERE a.candidate_id = c.candidate_id AND a.closed_at IS NULL)"
        }
        Rule::MaxLife => "SELECT 1 FROM candidates c WHERE c.candidate_id = ?1 AND c.created_at <= ?2",
    }
}

/// Candidates that `rule` makes due at `cutoff`, held or not (as the flag says), at most
/// `limit`: found through the lifecycle indexes, without reading any profile. Each with the
/// time its rule counts from (idle since, or registered at; Unix seconds).
pub fn due_candidates(
    conn: &Db,
    rule: Rule,
    cutoff: i64,
    held: bool,
    limit: i64,
) -> Result<Vec<(CandidateId, i64)>> {
    conn.query_all(rule_query(conn, rule), args![cutoff, held, limit], |r| {
        Ok((
            CandidateId::from_slice(&r.get::<Vec<u8>>(0)?)?,
            r.get::<i64>(1)?,
        ))
    })
}

/// Erases a candidate if `condition` still holds: its key slot is overwritten in place with
/// zeros (crypto-shredding), then its lifecycle row, sealed groups and assignments are
/// deleted, and so are the principals that are this candidate (subjects) with their tokens.
/// A lifecycle row that fails its MAC is [`Error::Forged`] and is not erased.
///
/// The candidate is the one `allowed` names: an erasure on request ([`EraseCondition::NotHeld`])
/// needs a proof of [`Action::Erase`], a retention erasure one of [`Action::RetentionErase`].
pub fn erase_candidate(
    conn: &Db,
    integrity: &IntegrityKey,
    allowed: &Allowed,
    condition: EraseCondition,
) -> Result<Erasure> {
    let id = &allowed.candidate_for(match condition {
        EraseCondition::NotHeld => Action::Erase,
        EraseCondition::Due { .. } => Action::RetentionErase,
    })?;
    let Some(keys) = candidate_keys(conn, integrity, id)? else {
        return Ok(Erasure::Gone);
    };
    if keys.legal_hold {
        return Ok(Erasure::Held);
    }
    if let EraseCondition::Due { rule, cutoff } = condition {
        let due = conn
            .query_opt(
                rule_holds_for(rule),
                args![&id.as_bytes()[..], cutoff],
                |_| Ok(()),
            )
            .map(|r| r.is_some())?;
        if !due {
            return Ok(Erasure::NotDue);
        }
    }
    shred(conn, id)?;
    Ok(Erasure::Erased)
}

/// Erases a candidate whatever its state (an erasure once decided and its conditions checked).
fn shred(conn: &Db, id: &CandidateId) -> Result<bool> {
    let key_id: Option<i64> = conn.query_opt(
        "SELECT key_id FROM candidates WHERE candidate_id = ?1",
        args![&id.as_bytes()[..]],
        |r| r.get(0),
    )?;
    let Some(key_id) = key_id else {
        return Ok(false);
    };
    shred_slot(conn, key_id)?;
    conn.execute(
        "DELETE FROM sealed_profiles WHERE key_id = ?1",
        args![key_id],
    )?;
    // The subject's own account goes with them: its id may be all that is left that names
    // the person, and its tokens must not outlive the data they opened.
    conn.execute(
        "DELETE FROM tokens WHERE principal_id IN
             (SELECT principal_id FROM principals WHERE subject_candidate_id = ?1)",
        args![&id.as_bytes()[..]],
    )?;
    conn.execute(
        "DELETE FROM principals WHERE subject_candidate_id = ?1",
        args![&id.as_bytes()[..]],
    )?;
    let n = conn.execute(
        "DELETE FROM candidates WHERE candidate_id = ?1",
        args![&id.as_bytes()[..]],
    )?;
    Ok(n > 0)
}

/// The highest key slot of a candidate (0 when there is none).
pub fn highest_slot(conn: &Db) -> Result<u64> {
    let highest: Option<i64> =
        conn.query_one("SELECT max(key_id) FROM candidates", args![], |r| r.get(0))?;
    Ok(highest.and_then(|h| u64::try_from(h).ok()).unwrap_or(0))
}

/// The candidate at key slot `slot` or the next one after it: the stand-in whose rows a
/// refusal of a missing candidate reads.
pub fn candidate_at_slot(conn: &Db, slot: u64) -> Result<Option<CandidateId>> {
    conn.query_opt(
        "SELECT candidate_id FROM candidates WHERE key_id >= ?1 ORDER BY key_id LIMIT 1",
        args![i64::try_from(slot).unwrap_or(0)],
        |r| r.get::<Vec<u8>>(0),
    )?
    .map(|id| CandidateId::from_slice(&id))
    .transpose()
}

/// Number of candidates.
pub fn candidate_count(conn: &Db) -> Result<u64> {
    let n: i64 = conn.query_one("SELECT count(*) FROM candidates", args![], |r| r.get(0))?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Places (with a proof of [`Action::PlaceHold`] and its ground) or releases (with one of
/// [`Action::ReleaseHold`]) a legal hold on the candidate the proof names, with its MAC; the
/// row's old MAC is checked first. A hold is never overwritten: placing one where one stands,
/// or releasing one where none does, changes nothing and says so.
pub fn set_legal_hold(
    conn: &Db,
    integrity: &IntegrityKey,
    allowed: &Allowed,
    reason: Option<&str>,
) -> Result<HoldChange> {
    let hold = allowed.action() == Action::PlaceHold;
    let id = &allowed.candidate_for(if hold {
        Action::PlaceHold
    } else {
        Action::ReleaseHold
    })?;
    let reason = if hold { reason } else { None };
    let Some(keys) = candidate_keys(conn, integrity, id)? else {
        return Ok(HoldChange::Gone);
    };
    match (hold, keys.legal_hold) {
        (true, true) => {
            return Ok(HoldChange::AlreadyHeld {
                ground: keys.legal_hold_reason.unwrap_or_default(),
            })
        }
        (false, false) => return Ok(HoldChange::NotHeld),
        _ => {}
    }
    let mac = candidate_mac(
        integrity,
        id,
        keys.key_slot,
        hold,
        reason,
        keys.reference_mac.as_deref(),
    );
    let n = conn.execute("UPDATE candidates SET legal_hold = ?2, legal_hold_reason = ?3, row_mac = ?4 WHERE candidate_id = ?1", args![&id.as_bytes()[..], hold, reason, &mac])?;
    Ok(if n == 0 {
        HoldChange::Gone
    } else {
        HoldChange::Changed {
            previous_ground: keys.legal_hold_reason,
        }
    })
}

/// What [`set_legal_hold`] found and did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HoldChange {
    /// The hold was placed or released (a release names the ground it ends).
    Changed {
        /// The ground of the hold released, if one was.
        previous_ground: Option<String>,
    },
    /// A hold stands already: nothing was changed.
    AlreadyHeld {
        /// Its ground.
        ground: String,
    },
    /// No hold stands: nothing to release.
    NotHeld,
    /// There is no such candidate (any more).
    Gone,
}

/// A registered principal.
#[derive(Clone, Debug)]
pub struct PrincipalRow {
    /// Id.
    pub principal_id: PrincipalId,
    /// Role.
    pub role: Role,
    /// Organisation.
    pub org_id: OrgId,
    /// For a subject: the candidate they are.
    pub subject_of: Option<CandidateId>,
    /// Disabled principals are refused everything.
    pub disabled: bool,
}

/// What a principal's MAC covers: id, role, organisation, subject link, disabled flag.
fn principal_fields(p: &PrincipalRow) -> [Vec<u8>; 5] {
    [
        p.principal_id.as_str().as_bytes().to_vec(),
        p.role.as_str().as_bytes().to_vec(),
        p.org_id.as_str().as_bytes().to_vec(),
        optional(p.subject_of.as_ref().map(|c| &c.as_bytes()[..])),
        vec![u8::from(p.disabled)],
    ]
}

fn principal_mac(integrity: &IntegrityKey, p: &PrincipalRow) -> Vec<u8> {
    integrity.mac(Domain::Principal, &borrowed(&principal_fields(p)))
}

fn principal_ok(integrity: &IntegrityKey, p: &PrincipalRow, mac: Option<&[u8]>) -> bool {
    integrity.verify(Domain::Principal, &borrowed(&principal_fields(p)), mac)
}

fn borrowed(fields: &[Vec<u8>]) -> Vec<&[u8]> {
    fields.iter().map(Vec::as_slice).collect()
}

/// A principal row as read: id, role, org, subject candidate, disabled, MAC.
type RawPrincipal = (
    String,
    String,
    String,
    Option<Vec<u8>>,
    i64,
    Option<Vec<u8>>,
);

const PRINCIPAL_COLUMNS: &str =
    "principal_id, role, org_id, subject_candidate_id, disabled, row_mac";

fn principal_from_row(r: &Row<'_>) -> Result<RawPrincipal> {
    principal_at(r, 0)
}

/// The principal columns that start at column `at`.
fn principal_at(r: &Row<'_>, at: usize) -> Result<RawPrincipal> {
    r.columns(at)
}

/// Parses a principal row and checks its MAC: `Ok(None)` for a row that fails it (or does
/// not parse, which only a writer outside cvvault can cause).
fn checked_principal(integrity: &IntegrityKey, raw: RawPrincipal) -> Result<PrincipalRow> {
    let (id, role, org, subject, disabled, mac) = raw;
    let printable_id = crate::ids::printable(&id);
    match parse_principal(id, role, org, subject, disabled) {
        Ok(row) if principal_ok(integrity, &row, mac.as_deref()) => Ok(row),
        _ => Err(forged("principals", printable_id)),
    }
}

/// A principal row's columns as typed values (its MAC not checked).
fn parse_principal(
    id: String,
    role: String,
    org: String,
    subject: Option<Vec<u8>>,
    disabled: i64,
) -> Result<PrincipalRow> {
    Ok(PrincipalRow {
        principal_id: id.parse()?,
        role: role.parse()?,
        org_id: org.parse()?,
        subject_of: subject.map(|b| CandidateId::from_slice(&b)).transpose()?,
        disabled: disabled != 0,
    })
}

/// Adds a principal; an existing id is a conflict.
pub fn insert_principal(
    conn: &Db,
    integrity: &IntegrityKey,
    p: &PrincipalRow,
    now: i64,
) -> Result<()> {
    let subject = p.subject_of.map(|c| c.as_bytes().to_vec());
    let mac = principal_mac(integrity, p);
    let result = conn.execute("INSERT INTO principals (principal_id, role, org_id, subject_candidate_id, disabled, created_at, row_mac)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)", args![
            p.principal_id.as_str(),
            p.role.as_str(),
            p.org_id.as_str(),
            subject.as_ref(),
            p.disabled,
            now,
            &mac
        ]);
    match result {
        Err(e) if super::sql::is_constraint_violation(&e) => {
            Err(Error::Conflict(format!(
                "principal {} already exists: choose another id, or `cvvault principal disable` the old one",
                p.principal_id
            )))
        }
        other => other.map(|_| ()),
    }
}

/// One principal; a row that fails its MAC is [`Error::Forged`].
pub fn principal(
    conn: &Db,
    integrity: &IntegrityKey,
    id: &PrincipalId,
) -> Result<Option<PrincipalRow>> {
    conn.query_opt(
        &format!("SELECT {PRINCIPAL_COLUMNS} FROM principals WHERE principal_id = ?1"),
        args![id.as_str()],
        principal_from_row,
    )?
    .map(|raw| checked_principal(integrity, raw))
    .transpose()
}

/// Every principal whose row is intact, by id (forged rows are left out and logged).
pub fn principals(conn: &Db, integrity: &IntegrityKey) -> Result<Vec<PrincipalRow>> {
    let rows = conn.query_all(
        &format!("SELECT {PRINCIPAL_COLUMNS} FROM principals ORDER BY principal_id"),
        args![],
        principal_from_row,
    )?;
    Ok(rows
        .into_iter()
        .filter_map(|raw| checked_principal(integrity, raw).ok())
        .collect())
}

/// Enables or disables a principal (its old MAC checked first). Returns whether it exists.
pub fn set_principal_disabled(
    conn: &Db,
    integrity: &IntegrityKey,
    id: &PrincipalId,
    disabled: bool,
) -> Result<bool> {
    let Some(mut row) = principal(conn, integrity, id)? else {
        return Ok(false);
    };
    row.disabled = disabled;
    let n = conn.execute(
        "UPDATE principals SET disabled = ?2, row_mac = ?3 WHERE principal_id = ?1",
        args![id.as_str(), disabled, &principal_mac(integrity, &row)],
    )?;
    Ok(n > 0)
}

/// The kind of an organisation, as its intact principals' roles say (`None`: no intact
/// principal belongs to it, so it is unknown). Disabled principals count: disabling a
/// principal does not change what its organisation is.
pub fn org_kind(conn: &Db, integrity: &IntegrityKey, org: &OrgId) -> Result<Option<OrgKind>> {
    let rows = conn.query_all(
        &format!("SELECT {PRINCIPAL_COLUMNS} FROM principals WHERE org_id = ?1"),
        args![org.as_str()],
        principal_from_row,
    )?;
    let mut kind = None;
    for raw in rows {
        let Ok(row) = checked_principal(integrity, raw) else {
            continue;
        };
        let this = OrgKind::of_role(row.role);
        match kind {
            None => kind = Some(this),
            Some(known) if known == this => {}
            Some(known) => {
                return Err(Error::Conflict(format!(
                    "organisation {org} has principals of two kinds ({known} and {this}), so no assignment can say which it is: disable the principals that do not belong to it and register them under their own organisation"
                )))
            }
        }
    }
    Ok(kind)
}

/// An assignment.
#[derive(Clone, Debug, serde::Serialize)]
pub struct AssignmentRow {
    /// Id.
    pub assignment_id: AssignmentId,
    /// Candidate.
    pub candidate_id: CandidateId,
    /// Organisation linked.
    pub org_id: OrgId,
    /// Kind.
    pub kind: AssignmentKind,
    /// Declared purpose.
    pub purpose: String,
    /// Opened at (Unix seconds).
    pub opened_at: i64,
    /// Closed at, if closed.
    pub closed_at: Option<i64>,
    /// Why it was closed.
    pub close_reason: Option<String>,
}

type RawAssignment = (
    Vec<u8>,
    Vec<u8>,
    String,
    String,
    String,
    i64,
    Option<i64>,
    Option<String>,
);

fn assignment_from_row(r: &Row<'_>) -> Result<RawAssignment> {
    assignment_at(r, 0)
}

/// The assignment columns that start at column `at` (without the MAC).
fn assignment_at(r: &Row<'_>, at: usize) -> Result<RawAssignment> {
    r.columns(at)
}

/// What an assignment's MAC covers: every column that decides what it grants.
fn assignment_fields(a: &AssignmentRow) -> [Vec<u8>; 7] {
    [
        a.assignment_id.as_bytes().to_vec(),
        a.candidate_id.as_bytes().to_vec(),
        a.org_id.as_str().as_bytes().to_vec(),
        a.kind.as_str().as_bytes().to_vec(),
        a.purpose.as_bytes().to_vec(),
        a.opened_at.to_be_bytes().to_vec(),
        optional(a.closed_at.map(i64::to_be_bytes).as_ref().map(|b| &b[..])),
    ]
}

fn assignment_mac(integrity: &IntegrityKey, a: &AssignmentRow) -> Vec<u8> {
    integrity.mac(Domain::Assignment, &borrowed(&assignment_fields(a)))
}

/// An assignment row's columns as typed values (its MAC not checked).
fn parse_assignment(raw: RawAssignment) -> Result<AssignmentRow> {
    let (aid, cid, org, kind, purpose, opened_at, closed_at, close_reason) = raw;
    Ok(AssignmentRow {
        assignment_id: AssignmentId::from_slice(&aid)?,
        candidate_id: CandidateId::from_slice(&cid)?,
        org_id: org.parse()?,
        kind: kind.parse()?,
        purpose,
        opened_at,
        closed_at,
        close_reason,
    })
}

/// Parses an assignment row and checks its MAC.
fn checked_assignment(
    integrity: &IntegrityKey,
    raw: RawAssignment,
    mac: Option<Vec<u8>>,
) -> Result<AssignmentRow> {
    let name = hex::encode(&raw.0);
    match parse_assignment(raw) {
        Ok(row)
            if integrity.verify(
                Domain::Assignment,
                &borrowed(&assignment_fields(&row)),
                mac.as_deref(),
            ) =>
        {
            Ok(row)
        }
        _ => Err(forged("assignments", name)),
    }
}

const ASSIGNMENT_COLUMNS: &str =
    "assignment_id, candidate_id, org_id, kind, purpose, opened_at, closed_at, close_reason, row_mac";

fn assignment_with_mac(r: &Row<'_>) -> Result<(RawAssignment, Option<Vec<u8>>)> {
    Ok((assignment_from_row(r)?, r.get(8)?))
}

/// Opens an assignment and marks the candidate as not idle: `allowed` is the proof that
/// opening an assignment for the candidate of `a` was allowed.
pub fn insert_assignment(
    conn: &Db,
    integrity: &IntegrityKey,
    allowed: &Allowed,
    a: &AssignmentRow,
    opened_by: &str,
) -> Result<()> {
    if allowed.candidate_for(Action::OpenAssignment)? != a.candidate_id {
        return Err(Error::Internal(
            "an assignment was opened on another candidate's proof",
        ));
    }
    conn.execute("INSERT INTO assignments (assignment_id, candidate_id, org_id, kind, purpose, opened_at, opened_by, row_mac)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)", args![
        &a.assignment_id.as_bytes()[..],
        &a.candidate_id.as_bytes()[..],
        a.org_id.as_str(),
        a.kind.as_str(),
        &a.purpose,
        a.opened_at,
        opened_by,
        &assignment_mac(integrity, a)
    ])?;
    conn.execute("UPDATE candidates SET open_assignments = open_assignments + 1, ever_assigned = 1, idle_since = NULL
         WHERE candidate_id = ?1", args![&a.candidate_id.as_bytes()[..]])?;
    // INVARIANT: checked in the writer's transaction. On PostgreSQL every node's group
    // transaction holds the audit head's row lock from its start (`lock_head`), and each
    // statement sees what committed before it: of two identical opens on two nodes, the
    // second sees the first and is undone. (The candidate's row, written above, is locked
    // too.)
    let same = intact_assignments(
        conn,
        &format!("SELECT {ASSIGNMENT_COLUMNS} FROM assignments WHERE candidate_id = ?1 AND closed_at IS NULL
              AND org_id = ?2 AND kind = ?3 AND purpose = ?4 AND assignment_id <> ?5"),
        integrity,
        args![
            &a.candidate_id.as_bytes()[..],
            a.org_id.as_str(),
            a.kind.as_str(),
            &a.purpose,
            &a.assignment_id.as_bytes()[..]
        ],
    )?;
    if let Some(open) = same.first() {
        return Err(Error::AlreadyOpen {
            assignment_id: open.assignment_id,
        });
    }
    Ok(())
}

/// One assignment; a row that fails its MAC is [`Error::Forged`].
pub fn assignment(
    conn: &Db,
    integrity: &IntegrityKey,
    id: &AssignmentId,
) -> Result<Option<AssignmentRow>> {
    conn.query_opt(
        &format!("SELECT {ASSIGNMENT_COLUMNS} FROM assignments WHERE assignment_id = ?1"),
        args![&id.as_bytes()[..]],
        assignment_with_mac,
    )?
    .map(|(raw, mac)| checked_assignment(integrity, raw, mac))
    .transpose()
}

/// Closes an open assignment (its MAC checked first); when it was the last open one, the
/// candidate becomes idle. `allowed` is the proof that closing an assignment of its
/// candidate was allowed.
pub fn close_assignment(
    conn: &Db,
    integrity: &IntegrityKey,
    allowed: &Allowed,
    id: &AssignmentId,
    now: i64,
    by: &str,
    reason: &str,
) -> Result<()> {
    let Some(mut row) = assignment(conn, integrity, id)? else {
        return Err(Error::NotFound { what: "assignment" });
    };
    if allowed.candidate_for(Action::CloseAssignment)? != row.candidate_id {
        return Err(Error::Internal(
            "an assignment was closed on another candidate's proof",
        ));
    }
    row.closed_at = Some(now);
    conn.execute(
        "UPDATE assignments SET closed_at = ?2, closed_by = ?3, close_reason = ?4, row_mac = ?5
         WHERE assignment_id = ?1 AND closed_at IS NULL",
        args![
            &id.as_bytes()[..],
            now,
            by,
            reason,
            &assignment_mac(integrity, &row)
        ],
    )?;
    conn.execute(
        "UPDATE candidates SET open_assignments = open_assignments - 1,
             idle_since = CASE WHEN open_assignments - 1 = 0 THEN CAST(?2 AS BIGINT) ELSE NULL END
         WHERE candidate_id = ?1",
        args![&row.candidate_id.as_bytes()[..], now],
    )?;
    Ok(())
}

/// The assignments `statement` selects ([`ASSIGNMENT_COLUMNS`]) whose MAC checks; forged rows
/// are left out (and logged by `forged`).
fn intact_assignments(
    conn: &Db,
    sql: &str,
    integrity: &IntegrityKey,
    args: &[super::sql::Value<'_>],
) -> Result<Vec<AssignmentRow>> {
    let rows = conn.query_all(sql, args, assignment_with_mac)?;
    Ok(rows
        .into_iter()
        .filter_map(|(raw, mac)| checked_assignment(integrity, raw, mac).ok())
        .collect())
}

/// Every intact assignment of a candidate, oldest first (forged rows are left out, logged).
///
/// Who works with a candidate is candidate data: `allowed` is the proof that listing them
/// (decided as [`Action::CloseAssignment`] or [`Action::SubjectAccess`]) was allowed, and the
/// candidate is the one it names.
pub fn assignments_of(
    conn: &Db,
    integrity: &IntegrityKey,
    allowed: &Allowed,
) -> Result<Vec<AssignmentRow>> {
    let candidate = &allowed
        .candidate_for(Action::CloseAssignment)
        .or_else(|_| allowed.candidate_for(Action::SubjectAccess))?;
    intact_assignments(
        conn,
        &format!("SELECT {ASSIGNMENT_COLUMNS} FROM assignments WHERE candidate_id = ?1 ORDER BY opened_at, assignment_id"),
        integrity,
        args![&candidate.as_bytes()[..]],
    )
}

/// The purposes of open assignments, with how many name each (for the report at start of
/// assignments that name a purpose the vocabulary no longer declares).
pub fn open_assignment_purposes(conn: &Db) -> Result<Vec<(String, u64)>> {
    conn.query_all(
        "SELECT purpose, count(*) FROM assignments WHERE closed_at IS NULL GROUP BY purpose ORDER BY purpose",
        args![],
        |r| Ok((r.get::<String>(0)?, u64::try_from(r.get::<i64>(1)?).unwrap_or(0))),
    )
}

/// Every intact assignment (forged rows are left out and logged), for `audit verify`.
pub fn all_assignments(conn: &Db, integrity: &IntegrityKey) -> Result<Vec<AssignmentRow>> {
    intact_assignments(
        conn,
        &format!("SELECT {ASSIGNMENT_COLUMNS} FROM assignments ORDER BY assignment_id"),
        integrity,
        args![],
    )
}

/// Every candidate row (`only_held`: under a legal hold) with its raw id and, when its MAC
/// checks, its id and hold flag (`None`: the row fails its integrity check), and its hold's
/// ground.
fn each_candidate_row(
    conn: &Db,
    integrity: &IntegrityKey,
    only_held: bool,
    mut each: impl FnMut(&[u8], Option<(CandidateId, bool)>, Option<&str>),
) -> Result<()> {
    conn.query_each(
        if only_held {
            "SELECT candidate_id, key_id, legal_hold, legal_hold_reason, row_mac, reference_mac FROM candidates WHERE legal_hold <> 0"
        } else {
            "SELECT candidate_id, key_id, legal_hold, legal_hold_reason, row_mac, reference_mac FROM candidates"
        },
        args![],
        |r| {
            let raw_id = r.get::<Vec<u8>>(0)?;
            let key_id = r.get::<i64>(1)?;
            let hold = r.get::<i64>(2)?;
            let reason = r.get::<Option<String>>(3)?;
            let mac = r.get::<Option<Vec<u8>>>(4)?;
            let reference = r.get::<Option<Vec<u8>>>(5)?;
            let intact = CandidateId::from_slice(&raw_id).ok().filter(|id| {
                let row = (key_id, hold != 0, reason.as_deref(), reference.as_deref());
                candidate_row_ok(integrity, id, row, mac.as_deref())
            });
            each(&raw_id, intact.map(|id| (id, hold != 0)), reason.as_deref());
            Ok(true)
        },
    )
}

/// Every intact candidate row's legal-hold flag, for `audit verify`.
pub fn holds(conn: &Db, integrity: &IntegrityKey) -> Result<Vec<(CandidateId, bool)>> {
    let mut out = Vec::new();
    each_candidate_row(conn, integrity, false, |_, intact, _| out.extend(intact))?;
    Ok(out)
}

/// The intact candidate rows under a legal hold, with the hold's ground.
pub fn held_candidates(
    conn: &Db,
    integrity: &IntegrityKey,
) -> Result<Vec<(CandidateId, Option<String>)>> {
    let mut held = Vec::new();
    // A row that fails its check is not listed as held: `audit verify` names it.
    each_candidate_row(conn, integrity, true, |_, intact, ground| {
        held.extend(intact.map(|(id, _)| (id, ground.map(str::to_owned))));
    })?;
    Ok(held)
}

/// The organisations with an intact open assignment of each kind: (coaching, matching); with
/// `purpose`, only assignments opened for that purpose (what a read for that purpose may rest
/// on: the assignment's purpose binds). A forged assignment grants nothing.
pub fn open_orgs(
    conn: &Db,
    integrity: &IntegrityKey,
    candidate: &CandidateId,
    purpose: Option<&str>,
) -> Result<(Vec<OrgId>, Vec<OrgId>)> {
    let open = intact_assignments(
        conn,
        &format!("SELECT {ASSIGNMENT_COLUMNS} FROM assignments WHERE candidate_id = ?1 AND closed_at IS NULL"),
        integrity,
        args![&candidate.as_bytes()[..]],
    )?;
    Ok(orgs_by_kind(open, purpose))
}

/// The organisations of `open` assignments by kind, (coaching, matching); with `purpose`,
/// of those opened for it only.
fn orgs_by_kind(
    open: impl IntoIterator<Item = AssignmentRow>,
    purpose: Option<&str>,
) -> (Vec<OrgId>, Vec<OrgId>) {
    let (mut coaching, mut matching) = (Vec::new(), Vec::new());
    for row in open {
        if purpose.is_some_and(|p| p != row.purpose) {
            continue;
        }
        match row.kind {
            AssignmentKind::Coaching => coaching.push(row.org_id),
            AssignmentKind::Matching => matching.push(row.org_id),
        }
    }
    // In one order whichever query read them, so that two reads of the same facts compare
    // equal (the extract's second read then needs no second decision).
    coaching.sort_unstable();
    matching.sort_unstable();
    (coaching, matching)
}

/// What a disclosure rests on, as [`disclosure_grounds`] reads it.
pub struct DisclosureGrounds {
    /// Organisations with an open coaching assignment for the purpose.
    pub coaching_orgs: Vec<OrgId>,
    /// Organisations with an open matching assignment for the purpose.
    pub matching_orgs: Vec<OrgId>,
    /// The principal's row; `None`: no such principal.
    pub principal: Option<PrincipalRow>,
}

/// What a disclosure rests on, read again inside the transaction that records it, in one
/// statement: `None` when the candidate is gone (erased); else its [`open_orgs`] for
/// `purpose` and the row of `principal` (`None`: no such principal). The candidate's and the
/// principal's rows failing their MACs are [`Error::Forged`]; a forged assignment grants
/// nothing.
pub fn disclosure_grounds(
    conn: &Db,
    integrity: &IntegrityKey,
    candidate: &CandidateId,
    purpose: &str,
    principal: &PrincipalId,
) -> Result<Option<DisclosureGrounds>> {
    type Found = (
        RawCandidate,
        Option<RawPrincipal>,
        Option<(RawAssignment, Option<Vec<u8>>)>,
    );
    let rows: Vec<Found> = conn.query_all(
        "SELECT c.key_id, c.legal_hold, c.legal_hold_reason, c.row_mac,
                k.kek_version, k.wrapped_dek, k.dek_commitment, c.reference_mac,
                p.principal_id, p.role, p.org_id, p.subject_candidate_id, p.disabled, p.row_mac,
                a.assignment_id, a.candidate_id, a.org_id, a.kind, a.purpose, a.opened_at,
                a.closed_at, a.close_reason, a.row_mac
         FROM candidates c JOIN candidate_keys k ON k.key_id = c.key_id
              LEFT JOIN principals p ON p.principal_id = ?2
              LEFT JOIN assignments a ON a.candidate_id = c.candidate_id AND a.closed_at IS NULL
         WHERE c.candidate_id = ?1",
        args![&candidate.as_bytes()[..], principal.as_str()],
        |r| {
            let principal = match r.get::<Option<String>>(8)? {
                Some(_) => Some(principal_at(r, 8)?),
                None => None,
            };
            let assignment = match r.get::<Option<Vec<u8>>>(14)? {
                Some(_) => Some((assignment_at(r, 14)?, r.get(22)?)),
                None => None,
            };
            Ok((raw_candidate(r)?, principal, assignment))
        },
    )?;
    let mut rows = rows.into_iter();
    let Some((raw, principal, first)) = rows.next() else {
        return Ok(None);
    };
    checked_candidate(integrity, candidate, raw)?;
    let principal = principal
        .map(|raw| checked_principal(integrity, raw))
        .transpose()?;
    let open = first
        .into_iter()
        .chain(rows.filter_map(|(_, _, assignment)| assignment))
        .filter_map(|(raw, mac)| checked_assignment(integrity, raw, mac).ok());
    let (coaching_orgs, matching_orgs) = orgs_by_kind(open, Some(purpose));
    Ok(Some(DisclosureGrounds {
        coaching_orgs,
        matching_orgs,
        principal,
    }))
}

/// DEKs per KEK version (shredded slots left out), by version.
pub fn deks_per_version(conn: &Db) -> Result<Vec<(u32, u64)>> {
    conn.query_all(
        "SELECT kek_version, count(*) FROM candidate_keys WHERE kek_version != 0 GROUP BY kek_version ORDER BY 1",
        args![],
        |r| Ok((version_u32(r.get::<i64>(0)?)?, u64::try_from(r.get::<i64>(1)?).unwrap_or(0))),
    )
}

/// Live key slots not wrapped under `version`.
pub fn deks_not_under(conn: &Db, version: u32) -> Result<u64> {
    let n: i64 = conn.query_one(
        "SELECT count(*) FROM candidate_keys WHERE kek_version NOT IN (0, ?1)",
        args![version],
        |r| r.get(0),
    )?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Up to `limit` live key slots after `after_key_id`, in slot order, skipping those already
/// under `skip_version`: (slot, candidate, wrapped DEK).
pub fn wrapped_deks_after(
    conn: &Db,
    after_key_id: i64,
    skip_version: Option<u32>,
    limit: usize,
) -> Result<Vec<(i64, CandidateId, WrappedDek)>> {
    conn.query_all(
        "SELECT key_id, candidate_id, kek_version, wrapped_dek, dek_commitment
         FROM candidate_keys
         WHERE key_id > ?1 AND kek_version NOT IN (0, ?2)
         ORDER BY key_id LIMIT ?3",
        args![
            after_key_id,
            skip_version.unwrap_or(0),
            i64::try_from(limit).unwrap_or(i64::MAX)
        ],
        |r| {
            Ok((
                r.get::<i64>(0)?,
                CandidateId::from_slice(&r.get::<Vec<u8>>(1)?)?,
                WrappedDek {
                    kek_version: version_u32(r.get::<i64>(2)?)?,
                    wrapped: r.get(3)?,
                    commitment: r.get(4)?,
                },
            ))
        },
    )
}

/// Stores rewrapped DEKs: (slot, the version it was read under, the new wrapping). A slot
/// that changed meanwhile is an error, unless it was shredded (an erasure won the race).
pub fn rewrap(conn: &Db, batch: &[(i64, u32, WrappedDek)]) -> Result<()> {
    // Same lengths as before: each slot is overwritten where it is.
    for (key_id, old_version, new) in batch {
        let n = conn.execute(
            "UPDATE candidate_keys SET kek_version = ?2, wrapped_dek = ?3, dek_commitment = ?4
             WHERE key_id = ?1 AND kek_version = ?5",
            args![
                *key_id,
                new.kek_version,
                &new.wrapped,
                &new.commitment,
                *old_version
            ],
        )?;
        if n == 0 {
            let now: Option<i64> = conn.query_opt(
                "SELECT kek_version FROM candidate_keys WHERE key_id = ?1",
                args![*key_id],
                |r| r.get(0),
            )?;
            if now != Some(0) {
                return Err(Error::Conflict(format!(
                    "key slot {key_id} was rewrapped by someone else while this rotation ran: nothing of this batch was stored; run `cvvault keys rotate` again"
                )));
            }
        }
    }
    Ok(())
}

/// Removes a `vault_meta` value.
pub fn delete_meta(conn: &Db, key: &str) -> Result<()> {
    conn.execute("DELETE FROM vault_meta WHERE key = ?1", args![key])?;
    Ok(())
}

/// Reads a `vault_meta` value.
pub fn meta(conn: &Db, key: &str) -> Result<Option<String>> {
    conn.query_opt(
        "SELECT value FROM vault_meta WHERE key = ?1",
        args![key],
        |r| r.get(0),
    )
}

/// Writes a `vault_meta` value.
pub fn set_meta(conn: &Db, key: &str, value: &str) -> Result<()> {
    conn.execute(
        "INSERT INTO vault_meta (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        args![key, value],
    )?;
    Ok(())
}

/// An API bearer token as stored: never the token itself, only its keyed hash.
#[derive(Clone, Debug, serde::Serialize)]
pub struct TokenRow {
    /// The public part of the token, used to name it (list, revoke).
    pub token_id: String,
    /// Whom the token authenticates.
    pub principal_id: PrincipalId,
    /// Issued at.
    pub created_at: i64,
    /// Revoked at, if revoked.
    pub revoked_at: Option<i64>,
    /// Expires at (`None`: a row from before tokens expired, which migration 6 gives an
    /// expiry; one still without is refused as expired).
    pub expires_at: Option<i64>,
}

impl TokenRow {
    /// Whether the token no longer authenticates at `now` (an expiry-less row never does).
    pub fn expired(&self, now: i64) -> bool {
        self.expires_at.is_none_or(|at| at <= now)
    }
}

/// What a token's MAC covers: id, principal, keyed hash, revocation time, and the expiry
/// when it has one (a row without one has the four fields it had before expiry existed).
fn token_fields(
    token_id: &str,
    principal: &str,
    hash: &[u8],
    revoked_at: Option<i64>,
    expires_at: Option<i64>,
) -> Vec<Vec<u8>> {
    let mut fields = vec![
        token_id.as_bytes().to_vec(),
        principal.as_bytes().to_vec(),
        hash.to_vec(),
        optional(revoked_at.map(i64::to_be_bytes).as_ref().map(|b| &b[..])),
    ];
    if let Some(at) = expires_at {
        fields.push(at.to_be_bytes().to_vec());
    }
    fields
}

/// Stores a new token's keyed hash, with its expiry (Unix seconds).
pub fn insert_token(
    conn: &Db,
    integrity: &IntegrityKey,
    token_id: &str,
    principal: &PrincipalId,
    hash: &[u8; 32],
    (now, expires_at): (i64, i64),
) -> Result<()> {
    let mac = integrity.mac(
        Domain::Token,
        &borrowed(&token_fields(
            token_id,
            principal.as_str(),
            hash,
            None,
            Some(expires_at),
        )),
    );
    conn.execute("INSERT INTO tokens (token_id, principal_id, token_hash, created_at, row_mac, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)", args![
        token_id,
        principal.as_str(),
        &hash[..],
        now,
        &mac,
        expires_at
    ])?;
    Ok(())
}

/// A token row as read: id, principal, hash, created, revoked, MAC, expires.
type RawToken = (
    String,
    String,
    Vec<u8>,
    i64,
    Option<i64>,
    Option<Vec<u8>>,
    Option<i64>,
);

const TOKEN_COLUMNS: &str =
    "token_id, principal_id, token_hash, created_at, revoked_at, row_mac, expires_at";

fn token_from_row(r: &Row<'_>) -> Result<RawToken> {
    r.columns(0)
}

fn checked_token(integrity: &IntegrityKey, raw: RawToken) -> Result<TokenRow> {
    let (token_id, principal, hash, created_at, revoked_at, mac, expires_at) = raw;
    let intact = integrity.verify(
        Domain::Token,
        &borrowed(&token_fields(
            &token_id, &principal, &hash, revoked_at, expires_at,
        )),
        mac.as_deref(),
    );
    match principal.parse() {
        Ok(principal_id) if intact => Ok(TokenRow {
            token_id,
            principal_id,
            created_at,
            revoked_at,
            expires_at,
        }),
        _ => Err(forged("tokens", crate::ids::printable(&token_id))),
    }
}

/// The intact, unrevoked token with this keyed hash and its principal's row, in one
/// statement (one snapshot, one round trip: this runs before every authenticated request).
/// The token's row fails its MAC: [`Error::Forged`]. Its principal: `Some(Err(Forged))`;
/// none registered under its id: `None`.
pub fn token_and_principal_by_hash(
    conn: &Db,
    integrity: &IntegrityKey,
    hash: &[u8; 32],
) -> Result<Option<(TokenRow, Option<Result<PrincipalRow>>)>> {
    let found = conn.query_opt(
        "SELECT t.token_id, t.principal_id, t.token_hash, t.created_at, t.revoked_at, t.row_mac, t.expires_at,
                p.principal_id, p.role, p.org_id, p.subject_candidate_id, p.disabled, p.row_mac
         FROM tokens t LEFT JOIN principals p ON p.principal_id = t.principal_id
         WHERE t.token_hash = ?1 AND t.revoked_at IS NULL",
        args![&hash[..]],
        |r| {
            let principal = match r.get::<Option<String>>(7)? {
                Some(_) => Some(principal_at(r, 7)?),
                None => None,
            };
            Ok((token_from_row(r)?, principal))
        },
    )?;
    let Some((token, principal)) = found else {
        return Ok(None);
    };
    let token = checked_token(integrity, token)?;
    Ok(Some((
        token,
        principal.map(|raw| checked_principal(integrity, raw)),
    )))
}

/// Gives every intact token that has no expiry one at `expires_at` (schema migration 6), with
/// its MAC; the old MAC is checked first, and a row that fails it is left as it is (refused
/// where it is read).
pub fn expire_legacy_tokens(
    conn: &Db,
    integrity: Option<&IntegrityKey>,
    expires_at: i64,
) -> Result<()> {
    let Some(integrity) = integrity else {
        return Ok(());
    };
    let legacy: Vec<RawToken> = conn.query_all(
        &format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE expires_at IS NULL"),
        args![],
        token_from_row,
    )?;
    for raw in legacy {
        let hash = raw.2.clone();
        let Ok(row) = checked_token(integrity, raw) else {
            continue;
        };
        let mac = integrity.mac(
            Domain::Token,
            &borrowed(&token_fields(
                &row.token_id,
                row.principal_id.as_str(),
                &hash,
                row.revoked_at,
                Some(expires_at),
            )),
        );
        conn.execute(
            "UPDATE tokens SET expires_at = ?2, row_mac = ?3 WHERE token_id = ?1",
            args![&row.token_id, expires_at, &mac],
        )?;
    }
    Ok(())
}

/// One token; a row that fails its MAC is [`Error::Forged`].
pub fn token(conn: &Db, integrity: &IntegrityKey, token_id: &str) -> Result<Option<TokenRow>> {
    conn.query_opt(
        &format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE token_id = ?1"),
        args![token_id],
        token_from_row,
    )?
    .map(|raw| checked_token(integrity, raw))
    .transpose()
}

/// Every intact token, oldest first (forged rows are left out and logged).
pub fn tokens(conn: &Db, integrity: &IntegrityKey) -> Result<Vec<TokenRow>> {
    let rows = conn.query_all(
        &format!("SELECT {TOKEN_COLUMNS} FROM tokens ORDER BY created_at, token_id"),
        args![],
        token_from_row,
    )?;
    Ok(rows
        .into_iter()
        .filter_map(|raw| checked_token(integrity, raw).ok())
        .collect())
}

/// Marks a token revoked (its MAC checked first). Returns whether an unrevoked token was
/// revoked.
pub fn revoke_token(conn: &Db, integrity: &IntegrityKey, token_id: &str, now: i64) -> Result<bool> {
    let raw: Option<RawToken> = conn.query_opt(
        &format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE token_id = ?1"),
        args![token_id],
        token_from_row,
    )?;
    let Some(raw) = raw else {
        return Ok(false);
    };
    let hash = raw.2.clone();
    let row = checked_token(integrity, raw)?;
    if row.revoked_at.is_some() {
        return Ok(false);
    }
    let mac = integrity.mac(
        Domain::Token,
        &borrowed(&token_fields(
            token_id,
            row.principal_id.as_str(),
            &hash,
            Some(now),
            row.expires_at,
        )),
    );
    let n = conn.execute("UPDATE tokens SET revoked_at = ?2, row_mac = ?3 WHERE token_id = ?1 AND revoked_at IS NULL", args![token_id, now, &mac])?;
    Ok(n > 0)
}

/// A row that fails its integrity check, as `audit verify` reports it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    /// The table.
    pub table: &'static str,
    /// The row's key (principal id, token id, assignment id or candidate id), printable.
    pub row: String,
}

/// Every row of the tables authorization depends on that fails its MAC.
pub fn integrity_findings(conn: &Db, integrity: &IntegrityKey) -> Result<Vec<Finding>> {
    let mut findings = Vec::new();
    let mut note = |table: &'static str, row: String| findings.push(Finding { table, row });
    {
        let rows = conn.query_all(
            &format!("SELECT {PRINCIPAL_COLUMNS} FROM principals"),
            args![],
            principal_from_row,
        )?;
        for raw in rows {
            let name = crate::ids::printable(&raw.0);
            if checked_principal(integrity, raw).is_err() {
                note("principals", name);
            }
        }
    }
    {
        let rows = conn.query_all(
            &format!("SELECT {TOKEN_COLUMNS} FROM tokens"),
            args![],
            token_from_row,
        )?;
        for raw in rows {
            let name = crate::ids::printable(&raw.0);
            if checked_token(integrity, raw).is_err() {
                note("tokens", name);
            }
        }
    }
    {
        let rows = conn.query_all(
            &format!("SELECT {ASSIGNMENT_COLUMNS} FROM assignments"),
            args![],
            assignment_with_mac,
        )?;
        for (raw, mac) in rows {
            let name = hex::encode(&raw.0);
            if checked_assignment(integrity, raw, mac).is_err() {
                note("assignments", name);
            }
        }
    }
    {
        each_candidate_row(conn, integrity, false, |raw_id, intact, _| {
            if intact.is_none() {
                note("candidates", hex::encode(raw_id));
            }
        })?;
    }
    Ok(findings)
}

/// Migration 4: gives every existing row its MAC and keys the stored token hashes, in the
/// migration's transaction. The rows are trusted as they are at this moment (as the
/// version before trusted them); from then on, only rows cvvault wrote pass.
pub fn seal_existing_rows(conn: &Db, integrity: Option<&IntegrityKey>) -> Result<()> {
    let rows: i64 = conn.query_one(
        "SELECT (SELECT count(*) FROM principals) + (SELECT count(*) FROM tokens)
              + (SELECT count(*) FROM assignments) + (SELECT count(*) FROM candidates)
              + (SELECT count(*) FROM audit_frontier WHERE length(frontier) > 0)",
        args![],
        |r| r.get(0),
    )?;
    if rows == 0 {
        return Ok(());
    }
    let Some(integrity) = integrity else {
        return Err(Error::Conflict(
            "schema migration 4 signs the existing rows and needs the keyring: open the vault with its identity or passphrase (any cvvault command that opens it will do)".into(),
        ));
    };
    let principals: Vec<RawPrincipal> = conn.query_all(
        &format!("SELECT {PRINCIPAL_COLUMNS} FROM principals"),
        args![],
        principal_from_row,
    )?;
    for (id, role, org, subject, disabled, _) in principals {
        let row = parse_principal(id.clone(), role, org, subject, disabled)?;
        conn.execute(
            "UPDATE principals SET row_mac = ?2 WHERE principal_id = ?1",
            args![&id, &principal_mac(integrity, &row)],
        )?;
    }
    let tokens: Vec<(String, String, Vec<u8>, Option<i64>)> = conn.query_all(
        "SELECT token_id, principal_id, token_hash, revoked_at FROM tokens",
        args![],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )?;
    for (id, principal, unkeyed, revoked_at) in tokens {
        let unkeyed: [u8; 32] = unkeyed.as_slice().try_into().map_err(|_| Error::Corrupt {
            what: "a stored token hash is not 32 bytes",
        })?;
        let keyed = integrity.key_token_hash(&unkeyed);
        let mac = integrity.mac(
            Domain::Token,
            &borrowed(&token_fields(&id, &principal, &keyed, revoked_at, None)),
        );
        conn.execute(
            "UPDATE tokens SET token_hash = ?2, row_mac = ?3 WHERE token_id = ?1",
            args![&id, &keyed[..], &mac],
        )?;
    }
    let assignments: Vec<RawAssignment> = conn.query_all("SELECT assignment_id, candidate_id, org_id, kind, purpose, opened_at, closed_at, close_reason FROM assignments", args![], assignment_from_row)?;
    for raw in assignments {
        let aid = raw.0.clone();
        let row = parse_assignment(raw)?;
        conn.execute(
            "UPDATE assignments SET row_mac = ?2 WHERE assignment_id = ?1",
            args![&aid, &assignment_mac(integrity, &row)],
        )?;
    }
    let candidates: Vec<(Vec<u8>, i64, i64, Option<String>)> = conn.query_all(
        "SELECT candidate_id, key_id, legal_hold, legal_hold_reason FROM candidates",
        args![],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )?;
    for (id, key_id, hold, reason) in candidates {
        let candidate = CandidateId::from_slice(&id)?;
        let mac = candidate_mac(
            integrity,
            &candidate,
            key_id,
            hold != 0,
            reason.as_deref(),
            None,
        );
        conn.execute(
            "UPDATE candidates SET row_mac = ?2 WHERE candidate_id = ?1",
            args![&id, &mac],
        )?;
    }
    // Subject accounts that outlived their candidate's erasure (the version before did not
    // delete them): they go now, with their tokens, instead of being signed.
    conn.execute(
        "DELETE FROM tokens WHERE principal_id IN (SELECT principal_id FROM principals
             WHERE subject_candidate_id IS NOT NULL
               AND subject_candidate_id NOT IN (SELECT candidate_id FROM candidates))",
        args![],
    )?;
    conn.execute(
        "DELETE FROM principals WHERE subject_candidate_id IS NOT NULL
             AND subject_candidate_id NOT IN (SELECT candidate_id FROM candidates)",
        args![],
    )?;
    let frontier: Vec<u8> = conn.query_one(
        "SELECT frontier FROM audit_frontier WHERE id = 1",
        args![],
        |r| r.get(0),
    )?;
    // The stored edge is signed only if it is the edge of the entries: one forged before the
    // upgrade must not become one the vault vouches for.
    let mut recomputed = crate::audit::merkle::Frontier::new();
    {
        conn.query_each(
            "SELECT entry FROM audit_entries ORDER BY entry_index",
            args![],
            |r| {
                recomputed
                    .push(crate::audit::merkle::leaf_hash(
                        r.get::<&str>(0)?.as_bytes(),
                    ))
                    .map_err(|e| Error::AuditTampered(e.to_string()))?;
                Ok(true)
            },
        )?;
    }
    let empty_and_unwritten = frontier.is_empty() && recomputed.size() == 0;
    if !empty_and_unwritten && recomputed.to_bytes() != frontier {
        return Err(Error::AuditTampered(
            "schema migration 4 found that the stored tree edge (audit_frontier) is not the edge of the stored entries, so it will not sign it; nothing was changed. Run `cvvault audit verify --key VERIFIER_KEY` with the previous version to locate the damage, then restore the database from a backup".into(),
        ));
    }
    conn.execute(
        "UPDATE audit_frontier SET mac = ?1 WHERE id = 1",
        args![&integrity.mac(Domain::Frontier, &[&frontier])],
    )?;
    Ok(())
}
