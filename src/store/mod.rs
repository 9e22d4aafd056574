//! The SQLite store: schema, migrations and the rows the vault keeps.
