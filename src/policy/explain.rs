//! Why a field group is or is not disclosed, in words a caseworker understands.

use cedar_policy::Effect;

use super::load::PolicyMeta;
use super::{CandidateFacts, Decision, PolicyEngine, PrincipalFacts, Verdict};
use crate::vocabulary::{FieldGroup, Purpose, Role};

/// A policy that took part in a decision, with its plain-words description.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PolicyNote {
    /// The `@id`.
    pub policy_id: String,
    /// The `@description`.
    pub description: String,
    /// The file it is in.
    pub file: String,
    /// Whether it is a `forbid` (else a `permit`).
    pub forbids: bool,
}

/// Why one field group is or is not disclosed, in words a caseworker understands.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Explanation {
    /// The group.
    pub group: FieldGroup,
    /// Allow or deny.
    pub verdict: Verdict,
    /// The deciding policies (permits for allow, forbids for deny; empty for default deny).
    pub policies: Vec<PolicyNote>,
    /// Policies whose evaluation failed (any failure denies).
    pub failed_policy_ids: Vec<String>,
    /// E.g. "Employer hr@acme of acme may see professional for recruitment because policy
    /// employer-professional-for-recruitment: ...".
    pub sentence: String,
}

impl PolicyEngine {
    /// Why each field group is or is not disclosed to `principal` for `purpose`.
    pub fn explain(
        &self,
        principal: &PrincipalFacts,
        candidate: &CandidateFacts,
        purpose: &Purpose,
    ) -> Vec<Explanation> {
        let grant = self.decide_read(principal, candidate, purpose);
        FieldGroup::ALL
            .into_iter()
            .map(|group| self.explain_decision(principal, purpose, grant.decision(group), group))
            .collect()
    }

    fn explain_decision(
        &self,
        principal: &PrincipalFacts,
        purpose: &Purpose,
        decision: &Decision,
        group: FieldGroup,
    ) -> Explanation {
        let policies: Vec<PolicyNote> = decision
            .policy_ids
            .iter()
            .map(|id| {
                self.policy(id).unwrap_or_else(|| PolicyNote {
                    policy_id: id.clone(),
                    description: String::new(),
                    file: String::new(),
                    forbids: false,
                })
            })
            .collect();
        let who = who(principal);
        let cited = policies
            .iter()
            .map(|p| format!("{}: {}", p.policy_id, p.description))
            .collect::<Vec<_>>()
            .join("; and ");
        let sentence = match decision.verdict {
            Verdict::Allow => format!("{who} may see {group} for {purpose} because policy {cited}"),
            Verdict::Deny if !decision.failed_policy_ids.is_empty() => format!(
                "{who} may not see {group} for {purpose}: denied because policy {} could not be \
                 evaluated (the vault fails closed).",
                decision.failed_policy_ids.join(", ")
            ),
            Verdict::Deny if policies.is_empty() => {
                format!("{who} may not see {group} for {purpose}: denied: no policy permits it.")
            }
            Verdict::Deny => {
                format!("{who} may not see {group} for {purpose}: forbidden by {cited}")
            }
        };
        Explanation {
            group,
            verdict: decision.verdict,
            policies,
            failed_policy_ids: decision.failed_policy_ids.clone(),
            sentence,
        }
    }
}

pub(super) fn note(policy_id: &str, meta: &PolicyMeta) -> PolicyNote {
    PolicyNote {
        policy_id: policy_id.to_owned(),
        description: meta.description.clone(),
        file: meta.file.clone(),
        forbids: meta.effect == Effect::Forbid,
    }
}

/// "Employer hr@acme of acme", "The candidate anna", ...
fn who(principal: &PrincipalFacts) -> String {
    let id = &principal.principal_id;
    let org = &principal.org;
    match principal.role {
        Role::Caseworker => format!("Caseworker {id} of {org}"),
        Role::Provider => format!("Provider {id} of {org}"),
        Role::Employer => format!("Employer {id} of {org}"),
        Role::Dpo => format!("Data-protection officer {id} of {org}"),
        Role::Subject => format!("The candidate {id}"),
        Role::System => format!("The retention job {id}"),
    }
}
