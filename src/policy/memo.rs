//! An exact memo of read decisions: the five field-group decisions of a read, kept under
//! everything Cedar is shown for it, so that the next read with the same facts costs a lookup
//! instead of building the entities and five evaluations.
//!
//! Exact means the key holds every input of the evaluation: the principal's type, id and
//! organisation (or, for a subject, the candidate it is), the candidate's attributes
//! (protected, consent, the organisations of its open assignments, in order) and the purpose.
//! The candidate's own id is left out only when no policy can tell candidates apart by it:
//! when no policy names a `Candidate` entity literal, and the principal is not a subject (a
//! subject's decision compares its candidate with the resource). The memo belongs to one
//! loaded policy set, so a policy change starts an empty one. It holds verdicts and policy
//! ids under keys of principal, organisation and candidate ids and flags, never profile
//! data. A read that grants nothing is never remembered (see `decide_read`).

use std::collections::HashMap;
use std::sync::Mutex;

use super::decision::Verdict;
use super::{CandidateFacts, PrincipalFacts};
use crate::ids::{CandidateId, OrgId, PrincipalId};
use crate::vocabulary::{Purpose, Role};

/// Remembered reads before the memo starts again (a few hundred bytes each).
const CAPACITY: usize = 16_384;
/// A candidate with more open assignments than this is decided afresh: the key would be
/// long, and such candidates are rare.
const MAX_KEY_ORGS: usize = 32;

/// What Cedar sees of a read.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct ReadFacts {
    role: Role,
    principal_id: PrincipalId,
    org: OrgId,
    subject_of: Option<CandidateId>,
    candidate_id: Option<CandidateId>,
    protected: bool,
    employer_contact_consent: bool,
    coaching_orgs: Vec<OrgId>,
    matching_orgs: Vec<OrgId>,
    purpose: Purpose,
}

impl ReadFacts {
    /// The key of a read; `by_id`: whether the candidate's id is part of what decides.
    /// `None` for a read not to remember (see [`MAX_KEY_ORGS`]).
    pub(super) fn of(
        principal: &PrincipalFacts,
        candidate: &CandidateFacts,
        purpose: &Purpose,
        by_id: bool,
    ) -> Option<ReadFacts> {
        if candidate.coaching_orgs.len() + candidate.matching_orgs.len() > MAX_KEY_ORGS {
            return None;
        }
        let by_id = by_id || principal.role == Role::Subject;
        Some(ReadFacts {
            role: principal.role,
            principal_id: principal.principal_id.clone(),
            org: principal.org.clone(),
            subject_of: principal.subject_of,
            candidate_id: by_id.then_some(candidate.candidate_id),
            protected: candidate.protected,
            employer_contact_consent: candidate.employer_contact_consent,
            coaching_orgs: candidate.coaching_orgs.clone(),
            matching_orgs: candidate.matching_orgs.clone(),
            purpose: purpose.clone(),
        })
    }
}

/// One group's decision without the request it answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Outcome {
    pub(super) verdict: Verdict,
    pub(super) policy_ids: Vec<String>,
    pub(super) failed_policy_ids: Vec<String>,
}

/// The memo.
#[derive(Default)]
pub(super) struct ReadMemo {
    reads: Mutex<HashMap<ReadFacts, [Outcome; 5]>>,
}

impl ReadMemo {
    pub(super) fn get(&self, facts: &ReadFacts) -> Option<[Outcome; 5]> {
        self.reads.lock().ok()?.get(facts).cloned()
    }

    /// Reads remembered now.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.reads.lock().map(|r| r.len()).unwrap_or(0)
    }

    pub(super) fn put(&self, facts: ReadFacts, outcomes: [Outcome; 5]) {
        if let Ok(mut reads) = self.reads.lock() {
            if reads.len() >= CAPACITY {
                reads.clear();
            }
            reads.insert(facts, outcomes);
        }
    }
}
