//! The audit trail's rows: entries, the stored right edge of its Merkle tree, and signed
//! checkpoints. The hashing, MACs and verification live in `crate::audit`; this is their SQL,
//! which like all SQL lives under `src/store/`.
//!
//! The audit module maps a failed append to [`crate::Error::AuditWrite`] (fail closed) and
//! tells it from a failed read.

use super::sql::{args, Db, Dialect, Kind, Stored, Table, Value};
use crate::Result;

/// One stored entry, borrowed from the engine's row buffer.
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
    conn: &Db,
    mut each: impl FnMut(EntryRow<'_>) -> crate::Result<bool>,
) -> crate::Result<()> {
    conn.query_each(
        "SELECT entry_index, entry, entry_mac, candidate_hmac FROM audit_entries ORDER BY entry_index",
        args![],
        |row| {
            let entry = EntryRow {
                index: row.get(0)?,
                text: match row.stored(1)? {
                    Stored::Text(t) => Some(t),
                    _ => None,
                },
                mac: match row.stored(2)? {
                    Stored::Blob(b) => Some(b),
                    _ => None,
                },
                candidate: match row.stored(3)? {
                    Stored::Text(t) => Some(Some(t)),
                    Stored::Null => Some(None),
                    _ => None,
                },
            };
            each(entry)
        },
    )
}

/// Calls `each` with the text of every entry below `limit` (all when `None`), in index order.
pub fn each_entry_text(
    conn: &Db,
    limit: Option<i64>,
    mut each: impl FnMut(&str) -> crate::Result<()>,
) -> crate::Result<()> {
    conn.query_each(
        "SELECT entry FROM audit_entries WHERE entry_index < ?1 ORDER BY entry_index",
        args![limit.unwrap_or(i64::MAX)],
        |row| {
            each(row.get::<&str>(0).map_err(|_| crate::Error::Corrupt {
                what: "an audit entry is not text",
            })?)?;
            Ok(true)
        },
    )
}

/// Calls `each` with the index and text of every entry from index `from` on, in index order:
/// what a summary kept beside the trail reads to catch up with it.
pub fn each_entry_text_from(
    conn: &Db,
    from: i64,
    mut each: impl FnMut(i64, &str) -> crate::Result<()>,
) -> crate::Result<()> {
    conn.query_each(
        "SELECT entry_index, entry FROM audit_entries WHERE entry_index >= ?1 ORDER BY entry_index",
        args![from],
        |row| {
            let index = row.get::<i64>(0)?;
            each(
                index,
                row.get::<&str>(1).map_err(|_| crate::Error::Corrupt {
                    what: "an audit entry is not text",
                })?,
            )?;
            Ok(true)
        },
    )
}

/// The text of entry `index`, if there is one.
pub fn entry_text(conn: &Db, index: i64) -> Result<Option<String>> {
    conn.query_opt(
        "SELECT entry FROM audit_entries WHERE entry_index = ?1",
        args![index],
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

/// The same search in PostgreSQL: its planner uses the expression index for the equality on
/// both keys when the bucket comes from a join, so the query only drops SQLite's INDEXED BY.
pub const SEARCH_SQL_PG: &str = "WITH RECURSIVE bucket(n) AS (
         SELECT 0::bigint
         UNION ALL
         SELECT n + 1 FROM bucket
         WHERE n < (SELECT coalesce(max(entry_index), 0) >> 12 FROM audit_entries)
     )
     SELECT a.entry FROM bucket
     CROSS JOIN audit_entries AS a
     WHERE a.entry_index >> 12 = bucket.n
       AND substr(a.candidate_hmac, 13, 16) = substr(?1, 13, 16)
       AND a.candidate_hmac = ?1
     ORDER BY a.entry_index";

/// The texts of the entries about one candidate pseudonym, in order.
pub fn entries_about(conn: &Db, candidate_hmac: &str) -> Result<Vec<String>> {
    conn.query_all(
        conn.pick(SEARCH_SQL, SEARCH_SQL_PG),
        args![candidate_hmac],
        |r| r.get(0),
    )
}

/// The index the next entry gets (the number of entries, if none was removed).
pub fn next_entry_index(conn: &Db) -> Result<i64> {
    conn.query_one(
        "SELECT coalesce(max(entry_index) + 1, 0) FROM audit_entries",
        args![],
        |r| r.get(0),
    )
}

/// Takes the trail's head for the rest of the write transaction: the one sequencer of every
/// writer of every node. On SQLite the transaction holds the database's write lock already
/// (BEGIN IMMEDIATE); on PostgreSQL it locks the `audit_frontier` row, which every group
/// commit updates, so that groups append one after another, in one order, without gaps.
pub fn lock_head(conn: &Db) -> Result<()> {
    if conn.dialect() == Dialect::Postgres {
        conn.query_opt(
            "SELECT id FROM audit_frontier WHERE id = 1 FOR UPDATE",
            args![],
            |_| Ok(()),
        )?;
    }
    Ok(())
}

/// An entry to store: its index, canonical text, MAC and candidate pseudonym.
pub struct NewEntry {
    /// Its position in the log.
    pub index: i64,
    /// The canonical JSON the leaf hash is taken over.
    pub text: String,
    /// Its MAC under the audit key.
    pub mac: Vec<u8>,
    /// The pseudonym of the candidate it is about, if any.
    pub candidate_hmac: Option<String>,
}

const AUDIT_ENTRIES: Table<4> = Table {
    name: "audit_entries",
    columns: [
        ("entry_index", Kind::Int),
        ("entry", Kind::Text),
        ("entry_mac", Kind::Blob),
        ("candidate_hmac", Kind::Text),
    ],
};

/// Inserts entries, in one go.
pub fn insert_entries(conn: &Db, entries: &[NewEntry]) -> Result<()> {
    let rows: Vec<[Value<'_>; 4]> = entries
        .iter()
        .map(|e| {
            [
                Value::Int(e.index),
                Value::Text(&e.text),
                Value::Blob(&e.mac),
                e.candidate_hmac.as_deref().into(),
            ]
        })
        .collect();
    conn.insert_rows(&AUDIT_ENTRIES, &rows).map(|_| ())
}

/// The stored right edge of the tree, as written, and its MAC.
pub struct StoredFrontier {
    /// The serialized edge (empty for a log that never had an entry).
    pub bytes: Vec<u8>,
    /// Its MAC under the integrity key (`None` before the first write).
    pub mac: Option<Vec<u8>>,
}

/// The stored right edge of the tree; `None` when the row is missing.
pub fn stored_frontier(conn: &Db) -> Result<Option<StoredFrontier>> {
    conn.query_opt(
        "SELECT frontier, mac FROM audit_frontier WHERE id = 1",
        args![],
        |r| {
            Ok(StoredFrontier {
                bytes: r.get(0)?,
                mac: r.get(1)?,
            })
        },
    )
}

/// Stores the right edge of the tree with its MAC.
pub fn save_frontier(conn: &Db, frontier: &[u8], mac: &[u8]) -> Result<()> {
    conn.execute(
        "UPDATE audit_frontier SET frontier = ?1, mac = ?2 WHERE id = 1",
        args![frontier, mac],
    )
    .map(|_| ())
}

/// Runs `read` in one read snapshot, unless the caller's transaction already gives one.
pub fn in_snapshot<T>(conn: &Db, read: impl FnOnce(&Db) -> Result<T>) -> Result<T> {
    if conn.in_transaction() {
        return read(conn);
    }
    conn.begin_read()?;
    let result = read(conn);
    conn.commit()?;
    result
}

/// The size of the largest signed checkpoint, if any.
pub fn latest_checkpoint_size(conn: &Db) -> Result<Option<i64>> {
    conn.query_one(
        "SELECT max(tree_size) FROM audit_checkpoints",
        args![],
        |r| r.get(0),
    )
}

/// Stores a signed checkpoint note. Its size is the table's key: two writers can never both
/// store a checkpoint of one size, so no two checkpoints of one size can disagree.
pub fn insert_checkpoint(conn: &Db, tree_size: i64, note: &str, created_at: i64) -> Result<()> {
    conn.execute(
        "INSERT INTO audit_checkpoints (tree_size, note, created_at) VALUES (?1, ?2, ?3)",
        args![tree_size, note, created_at],
    )
    .map(|_| ())
}

/// Every stored checkpoint note, oldest first.
pub fn checkpoint_notes(conn: &Db) -> Result<Vec<String>> {
    conn.query_all(
        "SELECT note FROM audit_checkpoints ORDER BY tree_size",
        args![],
        |r| r.get(0),
    )
}

/// The latest stored checkpoint note.
pub fn latest_checkpoint_note(conn: &Db) -> Result<Option<String>> {
    conn.query_opt(
        "SELECT note FROM audit_checkpoints ORDER BY tree_size DESC LIMIT 1",
        args![],
        |r| r.get(0),
    )
}

/// The `count` latest stored checkpoints, newest first: (tree size, note, created at).
pub fn latest_checkpoints(conn: &Db, count: i64) -> Result<Vec<(i64, String, i64)>> {
    conn.query_all(
        "SELECT tree_size, note, created_at FROM audit_checkpoints ORDER BY tree_size DESC LIMIT ?1",
        args![count],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
}
