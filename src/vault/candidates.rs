//! Candidate use cases: register, import, extract, erase.

use std::io::BufRead;

use zeroize::Zeroizing;

use super::workers::Workers;
use super::{actor, new_request_id, Vault};
use crate::audit::entry::Outcome;
use crate::audit::log::{CandidateEntries, PreparedEntry, Record, Renderer};
use crate::crypto::envelope::{Dek, WrappedDek};
use crate::crypto::integrity::IntegrityKey;
use crate::crypto::keyring::Keyring;
use crate::error::{Error, Result};
use crate::ids::CandidateId;
use crate::policy::{Action, Allowed, PrincipalFacts, Request};
use crate::profile::Profile;
use crate::store::rows::{self, SealedProfile, RECORD_VERSION};
use crate::store::WriteCtx;
use crate::vocabulary::{FieldGroup, Purpose};

/// Candidates sealed and committed per transaction during an import.
const IMPORT_BATCH: usize = 2_000;
/// Batches the import's workers may be given beyond the one the writer is writing.
const SEAL_AHEAD: usize = 2;
/// Longest import line read (a profile is at most 256 KiB); a longer one is rejected unread.
const MAX_LINE: usize = 512 * 1024;

/// A decrypted extract: exactly the permitted groups, as JSON, in wiped-on-drop memory.
pub struct Extract {
    /// Whose.
    pub candidate_id: CandidateId,
    /// The groups it contains.
    pub groups: Vec<FieldGroup>,
    /// The groups policy refused.
    pub denied_groups: Vec<FieldGroup>,
    /// The deciding policy ids.
    pub policy_ids: Vec<String>,
    /// `{"candidate_id": ..., "groups": {...}}`.
    pub json: Zeroizing<Vec<u8>>,
    /// The audit entry that recorded the disclosure.
    pub audit_index: u64,
}

/// How `candidate import` treats bad lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportMode {
    /// One pass: import every good line, skip and report every bad one (the default).
    SkipBad,
    /// Two passes: validate every line first; import nothing if any line is bad.
    AllOrNothing,
}

/// What to import.
#[derive(Clone, Debug)]
pub struct ImportOptions {
    /// How bad lines are treated.
    pub mode: ImportMode,
    /// Import only these line numbers (from 1), e.g. the lines fixed after a first run.
    pub only_lines: Option<std::collections::BTreeSet<u64>>,
    /// A line whose agency reference is already registered replaces the groups it holds of
    /// that candidate's profile (an update, decided and audited as one), instead of being
    /// skipped.
    pub update_existing: bool,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            mode: ImportMode::SkipBad,
            only_lines: None,
            update_existing: false,
        }
    }
}

/// What became of one line of an import.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum LineOutcome {
    /// A new candidate was registered.
    Registered {
        /// Its id.
        candidate_id: CandidateId,
    },
    /// The line's agency reference is already registered: the line was skipped.
    AlreadyRegistered {
        /// The candidate that has it, when policy lets the importer find it.
        candidate_id: Option<CandidateId>,
    },
    /// The line's agency reference is already registered, and its groups replaced that
    /// candidate's.
    Updated {
        /// The candidate updated.
        candidate_id: CandidateId,
    },
    /// The line was refused (nothing was stored from it).
    Rejected {
        /// Why, with the JSON path.
        error: String,
    },
}

/// One line of an import's result.
#[derive(Clone, Debug, serde::Serialize)]
pub struct LineResult {
    /// The line number, from 1 (0: the file as a whole).
    pub line: u64,
    /// The line's agency reference, as the file gives it (empty when it has none or the line
    /// could not be read).
    pub agency_reference: String,
    /// What became of it.
    #[serde(flatten)]
    pub outcome: LineOutcome,
}

impl LineResult {
    /// A line refused, from its (line number, message).
    fn rejected((line, error): &(u64, String)) -> LineResult {
        LineResult {
            line: *line,
            agency_reference: String::new(),
            outcome: LineOutcome::Rejected {
                error: error.clone(),
            },
        }
    }
}

/// What an import did.
#[derive(Debug, serde::Serialize)]
pub struct ImportReport {
    /// Candidates registered.
    pub imported: u64,
    /// Every bad line: (line number from 1, message). In all-or-nothing mode a non-empty
    /// list means nothing was imported; in skip mode these lines were skipped.
    pub rejected: Vec<(u64, String)>,
    /// The mode the import ran in.
    #[serde(skip)]
    pub mode: Option<ImportMode>,
    /// The ids registered, in file order.
    #[serde(skip)]
    pub ids: Vec<CandidateId>,
    /// One result per line that held something (registered, already registered, updated or
    /// rejected), in line order: what `candidate import --results` writes.
    #[serde(skip)]
    pub lines: Vec<LineResult>,
    /// Lines registered without an agency reference: importing the file again would register
    /// them again.
    pub without_reference: u64,
    /// The lines asked for (`only_lines`) that hold no profile: past the end, 0, or blank.
    #[serde(skip)]
    pub not_in_file: Vec<u64>,
}

/// A profile sealed, with its registration entry prepared, ready to insert.
struct SealedCandidate {
    /// The import line it came from (0 for a single registration).
    line: u64,
    /// Its agency reference as given, and that reference's HMAC.
    reference: Option<(String, [u8; 32])>,
    /// Set by the writer: the reference was already registered, so nothing was stored.
    duplicate: bool,
    id: CandidateId,
    dek: WrappedDek,
    /// The fingerprint of the KEK that wrapped `dek`, checked against the database's record.
    kek_id: Option<String>,
    sealed: SealedProfile,
    entry: PreparedEntry,
}

/// The audit entries of candidates registered by `principal` under one decision: one
/// `candidate.register` record, rendered once (`import` is the note of a bulk import).
fn registration_entries(
    renderer: &Renderer,
    principal: &PrincipalFacts,
    request_id: &str,
    policy_ids: Vec<String>,
    note: Option<&str>,
) -> Result<CandidateEntries> {
    let mut record = Record::new(
        "candidate.register",
        &actor(principal),
        Outcome::Allow,
        request_id,
    );
    record.groups = FieldGroup::ALL.iter().map(|g| g.to_string()).collect();
    record.policy_ids = policy_ids;
    record.note = note.map(str::to_owned);
    renderer.prepare_for_candidates(record)
}

/// Seals a profile under a new DEK and prepares its registration entry: all the work of a
/// registration that needs no database, done before the writer is involved.
///
/// `document_len` is the length of the document it was parsed from, if any (0 if none).
fn seal_profile(
    keyring: &Keyring,
    integrity: &IntegrityKey,
    entries: &CandidateEntries,
    (line, profile): (u64, &Profile),
    document_len: usize,
) -> Result<SealedCandidate> {
    let id = CandidateId::random();
    let dek = Dek::generate()?;
    let cipher = dek.cipher(id)?;
    let groups = cipher.seal_all(RECORD_VERSION, profile.group_texts(document_len)?.all())?;
    let dek = dek.wrap(keyring, &id)?;
    let reference = profile
        .agency_reference
        .as_ref()
        .map(|r| (r.clone(), integrity.reference_mac(r)));
    Ok(SealedCandidate {
        line,
        reference,
        duplicate: false,
        id,
        kek_id: keyring.kek_id(dek.kek_version),
        dek,
        sealed: SealedProfile {
            record_version: RECORD_VERSION,
            groups,
        },
        entry: entries.entry(&id),
    })
}

/// The writer's part of registering sealed candidates: their rows and entries, in the job's
/// transaction, each statement prepared once for the batch.
///
/// The batch is handed back, to be freed by the caller: the writer is an import's critical
/// path, and freeing thousands of buffers that other threads allocated costs it a few
/// percent of its time.
/// A candidate whose agency reference is already registered (in the vault, or earlier in the
/// batch) is not stored and is marked [`SealedCandidate::duplicate`].
fn insert_sealed(
    ctx: &mut WriteCtx<'_>,
    allowed: &Allowed,
    mut batch: Vec<SealedCandidate>,
) -> Result<Vec<SealedCandidate>> {
    let Some(first) = batch.first() else {
        return Ok(batch);
    };
    // INVARIANT: a batch is sealed under one keyring, so one KEK version.
    rows::check_current_kek(ctx.conn, first.dek.kek_version, first.kek_id.as_deref())?;
    let now = ctx.audit.now();
    let mut inserter = rows::CandidateInserter::new(ctx.conn, ctx.integrity, allowed)?;
    // A reference registered before, or earlier in this batch, makes the line a duplicate.
    let references: Vec<&[u8]> = batch
        .iter()
        .filter_map(|candidate| candidate.reference.as_ref().map(|(_, mac)| &mac[..]))
        .collect();
    let mut taken = rows::registered_references(ctx.conn, ctx.integrity, &references)?;
    for candidate in &mut batch {
        if let Some((_, mac)) = &candidate.reference {
            candidate.duplicate = !taken.insert(mac.to_vec());
        }
    }
    let new: Vec<rows::NewCandidate<'_>> = batch
        .iter()
        .filter(|candidate| !candidate.duplicate)
        .map(|candidate| rows::NewCandidate {
            id: &candidate.id,
            dek: &candidate.dek,
            sealed: &candidate.sealed,
            reference_mac: candidate.reference.as_ref().map(|(_, mac)| &mac[..]),
        })
        .collect();
    inserter.insert_all(now, &new)?;
    drop(new);
    ctx.audit.append_all(
        batch
            .iter()
            .filter(|candidate| !candidate.duplicate)
            .map(|candidate| &candidate.entry),
    )?;
    Ok(batch)
}

impl Vault {
    fn authorize_register(
        &self,
        principal: &PrincipalFacts,
        request_id: &str,
    ) -> Result<std::sync::Arc<Allowed>> {
        let decision = self
            .policy
            .decide(&Request::on_vault(principal, Action::Register));
        let policy_ids = decision.policy_ids().to_vec();
        if let Some(allowed) = decision.allowed() {
            return Ok(std::sync::Arc::new(allowed));
        }
        let mut record = Record::new(
            "candidate.register",
            &actor(principal),
            Outcome::Deny,
            request_id,
        );
        record.policy_ids = policy_ids.clone();
        self.record(record)?;
        Err(self.denied(
            Action::Register,
            "registering candidates".into(),
            policy_ids,
        ))
    }

    /// Registers one candidate.
    pub fn register(&self, principal: &PrincipalFacts, profile: &Profile) -> Result<CandidateId> {
        let request_id = new_request_id();
        let allowed = self.authorize_register(principal, &request_id)?;
        profile.validate()?;
        self.store_registered(principal, profile, 0, request_id, allowed)
    }

    /// Seals and stores a validated profile whose registration policy allowed, with its entry
    /// (`document_len`: as in `seal_profile`).
    fn store_registered(
        &self,
        principal: &PrincipalFacts,
        profile: &Profile,
        document_len: usize,
        request_id: String,
        allowed: std::sync::Arc<Allowed>,
    ) -> Result<CandidateId> {
        let entries = registration_entries(
            self.renderer(),
            principal,
            &request_id,
            allowed.policy_ids().to_vec(),
            None,
        )?;
        self.with_writing_keyring(|keyring| {
            self.seal_and_store(&keyring, &entries, (profile, document_len), &allowed)
        })
    }

    /// Seals one profile under `keyring` and stores it with its entry.
    fn seal_and_store(
        &self,
        keyring: &Keyring,
        entries: &CandidateEntries,
        (profile, document_len): (&Profile, usize),
        allowed: &std::sync::Arc<Allowed>,
    ) -> Result<CandidateId> {
        let sealed = seal_profile(
            keyring,
            &self.integrity,
            entries,
            (0, profile),
            document_len,
        )?;
        let id = sealed.id;
        let allowed = std::sync::Arc::clone(allowed);
        let stored = self
            .writer
            .write(move |ctx| insert_sealed(ctx, &allowed, vec![sealed]))?;
        if stored.iter().any(|candidate| candidate.duplicate) {
            return Err(Error::DuplicateReference);
        }
        Ok(id)
    }

    /// Registers one candidate from a profile document (cvvault JSON or JSON Resume). Decided
    /// before the document is parsed, so a principal who may not register gets the refusal,
    /// not a report on the document.
    ///
    /// `reference` is the agency's own reference for the candidate, when it is given beside
    /// the document rather than in it (`agency_reference`); the two must not differ. A
    /// reference already registered is [`Error::DuplicateReference`], and nothing is stored.
    pub fn register_document(
        &self,
        principal: &PrincipalFacts,
        document: &[u8],
        reference: Option<&str>,
    ) -> Result<CandidateId> {
        let request_id = new_request_id();
        let allowed = self.authorize_register(principal, &request_id)?;
        // `from_document` validates what it parses.
        let mut profile = Profile::from_document(document)?;
        if let Some(reference) = reference {
            crate::profile::check_agency_reference(reference)?;
            match &profile.agency_reference {
                Some(written) if written != reference => {
                    return Err(Error::invalid_input(
                        "the document's agency_reference differs from the reference given beside it: give one of them",
                    ))
                }
                _ => profile.agency_reference = Some(reference.to_owned()),
            }
        }
        self.store_registered(principal, &profile, document.len(), request_id, allowed)
    }

    /// Imports newline-delimited profiles (cvvault or JSON Resume documents).
    ///
    /// [`ImportMode::SkipBad`] reads the file once: lines are parsed and sealed on every core
    /// while the previous batch commits; a bad line is skipped and reported with its number
    /// and JSON path. [`ImportMode::AllOrNothing`] first validates every line (a second
    /// read, `open` is called twice) and writes nothing if any is bad. Either way the file's
    /// good lines are committed in batched transactions, each candidate with its audit entry.
    /// `progress(phase, lines done)` reports as it goes.
    pub fn import(
        &self,
        principal: &PrincipalFacts,
        open: &dyn Fn() -> Result<Box<dyn BufRead>>,
        options: &ImportOptions,
        progress: &dyn Fn(ImportPhase, u64),
    ) -> Result<ImportReport> {
        let request_id = new_request_id();
        let allowed = self.authorize_register(principal, &request_id)?;
        let wanted = |n: u64| {
            options
                .only_lines
                .as_ref()
                .is_none_or(|set| set.contains(&n))
        };

        if options.mode == ImportMode::AllOrNothing {
            // Pass 1: parse and validate everything, on every core; nothing is written.
            let validate = |(number, line): &(u64, Vec<u8>)| {
                Profile::from_document(line)
                    .err()
                    .map(|e| (*number, e.to_string()))
            };
            let (rejected, total, not_in_file) = std::thread::scope(|scope| -> Result<_> {
                let mut workers = Workers::start(scope, &validate);
                let mut rejected = Vec::new();
                let mut total = 0u64;
                let mut found = std::collections::BTreeSet::new();
                let mut chunk: Vec<(u64, Vec<u8>)> = Vec::with_capacity(IMPORT_BATCH);
                let file_lines = for_each_line(open()?, |number, line| {
                    if wanted(number) {
                        found.insert(number);
                        total += 1;
                        let Line::Text(line) = line else {
                            rejected.push((number, too_long()));
                            return Ok(());
                        };
                        chunk.push((number, line.to_vec()));
                        if chunk.len() == IMPORT_BATCH {
                            rejected.extend(
                                workers
                                    .map(std::mem::take(&mut chunk))?
                                    .into_iter()
                                    .flatten(),
                            );
                            progress(ImportPhase::Validate, number);
                        }
                    }
                    Ok(())
                })?;
                rejected.extend(workers.map(chunk)?.into_iter().flatten());
                let missing = lines_not_found(options, file_lines, &found);
                let not_in_file: Vec<u64> = missing.iter().map(|(n, _)| *n).collect();
                rejected.extend(missing);
                Ok((rejected, total, not_in_file))
            })?;
            if !rejected.is_empty() || total == 0 {
                let mut rejected = rejected;
                if rejected.is_empty() {
                    rejected.push((
                        0,
                        "the file holds no profile: one JSON document per line expected".into(),
                    ));
                }
                let lines = rejected.iter().map(LineResult::rejected).collect();
                return Ok(ImportReport {
                    imported: 0,
                    rejected,
                    ids: Vec::new(),
                    lines,
                    without_reference: 0,
                    not_in_file,
                    mode: Some(options.mode),
                });
            }
        }

        // Parse and seal on every core while the writer inserts and commits: the workers are
        // kept up to SEAL_AHEAD batches ahead of the one being written, so that neither waits
        // for the other when a batch takes longer than usual on one side.
        let keyring = self.keyring_for_writing()?;
        let entries = registration_entries(
            self.renderer(),
            principal,
            &request_id,
            allowed.policy_ids().to_vec(),
            Some("import"),
        )?;
        let seal = |(number, line): &(u64, Vec<u8>)| {
            (
                *number,
                Profile::from_document(line).and_then(|p| {
                    seal_profile(
                        &keyring,
                        &self.integrity,
                        &entries,
                        (*number, &p),
                        line.len(),
                    )
                }),
            )
        };
        let mut stored = Stored::default();
        let mut rejected = Vec::new();
        let mut submitted = 0u64;
        let mut found = std::collections::BTreeSet::new();
        let mut file_lines = 0u64;
        std::thread::scope(|scope| -> Result<()> {
            let mut workers = Workers::start(scope, &seal);
            // The batch the writer holds, if any.
            let mut committed: Option<std::sync::mpsc::Receiver<Result<Vec<SealedCandidate>>>> =
                None;
            // Hands the oldest sealed batch to the writer once the one before has committed.
            let mut write_oldest = |workers: &mut Workers<_, (u64, Result<SealedCandidate>)>,
                                    committed: &mut Option<_>|
             -> Result<()> {
                let mut batch = Vec::with_capacity(IMPORT_BATCH);
                for (number, sealed) in workers.receive()? {
                    match sealed {
                        Ok(candidate) => batch.push(candidate),
                        Err(e) => rejected.push((number, e.to_string())),
                    }
                }
                let count = batch.len() as u64;
                if let Some(previous) = committed.take() {
                    stored.add(wait_for(previous)?);
                }
                let allowed = std::sync::Arc::clone(&allowed);
                *committed = Some(self.writer.submit(move |ctx| {
                    ctx.mark_bulk();
                    insert_sealed(ctx, &allowed, batch)
                })?);
                submitted += count;
                progress(ImportPhase::Write, submitted);
                Ok(())
            };
            let mut lines: Vec<(u64, Vec<u8>)> = Vec::with_capacity(IMPORT_BATCH);
            let mut too_long_lines = Vec::new();
            let read = open().and_then(|reader| {
                for_each_line(reader, |number, line| {
                    if wanted(number) {
                        found.insert(number);
                        let Line::Text(line) = line else {
                            too_long_lines.push((number, too_long()));
                            return Ok(());
                        };
                        lines.push((number, line.to_vec()));
                        if lines.len() == IMPORT_BATCH {
                            workers.send(std::mem::replace(
                                &mut lines,
                                Vec::with_capacity(IMPORT_BATCH),
                            ))?;
                            if workers.in_flight() > SEAL_AHEAD {
                                write_oldest(&mut workers, &mut committed)?;
                            }
                        }
                    }
                    Ok(())
                })
            });
            let written = read.and_then(|last| {
                file_lines = last;
                if !lines.is_empty() {
                    workers.send(std::mem::take(&mut lines))?;
                }
                while workers.in_flight() > 0 {
                    write_oldest(&mut workers, &mut committed)?;
                }
                Ok(())
            });
            // Whatever stopped the import, the batch the writer holds has committed or failed
            // before it returns: nothing goes on being written after an error is reported.
            let last = match committed.take().map(wait_for) {
                Some(Ok(batch)) => {
                    stored.add(batch);
                    Ok(())
                }
                Some(Err(e)) => Err(e),
                None => Ok(()),
            };
            rejected.extend(too_long_lines);
            written.and(last)
        })?;
        let missing = lines_not_found(options, file_lines, &found);
        let not_in_file: Vec<u64> = missing.iter().map(|(n, _)| *n).collect();
        rejected.extend(missing);
        let Stored {
            ids,
            mut lines,
            duplicates,
            without_reference,
        } = stored;
        if ids.is_empty() && duplicates.is_empty() && rejected.is_empty() {
            rejected.push((
                0,
                "the file holds no profile: one JSON document per line expected".into(),
            ));
        }
        let outcomes =
            self.settle_duplicates(principal, open, options, duplicates, &mut rejected)?;
        lines.extend(outcomes);
        rejected.sort_by_key(|(n, _)| *n);
        lines.extend(rejected.iter().map(LineResult::rejected));
        lines.sort_by_key(|l| l.line);
        Ok(ImportReport {
            imported: ids.len() as u64,
            rejected,
            ids,
            lines,
            without_reference,
            not_in_file,
            mode: Some(options.mode),
        })
    }

    /// The lines of an import whose agency reference was already registered: each is looked
    /// up (`find`, decided and audited), then skipped, or, with
    /// [`ImportOptions::update_existing`], read again from the file and applied as an update
    /// of that candidate. An update that fails is reported as the line's error.
    fn settle_duplicates(
        &self,
        principal: &PrincipalFacts,
        open: &dyn Fn() -> Result<Box<dyn BufRead>>,
        options: &ImportOptions,
        duplicates: Vec<(u64, String)>,
        errors: &mut Vec<(u64, String)>,
    ) -> Result<Vec<LineResult>> {
        let mut documents = std::collections::BTreeMap::new();
        if options.update_existing && !duplicates.is_empty() {
            let wanted: std::collections::BTreeSet<u64> =
                duplicates.iter().map(|(line, _)| *line).collect();
            for_each_line(open()?, |number, line| {
                if let (true, Line::Text(text)) = (wanted.contains(&number), line) {
                    documents.insert(number, text.to_vec());
                }
                Ok(())
            })?;
        }
        let mut outcomes = Vec::with_capacity(duplicates.len());
        let mut updated_any = false;
        for (line, reference) in duplicates {
            let found = self.find_by_reference(principal, &reference);
            let outcome = match (found, documents.get(&line)) {
                (Ok(id), Some(document)) => {
                    match self.update_quietly(principal, &id, document, None) {
                        Ok(_) => {
                            updated_any = true;
                            LineOutcome::Updated { candidate_id: id }
                        }
                        Err(e) => {
                            errors.push((line, format!("{e} (agency reference already registered as {id}; nothing was changed)")));
                            continue;
                        }
                    }
                }
                (Ok(id), None) if !options.update_existing => LineOutcome::AlreadyRegistered {
                    candidate_id: Some(id),
                },
                (Ok(_), None) => {
                    errors.push((
                        line,
                        "the line changed while it was imported: import it again".into(),
                    ));
                    continue;
                }
                (Err(Error::NotFound { .. } | Error::Denied { .. }), _) => {
                    LineOutcome::AlreadyRegistered { candidate_id: None }
                }
                (Err(e), _) => return Err(e),
            };
            outcomes.push(LineResult {
                line,
                agency_reference: reference,
                outcome,
            });
        }
        if updated_any {
            self.truncate_wal()?;
        }
        Ok(outcomes)
    }

    /// Decides, audits, then decrypts exactly the permitted groups of one candidate.
    ///
    /// INVARIANT: the audit entry is committed before any plaintext is opened for release.
    /// An employer or provider gets [`Error::NotFound`] both for a missing candidate and for
    /// one it has no open assignment with (or may not see at all), so ids cannot be probed.
    pub fn extract(
        &self,
        principal: &PrincipalFacts,
        candidate_id: &CandidateId,
        purpose: &Purpose,
    ) -> Result<Extract> {
        let extract = self.extract_deciding_first(principal, candidate_id, purpose, || {});
        self.conceal(principal, Some(candidate_id), "candidate", extract)
    }

    /// [`Vault::extract`], with `meanwhile` run between the decision on a read snapshot and
    /// the transaction that records the disclosure: where another request can change the
    /// facts the decision rests on (the tests close an assignment there).
    fn extract_deciding_first(
        &self,
        principal: &PrincipalFacts,
        candidate_id: &CandidateId,
        purpose: &Purpose,
        meanwhile: impl FnOnce(),
    ) -> Result<Extract> {
        let request_id = new_request_id();
        if let Err(unknown) = self.policy.check_purpose(purpose) {
            // Not a question about the candidate: refused, and on the record, before it is read.
            let mut record = Record::new("extract", &actor(principal), Outcome::Deny, &request_id);
            record.candidate = Some(*candidate_id);
            record.purpose = Some(purpose.to_string());
            record.note = Some("unknown-purpose".into());
            self.record(record)?;
            return Err(unknown);
        }
        // Decided on one read snapshot; the sealed groups are read only on a grant of some.
        let read = self.readers.read(|conn| {
            let Some((facts, dek)) = self.candidate_facts_for(conn, candidate_id, Some(purpose))?
            else {
                return Ok(None);
            };
            let grant = self.policy.decide_read(principal, &facts, purpose);
            let sealed = if grant.is_empty() {
                None
            } else {
                Some(rows::sealed_profile(conn, &grant)?.ok_or(Error::Corrupt {
                    what: "a candidate has keys but no sealed profile",
                })?)
            };
            Ok(Some((facts, dek, grant, sealed)))
        });
        let actor = actor(principal);
        let requested: Vec<String> = FieldGroup::DISCLOSABLE
            .iter()
            .map(|g| g.to_string())
            .collect();
        let read = match read {
            Ok(read) => read,
            Err(e @ (Error::DecryptionFailed | Error::Corrupt { .. } | Error::Forged { .. })) => {
                // Fail closed, and on the record: a candidate that cannot be opened is an
                // event a DPO must see. Where it is concealed, it costs what "not found" does.
                if self.hides(principal, Some(candidate_id)) {
                    self.decoy_read(principal, candidate_id, purpose);
                }
                let mut record = Record::new("extract", &actor, Outcome::Deny, &request_id);
                record.candidate = Some(*candidate_id);
                record.purpose = Some(purpose.to_string());
                record.groups = requested;
                record.note = Some(format!("unreadable: {}", super::integrity_kind(&e)));
                self.record(record)?;
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        let Some((facts, dek, grant, sealed)) = read else {
            if self.hides(principal, Some(candidate_id)) {
                // INVARIANT: "not found" costs what "not yours" costs (see `decoy`).
                self.decoy_read(principal, candidate_id, purpose);
            }
            let mut record = Record::new("extract", &actor, Outcome::Deny, &request_id);
            record.candidate = Some(*candidate_id);
            record.purpose = Some(purpose.to_string());
            record.groups = requested;
            record.note = Some("not-found".into());
            self.record(record)?;
            return Err(Error::NotFound { what: "candidate" });
        };
        let allowed = grant.allowed_groups();
        let mut record = Record::new("extract", &actor, Outcome::Allow, &request_id);
        record.candidate = Some(*candidate_id);
        record.purpose = Some(purpose.to_string());
        record.policy_ids = grant.policy_ids();
        let Some(sealed) = sealed else {
            record.groups = requested;
            return Err(self.refuse(
                principal,
                record,
                (
                    Action::Read,
                    format!("reading this candidate for purpose {purpose}"),
                ),
            )?);
        };
        record.groups = allowed.iter().map(|g| g.to_string()).collect();
        let id = *candidate_id;
        meanwhile();
        let (policy, who, why) = (self.policy.clone(), principal.clone(), purpose.clone());
        let expected = allowed.clone();
        let written = self.writer.write(move |ctx| {
            // The decision was made on a read snapshot. Inside the transaction that records
            // the disclosure, the facts it rests on are read again (in one statement): a
            // candidate erased, an assignment closed or the principal disabled a moment ago is
            // no longer a ground for it.
            let Some(rows::DisclosureGrounds {
                coaching_orgs,
                matching_orgs,
                principal: row,
            }) = rows::disclosure_grounds(
                ctx.conn,
                ctx.integrity,
                &id,
                why.as_str(),
                &who.principal_id,
            )?
            else {
                return Err(Error::NotFound { what: "candidate" });
            };
            let enabled =
                who.role == crate::vocabulary::Role::System || row.is_some_and(|row| !row.disabled);
            let still =
                if coaching_orgs == facts.coaching_orgs && matching_orgs == facts.matching_orgs {
                    expected.clone()
                } else {
                    let now = crate::policy::CandidateFacts {
                        coaching_orgs,
                        matching_orgs,
                        ..facts
                    };
                    policy.decide_read(&who, &now, &why).allowed_groups()
                };
            if !enabled || still != expected {
                record.decision = Outcome::Deny;
                record.note = Some("grounds-changed".into());
                ctx.audit.append(record)?;
                return Ok(None);
            }
            ctx.audit.append(record).map(Some)
        })?;
        let Some(audit_index) = written else {
            return Err(self.refusal(
                principal,
                Some(candidate_id),
                (
                    Action::Read,
                    format!("reading this candidate for purpose {purpose}"),
                ),
                Vec::new(),
            ));
        };
        // Only now, with the disclosure on record, is plaintext opened.
        let cipher = dek.cipher(id)?;
        let mut opened = Vec::with_capacity(allowed.len());
        for group in &allowed {
            opened.push((
                *group,
                cipher.open(*group, sealed.record_version, sealed.group(*group))?,
            ));
        }
        let json = extract_json(&id, &opened);
        Ok(Extract {
            candidate_id: id,
            groups: allowed,
            denied_groups: grant.denied_groups(),
            policy_ids: grant.policy_ids(),
            json,
            audit_index,
        })
    }

    /// Erases a candidate by crypto-shredding (wrapped DEK and ciphertexts deleted in one
    /// transaction with the audit entry), then truncates the WAL so no copy lingers there.
    pub fn erase(&self, principal: &PrincipalFacts, candidate_id: &CandidateId) -> Result<()> {
        let erased = self.erase_decided(principal, candidate_id);
        self.conceal(principal, Some(candidate_id), "candidate", erased)
    }

    fn erase_decided(&self, principal: &PrincipalFacts, candidate_id: &CandidateId) -> Result<()> {
        let request_id = new_request_id();
        // Erasure needs no plaintext: a candidate whose keys or control group no longer open
        // is decided on the most restrictive facts, and can still be shredded.
        let facts = self
            .readers
            .read(|conn| self.erasure_facts(conn, candidate_id))?;
        let actor = actor(principal);
        let mut record = Record::new("candidate.erase", &actor, Outcome::Deny, &request_id);
        record.candidate = Some(*candidate_id);
        let Some((facts, unreadable)) = facts else {
            if self.hides(principal, Some(candidate_id)) {
                // INVARIANT: "not found" costs what "not yours" costs (see `decoy`).
                let asked = self.pseudonyms().candidate(candidate_id);
                self.decoy_work(principal, &asked, |facts| {
                    std::hint::black_box(self.policy.decide(&Request::on_candidate(
                        principal,
                        Action::Erase,
                        facts,
                    )));
                });
            }
            record.note = Some("not-found".into());
            self.record(record)?;
            return Err(Error::NotFound { what: "candidate" });
        };
        if unreadable {
            record.note = Some("unreadable: decided as protected".into());
        }
        let decision = self
            .policy
            .decide(&Request::on_candidate(principal, Action::Erase, &facts));
        record.policy_ids = decision.policy_ids().to_vec();
        let Some(allowed) = decision.allowed() else {
            return Err(self.refuse(
                principal,
                record,
                (Action::Erase, "erasing this candidate".into()),
            )?);
        };
        record.groups = FieldGroup::ALL.iter().map(|g| g.to_string()).collect();
        // INVARIANT: the hold is checked in the transaction that erases, so a hold that was
        // acknowledged before it is never overtaken.
        let erasure = self.writer.write(move |ctx| {
            let erasure = rows::erase_candidate(
                ctx.conn,
                ctx.integrity,
                &allowed,
                rows::EraseCondition::NotHeld,
            )?;
            match erasure {
                rows::Erasure::Gone => return Err(Error::NotFound { what: "candidate" }),
                rows::Erasure::Erased => record.decision = Outcome::Allow,
                rows::Erasure::Held | rows::Erasure::NotDue => {
                    record.note = Some("legal-hold".into());
                }
            }
            ctx.audit.append(record)?;
            Ok(erasure)
        })?;
        if erasure != rows::Erasure::Erased {
            return Err(Error::LegalHold);
        }
        self.truncate_wal()?;
        Ok(())
    }

    /// `PRAGMA wal_checkpoint(TRUNCATE)`: moves committed pages into the database (where
    /// secure_delete has zeroed erased ones) and empties the WAL.
    pub fn truncate_wal(&self) -> Result<()> {
        self.writer.write(|_| Ok(()))?;
        // A reader in another process can hold the WAL open; then the checkpoint is partial
        // ("busy") and erased pages could stay in the WAL. Retry for a while, then warn.
        for attempt in 0..50u32 {
            let busy = self.readers.checkpoint_truncate()?;
            if !busy {
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(
                20 * u64::from(attempt.min(10) + 1),
            ));
        }
        // A later checkpoint only copies frames back and rewinds the WAL; it does not wipe
        // it, so the erased candidate's old frames stay in the WAL file until they are
        // overwritten or the WAL is truncated (the next erasure, or the last connection's
        // close, tries again).
        tracing::warn!(
            "the WAL could not be truncated because another process kept reading the database: the erased candidate's old pages stay in data/vault.db-wal until it is truncated. Stop long-running readers (e.g. a backup) and run `cvvault retention run`, or restart `cvvault serve`, to truncate it"
        );
        Ok(())
    }

    /// Number of candidates held (a count, never a list: nobody browses the population).
    pub fn candidate_count(&self) -> Result<u64> {
        self.readers.read(rows::candidate_count)
    }
}

/// The phases of an import, for progress reporting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportPhase {
    /// Every line is being parsed and validated.
    Validate,
    /// Sealed batches are being written.
    Write,
}

/// Waits for a batch the writer holds to commit; the batch comes back, to be read and freed.
fn wait_for(
    batch: std::sync::mpsc::Receiver<Result<Vec<SealedCandidate>>>,
) -> Result<Vec<SealedCandidate>> {
    batch.recv().map_err(|_| stopped())?
}

/// What the committed batches of an import stored.
#[derive(Default)]
struct Stored {
    /// The candidates registered, in file order.
    ids: Vec<CandidateId>,
    /// Their lines' results.
    lines: Vec<LineResult>,
    /// Lines whose reference was already registered: (line, reference).
    duplicates: Vec<(u64, String)>,
    /// Candidates registered without a reference.
    without_reference: u64,
}

impl Stored {
    /// Takes the results of one committed batch, and frees it.
    fn add(&mut self, batch: Vec<SealedCandidate>) {
        for candidate in &batch {
            let reference = candidate.reference.as_ref().map(|(r, _)| r.clone());
            if candidate.duplicate {
                self.duplicates
                    .push((candidate.line, reference.unwrap_or_default()));
                continue;
            }
            if reference.is_none() {
                self.without_reference += 1;
            }
            self.ids.push(candidate.id);
            self.lines.push(LineResult {
                line: candidate.line,
                agency_reference: reference.unwrap_or_default(),
                outcome: LineOutcome::Registered {
                    candidate_id: candidate.id,
                },
            });
        }
    }
}

fn stopped() -> Error {
    Error::AuditWrite {
        reason: "the writer has stopped".into(),
    }
}

/// One line of an import file, as [`for_each_line`] gives it.
enum Line<'a> {
    /// The line, trimmed.
    Text(&'a [u8]),
    /// A line longer than [`MAX_LINE`]: read past, never held whole in memory.
    TooLong,
}

/// Why a [`Line::TooLong`] is rejected.
fn too_long() -> String {
    format!(
        "the line is longer than {} KiB: one profile per line, at most 256 KiB each",
        MAX_LINE / 1024
    )
}

/// Calls `f(line number, line)` for each non-blank line, holding at most [`MAX_LINE`] bytes
/// of a line in memory: a longer one is read past and given as [`Line::TooLong`].
fn for_each_line<R: BufRead>(
    mut reader: R,
    mut f: impl FnMut(u64, Line<'_>) -> Result<()>,
) -> Result<u64> {
    let read_error = |e| Error::io("import file", e);
    let mut buffer = Vec::with_capacity(8 * 1024);
    let mut number = 0u64;
    loop {
        buffer.clear();
        let n = std::io::Read::take(reader.by_ref(), MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut buffer)
            .map_err(read_error)?;
        if n == 0 {
            return Ok(number);
        }
        number += 1;
        if buffer.len() > MAX_LINE && buffer.last() != Some(&b'\n') {
            skip_line(&mut reader).map_err(read_error)?;
            f(number, Line::TooLong)?;
            continue;
        }
        let line = buffer.trim_ascii();
        if !line.is_empty() {
            f(number, Line::Text(line))?;
        }
    }
}

/// The lines asked for (`only_lines`) that hold no profile: past the end of the file, or
/// blank. Each is reported, so that a wrong line number never looks like an empty file.
fn lines_not_found(
    options: &ImportOptions,
    file_lines: u64,
    found: &std::collections::BTreeSet<u64>,
) -> Vec<(u64, String)> {
    let Some(asked) = &options.only_lines else {
        return Vec::new();
    };
    asked
        .iter()
        .filter(|n| !found.contains(n))
        .map(|&n| {
            (
                n,
                if n == 0 {
                    "lines are numbered from 1: there is no line 0".to_owned()
                } else if n > file_lines {
                    format!(
                        "the file has only {file_lines} line(s), numbered from 1: there is no line {n}, so nothing was imported from it"
                    )
                } else {
                    "the line is blank: there is no profile on it".to_owned()
                },
            )
        })
        .collect()
}

/// Reads past the rest of the current line, without keeping it.
fn skip_line<R: BufRead>(reader: &mut R) -> std::io::Result<()> {
    loop {
        let chunk = reader.fill_buf()?;
        if chunk.is_empty() {
            return Ok(());
        }
        match chunk.iter().position(|b| *b == b'\n') {
            Some(end) => {
                reader.consume(end + 1);
                return Ok(());
            }
            None => {
                let all = chunk.len();
                reader.consume(all);
            }
        }
    }
}

/// `{"candidate_id":"...","groups":{"identity":{...},...}}` built from the opened groups'
/// JSON without re-parsing it, into memory that is wiped on drop.
fn extract_json(
    id: &CandidateId,
    opened: &[(FieldGroup, Zeroizing<Vec<u8>>)],
) -> Zeroizing<Vec<u8>> {
    let size = opened
        .iter()
        .map(|(_, json)| json.len() + 24)
        .sum::<usize>()
        + 80;
    let mut out = Zeroizing::new(Vec::with_capacity(size));
    out.extend_from_slice(format!("{{\"candidate_id\":\"{id}\",\"groups\":{{").as_bytes());
    for (n, (group, json)) in opened.iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        out.extend_from_slice(format!("\"{group}\":").as_bytes());
        out.extend_from_slice(json);
    }
    out.extend_from_slice(b"}}");
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;

    use super::super::testing::{beside_a_rotation, kek_version_of, unlock, vault_with_cw_and_emp};

    fn matching(candidate_id: CandidateId, purpose: &str) -> super::super::OpenAssignment {
        super::super::OpenAssignment {
            candidate_id,
            org: "emp-org".parse().unwrap(),
            kind: "matching".parse().unwrap(),
            purpose: purpose.parse().unwrap(),
        }
    }

    /// A candidate (not protected) registered by `cw` and matched to `emp-org` for
    /// recruitment: (cw, emp, the candidate, the assignment).
    fn matched_candidate(
        vault: &Vault,
        marker: &str,
    ) -> (
        PrincipalFacts,
        PrincipalFacts,
        CandidateId,
        crate::ids::AssignmentId,
    ) {
        let cw = vault.principal(&"cw".parse().unwrap()).unwrap();
        let emp = vault.principal(&"emp".parse().unwrap()).unwrap();
        let mut profile = crate::synth::Synth::new(3).profile_with_marker(marker);
        profile.control.protected = false;
        let id = vault.register(&cw, &profile).unwrap();
        let assignment = vault
            .open_assignment(&cw, matching(id, "recruitment"))
            .unwrap();
        (cw, emp, id, assignment)
    }

    #[test]
    fn an_extract_decided_before_its_assignment_closed_releases_nothing() {
        // Before: the writer re-checked only that the candidate existed, so an assignment
        // closed between the decision and its audit entry still got its disclosure.
        let dir = tempfile::tempdir().unwrap();
        let (_paths, vault) = vault_with_cw_and_emp(dir.path());
        let (cw, emp, id, assignment) = matched_candidate(&vault, "STALEFACTS");
        let purpose: Purpose = "recruitment".parse().unwrap();
        // With the assignment open throughout, the extract is released.
        assert!(vault.extract(&emp, &id, &purpose).is_ok());
        let stale = vault.extract_deciding_first(&emp, &id, &purpose, || {
            vault
                .close_assignment(&cw, &assignment, "placed in work")
                .unwrap();
        });
        assert!(
            matches!(stale, Err(Error::NotFound { .. })),
            "{:?}",
            stale.map(|e| e.groups)
        );
        let dpo_view = vault
            .readers()
            .read(|conn| crate::audit::verify::search(conn, &vault.pseudonyms().candidate(&id)));
        let last = dpo_view
            .unwrap()
            .into_iter()
            .rev()
            .find(|e| e.action == "extract")
            .unwrap();
        assert_eq!(last.decision, Outcome::Deny);
        assert_eq!(last.note.as_deref(), Some("grounds-changed"));
        vault.close().unwrap();
    }

    /// The candidate's entries, as a DPO's search finds them.
    fn entries_of(vault: &Vault, id: &CandidateId) -> Vec<crate::audit::entry::Entry> {
        vault
            .readers()
            .read(|conn| crate::audit::verify::search(conn, &vault.pseudonyms().candidate(id)))
            .unwrap()
    }

    #[test]
    fn an_assignment_that_is_open_already_is_not_opened_twice_and_the_refusal_is_recorded() {
        // Before: a second identical assignment was opened, and closing one (the placement
        // ended) left the employer's access standing on the other.
        let dir = tempfile::tempdir().unwrap();
        let (_paths, vault) = vault_with_cw_and_emp(dir.path());
        let (cw, emp, id, first) = matched_candidate(&vault, "TWICE");
        let again = vault.open_assignment(&cw, matching(id, "recruitment"));
        match again {
            Err(Error::AlreadyOpen { assignment_id }) => assert_eq!(assignment_id, first),
            other => panic!("a second identical open: {other:?}"),
        }
        let refusal = entries_of(&vault, &id).pop().unwrap();
        assert_eq!(refusal.action, "assignment.open");
        assert_eq!(refusal.decision, Outcome::Deny);
        assert_eq!(refusal.note.as_deref(), Some("already-open"));
        // The open assignment is named by its pseudonym, never by its id.
        assert_eq!(
            refusal.assignment,
            Some(vault.pseudonyms().assignment(&first))
        );
        // Closing the one assignment for recruitment ends the employer's access for it.
        let recruitment: Purpose = "recruitment".parse().unwrap();
        assert!(vault.extract(&emp, &id, &recruitment).is_ok());
        vault
            .close_assignment(&cw, &first, "placed in work")
            .unwrap();
        assert!(matches!(
            vault.extract(&emp, &id, &recruitment),
            Err(Error::NotFound { .. })
        ));
        // Once closed, it may be opened again.
        vault
            .open_assignment(&cw, matching(id, "recruitment"))
            .unwrap();
        vault.close().unwrap();
    }

    #[test]
    fn a_registration_sealed_just_before_a_key_rotation_began_is_sealed_again_not_refused() {
        // Before: the writer refused it with a 409 ("the keys were rotated ... try again"),
        // which a load beside `cvvault keys rotate` met once per rotation.
        let dir = tempfile::tempdir().unwrap();
        let (paths, vault) = vault_with_cw_and_emp(dir.path());
        // The operator's `cvvault keys rotate`: another process on the same vault.
        let operator = Vault::open(&paths, &unlock(&paths)).unwrap();
        let cw = vault.principal(&"cw".parse().unwrap()).unwrap();
        let request_id = new_request_id();
        let allowed = vault.authorize_register(&cw, &request_id).unwrap();
        let entries = registration_entries(
            vault.renderer(),
            &cw,
            &request_id,
            allowed.policy_ids().to_vec(),
            None,
        )
        .unwrap();
        let profile = crate::synth::Synth::new(9).profile_with_marker("ROTATING");
        // The rotation begins (and here ends) after the first keyring was chosen.
        let (id, sealed_under) = beside_a_rotation(&vault, (&operator, &paths), |keyring| {
            vault.seal_and_store(&keyring, &entries, (&profile, 0), &allowed)
        });
        assert_eq!(sealed_under, vec![1, 2], "sealed again under the new KEK");
        assert_eq!(kek_version_of(&vault, &id), 2);
        let keys = vault
            .readers()
            .read(|conn| rows::candidate_keys(conn, vault.integrity(), &id))
            .unwrap()
            .unwrap();
        Dek::unwrap(&vault.keyring(), &id, &keys.dek).unwrap();
        // One registration entry, none for the refused first attempt (it stored nothing).
        let registered: Vec<_> = entries_of(&vault, &id)
            .into_iter()
            .filter(|e| e.action == "candidate.register")
            .collect();
        assert_eq!(registered.len(), 1);
        operator.close().unwrap();
        vault.close().unwrap();
    }

    /// What `for_each_line` gives, as (number, Some(line) or None for too long).
    fn lines_of(input: &[u8], buffer: usize) -> Vec<(u64, Option<Vec<u8>>)> {
        let mut seen = Vec::new();
        let reader = std::io::BufReader::with_capacity(buffer, input);
        for_each_line(reader, |number, line| {
            seen.push((
                number,
                match line {
                    Line::Text(text) => Some(text.to_vec()),
                    Line::TooLong => None,
                },
            ));
            Ok(())
        })
        .unwrap();
        seen
    }

    #[test]
    fn a_line_over_the_limit_is_read_past_and_numbering_goes_on() {
        let mut input = b"first\n\n  \n".to_vec();
        input.extend(vec![b'x'; MAX_LINE + 10]);
        input.extend(b"\n");
        input.extend(vec![b'y'; MAX_LINE]);
        input.extend(b"\n");
        input.extend(vec![b'z'; 3 * MAX_LINE]);
        input.extend(b"\nlast without newline");
        // Small and large read buffers: the skip works across buffer refills.
        for buffer in [7, 8 * 1024, 1 << 20] {
            let seen = lines_of(&input, buffer);
            let expected = vec![
                (1, Some(b"first".to_vec())),
                (4, None),
                (5, Some(vec![b'y'; MAX_LINE])),
                (6, None),
                (7, Some(b"last without newline".to_vec())),
            ];
            assert_eq!(seen, expected, "read buffer of {buffer} bytes");
        }
        // A file that ends inside an over-long line.
        let seen = lines_of(&vec![b'q'; MAX_LINE + 1], 8 * 1024);
        assert_eq!(seen, vec![(1, None)]);
    }
}
