-- cvvault schema, version 3: an audit search index whose inserts stay in a few pages.
--
-- The index on the pseudonym alone took every new entry at a random place in the whole
-- index, so each commit rewrote about one index page per entry once the log was large: a
-- 2,000-candidate import batch into a log of a million entries would dirty some 2,000 pages
-- for the index alone. Keyed first by the entry's bucket of 4,096 consecutive entries, new
-- entries go to the last bucket's few dozen pages. A search probes each bucket (see
-- `audit::verify::SEARCH_SQL`), a few hundred lookups for a million entries.

DROP INDEX audit_by_candidate;
CREATE INDEX audit_by_candidate ON audit_entries (entry_index >> 12, substr(candidate_hmac, 13, 16))
    WHERE candidate_hmac IS NOT NULL;
