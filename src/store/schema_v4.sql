-- cvvault schema, version 4: the rows authorization depends on carry a MAC.
--
-- `row_mac` = HMAC-SHA256 under the keyring's integrity key over the row's authorization
-- fields (see `crypto::integrity` and `store::rows`). A row written or changed outside
-- cvvault fails it and is refused where it is read. Token hashes become keyed hashes. The
-- audit trail's frontier gets a MAC too, so the vault never signs a tree edge it did not
-- write. The MACs of the rows that exist are computed in the same transaction as this
-- migration, by the vault that holds the keyring (`rows::seal_existing_rows`).

ALTER TABLE principals ADD COLUMN row_mac BLOB;
ALTER TABLE tokens ADD COLUMN row_mac BLOB;
ALTER TABLE assignments ADD COLUMN row_mac BLOB;
ALTER TABLE candidates ADD COLUMN row_mac BLOB;
ALTER TABLE audit_frontier ADD COLUMN mac BLOB;
