//! The PostgreSQL store: where it is, how to reach it, its schema and its migrations.
//!
//! The tables are those of the SQLite store, column for column (`schema_pg.sql`), so that the
//! queries of `rows.rs` and `audit_rows.rs` serve both. What differs is kept here and in
//! [`super::Writer`]: the schema version lives in a table (there is no `user_version`), and
//! every writer of every node takes the audit trail's head row first in its transaction
//! ([`super::audit_rows::lock_head`]).

use std::fmt;

use crate::error::{Error, Result};

use super::sql::{args, Db};

/// The PostgreSQL schema at [`SCHEMA_VERSION`].
const SCHEMA: &str = include_str!("schema_pg.sql");
/// The schema version `SCHEMA` creates: the same number as the SQLite schema it mirrors.
pub const SCHEMA_VERSION: i64 = 6;

/// A PostgreSQL database to keep the vault in, from a `postgres://` URL.
#[derive(Clone)]
pub struct PgTarget {
    config: postgres::Config,
    /// The URL without its password: what messages and logs show.
    shown: String,
}

impl fmt::Display for PgTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl fmt::Debug for PgTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the password.
        write!(f, "PgTarget({})", self.shown)
    }
}

impl PgTarget {
    /// Parses a `postgres://user[:password]@host[:port]/database[?options]` URL (or the
    /// key=value form libpq takes).
    pub fn parse(url: &str) -> Result<PgTarget> {
        let config: postgres::Config = url.parse().map_err(|_| {
            Error::invalid_input(
                "the database URL is not a PostgreSQL connection string: write it as postgres://USER@HOST:PORT/DATABASE (the password, if any, is better given in PGPASSWORD or ~/.pgpass than in the URL)",
            )
        })?;
        let mut config = config;
        if config.get_password().is_none() {
            if let Ok(password) = std::env::var("PGPASSWORD") {
                config.password(password);
            }
        }
        if config.get_application_name().is_none() {
            config.application_name("cvvault");
        }
        let shown = shown(&config);
        Ok(PgTarget { config, shown })
    }

    /// Opens a connection. TLS is not spoken: keep the server on loopback or a private
    /// network (SECURITY.md, "Several nodes").
    pub fn connect(&self) -> Result<Db> {
        let client = super::sql::blocking(|| self.config.connect(postgres::NoTls)).map_err(|e| {
            if e.as_db_error().is_some() {
                Error::from(e)
            } else {
                Error::Conflict(format!(
                    "could not reach PostgreSQL at {}: {e}. Check that the server runs and accepts connections there, and the user and database in the URL",
                    self.shown
                ))
            }
        })?;
        Ok(Db::postgres(client))
    }
}

fn shown(config: &postgres::Config) -> String {
    let user = config.get_user().unwrap_or("");
    let host = config
        .get_hosts()
        .first()
        .map(|h| match h {
            postgres::config::Host::Tcp(name) => name.clone(),
            postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .unwrap_or_else(|| "localhost".into());
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let db = config.get_dbname().unwrap_or(user);
    format!("postgres://{user}@{host}:{port}/{db}")
}

/// Whether the database already holds a vault (or anything named like one of its tables).
pub(super) fn has_vault(db: &Db) -> Result<bool> {
    db.query_one(
        "SELECT to_regclass('schema_version') IS NOT NULL OR to_regclass('vault_meta') IS NOT NULL",
        args![],
        |r| r.get::<bool>(0),
    )
}

/// Creates the schema in an empty database; refuses one that holds a vault already.
pub fn create(target: &PgTarget) -> Result<()> {
    let db = target.connect()?;
    if has_vault(&db)? {
        return Err(Error::Conflict(format!(
            "{target} holds a vault already: nothing was changed. Open it with the keys it was made with, or give an empty database"
        )));
    }
    db.batch("BEGIN")?;
    let made = db.batch(SCHEMA).and_then(|()| cheap_compression(&db));
    match made {
        Ok(()) => db.batch("COMMIT"),
        Err(e) => {
            let _ = db.batch("ROLLBACK");
            Err(e)
        }
    }
}

/// Sets lz4 on the sealed columns when the server was built with it (see `schema_pg.sql`);
/// without it the default stays, which stores the same bytes.
fn cheap_compression(db: &Db) -> Result<()> {
    let has_lz4: bool = db.query_one(
        "SELECT coalesce('lz4' = ANY(enumvals), false) FROM pg_settings \
         WHERE name = 'default_toast_compression'",
        args![],
        |r| r.get(0),
    )?;
    if has_lz4 {
        db.batch(
            "ALTER TABLE sealed_profiles \
               ALTER COLUMN identity SET COMPRESSION lz4, \
               ALTER COLUMN contact SET COMPRESSION lz4, \
               ALTER COLUMN professional SET COMPRESSION lz4, \
               ALTER COLUMN special SET COMPRESSION lz4, \
               ALTER COLUMN control SET COMPRESSION lz4",
        )?;
    }
    Ok(())
}

/// Checks the schema version: the database must hold a vault this cvvault knows. Newer
/// versions are refused; there is no older PostgreSQL schema yet (the first is version 6),
/// and the next migration goes here, numbered as the SQLite one it mirrors.
pub fn migrate(db: &Db, target: &PgTarget) -> Result<()> {
    if !has_vault(db)? {
        return Err(Error::Conflict(format!(
            "{target} holds no vault: create one there with `init`, or copy a SQLite vault into it with `migrate --to`"
        )));
    }
    let version: i64 = db.query_one("SELECT max(version) FROM schema_version", args![], |r| {
        Ok(r.get::<Option<i64>>(0)?.unwrap_or(0))
    })?;
    if version > SCHEMA_VERSION {
        return Err(Error::Conflict(format!(
            "the database is at schema version {version}, newer than this cvvault ({SCHEMA_VERSION}): upgrade cvvault"
        )));
    }
    if version < SCHEMA_VERSION {
        return Err(Error::Corrupt {
            what: "the PostgreSQL schema version is older than any this cvvault created",
        });
    }
    Ok(())
}

/// Admits one extract attempt of `principal` in the shared quota (see `schema_pg.sql`):
/// 0, or the milliseconds until a slot frees.
pub fn quota_admit(db: &Db, principal: &str, window_ms: i64, limit: i64) -> Result<i64> {
    db.query_one(
        "SELECT cvvault_quota_admit(?1, ?2, ?3)",
        args![principal, window_ms, limit],
        |r| r.get(0),
    )
}

/// The vault's tables in the order a copy fills them (a row's references come before it).
pub const TABLES: &[&str] = &[
    "vault_meta",
    "candidate_keys",
    "candidates",
    "sealed_profiles",
    "principals",
    "assignments",
    "tokens",
    "audit_entries",
    "audit_checkpoints",
];

/// Copies every row of a SQLite vault (`source`, inside the caller's transaction, which
/// holds its write lock) into the empty PostgreSQL vault `target`, in one transaction of the
/// target's, column for column as stored; then the tree's stored edge, and the key-slot
/// sequence past the highest slot copied. Returns the rows copied per table.
/// `progress(rows copied so far)`.
pub fn copy_vault(
    source: &Db,
    target: &Db,
    progress: &dyn Fn(u64),
) -> Result<Vec<(&'static str, u64)>> {
    use super::sql::{Stored, Value};
    let mut copied = Vec::new();
    let mut total = 0u64;
    target.batch("BEGIN")?;
    let result = (|| {
        for table in TABLES {
            let columns: Vec<String> = target.query_all(
                "SELECT column_name FROM information_schema.columns
                 WHERE table_schema = current_schema() AND table_name = ?1 ORDER BY ordinal_position",
                args![*table],
                |r| r.get(0),
            )?;
            let list = columns.join(", ");
            let marks: Vec<String> = (1..=columns.len()).map(|n| format!("?{n}")).collect();
            let insert = format!("INSERT INTO {table} ({list}) VALUES ({})", marks.join(", "));
            let select = format!("SELECT {list} FROM {table}");
            let mut rows = 0u64;
            source.query_each(&select, args![], |row| {
                let stored: Vec<Stored<'_>> = (0..columns.len())
                    .map(|i| row.stored(i))
                    .collect::<Result<_>>()?;
                let values: Vec<Value<'_>> = stored
                    .iter()
                    .map(|value| match *value {
                        Stored::Null => Ok(Value::Null),
                        Stored::Int(v) => Ok(Value::Int(v)),
                        Stored::Text(v) => Ok(Value::Text(v)),
                        Stored::Blob(v) => Ok(Value::Blob(v)),
                        Stored::Other => Err(Error::Corrupt {
                            what: "a stored value does not have the type cvvault writes",
                        }),
                    })
                    .collect::<Result<_>>()?;
                target.execute(&insert, &values)?;
                rows += 1;
                total += 1;
                if total.is_multiple_of(1_000) {
                    progress(total);
                }
                Ok(true)
            })?;
            copied.push((*table, rows));
        }
        let edge = source.query_one(
            "SELECT frontier, mac FROM audit_frontier WHERE id = 1",
            args![],
            |r| Ok((r.get::<Vec<u8>>(0)?, r.get::<Option<Vec<u8>>>(1)?)),
        )?;
        target.execute(
            "UPDATE audit_frontier SET frontier = ?1, mac = ?2 WHERE id = 1",
            args![&edge.0, edge.1.as_ref()],
        )?;
        target.query_one(
            "SELECT setval(pg_get_serial_sequence('candidate_keys', 'key_id'),
                           coalesce((SELECT max(key_id) FROM candidate_keys), 0) + 1, false)",
            args![],
            |_| Ok(()),
        )?;
        Ok(())
    })();
    match result {
        Ok(()) => {
            target.batch("COMMIT")?;
            progress(total);
            Ok(copied)
        }
        Err(e) => {
            let _ = target.batch("ROLLBACK");
            Err(e)
        }
    }
}

/// Rows per table, for comparing a copy with its source.
pub fn row_counts(db: &Db) -> Result<Vec<(&'static str, u64)>> {
    TABLES
        .iter()
        .map(|table| {
            let n: i64 = db.query_one(&format!("SELECT count(*) FROM {table}"), args![], |r| {
                r.get(0)
            })?;
            Ok((*table, u64::try_from(n).unwrap_or(0)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_url_is_shown_without_its_password() {
        let target = PgTarget::parse("postgres://vault:s3cret@db.internal:5433/cv").unwrap();
        assert_eq!(target.to_string(), "postgres://vault@db.internal:5433/cv");
        assert!(!format!("{target:?}").contains("s3cret"));
        let refused = PgTarget::parse("postgres://vault@host:notaport/cv").unwrap_err();
        assert!(
            refused.to_string().contains("postgres://USER@HOST"),
            "{refused}"
        );
    }
}
