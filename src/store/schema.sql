-- cvvault schema, version 1. No plaintext column describes a person: profiles are sealed
-- per field group; ids are random UUIDs; times are Unix seconds.

CREATE TABLE vault_meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
) WITHOUT ROWID;

-- Key material. SQLite moves cells between pages when a B-tree is rebalanced and does not
-- zero the space they leave, so a row that is ever moved can leave a stale copy behind,
-- which secure_delete does not reach. This table is therefore append-only by design: a new
-- row goes to the right edge (existing cells never move to make room for it), and a slot is
-- overwritten in place with the same number of bytes (rotation: the new wrapping; erasure:
-- zeros) and never deleted. No copy of a wrapped DEK outlives its erasure.
CREATE TABLE candidate_keys (
    key_id         INTEGER PRIMARY KEY,
    candidate_id   BLOB NOT NULL,
    kek_version    INTEGER NOT NULL,  -- 0 once shredded
    wrapped_dek    BLOB NOT NULL,
    dek_commitment BLOB NOT NULL
);

-- Small, hot rows: lifecycle. No key material here.
CREATE TABLE candidates (
    candidate_id     BLOB PRIMARY KEY NOT NULL CHECK (length(candidate_id) = 16),
    key_id           INTEGER NOT NULL REFERENCES candidate_keys (key_id),
    created_at       INTEGER NOT NULL,
    open_assignments INTEGER NOT NULL DEFAULT 0 CHECK (open_assignments >= 0),
    ever_assigned    INTEGER NOT NULL DEFAULT 0,
    -- NULL while an assignment is open; else since when the candidate has had none.
    idle_since       INTEGER,
    legal_hold       INTEGER NOT NULL DEFAULT 0,
    -- The DPO's stated legal ground (a case reference, never personal details).
    legal_hold_reason TEXT
) WITHOUT ROWID;
CREATE INDEX candidates_by_idle ON candidates (idle_since) WHERE idle_since IS NOT NULL;
CREATE INDEX candidates_by_age ON candidates (created_at);

-- Large, cold rows: one sealed blob per field group (nonce || ciphertext || tag). Keyed by
-- the key slot, so rows are appended in order (no random-key index to maintain).
CREATE TABLE sealed_profiles (
    key_id         INTEGER PRIMARY KEY REFERENCES candidate_keys (key_id),
    candidate_id   BLOB NOT NULL,
    record_version INTEGER NOT NULL,
    identity       BLOB NOT NULL,
    contact        BLOB NOT NULL,
    professional   BLOB NOT NULL,
    special        BLOB NOT NULL,
    control        BLOB NOT NULL
);

CREATE TABLE principals (
    principal_id         TEXT PRIMARY KEY NOT NULL,
    role                 TEXT NOT NULL,
    org_id               TEXT NOT NULL,
    subject_candidate_id BLOB,
    disabled             INTEGER NOT NULL DEFAULT 0,
    created_at           INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX principals_by_org ON principals (org_id);

CREATE TABLE assignments (
    assignment_id BLOB PRIMARY KEY NOT NULL CHECK (length(assignment_id) = 16),
    candidate_id  BLOB NOT NULL REFERENCES candidates (candidate_id) ON DELETE CASCADE,
    org_id        TEXT NOT NULL,
    kind          TEXT NOT NULL CHECK (kind IN ('coaching', 'matching')),
    purpose       TEXT NOT NULL,
    opened_at     INTEGER NOT NULL,
    opened_by     TEXT NOT NULL,
    closed_at     INTEGER,
    closed_by     TEXT,
    close_reason  TEXT
) WITHOUT ROWID;
CREATE INDEX assignments_by_candidate ON assignments (candidate_id, closed_at);

CREATE TABLE tokens (
    token_id     TEXT PRIMARY KEY NOT NULL,
    principal_id TEXT NOT NULL REFERENCES principals (principal_id),
    token_hash   BLOB NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL,
    revoked_at   INTEGER
) WITHOUT ROWID;

-- The audit trail: an RFC 6962 Merkle tree over `entry` (canonical JSON). Append-only.
CREATE TABLE audit_entries (
    entry_index    INTEGER PRIMARY KEY NOT NULL,
    entry          TEXT NOT NULL,
    -- HMAC-SHA256(audit key, "cvvault/audit/entry/v1\n" || leaf hash): names the exact entry
    -- that was altered, where a signed root alone only says that something was.
    entry_mac      BLOB NOT NULL,
    candidate_hmac TEXT
);
CREATE INDEX audit_by_candidate ON audit_entries (candidate_hmac) WHERE candidate_hmac IS NOT NULL;
CREATE TRIGGER audit_entries_append_only_update BEFORE UPDATE ON audit_entries
BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
CREATE TRIGGER audit_entries_append_only_delete BEFORE DELETE ON audit_entries
BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;

-- Derived state: the right edge of the tree, so appends are O(log n). Verify recomputes it.
CREATE TABLE audit_frontier (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    frontier BLOB NOT NULL
);
INSERT INTO audit_frontier (id, frontier) VALUES (1, x'');

-- Signed checkpoints (C2SP signed notes), newest last.
CREATE TABLE audit_checkpoints (
    tree_size  INTEGER PRIMARY KEY NOT NULL,
    note       TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TRIGGER audit_checkpoints_append_only_delete BEFORE DELETE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only'); END;
CREATE TRIGGER audit_checkpoints_append_only_update BEFORE UPDATE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only'); END;
