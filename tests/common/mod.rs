//! Shared fixtures for the integration tests: a real vault (SQLite file, age keyring, Cedar
//! policy) in a temporary directory, principals of every role, and the binary's path.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

pub mod webdriver;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use cvvault::clock::{Clock, ManualClock};
use cvvault::ids::{CandidateId, PrincipalId};
use cvvault::paths::Paths;
use cvvault::policy::PrincipalFacts;
use cvvault::profile::Profile;
use cvvault::synth::Synth;
use cvvault::vault::Unlock;
use cvvault::vault::{InitOptions, OpenAssignment, Vault};
use cvvault::vocabulary::Role;

/// The PostgreSQL server the integration tests also run on: `CVVAULT_TEST_POSTGRES`, the URL
/// of a role that may create databases (`.ci/run` sets it). Unset, they run on SQLite only.
pub fn test_postgres() -> Option<String> {
    std::env::var("CVVAULT_TEST_POSTGRES")
        .ok()
        .filter(|url| !url.is_empty())
}

/// Whether this run's fixtures keep their rows in PostgreSQL.
pub fn on_postgres() -> bool {
    test_postgres().is_some()
}

/// Returns from a test that reads or alters the SQLite file itself (its bytes, its WAL, a
/// row written outside cvvault through rusqlite): there is no such file on PostgreSQL, and
/// what the test proves of the shared row code is proved on SQLite.
#[macro_export]
macro_rules! sqlite_only {
    () => {
        if $crate::common::on_postgres() {
            eprintln!("reads the SQLite file itself: run on SQLite only");
            return;
        }
    };
}

/// A database of its own on the test server, dropped (with its connections) at the end.
pub struct PgDatabase {
    admin: String,
    name: String,
    /// Its URL.
    pub url: String,
}

impl PgDatabase {
    /// A new, empty database on the server of [`test_postgres`].
    pub fn create() -> Option<PgDatabase> {
        let admin = test_postgres()?;
        let name = format!("cvvault_t_{}", uuid::Uuid::new_v4().simple());
        let statement = format!("CREATE DATABASE {name}");
        off_runtime(&admin, &statement);
        let base = admin
            .rsplit_once('/')
            .map_or(admin.as_str(), |(base, _)| base);
        let url = format!("{base}/{name}");
        Some(PgDatabase { admin, name, url })
    }

    /// A file-level copy of `source` (which no one may be connected to), as a base backup or
    /// a replica would hold it.
    pub fn from_template(source: &PgDatabase) -> PgDatabase {
        let name = format!("cvvault_t_{}", uuid::Uuid::new_v4().simple());
        let statement = format!(
            "CREATE DATABASE {name} TEMPLATE {} STRATEGY FILE_COPY",
            source.name
        );
        off_runtime(&source.admin, &statement);
        let base = source
            .admin
            .rsplit_once('/')
            .map_or(source.admin.as_str(), |(base, _)| base);
        let url = format!("{base}/{name}");
        PgDatabase {
            admin: source.admin.clone(),
            name,
            url,
        }
    }

    /// A raw client of this database, outside the vault.
    pub fn client(&self) -> postgres::Client {
        postgres::Client::connect(&self.url, postgres::NoTls).unwrap()
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        // WITH (FORCE) ends the sessions a failed test left behind, but a role that is not a
        // superuser may not end an autovacuum worker that happens to be in the database, and
        // then it fails: a plain DROP stops autovacuum by itself. What neither drops is said,
        // not raised (a panic in drop would hide the test's own failure).
        let (admin, name) = (self.admin.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let mut client = postgres::Client::connect(&admin, postgres::NoTls).ok()?;
            client
                .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .or_else(|_| client.batch_execute(&format!("DROP DATABASE IF EXISTS {name}")))
                .ok()
        })
        .join();
        if !matches!(dropped, Ok(Some(()))) {
            eprintln!(
                "test database {} could not be dropped: drop it by hand",
                self.name
            );
        }
    }
}

/// Runs one statement on the server at `url`, on a thread of its own: the synchronous client
/// may not block a thread that drives an async test.
fn off_runtime(url: &str, statement: &str) {
    let (url, statement) = (url.to_owned(), statement.to_owned());
    std::thread::spawn(move || {
        postgres::Client::connect(&url, postgres::NoTls)
            .expect("CVVAULT_TEST_POSTGRES names a server that accepts this role")
            .batch_execute(&statement)
            .unwrap();
    })
    .join()
    .unwrap();
}

/// The PostgreSQL database of each vault folder, for the binary run on it ([`cvvault_env`]).
static DATABASES: std::sync::Mutex<Vec<(PathBuf, String)>> = std::sync::Mutex::new(Vec::new());

/// The database URL of the vault under `root`, on a run on PostgreSQL: the fixture's, or a
/// new database for a folder the test made itself (its first `init`).
pub fn database_url(root: &Path) -> Option<String> {
    test_postgres()?;
    let mut known = DATABASES.lock().unwrap();
    if let Some((_, url)) = known.iter().find(|(r, _)| r == root) {
        return Some(url.clone());
    }
    // Kept for the whole run: the folder's vault may outlive the test's own handles.
    let db = PgDatabase::create()?;
    let url = db.url.clone();
    std::mem::forget(db);
    known.push((root.to_path_buf(), url.clone()));
    Some(url)
}

/// Paths under `root`, with a database of their own on PostgreSQL when the run is on it.
pub fn test_paths(root: &Path) -> (Paths, Option<PgDatabase>) {
    let mut paths = Paths::under(root);
    let pg = PgDatabase::create();
    if let Some(db) = &pg {
        paths.postgres = Some(cvvault::paths::PgTarget::parse(&db.url).unwrap());
        DATABASES
            .lock()
            .unwrap()
            .push((root.to_path_buf(), db.url.clone()));
    }
    (paths, pg)
}

/// A vault in a temporary directory, with one principal of each role.
pub struct Fixture {
    pub clock: ManualClock,
    pub vault: Vault,
    pub paths: Paths,
    pub dir: tempfile::TempDir,
    /// The fixture's own database when the run is on PostgreSQL (dropped last).
    pub pg: Option<PgDatabase>,
}

/// Principals created by [`Fixture::new`]: (id, role, org).
pub const PRINCIPALS: &[(&str, Role, &str)] = &[
    ("cw", Role::Caseworker, "agency"),
    ("coach", Role::Provider, "coach-org"),
    ("emp", Role::Employer, "emp-org"),
    ("emp2", Role::Employer, "emp2-org"),
    ("dpo", Role::Dpo, "agency"),
];

/// A fixed start time for the manual clock: 2026-01-01T00:00:00Z.
pub const START: i64 = 1_767_225_600;

impl Fixture {
    pub fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let (paths, pg) = test_paths(dir.path());
        Vault::init(
            &paths,
            InitOptions {
                passphrase: None,
                identity: None,
                recovery_recipients: vec![],
            },
        )
        .unwrap();
        let clock = ManualClock::at(START);
        let vault =
            Vault::open_with_clock(&paths, &Self::unlock_for(&paths), Arc::new(clock.clone()))
                .unwrap();
        for (id, role, org) in PRINCIPALS {
            vault
                .add_principal(id.parse().unwrap(), *role, org.parse().unwrap(), None)
                .unwrap();
        }
        Fixture {
            dir,
            paths,
            vault,
            clock,
            pg,
        }
    }

    pub fn unlock_for(paths: &Paths) -> Unlock {
        Unlock::Identity(paths.default_identity())
    }

    pub fn unlock(&self) -> Unlock {
        Self::unlock_for(&self.paths)
    }

    /// Closes and reopens the vault (e.g. after changing files on disk).
    pub fn reopen(self) -> Fixture {
        self.vault.close().unwrap();
        let Fixture {
            dir,
            paths,
            vault,
            clock,
            pg,
        } = self;
        drop(vault);
        let vault =
            Vault::open_with_clock(&paths, &Self::unlock_for(&paths), Arc::new(clock.clone()))
                .unwrap();
        Fixture {
            dir,
            paths,
            vault,
            clock,
            pg,
        }
    }

    pub fn as_(&self, id: &str) -> PrincipalFacts {
        self.vault
            .principal(&id.parse::<PrincipalId>().unwrap())
            .unwrap()
    }

    /// Registers a synthetic profile carrying `marker`; protected and consent as given.
    pub fn register_marked(&self, marker: &str, protected: bool, consent: bool) -> CandidateId {
        let mut profile = Synth::new(marker.len() as u64).profile_with_marker(marker);
        profile.control.protected = protected;
        profile.control.consents.employer_contact = consent;
        self.vault.register(&self.as_("cw"), &profile).unwrap()
    }

    pub fn register(&self, profile: &Profile) -> CandidateId {
        self.vault.register(&self.as_("cw"), profile).unwrap()
    }

    /// Opens an assignment as the caseworker.
    pub fn assign(
        &self,
        candidate: CandidateId,
        org: &str,
        kind: &str,
        purpose: &str,
    ) -> cvvault::ids::AssignmentId {
        self.vault
            .open_assignment(
                &self.as_("cw"),
                OpenAssignment {
                    candidate_id: candidate,
                    org: org.parse().unwrap(),
                    kind: kind.parse().unwrap(),
                    purpose: purpose.parse().unwrap(),
                },
            )
            .unwrap()
    }

    pub fn db(&self) -> PathBuf {
        self.paths.database()
    }

    /// A raw connection to the database file, outside the vault (for tamper tests; see
    /// [`sqlite_only`]).
    pub fn raw(&self) -> rusqlite::Connection {
        assert!(
            !on_postgres(),
            "a test that reads the SQLite file starts with sqlite_only!()"
        );
        rusqlite::Connection::open(self.db()).unwrap()
    }

    pub fn now(&self) -> i64 {
        self.clock.now()
    }
}

/// Two integers that `sql` selects from the vault under `root`, on either store.
pub fn query_pair(root: &Path, sql: &str) -> (i64, i64) {
    match database_url(root) {
        Some(url) => {
            let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
            let row = client.query_one(sql, &[]).unwrap();
            (row.get(0), row.get(1))
        }
        None => rusqlite::Connection::open(root.join("data/vault.db"))
            .unwrap()
            .query_row(sql, [], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap(),
    }
}

/// `bytes` as a blob literal of the store the run is on.
pub fn blob_literal(bytes: &[u8]) -> String {
    if on_postgres() {
        format!("'\\x{}'::bytea", hex::encode(bytes))
    } else {
        format!("x'{}'", hex::encode(bytes))
    }
}

/// Rows of an integer and a text that `sql` selects from the vault under `root`, on either
/// store.
pub fn query_int_text(root: &Path, sql: &str) -> Vec<(i64, String)> {
    match database_url(root) {
        Some(url) => {
            let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
            client
                .query(sql, &[])
                .unwrap()
                .iter()
                .map(|row| (row.get(0), row.get(1)))
                .collect()
        }
        None => {
            let conn = rusqlite::Connection::open(root.join("data/vault.db")).unwrap();
            let mut stmt = conn.prepare(sql).unwrap();
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            rows
        }
    }
}

/// Bytes of a file, or empty if it does not exist.
pub fn file_bytes(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_default()
}

/// Whether `needle` occurs in `haystack`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// The database file and its WAL, concatenated.
pub fn db_and_wal(db: &Path) -> Vec<u8> {
    let mut all = file_bytes(db);
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    all.extend(file_bytes(Path::new(&wal)));
    all
}

/// Runs the real binary with the vault's paths in its environment.
pub fn cvvault(root: &Path, args: &[&str]) -> Output {
    cvvault_env(root, args, &[])
}

/// Adds each `(id, role, org)` as a principal through the binary, in the vault at `root`.
pub fn add_principals(root: &Path, principals: &[(&str, &str, &str)]) {
    for (id, role, org) in principals {
        let out = cvvault(
            root,
            &["principal", "add", id, "--role", role, "--org", org],
        );
        assert!(out.status.success(), "{}", stderr(&out));
    }
}

/// Issues a bearer token for `principal` through the binary; the token it prints once.
pub fn issue_token(root: &Path, principal: &str) -> String {
    let out = cvvault(root, &["token", "issue", "--principal", principal]);
    assert!(out.status.success(), "{}", stderr(&out));
    let token = stdout(&out).trim().to_owned();
    assert!(token.starts_with("cvv_"), "{token}");
    assert!(stderr(&out).contains("shown only now"));
    token
}

/// A `cvvault serve` of the vault under `root`, killed when dropped (by a test that failed
/// before stopping it).
pub struct Served {
    /// The server process.
    pub child: std::process::Child,
    /// The `host:port` it listens on.
    pub address: String,
    /// What it prints after its first line, until it exits.
    pub output: Option<std::thread::JoinHandle<String>>,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `cvvault serve ARGS` on the vault under `root` and reads where it listens from its
/// first line (`listening on SCHEME://ADDRESS`); the rest of its output is collected.
pub fn serve(root: &Path, args: &[&str], scheme: &str) -> Served {
    use std::io::{BufRead, Read};
    let mut child = vault_command(root)
        .arg("serve")
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    lines.read_line(&mut first).unwrap();
    let address = first
        .trim()
        .strip_prefix(&format!("listening on {scheme}://"))
        .unwrap_or_else(|| panic!("first line: {first:?}"))
        .to_owned();
    let output = std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = lines.read_to_string(&mut rest);
        rest
    });
    Served {
        child,
        address,
        output: Some(output),
    }
}

/// The real binary, pointed at the vault under `root` (its folders, and its database on a
/// run on PostgreSQL), with no unlocking or principal from the caller's environment.
pub fn vault_command(root: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cvvault"));
    cmd.env("CVVAULT_KEYS_DIR", root.join("keys"))
        .env("CVVAULT_DATA_DIR", root.join("data"))
        .env("CVVAULT_POLICY_DIR", root.join("policy"))
        .env_remove("CVVAULT_PASSPHRASE")
        .env_remove("CVVAULT_IDENTITY")
        .env_remove("CVVAULT_PRINCIPAL")
        .env_remove("CVVAULT_DATABASE_URL");
    if let Some(url) = database_url(root) {
        cmd.env("CVVAULT_DATABASE_URL", url);
    }
    cmd
}

/// Runs the real binary with extra environment variables.
pub fn cvvault_env(root: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = vault_command(root);
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Whether the `age` command-line tool is installed (CI installs it).
pub fn age_cli() -> bool {
    Command::new("age")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}
