-- cvvault schema, version 2: indexes that a bulk import appends to instead of scattering.
--
-- Each commit rewrites every index page it touches (in the WAL, then again when the WAL is
-- checkpointed). Version 1 keyed `candidates` by the random candidate id, so its two
-- lifecycle indexes, (time, random id), and the table itself took new rows at random pages:
-- a batch of 2,000 registrations dirtied nearly every page of all three. Version 2 keys
-- the row by its key slot (appended in order), so the lifecycle indexes are (time, slot)
-- and only the small unique index on the candidate id is written at random.
--
-- Run with foreign keys off (see `store::migrate`): dropping the old table must not
-- cascade into `assignments`, which is re-pointed at the new table by the rename.

CREATE TABLE candidates_v2 (
    key_id           INTEGER PRIMARY KEY REFERENCES candidate_keys (key_id),
    candidate_id     BLOB NOT NULL UNIQUE CHECK (length(candidate_id) = 16),
    created_at       INTEGER NOT NULL,
    open_assignments INTEGER NOT NULL DEFAULT 0 CHECK (open_assignments >= 0),
    ever_assigned    INTEGER NOT NULL DEFAULT 0,
    -- NULL while an assignment is open; else since when the candidate has had none.
    idle_since       INTEGER,
    legal_hold       INTEGER NOT NULL DEFAULT 0,
    -- The DPO's stated legal ground (a case reference, never personal details).
    legal_hold_reason TEXT
);
INSERT INTO candidates_v2 (key_id, candidate_id, created_at, open_assignments, ever_assigned,
                           idle_since, legal_hold, legal_hold_reason)
    SELECT key_id, candidate_id, created_at, open_assignments, ever_assigned,
           idle_since, legal_hold, legal_hold_reason
    FROM candidates ORDER BY key_id;
DROP TABLE candidates;
ALTER TABLE candidates_v2 RENAME TO candidates;
CREATE INDEX candidates_by_idle ON candidates (idle_since) WHERE idle_since IS NOT NULL;
CREATE INDEX candidates_by_age ON candidates (created_at);

-- The audit trail's search index held the whole 76-character pseudonym of every entry, a
-- random key. 16 hex digits (64 bits) of it find the entries as well, in a fifth of the
-- pages; the query compares the whole pseudonym after the index lookup.
DROP INDEX audit_by_candidate;
CREATE INDEX audit_by_candidate ON audit_entries (substr(candidate_hmac, 13, 16))
    WHERE candidate_hmac IS NOT NULL;
