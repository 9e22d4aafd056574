//! The audit trail's rows: entries, the stored right edge of its Merkle tree, and signed
//! checkpoints. The hashing, MACs and verification live in `crate::audit`; this is their SQL,
//! which like all SQL lives under `src/store/`.
//!
//! Functions return `rusqlite::Result` so that the audit module can tell a failed append
//! (fail closed: [`crate::Error::AuditWrite`]) from a failed read.

use rusqlite::{params, CachedStatement, Connection, OptionalExtension};

/// One stored entry, borrowed from SQLite's row buffer.
pub struct EntryRow<'r> {
    /// `entry_index`.
    pub index: i64,
    /// The entry text; `None` when the column is not text (altered outside cvvault).
    pub text: Option<&'r str>,
    /// `entry_mac`, when it is a blob.
    pub mac: Option<&'r [u8]>,
    /// `candidate_hmac`: `Some(None)` for NULL, `None` when it is neither text nor NULL.
    pub candidate: Option<Option<&'r str>>,
}

/// Calls `each` for every entry in index order, until it returns `false`.
pub fn each_entry(
    conn: &Connection,
    mut each: impl FnMut(EntryRow<'_>) -> crate::Result<bool>,
) -> crate::Result<()> {
    let mut statement = conn.prepare(
        "SELECT entry_index, entry, entry_mac, candidate_hmac FROM audit_entries ORDER BY entry_index",
    )?;
    let mut rows = statement.query([])?;
    while let Some(row) = rows.next()? {
        let entry = EntryRow {
            index: row.get(0)?,
            text: row.get_ref(1)?.as_str().ok(),
            mac: row.get_ref(2)?.as_blob().ok(),
            candidate: row.get_ref(3)?.as_str_or_null().ok(),
        };
        if !each(entry)? {
            break;
        }
    }
    Ok(())
}

/// Calls `each` with the text of every entry below `limit` (all when `None`), in index order.
pub fn each_entry_text(
    conn: &Connection,
    limit: Option<i64>,
    mut each: impl FnMut(&str) -> crate::Result<()>,
) -> crate::Result<()> {
    let mut statement = conn.prepare_cached(
        "SELECT entry FROM audit_entries WHERE entry_index < ?1 ORDER BY entry_index",
    )?;
    let mut rows = statement.query(params![limit.unwrap_or(i64::MAX)])?;
    while let Some(row) = rows.next()? {
        each(
            row.get_ref(0)?
                .as_str()
                .map_err(|_| crate::Error::Corrupt {
                    what: "an audit entry is not text",
                })?,
        )?;
    }
    Ok(())
}

/// The text of entry `index`.
pub fn entry_text(conn: &Connection, index: i64) -> rusqlite::Result<String> {
    conn.query_row(
        "SELECT entry FROM audit_entries WHERE entry_index = ?1",
        params![index],
        |r| r.get(0),
    )
}

/// The entries about a candidate pseudonym `?1`. The index is keyed by each entry's bucket of
/// 4,096 entries, then 16 hex digits of its pseudonym (schema version 3): the query looks the
/// pseudonym up in every bucket (CROSS JOIN keeps the buckets the outer loop, where the
/// planner would rather scan the whole index), and compares the whole of it after each lookup.
pub const SEARCH_SQL: &str = "WITH RECURSIVE bucket(n) AS (
         SELECT 0
         UNION ALL
         SELECT n + 1 FROM bucket
         WHERE n < (SELECT coalesce(max(entry_index), 0) >> 12 FROM audit_entries)
     )
     SELECT a.entry FROM bucket
     CROSS JOIN audit_entries AS a INDEXED BY audit_by_candidate
       ON a.entry_index >> 12 = bucket.n
      AND substr(a.candidate_hmac, 13, 16) = substr(?1, 13, 16)
     WHERE a.candidate_hmac = ?1
     ORDER BY a.entry_index";

/// The texts of the entries about one candidate pseudonym, in order.
pub fn entries_about(conn: &Connection, candidate_hmac: &str) -> rusqlite::Result<Vec<String>> {
    let mut statement = conn.prepare_cached(SEARCH_SQL)?;
    let rows = statement.query_map(params![candidate_hmac], |r| r.get::<_, String>(0))?;
    rows.collect()
}

/// The index the next entry gets (the number of entries, if none was removed).
pub fn next_entry_index(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row(
        "SELECT coalesce(max(entry_index) + 1, 0) FROM audit_entries",
        [],
        |r| r.get(0),
    )
}

/// The statement that inserts one entry, prepared once per transaction or batch.
pub fn entry_inserter(conn: &Connection) -> rusqlite::Result<CachedStatement<'_>> {
    conn.prepare_cached(
        "INSERT INTO audit_entries (entry_index, entry, entry_mac, candidate_hmac) VALUES (?1, ?2, ?3, ?4)",
    )
}

/// Inserts one entry through [`entry_inserter`]'s statement.
pub fn insert_entry(
    statement: &mut CachedStatement<'_>,
    index: i64,
    text: &str,
    mac: &[u8],
    candidate_hmac: Option<&str>,
) -> rusqlite::Result<()> {
    statement
        .execute(params![index, text, mac, candidate_hmac])
        .map(|_| ())
}

/// The stored right edge of the tree, as written, and its MAC.
pub struct StoredFrontier {
    /// The serialized edge (empty for a log that never had an entry).
    pub bytes: Vec<u8>,
    /// Its MAC under the integrity key (`None` before the first write).
    pub mac: Option<Vec<u8>>,
}

/// The stored right edge of the tree; `None` when the row is missing.
pub fn stored_frontier(conn: &Connection) -> rusqlite::Result<Option<StoredFrontier>> {
    conn.query_row(
        "SELECT frontier, mac FROM audit_frontier WHERE id = 1",
        [],
        |r| {
            Ok(StoredFrontier {
                bytes: r.get(0)?,
                mac: r.get(1)?,
            })
        },
    )
    .optional()
}

/// Stores the right edge of the tree with its MAC.
pub fn save_frontier(conn: &Connection, frontier: &[u8], mac: &[u8]) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE audit_frontier SET frontier = ?1, mac = ?2 WHERE id = 1",
        params![frontier, mac],
    )
    .map(|_| ())
}

/// Runs `read` in one read snapshot, unless the caller's transaction already gives one.
pub fn in_snapshot<T>(
    conn: &Connection,
    read: impl FnOnce(&Connection) -> crate::Result<T>,
) -> crate::Result<T> {
    if !conn.is_autocommit() {
        return read(conn);
    }
    conn.execute_batch("BEGIN DEFERRED")?;
    let result = read(conn);
    conn.execute_batch("COMMIT")?;
    result
}

/// The size of the largest signed checkpoint, if any.
pub fn latest_checkpoint_size(conn: &Connection) -> rusqlite::Result<Option<i64>> {
    conn.query_row("SELECT max(tree_size) FROM audit_checkpoints", [], |r| {
        r.get(0)
    })
}

/// Stores a signed checkpoint note.
pub fn insert_checkpoint(
    conn: &Connection,
    tree_size: i64,
    note: &str,
    created_at: i64,
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO audit_checkpoints (tree_size, note, created_at) VALUES (?1, ?2, ?3)",
        params![tree_size, note, created_at],
    )
    .map(|_| ())
}

/// Every stored checkpoint note, oldest first.
pub fn checkpoint_notes(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut statement = conn.prepare("SELECT note FROM audit_checkpoints ORDER BY tree_size")?;
    let rows = statement.query_map([], |r| r.get::<_, String>(0))?;
    rows.collect()
}

/// The latest stored checkpoint note.
pub fn latest_checkpoint_note(conn: &Connection) -> rusqlite::Result<Option<String>> {
    conn.query_row(
        "SELECT note FROM audit_checkpoints ORDER BY tree_size DESC LIMIT 1",
        [],
        |r| r.get(0),
    )
    .optional()
}
