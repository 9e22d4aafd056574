//! What policy answers: a decision, and the proofs of an allowed one ([`Allowed`],
//! [`ReadGrant`]) that the store's operations on candidate data take. Their fields are private
//! to the policy module, so nothing else can make one.

use std::fmt;

use super::memo::Outcome;
use super::{Action, Request};
use crate::error::Error;
use crate::ids::{CandidateId, PrincipalId};
use crate::vocabulary::{FieldGroup, Purpose};

/// Allow or deny.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// A permit matched and no forbid did.
    Allow,
    /// No permit matched, a forbid matched, or evaluation failed.
    Deny,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Allow => "allow",
            Verdict::Deny => "deny",
        })
    }
}

/// The outcome of one decision. Fields are private so that a `Decision` cannot be made or
/// changed outside this module: it is what an [`Allowed`] is made from.
#[derive(Debug, PartialEq, Eq)]
pub struct Decision {
    pub(super) verdict: Verdict,
    pub(super) policy_ids: Vec<String>,
    pub(super) failed_policy_ids: Vec<String>,
    pub(super) action: Action,
    pub(super) candidate_id: Option<CandidateId>,
    pub(super) group: Option<FieldGroup>,
}

impl Decision {
    pub(super) fn deny_unevaluated(request: &Request<'_>) -> Self {
        Self {
            verdict: Verdict::Deny,
            policy_ids: Vec::new(),
            failed_policy_ids: Vec::new(),
            action: request.action,
            candidate_id: request.resource.candidate_id(),
            group: request.group,
        }
    }

    /// Allow or deny.
    pub fn verdict(&self) -> Verdict {
        self.verdict
    }

    /// Whether the action may go ahead.
    pub fn is_allowed(&self) -> bool {
        self.verdict == Verdict::Allow
    }

    /// The ids of the determining policies, sorted: the permits that allowed, or the forbids
    /// that denied; empty when nothing permitted (default deny). For the audit trail.
    pub fn policy_ids(&self) -> &[String] {
        &self.policy_ids
    }

    /// Policies whose evaluation failed, sorted. Any failure denies (fail closed).
    pub fn failed_policy_ids(&self) -> &[String] {
        &self.failed_policy_ids
    }

    /// The action decided.
    pub fn action(&self) -> Action {
        self.action
    }

    /// The candidate the decision is about, if any.
    pub fn candidate_id(&self) -> Option<CandidateId> {
        self.candidate_id
    }

    /// The field group, for a read.
    pub fn group(&self) -> Option<FieldGroup> {
        self.group
    }

    /// The proof that policy allowed this, or `None` when it denied. Only this module turns a
    /// decision into an [`Allowed`]; the store operations that change candidate data take one
    /// and act on the candidate it names, so a code path that forgot to decide does not compile.
    /// The decision is consumed (and is not `Clone`): one decision, at most one proof. A proof
    /// is as good as the facts it was decided on, which only the vault reads from the store.
    pub fn allowed(self) -> Option<Allowed> {
        (self.verdict == Verdict::Allow).then_some(Allowed {
            action: self.action,
            candidate_id: self.candidate_id,
            group: self.group,
            policy_ids: self.policy_ids,
        })
    }
}

/// Proof that policy allowed something; only this module can construct it (private fields, no
/// `Clone`), so code that needs authorization cannot be called without deciding first.
#[derive(Debug)]
pub struct Allowed {
    pub(super) action: Action,
    pub(super) candidate_id: Option<CandidateId>,
    pub(super) group: Option<FieldGroup>,
    pub(super) policy_ids: Vec<String>,
}

impl Allowed {
    /// The action that was allowed.
    pub fn action(&self) -> Action {
        self.action
    }

    /// The candidate it was allowed on, if any: check it is the one you act on.
    pub fn candidate_id(&self) -> Option<CandidateId> {
        self.candidate_id
    }

    /// The field group, for a read.
    pub fn group(&self) -> Option<FieldGroup> {
        self.group
    }

    /// The permits that allowed it, sorted.
    pub fn policy_ids(&self) -> &[String] {
        &self.policy_ids
    }

    /// The candidate this proof allows `action` on: the only candidate an operation taking it
    /// may touch. [`Error::Internal`] when the proof is for another action or for the vault as
    /// a whole (a bug in the caller, never a user's mistake).
    pub fn candidate_for(&self, action: Action) -> Result<CandidateId, Error> {
        match self.candidate_id {
            Some(id) if self.action == action => Ok(id),
            _ => Err(Error::Internal("a proof of another decision was given")),
        }
    }

    /// That this proof allows `action` on the vault as a whole (registering candidates).
    pub fn check_action(&self, action: Action) -> Result<(), Error> {
        if self.action == action {
            Ok(())
        } else {
            Err(Error::Internal("a proof of another decision was given"))
        }
    }

    /// A proof made without a decision, for the crate's own unit tests of the store.
    #[cfg(test)]
    pub(crate) fn for_tests(action: Action, candidate_id: Option<CandidateId>) -> Allowed {
        Allowed {
            action,
            candidate_id,
            group: None,
            policy_ids: Vec::new(),
        }
    }
}

/// The outcome of a read: one decision per field group. Only this module constructs it.
#[derive(Debug, PartialEq, Eq)]
pub struct ReadGrant {
    pub(super) candidate_id: CandidateId,
    pub(super) principal_id: PrincipalId,
    pub(super) purpose: Purpose,
    pub(super) identity: Decision,
    pub(super) contact: Decision,
    pub(super) professional: Decision,
    pub(super) special: Decision,
    pub(super) control: Decision,
}

impl ReadGrant {
    /// The grant a remembered read gives this request: the same five outcomes, about this
    /// candidate (the memo's key holds everything else the outcomes depend on).
    pub(super) fn from_outcomes(
        principal: &super::PrincipalFacts,
        candidate: &super::CandidateFacts,
        purpose: &Purpose,
        outcomes: [Outcome; 5],
    ) -> ReadGrant {
        let [identity, contact, professional, special, control] = outcomes;
        let decision = |outcome: Outcome, group: FieldGroup| Decision {
            verdict: outcome.verdict,
            policy_ids: outcome.policy_ids,
            failed_policy_ids: outcome.failed_policy_ids,
            action: Action::Read,
            candidate_id: Some(candidate.candidate_id),
            group: Some(group),
        };
        ReadGrant {
            candidate_id: candidate.candidate_id,
            principal_id: principal.principal_id.clone(),
            purpose: purpose.clone(),
            identity: decision(identity, FieldGroup::Identity),
            contact: decision(contact, FieldGroup::Contact),
            professional: decision(professional, FieldGroup::Professional),
            special: decision(special, FieldGroup::Special),
            control: decision(control, FieldGroup::Control),
        }
    }

    /// The five outcomes, in [`FieldGroup::ALL`] order, for the memo.
    pub(super) fn outcomes(&self) -> [Outcome; 5] {
        FieldGroup::ALL.map(|group| {
            let d = self.decision(group);
            Outcome {
                verdict: d.verdict,
                policy_ids: d.policy_ids.clone(),
                failed_policy_ids: d.failed_policy_ids.clone(),
            }
        })
    }

    /// The candidate read.
    pub fn candidate_id(&self) -> CandidateId {
        self.candidate_id
    }

    /// Who read.
    pub fn principal_id(&self) -> &PrincipalId {
        &self.principal_id
    }

    /// For what purpose.
    pub fn purpose(&self) -> &Purpose {
        &self.purpose
    }

    /// The decision for one group.
    pub fn decision(&self, group: FieldGroup) -> &Decision {
        match group {
            FieldGroup::Identity => &self.identity,
            FieldGroup::Contact => &self.contact,
            FieldGroup::Professional => &self.professional,
            FieldGroup::Special => &self.special,
            FieldGroup::Control => &self.control,
        }
    }

    /// Whether one group may be opened.
    pub fn allows(&self, group: FieldGroup) -> bool {
        self.decision(group).is_allowed()
    }

    /// The groups that may be opened, in storage order.
    pub fn allowed_groups(&self) -> Vec<FieldGroup> {
        FieldGroup::ALL
            .into_iter()
            .filter(|g| self.allows(*g))
            .collect()
    }

    /// The groups that may not, in storage order.
    pub fn denied_groups(&self) -> Vec<FieldGroup> {
        FieldGroup::ALL
            .into_iter()
            .filter(|g| !self.allows(*g))
            .collect()
    }

    /// Every policy that decided a group a principal can ask for ([`FieldGroup::DISCLOSABLE`]),
    /// sorted and without duplicates: what the audit entry and a refusal name. The control
    /// group is decided too (and always refused), but nobody asks for it, so its standing
    /// forbid would only hide the policy that really decided.
    pub fn policy_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = FieldGroup::DISCLOSABLE
            .into_iter()
            .flat_map(|g| self.decision(g).policy_ids.iter().cloned())
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }

    /// True when no group may be opened.
    pub fn is_empty(&self) -> bool {
        FieldGroup::ALL.into_iter().all(|g| !self.allows(g))
    }
}

/// The decisions on replacing field groups of one candidate: one per group, each decided on
/// its own. Only this module constructs it.
#[derive(Debug)]
pub struct UpdateDecision {
    pub(super) candidate_id: CandidateId,
    pub(super) decisions: Vec<Decision>,
}

impl UpdateDecision {
    /// The groups policy refused to let this principal replace.
    pub fn refused_groups(&self) -> Vec<FieldGroup> {
        self.decisions
            .iter()
            .filter(|d| !d.is_allowed())
            .filter_map(Decision::group)
            .collect()
    }

    /// The deciding policies of every group, sorted, each once.
    pub fn policy_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .decisions
            .iter()
            .flat_map(|d| d.policy_ids().iter().cloned())
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }

    /// The proof that every group asked for may be replaced (an [`Allowed`] of
    /// [`Action::Update`] on the candidate), or `None` when policy refused any of them, or
    /// when no group was asked for. Consumed: one set of decisions, at most one proof.
    pub fn allowed(self) -> Option<Allowed> {
        let all = !self.decisions.is_empty() && self.decisions.iter().all(Decision::is_allowed);
        let policy_ids = self.policy_ids();
        all.then_some(Allowed {
            action: Action::Update,
            candidate_id: Some(self.candidate_id),
            group: None,
            policy_ids,
        })
    }
}
