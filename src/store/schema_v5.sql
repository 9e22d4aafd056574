-- cvvault schema, version 5: the agency's own reference for a candidate (its case number),
-- to find them again. Stored only as a keyed HMAC (`IntegrityKey::reference_mac`), never as
-- written, unique, and covered by the candidate row's MAC: a database writer can neither read
-- a reference nor move one to another candidate.

ALTER TABLE candidates ADD COLUMN reference_mac BLOB;
CREATE UNIQUE INDEX candidates_by_reference ON candidates (reference_mac)
    WHERE reference_mac IS NOT NULL;
