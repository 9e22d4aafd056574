//! Assignment use cases: open, close, list. An assignment is the only thing that links an
//! organisation to a candidate, and so the only way anyone outside the agency sees a CV.

use super::{actor, new_request_id, Vault};
use crate::audit::entry::Outcome;
use crate::audit::log::Record;
use crate::error::{Error, Result};
use crate::ids::{AssignmentId, CandidateId, OrgId};
use crate::policy::{Action, PrincipalFacts, Request};
use crate::store::rows::{self, AssignmentRow};
use crate::vocabulary::{AssignmentKind, Purpose};

/// What opening an assignment needs.
pub struct OpenAssignment {
    /// The candidate.
    pub candidate_id: CandidateId,
    /// The organisation to link.
    pub org: OrgId,
    /// Coaching (provider) or matching (employer).
    pub kind: AssignmentKind,
    /// The declared purpose.
    pub purpose: Purpose,
}

impl Vault {
    /// Opens an assignment. Refused for an unknown or erased candidate, an unknown
    /// organisation, and by policy (e.g. matching a protected candidate); every refusal about
    /// the candidate is concealed as the vault's one rule says ([`Vault::conceal`]).
    pub fn open_assignment(
        &self,
        principal: &PrincipalFacts,
        request: OpenAssignment,
    ) -> Result<AssignmentId> {
        let candidate = request.candidate_id;
        let opened = self.open_assignment_decided(principal, request);
        self.conceal(principal, Some(&candidate), "candidate", opened)
    }

    fn open_assignment_decided(
        &self,
        principal: &PrincipalFacts,
        request: OpenAssignment,
    ) -> Result<AssignmentId> {
        let request_id = new_request_id();
        let actor = actor(principal);
        let mut record = Record::new("assignment.open", &actor, Outcome::Deny, &request_id);
        record.candidate = Some(request.candidate_id);
        record.purpose = Some(request.purpose.to_string());
        record.note = Some(format!("kind={}", request.kind));
        // What does not depend on the candidate is checked first, before it is even read,
        // so that neither the answer nor its cost says whether the candidate exists.
        let org_kind = self
            .readers
            .read(|conn| rows::org_kind(conn, &self.integrity, &request.org))?;
        if let Err(unknown) = self.policy.check_purpose(&request.purpose) {
            record.note = Some("unknown-purpose".into());
            self.record(record)?;
            return Err(unknown);
        }
        let Some(org_kind) = org_kind else {
            record.note = Some("unknown-organisation".into());
            self.record(record)?;
            return Err(Error::UnknownOrg {
                org: request.org.to_string(),
            });
        };
        let facts = self.read_facts(principal, "assignment.open", &request.candidate_id)?;
        let Some((facts, _)) = facts else {
            if self.hides(principal, Some(&request.candidate_id)) {
                // INVARIANT: "not found" costs what "not yours" costs (see `decoy`).
                let asked = self.pseudonyms().candidate(&request.candidate_id);
                self.decoy_work(principal, &asked, |facts| {
                    std::hint::black_box(self.policy.decide(&Request::open_assignment(
                        principal,
                        facts,
                        request.kind,
                        &request.purpose,
                        &request.org,
                        org_kind,
                    )));
                });
            }
            record.note = Some("not-found".into());
            self.record(record)?;
            return Err(Error::NotFound { what: "candidate" });
        };
        let decision = self.policy.decide(&Request::open_assignment(
            principal,
            &facts,
            request.kind,
            &request.purpose,
            &request.org,
            org_kind,
        ));
        record.policy_ids = decision.policy_ids().to_vec();
        let Some(allowed) = decision.allowed() else {
            let action = format!(
                "opening a {} assignment for {} ({org_kind}) for {}",
                request.kind, request.org, request.purpose
            );
            return Err(self.refuse(principal, record, (Action::OpenAssignment, action))?);
        };
        let row = AssignmentRow {
            assignment_id: AssignmentId::random(),
            candidate_id: request.candidate_id,
            org_id: request.org,
            kind: request.kind,
            purpose: request.purpose.to_string(),
            opened_at: 0,
            closed_at: None,
            close_reason: None,
        };
        let id = row.assignment_id;
        let by = principal.principal_id.to_string();
        let mut refused = record.clone();
        let opened = self.writer.write(move |ctx| {
            if rows::candidate_keys(ctx.conn, ctx.integrity, &row.candidate_id)?.is_none() {
                return Err(Error::NotFound { what: "candidate" });
            }
            let row = AssignmentRow {
                opened_at: ctx.audit.now(),
                ..row
            };
            rows::insert_assignment(ctx.conn, ctx.integrity, &allowed, &row, &by)?;
            record.decision = Outcome::Allow;
            record.assignment = Some(row.assignment_id);
            record.note = Some(format!("kind={} org={}", row.kind, row.org_id));
            ctx.audit.append(record).map(|_| ())
        });
        if let Err(Error::AlreadyOpen { assignment_id }) = &opened {
            // Allowed by policy, refused by the state: on the record as a refusal, naming
            // the open assignment (by its pseudonym, as every entry does).
            refused.assignment = Some(*assignment_id);
            refused.note = Some("already-open".into());
            self.record(refused)?;
        }
        opened?;
        Ok(id)
    }

    /// Closes an open assignment. Closing a closed or unknown one is refused (concealed as
    /// an unknown assignment where the vault's one rule says so, [`Vault::conceal`]).
    pub fn close_assignment(
        &self,
        principal: &PrincipalFacts,
        assignment_id: &AssignmentId,
        reason: &str,
    ) -> Result<()> {
        let closed = self.close_assignment_decided(principal, assignment_id, reason);
        // Concealed by whose assignment it is: a subject's own is not hidden from them.
        let candidate = match &closed {
            Ok(()) => None,
            Err(_) => self
                .readers
                .read(|conn| rows::assignment(conn, &self.integrity, assignment_id))
                .ok()
                .flatten()
                .map(|row| row.candidate_id),
        };
        self.conceal(principal, candidate.as_ref(), "assignment", closed)
    }

    fn close_assignment_decided(
        &self,
        principal: &PrincipalFacts,
        assignment_id: &AssignmentId,
        reason: &str,
    ) -> Result<()> {
        let reason = reason.trim();
        if reason.is_empty() || reason.len() > 200 {
            return Err(Error::BadReason {
                saying:
                    "saying why the assignment ends (e.g. `placed in work`, `coaching completed`)",
            });
        }
        let request_id = new_request_id();
        let actor = actor(principal);
        let row = self
            .readers
            .read(|conn| rows::assignment(conn, &self.integrity, assignment_id))?;
        let refuse = |note: &str, candidate: Option<crate::ids::CandidateId>| -> Result<()> {
            let mut record = Record::new("assignment.close", &actor, Outcome::Deny, &request_id);
            record.assignment = Some(*assignment_id);
            record.candidate = candidate;
            record.note = Some(note.to_owned());
            self.record(record)
        };
        let Some(row) = row else {
            if self.hides(principal, None) {
                // INVARIANT: "not found" costs what "not yours" costs (see `decoy`).
                let asked = self.pseudonyms().assignment(assignment_id);
                self.decoy_work(principal, &asked, |facts| {
                    std::hint::black_box(self.policy.decide(&Request::on_candidate(
                        principal,
                        Action::CloseAssignment,
                        facts,
                    )));
                });
            }
            refuse("not-found", None)?;
            return Err(Error::NotFound { what: "assignment" });
        };
        if row.closed_at.is_some() {
            if self.hides(principal, Some(&row.candidate_id)) {
                // INVARIANT: "already closed" costs what "not found" costs (see `decoy`).
                let asked = self.pseudonyms().assignment(assignment_id);
                self.decoy_work(principal, &asked, |facts| {
                    std::hint::black_box(self.policy.decide(&Request::on_candidate(
                        principal,
                        Action::CloseAssignment,
                        facts,
                    )));
                });
            }
            refuse("already-closed", Some(row.candidate_id))?;
            return Err(Error::Conflict(format!(
                "assignment {assignment_id} is already closed: nothing to do"
            )));
        }
        let facts = self.read_facts(principal, "assignment.close", &row.candidate_id)?;
        let Some((facts, _)) = facts else {
            return Err(Error::NotFound { what: "candidate" });
        };
        let decision = self.policy.decide(&Request::on_candidate(
            principal,
            Action::CloseAssignment,
            &facts,
        ));
        let mut record = Record::new("assignment.close", &actor, Outcome::Deny, &request_id);
        record.candidate = Some(row.candidate_id);
        record.assignment = Some(row.assignment_id);
        record.policy_ids = decision.policy_ids().to_vec();
        let Some(allowed) = decision.allowed() else {
            return Err(self.refuse(
                principal,
                record,
                (Action::CloseAssignment, "closing this assignment".into()),
            )?);
        };
        let by = principal.principal_id.to_string();
        let reason = reason.to_owned();
        let id = *assignment_id;
        self.writer.write(move |ctx| {
            // Re-read inside the transaction: a concurrent close must not count twice.
            match rows::assignment(ctx.conn, ctx.integrity, &id)? {
                Some(current) if current.closed_at.is_none() => {}
                Some(_) => {
                    return Err(Error::Conflict(format!(
                        "assignment {id} is already closed: nothing to do"
                    )))
                }
                None => return Err(Error::NotFound { what: "assignment" }),
            }
            let now = ctx.audit.now();
            rows::close_assignment(ctx.conn, ctx.integrity, &allowed, &id, now, &by, &reason)?;
            record.decision = Outcome::Allow;
            ctx.audit.append(record).map(|_| ())
        })
    }

    /// Lists a candidate's assignments (for caseworkers and DPOs; decided as `close_assignment`
    /// rights on the candidate, since listing reveals who works with whom). Audited, allowed
    /// or refused; employers and providers get the same "not found" as for a missing id.
    pub fn assignments(
        &self,
        principal: &PrincipalFacts,
        candidate_id: &CandidateId,
    ) -> Result<Vec<AssignmentRow>> {
        let listed = self.assignments_decided(principal, candidate_id);
        self.conceal(principal, Some(candidate_id), "candidate", listed)
    }

    fn assignments_decided(
        &self,
        principal: &PrincipalFacts,
        candidate_id: &CandidateId,
    ) -> Result<Vec<AssignmentRow>> {
        let facts = self.read_facts(principal, "assignment.list", candidate_id)?;
        let mut record = Record::new(
            "assignment.list",
            &actor(principal),
            Outcome::Deny,
            &new_request_id(),
        );
        record.candidate = Some(*candidate_id);
        let decide = |facts: &crate::policy::CandidateFacts| {
            [Action::CloseAssignment, Action::SubjectAccess]
                .into_iter()
                .map(|action| {
                    self.policy
                        .decide(&Request::on_candidate(principal, action, facts))
                })
                .find(|decision| decision.is_allowed())
        };
        let Some((facts, _)) = facts else {
            if self.hides(principal, Some(candidate_id)) {
                // INVARIANT: "not found" costs what "not yours" costs (see `decoy`).
                let asked = self.pseudonyms().candidate(candidate_id);
                self.decoy_work(principal, &asked, |facts| {
                    std::hint::black_box(decide(facts));
                });
            }
            record.note = Some("not-found".into());
            self.record(record)?;
            return Err(Error::NotFound { what: "candidate" });
        };
        let decision = [Action::CloseAssignment, Action::SubjectAccess]
            .into_iter()
            .map(|action| {
                self.policy
                    .decide(&Request::on_candidate(principal, action, &facts))
            })
            .find(|decision| decision.is_allowed());
        let Some(decision) = decision else {
            return Err(self.refuse(
                principal,
                record,
                (
                    Action::CloseAssignment,
                    "listing this candidate's assignments".into(),
                ),
            )?);
        };
        record.decision = Outcome::Allow;
        record.policy_ids = decision.policy_ids().to_vec();
        let allowed = decision
            .allowed()
            .ok_or(Error::Internal("an allowed decision gave no proof"))?;
        self.record(record)?;
        self.readers
            .read(|conn| rows::assignments_of(conn, &self.integrity, &allowed))
    }
}
