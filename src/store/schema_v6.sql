-- cvvault schema, version 6: bearer tokens expire. `expires_at` (Unix seconds) is covered by
-- the token row's MAC, so a database writer cannot extend a token. Tokens issued before this
-- version get an expiry one default lifetime (30 days) after the migration, with their MAC,
-- computed by the vault that holds the keyring (`rows::expire_legacy_tokens`).

ALTER TABLE tokens ADD COLUMN expires_at INTEGER;
