//! The use cases. Every edge (CLI, HTTP, retention job) goes through here, in one order:
//! policy decides, the decision is audited in the same transaction as the change (for a
//! read: committed before any plaintext is released), then crypto, then the store.

mod assignments;
mod audit;
mod candidates;
mod decoy;
mod delivery;
mod edge_refusals;
mod health;
mod keys;
mod migrate;
mod principals;
pub mod retention;
mod supervision;
mod tokens;
mod trail_state;
mod update;
mod workers;

/// How the keyring is opened (an age identity file or a passphrase).
pub use crate::crypto::keyring::Unlock;
pub use assignments::OpenAssignment;
pub use audit::{Disclosure, Receipt, SubjectAccessReport};
pub use candidates::{
    Extract, ImportMode, ImportOptions, ImportPhase, ImportReport, LineOutcome, LineResult,
};
pub use delivery::{Delivered, Delivery, AGE_MEDIA_TYPE};
pub use edge_refusals::ExtractRefusal;
pub use health::Readiness;
pub use keys::{mirror_agrees, KeyCheck, KeysStatus, RotateIdentity, RotationReport};
pub use migrate::MigrationReport;
pub use supervision::{
    BreachQuery, BreachScope, CheckpointSummary, HeldCandidate, LastVerification, RetentionPreview,
    TrailHealth,
};
pub use tokens::{
    parse_ttl, IssuedToken, DEFAULT_TOKEN_TTL_SECS, MAX_TOKEN_TTL_SECS, TOKEN_PREFIX,
};
pub use update::Updated;

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use crate::store::sql::Db;

use crate::audit::entry::Outcome;
use crate::audit::log::{Actor, Appender, Pseudonymizer, Record, Renderer};
use crate::audit::note::NoteSigner;
use crate::clock::{Clock, SystemClock};
use crate::crypto::envelope::Dek;
use crate::crypto::integrity::IntegrityKey;
use crate::crypto::keyring::{self, Keyring, Protection};
use crate::error::{Error, Result};
use crate::ids::{CandidateId, PrincipalId};
use crate::paths::Paths;
use crate::policy::{Action, CandidateFacts, PolicyEngine, PrincipalFacts};
use crate::profile::Control;
use crate::store::{rows, Readers, Writer};
use crate::vocabulary::{FieldGroup, Purpose, Role};

/// What `cvvault init` creates.
pub struct InitOptions {
    /// Protect the keyring with this passphrase instead of an identity file.
    pub passphrase: Option<age::secrecy::SecretString>,
    /// Use this existing identity file instead of generating `keys/identity.txt`.
    pub identity: Option<PathBuf>,
    /// Extra recipients who can also open the keyring (offline recovery keys).
    pub recovery_recipients: Vec<String>,
}

/// What `init` did.
pub struct InitReport {
    /// The keyring file.
    pub keyring: PathBuf,
    /// The identity file generated, if one was.
    pub identity_created: Option<PathBuf>,
    /// Where the rows are (the database file, or the PostgreSQL database without password).
    pub database: String,
    /// Policy files written (those that were missing).
    pub policy_files_written: Vec<PathBuf>,
    /// The checkpoint verifier key, to be copied off the machine.
    pub verifier_key: String,
}

/// An open vault.
pub struct Vault {
    paths: Paths,
    keyring: RwLock<Arc<Keyring>>,
    /// How the keyring was opened: kept to load it again when another process or node
    /// rotates the keys (a passphrase stays in memory as the keys it opens do).
    unlock: Unlock,
    policy: Arc<PolicyEngine>,
    writer: Writer,
    readers: Readers,
    clock: Arc<dyn Clock>,
    renderer: Renderer,
    signer: Arc<NoteSigner>,
    origin: String,
    /// The MAC key of the rows authorization depends on (see `crypto::integrity`).
    integrity: Arc<IntegrityKey>,
    /// Set when `audit verify` found the trail damaged: no checkpoint is signed after that.
    trail_failed: std::sync::atomic::AtomicBool,
    /// Work to do instead of a missing candidate's, so that refusals cost the same.
    decoy: decoy::Decoy,
    /// The trail summarized for the DPO's console and reports, caught up on each use.
    digest: std::sync::Mutex<crate::audit::digest::Digest>,
}

const META_ORIGIN: &str = "checkpoint_origin";
use rows::META_CURRENT_KEK;
const META_POLICY_HASH: &str = "policy_hash";

impl Vault {
    /// Creates a new vault: keyring, identity (unless a passphrase or identity is given),
    /// database, default policy files where missing. Refuses to overwrite anything.
    pub fn init(paths: &Paths, options: InitOptions) -> Result<InitReport> {
        let keyring_path = paths.keyring();
        let location = paths.store();
        let database = paths.database();
        let sqlite_file = (!location.is_postgres()).then_some(&database);
        for existing in std::iter::once(&keyring_path).chain(sqlite_file) {
            if existing.exists() {
                return Err(Error::VaultExists {
                    path: existing.clone(),
                });
            }
        }
        if options.passphrase.is_some()
            && (options.identity.is_some() || !options.recovery_recipients.is_empty())
        {
            return Err(Error::invalid_input(
                "--passphrase cannot be combined with --identity or --recovery-recipient: age encrypts a passphrase file to the passphrase alone. Use an identity with recovery recipients, or a passphrase",
            ));
        }
        let mut recipients = Vec::new();
        for text in &options.recovery_recipients {
            recipients.push(keyring::parse_recipient(text)?);
        }
        // An identity given is read before anything is written, so a wrong path leaves nothing.
        let own_recipients = match &options.identity {
            Some(identity_path) if options.passphrase.is_none() => {
                Some(keyring::identity_recipients(identity_path)?)
            }
            _ => None,
        };
        // Validate the policy before creating anything, so a bad policy leaves no half vault.
        let policy_files_written = write_default_policy(paths)?;
        let policy = PolicyEngine::load_dir(&paths.policy_dir)?;

        let mut identity_created = None;
        let unlock = match (&options.passphrase, &options.identity) {
            (Some(pass), _) => Unlock::Passphrase(pass.clone()),
            (None, Some(identity)) => Unlock::Identity(identity.clone()),
            (None, None) => Unlock::Identity(paths.default_identity()),
        };
        let protection = match (options.passphrase, options.identity) {
            (Some(pass), _) => Protection::Passphrase(pass),
            (None, Some(_)) => {
                let own = own_recipients.unwrap_or_default();
                for (n, recipient) in own.into_iter().enumerate() {
                    recipients.insert(n, recipient);
                }
                Protection::Recipients(recipients)
            }
            (None, None) => {
                let (text, recipient) = keyring::generate_identity();
                let path = paths.default_identity();
                crate::files::write_new_private_file(&path, text.as_bytes())?;
                identity_created = Some(path);
                recipients.insert(0, recipient);
                Protection::Recipients(recipients)
            }
        };
        let mut ring = Keyring::generate()?;
        if let Protection::Recipients(list) = &protection {
            // The keyring records whom it is encrypted to; the public file only mirrors it.
            ring.set_recipients(list);
            keyring::write_recipients_mirror(&paths.keyring_recipients(), list)?;
        }
        crate::files::write_new_private_file(&keyring_path, &ring.seal(&protection)?)?;
        // Where principals' public age keys go, for extracts that travel encrypted to them.
        let recipients_dir = paths.keys_dir.join("recipients");
        std::fs::create_dir_all(&recipients_dir).map_err(|e| Error::io(&recipients_dir, e))?;

        location.create()?;
        let conn = location.open()?;
        let origin = format!("cvvault.local/{}", uuid::Uuid::new_v4());
        rows::set_meta(&conn, META_ORIGIN, &origin)?;
        rows::set_meta(&conn, META_CURRENT_KEK, &ring.current_version().to_string())?;
        if let Some(id) = ring.kek_id(ring.current_version()) {
            rows::set_meta(&conn, &rows::meta_kek_id(ring.current_version()), &id)?;
        }
        drop(conn);
        let signer = NoteSigner::from_pkcs8(&origin_key_name(&origin), ring.signing_pkcs8())
            .map_err(|_| Error::Corrupt {
                what: "the new signing key is unusable",
            })?;
        let verifier_key = signer.verifier_key();
        let vault = Vault::start(paths.clone(), ring, policy, Arc::new(SystemClock), unlock)?;
        vault.audit_operator("vault.init", None)?;
        vault.close()?;
        Ok(InitReport {
            keyring: keyring_path,
            identity_created,
            database: location.to_string(),
            policy_files_written,
            verifier_key,
        })
    }

    /// Opens an existing vault: policy first (refuse to start on an invalid one), then the
    /// keyring, then the database.
    pub fn open(paths: &Paths, unlock: &Unlock) -> Result<Vault> {
        Vault::open_with_clock(paths, unlock, Arc::new(SystemClock))
    }

    /// [`Vault::open`] with an injected clock (tests, retention simulations).
    pub fn open_with_clock(paths: &Paths, unlock: &Unlock, clock: Arc<dyn Clock>) -> Result<Vault> {
        // In an empty folder the useful advice is `init`, whatever else is missing.
        let location = paths.store();
        if !paths.keyring().exists() {
            if location.holds_vault() {
                return Err(Error::KeyringLost {
                    path: paths.keyring(),
                    database: location.to_string(),
                });
            }
            return Err(Error::KeyringMissing {
                path: paths.keyring(),
            });
        }
        let policy = PolicyEngine::load_dir(&paths.policy_dir)?;
        let ring = keyring::open_finishing_identity_change(&paths.keyring(), unlock)?;
        let database = paths.database();
        if !location.is_postgres() && !database.exists() {
            return Err(Error::DatabaseLost {
                path: database,
                keyring: paths.keyring(),
            });
        }
        Vault::start(
            paths.clone(),
            ring,
            policy,
            clock,
            keys::clone_unlock(unlock),
        )
    }

    fn start(
        paths: Paths,
        ring: Keyring,
        policy: PolicyEngine,
        clock: Arc<dyn Clock>,
        unlock: Unlock,
    ) -> Result<Vault> {
        let location = paths.store();
        let integrity = Arc::new(IntegrityKey::new(&ring.integrity_key()));
        let conn = location.open_migrated(Some(&integrity))?;
        let origin = rows::meta(&conn, META_ORIGIN)?.ok_or(Error::Corrupt {
            what: "the database has no checkpoint origin",
        })?;
        let appender = Appender::load(
            &conn,
            Pseudonymizer::new(ring.audit_key()),
            integrity.clone(),
            policy.policy_hash(),
            clock.clone(),
        )?;
        let renderer = appender.renderer().clone();
        let signer = NoteSigner::from_pkcs8(&origin_key_name(&origin), ring.signing_pkcs8())
            .map_err(|_| Error::KeyringCorrupt {
                path: paths.keyring(),
                reason: "its checkpoint signing key is unusable",
            })?;
        let previous_policy = rows::meta(&conn, META_POLICY_HASH)?;
        for (purpose, open) in rows::open_assignment_purposes(&conn)? {
            if !policy.purposes().contains(&purpose) {
                // Made by an earlier version, which took any purpose: such an assignment
                // grants nothing now (a read is decided on the assignments of its purpose).
                tracing::warn!(
                    purpose = %crate::ids::printable(&purpose),
                    open,
                    "open assignments name a purpose the vocabulary does not declare, so they grant nothing: list them with `cvvault assignment list --candidate ID`, close them, and open new ones with a declared purpose (see `cvvault assignment open --help`)"
                );
            }
        }
        drop(conn);
        let vault = Vault {
            writer: Writer::start(&location, appender, integrity.clone())?,
            integrity,
            trail_failed: std::sync::atomic::AtomicBool::new(false),
            decoy: decoy::Decoy::new()?,
            digest: Default::default(),
            readers: Readers::new(&location),
            keyring: RwLock::new(Arc::new(ring)),
            unlock,
            policy: Arc::new(policy),
            clock,
            renderer,
            signer: Arc::new(signer),
            origin,
            paths,
        };
        let hash = hex::encode(vault.policy.policy_hash());
        if previous_policy.as_deref() != Some(hash.as_str()) {
            // A new policy set took effect: that is a decision worth a line in the trail.
            vault.writer.write(move |ctx| {
                let mut record = Record::new(
                    "policy.load",
                    &Actor::operator(),
                    Outcome::Allow,
                    &new_request_id(),
                );
                record.note = Some(format!("sha256:{hash}"));
                ctx.audit.append(record)?;
                rows::set_meta(ctx.conn, META_POLICY_HASH, &hash)
            })?;
        }
        Ok(vault)
    }

    /// Marks the trail as failed verification in this process (see [`Vault::sign_checkpoint`]).
    pub(crate) fn mark_trail_failed(&self) {
        self.trail_failed
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Signs a final checkpoint and stops the writer.
    pub fn close(&self) -> Result<()> {
        self.sign_checkpoint()?;
        self.writer.shutdown();
        Ok(())
    }

    /// The deployment's paths.
    pub fn paths(&self) -> &Paths {
        &self.paths
    }

    /// The policy engine in force.
    pub fn policy(&self) -> &PolicyEngine {
        &self.policy
    }

    /// The checkpoint origin line.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The verifier key of the checkpoint signer (`name+id+key`).
    pub fn verifier_key(&self) -> String {
        self.signer.verifier_key()
    }

    /// The current time by the vault's clock.
    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    pub(crate) fn writer(&self) -> &Writer {
        &self.writer
    }

    pub(crate) fn readers(&self) -> &Readers {
        &self.readers
    }

    pub(crate) fn keyring(&self) -> Arc<Keyring> {
        match self.keyring.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The keyring, holding KEK `version`: when another process or node rotated the keys,
    /// the keyring file is read again (nodes share the keys folder, or are given the rotated
    /// keyring), so that every node follows a rotation without a restart.
    pub(crate) fn keyring_holding(&self, version: u32) -> Result<Arc<Keyring>> {
        let ring = self.keyring();
        if ring.kek(version).is_some() {
            return Ok(ring);
        }
        let reloaded = Arc::new(Keyring::open(&self.paths.keyring(), &self.unlock)?);
        if reloaded.kek(version).is_none() {
            return Err(Error::Conflict(format!(
                "a data key is wrapped under KEK version {version}, which the keyring file {} does not hold (it holds {:?}): the keys were rotated on another node. Give this node the rotated keyring (the nodes of a vault share its keys folder)",
                self.paths.keyring().display(),
                reloaded.versions()
            )));
        }
        tracing::info!(
            version,
            "loaded the keyring again: the keys were rotated by another process or node"
        );
        self.replace_keyring(reloaded.clone());
        Ok(reloaded)
    }

    /// The keyring to wrap new data keys with: its current KEK is the one the store records
    /// as current (one read), loaded again if another process or node rotated since.
    pub(crate) fn keyring_for_writing(&self) -> Result<Arc<Keyring>> {
        let recorded = self
            .readers
            .read(|conn| rows::meta(conn, META_CURRENT_KEK))?;
        let ring = self.keyring();
        match recorded.and_then(|v| v.parse::<u32>().ok()) {
            Some(current) if current != ring.current_version() => {
                let reloaded = Arc::new(Keyring::open(&self.paths.keyring(), &self.unlock)?);
                self.replace_keyring(reloaded.clone());
                Ok(reloaded)
            }
            _ => Ok(ring),
        }
    }

    /// Runs `write` with the keyring that new data keys are wrapped with. A key rotation
    /// that begins between choosing that keyring and the writer's check refuses the write
    /// ([`Error::KeysRotated`], nothing stored); it is then sealed once more, under the
    /// rotated keyring, so that a registration or an update beside `cvvault keys rotate`
    /// succeeds instead of answering 409.
    pub(crate) fn with_writing_keyring<T>(
        &self,
        mut write: impl FnMut(Arc<Keyring>) -> Result<T>,
    ) -> Result<T> {
        match write(self.keyring_for_writing()?) {
            Err(Error::KeysRotated {
                current,
                prepared_under,
            }) => {
                tracing::info!(
                    current,
                    prepared_under,
                    "a key rotation began while a write was prepared: sealing it again under the rotated keyring"
                );
                write(self.keyring_for_writing()?)
            }
            other => other,
        }
    }

    /// The MAC key of the rows authorization depends on.
    pub(crate) fn integrity(&self) -> &IntegrityKey {
        &self.integrity
    }

    /// How an operator entry's note names a principal: a subject by pseudonym, as the trail
    /// names subjects everywhere, others by id.
    pub(crate) fn audit_name(&self, id: &PrincipalId, role: Option<Role>) -> String {
        if role == Some(Role::Subject) || id.is_generated_subject() {
            self.pseudonyms().principal(id.as_str())
        } else {
            id.to_string()
        }
    }

    pub(crate) fn pseudonyms(&self) -> &Pseudonymizer {
        self.renderer.pseudonyms()
    }

    /// Renders audit entries ahead of the writer (see [`Renderer::prepare`]).
    pub(crate) fn renderer(&self) -> &Renderer {
        &self.renderer
    }

    /// Signs a checkpoint of the current tree if it grew since the last one.
    ///
    /// Once `audit verify` has found the trail damaged in this process, nothing more is signed:
    /// a checkpoint would vouch for a history that does not verify.
    pub fn sign_checkpoint(&self) -> Result<Option<String>> {
        if self.trail_failed.load(std::sync::atomic::Ordering::SeqCst) {
            return Ok(None);
        }
        let signer = self.signer.clone();
        let origin = self.origin.clone();
        self.writer
            .write(move |ctx| ctx.audit.checkpoint(ctx.conn, &signer, &origin))
    }

    /// Appends one audit entry on its own (a refusal, or an action with no other change).
    pub(crate) fn record(&self, record: Record) -> Result<()> {
        self.writer
            .write(move |ctx| ctx.audit.append(record).map(|_| ()))
    }

    // ----- the one refusal rule -----
    //
    // Whether a candidate exists, is erased, is protected, is damaged or is someone else's is
    // not for employers, providers or another candidate to learn (DOMAIN.md §1, §3). Every use
    // case that names a candidate returns through `conceal`, which both edges (HTTP and CLI)
    // render as they are; the real outcome is in the audit trail.

    /// Whether refusals about `candidate` (`None`: one not yet known, e.g. behind an
    /// assignment id) are hidden from `principal`: for employers and providers every
    /// candidate's, for a subject every candidate's but their own.
    pub(crate) fn hides(
        &self,
        principal: &PrincipalFacts,
        candidate: Option<&CandidateId>,
    ) -> bool {
        match principal.role {
            Role::Employer | Role::Provider => true,
            Role::Subject => principal.subject_of.as_ref() != candidate || candidate.is_none(),
            _ => false,
        }
    }

    /// The error a refusal about `candidate` gives `principal`: "not found" where the rule
    /// hides it ([`Vault::hides`]), else the refused `action` with the deciding policies.
    pub(crate) fn refusal(
        &self,
        principal: &PrincipalFacts,
        candidate: Option<&CandidateId>,
        (action, what): (Action, String),
        policy_ids: Vec<String>,
    ) -> Error {
        if self.hides(principal, candidate) {
            Error::NotFound { what: "candidate" }
        } else {
            self.denied(action, what, policy_ids)
        }
    }

    /// [`Error::Denied`] for `action` (described as `what`), naming the roles policy lets do it.
    pub(crate) fn denied(&self, action: Action, what: String, policy_ids: Vec<String>) -> Error {
        Error::Denied {
            action: what,
            policy_ids,
            may: self.policy.roles_permitted(action),
        }
    }

    /// Records a refused decision on a candidate (`record` names it) and returns the error
    /// to give ([`Vault::refusal`]).
    pub(crate) fn refuse(
        &self,
        principal: &PrincipalFacts,
        mut record: Record,
        action: (Action, String),
    ) -> Result<Error> {
        let hide = self.hides(principal, record.candidate.as_ref());
        record.decision = Outcome::Deny;
        record.note = Some(
            if hide {
                "not-found-or-unrelated"
            } else {
                "denied"
            }
            .into(),
        );
        let policy_ids = record.policy_ids.clone();
        let candidate = record.candidate;
        self.record(record)?;
        Ok(self.refusal(principal, candidate.as_ref(), action, policy_ids))
    }

    /// The outcome of a use case about `candidate` as `principal` may see it: where the rule
    /// hides it, every refusal, absence, conflict (a legal hold, a closed assignment) and
    /// damaged record is the same "`what` not found", with the same bytes and, through the
    /// decoy, the same cost. Errors that say nothing about the candidate (a malformed request,
    /// a quota, a failed audit write) pass as they are.
    pub(crate) fn conceal<T>(
        &self,
        principal: &PrincipalFacts,
        candidate: Option<&CandidateId>,
        what: &'static str,
        result: Result<T>,
    ) -> Result<T> {
        match result {
            Err(
                e @ (Error::Denied { .. }
                | Error::NotFound { .. }
                | Error::Conflict(_)
                | Error::AlreadyOpen { .. }
                | Error::KeysRotated { .. }
                | Error::LegalHold
                | Error::AlreadyHeld { .. }
                | Error::NotHeld
                | Error::DecryptionFailed
                | Error::Corrupt { .. }
                | Error::Forged { .. }),
            ) if self.hides(principal, candidate) => {
                if matches!(
                    e,
                    Error::DecryptionFailed | Error::Corrupt { .. } | Error::Forged { .. }
                ) {
                    // The operator must hear of a damaged record; the principal must not.
                    tracing::error!(error = %e, "a candidate's record is damaged; answered as not found (see `cvvault audit verify`)");
                }
                Err(Error::NotFound { what })
            }
            other => other,
        }
    }

    /// Records the refusal of everything a disabled principal asks, and returns the error to
    /// give: the principal is told it is disabled, not that policy denied it.
    pub(crate) fn refuse_disabled(&self, principal: &PrincipalFacts) -> Result<Error> {
        let mut record = Record::new(
            "authenticate",
            &actor(principal),
            Outcome::Deny,
            &new_request_id(),
        );
        record.note = Some("principal-disabled".into());
        self.record(record)?;
        Ok(Error::PrincipalDisabled {
            principal: principal.principal_id.to_string(),
        })
    }

    /// Records an operator action (outside policy: the operator holds the keyring).
    pub(crate) fn audit_operator(&self, action: &'static str, note: Option<String>) -> Result<()> {
        self.writer.write(move |ctx| {
            let mut record = operator_entry(action, String::new());
            record.note = note;
            ctx.audit.append(record).map(|_| ())
        })
    }

    /// Authenticates a principal by id: it must exist and be enabled.
    pub fn principal(&self, id: &PrincipalId) -> Result<PrincipalFacts> {
        if id.as_str() == "system" {
            return Ok(system_principal());
        }
        let row = self
            .readers
            .read(|conn| rows::principal(conn, &self.integrity, id))?;
        match row {
            Some(row) if !row.disabled => Ok(PrincipalFacts {
                principal_id: row.principal_id,
                role: row.role,
                org: row.org_id,
                subject_of: row.subject_of,
            }),
            Some(row) => Err(self.refuse_disabled(&PrincipalFacts {
                principal_id: row.principal_id,
                role: row.role,
                org: row.org_id,
                subject_of: row.subject_of,
            })?),
            None => Err(Error::UnknownPrincipal {
                principal: id.to_string(),
            }),
        }
    }

    /// Decides an extract (every field group) from the store's current facts, without
    /// recording or disclosing anything: the decision path of [`Vault::extract`], for
    /// explanations and measurement. `None` when there is no such candidate.
    pub fn decide_extract(
        &self,
        principal: &PrincipalFacts,
        candidate_id: &CandidateId,
        purpose: &crate::vocabulary::Purpose,
    ) -> Result<Option<crate::policy::ReadGrant>> {
        let facts = self
            .readers
            .read(|conn| self.candidate_facts_for(conn, candidate_id, Some(purpose)))?;
        Ok(facts.map(|(facts, _)| self.policy.decide_read(principal, &facts, purpose)))
    }

    /// Explains, per field group, what `principal` may see of a candidate for `purpose`.
    /// An operator's tool (the CLI); it discloses no profile content.
    pub fn explain(
        &self,
        principal: &PrincipalFacts,
        candidate_id: &CandidateId,
        purpose: &crate::vocabulary::Purpose,
    ) -> Result<Vec<crate::policy::Explanation>> {
        // An undeclared purpose is refused with the list, as an extract refuses it.
        self.policy.check_purpose(purpose)?;
        let facts =
            self.read_facts_for(principal, "policy.explain", candidate_id, Some(purpose))?;
        let mut record = Record::new(
            "policy.explain",
            &actor(principal),
            Outcome::Allow,
            &new_request_id(),
        );
        record.candidate = Some(*candidate_id);
        record.purpose = Some(purpose.to_string());
        let Some((facts, _)) = facts else {
            record.decision = Outcome::Deny;
            record.note = Some("not-found".into());
            self.record(record)?;
            return Err(Error::NotFound { what: "candidate" });
        };
        let explanation = self.policy.explain(principal, &facts, purpose);
        // What the principal may see is itself worth a line: who asked about whom, and when.
        record.groups = explanation
            .iter()
            .filter(|e| e.verdict == crate::policy::Verdict::Allow)
            .map(|e| e.group.to_string())
            .collect();
        record.note = Some("explanation only: nothing disclosed".into());
        self.record(record)?;
        Ok(explanation)
    }

    /// [`Vault::candidate_facts_for`] every purpose: the facts of actions other than a read.
    pub(crate) fn candidate_facts(
        &self,
        conn: &Db,
        id: &CandidateId,
    ) -> Result<Option<(CandidateFacts, Dek)>> {
        self.candidate_facts_for(conn, id, None)
    }

    /// The facts an erasure is decided on, which needs no plaintext. When the key slot or
    /// the control group fails to open (tampered or damaged), the candidate is taken as
    /// protected and without consent, the facts that allow least, so that it can still be
    /// erased where policy allows erasing any candidate; the flag says so, for the trail.
    /// `None` when there is no such candidate.
    pub(crate) fn erasure_facts(
        &self,
        conn: &Db,
        id: &CandidateId,
    ) -> Result<Option<(CandidateFacts, bool)>> {
        match self.candidate_facts(conn, id) {
            Ok(facts) => Ok(facts.map(|(facts, _)| (facts, false))),
            Err(Error::DecryptionFailed | Error::Corrupt { .. }) => {
                let (coaching_orgs, matching_orgs) =
                    rows::open_orgs(conn, &self.integrity, id, None)?;
                Ok(Some((
                    CandidateFacts {
                        candidate_id: *id,
                        protected: true,
                        employer_contact_consent: false,
                        coaching_orgs,
                        matching_orgs,
                    },
                    true,
                )))
            }
            Err(e) => Err(e),
        }
    }

    /// [`Vault::candidate_facts`] in a read of its own, for `principal` acting as `action`:
    /// a candidate whose keys or control group fail to open is refused (fail closed), and
    /// that refusal is in the audit trail like any other.
    pub(crate) fn read_facts(
        &self,
        principal: &PrincipalFacts,
        action: &'static str,
        id: &CandidateId,
    ) -> Result<Option<(CandidateFacts, Dek)>> {
        self.read_facts_for(principal, action, id, None)
    }

    /// [`Vault::read_facts`] for a read for `purpose` (see [`Vault::candidate_facts_for`]).
    pub(crate) fn read_facts_for(
        &self,
        principal: &PrincipalFacts,
        action: &'static str,
        id: &CandidateId,
        purpose: Option<&Purpose>,
    ) -> Result<Option<(CandidateFacts, Dek)>> {
        let facts = self
            .readers
            .read(|conn| self.candidate_facts_for(conn, id, purpose));
        if let Err(e @ (Error::DecryptionFailed | Error::Corrupt { .. } | Error::Forged { .. })) =
            &facts
        {
            let mut record =
                Record::new(action, &actor(principal), Outcome::Deny, &new_request_id());
            record.candidate = Some(*id);
            record.note = Some(format!("unreadable: {}", integrity_kind(e)));
            self.record(record)?;
        }
        facts
    }

    /// The facts policy needs about a candidate, and the candidate's DEK (to open groups
    /// later without unwrapping twice). `None` when there is no such candidate.
    ///
    /// With `purpose`, the organisations in the facts are those whose open assignment was
    /// opened for that purpose: policy decides a read on the assignments of its purpose only.
    pub(crate) fn candidate_facts_for(
        &self,
        conn: &Db,
        id: &CandidateId,
        purpose: Option<&Purpose>,
    ) -> Result<Option<(CandidateFacts, Dek)>> {
        let Some((keys, control)) = rows::candidate_keys_and_control(conn, &self.integrity, id)?
        else {
            return Ok(None);
        };
        let Some((version, sealed_control)) = control else {
            return Err(Error::Corrupt {
                what: "a candidate has keys but no sealed profile",
            });
        };
        let dek = Dek::unwrap(&*self.keyring_holding(keys.dek.kek_version)?, id, &keys.dek)?;
        let plain = dek
            .cipher(*id)?
            .open(FieldGroup::Control, version, &sealed_control)?;
        let control: Control = serde_json::from_slice(&plain).map_err(|_| Error::Corrupt {
            what: "a control group does not parse",
        })?;
        let (coaching_orgs, matching_orgs) =
            rows::open_orgs(conn, &self.integrity, id, purpose.map(Purpose::as_str))?;
        Ok(Some((
            CandidateFacts {
                candidate_id: *id,
                protected: control.protected,
                employer_contact_consent: control.consents.employer_contact,
                coaching_orgs,
                matching_orgs,
            },
            dek,
        )))
    }
}

/// Which integrity failure an error is, as an audit note names it (never its content).
pub(crate) fn integrity_kind(error: &Error) -> &'static str {
    match error {
        Error::DecryptionFailed => "decryption-failed",
        Error::Forged { .. } => "row-fails-integrity-check",
        _ => "corrupt",
    }
}

/// The built-in principal of the retention job.
pub fn system_principal() -> PrincipalFacts {
    PrincipalFacts {
        principal_id: PrincipalId::builtin("system"),
        role: Role::System,
        org: crate::ids::OrgId::builtin("agency"),
        subject_of: None,
    }
}

/// The audit actor for a principal.
pub(crate) fn actor(principal: &PrincipalFacts) -> Actor {
    Actor {
        id: principal.principal_id.to_string(),
        role: principal.role.as_str().to_owned(),
        org: Some(principal.org.to_string()),
    }
}

/// An operator action's entry (outside policy: the operator holds the keyring), with its
/// note, for a writer job that records it with the change it makes.
pub(crate) fn operator_entry(action: &'static str, note: String) -> Record {
    let mut record = Record::new(
        action,
        &Actor::operator(),
        Outcome::Allow,
        &new_request_id(),
    );
    record.note = Some(note);
    record
}

/// A fresh request id for entries that come from one command run.
pub fn new_request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn origin_key_name(origin: &str) -> String {
    origin.to_owned()
}

/// Writes the embedded default policy files that are missing. Returns what it wrote.
fn write_default_policy(paths: &Paths) -> Result<Vec<PathBuf>> {
    let dir = &paths.policy_dir;
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let schema = dir.join("vault.cedarschema");
    let has_policy = schema.exists();
    let mut written = Vec::new();
    if has_policy {
        return Ok(written);
    }
    for (name, text) in crate::policy::DEFAULT_FILES
        .iter()
        .chain(crate::settings::DEFAULT_FILES)
    {
        let path = dir.join(name);
        if !path.exists() {
            std::fs::write(&path, text).map_err(|e| Error::io(&path, e))?;
            written.push(path);
        }
    }
    Ok(written)
}

/// Vaults for the unit tests of the vault's modules.
#[cfg(test)]
pub(crate) mod testing {
    #![allow(clippy::unwrap_used)]

    use super::Vault;

    /// A new vault with a caseworker `cw` of the agency and an employer `emp` of `emp-org`.
    pub(crate) fn vault_with_cw_and_emp(dir: &std::path::Path) -> (crate::paths::Paths, Vault) {
        let paths = crate::paths::Paths::under(dir);
        Vault::init(
            &paths,
            super::InitOptions {
                passphrase: None,
                identity: None,
                recovery_recipients: vec![],
            },
        )
        .unwrap();
        let vault = Vault::open(&paths, &unlock(&paths)).unwrap();
        for (id, role, org) in [
            ("cw", crate::vocabulary::Role::Caseworker, "agency"),
            ("emp", crate::vocabulary::Role::Employer, "emp-org"),
        ] {
            vault
                .add_principal(id.parse().unwrap(), role, org.parse().unwrap(), None)
                .unwrap();
        }
        (paths, vault)
    }

    pub(crate) fn unlock(paths: &crate::paths::Paths) -> crate::crypto::keyring::Unlock {
        crate::crypto::keyring::Unlock::Identity(paths.default_identity())
    }

    /// Runs `write` through [`Vault::with_writing_keyring`] while `cvvault keys rotate`
    /// runs in another process (`operator`, a second vault on the same files) between the
    /// first choice of keyring and its write. Gives `write`'s result and the KEK version of
    /// each keyring it was given.
    pub(crate) fn beside_a_rotation<T>(
        vault: &Vault,
        (operator, paths): (&Vault, &crate::paths::Paths),
        mut write: impl FnMut(std::sync::Arc<crate::crypto::keyring::Keyring>) -> crate::Result<T>,
    ) -> (T, Vec<u32>) {
        let mut prepared_under = Vec::new();
        let written = vault
            .with_writing_keyring(|keyring| {
                prepared_under.push(keyring.current_version());
                if prepared_under.len() == 1 {
                    operator
                        .rotate_keys(&unlock(paths), super::RotateIdentity::Keep, &|_, _| {})
                        .unwrap();
                }
                write(keyring)
            })
            .unwrap();
        (written, prepared_under)
    }

    /// The KEK version the candidate's data key is wrapped under now.
    pub(crate) fn kek_version_of(vault: &Vault, id: &crate::ids::CandidateId) -> u32 {
        vault
            .readers()
            .read(|conn| crate::store::rows::candidate_keys(conn, vault.integrity(), id))
            .unwrap()
            .unwrap()
            .dek
            .kek_version
    }
}
