//! Audit use cases for DPOs and data subjects: verify, checkpoints, proofs, export, search,
//! subject access (GDPR Art. 15), erasure receipts, legal holds. A DPO never reads a profile.

use serde::Serialize;

use super::{actor, new_request_id, Vault};
use crate::audit::entry::{Entry, Outcome};
use crate::audit::log::Record;
use crate::audit::note::{Checkpoint, NoteVerifier};
use crate::audit::verify::{self, CheckpointSource, InclusionProof, VerifyReport};
use crate::clock::rfc3339;
use crate::error::{Error, Result};
use crate::ids::CandidateId;
use crate::policy::{Action, CandidateFacts, PrincipalFacts, Request, Resource};
use crate::store::rows;
use crate::vocabulary::{FieldGroup, Role};

/// One disclosure of a candidate's data, as the subject access report lists it.
#[derive(Debug, Serialize)]
pub struct Disclosure {
    /// When (RFC 3339).
    pub time: String,
    /// The principal who received it.
    pub recipient: String,
    /// Their organisation.
    pub recipient_org: Option<String>,
    /// Their role.
    pub recipient_role: String,
    /// The declared purpose.
    pub purpose: Option<String>,
    /// The field groups disclosed.
    pub groups: Vec<String>,
}

/// The GDPR Art. 15 report: what is held, who received it, when, why.
#[derive(Debug, Serialize)]
pub struct SubjectAccessReport {
    /// The candidate.
    pub candidate_id: CandidateId,
    /// When the report was made.
    pub generated_at: String,
    /// Who asked for it.
    pub requested_by: String,
    /// The data itself: only when the subject asks (a DPO's report lists categories only).
    pub data: Option<serde_json::Value>,
    /// The categories held (field groups).
    pub groups_held: Vec<String>,
    /// Assignments (who works with the candidate, for what).
    pub assignments: Vec<serde_json::Value>,
    /// Every disclosure in the audit trail.
    pub disclosures: Vec<Disclosure>,
    /// Requests for the data that were refused.
    pub refused_requests: u64,
    /// Under legal hold.
    pub legal_hold: bool,
    /// How long the data is kept.
    pub retention: String,
}

impl SubjectAccessReport {
    /// The report in words.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "Subject access report (GDPR Art. 15) for candidate {}\ngenerated {} at the request of {}\n\n",
            self.candidate_id, self.generated_at, self.requested_by
        );
        out.push_str(&format!(
            "Categories of data held: {}\n",
            self.groups_held.join(", ")
        ));
        if self.legal_hold {
            out.push_str("A legal hold keeps this data beyond the normal retention period.\n");
        }
        out.push_str(&format!("Retention: {}\n\nAssignments:\n", self.retention));
        if self.assignments.is_empty() {
            out.push_str("  none\n");
        }
        for a in &self.assignments {
            out.push_str(&format!(
                "  {} with {} for {} (opened {}, {})\n",
                a["kind"].as_str().unwrap_or("?"),
                a["org"].as_str().unwrap_or("?"),
                a["purpose"].as_str().unwrap_or("?"),
                a["opened_at"].as_str().unwrap_or("?"),
                a["closed_at"]
                    .as_str()
                    .map(|c| format!("closed {c}"))
                    .unwrap_or_else(|| "open".into())
            ));
        }
        out.push_str(&format!("\nDisclosures ({}):\n", self.disclosures.len()));
        if self.disclosures.is_empty() {
            out.push_str("  none\n");
        }
        for d in &self.disclosures {
            out.push_str(&format!(
                "  {}  {} ({} of {}) for {}: {}\n",
                d.time,
                d.recipient,
                d.recipient_role,
                d.recipient_org.as_deref().unwrap_or("-"),
                d.purpose.as_deref().unwrap_or("-"),
                d.groups.join(", ")
            ));
        }
        out.push_str(&format!(
            "\nRefused requests for this data: {}\n",
            self.refused_requests
        ));
        if let Some(data) = &self.data {
            out.push_str(&format!(
                "\nThe data held:\n{}\n",
                serde_json::to_string_pretty(data).unwrap_or_default()
            ));
        }
        out
    }
}

/// A proof of erasure a DPO can file.
#[derive(Debug, Serialize)]
pub struct Receipt {
    /// `cvvault-erasure-receipt/v1`.
    pub format: String,
    /// The candidate (the id the requester knows).
    pub candidate_id: CandidateId,
    /// Its audit pseudonym.
    pub candidate_pseudonym: String,
    /// The erase entry with its inclusion proof and signed checkpoint.
    pub proof: InclusionProof,
    /// When the erasure is complete against copies of the store, on this vault's store.
    pub completion: String,
}

impl Vault {
    fn decide_vault(&self, principal: &PrincipalFacts, action: Action) -> crate::policy::Decision {
        self.policy.decide(&Request {
            principal,
            action,
            resource: Resource::Vault,
            purpose: None,
            group: None,
            kind: None,
            org: None,
        })
    }

    fn decide_candidate(
        &self,
        principal: &PrincipalFacts,
        action: Action,
        facts: &CandidateFacts,
    ) -> crate::policy::Decision {
        self.policy.decide(&Request {
            principal,
            action,
            resource: Resource::Candidate(facts),
            purpose: None,
            group: None,
            kind: None,
            org: None,
        })
    }

    /// Decides `read_audit` and records the decision; Err when denied.
    pub(super) fn authorize_audit(
        &self,
        principal: &PrincipalFacts,
        action_name: &'static str,
    ) -> Result<()> {
        self.authorize_audit_about(principal, action_name, None)
    }

    /// [`Vault::authorize_audit`] for a read of the trail about one candidate: the entry names
    /// the candidate, so that every request naming a candidate is on that candidate's record.
    fn authorize_audit_about(
        &self,
        principal: &PrincipalFacts,
        action_name: &'static str,
        candidate: Option<&CandidateId>,
    ) -> Result<()> {
        let decision = self.decide_vault(principal, Action::ReadAudit);
        let allowed = decision.is_allowed();
        let mut record = Record::new(
            action_name,
            &actor(principal),
            if allowed {
                Outcome::Allow
            } else {
                Outcome::Deny
            },
            &new_request_id(),
        );
        record.candidate = candidate.copied();
        record.policy_ids = decision.policy_ids().to_vec();
        self.record(record)?;
        if allowed {
            Ok(())
        } else {
            let action = (Action::ReadAudit, "reading the audit trail".to_owned());
            let policy_ids = decision.policy_ids().to_vec();
            Err(match candidate {
                Some(_) => self.refusal(principal, candidate, action, policy_ids),
                // About no candidate: nothing to conceal.
                None => self.denied(action.0, action.1, policy_ids),
            })
        }
    }

    /// Verifies the whole trail against the stored checkpoints and `extra` ones kept elsewhere,
    /// checking every entry's MAC with the audit key.
    pub fn audit_verify(
        &self,
        principal: &PrincipalFacts,
        extra: Vec<CheckpointSource>,
        progress: &dyn Fn(u64),
    ) -> Result<VerifyReport> {
        self.authorize_audit(principal, "audit.verify")?;
        let outcome = self.verify_authorized(extra, progress);
        self.remember_verification(principal, &outcome);
        outcome
    }

    fn verify_authorized(
        &self,
        extra: Vec<CheckpointSource>,
        progress: &dyn Fn(u64),
    ) -> Result<VerifyReport> {
        let verifier = self.note_verifier()?;
        let mut trail = super::trail_state::TrailState::default();
        let read = self.readers.read(|conn| {
            let mut sources = verify::stored_checkpoints(conn)?;
            sources.extend(extra);
            let report = verify::verify_observing(
                conn,
                &verifier,
                Some(self.pseudonyms()),
                &sources,
                progress,
                &mut |entry| trail.read(entry),
            )?;
            // The rows authorization depends on are part of what is verified: one
            // written outside cvvault is refused wherever it is read, and named here.
            let mut findings = rows::integrity_findings(conn, &self.integrity)?;
            // A row put back as it was in an older copy passes its MAC; the trail's last
            // word on it tells (read in the same pass, the same snapshot).
            findings.extend(self.rows_behind_the_trail(conn, &trail)?);
            Ok((report, findings))
        });
        let (report, findings) = read.inspect_err(|_| self.mark_trail_failed())?;
        if !findings.is_empty() {
            self.mark_trail_failed();
            let named: Vec<String> = findings
                .iter()
                .map(|f| format!("{} {}", f.table, f.row))
                .collect();
            return Err(Error::AuditTampered(format!(
                "the entries verify, but {} row(s) that authorization depends on were written or changed outside cvvault (they fail their integrity check, or are not in the state the trail last recorded): {}. cvvault refuses rows that fail their check; restore the database from a backup, and find out who could write the database file",
                findings.len(),
                named.join(", ")
            )));
        }
        // Signed only after the trail verified: never over a history that does not.
        self.sign_checkpoint()?;
        Ok(report)
    }

    /// The verifier for this vault's checkpoints.
    pub fn note_verifier(&self) -> Result<NoteVerifier> {
        NoteVerifier::parse(&self.verifier_key()).map_err(|_| Error::Corrupt {
            what: "the vault's own verifier key does not parse",
        })
    }

    /// Signs (if the tree grew) and returns the latest checkpoint.
    pub fn audit_checkpoint(&self) -> Result<String> {
        self.sign_checkpoint()?;
        self.readers
            .read(verify::latest_checkpoint)?
            .ok_or(Error::NotFound { what: "checkpoint" })
    }

    /// An inclusion proof of entry `index` against a fresh checkpoint.
    pub fn audit_prove(&self, principal: &PrincipalFacts, index: u64) -> Result<InclusionProof> {
        self.authorize_audit(principal, "audit.prove")?;
        self.prove_unchecked(index)
    }

    fn prove_unchecked(&self, index: u64) -> Result<InclusionProof> {
        let note = self.audit_checkpoint()?;
        let checkpoint: Checkpoint = self
            .note_verifier()?
            .verify(&note)
            .map_err(|e| Error::AuditTampered(e.to_string()))?;
        self.readers
            .read(|conn| verify::prove(conn, index, &note, &checkpoint))
    }

    /// The audit key, hex, for a DPO's own verifier: with it, entry MACs and candidate,
    /// assignment and subject pseudonyms can be recomputed (SECURITY.md, audit format). It is a
    /// secret: whoever holds it can also forge entry MACs and test a guessed candidate id
    /// against the trail. Decided like any read of the audit trail, and audited.
    pub fn audit_mac_key(&self, principal: &PrincipalFacts) -> Result<zeroize::Zeroizing<String>> {
        self.authorize_audit(principal, "audit.mac-key")?;
        Ok(zeroize::Zeroizing::new(hex::encode(
            self.keyring().audit_key(),
        )))
    }

    /// A consistency proof from `old_size` entries to the latest signed checkpoint (RFC 9162):
    /// what a DPO checks a checkpoint kept elsewhere against, without the entries.
    pub fn audit_consistency(
        &self,
        principal: &PrincipalFacts,
        old_size: u64,
        new_size: Option<u64>,
    ) -> Result<verify::ConsistencyProof> {
        self.authorize_audit(principal, "audit.consistency")?;
        let note = self.audit_checkpoint()?;
        let verifier = self.note_verifier()?;
        let latest: Checkpoint = verifier
            .verify(&note)
            .map_err(|e| Error::AuditTampered(e.to_string()))?;
        // A smaller --to needs a checkpoint of exactly that size among those stored.
        let (note, checkpoint) = match new_size {
            Some(size) if size != latest.size => {
                let stored = self.readers.read(verify::stored_checkpoints)?;
                stored
                    .into_iter()
                    .find_map(|source| {
                        verifier
                            .verify(&source.note)
                            .ok()
                            .filter(|c| c.size == size)
                            .map(|c| (source.note, c))
                    })
                    .ok_or_else(|| {
                        Error::invalid_input(format!(
                            "no signed checkpoint of {size} entries is stored: give the size of one that is (the latest covers {}), or leave --to out",
                            latest.size
                        ))
                    })?
            }
            _ => (note, latest),
        };
        self.readers
            .read(|conn| verify::prove_consistency(conn, old_size, &note, &checkpoint))
    }

    /// An export of the entries in `[since, until)` that carries its own proof against the
    /// signed checkpoints around them ([`verify::ExportBundle`]), with the entry MACs when
    /// `with_macs`. Signs a checkpoint first if the log grew, so the latest entries are covered.
    pub fn audit_export_bundle(
        &self,
        principal: &PrincipalFacts,
        window: (Option<i64>, Option<i64>),
        with_macs: bool,
    ) -> Result<verify::ExportBundle> {
        self.authorize_audit(principal, "audit.export")?;
        let latest = self.audit_checkpoint()?;
        let verifier = self.note_verifier()?;
        let mut checkpoints: Vec<(String, u64)> = self
            .readers
            .read(verify::stored_checkpoints)?
            .into_iter()
            .filter_map(|source| {
                let size = verifier.verify(&source.note).ok()?.size;
                Some((source.note, size))
            })
            .collect();
        let size = verifier
            .verify(&latest)
            .map_err(|e| Error::AuditTampered(e.to_string()))?
            .size;
        checkpoints.push((latest, size));
        self.readers
            .read(|conn| verify::export_bundle(conn, window, &checkpoints, with_macs))
    }

    /// Writes entries as JSON lines (raw canonical text), optionally within a time window.
    pub fn audit_export(
        &self,
        principal: &PrincipalFacts,
        since: Option<i64>,
        until: Option<i64>,
        out: &mut dyn FnMut(&str) -> Result<()>,
    ) -> Result<u64> {
        self.authorize_audit(principal, "audit.export")?;
        self.readers
            .read(|conn| verify::export(conn, since, until, &mut *out))
    }

    /// The entries about one candidate, found through its pseudonym.
    pub fn audit_search(
        &self,
        principal: &PrincipalFacts,
        candidate_id: &CandidateId,
    ) -> Result<Vec<Entry>> {
        self.authorize_audit_about(principal, "audit.search", Some(candidate_id))?;
        let pseudonym = self.pseudonyms().candidate(candidate_id);
        self.readers.read(|conn| verify::search(conn, &pseudonym))
    }

    /// The Art. 15 report. A DPO gets categories and disclosures; the subject also the data.
    pub fn subject_access(
        &self,
        principal: &PrincipalFacts,
        candidate_id: &CandidateId,
    ) -> Result<SubjectAccessReport> {
        let report = self.subject_access_decided(principal, candidate_id);
        self.conceal(principal, Some(candidate_id), "candidate", report)
    }

    fn subject_access_decided(
        &self,
        principal: &PrincipalFacts,
        candidate_id: &CandidateId,
    ) -> Result<SubjectAccessReport> {
        let request_id = new_request_id();
        let facts = self.read_facts(principal, "subject_access", candidate_id)?;
        let mut record = Record::new(
            "subject_access",
            &actor(principal),
            Outcome::Deny,
            &request_id,
        );
        record.candidate = Some(*candidate_id);
        let Some((facts, _)) = facts else {
            if self.hides(principal, Some(candidate_id)) {
                // INVARIANT: "not found" costs what "not yours" costs (see `decoy`).
                let asked = self.pseudonyms().candidate(candidate_id);
                self.decoy_work(principal, &asked, |facts| {
                    std::hint::black_box(self.decide_candidate(
                        principal,
                        Action::SubjectAccess,
                        facts,
                    ));
                });
            }
            record.note = Some("not-found".into());
            self.record(record)?;
            return Err(Error::NotFound { what: "candidate" });
        };
        let decision = self.decide_candidate(principal, Action::SubjectAccess, &facts);
        record.policy_ids = decision.policy_ids().to_vec();
        let Some(allowed) = decision.allowed() else {
            return Err(self.refuse(
                principal,
                record,
                (
                    Action::SubjectAccess,
                    "a subject access report for this candidate".into(),
                ),
            )?);
        };
        record.decision = Outcome::Allow;
        self.record(record)?;
        let data = if principal.role == Role::Subject {
            let extract = self.extract(principal, candidate_id, &"subject-access".parse()?)?;
            Some(
                serde_json::from_slice::<serde_json::Value>(&extract.json).map_err(|_| {
                    Error::Corrupt {
                        what: "an extract is not JSON",
                    }
                })?,
            )
        } else {
            None
        };
        let pseudonym = self.pseudonyms().candidate(candidate_id);
        let (entries, assignments, keys) = self.readers.read(|conn| {
            Ok((
                verify::search(conn, &pseudonym)?,
                rows::assignments_of(conn, &self.integrity, &allowed)?,
                rows::candidate_keys(conn, &self.integrity, candidate_id)?,
            ))
        })?;
        let disclosures = entries
            .iter()
            .filter(|e| e.action == "extract" && e.decision == Outcome::Allow)
            .map(|e| Disclosure {
                time: e.time.clone(),
                recipient: e.actor.clone(),
                recipient_org: e.actor_org.clone(),
                recipient_role: e.actor_role.clone(),
                purpose: e.purpose.clone(),
                groups: e.groups.clone(),
            })
            .collect();
        let refused = entries
            .iter()
            .filter(|e| e.action == "extract" && e.decision == Outcome::Deny)
            .count() as u64;
        let retention = crate::settings::Retention::load(&self.paths.retention_settings())?;
        Ok(SubjectAccessReport {
            candidate_id: *candidate_id,
            generated_at: rfc3339(self.now()),
            requested_by: principal.principal_id.to_string(),
            data,
            groups_held: FieldGroup::DISCLOSABLE.iter().map(|g| g.to_string()).collect(),
            assignments: assignments
                .iter()
                .map(|a| {
                    serde_json::json!({
                        "org": a.org_id, "kind": a.kind, "purpose": a.purpose,
                        "opened_at": rfc3339(a.opened_at), "closed_at": a.closed_at.map(rfc3339),
                    })
                })
                .collect(),
            disclosures,
            refused_requests: refused,
            legal_hold: keys.is_some_and(|k| k.legal_hold),
            retention: format!(
                "erased {} day(s) after the last assignment closes, after {} days without any open assignment, and at the latest {} days after registration",
                retention.grace_after_close_days, retention.max_idle_days, retention.max_life_days
            ),
        })
    }

    /// A proof of erasure for an erased candidate: the erase entry, its inclusion proof, a
    /// signed checkpoint.
    pub fn erasure_receipt(
        &self,
        principal: &PrincipalFacts,
        candidate_id: &CandidateId,
    ) -> Result<Receipt> {
        self.authorize_audit_about(principal, "audit.receipt", Some(candidate_id))?;
        let pseudonym = self.pseudonyms().candidate(candidate_id);
        let entries = self.readers.read(|conn| verify::search(conn, &pseudonym))?;
        let erase = entries
            .iter()
            .rev()
            .find(|e| {
                (e.action == "candidate.erase" || e.action == "retention.erase")
                    && e.decision == Outcome::Allow
            })
            .ok_or(Error::NotFound {
                what: "erasure receipt: no erasure of this candidate (it has not been erased) is in the audit trail, so a receipt was",
            })?;
        Ok(Receipt {
            format: "cvvault-erasure-receipt/v1".into(),
            candidate_id: *candidate_id,
            candidate_pseudonym: pseudonym,
            proof: self.prove_unchecked(erase.index)?,
            completion: if self.paths.store().is_postgres() {
                format!(
                    "PostgreSQL: the data key was deleted with the entry above; the erasure is complete once the key-encryption key that wrapped it is destroyed, which the retention run that follows does (its retention.run entry, after index {}, names the destroyed KEK version as kek_destroyed). Until then, older copies of the database (dead tuples, WAL, base backups, replicas) still hold the wrapped key; after it, no key that exists opens any copy",
                    erase.index
                )
            } else {
                "SQLite: complete at the entry above: the data key's slot was overwritten with zeros in place (secure_delete) and the WAL truncated; backups taken before it are covered by the next key rotation (SECURITY.md, boundary 1)".into()
            },
        })
    }

    /// Places or releases a legal hold (a DPO's decision): a held candidate is not erased by
    /// retention until released.
    pub fn set_hold(
        &self,
        principal: &PrincipalFacts,
        candidate_id: &CandidateId,
        hold: bool,
        reason: &str,
    ) -> Result<()> {
        let set = self.set_hold_decided(principal, candidate_id, hold, reason);
        self.conceal(principal, Some(candidate_id), "candidate", set)
    }

    fn set_hold_decided(
        &self,
        principal: &PrincipalFacts,
        candidate_id: &CandidateId,
        hold: bool,
        reason: &str,
    ) -> Result<()> {
        let reason = reason.trim();
        if hold && (reason.is_empty() || reason.len() > 200) {
            return Err(Error::BadReason {
                saying: "naming the legal ground (e.g. a case number)",
            });
        }
        let action = if hold {
            Action::PlaceHold
        } else {
            Action::ReleaseHold
        };
        let name = if hold { "hold.place" } else { "hold.release" };
        let facts = self
            .readers
            .read(|conn| self.erasure_facts(conn, candidate_id))?
            .map(|(facts, _)| (facts, ()));
        let mut record = Record::new(name, &actor(principal), Outcome::Deny, &new_request_id());
        record.candidate = Some(*candidate_id);
        let Some((facts, _)) = facts else {
            if self.hides(principal, Some(candidate_id)) {
                // INVARIANT: "not found" costs what "not yours" costs (see `decoy`).
                let asked = self.pseudonyms().candidate(candidate_id);
                self.decoy_work(principal, &asked, |facts| {
                    std::hint::black_box(self.decide_candidate(principal, action, facts));
                });
            }
            record.note = Some("not-found".into());
            self.record(record)?;
            return Err(Error::NotFound { what: "candidate" });
        };
        let decision = self.decide_candidate(principal, action, &facts);
        record.policy_ids = decision.policy_ids().to_vec();
        let Some(allowed) = decision.allowed() else {
            return Err(self.refuse(
                principal,
                record,
                (
                    action,
                    format!(
                        "{} a legal hold",
                        if hold { "placing" } else { "releasing" }
                    ),
                ),
            )?);
        };
        let reason = hold.then(|| reason.to_owned());
        // INVARIANT: the state is read in the transaction that changes it, and a refusal's
        // entry commits like a change's (the closure returns Ok with the outcome).
        let change = self.writer.write(move |ctx| {
            let change =
                rows::set_legal_hold(ctx.conn, ctx.integrity, &allowed, reason.as_deref())?;
            match &change {
                rows::HoldChange::Gone => return Err(Error::NotFound { what: "candidate" }),
                rows::HoldChange::Changed { previous_ground } => {
                    record.decision = Outcome::Allow;
                    // The legal ground is on the record (a case reference, never personal data).
                    record.note = match (&reason, previous_ground) {
                        (Some(ground), _) => Some(format!("ground={ground}")),
                        (None, Some(ground)) => Some(format!("released ground={ground}")),
                        (None, None) => None,
                    };
                }
                rows::HoldChange::AlreadyHeld { .. } => {
                    record.note = Some("already-held".into());
                }
                rows::HoldChange::NotHeld => record.note = Some("not-held".into()),
            }
            ctx.audit.append(record)?;
            Ok(change)
        })?;
        match change {
            rows::HoldChange::AlreadyHeld { ground } => Err(Error::AlreadyHeld { ground }),
            rows::HoldChange::NotHeld => Err(Error::NotHeld),
            _ => Ok(()),
        }
    }
}
