//! Typed reads and writes of the store's rows. SQL lives here and nowhere else but
//! `audit`; callers pass the connection of their transaction.

use rusqlite::{params, CachedStatement, Connection, OptionalExtension, Row};

use crate::crypto::envelope::WrappedDek;
use crate::error::{Error, Result};
use crate::ids::{AssignmentId, CandidateId, OrgId, PrincipalId};
use crate::model::{AssignmentKind, FieldGroup, Role};

/// The format version bound into every sealed group's associated data.
pub const RECORD_VERSION: u32 = 1;

/// A candidate's keys and lifecycle (the small row).
pub struct CandidateKeys {
    /// The wrapped DEK and its commitment.
    pub dek: WrappedDek,
    /// Open assignments now.
    pub open_assignments: i64,
    /// Under legal hold.
    pub legal_hold: bool,
    /// Registered at.
    pub created_at: i64,
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

fn version_u32(v: i64) -> Result<u32> {
    u32::try_from(v).map_err(|_| Error::Corrupt {
        what: "a stored version number is out of range",
    })
}

/// Inserts new candidates (key slot, lifecycle row and sealed row each) through statements
/// prepared once, as an import batch of thousands does.
pub struct CandidateInserter<'conn> {
    conn: &'conn Connection,
    key_slot: CachedStatement<'conn>,
    lifecycle: CachedStatement<'conn>,
    sealed: CachedStatement<'conn>,
}

impl<'conn> CandidateInserter<'conn> {
    /// Prepares the statements on `conn` (inside the caller's transaction).
    pub fn new(conn: &'conn Connection) -> Result<CandidateInserter<'conn>> {
        Ok(CandidateInserter {
            conn,
            key_slot: conn.prepare_cached(
                "INSERT INTO candidate_keys (candidate_id, kek_version, wrapped_dek, dek_commitment)
                 VALUES (?1, ?2, ?3, ?4)",
            )?,
            lifecycle: conn.prepare_cached(
                "INSERT INTO candidates (candidate_id, key_id, created_at, idle_since) VALUES (?1, ?2, ?3, ?3)",
            )?,
            sealed: conn.prepare_cached(
                "INSERT INTO sealed_profiles (key_id, candidate_id, record_version, identity, contact, professional, special, control)
                 VALUES (?8, ?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?,
        })
    }

    /// Inserts one new candidate.
    pub fn insert(
        &mut self,
        id: &CandidateId,
        created_at: i64,
        dek: &WrappedDek,
        sealed: &SealedProfile,
    ) -> Result<()> {
        self.key_slot.execute(params![
            &id.as_bytes()[..],
            dek.kek_version,
            dek.wrapped,
            dek.commitment
        ])?;
        let key_id = self.conn.last_insert_rowid();
        self.lifecycle
            .execute(params![&id.as_bytes()[..], key_id, created_at])?;
        let [identity, contact, professional, special, control] = &sealed.groups;
        self.sealed.execute(params![
            &id.as_bytes()[..],
            sealed.record_version,
            identity,
            contact,
            professional,
            special,
            control,
            key_id
        ])?;
        Ok(())
    }
}

/// Refuses to store a DEK wrapped under a KEK version other than the one the database
/// records as current: another process rotated the keys and will destroy this version.
pub fn check_current_kek(conn: &Connection, kek_version: u32) -> Result<()> {
    let current = meta(conn, "current_kek_version")?;
    match current.as_deref().map(str::parse::<u32>) {
        Some(Ok(v)) if v != kek_version => Err(Error::Conflict(format!(
            "the keys were rotated by another cvvault process (KEK version {v} is current, this process holds {kek_version}): nothing was stored; restart this process (e.g. `cvvault serve`) so that it loads the new keyring"
        ))),
        _ => Ok(()),
    }
}

/// The keys and lifecycle of a candidate, or `None` when there is no such candidate.
pub fn candidate_keys(conn: &Connection, id: &CandidateId) -> Result<Option<CandidateKeys>> {
    conn.prepare_cached(
        "SELECT k.kek_version, k.wrapped_dek, k.dek_commitment, c.open_assignments, c.legal_hold, c.created_at
         FROM candidates c JOIN candidate_keys k ON k.key_id = c.key_id
         WHERE c.candidate_id = ?1",
    )?
    .query_row(params![&id.as_bytes()[..]], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get::<_, i64>(4)?,
            r.get(5)?,
        ))
    })
    .optional()?
    .map(
        |(v, wrapped, commitment, open, hold, created)| -> Result<CandidateKeys> {
            Ok(CandidateKeys {
                dek: WrappedDek {
                    kek_version: version_u32(v)?,
                    wrapped,
                    commitment,
                },
                open_assignments: open,
                legal_hold: hold != 0,
                created_at: created,
            })
        },
    )
    .transpose()
}

/// The sealed groups of a candidate.
pub fn sealed_profile(conn: &Connection, id: &CandidateId) -> Result<Option<SealedProfile>> {
    conn.prepare_cached(
        "SELECT s.record_version, s.identity, s.contact, s.professional, s.special, s.control
         FROM candidates c JOIN sealed_profiles s ON s.key_id = c.key_id WHERE c.candidate_id = ?1",
    )?
    .query_row(params![&id.as_bytes()[..]], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            [r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?],
        ))
    })
    .optional()?
    .map(|(v, groups)| {
        Ok(SealedProfile {
            record_version: version_u32(v)?,
            groups,
        })
    })
    .transpose()
}

/// Only the sealed `control` group (what policy needs), without reading the large groups.
pub fn sealed_control(conn: &Connection, id: &CandidateId) -> Result<Option<(u32, Vec<u8>)>> {
    conn.prepare_cached(
        "SELECT s.record_version, s.control FROM candidates c JOIN sealed_profiles s ON s.key_id = c.key_id
         WHERE c.candidate_id = ?1",
    )?
    .query_row(params![&id.as_bytes()[..]], |r| {
        Ok((r.get::<_, i64>(0)?, r.get(1)?))
    })
    .optional()?
    .map(|(v, c)| Ok((version_u32(v)?, c)))
    .transpose()
}

/// Erases a candidate: its key slot is overwritten in place with zeros (crypto-shredding),
/// then its lifecycle row, sealed groups and assignments are deleted. Returns whether it
/// existed.
pub fn delete_candidate(conn: &Connection, id: &CandidateId) -> Result<bool> {
    let key_id: Option<i64> = conn
        .prepare_cached("SELECT key_id FROM candidates WHERE candidate_id = ?1")?
        .query_row(params![&id.as_bytes()[..]], |r| r.get(0))
        .optional()?;
    let Some(key_id) = key_id else {
        return Ok(false);
    };
    // INVARIANT: same lengths, so SQLite rewrites the cell where it is.
    conn.prepare_cached(
        "UPDATE candidate_keys SET kek_version = 0,
             candidate_id = zeroblob(length(candidate_id)),
             wrapped_dek = zeroblob(length(wrapped_dek)),
             dek_commitment = zeroblob(length(dek_commitment))
         WHERE key_id = ?1",
    )?
    .execute(params![key_id])?;
    conn.prepare_cached("DELETE FROM sealed_profiles WHERE key_id = ?1")?
        .execute(params![key_id])?;
    let n = conn
        .prepare_cached("DELETE FROM candidates WHERE candidate_id = ?1")?
        .execute(params![&id.as_bytes()[..]])?;
    Ok(n > 0)
}

/// Number of candidates.
pub fn candidate_count(conn: &Connection) -> Result<u64> {
    let n: i64 = conn.query_row("SELECT count(*) FROM candidates", [], |r| r.get(0))?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Places or releases a legal hold. Returns whether the candidate exists.
pub fn set_legal_hold(
    conn: &Connection,
    id: &CandidateId,
    hold: bool,
    reason: Option<&str>,
) -> Result<bool> {
    let n = conn
        .prepare_cached(
            "UPDATE candidates SET legal_hold = ?2, legal_hold_reason = ?3 WHERE candidate_id = ?1",
        )?
        .execute(params![&id.as_bytes()[..], hold, reason])?;
    Ok(n > 0)
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

/// A principal row as read: id, role, org, subject candidate, disabled.
type RawPrincipal = (String, String, String, Option<Vec<u8>>, i64);

fn principal_from_row(r: &Row<'_>) -> rusqlite::Result<RawPrincipal> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

fn parse_principal(raw: RawPrincipal) -> Result<PrincipalRow> {
    let (id, role, org, subject, disabled) = raw;
    Ok(PrincipalRow {
        principal_id: id.parse()?,
        role: role.parse()?,
        org_id: org.parse()?,
        subject_of: subject.map(|b| CandidateId::from_slice(&b)).transpose()?,
        disabled: disabled != 0,
    })
}

/// Adds a principal; an existing id is a conflict.
pub fn insert_principal(conn: &Connection, p: &PrincipalRow, now: i64) -> Result<()> {
    let subject = p.subject_of.map(|c| c.as_bytes().to_vec());
    let result = conn.execute(
        "INSERT INTO principals (principal_id, role, org_id, subject_candidate_id, disabled, created_at)
         VALUES (?1, ?2, ?3, ?4, 0, ?5)",
        params![p.principal_id.as_str(), p.role.as_str(), p.org_id.as_str(), subject, now],
    );
    match result {
        Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::ConstraintViolation => {
            Err(Error::Conflict(format!(
                "principal {} already exists: choose another id, or `cvvault principal disable` the old one",
                p.principal_id
            )))
        }
        other => other.map(|_| ()).map_err(Error::from),
    }
}

/// One principal.
pub fn principal(conn: &Connection, id: &PrincipalId) -> Result<Option<PrincipalRow>> {
    conn.prepare_cached(
        "SELECT principal_id, role, org_id, subject_candidate_id, disabled FROM principals WHERE principal_id = ?1",
    )?
    .query_row(params![id.as_str()], principal_from_row)
    .optional()?
    .map(parse_principal)
    .transpose()
}

/// Every principal, by id.
pub fn principals(conn: &Connection) -> Result<Vec<PrincipalRow>> {
    let mut stmt = conn.prepare(
        "SELECT principal_id, role, org_id, subject_candidate_id, disabled FROM principals ORDER BY principal_id",
    )?;
    let rows = stmt.query_map([], principal_from_row)?;
    rows.map(|r| parse_principal(r?)).collect()
}

/// Enables or disables a principal. Returns whether it exists.
pub fn set_principal_disabled(conn: &Connection, id: &PrincipalId, disabled: bool) -> Result<bool> {
    let n = conn.execute(
        "UPDATE principals SET disabled = ?2 WHERE principal_id = ?1",
        params![id.as_str(), disabled],
    )?;
    Ok(n > 0)
}

/// Whether any active principal belongs to the organisation (how an organisation is known).
pub fn org_known(conn: &Connection, org: &OrgId) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM principals WHERE org_id = ?1 AND disabled = 0 LIMIT 1")?
        .exists(params![org.as_str()])?)
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

fn assignment_from_row(r: &Row<'_>) -> rusqlite::Result<RawAssignment> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
    ))
}

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

const ASSIGNMENT_COLUMNS: &str =
    "assignment_id, candidate_id, org_id, kind, purpose, opened_at, closed_at, close_reason";

/// Opens an assignment and marks the candidate as not idle.
pub fn insert_assignment(conn: &Connection, a: &AssignmentRow, opened_by: &str) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO assignments (assignment_id, candidate_id, org_id, kind, purpose, opened_at, opened_by)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        &a.assignment_id.as_bytes()[..],
        &a.candidate_id.as_bytes()[..],
        a.org_id.as_str(),
        a.kind.as_str(),
        a.purpose,
        a.opened_at,
        opened_by
    ])?;
    conn.prepare_cached(
        "UPDATE candidates SET open_assignments = open_assignments + 1, ever_assigned = 1, idle_since = NULL
         WHERE candidate_id = ?1",
    )?
    .execute(params![&a.candidate_id.as_bytes()[..]])?;
    Ok(())
}

/// One assignment.
pub fn assignment(conn: &Connection, id: &AssignmentId) -> Result<Option<AssignmentRow>> {
    conn.prepare_cached(&format!(
        "SELECT {ASSIGNMENT_COLUMNS} FROM assignments WHERE assignment_id = ?1"
    ))?
    .query_row(params![&id.as_bytes()[..]], assignment_from_row)
    .optional()?
    .map(parse_assignment)
    .transpose()
}

/// Closes an open assignment; when it was the last open one, the candidate becomes idle.
pub fn close_assignment(
    conn: &Connection,
    id: &AssignmentId,
    candidate: &CandidateId,
    now: i64,
    by: &str,
    reason: &str,
) -> Result<()> {
    conn.prepare_cached(
        "UPDATE assignments SET closed_at = ?2, closed_by = ?3, close_reason = ?4
         WHERE assignment_id = ?1 AND closed_at IS NULL",
    )?
    .execute(params![&id.as_bytes()[..], now, by, reason])?;
    conn.prepare_cached(
        "UPDATE candidates SET open_assignments = open_assignments - 1,
             idle_since = CASE WHEN open_assignments - 1 = 0 THEN ?2 ELSE NULL END
         WHERE candidate_id = ?1",
    )?
    .execute(params![&candidate.as_bytes()[..], now])?;
    Ok(())
}

/// Every assignment of a candidate, oldest first.
pub fn assignments_of(conn: &Connection, candidate: &CandidateId) -> Result<Vec<AssignmentRow>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {ASSIGNMENT_COLUMNS} FROM assignments WHERE candidate_id = ?1 ORDER BY opened_at, assignment_id"
    ))?;
    let rows = stmt.query_map(params![&candidate.as_bytes()[..]], assignment_from_row)?;
    rows.map(|r| parse_assignment(r?)).collect()
}

/// The organisations with an open assignment of each kind: (coaching, matching).
pub fn open_orgs(conn: &Connection, candidate: &CandidateId) -> Result<(Vec<OrgId>, Vec<OrgId>)> {
    let mut stmt = conn.prepare_cached(
        "SELECT org_id, kind FROM assignments WHERE candidate_id = ?1 AND closed_at IS NULL",
    )?;
    let rows = stmt.query_map(params![&candidate.as_bytes()[..]], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
    })?;
    let (mut coaching, mut matching) = (Vec::new(), Vec::new());
    for row in rows {
        let (org, kind) = row?;
        let org: OrgId = org.parse()?;
        match kind.parse()? {
            AssignmentKind::Coaching => coaching.push(org),
            AssignmentKind::Matching => matching.push(org),
        }
    }
    Ok((coaching, matching))
}

/// Reads a `vault_meta` value.
pub fn meta(conn: &Connection, key: &str) -> Result<Option<String>> {
    Ok(conn
        .query_row(
            "SELECT value FROM vault_meta WHERE key = ?1",
            params![key],
            |r| r.get(0),
        )
        .optional()?)
}

/// Writes a `vault_meta` value.
pub fn set_meta(conn: &Connection, key: &str, value: &str) -> Result<()> {
    conn.execute(
        "INSERT INTO vault_meta (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )?;
    Ok(())
}

/// An API bearer token as stored: never the token itself, only its SHA-256.
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
}

/// Stores a new token's hash.
pub fn insert_token(
    conn: &Connection,
    token_id: &str,
    principal: &PrincipalId,
    hash: &[u8; 32],
    now: i64,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO tokens (token_id, principal_id, token_hash, created_at) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![token_id, principal.as_str(), &hash[..], now])?;
    Ok(())
}

/// The token id and principal of an unrevoked token with this hash (a unique-index lookup).
pub fn token_by_hash(conn: &Connection, hash: &[u8; 32]) -> Result<Option<(String, PrincipalId)>> {
    conn.prepare_cached(
        "SELECT token_id, principal_id FROM tokens WHERE token_hash = ?1 AND revoked_at IS NULL",
    )?
    .query_row(params![&hash[..]], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
    })
    .optional()?
    .map(|(token_id, principal)| Ok((token_id, principal.parse()?)))
    .transpose()
}

/// One token.
pub fn token(conn: &Connection, token_id: &str) -> Result<Option<TokenRow>> {
    conn.prepare_cached(
        "SELECT token_id, principal_id, created_at, revoked_at FROM tokens WHERE token_id = ?1",
    )?
    .query_row(params![token_id], token_from_row)
    .optional()?
    .map(parse_token)
    .transpose()
}

/// Every token, oldest first.
pub fn tokens(conn: &Connection) -> Result<Vec<TokenRow>> {
    let mut stmt =
        conn.prepare("SELECT token_id, principal_id, created_at, revoked_at FROM tokens ORDER BY created_at, token_id")?;
    let rows = stmt.query_map([], token_from_row)?;
    rows.map(|r| parse_token(r?)).collect()
}

/// Marks a token revoked. Returns whether an unrevoked token was revoked.
pub fn revoke_token(conn: &Connection, token_id: &str, now: i64) -> Result<bool> {
    let n = conn.execute(
        "UPDATE tokens SET revoked_at = ?2 WHERE token_id = ?1 AND revoked_at IS NULL",
        params![token_id, now],
    )?;
    Ok(n > 0)
}

type RawToken = (String, String, i64, Option<i64>);

fn token_from_row(r: &Row<'_>) -> rusqlite::Result<RawToken> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
}

fn parse_token(raw: RawToken) -> Result<TokenRow> {
    let (token_id, principal, created_at, revoked_at) = raw;
    Ok(TokenRow {
        token_id,
        principal_id: principal.parse()?,
        created_at,
        revoked_at,
    })
}
