//! One connection to either store, and the one SQL dialect the queries are written in.
//!
//! The vault keeps everything in one of two stores: the embedded SQLite file (the default)
//! or a PostgreSQL database (for more than one machine). Both hold the same tables, column
//! for column (`schema*.sql` and `schema_pg.sql`), so the queries in `rows.rs` and
//! `audit_rows.rs` are written once: with `?N` placeholders, integers as 64-bit, blobs as
//! blobs. [`Db`] runs them on either engine (rewriting `?N` to `$N` for PostgreSQL), and a
//! query that needs each engine's own words says so with [`Db::pick`].
//!
//! Nothing outside `src/store/` sees an engine's types: a row is read through [`Row::get`],
//! and a stored value of the wrong type is [`Error::Corrupt`], on both engines alike.

use std::cell::RefCell;
use std::collections::HashMap;

use crate::error::{Error, Result};

/// Which engine a connection talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// The embedded SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// A statement parameter: the four kinds of value the vault stores.
#[derive(Clone, Copy, Debug)]
pub enum Value<'a> {
    /// SQL NULL.
    Null,
    /// A 64-bit integer (booleans are stored as 0 and 1).
    Int(i64),
    /// UTF-8 text.
    Text(&'a str),
    /// Bytes.
    Blob(&'a [u8]),
    /// A list of byte strings (PostgreSQL's `bytea[]`, for `= ANY(?1)`): SQLite has no
    /// list parameter, so a query for both engines never passes one there.
    BlobList(&'a [&'a [u8]]),
}

impl From<i64> for Value<'_> {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}
impl From<u32> for Value<'_> {
    fn from(v: u32) -> Self {
        Value::Int(i64::from(v))
    }
}
impl From<bool> for Value<'_> {
    fn from(v: bool) -> Self {
        Value::Int(i64::from(v))
    }
}
impl<'a> From<&'a str> for Value<'a> {
    fn from(v: &'a str) -> Self {
        Value::Text(v)
    }
}
impl<'a> From<&'a String> for Value<'a> {
    fn from(v: &'a String) -> Self {
        Value::Text(v)
    }
}
impl<'a> From<&'a [u8]> for Value<'a> {
    fn from(v: &'a [u8]) -> Self {
        Value::Blob(v)
    }
}
impl<'a> From<&'a Vec<u8>> for Value<'a> {
    fn from(v: &'a Vec<u8>) -> Self {
        Value::Blob(v)
    }
}
impl<'a, const N: usize> From<&'a [u8; N]> for Value<'a> {
    fn from(v: &'a [u8; N]) -> Self {
        Value::Blob(v)
    }
}
impl<'a, T: Into<Value<'a>>> From<Option<T>> for Value<'a> {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// The parameters of a statement: `args![a, b]` is `&[Value::from(a), Value::from(b)]`.
macro_rules! args {
    () => { &[] as &[$crate::store::sql::Value<'_>] };
    ($($value:expr),+ $(,)?) => {
        &[$($crate::store::sql::Value::from($value)),+] as &[$crate::store::sql::Value<'_>]
    };
}
pub(crate) use args;

/// A stored value as the engine returned it, before it is read as a Rust type.
#[derive(Clone, Copy, Debug)]
pub enum Stored<'r> {
    /// NULL.
    Null,
    /// An integer.
    Int(i64),
    /// Text.
    Text(&'r str),
    /// Bytes.
    Blob(&'r [u8]),
    /// Anything else (a float, or text that is not UTF-8): never written by cvvault.
    Other,
}

/// A Rust type a stored value is read as.
pub trait FromStored<'r>: Sized {
    /// `None` when the stored value is not of this type.
    fn from_stored(value: Stored<'r>) -> Option<Self>;
}

impl FromStored<'_> for i64 {
    fn from_stored(value: Stored<'_>) -> Option<Self> {
        match value {
            Stored::Int(v) => Some(v),
            _ => None,
        }
    }
}
impl FromStored<'_> for bool {
    fn from_stored(value: Stored<'_>) -> Option<Self> {
        match value {
            Stored::Int(v) => Some(v != 0),
            _ => None,
        }
    }
}
impl FromStored<'_> for String {
    fn from_stored(value: Stored<'_>) -> Option<Self> {
        match value {
            Stored::Text(v) => Some(v.to_owned()),
            _ => None,
        }
    }
}
impl<'r> FromStored<'r> for &'r str {
    fn from_stored(value: Stored<'r>) -> Option<Self> {
        match value {
            Stored::Text(v) => Some(v),
            _ => None,
        }
    }
}
impl FromStored<'_> for Vec<u8> {
    fn from_stored(value: Stored<'_>) -> Option<Self> {
        match value {
            Stored::Blob(v) => Some(v.to_vec()),
            _ => None,
        }
    }
}
impl<'r> FromStored<'r> for &'r [u8] {
    fn from_stored(value: Stored<'r>) -> Option<Self> {
        match value {
            Stored::Blob(v) => Some(v),
            _ => None,
        }
    }
}
impl<'r, T: FromStored<'r>> FromStored<'r> for Option<T> {
    fn from_stored(value: Stored<'r>) -> Option<Self> {
        match value {
            Stored::Null => Some(None),
            other => T::from_stored(other).map(Some),
        }
    }
}

/// One result row, of either engine.
pub enum Row<'r> {
    /// A SQLite row.
    Sqlite(&'r rusqlite::Row<'r>),
    /// A PostgreSQL row.
    Postgres(&'r postgres::Row),
}

fn wrong_type() -> Error {
    Error::Corrupt {
        what: "a stored value does not have the type cvvault writes",
    }
}

impl<'r> Row<'r> {
    /// Column `index` as it is stored.
    pub fn stored(&self, index: usize) -> Result<Stored<'r>> {
        match self {
            Row::Sqlite(row) => {
                use rusqlite::types::ValueRef;
                Ok(match row.get_ref(index)? {
                    ValueRef::Null => Stored::Null,
                    ValueRef::Integer(v) => Stored::Int(v),
                    ValueRef::Text(t) => std::str::from_utf8(t).map_or(Stored::Other, Stored::Text),
                    ValueRef::Blob(b) => Stored::Blob(b),
                    ValueRef::Real(_) => Stored::Other,
                })
            }
            Row::Postgres(row) => pg_stored(row, index),
        }
    }

    /// Column `index` as `T`; a value of another type is [`Error::Corrupt`].
    pub fn get<T: FromStored<'r>>(&self, index: usize) -> Result<T> {
        T::from_stored(self.stored(index)?).ok_or_else(wrong_type)
    }

    /// The columns from `at` on as a tuple: `row.columns::<(i64, String)>(3)` reads columns
    /// 3 and 4 (a row type that starts after another's columns in a join).
    pub fn columns<T: Columns<'r>>(&self, at: usize) -> Result<T> {
        T::read(self, at)
    }
}

/// A tuple of stored values read from consecutive columns ([`Row::columns`]).
pub trait Columns<'r>: Sized {
    /// Reads the tuple from columns `at`, `at + 1`, ...
    fn read(row: &Row<'r>, at: usize) -> Result<Self>;
}

macro_rules! tuple_columns {
    ($($t:ident $i:tt),+) => {
        impl<'r, $($t: FromStored<'r>),+> Columns<'r> for ($($t,)+) {
            fn read(row: &Row<'r>, at: usize) -> Result<Self> {
                Ok(($(row.get::<$t>(at + $i)?,)+))
            }
        }
    };
}

tuple_columns!(A 0, B 1, C 2, D 3, E 4, F 5);
tuple_columns!(A 0, B 1, C 2, D 3, E 4, F 5, G 6);
tuple_columns!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7);

fn pg_stored<'r>(row: &'r postgres::Row, index: usize) -> Result<Stored<'r>> {
    use postgres::types::Type;
    let ty = row
        .columns()
        .get(index)
        .ok_or(Error::Internal("a query read a column it does not select"))?
        .type_()
        .clone();
    let value = if ty == Type::INT8 {
        row.try_get::<_, Option<i64>>(index)?.map(Stored::Int)
    } else if ty == Type::INT4 {
        row.try_get::<_, Option<i32>>(index)?
            .map(|v| Stored::Int(i64::from(v)))
    } else if ty == Type::INT2 {
        row.try_get::<_, Option<i16>>(index)?
            .map(|v| Stored::Int(i64::from(v)))
    } else if ty == Type::BOOL {
        row.try_get::<_, Option<bool>>(index)?
            .map(|v| Stored::Int(i64::from(v)))
    } else if ty == Type::BYTEA {
        row.try_get::<_, Option<&[u8]>>(index)?.map(Stored::Blob)
    } else if ty == Type::TEXT || ty == Type::VARCHAR || ty == Type::NAME || ty == Type::BPCHAR {
        row.try_get::<_, Option<&str>>(index)?.map(Stored::Text)
    } else if ty == Type::NUMERIC {
        // sum() of BIGINT is NUMERIC in PostgreSQL: the queries cast it back.
        Some(Stored::Other)
    } else {
        Some(Stored::Other)
    };
    Ok(value.unwrap_or(Stored::Null))
}

impl rusqlite::ToSql for Value<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match *self {
            Value::Null => ValueRef::Null,
            Value::Int(v) => ValueRef::Integer(v),
            Value::Text(v) => ValueRef::Text(v.as_bytes()),
            Value::Blob(v) => ValueRef::Blob(v),
            Value::BlobList(_) => {
                return Err(rusqlite::Error::ToSqlConversionFailure(
                    "a list parameter is for PostgreSQL only".into(),
                ))
            }
        }))
    }
}

impl postgres::types::ToSql for Value<'_> {
    fn to_sql(
        &self,
        ty: &postgres::types::Type,
        out: &mut bytes::BytesMut,
    ) -> std::result::Result<postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>>
    {
        use postgres::types::{IsNull, Type};
        match *self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(v) if *ty == Type::INT8 => v.to_sql(ty, out),
            Value::Int(v) if *ty == Type::INT4 => i32::try_from(v)?.to_sql(ty, out),
            Value::Int(v) if *ty == Type::INT2 => i16::try_from(v)?.to_sql(ty, out),
            Value::Int(v) if *ty == Type::BOOL => (v != 0).to_sql(ty, out),
            Value::Int(_) => {
                Err(format!("an integer parameter where PostgreSQL wants {ty}").into())
            }
            Value::Text(v) => v.to_sql(ty, out),
            Value::Blob(v) => v.to_sql(ty, out),
            Value::BlobList(v) => v.to_sql(ty, out),
        }
    }

    fn accepts(_: &postgres::types::Type) -> bool {
        true
    }

    postgres::types::to_sql_checked!();
}

/// A PostgreSQL client with its prepared statements, by the query text they came from.
pub struct PgSession {
    /// `None` only while it is dropped.
    client: Option<postgres::Client>,
    statements: HashMap<String, postgres::Statement>,
    in_transaction: bool,
}

impl PgSession {
    /// Wraps a connected client.
    pub fn new(client: postgres::Client) -> PgSession {
        PgSession {
            client: Some(client),
            statements: HashMap::new(),
            in_transaction: false,
        }
    }

    fn client(&mut self) -> Result<&mut postgres::Client> {
        self.client.as_mut().ok_or(Error::Internal(
            "a PostgreSQL connection was used after it was closed",
        ))
    }

    fn statement(&mut self, sql: &str) -> Result<postgres::Statement> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client()?.prepare(&dollar_placeholders(sql))?;
        self.statements.insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }
}

impl Drop for PgSession {
    /// The client's runtime may not be dropped on a thread that drives async tasks.
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            blocking(move || drop(client));
        }
    }
}

/// `?1` becomes `$1`: the one spelling difference of the queries' placeholders. A `?` that
/// is not followed by a digit (none of the vault's queries has one) is kept.
fn dollar_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '?' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('$');
        } else {
            out.push(c);
        }
    }
    out
}

/// Runs a call of the PostgreSQL client, which blocks on a runtime of its own: from a thread
/// that drives a tokio runtime's tasks (an async test, or code that forgot the blocking pool)
/// that would panic, so the call tells the runtime first that this thread blocks. Elsewhere
/// (the server's blocking pool, the CLI, the writer thread) it runs as it is.
pub(crate) fn blocking<T>(call: impl FnOnce() -> T) -> T {
    if tokio::runtime::Handle::try_current().is_ok() {
        tokio::task::block_in_place(call)
    } else {
        call()
    }
}

enum Backend {
    Sqlite(rusqlite::Connection),
    Postgres(Box<RefCell<PgSession>>),
}

/// Where a writer's job stands with its savepoint ([`Db::job_begins`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum JobSavepoint {
    /// No job is running (or the connection is not the writer's).
    None,
    /// A job runs and has changed nothing yet: no savepoint is set.
    Pending,
    /// A job runs and set its savepoint before its first change.
    Taken,
}

/// How a writer's job ended on the connection ([`Db::job_ends`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JobEnd {
    /// The job changed something, so a savepoint `job` was set before its first change.
    pub savepoint: bool,
    /// A statement of the job failed before any savepoint was set. On PostgreSQL that aborts
    /// the whole transaction; the group cannot go on.
    pub failed_unguarded: bool,
}

/// The type of a column written by [`Db::insert_rows`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// BIGINT (SQLite INTEGER).
    Int,
    /// TEXT.
    Text,
    /// BYTEA (SQLite BLOB).
    Blob,
}

/// A table and the columns [`Db::insert_rows`] writes, in order.
pub struct Table<const N: usize> {
    /// The table's name.
    pub name: &'static str,
    /// Each column's name and type.
    pub columns: [(&'static str, Kind); N],
}

/// One connection to the store, of either engine.
pub struct Db {
    backend: Backend,
    job: std::cell::Cell<JobSavepoint>,
    failed_unguarded: std::cell::Cell<bool>,
}

/// Whether a statement only reads: it needs no savepoint before it. Anything that does not
/// begin with SELECT counts as a change (a `WITH ... INSERT`, a `SELECT ... FOR UPDATE`'s
/// lock is harmless to keep either way).
fn only_reads(sql: &str) -> bool {
    sql.trim_start()
        .as_bytes()
        .get(..6)
        .is_some_and(|head| head.eq_ignore_ascii_case(b"SELECT"))
}

fn pg_as_params<'v>(
    args: &'v [Value<'v>],
) -> impl ExactSizeIterator<Item = &'v dyn postgres::types::ToSql> {
    args.iter().map(|v| v as &dyn postgres::types::ToSql)
}

impl Db {
    /// A SQLite connection.
    pub fn sqlite(conn: rusqlite::Connection) -> Db {
        // Every query of `rows.rs` stays prepared: more than rusqlite's default of 16.
        conn.set_prepared_statement_cache_capacity(128);
        Db {
            backend: Backend::Sqlite(conn),
            job: std::cell::Cell::new(JobSavepoint::None),
            failed_unguarded: std::cell::Cell::new(false),
        }
    }

    /// A PostgreSQL connection.
    pub fn postgres(client: postgres::Client) -> Db {
        Db {
            backend: Backend::Postgres(Box::new(RefCell::new(PgSession::new(client)))),
            job: std::cell::Cell::new(JobSavepoint::None),
            failed_unguarded: std::cell::Cell::new(false),
        }
    }

    /// The engine.
    pub fn dialect(&self) -> Dialect {
        match self.backend {
            Backend::Sqlite(_) => Dialect::Sqlite,
            Backend::Postgres(_) => Dialect::Postgres,
        }
    }

    /// `sqlite` on SQLite, `postgres` on PostgreSQL: for the few queries whose words differ.
    pub fn pick<'s>(&self, sqlite: &'s str, postgres: &'s str) -> &'s str {
        match self.dialect() {
            Dialect::Sqlite => sqlite,
            Dialect::Postgres => postgres,
        }
    }

    /// The SQLite connection, for what only SQLite has (pragmas, checkpoints).
    pub fn as_sqlite(&self) -> Option<&rusqlite::Connection> {
        match &self.backend {
            Backend::Sqlite(conn) => Some(conn),
            Backend::Postgres(_) => None,
        }
    }

    fn session(&self) -> Result<std::cell::RefMut<'_, PgSession>> {
        match &self.backend {
            Backend::Postgres(session) => session
                .try_borrow_mut()
                .map_err(|_| Error::Internal("a query was run inside another query's rows")),
            Backend::Sqlite(_) => Err(Error::Internal("a PostgreSQL call on a SQLite store")),
        }
    }

    /// A writer's job begins on this connection (inside the group's transaction): the
    /// savepoint that undoes the job alone is set only before its first change, so that a job
    /// that only reads and appends audit entries (an extract) costs no round trip for it.
    pub fn job_begins(&self) {
        self.job.set(JobSavepoint::Pending);
        self.failed_unguarded.set(false);
    }

    /// The job that [`Db::job_begins`] began has ended: whether it set its savepoint, and
    /// whether a statement failed where none was set.
    pub fn job_ends(&self) -> JobEnd {
        let end = JobEnd {
            savepoint: self.job.get() == JobSavepoint::Taken,
            failed_unguarded: self.failed_unguarded.get(),
        };
        self.job.set(JobSavepoint::None);
        self.failed_unguarded.set(false);
        end
    }

    /// Runs a statement of `sql`, first setting the running job's savepoint if the statement
    /// may change something and none is set yet.
    fn guarded<T>(&self, sql: &str, run: impl FnOnce() -> Result<T>) -> Result<T> {
        if self.job.get() == JobSavepoint::Pending && !only_reads(sql) {
            if let Err(e) = self.batch_unguarded("SAVEPOINT job") {
                self.failed_unguarded.set(true);
                return Err(e);
            }
            self.job.set(JobSavepoint::Taken);
        }
        let result = run();
        // Only the server's errors abort its transaction: a value a row callback refused, or
        // one the client could not encode, leaves it usable.
        if matches!(result, Err(Error::Postgres(_))) && self.job.get() == JobSavepoint::Pending {
            self.failed_unguarded.set(true);
        }
        result
    }

    /// Runs one statement; returns the number of rows it changed.
    pub fn execute(&self, sql: &str, args: &[Value<'_>]) -> Result<u64> {
        self.guarded(sql, || self.execute_unguarded(sql, args))
    }

    fn execute_unguarded(&self, sql: &str, args: &[Value<'_>]) -> Result<u64> {
        match &self.backend {
            Backend::Sqlite(conn) => {
                let changed = conn
                    .prepare_cached(sql)?
                    .execute(rusqlite::params_from_iter(args))?;
                Ok(changed as u64)
            }
            Backend::Postgres(_) => blocking(|| {
                let mut session = self.session()?;
                let statement = session.statement(sql)?;
                let params: Vec<&(dyn postgres::types::ToSql + Sync)> = args
                    .iter()
                    .map(|v| v as &(dyn postgres::types::ToSql + Sync))
                    .collect();
                Ok(session.client()?.execute(&statement, &params)?)
            }),
        }
    }

    /// Calls `each` on every row of the query, in order, until it returns `false`.
    pub fn query_each(
        &self,
        sql: &str,
        args: &[Value<'_>],
        mut each: impl FnMut(&Row<'_>) -> Result<bool>,
    ) -> Result<()> {
        self.guarded(sql, || self.query_each_unguarded(sql, args, &mut each))
    }

    fn query_each_unguarded(
        &self,
        sql: &str,
        args: &[Value<'_>],
        each: &mut dyn FnMut(&Row<'_>) -> Result<bool>,
    ) -> Result<()> {
        match &self.backend {
            Backend::Sqlite(conn) => {
                let mut statement = conn.prepare_cached(sql)?;
                let mut rows = statement.query(rusqlite::params_from_iter(args))?;
                while let Some(row) = rows.next()? {
                    if !each(&Row::Sqlite(row))? {
                        break;
                    }
                }
                Ok(())
            }
            Backend::Postgres(_) => blocking(|| {
                use postgres::fallible_iterator::FallibleIterator;
                let mut session = self.session()?;
                let statement = session.statement(sql)?;
                let mut rows = session
                    .client()?
                    .query_raw(&statement, pg_as_params(args))?;
                while let Some(row) = rows.next()? {
                    if !each(&Row::Postgres(&row))? {
                        break;
                    }
                }
                Ok(())
            }),
        }
    }

    /// Every row of the query, read by `read`.
    pub fn query_all<T>(
        &self,
        sql: &str,
        args: &[Value<'_>],
        mut read: impl FnMut(&Row<'_>) -> Result<T>,
    ) -> Result<Vec<T>> {
        let mut all = Vec::new();
        self.query_each(sql, args, |row| {
            all.push(read(row)?);
            Ok(true)
        })?;
        Ok(all)
    }

    /// The first row of the query, read by `read`, or `None` when there is none.
    pub fn query_opt<T>(
        &self,
        sql: &str,
        args: &[Value<'_>],
        read: impl FnOnce(&Row<'_>) -> Result<T>,
    ) -> Result<Option<T>> {
        let mut read = Some(read);
        let mut value = None;
        self.query_each(sql, args, |row| {
            if let Some(read) = read.take() {
                value = Some(read(row)?);
            }
            Ok(false)
        })?;
        Ok(value)
    }

    /// The first row of a query that always returns one (an aggregate).
    pub fn query_one<T>(
        &self,
        sql: &str,
        args: &[Value<'_>],
        read: impl FnOnce(&Row<'_>) -> Result<T>,
    ) -> Result<T> {
        self.query_opt(sql, args, read)?
            .ok_or(Error::Internal("an aggregate query returned no row"))
    }

    /// Inserts `rows` into `table` in one go: on SQLite each row through the one-row INSERT,
    /// prepared once; on PostgreSQL all of them through one `COPY ... FROM STDIN (FORMAT
    /// binary)`, a few round trips for the lot instead of one per row. A row that breaks a
    /// constraint fails the whole call, as it would the transaction. Returns the rows written.
    pub fn insert_rows<const N: usize>(
        &self,
        table: &Table<N>,
        rows: &[[Value<'_>; N]],
    ) -> Result<u64> {
        if rows.is_empty() {
            return Ok(0);
        }
        let names: Vec<&str> = table.columns.iter().map(|(name, _)| *name).collect();
        let names = names.join(", ");
        match &self.backend {
            Backend::Sqlite(_) => {
                let places: Vec<String> = (1..=N).map(|i| format!("?{i}")).collect();
                let sql = format!(
                    "INSERT INTO {} ({names}) VALUES ({})",
                    table.name,
                    places.join(", ")
                );
                self.guarded(&sql, || {
                    for row in rows {
                        self.execute_unguarded(&sql, row)?;
                    }
                    Ok(rows.len() as u64)
                })
            }
            Backend::Postgres(_) => {
                let sql = format!("COPY {} ({names}) FROM STDIN (FORMAT binary)", table.name);
                self.guarded(&sql, || {
                    blocking(|| {
                        use postgres::types::Type;
                        let types: Vec<Type> = table
                            .columns
                            .iter()
                            .map(|(_, kind)| match kind {
                                Kind::Int => Type::INT8,
                                Kind::Text => Type::TEXT,
                                Kind::Blob => Type::BYTEA,
                            })
                            .collect();
                        let mut session = self.session()?;
                        let copy = session.client()?.copy_in(sql.as_str())?;
                        let mut writer =
                            postgres::binary_copy::BinaryCopyInWriter::new(copy, &types);
                        for row in rows {
                            writer.write_raw(pg_as_params(row))?;
                        }
                        Ok(writer.finish()?)
                    })
                })
            }
        }
    }

    /// Runs statements without parameters (schema files, transaction control).
    pub fn batch(&self, sql: &str) -> Result<()> {
        self.guarded(sql, || self.batch_unguarded(sql))
    }

    fn batch_unguarded(&self, sql: &str) -> Result<()> {
        match &self.backend {
            Backend::Sqlite(conn) => Ok(conn.execute_batch(sql)?),
            Backend::Postgres(_) => {
                blocking(|| Ok(self.session()?.client()?.batch_execute(sql)?))
            }
        }
    }

    /// Whether the connection was lost (a PostgreSQL server that went away): it is not reused.
    pub fn is_broken(&self) -> bool {
        match &self.backend {
            Backend::Sqlite(_) => false,
            Backend::Postgres(session) => session.try_borrow().map_or(true, |s| {
                s.client.as_ref().is_none_or(postgres::Client::is_closed)
            }),
        }
    }

    /// Whether a transaction is open on this connection.
    pub fn in_transaction(&self) -> bool {
        match &self.backend {
            Backend::Sqlite(conn) => !conn.is_autocommit(),
            Backend::Postgres(session) => session.try_borrow().is_ok_and(|s| s.in_transaction),
        }
    }

    fn set_in_transaction(&self, open: bool) {
        if let Backend::Postgres(session) = &self.backend {
            if let Ok(mut session) = session.try_borrow_mut() {
                session.in_transaction = open;
            }
        }
    }

    /// Begins a read transaction: every statement until [`Db::end`] sees one snapshot.
    pub fn begin_read(&self) -> Result<()> {
        match &self.backend {
            Backend::Sqlite(conn) => {
                conn.prepare_cached("BEGIN DEFERRED")?.execute([])?;
            }
            Backend::Postgres(_) => {
                self.batch("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")?;
                self.set_in_transaction(true);
            }
        }
        Ok(())
    }

    /// Begins a write transaction. On SQLite it takes the database's write lock at once; on
    /// PostgreSQL the writer takes the audit trail's head row next, which orders every
    /// writer of every node.
    pub fn begin_write(&self) -> Result<()> {
        match &self.backend {
            Backend::Sqlite(conn) => {
                conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
            }
            Backend::Postgres(_) => {
                self.batch("BEGIN ISOLATION LEVEL READ COMMITTED")?;
                self.set_in_transaction(true);
            }
        }
        Ok(())
    }

    /// Commits the open transaction.
    pub fn commit(&self) -> Result<()> {
        let result = match &self.backend {
            Backend::Sqlite(conn) => conn
                .prepare_cached("COMMIT")
                .and_then(|mut s| s.execute([]))
                .map(|_| ())
                .map_err(Error::from),
            Backend::Postgres(_) => self.batch("COMMIT"),
        };
        self.set_in_transaction(false);
        result
    }

    /// Rolls the open transaction back.
    pub fn rollback(&self) -> Result<()> {
        let result = self.batch("ROLLBACK");
        self.set_in_transaction(false);
        result
    }
}

/// Whether `error` is a constraint violation (a unique key already taken).
pub fn is_constraint_violation(error: &Error) -> bool {
    match error {
        Error::Store(rusqlite::Error::SqliteFailure(e, _)) => {
            e.code == rusqlite::ErrorCode::ConstraintViolation
        }
        Error::Postgres(e) => e.code().is_some_and(|code| {
            *code == postgres::error::SqlState::UNIQUE_VIOLATION
                || *code == postgres::error::SqlState::FOREIGN_KEY_VIOLATION
                || *code == postgres::error::SqlState::CHECK_VIOLATION
                || *code == postgres::error::SqlState::NOT_NULL_VIOLATION
        }),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn placeholders_are_rewritten_only_where_they_are_placeholders() {
        assert_eq!(
            dollar_placeholders("SELECT a FROM t WHERE b = ?1 AND c = ?12 AND d <> '?'"),
            "SELECT a FROM t WHERE b = $1 AND c = $12 AND d <> '?'"
        );
    }

    #[test]
    fn values_read_back_as_their_type_and_a_wrong_type_is_corrupt() {
        let db = Db::sqlite(rusqlite::Connection::open_in_memory().unwrap());
        db.batch("CREATE TABLE t (i INTEGER, s TEXT, b BLOB, n INTEGER)")
            .unwrap();
        db.execute(
            "INSERT INTO t VALUES (?1, ?2, ?3, ?4)",
            args![7i64, "seven", &[7u8, 7][..], None::<i64>],
        )
        .unwrap();
        let row = db
            .query_one("SELECT i, s, b, n FROM t", args![], |r| {
                Ok((
                    r.get::<i64>(0)?,
                    r.get::<String>(1)?,
                    r.get::<Vec<u8>>(2)?,
                    r.get::<Option<i64>>(3)?,
                ))
            })
            .unwrap();
        assert_eq!(row, (7, "seven".to_owned(), vec![7, 7], None));
        let wrong = db
            .query_one("SELECT s FROM t", args![], |r| r.get::<i64>(0))
            .unwrap_err();
        assert!(matches!(wrong, Error::Corrupt { .. }), "{wrong}");
    }
}
