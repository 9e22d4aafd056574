//! The command line: `main` parses, [`run`] dispatches to one file per command group, and
//! errors become exit codes in one place ([`crate::Error::exit_code`]).

mod assignment;
mod audit;
mod candidate;
mod extract;
mod init;
mod keys;
mod policy;
mod principal;
mod report;
mod retention;
mod serve;
mod token;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::crypto::keyring::Unlock;
use crate::error::{Error, Result};
use crate::ids::PrincipalId;
use crate::paths::Paths;
use crate::policy::PrincipalFacts;
use crate::vault::Vault;

/// cvvault: a privacy-first encrypted CV vault.
///
/// Profiles are sealed per field group under a per-candidate key; Cedar policy files decide
/// who sees which groups, for which purpose, only while an assignment links them; every
/// decision goes to a tamper-evident audit trail; a retention job crypto-shreds candidates
/// whose assignments have closed.
///
/// The keyring is unlocked with CVVAULT_IDENTITY (an age identity file, default
/// keys/identity.txt) or CVVAULT_PASSPHRASE.
#[derive(Parser, Debug)]
#[command(name = "cvvault", version, about, long_about)]
pub struct Cli {
    /// Folder of the keyring, identity and recipients.
    #[arg(long, global = true, env = "CVVAULT_KEYS_DIR", default_value = "keys")]
    pub keys_dir: PathBuf,
    /// Folder of the SQLite database (and of the retention lock).
    #[arg(long, global = true, env = "CVVAULT_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,
    /// Keep the rows in this PostgreSQL database instead of the SQLite file in --data-dir:
    /// postgres://USER@HOST:PORT/DATABASE (the password in PGPASSWORD or ~/.pgpass). Every
    /// node of a vault served by several machines names the same database.
    #[arg(
        long = "database",
        global = true,
        env = "CVVAULT_DATABASE_URL",
        hide_env_values = true
    )]
    pub database: Option<String>,
    /// Folder of the Cedar policy files and settings.
    #[arg(
        long,
        global = true,
        env = "CVVAULT_POLICY_DIR",
        default_value = "policy"
    )]
    pub policy_dir: PathBuf,
    /// The principal to act as (commands that touch candidate data).
    #[arg(long = "as", global = true, env = "CVVAULT_PRINCIPAL")]
    pub principal: Option<String>,
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a new vault: keyring, identity, database, default policy files.
    Init(init::InitArgs),
    /// Register, import, show and erase candidates.
    #[command(subcommand)]
    Candidate(candidate::CandidateCommand),
    /// Manage principals (the operator's task; registering grants nothing by itself).
    #[command(subcommand)]
    Principal(principal::PrincipalCommand),
    /// Open, close and list assignments.
    #[command(subcommand)]
    Assignment(assignment::AssignmentCommand),
    /// Request a decrypted extract: only the permitted field groups.
    Extract(extract::ExtractArgs),
    /// Check policy files and explain decisions.
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// Rotate the key-encryption key, or show key status.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Audit trail: verify, checkpoints, proofs, export, search, erasure receipts (DPO).
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// The GDPR Art. 15 report for a candidate: data held, and every disclosure.
    SubjectAccess {
        /// Candidate id.
        id: String,
    },
    /// The retention job (run it from cron or a systemd timer).
    #[command(subcommand)]
    Retention(retention::RetentionCommand),
    /// GDPR reports for the DPO: the record of processing (Art. 30) and, later, breach scope
    /// (Art. 33).
    #[command(subcommand)]
    Report(report::ReportCommand),
    /// Legal holds (DPO): keep a candidate from retention until released.
    #[command(subcommand)]
    Hold(audit::HoldCommand),
    /// Issue, revoke and list bearer tokens for the HTTP API (the operator's task).
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// Serve the HTTP API until SIGTERM or Ctrl-C.
    Serve(serve::ServeArgs),
    /// Copy this vault's SQLite store into an empty PostgreSQL database and prove the copy
    /// (same rows, same audit root and size, every checkpoint verifies). The SQLite file is
    /// left as it was; point every node at the copy afterwards with --database.
    Migrate {
        /// The empty PostgreSQL database: postgres://USER@HOST:PORT/DATABASE (the password in
        /// PGPASSWORD or ~/.pgpass).
        #[arg(long = "to", value_name = "URL")]
        to: String,
    },
    /// Create a vault in a temporary directory and walk through the whole lifecycle.
    Demo(crate::demo::DemoArgs),
}

/// What a command needs from the global flags.
pub struct Context {
    /// Paths.
    pub paths: Paths,
    /// `--as`.
    pub principal: Option<String>,
    /// `--json`.
    pub json: bool,
}

impl Context {
    /// How to unlock the keyring.
    pub fn unlock(&self) -> Unlock {
        Unlock::from_env(&self.paths.default_identity())
    }

    /// Opens the vault.
    pub fn open(&self) -> Result<Vault> {
        Vault::open(&self.paths, &self.unlock())
    }

    /// The principal named by `--as` / CVVAULT_PRINCIPAL, authenticated against the store.
    pub fn acting(&self, vault: &Vault) -> Result<PrincipalFacts> {
        let id = self.principal.as_deref().ok_or_else(|| {
            Error::invalid_input(
                "this command acts on candidate data: name the principal with --as ID (or CVVAULT_PRINCIPAL)",
            )
        })?;
        vault.principal(&id.parse::<PrincipalId>()?)
    }

    /// Prints a value as JSON (with `--json`) or text.
    pub fn print(&self, json: &serde_json::Value, text: &str) {
        if self.json {
            println!("{json}");
        } else {
            println!("{text}");
        }
    }
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<ExitCode> {
    let ctx = Context {
        paths: Paths {
            keys_dir: cli.keys_dir,
            data_dir: cli.data_dir,
            policy_dir: cli.policy_dir,
            postgres: cli
                .database
                .as_deref()
                .map(crate::store::PgTarget::parse)
                .transpose()?,
        },
        principal: cli.principal,
        json: cli.json,
    };
    match cli.command {
        Command::Init(args) => init::run(&ctx, args),
        // The document format needs no vault.
        Command::Candidate(candidate::CandidateCommand::Schema) => candidate::print_schema(),
        Command::Candidate(cmd) => with_vault(&ctx, |vault| candidate::run(&ctx, vault, cmd)),
        Command::Principal(cmd) => with_vault(&ctx, |vault| principal::run(&ctx, vault, cmd)),
        Command::Assignment(cmd) => with_vault(&ctx, |vault| assignment::run(&ctx, vault, cmd)),
        Command::Extract(args) => with_vault(&ctx, |vault| extract::run(&ctx, vault, args)),
        Command::Policy(cmd) => policy::run(&ctx, cmd),
        Command::Keys(cmd) => with_vault(&ctx, |vault| keys::run(&ctx, vault, cmd)),
        Command::Audit(audit::AuditCommand::Verify {
            checkpoints,
            key: Some(key),
        }) => audit::verify_offline(&ctx, &key, &checkpoints),
        Command::Audit(audit::AuditCommand::VerifyProof {
            file,
            key: Some(key),
            allow_unbound,
        }) => audit::verify_proof_offline(&ctx, &file, &key, allow_unbound),
        Command::Audit(cmd) => with_vault(&ctx, |vault| audit::run(&ctx, vault, cmd)),
        Command::SubjectAccess { id } => {
            with_vault(&ctx, |vault| audit::run_subject_access(&ctx, vault, &id))
        }
        Command::Retention(cmd) => with_vault(&ctx, |vault| retention::run(&ctx, vault, cmd)),
        Command::Hold(cmd) => with_vault(&ctx, |vault| audit::run_hold(&ctx, vault, cmd)),
        Command::Report(cmd) => with_vault(&ctx, |vault| report::run(&ctx, vault, cmd)),
        Command::Token(cmd) => with_vault(&ctx, |vault| token::run(&ctx, vault, cmd)),
        Command::Serve(args) => serve::run(&ctx, args),
        Command::Migrate { to } => {
            let target = crate::store::PgTarget::parse(&to)?;
            with_vault(&ctx, |vault| migrate(&ctx, vault, &target))
        }
        Command::Demo(args) => crate::demo::run(&ctx, args),
    }
}

/// `migrate --to`: copies, proves, and says what to do next.
fn migrate(ctx: &Context, vault: &Vault, target: &crate::store::PgTarget) -> Result<ExitCode> {
    let bar = progress_bar(0, "copying rows");
    let report = vault.migrate_to(target, &|n| bar.set_position(n))?;
    bar.finish_and_clear();
    let rows: Vec<String> = report
        .rows
        .iter()
        .map(|(table, n)| format!("  {table:<18} {n}"))
        .collect();
    ctx.print(
        &serde_json::to_value(&report).unwrap_or_default(),
        &format!(
            "copied into {}:\n{}\naudit trail: {} entries, root {}, {} checkpoint(s) verify on the copy\nnext: point every node at it (--database or CVVAULT_DATABASE_URL); {} is left as it was, keep it as the last backup of the SQLite vault",
            report.target,
            rows.join("\n"),
            report.audit_entries,
            report.audit_root,
            report.checkpoints_verified,
            ctx.paths.database().display()
        ),
    );
    Ok(ExitCode::SUCCESS)
}

/// Opens the vault, runs `f`, and signs a checkpoint on the way out (also after an error,
/// since denials were audited too).
fn with_vault(ctx: &Context, f: impl FnOnce(&Vault) -> Result<ExitCode>) -> Result<ExitCode> {
    let vault = ctx.open()?;
    let result = f(&vault);
    let closed = vault.close();
    let code = result?;
    closed?;
    Ok(code)
}

/// A progress bar on stderr (hidden when stderr is not a terminal).
pub(crate) fn progress_bar(total: u64, what: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(total);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{msg:>12} [{bar:40}] {pos}/{len} ({per_sec}, eta {eta})",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_owned());
    bar
}

/// Refuses an output file whose folder does not exist, before any work is done for it: a
/// mistyped folder is not created, and nothing is disclosed or registered for a file that
/// cannot be written.
pub(crate) fn output_folder_exists(path: &std::path::Path) -> Result<()> {
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => return Ok(()),
    };
    if folder.is_dir() {
        Ok(())
    } else {
        Err(Error::io(
            folder,
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no such folder: create it first, or name a file in a folder that exists",
            ),
        ))
    }
}

/// What to do next about `error` at the command line, where the library's message cannot say
/// it: library errors name no flag or command of one edge, each edge adds its own step.
pub fn next_step(error: &Error) -> Option<String> {
    Some(match error {
        Error::BadReason { .. } => "give it with --reason \"...\"".into(),
        Error::LegalHold => {
            "a DPO releases it with `cvvault hold release CANDIDATE` once the legal ground has ended".into()
        }
        Error::UnknownOrg { org } => format!(
            "register a principal of it first: `cvvault principal add ID --role provider|employer --org {org}`"
        ),
        Error::PrincipalDisabled { principal } => {
            format!("the operator enables it again with `cvvault principal enable {principal}`")
        }
        Error::AlreadyHeld { .. } => {
            "`cvvault hold release CANDIDATE`, then `cvvault hold place CANDIDATE --reason \"GROUND 1; GROUND 2\"`".into()
        }
        Error::DuplicateReference => {
            "`cvvault candidate find --ref REF` gives the candidate's id; `cvvault candidate update ID FILE` replaces their profile (or import with --update)".into()
        }
        Error::UnknownPrincipal { principal } => format!(
            "add it with `cvvault principal add {principal} --role ROLE --org ORG` (see `cvvault principal list`)"
        ),
        Error::VaultExists { .. } => {
            "choose other folders with --data-dir and --keys-dir, or remove the old vault deliberately".into()
        }
        Error::KeyringMissing { .. } | Error::DatabaseMissing { .. } => {
            "run `cvvault init` first, or point --keys-dir/--data-dir (CVVAULT_KEYS_DIR, CVVAULT_DATA_DIR) at the vault's folders".into()
        }
        Error::Denied { action, .. } if action.starts_with("opening a ") => {
            "the default policy (policy/assignment-kinds.cedar) allows two shapes: --kind matching --purpose recruitment with an employer's organisation, and --kind coaching --purpose coaching with a provider's; a protected candidate gets no matching assignment".into()
        }
        Error::Denied { may, policy_ids, .. } if !may.is_empty() && policy_ids.is_empty() => {
            "act as a principal of a role policy lets do this (--as ID); `cvvault principal list` shows them. Policy itself is changed only by editing policy/*.cedar".into()
        }
        Error::Denied { .. } => {
            "the policies named decided it (`cvvault policy explain --candidate ID --purpose P --as YOU` says why for a read); they are in policy/*.cedar".into()
        }
        Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            "check the file name; a relative path is read from the folder you are in".into()
        }
        Error::Io { source, .. }
            if matches!(
                source.kind(),
                std::io::ErrorKind::AddrInUse | std::io::ErrorKind::AddrNotAvailable
            ) =>
        {
            "pick another --bind address or port (port 0 picks a free one), or stop what already listens there".into()
        }
        Error::Io { source, .. } if source.kind() == std::io::ErrorKind::PermissionDenied => {
            "this user may not open the file: check its owner and mode (`ls -l`)".into()
        }
        Error::IdentityMissing { .. } => {
            "if the identity file moved, point CVVAULT_IDENTITY at it; if it is lost, unlock with a recovery identity (CVVAULT_IDENTITY=FILE); a vault made with a passphrase needs CVVAULT_PASSPHRASE instead. A file of age1... lines is a public key, not an identity".into()
        }
        Error::InvalidProfile { path, .. }
            if ["$.special", "$.control"].contains(&path.as_str()) =>
        {
            "register the JSON Resume without it, then `cvvault candidate update ID FILE --group special,control` with a vault document that holds those groups".into()
        }
        Error::InvalidProfile { .. } => {
            "fix the field the path names; `cvvault candidate schema` prints the whole document format".into()
        }
        Error::KeyringLost { path, .. } => format!(
            "if --keys-dir (CVVAULT_KEYS_DIR) names the wrong folder, point it at the vault's keys; else copy the keyring's backup to {} and run `cvvault keys verify`. Do not run `cvvault init`: a new keyring cannot open this database",
            path.display()
        ),
        Error::DatabaseLost { path, .. } => format!(
            "if --data-dir (CVVAULT_DATA_DIR) names the wrong folder, point it at the vault's data; else copy the database's backup to {} and run `cvvault audit verify --as DPO`. `cvvault init` refuses here: this keyring belongs to that database",
            path.display()
        ),
        Error::Corrupt { .. } | Error::Forged { .. } => {
            "`cvvault audit verify --as DPO` lists every row that fails its check".into()
        }
        Error::AuditTampered(_) => {
            "do not write to this vault until it is explained: compare with a checkpoint kept off this machine (`cvvault audit verify --checkpoint FILE --as DPO`), tell the DPO, and restore data/vault.db from the last backup whose trail verifies".into()
        }
        Error::DecryptionFailed => {
            "the record was altered or moved outside cvvault: `cvvault audit verify --as DPO` names what fails; restore data/vault.db from a backup, or check that keys/keyring.age is this vault's".into()
        }
        Error::NotFound { what: "candidate" } => {
            "check the candidate id or reference; an erased candidate is not found either (a DPO confirms an erasure with `cvvault audit receipt --candidate ID`). An employer or provider also gets this for a candidate no open assignment links them to, for this purpose: ask the agency's caseworker".into()
        }
        Error::NotFound { what: "assignment" } => {
            "check the assignment id (`cvvault assignment list --candidate ID` shows a candidate's assignments)".into()
        }
        Error::NoRecipient { path, .. } => format!(
            "save the principal's public key (age1...) in {}, or write plaintext with --plaintext",
            path.display()
        ),
        _ => return None,
    })
}
