//! The store: where the vault keeps its rows (the embedded SQLite file, or PostgreSQL for
//! more than one machine), connections, schema migrations, and the single writer thread.
//!
//! Every change goes through [`Writer::write`]: a job runs inside a savepoint of a group
//! transaction on the writer thread, and its result is delivered only after the group has
//! committed (one fsync for many jobs: group commit). A job that fails rolls back to its
//! savepoint, including the audit entries it appended, and the others commit.

pub mod audit_rows;
pub mod postgres;
pub mod rows;
pub mod sql;

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use rusqlite::{Connection, OpenFlags};

pub use self::postgres::PgTarget;
use self::sql::{args, Db, Dialect};
use crate::audit::log::Appender;
use crate::crypto::integrity::IntegrityKey;
use crate::error::{Error, Result};

/// The schema, applied by migration 1.
const SCHEMA_V1: &str = include_str!("schema.sql");
/// Migration 2: append-ordered candidate indexes and a compact audit search index.
const SCHEMA_V2: &str = include_str!("schema_v2.sql");
/// Migration 3: the audit search index keyed by bucket of entries first.
const SCHEMA_V3: &str = include_str!("schema_v3.sql");
/// Migration 4: MACs on the rows authorization depends on, keyed token hashes.
const SCHEMA_V4: &str = include_str!("schema_v4.sql");
/// Migration 5: the agency reference of a candidate, as a keyed HMAC.
const SCHEMA_V5: &str = include_str!("schema_v5.sql");
/// Migration 6: bearer tokens expire.
const SCHEMA_V6: &str = include_str!("schema_v6.sql");
/// Migrations in order; `PRAGMA user_version` is the number applied.
const MIGRATIONS: &[&str] = &[
    SCHEMA_V1, SCHEMA_V2, SCHEMA_V3, SCHEMA_V4, SCHEMA_V5, SCHEMA_V6,
];
/// The migration after whose SQL the existing rows are given their MACs.
const MIGRATION_ROW_MACS: usize = 4;
/// The migration after whose SQL the existing tokens are given an expiry.
const MIGRATION_TOKEN_EXPIRY: usize = 6;
/// Most jobs committed in one group.
const MAX_GROUP: usize = 256;
/// Read connections kept open for reuse. Above the number of concurrent readers (the HTTP
/// server runs up to one per request in flight), a connection would be opened and closed per
/// read, with a cold page cache each time.
const MAX_IDLE_READERS: usize = 256;

/// Where the vault keeps its rows.
#[derive(Clone, Debug)]
#[allow(clippy::large_enum_variant)] // one per vault, never on a hot path
pub enum Location {
    /// The embedded SQLite file (the default: `data/vault.db`).
    Sqlite(PathBuf),
    /// A PostgreSQL database, which several nodes can serve at once.
    Postgres(PgTarget),
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Sqlite(path) => write!(f, "{}", path.display()),
            Location::Postgres(target) => write!(f, "{target}"),
        }
    }
}

impl Location {
    /// Opens a connection to an existing store.
    pub fn open(&self) -> Result<Db> {
        match self {
            Location::Sqlite(path) => open_connection(path, false),
            Location::Postgres(target) => target.connect(),
        }
    }

    /// Creates the store with the current schema; refuses one that holds a vault.
    pub fn create(&self) -> Result<()> {
        match self {
            Location::Sqlite(path) => create(path),
            Location::Postgres(target) => postgres::create(target),
        }
    }

    /// Opens the store and applies the migrations it needs (see [`migrate`]).
    pub fn open_migrated(&self, integrity: Option<&IntegrityKey>) -> Result<Db> {
        match self {
            Location::Sqlite(path) => {
                make_private(path)?;
                let db = open_connection(path, false)?;
                migrate(&db, integrity)?;
                Ok(db)
            }
            Location::Postgres(target) => {
                let db = target.connect()?;
                postgres::migrate(&db, target)?;
                Ok(db)
            }
        }
    }

    /// Whether a vault is there (the file exists, or the database holds the schema); `false`
    /// also when the server cannot be reached.
    pub fn holds_vault(&self) -> bool {
        match self {
            Location::Sqlite(path) => path.exists(),
            Location::Postgres(target) => target
                .connect()
                .and_then(|db| postgres::has_vault(&db))
                .unwrap_or(false),
        }
    }

    /// Whether this is the PostgreSQL store (whose deleted rows outlive their deletion in dead
    /// tuples, the WAL and base backups: see `vault::retention` for what erasure adds there).
    pub fn is_postgres(&self) -> bool {
        matches!(self, Location::Postgres(_))
    }
}

/// A lock held for as long as the value lives, by one process of all that share the vault:
/// on SQLite an exclusive lock on a file beside the database, on PostgreSQL a session-level
/// advisory lock (released by the server when the holder's connection ends, however it ends).
pub enum RunLock {
    /// The locked file.
    File(std::fs::File),
    /// The connection that holds the advisory lock.
    Postgres(Db),
}

impl Location {
    /// Takes the lock named `name` (`file` on SQLite), or says who holds it.
    pub fn try_lock(
        &self,
        name: &str,
        file: &Path,
    ) -> Result<std::result::Result<RunLock, String>> {
        match self {
            Location::Sqlite(_) => {
                use fs2::FileExt;
                let lock = std::fs::OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(file)
                    .map_err(|e| Error::io(file, e))?;
                Ok(match lock.try_lock_exclusive() {
                    Ok(()) => Ok(RunLock::File(lock)),
                    Err(_) => Err(file.display().to_string()),
                })
            }
            Location::Postgres(target) => {
                let db = target.connect()?;
                let key = format!("cvvault/{name}");
                let taken: bool = db.query_one(
                    "SELECT pg_try_advisory_lock(hashtextextended(?1, 0))",
                    args![key.as_str()],
                    |r| r.get(0),
                )?;
                Ok(if taken {
                    Ok(RunLock::Postgres(db))
                } else {
                    Err(format!("advisory lock \"{key}\" on {target}"))
                })
            }
        }
    }
}

/// Opens a connection with the vault's pragmas.
///
/// - WAL with `synchronous=FULL`: a committed audit entry survives power loss.
/// - `secure_delete=ON`: erased rows are overwritten, not left in free pages.
/// - Never `journal_mode=PERSIST`, which would keep old pages in the journal.
pub fn open_connection(path: &Path, create: bool) -> Result<Db> {
    open_sqlite(path, create, None).map(Db::sqlite)
}

/// Page size of a new database (SQLite's default, set explicitly). Measured against 8 KiB:
/// a sealed profile of about 4 KiB took a whole 8 KiB page (two do not fit in one), so every
/// registration wrote twice its size; at 4 KiB it takes one leaf cell and one overflow page,
/// and a commit writes 40 % fewer bytes (`cargo bench --bench import`).
const PAGE_SIZE: u32 = 4096;

/// WAL size, in pages, at which a commit checkpoints inline on the writer thread: SQLite's
/// default, for the small commits of everyday work (an HTTP request's audit entry).
const INLINE_CHECKPOINT_PAGES: u32 = 1_000;

/// The same threshold after a bulk commit, whose WAL is left to the background checkpointer:
/// a backstop should it fall behind (64 MiB of 4 KiB pages).
const WAL_BACKSTOP_PAGES: u32 = 16_384;

fn open_sqlite(path: &Path, create: bool, page_size: Option<u32>) -> Result<Connection> {
    if !create && !path.exists() {
        return Err(Error::DatabaseMissing {
            path: path.to_path_buf(),
        });
    }
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if create {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    if let Some(size) = page_size {
        // Only takes effect on a new, empty database, before WAL is switched on.
        conn.pragma_update(None, "page_size", size)?;
    }
    require_wal(&conn, path)?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "secure_delete", "ON")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.pragma_update(None, "cache_size", -65_536)?;
    Ok(conn)
}

/// Switches the connection to WAL and checks that SQLite really did: on a filesystem
/// without shared memory or locking it silently stays in rollback-journal mode, where the
/// TRUNCATE checkpoint after an erasure does nothing and erased pages pass through deleted
/// journal files.
fn require_wal(conn: &Connection, path: &Path) -> Result<()> {
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    if mode.eq_ignore_ascii_case("wal") {
        Ok(())
    } else {
        Err(Error::Conflict(format!(
            "SQLite could not put {} in WAL mode (it is in `{mode}` mode), which erasure depends on: keep the data folder on a local filesystem that supports shared memory and file locks",
            path.display()
        )))
    }
}

/// Creates a new database file with the current schema, mode 0600 in a folder of mode
/// 0700 (SQLite gives the WAL and shared-memory files the database file's mode). Refuses an
/// existing file.
pub fn create(path: &Path) -> Result<()> {
    if let Some(dir) = path.parent() {
        crate::files::create_private_dir(dir)?;
    }
    {
        use std::os::unix::fs::OpenOptionsExt;
        // INVARIANT: created here, empty and private, before SQLite opens it; `create_new`
        // refuses an existing file (no check-then-create gap).
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => Error::VaultExists {
                    path: path.to_path_buf(),
                },
                _ => Error::io(path, e),
            })?;
    }
    let db = Db::sqlite(open_sqlite(path, false, Some(PAGE_SIZE))?);
    migrate(&db, None)
}

/// Narrows the database, its WAL and shared-memory files to 0600 and its folder to 0700 where
/// a vault made by an earlier version left them readable by others (the process umask).
pub fn make_private(database: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mut paths = vec![(database.to_path_buf(), 0o600)];
    for suffix in ["-wal", "-shm"] {
        let mut name = database.as_os_str().to_owned();
        name.push(suffix);
        paths.push((PathBuf::from(name), 0o600));
    }
    if let Some(dir) = database.parent().filter(|d| !d.as_os_str().is_empty()) {
        paths.push((dir.to_path_buf(), 0o700));
    }
    for (path, mode) in paths {
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        if meta.permissions().mode() & 0o077 != 0 {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
                .map_err(|e| Error::io(&path, e))?;
            tracing::warn!(path = %path.display(), "narrowed the permissions of a vault file that others could read");
        }
    }
    Ok(())
}

/// Applies every migration newer than `user_version`, each in its own transaction.
/// Migration 4 gives the existing rows their MACs and needs `integrity` for that (a new,
/// empty database does not).
pub fn migrate(db: &Db, integrity: Option<&IntegrityKey>) -> Result<()> {
    migrate_to(db, MIGRATIONS.len(), integrity)
}

/// Applies the migrations up to version `target`.
///
/// Foreign keys are off while a migration runs (SQLite's procedure for rebuilding a table:
/// dropping the old one must not cascade into the rows that refer to it) and are checked
/// before its transaction commits: a migration that would leave a dangling reference is
/// rolled back whole.
fn migrate_to(db: &Db, target: usize, integrity: Option<&IntegrityKey>) -> Result<()> {
    let conn = db
        .as_sqlite()
        .ok_or(Error::Internal("a SQLite migration on another store"))?;
    let applied: usize = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if applied > MIGRATIONS.len() {
        return Err(Error::Conflict(format!(
            "the database is at schema version {applied}, newer than this cvvault ({}): upgrade cvvault",
            MIGRATIONS.len()
        )));
    }
    if applied >= target {
        return Ok(());
    }
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    let result = (|| {
        for (number, sql) in MIGRATIONS.iter().enumerate().take(target).skip(applied) {
            conn.execute_batch("BEGIN")?;
            let applied = migrate_one(db, number, sql, integrity);
            match applied {
                Ok(()) => conn.execute_batch("COMMIT")?,
                Err(e) => {
                    let _ = conn.execute_batch("ROLLBACK");
                    return Err(e);
                }
            }
        }
        Ok(())
    })();
    conn.pragma_update(None, "foreign_keys", "ON")?;
    result
}

/// Applies migration `number` (counted from 0) inside the caller's transaction.
fn migrate_one(db: &Db, number: usize, sql: &str, integrity: Option<&IntegrityKey>) -> Result<()> {
    db.batch(sql)?;
    {
        if number + 1 == MIGRATION_ROW_MACS {
            rows::seal_existing_rows(db, integrity)?;
        }
        if number + 1 == MIGRATION_TOKEN_EXPIRY {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
            rows::expire_legacy_tokens(
                db,
                integrity,
                now.saturating_add(crate::vault::DEFAULT_TOKEN_TTL_SECS),
            )?;
        }
        let dangling: Option<String> =
            db.query_opt("PRAGMA foreign_key_check", args![], |r| r.get(0))?;
        if let Some(table) = dangling {
            return Err(Error::Conflict(format!(
                "schema migration {} would leave a row of table {table} pointing at nothing; nothing was changed: restore the database from a backup or report this",
                number + 1
            )));
        }
        db.batch(&format!("PRAGMA user_version = {}", number + 1))
    }
}

/// A job's view of the group transaction.
pub struct WriteCtx<'a> {
    /// The connection, in the group's transaction: the job's savepoint is set before its first
    /// statement that may change a row.
    pub conn: &'a Db,
    /// The audit appender; entries appended here commit with the job or not at all.
    pub audit: &'a mut Appender,
    /// The MAC key of the rows authorization depends on.
    pub integrity: &'a IntegrityKey,
    bulk: bool,
}

impl WriteCtx<'_> {
    /// Marks the job as a bulk write (an import batch of megabytes): its group's commit
    /// leaves the WAL to the background checkpointer instead of checkpointing inline.
    pub fn mark_bulk(&mut self) {
        self.bulk = true;
    }
}

type Completion = Box<dyn FnOnce(std::result::Result<(), String>) + Send>;
/// A job runs with the group's context, or with `None` when no transaction could be begun.
type Job = Box<dyn FnOnce(Option<&mut WriteCtx<'_>>) -> (bool, Completion) + Send>;

/// The single writer thread, and the thread that checkpoints its WAL.
pub struct Writer {
    sender: Mutex<Option<mpsc::Sender<Job>>>,
    /// The writer, then the checkpointer (which ends when the writer does).
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Writer {
    /// Starts the writer thread on its own connection, and a checkpointer on another.
    ///
    /// A commit appends to the WAL and syncs it. Copying the WAL back into the database file
    /// (a checkpoint) is done inline once the WAL holds [`INLINE_CHECKPOINT_PAGES`], as SQLite
    /// does by default, except after a bulk job ([`WriteCtx::mark_bulk`]): then it is left to
    /// the checkpointer, which copies while the writer goes on with the next batch (SQLite
    /// lets a checkpoint and a writer run at once), with an inline checkpoint at
    /// [`WAL_BACKSTOP_PAGES`] as backstop. Small commits keep SQLite's own behaviour, under
    /// which the HTTP server's latency was measured; inline checkpoints after each import
    /// batch cost the import about a third of its throughput (`cargo bench --bench import`).
    ///
    /// On PostgreSQL there is no checkpointer (the server checkpoints), and every group takes
    /// the trail's head row first ([`audit_rows::lock_head`]): the writers of several nodes
    /// then commit one group after another, and the log has one order.
    pub fn start(
        location: &Location,
        audit: Appender,
        integrity: Arc<IntegrityKey>,
    ) -> Result<Writer> {
        let path = match location {
            Location::Sqlite(path) => path,
            Location::Postgres(target) => {
                let conn = target.connect()?;
                let (sender, receiver) = mpsc::channel::<Job>();
                let (tick, _) = mpsc::sync_channel::<()>(1);
                let name = target.to_string();
                let again = location.clone();
                let writer = std::thread::Builder::new()
                    .name("cvvault-writer".into())
                    .spawn(move || {
                        writer_loop(conn, audit, &integrity, receiver, (name, Some(again)), tick);
                    })
                    .map_err(|e| Error::io(Path::new("cvvault-writer"), e))?;
                return Ok(Writer {
                    sender: Mutex::new(Some(sender)),
                    threads: Mutex::new(vec![writer]),
                });
            }
        };
        let conn = open_connection(path, false)?;
        if let Some(sqlite) = conn.as_sqlite() {
            sqlite.pragma_update(None, "wal_autocheckpoint", INLINE_CHECKPOINT_PAGES)?;
        }
        let checkpoint_conn = open_sqlite(path, false, None)?;
        let (tick, ticks) = mpsc::sync_channel::<()>(1);
        let db_path: PathBuf = path.to_path_buf();
        let checkpointer = std::thread::Builder::new()
            .name("cvvault-checkpoint".into())
            .spawn(move || checkpoint_loop(&checkpoint_conn, &ticks, &db_path))
            .map_err(|e| Error::io(path, e))?;
        let (sender, receiver) = mpsc::channel::<Job>();
        let db_name = path.display().to_string();
        let writer = std::thread::Builder::new()
            .name("cvvault-writer".into())
            .spawn(move || writer_loop(conn, audit, &integrity, receiver, (db_name, None), tick))
            .map_err(|e| Error::io(path, e))?;
        Ok(Writer {
            sender: Mutex::new(Some(sender)),
            threads: Mutex::new(vec![writer, checkpointer]),
        })
    }

    pub(crate) fn submit<T, F>(&self, f: F) -> Result<mpsc::Receiver<Result<T>>>
    where
        F: FnOnce(&mut WriteCtx<'_>) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let (reply, receiver) = mpsc::sync_channel::<Result<T>>(1);
        let job: Job = Box::new(move |ctx| {
            let result = match ctx {
                Some(ctx) => f(ctx),
                None => Err(Error::AuditWrite {
                    reason: "no write transaction could be begun".into(),
                }),
            };
            let ok = result.is_ok();
            let completion: Completion = Box::new(move |commit| {
                let delivered = match commit {
                    Ok(()) => result,
                    Err(reason) if ok => Err(Error::AuditWrite { reason }),
                    Err(_) => result,
                };
                // The caller may have gone away (a dropped HTTP request); nothing to do then.
                let _ = reply.send(delivered);
            });
            (ok, completion)
        });
        let guard = self.sender.lock().map_err(|_| stopped())?;
        guard
            .as_ref()
            .ok_or_else(stopped)?
            .send(job)
            .map_err(|_| stopped())?;
        Ok(receiver)
    }

    /// Runs `f` in the group transaction and waits until it has committed (or not).
    pub fn write<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce(&mut WriteCtx<'_>) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let receiver = self.submit(f)?;
        receiver.recv().map_err(|_| stopped())?
    }

    /// Stops the threads after the queued jobs have committed.
    pub fn shutdown(&self) {
        if let Ok(mut sender) = self.sender.lock() {
            sender.take();
        }
        if let Ok(mut threads) = self.threads.lock() {
            // In order: the writer's end drops the checkpointer's tick sender.
            for handle in threads.drain(..) {
                let _ = handle.join();
            }
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn stopped() -> Error {
    Error::AuditWrite {
        reason: "the writer has stopped".into(),
    }
}

/// The writer thread. `(name, reconnect)`: the store's name for logs, and where to connect
/// again when the connection was lost (PostgreSQL: a server restart or failover); the jobs of a
/// group that finds no connection fail, and are told so, until one is made.
fn writer_loop(
    mut conn: Db,
    mut audit: Appender,
    integrity: &IntegrityKey,
    receiver: mpsc::Receiver<Job>,
    (name, reconnect): (String, Option<Location>),
    checkpoint: mpsc::SyncSender<()>,
) {
    while let Ok(first) = receiver.recv() {
        reconnect_if_broken(&mut conn, &mut audit, &name, reconnect.as_ref());
        let mut batch = vec![first];
        while batch.len() < MAX_GROUP {
            match receiver.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        // INVARIANT: the appender's tree edge matches the log before any job appends; another
        // process (or node) may have appended since our last group: `sync` takes the head (on
        // SQLite the transaction holds the write lock already) and reloads the edge.
        let begin =
            |conn: &Db, audit: &mut Appender| conn.begin_write().and_then(|()| audit.sync(conn));
        let mut begun = begin(&conn, &mut audit);
        if begun.is_err() && conn.is_broken() && reconnect.is_some() {
            // The server closed the connection since the last group (a restart, a failover):
            // no job has run yet, so the group begins again on a new connection.
            reconnect_if_broken(&mut conn, &mut audit, &name, reconnect.as_ref());
            begun = begin(&conn, &mut audit);
        }
        let (completions, bulk) = run_group(&conn, &mut audit, integrity, batch, begun);
        let outcome = match completions.1 {
            Ok(()) => Ok(()),
            Err(e) => {
                tracing::error!(db = %name, error = %e, "group commit failed; nothing was written");
                if let Err(reload) = audit.reload(&conn) {
                    tracing::error!(error = %reload, "audit state could not be reloaded");
                }
                Err(e.to_string())
            }
        };
        if outcome.is_ok() && bulk {
            // Full means a checkpoint is already due, which will cover this commit too.
            let _ = checkpoint.try_send(());
        }
        for (completion, failed) in completions.0 {
            // A job whose savepoint could not be released must not be told it succeeded.
            completion(failed.map_or_else(|| outcome.clone(), Err));
        }
    }
}

/// Replaces the writer's connection with a new one when the server closed it (PostgreSQL: a
/// restart or failover), and reloads the trail's edge from what committed.
fn reconnect_if_broken(
    conn: &mut Db,
    audit: &mut Appender,
    name: &str,
    reconnect: Option<&Location>,
) {
    let (true, Some(location)) = (conn.is_broken(), reconnect) else {
        return;
    };
    match location.open() {
        Ok(fresh) => {
            *conn = fresh;
            tracing::warn!(db = %name, "the writer's connection was lost and is made again");
            // Whatever the lost connection's last group did, the log says what committed:
            // the appender starts from there.
            if let Err(e) = audit.reload(conn) {
                tracing::error!(error = %e, "audit state could not be reloaded");
            }
        }
        Err(e) => {
            tracing::error!(db = %name, error = %e, "the writer cannot reach the database; this group fails")
        }
    }
}

/// Least time from the start of one background checkpoint to the start of the next, so that
/// one checkpoint covers several commits when they come quickly.
const CHECKPOINT_SPACING: std::time::Duration = std::time::Duration::from_millis(50);

/// Copies committed WAL frames into the database file after bulk commits, at most once per
/// [`CHECKPOINT_SPACING`]. PASSIVE never waits for readers or the writer: it copies what it
/// can and the next run goes on from there.
fn checkpoint_loop(conn: &Connection, ticks: &mpsc::Receiver<()>, path: &Path) {
    while ticks.recv().is_ok() {
        let started = std::time::Instant::now();
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(0))
        {
            tracing::warn!(db = %path.display(), error = %e, "background WAL checkpoint failed; the writer checkpoints by itself once the WAL reaches its limit");
        }
        // Commits made meanwhile leave a tick waiting; they are covered by the next run.
        if let Some(rest) = CHECKPOINT_SPACING.checked_sub(started.elapsed()) {
            std::thread::sleep(rest);
        }
    }
}

/// The jobs' completions with the group's outcome, and whether a job was a bulk write.
type GroupResult = ((Vec<(Completion, Option<String>)>, Result<()>), bool);

/// Runs the jobs of a group in the write transaction `begun` says was begun (and the
/// appender synced), then commits.
fn run_group(
    conn: &Db,
    audit: &mut Appender,
    integrity: &IntegrityKey,
    batch: Vec<Job>,
    begun: Result<()>,
) -> GroupResult {
    let mut completions = Vec::with_capacity(batch.len());
    if let Err(e) = begun {
        if conn.in_transaction() {
            let _ = conn.rollback();
        }
        for job in batch {
            completions.push((job(None).1, None));
        }
        return ((completions, Err(e)), false);
    }
    let mut bulk = false;
    // Each job runs inside a savepoint of its own, named `job`, set just before the job's
    // first change (`Db::job_begins`): a job that fails is rolled back to it, one that
    // succeeds releases it. A job that only reads and appends entries (an extract) needs none:
    // its entries wait in the appender, whose snapshot undoes them, until the group persists.
    let mut jobs = batch.into_iter();
    while let Some(job) = jobs.next() {
        let snapshot = audit.snapshot();
        conn.job_begins();
        let mut ctx = WriteCtx {
            conn,
            audit,
            integrity,
            bulk: false,
        };
        let (ok, completion) = job(Some(&mut ctx));
        bulk |= ctx.bulk && ok;
        let end = conn.job_ends();
        let aborted = end.failed_unguarded && conn.dialect() == Dialect::Postgres;
        if aborted || !conn.in_transaction() {
            // A statement failed with no savepoint to go back to and PostgreSQL has aborted
            // the transaction, or the engine ended it on its own (SQLite rolls back after an
            // I/O error or a full disk): the group fails whole and nothing of it is written.
            let e = Error::AuditWrite {
                reason: if aborted {
                    "a statement failed in the group's transaction".into()
                } else {
                    "the database ended the group's transaction".into()
                },
            };
            audit.restore(snapshot);
            completions.push((completion, Some(e.to_string())));
            return fail_group(conn, audit, completions, jobs, e);
        }
        let released = match (ok, end.savepoint) {
            (true, true) => conn
                .batch("RELEASE SAVEPOINT job")
                .map_err(|e| e.to_string()),
            (true, false) => Ok(()),
            (false, _) => Err(String::new()),
        };
        if released.is_err() {
            // The job's changes, audit entries included, are undone; the appender follows.
            let undone = if end.savepoint {
                conn.batch("ROLLBACK TO SAVEPOINT job; RELEASE SAVEPOINT job")
            } else {
                Ok(())
            };
            audit.restore(snapshot);
            if let Err(e) = undone {
                // The group can no longer be trusted: fail it whole.
                completions.push((completion, Some(e.to_string())));
                return fail_group(conn, audit, completions, jobs, e);
            }
        }
        // A job that succeeded but whose savepoint could not be released failed after all.
        let failed = if ok { released.err() } else { None };
        completions.push((completion, failed));
    }
    let threshold = if bulk {
        WAL_BACKSTOP_PAGES
    } else {
        INLINE_CHECKPOINT_PAGES
    };
    let result = audit
        .persist(conn)
        .and_then(|()| match conn.as_sqlite() {
            Some(sqlite) => sqlite
                .pragma_update(None, "wal_autocheckpoint", threshold)
                .map_err(Error::from),
            None => Ok(()),
        })
        .and_then(|()| conn.commit());
    if result.is_err() && conn.in_transaction() {
        let _ = conn.rollback();
    }
    if result.is_ok() {
        audit.committed();
    }
    ((completions, result), bulk)
}

/// Rolls a group back whole after `error`: the jobs not yet run are told of it without
/// running, and the appender reloads what committed.
fn fail_group(
    conn: &Db,
    audit: &mut Appender,
    mut completions: Vec<(Completion, Option<String>)>,
    rest: impl Iterator<Item = Job>,
    error: Error,
) -> GroupResult {
    if conn.in_transaction() {
        let _ = conn.rollback();
    }
    let _ = audit.reload(conn);
    for job in rest {
        completions.push((job(None).1, None));
    }
    ((completions, Err(error)), false)
}

/// Most PostgreSQL connections a node's readers keep open. Every node has its own, and the
/// server's `max_connections` (100 by default) must cover them all, with the writers and the
/// operators' commands; a read that finds them all busy waits for one.
const MAX_PG_READERS: usize = 32;

/// Read connections for queries that change nothing (WAL readers do not block the writer;
/// PostgreSQL readers see a snapshot and block no one either).
pub struct Readers {
    location: Location,
    /// Most PostgreSQL connections this pool opens at once.
    limit: usize,
    idle: Mutex<Vec<Db>>,
    /// PostgreSQL connections open (idle or lent), and the signal that one came back.
    open: Mutex<usize>,
    returned: std::sync::Condvar,
}

impl Readers {
    /// A pool over the store at `location`.
    pub fn new(location: &Location) -> Readers {
        Readers::bounded(location, MAX_PG_READERS)
    }

    /// A pool over the store at `location` that opens at most `limit` PostgreSQL connections.
    pub fn bounded(location: &Location, limit: usize) -> Readers {
        Readers {
            location: location.clone(),
            limit: limit.max(1),
            idle: Mutex::new(Vec::new()),
            open: Mutex::new(0),
            returned: std::sync::Condvar::new(),
        }
    }

    /// Runs `f` with a read connection, in one read transaction: every statement of `f` sees
    /// the same snapshot (on SQLite, the connection's page cache is also revalidated against
    /// the WAL once per call rather than once per statement). A pooled connection the server
    /// closed (a restart, a failover) is found when the transaction begins, before `f` runs:
    /// the pool then connects again, and `f` runs once, on the new connection.
    pub fn read<T>(&self, f: impl FnOnce(&Db) -> Result<T>) -> Result<T> {
        let conn = self.take_begun()?;
        let result = f(&conn);
        // A read transaction changes nothing: ending it cannot lose work.
        let ended = conn.commit();
        self.give_back(conn);
        let value = result?;
        ended?;
        Ok(value)
    }

    /// Runs `f` with a pooled connection outside any transaction: each statement of `f`
    /// commits on its own. When `f` fails on a connection the server closed, it runs once
    /// more on a new one: it must be one statement whose repetition is harmless (a read; or
    /// the quota's count, which at worst counts an attempt twice: stricter, not looser).
    pub fn autocommit<T>(&self, mut f: impl FnMut(&Db) -> Result<T>) -> Result<T> {
        let conn = self.take()?;
        let result = f(&conn);
        if result.is_err() && conn.is_broken() {
            self.reconnecting(conn);
            let conn = self.take()?;
            let result = f(&conn);
            self.give_back(conn);
            return result;
        }
        self.give_back(conn);
        result
    }

    /// A connection inside a new read transaction; one the server closed is replaced once.
    fn take_begun(&self) -> Result<Db> {
        let conn = self.take()?;
        match conn.begin_read() {
            Ok(()) => return Ok(conn),
            Err(e) if !conn.is_broken() => {
                self.give_back(conn);
                return Err(e);
            }
            Err(_) => self.reconnecting(conn),
        }
        let conn = self.take()?;
        match conn.begin_read() {
            Ok(()) => Ok(conn),
            Err(e) => {
                self.give_back(conn);
                Err(e)
            }
        }
    }

    /// `closed` was closed by the server, and with it, most likely, every connection kept
    /// idle: they are all dropped, and the next call connects again.
    fn reconnecting(&self, closed: Db) {
        tracing::warn!(db = %self.location, "a pooled connection was closed by the server; the pool connects again");
        self.give_back(closed);
        self.drop_idle();
    }

    /// `PRAGMA wal_checkpoint(TRUNCATE)` on a read connection outside any transaction: moves
    /// committed pages into the database file and empties the WAL. Returns whether it was
    /// busy (another connection still reads part of the WAL, so it did not complete). On
    /// PostgreSQL there is no such step (see `vault::retention` for its erasure).
    pub fn checkpoint_truncate(&self) -> Result<bool> {
        if self.location.is_postgres() {
            return Ok(false);
        }
        self.with_connection(|conn| {
            let busy: i64 =
                conn.query_one("PRAGMA wal_checkpoint(TRUNCATE)", args![], |r| r.get(0))?;
            Ok(busy != 0)
        })
    }

    fn take(&self) -> Result<Db> {
        if let Some(conn) = self.idle.lock().ok().and_then(|mut idle| idle.pop()) {
            return Ok(conn);
        }
        if !self.location.is_postgres() {
            return self.location.open();
        }
        let mut open = self.open.lock().map_err(|_| poisoned())?;
        loop {
            if let Some(conn) = self.idle.lock().ok().and_then(|mut idle| idle.pop()) {
                return Ok(conn);
            }
            if *open < self.limit {
                *open += 1;
                drop(open);
                return self.location.open().inspect_err(|_| self.forget_one());
            }
            open = self
                .returned
                .wait_timeout(open, std::time::Duration::from_millis(50))
                .map_err(|_| poisoned())?
                .0;
        }
    }

    fn forget_one(&self) {
        if let Ok(mut open) = self.open.lock() {
            *open = open.saturating_sub(1);
        }
        self.returned.notify_one();
    }

    fn with_connection<T>(&self, f: impl FnOnce(&Db) -> Result<T>) -> Result<T> {
        let conn = self.take()?;
        let result = f(&conn);
        self.give_back(conn);
        result
    }

    /// Keeps `conn` for the next call, unless it is in a transaction or closed.
    fn give_back(&self, conn: Db) {
        // INVARIANT: only a connection outside any transaction goes back to the pool.
        let reusable = !conn.in_transaction() && !conn.is_broken();
        let kept = reusable
            && self.idle.lock().is_ok_and(|mut idle| {
                if idle.len() < MAX_IDLE_READERS {
                    idle.push(conn);
                    true
                } else {
                    false
                }
            });
        if self.location.is_postgres() {
            if kept {
                self.returned.notify_one();
            } else {
                self.forget_one();
            }
        }
    }

    /// Drops every idle connection.
    fn drop_idle(&self) {
        let dropped = self
            .idle
            .lock()
            .map(|mut idle| std::mem::take(&mut *idle))
            .unwrap_or_default();
        if self.location.is_postgres() {
            for _ in &dropped {
                self.forget_one();
            }
        }
    }
}

fn poisoned() -> Error {
    Error::Internal("the read pool's lock was poisoned by a panic")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

    use super::*;
    use crate::ids::CandidateId;

    fn test_key() -> IntegrityKey {
        IntegrityKey::new(&[5; 32])
    }

    /// The query plan's details, one line per step, with every parameter bound to `value`.
    fn plan(conn: &Connection, sql: &str) -> String {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let value = "hmac-sha256:0123456789abcdef";
        let params = vec![value; stmt.parameter_count()];
        let rows = stmt
            .query_map(rusqlite::params_from_iter(params), |r| {
                r.get::<_, String>(3)
            })
            .unwrap();
        rows.map(|r| r.unwrap()).collect::<Vec<_>>().join("\n")
    }

    /// A version-1 database holding one candidate with a key slot, an open assignment and an
    /// audit entry about it.
    fn version_1(dir: &Path) -> (Db, CandidateId, String) {
        let db = Db::sqlite(open_sqlite(&dir.join("v1.db"), true, Some(PAGE_SIZE)).unwrap());
        migrate_to(&db, 1, None).unwrap();
        let conn = db.as_sqlite().unwrap();
        let id = CandidateId::random();
        let pseudonym = format!("hmac-sha256:{}", "ab".repeat(32));
        conn.execute_batch("BEGIN").unwrap();
        conn.execute(
            "INSERT INTO candidate_keys (candidate_id, kek_version, wrapped_dek, dek_commitment)
             VALUES (?1, 1, x'01', x'02')",
            [&id.as_bytes()[..]],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO candidates (candidate_id, key_id, created_at, open_assignments, ever_assigned, legal_hold, legal_hold_reason)
             VALUES (?1, 1, 100, 1, 1, 1, 'case 7')",
            [&id.as_bytes()[..]],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO assignments (assignment_id, candidate_id, org_id, kind, purpose, opened_at, opened_by)
             VALUES (?1, ?2, 'org', 'matching', 'matching', 100, 'cw')",
            [&[7u8; 16][..], &id.as_bytes()[..]],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO audit_entries (entry_index, entry, entry_mac, candidate_hmac) VALUES (0, '{}', x'00', ?1)",
            [&pseudonym],
        )
        .unwrap();
        let mut edge = crate::audit::merkle::Frontier::new();
        edge.push(crate::audit::merkle::leaf_hash(b"{}")).unwrap();
        conn.execute(
            "UPDATE audit_frontier SET frontier = ?1 WHERE id = 1",
            [edge.to_bytes()],
        )
        .unwrap();
        conn.execute_batch("COMMIT").unwrap();
        (db, id, pseudonym)
    }

    #[test]
    fn migration_2_keeps_every_candidate_row_and_the_assignments_that_refer_to_them() {
        let dir = tempfile::tempdir().unwrap();
        let (db, id, pseudonym) = version_1(dir.path());
        let conn = db.as_sqlite().unwrap();
        migrate(&db, Some(&test_key())).unwrap();
        let version: usize = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, MIGRATIONS.len());

        let keys = rows::candidate_keys(&db, &test_key(), &id)
            .unwrap()
            .expect("the candidate is kept");
        assert!(keys.legal_hold);
        let row: (i64, i64, i64, Option<i64>, String, i64) = conn
            .query_row(
                "SELECT key_id, open_assignments, ever_assigned, idle_since, legal_hold_reason, created_at
                 FROM candidates WHERE candidate_id = ?1",
                [&id.as_bytes()[..]],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)),
            )
            .unwrap();
        assert_eq!(row, (1, 1, 1, None, "case 7".to_owned(), 100));
        assert_eq!(
            rows::assignments_of(
                &db,
                &test_key(),
                &crate::policy::Allowed::for_tests(crate::policy::Action::SubjectAccess, Some(id))
            )
            .unwrap()
            .len(),
            1,
            "migration 4 signed the assignment"
        );
        let found: Vec<String> = conn
            .prepare(audit_rows::SEARCH_SQL)
            .unwrap()
            .query_map([&pseudonym], |r| r.get(0))
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        assert_eq!(
            found,
            ["{}"],
            "the audit search still finds the candidate's entries"
        );

        // Foreign keys are on again, and the assignment now refers to the new table.
        let on: i64 = conn
            .pragma_query_value(None, "foreign_keys", |r| r.get(0))
            .unwrap();
        assert_eq!(on, 1);
        let erase = crate::policy::Allowed::for_tests(crate::policy::Action::Erase, Some(id));
        assert!(matches!(
            rows::set_legal_hold(
                &db,
                &test_key(),
                &crate::policy::Allowed::for_tests(crate::policy::Action::ReleaseHold, Some(id)),
                None
            )
            .unwrap(),
            rows::HoldChange::Changed { .. }
        ));
        assert_eq!(
            rows::erase_candidate(&db, &test_key(), &erase, rows::EraseCondition::NotHeld).unwrap(),
            rows::Erasure::Erased
        );
        let left: i64 = conn
            .query_row("SELECT count(*) FROM assignments", [], |r| r.get(0))
            .unwrap();
        assert_eq!(left, 0, "erasing the candidate cascades to its assignments");
    }

    #[test]
    fn an_erasure_rechecks_the_hold_and_the_rule_in_its_own_transaction() {
        // Before: retention and `erase` read the hold outside the erasing transaction, and a
        // hold placed in between was acknowledged and then ignored.
        let dir = tempfile::tempdir().unwrap();
        let (db, id, _) = version_1(dir.path());
        let key = test_key();
        migrate(&db, Some(&key)).unwrap();
        use crate::policy::{Action, Allowed};
        let erase = Allowed::for_tests(Action::Erase, Some(id));
        let retention = Allowed::for_tests(Action::RetentionErase, Some(id));
        let proof = |condition: rows::EraseCondition| match condition {
            rows::EraseCondition::NotHeld => &erase,
            rows::EraseCondition::Due { .. } => &retention,
        };
        // A proof of another action, or of another candidate's erasure, erases nothing.
        assert!(matches!(
            rows::erase_candidate(&db, &key, &retention, rows::EraseCondition::NotHeld),
            Err(Error::Internal(_))
        ));
        // Held (the fixture's candidate has a hold and an open assignment).
        for condition in [
            rows::EraseCondition::NotHeld,
            rows::EraseCondition::Due {
                rule: crate::vault::retention::Rule::MaxLife,
                cutoff: i64::MAX,
            },
        ] {
            assert_eq!(
                rows::erase_candidate(&db, &key, proof(condition), condition).unwrap(),
                rows::Erasure::Held
            );
        }
        let release = Allowed::for_tests(Action::ReleaseHold, Some(id));
        assert_eq!(
            rows::set_legal_hold(&db, &key, &release, None).unwrap(),
            rows::HoldChange::Changed {
                previous_ground: Some("case 7".into())
            }
        );
        // Nothing stands now: a second release changes nothing.
        assert_eq!(
            rows::set_legal_hold(&db, &key, &release, None).unwrap(),
            rows::HoldChange::NotHeld
        );
        // Not due any more: an open assignment, whatever the index said.
        let idle = rows::EraseCondition::Due {
            rule: crate::vault::retention::Rule::MaxIdle,
            cutoff: i64::MAX,
        };
        assert_eq!(
            rows::erase_candidate(&db, &key, &retention, idle).unwrap(),
            rows::Erasure::NotDue
        );
        assert!(rows::candidate_keys(&db, &key, &id).unwrap().is_some());
        // Under another key the row is forged, and nothing is erased.
        let other = IntegrityKey::new(&[6; 32]);
        assert!(matches!(
            rows::erase_candidate(&db, &other, &erase, rows::EraseCondition::NotHeld),
            Err(Error::Forged { .. })
        ));
        assert_eq!(
            rows::erase_candidate(&db, &key, &erase, rows::EraseCondition::NotHeld).unwrap(),
            rows::Erasure::Erased
        );
        assert_eq!(
            rows::erase_candidate(&db, &key, &erase, rows::EraseCondition::NotHeld).unwrap(),
            rows::Erasure::Gone
        );
    }

    #[test]
    fn migration_4_refuses_to_sign_a_frontier_that_is_not_the_entries_edge() {
        let dir = tempfile::tempdir().unwrap();
        let (db, _, _) = version_1(dir.path());
        let conn = db.as_sqlite().unwrap();
        migrate_to(&db, 3, None).unwrap();
        conn.execute(
            "UPDATE audit_frontier SET frontier = x'01' WHERE id = 1",
            [],
        )
        .unwrap();
        let refused = migrate(&db, Some(&test_key())).unwrap_err();
        assert!(matches!(refused, Error::AuditTampered(_)), "{refused}");
        let version: usize = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, 3, "nothing was changed");
    }

    #[test]
    fn wal_mode_is_required_not_assumed() {
        // An in-memory database cannot be in WAL mode: the same refusal a filesystem without
        // shared memory gets, where SQLite silently keeps a rollback journal.
        let conn = Connection::open_in_memory().unwrap();
        let refused = require_wal(&conn, Path::new(":memory:")).unwrap_err();
        assert!(refused.to_string().contains("WAL mode"), "{refused}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wal.db");
        create(&path).unwrap();
        let db = open_connection(&path, false).unwrap();
        let conn = db.as_sqlite().unwrap();
        let mode: String = conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let secure: i64 = conn
            .pragma_query_value(None, "secure_delete", |r| r.get(0))
            .unwrap();
        assert_eq!(secure, 1, "erased rows are overwritten");
        let sync: i64 = conn
            .pragma_query_value(None, "synchronous", |r| r.get(0))
            .unwrap();
        assert_eq!(sync, 2, "synchronous=FULL");
    }

    #[test]
    fn lookups_and_searches_use_their_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let (db, _, _) = version_1(dir.path());
        let conn = db.as_sqlite().unwrap();
        migrate(&db, Some(&test_key())).unwrap();
        let by_id = plan(
            conn,
            "SELECT key_id FROM candidates WHERE candidate_id = x'00'",
        );
        assert!(
            by_id.contains("INDEX sqlite_autoindex_candidates"),
            "{by_id}"
        );
        let search = plan(conn, audit_rows::SEARCH_SQL);
        assert!(
            search.contains("SEARCH a USING INDEX audit_by_candidate (<expr>=? AND <expr>=?)"),
            "one lookup per bucket, on both keys: {search}"
        );
        assert!(!search.contains("SCAN a"), "{search}");
        let idle = plan(
            conn,
            "SELECT candidate_id FROM candidates INDEXED BY candidates_by_idle
             WHERE idle_since IS NOT NULL AND idle_since <= 5",
        );
        assert!(idle.contains("INDEX candidates_by_idle"), "{idle}");
    }

    #[test]
    fn a_search_finds_a_candidates_entries_in_every_bucket_in_order_and_no_others() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("search.db");
        create(&path).unwrap();
        let db = open_connection(&path, false).unwrap();
        let conn = db.as_sqlite().unwrap();
        let wanted = format!("hmac-sha256:{}", "ab".repeat(32));
        // Same 16 digits the index holds, different pseudonym: found by the lookup, then
        // dropped by the comparison of the whole pseudonym.
        let lookalike = format!("hmac-sha256:{}{}", "ab".repeat(8), "cd".repeat(24));
        let other = format!("hmac-sha256:{}", "ef".repeat(32));
        let mut expected = Vec::new();
        for index in [0i64, 1, 4_095, 4_096, 4_097, 8_191, 20_000, 20_001] {
            let pseudonym = match index % 3 {
                0 => &wanted,
                1 => &lookalike,
                _ => &other,
            };
            let entry = format!("{{\"index\":{index}}}");
            if pseudonym == &wanted {
                expected.push(entry.clone());
            }
            conn.execute(
                "INSERT INTO audit_entries (entry_index, entry, entry_mac, candidate_hmac) VALUES (?1, ?2, x'00', ?3)",
                rusqlite::params![index, entry, pseudonym],
            )
            .unwrap();
        }
        let found: Vec<String> = conn
            .prepare(audit_rows::SEARCH_SQL)
            .unwrap()
            .query_map([&wanted], |r| r.get(0))
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        assert_eq!(found, expected);
        assert_eq!(
            expected.len(),
            3,
            "entries in the first, second and fifth bucket"
        );
    }

    /// A fresh PostgreSQL database for one test, dropped when the guard goes; `None` when
    /// `CVVAULT_TEST_POSTGRES` (an admin URL) is not set.
    struct TestPostgres {
        admin: String,
        name: String,
        location: Location,
    }

    impl Drop for TestPostgres {
        fn drop(&mut self) {
            if let Ok(mut client) = ::postgres::Client::connect(&self.admin, ::postgres::NoTls) {
                let name = &self.name;
                let _ = client
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .or_else(|_| client.batch_execute(&format!("DROP DATABASE IF EXISTS {name}")));
            }
        }
    }

    fn test_postgres() -> Option<TestPostgres> {
        let admin = std::env::var("CVVAULT_TEST_POSTGRES").ok()?;
        let name = format!("cvvault_unit_{}", uuid::Uuid::new_v4().simple());
        let mut client = ::postgres::Client::connect(&admin, ::postgres::NoTls).unwrap();
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        let base = admin
            .rsplit_once('/')
            .map_or(admin.as_str(), |(base, _)| base);
        let target = crate::paths::PgTarget::parse(&format!("{base}/{name}")).unwrap();
        Some(TestPostgres {
            admin,
            name,
            location: Location::Postgres(target),
        })
    }

    #[test]
    fn a_job_that_fails_inside_a_group_is_undone_alone_and_the_trail_has_no_gap() {
        let dir = tempfile::tempdir().unwrap();
        let location = Location::Sqlite(dir.path().join("vault.db"));
        jobs_fail_alone(&location);
    }

    #[test]
    fn on_postgresql_a_job_that_fails_inside_a_group_is_undone_alone() {
        if let Some(database) = test_postgres() {
            jobs_fail_alone(&database.location);
        }
    }

    /// A job's savepoint is set before its first change; a failed job is rolled back to it,
    /// and a job that changed nothing has only its appended entries undone.
    fn jobs_fail_alone(location: &Location) {
        use crate::audit::entry::Outcome;
        use crate::audit::log::{Actor, Pseudonymizer, Record};
        location.create().unwrap();
        let conn = location.open_migrated(Some(&test_key())).unwrap();
        let integrity = test_key();
        let mut audit = Appender::load(
            &conn,
            Pseudonymizer::new(&[7; 32]),
            Arc::new(test_key()),
            [0; 32],
            Arc::new(crate::clock::SystemClock),
        )
        .unwrap();
        let told: Arc<Mutex<Vec<(&'static str, bool)>>> = Arc::default();
        let job = |name: &'static str, fails: bool| -> Job {
            let told = told.clone();
            Box::new(move |ctx: Option<&mut WriteCtx<'_>>| {
                let completion: Completion =
                    Box::new(move |outcome| told.lock().unwrap().push((name, outcome.is_ok())));
                // Not run: the group failed before it.
                let Some(ctx) = ctx else {
                    return (false, completion);
                };
                // A job named "entry-only..." changes no row: it reads and appends an entry,
                // as an extract does, and runs without a savepoint.
                if !name.starts_with("entry-only") {
                    ctx.conn
                        .execute(
                            "INSERT INTO vault_meta (key, value) VALUES (?1, 'written')",
                            args![name],
                        )
                        .unwrap();
                }
                let _: i64 = ctx
                    .conn
                    .query_one("SELECT count(*) FROM vault_meta", args![], |r| r.get(0))
                    .unwrap();
                let actor = Actor {
                    id: "operator".into(),
                    role: "operator".into(),
                    org: None,
                };
                let record = Record::new("test", &actor, Outcome::Allow, name);
                ctx.audit.append(record).unwrap();
                if name.contains("persists") {
                    // As a checkpoint does: the entries so far, of the jobs before too, are
                    // written inside this job's savepoint (its first change sets it).
                    ctx.audit.persist(ctx.conn).unwrap();
                }
                (!fails, completion)
            })
        };
        // Runs a group that may fail and tells each job what became of it, as the writer does.
        let group_told = |jobs: Vec<Job>, audit: &mut Appender| -> Result<()> {
            let begun = conn.begin_write().and_then(|()| audit.sync(&conn));
            let ((completions, result), _) = run_group(&conn, audit, &integrity, jobs, begun);
            for (completion, failed) in completions {
                completion(failed.map_or_else(
                    || result.as_ref().map(|_| ()).map_err(|e| e.to_string()),
                    Err,
                ));
            }
            result
        };
        let group = |jobs: Vec<Job>, audit: &mut Appender| {
            let begun = conn.begin_write().and_then(|()| audit.sync(&conn));
            let ((completions, result), _) = run_group(&conn, audit, &integrity, jobs, begun);
            result.unwrap();
            for (completion, failed) in completions {
                assert_eq!(failed, None, "no savepoint failed");
                completion(Ok(()));
            }
        };
        group(
            vec![
                job("first", false),
                job("fails", true),
                job("entry-only-fails", true),
                job("third", false),
                job("entry-only", false),
                job("entry-only-persists-fails", true),
                job("last-fails", true),
            ],
            &mut audit,
        );
        let written = |key: &str| {
            conn.query_opt(
                "SELECT value FROM vault_meta WHERE key = ?1",
                args![key],
                |r| r.get::<String>(0),
            )
            .unwrap()
            .is_some()
        };
        assert!(written("first") && written("third"));
        assert!(!written("fails") && !written("last-fails"), "undone");
        let entries = |conn: &Db| -> Vec<i64> {
            conn.query_all(
                "SELECT entry_index FROM audit_entries ORDER BY entry_index",
                args![],
                |r| r.get(0),
            )
            .unwrap()
        };
        assert_eq!(
            entries(&conn),
            vec![0, 1, 2],
            "the failed jobs' entries are gone, no gap, and those a failed job wrote for the \
             jobs before it are written again"
        );
        let texts: Vec<String> = conn
            .query_all(
                "SELECT entry FROM audit_entries ORDER BY entry_index",
                args![],
                |r| r.get(0),
            )
            .unwrap();
        for (text, name) in texts.iter().zip(["first", "third", "entry-only"]) {
            assert!(
                text.contains(&format!("\"request_id\":\"{name}\"")),
                "{text}"
            );
        }
        // The appender followed: its edge matches the entries, and the next group goes on.
        audit.reload(&conn).unwrap();
        group(vec![job("next", false)], &mut audit);
        assert_eq!(entries(&conn), vec![0, 1, 2, 3]);
        assert!(written("next"));
        assert_eq!(told.lock().unwrap().len(), 8, "every job was told");

        // A statement that fails before its job set a savepoint (a read of a table that is not
        // there): on SQLite the job alone fails; on PostgreSQL the failure aborted the
        // transaction, so the whole group fails and nothing of it is written.
        let failing_read: Job = Box::new(|ctx: Option<&mut WriteCtx<'_>>| {
            let ctx = ctx.expect("the group's transaction began");
            let read = ctx
                .conn
                .query_one("SELECT count(*) FROM no_such_table", args![], |r| {
                    r.get::<i64>(0)
                });
            let completion: Completion = Box::new(|_| {});
            (read.is_ok(), completion)
        });
        let before = entries(&conn);
        let result = group_told(
            vec![
                job("beside-a-failed-read", false),
                failing_read,
                job("after-a-failed-read", false),
            ],
            &mut audit,
        );
        assert!(!conn.in_transaction());
        let sqlite = conn.dialect() == Dialect::Sqlite;
        if sqlite {
            result.unwrap();
            assert!(written("beside-a-failed-read") && written("after-a-failed-read"));
            assert_eq!(entries(&conn).len(), before.len() + 2);
        } else {
            assert!(result.is_err(), "the group failed whole");
            assert!(!written("beside-a-failed-read") && !written("after-a-failed-read"));
            assert_eq!(entries(&conn), before);
        }
        let told_now = told.lock().unwrap().clone();
        assert_eq!(
            told_now.get(told_now.len() - 2..),
            Some(
                &[
                    ("beside-a-failed-read", sqlite),
                    ("after-a-failed-read", sqlite)
                ][..]
            ),
            "the jobs before and after the failed read were told their group's outcome"
        );
        audit.reload(&conn).unwrap();
        group(vec![job("after", false)], &mut audit);
        assert!(written("after"));

        if sqlite {
            // SQLite ends the transaction on its own when a statement meets an I/O error or a
            // full disk (here a job that has set no savepoint ends it, as a failed read would):
            // the jobs after it must not go on in autocommit, each committing at once without
            // its entry. The group fails whole.
            let ends_transaction: Job = Box::new(|ctx: Option<&mut WriteCtx<'_>>| {
                let ctx = ctx.expect("the group's transaction began");
                let sqlite = ctx.conn.as_sqlite().expect("a SQLite connection");
                sqlite.execute_batch("ROLLBACK").unwrap();
                let completion: Completion = Box::new(|_| {});
                (false, completion)
            });
            let before = entries(&conn);
            let result = group_told(
                vec![
                    job("before-the-end", false),
                    ends_transaction,
                    job("after-the-end", false),
                ],
                &mut audit,
            );
            assert!(result.is_err(), "the group failed whole");
            assert!(!written("before-the-end") && !written("after-the-end"));
            assert_eq!(entries(&conn), before, "no entry was written");
            let told_now = told.lock().unwrap().clone();
            assert_eq!(
                told_now.get(told_now.len() - 2..),
                Some(&[("before-the-end", false), ("after-the-end", false)][..])
            );
            group(vec![job("after-the-failed-group", false)], &mut audit);
            assert!(written("after-the-failed-group"));
            assert_eq!(entries(&conn).len(), before.len() + 1);
        }
    }

    #[test]
    fn a_new_database_is_at_the_latest_version_with_4_kib_pages() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new.db");
        create(&path).unwrap();
        let db = open_connection(&path, false).unwrap();
        let conn = db.as_sqlite().unwrap();
        let version: usize = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, MIGRATIONS.len());
        let page: u32 = conn
            .pragma_query_value(None, "page_size", |r| r.get(0))
            .unwrap();
        assert_eq!(page, PAGE_SIZE);
    }
}
