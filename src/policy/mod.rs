//! Cedar policy: loading and strict validation of policy/, decisions per field group, explain.
//!
//! Every decision is one call to the Cedar authorizer over the loaded policy set; anything
//! that is not explicitly permitted, or that a `forbid` matches, or whose evaluation fails, is
//! denied. Operations that need authorization take an [`Allowed`] or a [`ReadGrant`], which
//! only this module can create, so that forgetting to decide does not compile (STYLE.md §4).
//!
//! - `request.rs`: what is asked (actions, principal and candidate facts, one request).
//! - `decision.rs`: what is answered, and the proofs of an allowed decision.
//! - this file: the engine that loads the policy set and decides.
//! - `explain.rs`: why, in plain words; `load.rs`: files and validation; `cedar.rs`: the
//!   entities and context Cedar is given.

mod cedar;
mod decision;
mod explain;
mod lint;
mod load;
mod memo;
mod request;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use cedar_policy::{
    ActionConstraint, Authorizer, Context, Entities, EntityTypeName, EntityUid, Policy, PolicySet,
    PrincipalConstraint, Schema,
};

use crate::error::Error;
use crate::ids::{CandidateId, OrgId};
use crate::vocabulary::{AssignmentKind, FieldGroup, OrgKind, Purpose, Role};

use cedar::Vocabulary;
pub use decision::{Allowed, Decision, ReadGrant, UpdateDecision, Verdict};
use explain::note;
pub use explain::{Explanation, PolicyNote};
pub use lint::LintWarning;
use load::PolicyMeta;
pub use load::{DEFAULT_FILES, SCHEMA_FILE};
pub use request::{Action, CandidateFacts, PrincipalFacts, Request, Resource, ResourceKind};

/// The loaded, validated policy set and everything needed to decide with it.
pub struct PolicyEngine {
    policies: PolicySet,
    schema: Schema,
    meta: HashMap<String, PolicyMeta>,
    hash: [u8; 32],
    /// The policies that can apply to each role and action, by their scope: a subset of
    /// `policies` that gives exactly the same decisions, evaluated in a fraction of the time.
    by_role_action: HashMap<(Role, Action), PolicySet>,
    authorizer: Authorizer,
    vocabulary: Vocabulary,
    /// The purposes the schema declares.
    purposes: Vec<String>,
    /// Check every entity set and request against the schema (tests); production relies on
    /// the load-time check that the schema describes what this module sends. Also checks
    /// every remembered read against a fresh evaluation.
    check_requests: bool,
    /// Whether some policy names a `Candidate` entity literal (then a read's decision may
    /// depend on the candidate's id, and the memo keys by it).
    names_candidates: bool,
    /// Read decisions by what Cedar sees of them ([`memo`]).
    read_memo: memo::ReadMemo,
}

impl fmt::Debug for PolicyEngine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PolicyEngine")
            .field("policies", &self.meta.len())
            .field("hash", &hex::encode(self.hash))
            .finish_non_exhaustive()
    }
}

impl PolicyEngine {
    /// Loads `dir/vault.cedarschema` and every `dir/*.cedar`, sorted by name, and validates
    /// them in strict mode.
    pub fn load_dir(dir: &Path) -> Result<Self, Error> {
        let (schema, files) = load::read_dir(dir)?;
        Self::from_sources(&schema, &files)
    }

    /// Loads a schema and policy files given as `(file name, text)`; same checks as
    /// [`PolicyEngine::load_dir`].
    pub fn from_sources(schema: &str, files: &[(String, String)]) -> Result<Self, Error> {
        let loaded = load::load(schema, files)?;
        let vocabulary = Vocabulary::new().map_err(|message| Error::InvalidPolicy {
            file: SCHEMA_FILE.to_owned(),
            position: None,
            message,
        })?;
        let schema_error = |message: String| Error::InvalidPolicy {
            file: SCHEMA_FILE.to_owned(),
            position: None,
            message,
        };
        if let Some(group) = loaded.schema.action_groups().next() {
            // INVARIANT: no action groups, so an action matches a policy's action scope only by
            // equality. The entity store of a request holds no action entities, so a forbid
            // written as `action in <group>` would otherwise silently never apply.
            return Err(schema_error(format!(
                "action groups (memberOf) are not supported, found {group}: list the actions \
                 in each policy instead, e.g. action in [Action::\"read\", Action::\"erase\"]"
            )));
        }
        let by_role_action = partition(&loaded.policies, &vocabulary).map_err(schema_error)?;
        // A linked template's literals are in its links, not its condition: count it as one
        // that may name a candidate (templates are refused at load today).
        let names_candidates = loaded.policies.policies().any(|policy| {
            !policy.is_static()
                || policy
                    .entity_literals()
                    .iter()
                    .any(|uid| vocabulary.is_candidate(uid))
        });
        let engine = Self {
            by_role_action,
            policies: loaded.policies,
            schema: loaded.schema,
            meta: loaded.meta,
            hash: loaded.hash,
            purposes: loaded.purposes,
            authorizer: Authorizer::new(),
            vocabulary,
            check_requests: cfg!(test),
            names_candidates,
            read_memo: memo::ReadMemo::default(),
        };
        engine.check_schema_describes_requests()?;
        Ok(engine)
    }

    /// The purposes of processing the schema declares, in its order.
    pub fn purposes(&self) -> &[String] {
        &self.purposes
    }

    /// Refuses a purpose the schema does not declare, naming those it does.
    pub fn check_purpose(&self, purpose: &Purpose) -> Result<(), Error> {
        if self.purposes.iter().any(|p| p == purpose.as_str()) {
            return Ok(());
        }
        Err(Error::invalid_input(format!(
            "unknown purpose `{purpose}`: the purposes are {} (declared in policy/vault.cedarschema)",
            self.purposes.join(", ")
        )))
    }

    /// The policy files shipped with cvvault ([`DEFAULT_FILES`]), compiled in.
    pub fn embedded_default() -> Result<Self, Error> {
        let mut schema = "";
        let mut files = Vec::new();
        for (name, text) in DEFAULT_FILES {
            if *name == SCHEMA_FILE {
                schema = text;
            } else {
                files.push(((*name).to_owned(), (*text).to_owned()));
            }
        }
        Self::from_sources(schema, &files)
    }

    /// SHA-256 over the schema and policy files (names and texts, length-prefixed, in name
    /// order). Recorded in every audit entry.
    pub fn policy_hash(&self) -> [u8; 32] {
        self.hash
    }

    /// The policy with this id, with its description.
    pub fn policy(&self, policy_id: &str) -> Option<PolicyNote> {
        self.meta.get(policy_id).map(|meta| note(policy_id, meta))
    }

    /// Every policy, by file then id.
    pub fn policies(&self) -> Vec<PolicyNote> {
        let mut notes: Vec<PolicyNote> = self.meta.iter().map(|(id, m)| note(id, m)).collect();
        notes.sort_by(|a, b| (&a.file, &a.policy_id).cmp(&(&b.file, &b.policy_id)));
        notes
    }

    /// One decision: a single Cedar call, deny by default. Never panics; a request that does
    /// not fit its action, or any evaluation error, is a Deny.
    pub fn decide(&self, request: &Request<'_>) -> Decision {
        match self.evaluate_one(request) {
            Ok(decision) => decision,
            Err(reason) => {
                tracing::warn!(action = %request.action, %reason, "policy request refused before evaluation");
                Decision::deny_unevaluated(request)
            }
        }
    }

    /// The decisions for reading every field group of a candidate for a purpose: remembered
    /// by what Cedar sees of the read ([`memo`], exact), else evaluated with the entities
    /// built once and shared by the five Cedar calls.
    pub fn decide_read(
        &self,
        principal: &PrincipalFacts,
        candidate: &CandidateFacts,
        purpose: &Purpose,
    ) -> ReadGrant {
        let facts = memo::ReadFacts::of(principal, candidate, purpose, self.names_candidates);
        if let Some(outcomes) = facts.as_ref().and_then(|facts| self.read_memo.get(facts)) {
            let grant = ReadGrant::from_outcomes(principal, candidate, purpose, outcomes);
            if self.check_requests {
                let fresh = self.evaluate_read(principal, candidate, purpose);
                #[cfg(test)]
                assert_eq!(
                    fresh, grant,
                    "a remembered read decision differs from a fresh one"
                );
                if fresh != grant {
                    tracing::error!("a remembered read decision differs from a fresh one");
                    return fresh;
                }
            }
            return grant;
        }
        let grant = self.evaluate_read(principal, candidate, purpose);
        // INVARIANT: a read that grants nothing is never remembered. Such a read is answered
        // "not found" to employers, providers and other subjects, like a candidate that does
        // not exist (whose decoy read is not remembered either, being empty too): every
        // hidden refusal costs the five evaluations, so that its time tells nothing. (An
        // entry that grants something cannot be hit by a read that grants nothing: the memo
        // is exact.)
        if let Some(facts) = facts.filter(|_| !grant.is_empty()) {
            self.read_memo.put(facts, grant.outcomes());
        }
        grant
    }

    /// [`PolicyEngine::decide_read`] without the memo: the five evaluations themselves (what
    /// the memo saves, as `cargo bench --bench decision` measures it).
    pub fn evaluate_read(
        &self,
        principal: &PrincipalFacts,
        candidate: &CandidateFacts,
        purpose: &Purpose,
    ) -> ReadGrant {
        let schema = self.check_requests.then_some(&self.schema);
        let scene = self
            .vocabulary
            .scene(principal, Resource::Candidate(candidate), None, schema);
        let decide = |group: FieldGroup| {
            let request = Request::read(principal, candidate, purpose, group);
            let outcome = scene.as_ref().map_err(Clone::clone).and_then(|scene| {
                let context = self.vocabulary.read_context(purpose, group)?;
                let cedar_request =
                    self.vocabulary
                        .request(scene, Action::Read, context, schema)?;
                Ok(self.evaluate(&request, &cedar_request, &scene.entities))
            });
            outcome.unwrap_or_else(|reason| {
                tracing::warn!(%reason, "read request refused before evaluation");
                Decision::deny_unevaluated(&request)
            })
        };
        ReadGrant {
            candidate_id: candidate.candidate_id,
            principal_id: principal.principal_id.clone(),
            purpose: purpose.clone(),
            identity: decide(FieldGroup::Identity),
            contact: decide(FieldGroup::Contact),
            professional: decide(FieldGroup::Professional),
            special: decide(FieldGroup::Special),
            control: decide(FieldGroup::Control),
        }
    }

    /// The roles that some permit lets do `action` (under its conditions, which this does not
    /// judge): what a refusal names, so that the user knows whom to ask. A role whose every
    /// permit a forbid of the same scope always overrides is still listed.
    pub fn roles_permitted(&self, action: Action) -> Vec<Role> {
        Role::ALL
            .into_iter()
            .filter(|role| {
                self.by_role_action
                    .get(&(*role, action))
                    .is_some_and(|set| {
                        set.policies()
                            .any(|p| p.effect() == cedar_policy::Effect::Permit)
                    })
            })
            .collect()
    }

    /// The decisions for replacing `groups` of a candidate: one Cedar call per group, so that
    /// a policy can let a principal correct some groups and not others.
    pub fn decide_update(
        &self,
        principal: &PrincipalFacts,
        candidate: &CandidateFacts,
        groups: &[FieldGroup],
    ) -> UpdateDecision {
        UpdateDecision {
            candidate_id: candidate.candidate_id,
            decisions: groups
                .iter()
                .map(|group| self.decide(&Request::update(principal, candidate, *group)))
                .collect(),
        }
    }

    fn evaluate_one(&self, request: &Request<'_>) -> Result<Decision, String> {
        if request.resource.kind() != request.action.resource_kind() {
            return Err(format!(
                "{} applies to {:?}, not {:?}",
                request.action,
                request.action.resource_kind(),
                request.resource.kind()
            ));
        }
        let schema = self.check_requests.then_some(&self.schema);
        let context = self.context(request)?;
        let scene = self.vocabulary.scene(
            request.principal,
            request.resource,
            request.org.map(|(org, _)| org),
            schema,
        )?;
        let cedar_request = self
            .vocabulary
            .request(&scene, request.action, context, schema)?;
        Ok(self.evaluate(request, &cedar_request, &scene.entities))
    }

    fn context(&self, request: &Request<'_>) -> Result<Context, String> {
        match request.action {
            Action::Read => match (request.purpose, request.group) {
                (Some(purpose), Some(group)) => self.vocabulary.read_context(purpose, group),
                _ => Err("a read needs a purpose and a field group".to_owned()),
            },
            Action::Update => match request.group {
                Some(group) => self.vocabulary.update_context(group),
                None => Err("an update needs a field group".to_owned()),
            },
            Action::OpenAssignment => match (request.kind, request.purpose, request.org) {
                (Some(kind), Some(purpose), Some((org, org_kind))) => self
                    .vocabulary
                    .assignment_context(kind, purpose, org, org_kind),
                _ => Err(
                    "opening an assignment needs a kind, a purpose and an organisation".to_owned(),
                ),
            },
            _ => Ok(Context::empty()),
        }
    }

    /// The one Cedar call. Fails closed: an evaluation error in any policy denies.
    fn evaluate(
        &self,
        request: &Request<'_>,
        cedar_request: &cedar_policy::Request,
        entities: &Entities,
    ) -> Decision {
        let policies = self
            .by_role_action
            .get(&(request.principal.role, request.action))
            .unwrap_or(&self.policies);
        let response = self
            .authorizer
            .is_authorized(cedar_request, policies, entities);
        let diagnostics = response.diagnostics();
        let mut failed_policy_ids: Vec<String> = diagnostics
            .errors()
            .map(|e| match e {
                cedar_policy::AuthorizationError::PolicyEvaluationError(e) => {
                    e.policy_id().to_string()
                }
            })
            .collect();
        failed_policy_ids.sort();
        failed_policy_ids.dedup();
        let allowed = response.decision() == cedar_policy::Decision::Allow;
        let (verdict, mut policy_ids) = if allowed && failed_policy_ids.is_empty() {
            (
                Verdict::Allow,
                diagnostics.reason().map(ToString::to_string).collect(),
            )
        } else if allowed {
            tracing::warn!(failed = ?failed_policy_ids, "policy evaluation failed: denying");
            (Verdict::Deny, Vec::new())
        } else {
            (
                Verdict::Deny,
                diagnostics
                    .reason()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>(),
            )
        };
        policy_ids.sort();
        Decision {
            verdict,
            policy_ids,
            failed_policy_ids,
            action: request.action,
            candidate_id: request.resource.candidate_id(),
            group: request.group,
        }
    }

    /// Refuses a schema that does not describe the entities and requests this module sends
    /// (e.g. an edited vault.cedarschema that dropped an attribute): every role, every action.
    fn check_schema_describes_requests(&self) -> Result<(), Error> {
        fn parse<T: std::str::FromStr<Err = Error>>(s: &str) -> Result<T, String> {
            s.parse().map_err(|e: Error| e.to_string())
        }
        let sample = || -> Result<(Vec<PrincipalFacts>, CandidateFacts, Purpose, OrgId), String> {
            let org: OrgId = parse("schema-check")?;
            let candidate = CandidateFacts {
                candidate_id: CandidateId::from_bytes([0; 16]),
                protected: false,
                employer_contact_consent: false,
                coaching_orgs: vec![org.clone()],
                matching_orgs: vec![org.clone()],
            };
            let principals = Role::ALL
                .into_iter()
                .map(|role| {
                    Ok(PrincipalFacts {
                        principal_id: parse("schema-check")?,
                        role,
                        org: org.clone(),
                        subject_of: Some(candidate.candidate_id),
                    })
                })
                .collect::<Result<Vec<_>, String>>()?;
            let purpose = self
                .purposes
                .first()
                .ok_or_else(|| "the schema declares no purpose".to_owned())?;
            Ok((principals, candidate, parse(purpose)?, org))
        };
        let check = || -> Result<(), String> {
            let (principals, candidate, purpose, org) = sample()?;
            let schema = Some(&self.schema);
            for principal in &principals {
                for action in Action::ALL {
                    let resource = match action.resource_kind() {
                        ResourceKind::Vault => Resource::Vault,
                        ResourceKind::Candidate => Resource::Candidate(&candidate),
                    };
                    let request = Request {
                        purpose: Some(&purpose),
                        group: Some(FieldGroup::Identity),
                        kind: Some(AssignmentKind::Coaching),
                        org: Some((&org, OrgKind::Provider)),
                        ..Request::bare(principal, action, resource)
                    };
                    let scene = self
                        .vocabulary
                        .scene(principal, resource, Some(&org), schema)?;
                    let context = self.context(&request)?;
                    self.vocabulary
                        .request(&scene, action, context, schema)
                        .map_err(|e| format!("{} by {}: {e}", action, principal.role))?;
                }
            }
            Ok(())
        };
        check().map_err(|reason| Error::InvalidPolicy {
            file: SCHEMA_FILE.to_owned(),
            position: None,
            message: format!(
                "the schema does not describe what the vault sends ({reason}): keep the entity \
                 types, attributes and actions of the shipped vault.cedarschema"
            ),
        })
    }
}

/// Splits the policy set by the role and action its scope admits. A policy left out of a
/// subset has a scope that the role's requests for that action cannot satisfy, so Cedar would
/// skip it anyway (scope is checked before the condition, so it cannot error either).
fn partition(
    policies: &PolicySet,
    vocabulary: &Vocabulary,
) -> Result<HashMap<(Role, Action), PolicySet>, String> {
    let mut subsets = HashMap::new();
    for role in Role::ALL {
        for action in Action::ALL {
            let role_type = vocabulary.role(role);
            let action_uid = vocabulary.action_uid(action);
            let subset = PolicySet::from_policies(
                policies
                    .policies()
                    .filter(|p| may_apply(p, role_type, &action_uid))
                    .cloned(),
            )
            .map_err(|e| e.to_string())?;
            subsets.insert((role, action), subset);
        }
    }
    Ok(subsets)
}

/// Whether a policy's principal and action scope can admit a request by a principal of
/// `role_type` for `action`. Errs towards `true` (a constraint it cannot judge is kept).
fn may_apply(policy: &Policy, role_type: &EntityTypeName, action: &EntityUid) -> bool {
    let principal = match policy.principal_constraint() {
        PrincipalConstraint::Is(ty) | PrincipalConstraint::IsIn(ty, _) => &ty == role_type,
        PrincipalConstraint::Eq(uid) => uid.type_name() == role_type,
        PrincipalConstraint::Any | PrincipalConstraint::In(_) => true,
    };
    let action = match policy.action_constraint() {
        ActionConstraint::Any => true,
        ActionConstraint::Eq(uid) => &uid == action,
        ActionConstraint::In(uids) => uids.contains(action),
    };
    principal && action
}
