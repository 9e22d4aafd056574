//! `policy check`'s warnings: policies that are valid but that a reviewer should look at
//! twice. A warning is not an error (the vault runs with it); `policy check --strict` makes
//! it one.
//!
//! - A `permit` whose scope leaves the principal, the action or the resource open: it grants
//!   to roles, actions or entities its author may not have thought of.
//! - A `permit` that would release special categories to an employer, or a protected
//!   candidate to an employer or a provider, if the forbid files were not there: the
//!   guarantee then rests on one file, and deleting or editing it would silently widen
//!   access. Such a permit should carry the condition itself (`!resource.protected`,
//!   `context.group != FieldGroup::"special"`).

use cedar_policy::{ActionConstraint, Effect, PolicySet, PrincipalConstraint, ResourceConstraint};

use super::{CandidateFacts, PolicyEngine, PrincipalFacts, Resource};
use crate::ids::{CandidateId, OrgId};
use crate::vocabulary::{FieldGroup, Purpose, Role};

/// One warning about one policy.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct LintWarning {
    /// The policy's `@id`.
    pub policy_id: String,
    /// The file it is in.
    pub file: String,
    /// What is wrong and what to do about it.
    pub message: String,
}

impl PolicyEngine {
    /// The warnings about the loaded policies (empty for the shipped ones).
    pub fn lint(&self) -> Vec<LintWarning> {
        let mut warnings = Vec::new();
        let file_of = |id: &str| {
            self.policy(id)
                .map(|note| note.file)
                .unwrap_or_else(|| "?".to_owned())
        };
        for policy in self.policies.policies() {
            if policy.effect() != Effect::Permit {
                continue;
            }
            let mut open = Vec::new();
            if matches!(policy.principal_constraint(), PrincipalConstraint::Any) {
                open.push("any principal");
            }
            if matches!(policy.action_constraint(), ActionConstraint::Any) {
                open.push("any action");
            }
            if matches!(policy.resource_constraint(), ResourceConstraint::Any) {
                open.push("any resource");
            }
            if !open.is_empty() {
                let id = policy.id().to_string();
                warnings.push(LintWarning {
                    file: file_of(&id),
                    message: format!(
                        "this permit applies to {}: name the role (`principal is Employer`), the action (`action == Action::\"read\"`) and the resource type (`resource is Candidate`) it is meant for",
                        open.join(", ")
                    ),
                    policy_id: id,
                });
            }
        }
        for (id, what) in self.permits_only_forbids_hold() {
            warnings.push(LintWarning {
                file: file_of(&id),
                message: format!(
                    "without the forbid files this permit would release {what}: only a forbid keeps it from doing so. Add the condition to the permit itself ({})",
                    if what.starts_with("special") {
                        "`context.group != FieldGroup::\"special\"`"
                    } else {
                        "`!resource.protected`"
                    }
                ),
                policy_id: id,
            });
        }
        warnings.sort_by(|a, b| (&a.file, &a.policy_id).cmp(&(&b.file, &b.policy_id)));
        warnings
    }

    /// The permits that, evaluated without any forbid, allow reading special categories as an
    /// employer, or any group of a protected candidate as an employer or provider, on a
    /// candidate linked to the principal's organisation by every kind of assignment, with
    /// consent given, for every declared purpose: (policy id, what it would release).
    fn permits_only_forbids_hold(&self) -> Vec<(String, &'static str)> {
        let Ok(permits) = PolicySet::from_policies(
            self.policies
                .policies()
                .filter(|p| p.effect() == Effect::Permit)
                .cloned(),
        ) else {
            return Vec::new();
        };
        let Ok(org) = "lint-org".parse::<OrgId>() else {
            return Vec::new();
        };
        let mut found: Vec<(String, &'static str)> = Vec::new();
        for protected in [false, true] {
            let candidate = CandidateFacts {
                candidate_id: CandidateId::from_bytes([7; 16]),
                protected,
                employer_contact_consent: true,
                coaching_orgs: vec![org.clone()],
                matching_orgs: vec![org.clone()],
            };
            for role in [Role::Employer, Role::Provider] {
                let Ok(principal_id) = "lint-principal".parse() else {
                    continue;
                };
                let principal = PrincipalFacts {
                    principal_id,
                    role,
                    org: org.clone(),
                    subject_of: None,
                };
                let Ok(scene) =
                    self.vocabulary
                        .scene(&principal, Resource::Candidate(&candidate), None, None)
                else {
                    continue;
                };
                for purpose in &self.purposes {
                    let Ok(purpose) = purpose.parse::<Purpose>() else {
                        continue;
                    };
                    for group in FieldGroup::ALL {
                        let what = if protected {
                            "a protected candidate to an employer or provider"
                        } else if group == FieldGroup::Special && role == Role::Employer {
                            "special categories to an employer"
                        } else {
                            continue;
                        };
                        let Ok(context) = self.vocabulary.read_context(&purpose, group) else {
                            continue;
                        };
                        let Ok(request) =
                            self.vocabulary
                                .request(&scene, super::Action::Read, context, None)
                        else {
                            continue;
                        };
                        let response =
                            self.authorizer
                                .is_authorized(&request, &permits, &scene.entities);
                        if response.decision() != cedar_policy::Decision::Allow {
                            continue;
                        }
                        for id in response.diagnostics().reason() {
                            let entry = (id.to_string(), what);
                            if !found.contains(&entry) {
                                found.push(entry);
                            }
                        }
                    }
                }
            }
        }
        found
    }
}
