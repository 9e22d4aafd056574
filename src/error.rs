//! Typed errors. No variant carries plaintext or key material; every message says what to do.
//!
//! One mapping to process exit codes ([`Error::exit_code`]) and one to HTTP status codes
//! ([`Error::http_status`]) live here so that every edge renders the same error the same way.

use std::path::PathBuf;

/// Every exit code of the binary with its meaning: the one table that `cvvault --help`,
/// `main` (through [`Error::exit_code`]) and README.md follow (a test checks all three).
pub const EXIT_CODES: &[(u8, &str)] = &[
    (0, "ok"),
    (
        1,
        "retention: some due candidates could not be erased (see the JSON report)",
    ),
    (2, "usage (clap)"),
    (3, "denied by policy"),
    (
        4,
        "not found (also: not yours, for employers and providers)",
    ),
    (5, "conflict (e.g. closing a closed assignment)"),
    (6, "quota exceeded"),
    (7, "unauthenticated"),
    (10, "a vault already exists here"),
    (11, "keyring or database missing: run `cvvault init`"),
    (12, "wrong passphrase"),
    (13, "wrong or missing identity, or wrong unlock method"),
    (14, "keyring corrupt"),
    (15, "invalid policy or settings file"),
    (
        16,
        "the audit trail could not be written: nothing was changed or released",
    ),
    (
        17,
        "audit verification failed, or a row written outside cvvault",
    ),
    (
        18,
        "decryption failed (a data key that does not open) or corrupt store",
    ),
    (65, "invalid input"),
    (
        70,
        "internal error: a bug in cvvault (nothing was changed or released); please report it",
    ),
    (74, "I/O or database error"),
    (75, "another retention run or key rotation holds its lock"),
];

/// The exit-code table as `--help` prints it.
pub fn exit_codes_help() -> String {
    let mut text = String::from("Exit codes:\n");
    for (code, meaning) in EXIT_CODES {
        text.push_str(&format!("  {code:>3}  {meaning}\n"));
    }
    text
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong, as a user of the vault needs to tell it apart.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // ----- set-up and keys -----
    /// `init` was asked to create a vault where one exists.
    #[error("a vault already exists at {path}: refusing to overwrite it (choose other folders, or remove the old vault deliberately)")]
    VaultExists {
        /// The file that already exists.
        path: PathBuf,
    },
    /// No keyring file.
    #[error(
        "no keyring at {path}: create a vault first, or point the keys folder at the right place"
    )]
    KeyringMissing {
        /// Where the keyring was expected.
        path: PathBuf,
    },
    /// The keyring file is not a readable age file or its contents are malformed.
    #[error("the keyring at {path} is corrupt ({reason}): restore keys/keyring.age from a backup")]
    KeyringCorrupt {
        /// The keyring file.
        path: PathBuf,
        /// What is wrong, without any key material.
        reason: &'static str,
    },
    /// The passphrase does not open the keyring.
    #[error("wrong passphrase: the keyring could not be decrypted with CVVAULT_PASSPHRASE")]
    WrongPassphrase,
    /// The identity file does not open the keyring.
    #[error("the identity at {path} cannot open the keyring: use the identity the vault was initialised with (CVVAULT_IDENTITY) or a recovery identity")]
    WrongIdentity {
        /// The identity file tried.
        path: PathBuf,
    },
    /// The identity file is missing or unreadable.
    #[error("no usable age identity at {path}: set CVVAULT_IDENTITY to your identity file, or CVVAULT_PASSPHRASE for a passphrase keyring")]
    IdentityMissing {
        /// The identity file tried.
        path: PathBuf,
    },
    /// The keyring is passphrase-protected but no passphrase was given (or the reverse).
    #[error("{0}")]
    UnlockMethod(&'static str),
    /// A database file was expected and is missing.
    /// The keyring is missing but the vault's database is there: the keys were lost or moved.
    #[error("the keyring {path} is missing, but this vault's database {database} is there: restore the keyring from its backup, or point the keys folder at the folder that holds it (a new vault could not open this database)")]
    KeyringLost {
        /// Where the keyring should be.
        path: PathBuf,
        /// The database that exists (a file, or a PostgreSQL database).
        database: String,
    },
    /// The database is missing but the keyring is there: the data was lost or moved.
    #[error("the database {path} is missing, but this vault's keyring {keyring} is there: restore the database from its backup, or point the data folder at the folder that holds it (a new vault cannot be created over this keyring)")]
    DatabaseLost {
        /// Where the database should be.
        path: PathBuf,
        /// The keyring that exists.
        keyring: PathBuf,
    },
    #[error(
        "no database at {path}: create a vault first, or point the data folder at the right place"
    )]
    DatabaseMissing {
        /// Where the database was expected.
        path: PathBuf,
    },

    // ----- input -----
    /// Input that cannot be accepted; the message says what is wrong and what to do.
    #[error("{message}")]
    InvalidInput {
        /// What is wrong (never a field value of a profile).
        message: String,
    },
    /// A profile document that does not fit the model.
    #[error("invalid profile at {path}: {reason}")]
    InvalidProfile {
        /// JSON path of the offending field, e.g. `$.identity.birth_year`.
        path: String,
        /// What is wrong, without the value.
        reason: String,
    },
    /// A policy file that does not parse or validate.
    #[error("invalid policy {file}{}: {message}", position.as_deref().map(|p| format!(":{p}")).unwrap_or_default())]
    InvalidPolicy {
        /// The file.
        file: String,
        /// `line:column` where known.
        position: Option<String>,
        /// The parser's or validator's message.
        message: String,
    },
    /// A request body sent with another media type than the one the endpoint takes.
    #[error("the request body must be sent with `Content-Type: {expected}`")]
    UnsupportedMediaType {
        /// The media type the endpoint takes.
        expected: &'static str,
    },
    /// A settings file (retention.toml, limits.toml) that does not parse.
    #[error("invalid settings in {file}: {message}")]
    InvalidSettings {
        /// The file.
        file: String,
        /// What is wrong.
        message: String,
    },

    // ----- decisions and state -----
    /// Refused by policy; the ids are the policies that decided (empty: nothing permitted).
    #[error("denied by policy: {action} is not permitted{}{}", if policy_ids.is_empty() { " (no policy permits it)".to_owned() } else { format!(" (decided by {})", policy_ids.join(", ")) }, who_may(may))]
    Denied {
        /// The action refused.
        action: String,
        /// The deciding policy ids.
        policy_ids: Vec<String>,
        /// The roles some permit lets do this action (under its conditions).
        may: Vec<crate::vocabulary::Role>,
    },
    /// The thing does not exist (or, for some principals, is not theirs: the same answer).
    #[error("{what} not found")]
    NotFound {
        /// What was looked for (`candidate`, `assignment`, ...), never its content.
        what: &'static str,
    },
    /// A step that the current state does not allow.
    #[error("{0}")]
    Conflict(String),
    /// A new data key was wrapped under a KEK that another process or node has since
    /// replaced (a key rotation began in between): nothing was stored. The vault seals again
    /// under the new keyring once by itself ([`crate::vault::Vault`]'s writes of new data
    /// keys), so a caller sees this only if the keys changed twice in that moment.
    #[error("the keys were rotated by another cvvault process or node while this write was prepared (KEK version {current} is current; the write was prepared under version {prepared_under}): nothing was stored; try again")]
    KeysRotated {
        /// The KEK version the database records as current.
        current: u32,
        /// The KEK version of the keyring the refused write was prepared with.
        prepared_under: u32,
    },
    /// The assignment asked for is open already (same candidate, organisation, kind and
    /// purpose): a second one would keep the access alive after the first is closed.
    #[error("this candidate already has this assignment open (assignment {assignment_id}: the same organisation, kind and purpose): nothing was opened. Use that assignment, or close it first")]
    AlreadyOpen {
        /// The open assignment.
        assignment_id: crate::ids::AssignmentId,
    },
    /// A legal hold stands on the candidate: it cannot be erased until a DPO releases it.
    #[error("this candidate is under a legal hold placed by a data-protection officer: it cannot be erased until a DPO releases the hold")]
    LegalHold,
    /// A legal hold stands already: a second one would overwrite its ground.
    #[error("this candidate is already under a legal hold (ground: {ground}): nothing was changed. To record another ground, release the hold and place it again naming both")]
    AlreadyHeld {
        /// The ground of the hold that stands.
        ground: String,
    },
    /// No legal hold stands: there is nothing to release.
    #[error("this candidate is under no legal hold: there is nothing to release, and nothing was changed")]
    NotHeld,
    /// A candidate with this agency reference is already registered.
    #[error("a candidate with this agency reference is already registered: nothing was registered. Find that candidate by the reference and update their profile instead")]
    DuplicateReference,
    /// A reason that is empty or too long.
    #[error("the reason must be 1 to 200 characters {saying}; do not write personal details")]
    BadReason {
        /// What the reason should say, with an example.
        saying: &'static str,
    },
    /// An organisation with no registered principal: no assignment can link it.
    #[error("unknown organisation `{org}`: no principal of it is registered, so no assignment can link it")]
    UnknownOrg {
        /// The organisation id asked for.
        org: String,
    },
    /// An encrypted extract was asked for a principal with no registered age recipient.
    #[error("no age recipient is registered for {principal}: an encrypted extract needs its public key (age1...)")]
    NoRecipient {
        /// Who.
        principal: String,
        /// Where the operator saves the public key.
        path: PathBuf,
    },
    /// A principal id that is not registered.
    #[error("unknown principal `{principal}`")]
    UnknownPrincipal {
        /// The id asked for.
        principal: String,
    },
    /// The principal is disabled: everything it asks is refused (and audited).
    #[error("the principal {principal} is disabled: everything it asks is refused until the operator who holds the keyring enables it again")]
    PrincipalDisabled {
        /// Who.
        principal: String,
    },
    /// Too many requests by one principal in the window.
    #[error("quota exceeded: {principal} made too many {action} requests; retry after {retry_after_secs} s")]
    QuotaExceeded {
        /// Who.
        principal: String,
        /// What.
        action: String,
        /// When the window frees a slot.
        retry_after_secs: u64,
    },
    /// No or an invalid bearer token.
    #[error("authentication required: send `Authorization: Bearer <token>` with a token the vault's operator issued to you")]
    Unauthenticated,
    /// Too many requests without a valid token from one client address.
    #[error("too many requests without a valid token came from this address: wait {retry_after_secs} s before trying again, with a token the vault's operator issued")]
    TooManyFailedAuthentications {
        /// Seconds until the address may try again.
        retry_after_secs: u64,
    },
    /// A bearer token that has expired (it says nothing about its principal).
    #[error("the token {token_id} expired at {expired_at}: ask the vault's operator for its successor (tokens are rotated before they lapse)")]
    TokenExpired {
        /// The token's public id.
        token_id: String,
        /// When it expired (RFC 3339).
        expired_at: String,
    },
    /// Another retention run holds the lock.
    #[error("another retention run is in progress (lock {lock} is held): wait for it to finish")]
    RetentionLocked {
        /// The lock: a file, or a PostgreSQL advisory lock.
        lock: String,
    },
    /// Another key rotation (or recipient change) holds the keyring lock.
    #[error("another key rotation is in progress (lock {path} is held): nothing was changed. Wait for it to finish, then check with `cvvault keys status`")]
    RotationLocked {
        /// The lock file.
        path: PathBuf,
    },

    // ----- integrity -----
    /// Authenticated decryption failed: tampered ciphertext, moved ciphertext or wrong key.
    #[error(
        "decryption failed: the stored ciphertext was altered, moved, or sealed under another key"
    )]
    DecryptionFailed,
    /// A stored row does not have the shape the vault writes.
    #[error("corrupt store: {what}; restore the database from a backup")]
    Corrupt {
        /// What is wrong.
        what: &'static str,
    },
    /// The audit entry could not be written; the operation did not happen.
    #[error("the audit trail could not be written ({reason}); nothing was changed or released. Check disk space and database permissions")]
    AuditWrite {
        /// Why, without content.
        reason: String,
    },
    /// The audit trail does not verify.
    #[error("audit trail verification failed: {0}")]
    AuditTampered(String),
    /// A row that authorization depends on fails its MAC: it was written outside cvvault.
    #[error("the {table} row {row} fails its integrity check: it was written or changed outside cvvault, so it is refused. Restore the database from a backup")]
    Forged {
        /// The table.
        table: &'static str,
        /// The row's key, printable (a principal, token, assignment or candidate id).
        row: String,
    },

    // ----- environment -----
    /// A file system error on a named path.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// SQLite failed.
    #[error("database error: {0}")]
    Store(rusqlite::Error),
    /// PostgreSQL failed (or could not be reached).
    #[error("PostgreSQL error: {}", postgres_reason(.0))]
    Postgres(postgres::Error),
    /// A bug: an internal rule was broken (e.g. a proof of one decision given for another).
    /// Nothing was changed or released.
    #[error("internal error: {0}; nothing was changed or released. This is a bug in cvvault: please report it")]
    Internal(&'static str),
}

impl From<postgres::Error> for Error {
    /// A value of the wrong type is a corrupt store here too.
    fn from(error: postgres::Error) -> Self {
        if error.code().is_none() && error.to_string().contains("error deserializing column") {
            return Error::Corrupt {
                what: "a stored value does not have the type cvvault writes",
            };
        }
        Error::Postgres(error)
    }
}

/// The server's own message and its SQLSTATE, or the client's reason (the address it could
/// not reach). Never a parameter value: PostgreSQL's messages name columns, not data, except
/// in a unique violation's DETAIL, which is left out.
fn postgres_reason(error: &postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => format!("{} (SQLSTATE {})", db.message(), db.code().code()),
        None => error.to_string(),
    }
}

impl From<rusqlite::Error> for Error {
    /// A stored value of the wrong type is a row written outside cvvault (a corrupt store,
    /// which the vault's refusal rule treats like any damaged record), not a database failure.
    fn from(error: rusqlite::Error) -> Self {
        match error {
            rusqlite::Error::InvalidColumnType(..)
            | rusqlite::Error::FromSqlConversionFailure(..)
            | rusqlite::Error::IntegralValueOutOfRange(..) => Error::Corrupt {
                what: "a stored value does not have the type cvvault writes",
            },
            other => Error::Store(other),
        }
    }
}

/// ". Policy lets a caseworker do this, under its conditions" for a refusal's `may`.
fn who_may(may: &[crate::vocabulary::Role]) -> String {
    use crate::vocabulary::Role;
    let names: Vec<&str> = may
        .iter()
        .map(|role| match role {
            Role::Caseworker => "a caseworker",
            Role::Provider => "a job-coaching provider",
            Role::Employer => "an employer",
            Role::Dpo => "a DPO",
            Role::Subject => "the candidate themself",
            Role::System => "the retention job",
        })
        .collect();
    match names.as_slice() {
        [] => ". No policy lets any role do this".to_owned(),
        [one] => format!(". Policy lets {one} do this, under its conditions"),
        [rest @ .., last] => format!(
            ". Policy lets {} or {last} do this, under its conditions",
            rest.join(", ")
        ),
    }
}

impl Error {
    /// Shorthand for [`Error::InvalidInput`].
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Error::InvalidInput {
            message: message.into(),
        }
    }

    /// Shorthand for [`Error::Io`].
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// The process exit code for this error (documented in README.md).
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::InvalidInput { .. }
            | Error::InvalidProfile { .. }
            | Error::UnsupportedMediaType { .. } => 65,
            Error::BadReason { .. }
            | Error::UnknownOrg { .. }
            | Error::UnknownPrincipal { .. }
            | Error::NoRecipient { .. } => 65,
            Error::Denied { .. } | Error::PrincipalDisabled { .. } => 3,
            Error::NotFound { .. } => 4,
            Error::Conflict(_)
            | Error::KeysRotated { .. }
            | Error::AlreadyOpen { .. }
            | Error::LegalHold
            | Error::AlreadyHeld { .. }
            | Error::NotHeld
            | Error::DuplicateReference => 5,
            Error::QuotaExceeded { .. } | Error::TooManyFailedAuthentications { .. } => 6,
            Error::Unauthenticated | Error::TokenExpired { .. } => 7,
            Error::VaultExists { .. } => 10,
            Error::KeyringMissing { .. }
            | Error::KeyringLost { .. }
            | Error::DatabaseLost { .. }
            | Error::DatabaseMissing { .. } => 11,
            Error::WrongPassphrase => 12,
            Error::WrongIdentity { .. }
            | Error::IdentityMissing { .. }
            | Error::UnlockMethod(_) => 13,
            Error::KeyringCorrupt { .. } => 14,
            Error::InvalidPolicy { .. } | Error::InvalidSettings { .. } => 15,
            Error::AuditWrite { .. } => 16,
            Error::AuditTampered(_) | Error::Forged { .. } => 17,
            Error::DecryptionFailed | Error::Corrupt { .. } => 18,
            Error::RetentionLocked { .. } | Error::RotationLocked { .. } => 75,
            Error::Io { .. } | Error::Store(_) | Error::Postgres(_) => 74,
            Error::Internal(_) => 70,
        }
    }

    /// The HTTP status for this error (RFC 9110 semantics).
    pub fn http_status(&self) -> u16 {
        match self {
            Error::InvalidInput { .. }
            | Error::InvalidProfile { .. }
            | Error::BadReason { .. }
            | Error::UnknownOrg { .. }
            | Error::UnknownPrincipal { .. }
            | Error::NoRecipient { .. } => 422,
            Error::UnsupportedMediaType { .. } => 415,
            Error::Denied { .. } | Error::PrincipalDisabled { .. } => 403,
            Error::NotFound { .. } => 404,
            Error::Conflict(_)
            | Error::KeysRotated { .. }
            | Error::AlreadyOpen { .. }
            | Error::LegalHold
            | Error::AlreadyHeld { .. }
            | Error::NotHeld
            | Error::DuplicateReference
            | Error::VaultExists { .. }
            | Error::RetentionLocked { .. }
            | Error::RotationLocked { .. } => 409,
            Error::QuotaExceeded { .. } | Error::TooManyFailedAuthentications { .. } => 429,
            Error::Unauthenticated | Error::TokenExpired { .. } => 401,
            _ => 500,
        }
    }
}
