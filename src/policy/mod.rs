//! Cedar policy: loading and strict validation of policy/, decisions per field group, explain.
//!
//! Every decision is one call to the Cedar authorizer over the loaded policy set; anything
//! that is not explicitly permitted, or that a `forbid` matches, or whose evaluation fails, is
//! denied. Operations that need authorization take an [`Allowed`] or a [`ReadGrant`], which
//! only this module can create, so that forgetting to decide does not compile (STYLE.md §4).

mod cedar;
mod load;

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use cedar_policy::{
    ActionConstraint, Authorizer, Context, Effect, Entities, EntityTypeName, EntityUid, Policy,
    PolicySet, PrincipalConstraint, Schema,
};

use crate::error::Error;
use crate::ids::{CandidateId, OrgId, PrincipalId};
use crate::vocabulary::{AssignmentKind, FieldGroup, OrgKind, Purpose, Role};

use cedar::Vocabulary;
use load::PolicyMeta;
pub use load::{DEFAULT_FILES, SCHEMA_FILE};

/// What a principal asks to do. The names are the Cedar action ids in vault.cedarschema.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Read one field group of a candidate's profile for a purpose.
    Read,
    /// Register a new candidate.
    Register,
    /// Open a coaching or matching assignment for a candidate.
    OpenAssignment,
    /// Close a candidate's assignment.
    CloseAssignment,
    /// Erase a candidate on request.
    Erase,
    /// Read, verify or export the audit trail.
    ReadAudit,
    /// Produce a candidate's subject access report.
    SubjectAccess,
    /// Place a legal hold on a candidate.
    PlaceHold,
    /// Release a legal hold.
    ReleaseHold,
    /// Erase a candidate whose retention period has ended (the retention job).
    RetentionErase,
}

/// What an action is about: the vault as a whole or one candidate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResourceKind {
    /// The singleton `Vault` entity.
    Vault,
    /// A `Candidate` entity.
    Candidate,
}

impl Action {
    /// Every action.
    pub const ALL: [Action; 10] = [
        Action::Read,
        Action::Register,
        Action::OpenAssignment,
        Action::CloseAssignment,
        Action::Erase,
        Action::ReadAudit,
        Action::SubjectAccess,
        Action::PlaceHold,
        Action::ReleaseHold,
        Action::RetentionErase,
    ];

    /// The Cedar action id, also used in the audit trail.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Read => "read",
            Action::Register => "register",
            Action::OpenAssignment => "open_assignment",
            Action::CloseAssignment => "close_assignment",
            Action::Erase => "erase",
            Action::ReadAudit => "read_audit",
            Action::SubjectAccess => "subject_access",
            Action::PlaceHold => "place_hold",
            Action::ReleaseHold => "release_hold",
            Action::RetentionErase => "retention_erase",
        }
    }

    /// The kind of resource the schema gives this action.
    pub fn resource_kind(self) -> ResourceKind {
        match self {
            Action::Register | Action::ReadAudit => ResourceKind::Vault,
            _ => ResourceKind::Candidate,
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who is asking, as the vault knows them after authentication.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrincipalFacts {
    /// The principal.
    pub principal_id: PrincipalId,
    /// Its role; each role is its own Cedar entity type.
    pub role: Role,
    /// Its organisation (ignored for a subject).
    pub org: OrgId,
    /// For a subject (the candidate themself): their own candidate record. Must be `Some`
    /// for [`Role::Subject`]; a subject without it is denied everything.
    pub subject_of: Option<CandidateId>,
}

/// What policy needs to know about a candidate: opened from the control group and the
/// assignment table by the vault, never shown to the principal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CandidateFacts {
    /// The candidate.
    pub candidate_id: CandidateId,
    /// Protected personal data (skyddade personuppgifter).
    pub protected: bool,
    /// The candidate agreed that matched employers may see identity and contact.
    pub employer_contact_consent: bool,
    /// Organisations with an OPEN coaching assignment with the candidate.
    pub coaching_orgs: Vec<OrgId>,
    /// Organisations with an OPEN matching assignment with the candidate.
    pub matching_orgs: Vec<OrgId>,
}

/// The object of a request.
#[derive(Clone, Copy, Debug)]
pub enum Resource<'a> {
    /// The vault as a whole (register, read_audit).
    Vault,
    /// One candidate.
    Candidate(&'a CandidateFacts),
}

impl Resource<'_> {
    fn kind(&self) -> ResourceKind {
        match self {
            Resource::Vault => ResourceKind::Vault,
            Resource::Candidate(_) => ResourceKind::Candidate,
        }
    }

    fn candidate_id(&self) -> Option<CandidateId> {
        match self {
            Resource::Vault => None,
            Resource::Candidate(c) => Some(c.candidate_id),
        }
    }
}

/// One question to the policy. Use the constructors; a request whose resource or context does
/// not fit its action (e.g. a read without a field group) is denied.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// Who asks.
    pub principal: &'a PrincipalFacts,
    /// What they ask to do.
    pub action: Action,
    /// On what.
    pub resource: Resource<'a>,
    /// The declared purpose (read, open_assignment).
    pub purpose: Option<&'a Purpose>,
    /// The field group (read).
    pub group: Option<FieldGroup>,
    /// The assignment kind (open_assignment).
    pub kind: Option<AssignmentKind>,
    /// The organisation an assignment is opened for, and its kind (open_assignment).
    pub org: Option<(&'a OrgId, OrgKind)>,
}

impl<'a> Request<'a> {
    /// An action on the vault as a whole (register, read_audit).
    pub fn on_vault(principal: &'a PrincipalFacts, action: Action) -> Self {
        Self::bare(principal, action, Resource::Vault)
    }

    /// An action on one candidate that needs no context (close_assignment, erase,
    /// subject_access, place_hold, release_hold, retention_erase).
    pub fn on_candidate(
        principal: &'a PrincipalFacts,
        action: Action,
        candidate: &'a CandidateFacts,
    ) -> Self {
        Self::bare(principal, action, Resource::Candidate(candidate))
    }

    /// Reading one field group of a candidate for a purpose.
    pub fn read(
        principal: &'a PrincipalFacts,
        candidate: &'a CandidateFacts,
        purpose: &'a Purpose,
        group: FieldGroup,
    ) -> Self {
        Self {
            purpose: Some(purpose),
            group: Some(group),
            ..Self::bare(principal, Action::Read, Resource::Candidate(candidate))
        }
    }

    /// Opening an assignment of `kind` between `org` (of `org_kind`) and a candidate, for a
    /// purpose.
    pub fn open_assignment(
        principal: &'a PrincipalFacts,
        candidate: &'a CandidateFacts,
        kind: AssignmentKind,
        purpose: &'a Purpose,
        org: &'a OrgId,
        org_kind: OrgKind,
    ) -> Self {
        Self {
            purpose: Some(purpose),
            kind: Some(kind),
            org: Some((org, org_kind)),
            ..Self::bare(
                principal,
                Action::OpenAssignment,
                Resource::Candidate(candidate),
            )
        }
    }

    fn bare(principal: &'a PrincipalFacts, action: Action, resource: Resource<'a>) -> Self {
        Self {
            principal,
            action,
            resource,
            purpose: None,
            group: None,
            kind: None,
            org: None,
        }
    }
}

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
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    verdict: Verdict,
    policy_ids: Vec<String>,
    failed_policy_ids: Vec<String>,
    action: Action,
    candidate_id: Option<CandidateId>,
    group: Option<FieldGroup>,
}

impl Decision {
    fn deny_unevaluated(request: &Request<'_>) -> Self {
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
    pub fn allowed(&self) -> Option<Allowed> {
        (self.verdict == Verdict::Allow).then(|| Allowed {
            action: self.action,
            candidate_id: self.candidate_id,
            group: self.group,
            policy_ids: self.policy_ids.clone(),
        })
    }
}

/// Proof that policy allowed something; only this module can construct it (private fields, no
/// `Clone`), so code that needs authorization cannot be called without deciding first.
#[derive(Debug)]
pub struct Allowed {
    action: Action,
    candidate_id: Option<CandidateId>,
    group: Option<FieldGroup>,
    policy_ids: Vec<String>,
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
#[derive(Debug)]
pub struct ReadGrant {
    candidate_id: CandidateId,
    principal_id: PrincipalId,
    purpose: Purpose,
    identity: Decision,
    contact: Decision,
    professional: Decision,
    special: Decision,
    control: Decision,
}

impl ReadGrant {
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

    /// Every policy that decided any group, sorted and without duplicates (for the audit).
    pub fn policy_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = FieldGroup::ALL
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
    /// the load-time check that the schema describes what this module sends.
    check_requests: bool,
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

    /// The decisions for reading every field group of a candidate for a purpose. The entities
    /// are built once and shared by the five Cedar calls.
    pub fn decide_read(
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

fn note(policy_id: &str, meta: &PolicyMeta) -> PolicyNote {
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

#[cfg(test)]
mod tests {
    use super::*;

    const OUR_ORG: &str = "our-org";
    const OTHER_ORG: &str = "other-org";

    /// The principals of the table: the roles, with the subject split into own and other.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Who {
        Caseworker,
        Provider,
        Employer,
        Dpo,
        SubjectOwn,
        SubjectOther,
        System,
    }

    const EVERYONE: [Who; 7] = [
        Who::Caseworker,
        Who::Provider,
        Who::Employer,
        Who::Dpo,
        Who::SubjectOwn,
        Who::SubjectOther,
        Who::System,
    ];

    /// The state of the principal's organisation's assignments with the candidate.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Assignment {
        None,
        OpenCoaching,
        OpenMatching,
        OtherOrganisationOpen,
        /// A closed assignment is simply absent from the open sets.
        Closed,
    }

    const ASSIGNMENTS: [Assignment; 5] = [
        Assignment::None,
        Assignment::OpenCoaching,
        Assignment::OpenMatching,
        Assignment::OtherOrganisationOpen,
        Assignment::Closed,
    ];

    /// Every purpose the schema declares (a read for an undeclared one is refused by the
    /// vault before policy is asked; see `check_purpose`).
    const PURPOSES: [&str; 3] = ["coaching", "recruitment", "subject-access"];

    #[derive(Clone, Copy, Debug)]
    struct Cell {
        who: Who,
        assignment: Assignment,
        purpose: &'static str,
        consent: bool,
        protected: bool,
    }

    fn all_cells() -> Vec<Cell> {
        let mut cells = Vec::new();
        for who in EVERYONE {
            for assignment in ASSIGNMENTS {
                for purpose in PURPOSES {
                    for consent in [true, false] {
                        for protected in [true, false] {
                            cells.push(Cell {
                                who,
                                assignment,
                                purpose,
                                consent,
                                protected,
                            });
                        }
                    }
                }
            }
        }
        cells
    }

    fn org(s: &str) -> OrgId {
        s.parse().unwrap()
    }

    fn candidate(cell: &Cell) -> CandidateFacts {
        let (coaching, matching) = match cell.assignment {
            Assignment::None | Assignment::Closed => (vec![], vec![]),
            Assignment::OpenCoaching => (vec![org(OUR_ORG)], vec![]),
            Assignment::OpenMatching => (vec![], vec![org(OUR_ORG)]),
            Assignment::OtherOrganisationOpen => (vec![org(OTHER_ORG)], vec![org(OTHER_ORG)]),
        };
        CandidateFacts {
            candidate_id: CandidateId::random(),
            protected: cell.protected,
            employer_contact_consent: cell.consent,
            coaching_orgs: coaching,
            matching_orgs: matching,
        }
    }

    fn principal(who: Who, candidate: &CandidateFacts) -> PrincipalFacts {
        let (role, subject_of) = match who {
            Who::Caseworker => (Role::Caseworker, None),
            Who::Provider => (Role::Provider, None),
            Who::Employer => (Role::Employer, None),
            Who::Dpo => (Role::Dpo, None),
            Who::SubjectOwn => (Role::Subject, Some(candidate.candidate_id)),
            Who::SubjectOther => (Role::Subject, Some(CandidateId::random())),
            Who::System => (Role::System, None),
        };
        PrincipalFacts {
            principal_id: format!("{}-1", role.as_str()).parse().unwrap(),
            role,
            org: org(OUR_ORG),
            subject_of,
        }
    }

    /// The rules of the brief, written out plainly: may `cell` see `group`?
    fn expected_allow(cell: &Cell, group: FieldGroup) -> bool {
        use FieldGroup::*;
        if group == Control {
            return false; // the vault opens control itself; no read discloses it
        }
        match cell.who {
            Who::Caseworker | Who::Dpo | Who::SubjectOther | Who::System => false,
            Who::SubjectOwn => true,
            Who::Provider => {
                !cell.protected
                    && cell.assignment == Assignment::OpenCoaching
                    && cell.purpose == "coaching"
                    && matches!(group, Identity | Contact | Professional)
            }
            Who::Employer => {
                let matched = !cell.protected
                    && cell.assignment == Assignment::OpenMatching
                    && cell.purpose == "recruitment";
                matched
                    && (group == Professional
                        || (cell.consent && matches!(group, Identity | Contact)))
            }
        }
    }

    /// The forbids that must fire for a read, whatever the permits say.
    fn expected_forbids(cell: &Cell, group: FieldGroup) -> Vec<&'static str> {
        let mut ids = Vec::new();
        if group == FieldGroup::Control {
            ids.push("control-never-read");
        }
        if cell.who == Who::Dpo {
            ids.push("dpo-never-reads-profiles");
        }
        if cell.who == Who::Employer && cell.protected {
            ids.push("protected-never-to-employer");
        }
        if cell.who == Who::Provider && cell.protected {
            ids.push("protected-never-to-provider");
        }
        if cell.who == Who::Employer && group == FieldGroup::Special {
            ids.push("special-never-to-employer");
        }
        ids.sort();
        ids
    }

    /// The permit that allows an allowed cell.
    fn expected_permit(cell: &Cell, group: FieldGroup) -> &'static str {
        match (cell.who, group) {
            (Who::Provider, _) => "provider-coaching-read",
            (Who::Employer, FieldGroup::Professional) => "employer-professional-for-recruitment",
            (Who::Employer, _) => "employer-contact-with-consent",
            (Who::SubjectOwn, _) => "subject-reads-own-profile",
            other => panic!("no permit expected for {other:?}"),
        }
    }

    fn engine() -> PolicyEngine {
        PolicyEngine::embedded_default().unwrap()
    }

    fn engine_with(extra: &[(&str, &str)]) -> PolicyEngine {
        let schema = DEFAULT_FILES[0].1;
        let files: Vec<(String, String)> = DEFAULT_FILES[1..]
            .iter()
            .chain(extra)
            .map(|(n, t)| (n.to_string(), t.to_string()))
            .collect();
        PolicyEngine::from_sources(schema, &files).unwrap()
    }

    const PERMIT_EVERYTHING: (&str, &str) = (
        "zz-permit-everything.cedar",
        "@id(\"permit-everything\")\n@description(\"Everyone may do everything.\")\n\
         permit(principal, action, resource);\n",
    );

    #[test]
    fn every_read_cell_matches_the_plainly_written_rules() {
        let engine = engine();
        let mut allowed = 0;
        let cells = all_cells();
        for cell in &cells {
            let candidate = candidate(cell);
            let principal = principal(cell.who, &candidate);
            let purpose: Purpose = cell.purpose.parse().unwrap();
            let grant = engine.decide_read(&principal, &candidate, &purpose);
            assert_eq!(grant.candidate_id(), candidate.candidate_id);
            for group in FieldGroup::ALL {
                let decision = grant.decision(group);
                let want = expected_allow(cell, group);
                assert_eq!(
                    decision.is_allowed(),
                    want,
                    "{cell:?} {group}: {decision:?}"
                );
                let forbids = expected_forbids(cell, group);
                if want {
                    allowed += 1;
                    assert!(forbids.is_empty(), "{cell:?} {group}: rules contradict");
                    assert_eq!(
                        decision.policy_ids(),
                        [expected_permit(cell, group)],
                        "{cell:?} {group}"
                    );
                } else if !forbids.is_empty() {
                    assert_eq!(decision.policy_ids(), forbids, "{cell:?} {group}");
                } else {
                    assert!(
                        decision.policy_ids().is_empty(),
                        "{cell:?} {group}: {decision:?}"
                    );
                }
                assert!(decision.failed_policy_ids().is_empty());
                assert_eq!(decision.group(), Some(group));
                assert_eq!(decision.candidate_id(), Some(candidate.candidate_id));

                // A single decision says the same as the five-group read.
                let single = engine.decide(&Request::read(&principal, &candidate, &purpose, group));
                assert_eq!(&single, decision, "{cell:?} {group}");
            }
            assert_eq!(grant.is_empty(), grant.allowed_groups().is_empty());
            assert_eq!(
                grant.allowed_groups().len() + grant.denied_groups().len(),
                5
            );
        }
        assert_eq!(cells.len(), 7 * 5 * 3 * 2 * 2);
        assert!(allowed > 100, "the table exercises allows too ({allowed})");
    }

    /// Which principals the brief lets do each non-read action (forbids aside).
    fn expected_action_allow(
        who: Who,
        action: Action,
        protected: bool,
        kind: AssignmentKind,
    ) -> bool {
        match action {
            Action::Read => unreachable!("covered by the read table"),
            Action::Register | Action::CloseAssignment | Action::Erase => who == Who::Caseworker,
            Action::OpenAssignment => {
                who == Who::Caseworker && !(protected && kind == AssignmentKind::Matching)
            }
            Action::ReadAudit | Action::PlaceHold | Action::ReleaseHold => who == Who::Dpo,
            Action::SubjectAccess => who == Who::Dpo || who == Who::SubjectOwn,
            Action::RetentionErase => who == Who::System,
        }
    }

    fn decide_action(
        engine: &PolicyEngine,
        who: Who,
        action: Action,
        protected: bool,
        kind: AssignmentKind,
    ) -> Decision {
        let cell = Cell {
            who,
            assignment: Assignment::OpenMatching,
            purpose: "recruitment",
            consent: true,
            protected,
        };
        let candidate = candidate(&cell);
        let principal = principal(who, &candidate);
        // Each kind with its own purpose and kind of organisation (assignment-kinds.cedar).
        let purpose: Purpose = match kind {
            AssignmentKind::Coaching => "coaching",
            AssignmentKind::Matching => "recruitment",
        }
        .parse()
        .unwrap();
        let partner = org("partner");
        let request = match action {
            Action::Register | Action::ReadAudit => Request::on_vault(&principal, action),
            Action::OpenAssignment => Request::open_assignment(
                &principal,
                &candidate,
                kind,
                &purpose,
                &partner,
                match kind {
                    AssignmentKind::Coaching => OrgKind::Provider,
                    AssignmentKind::Matching => OrgKind::Employer,
                },
            ),
            _ => Request::on_candidate(&principal, action, &candidate),
        };
        engine.decide(&request)
    }

    #[test]
    fn every_other_action_matches_the_plainly_written_rules() {
        let engine = engine();
        for who in EVERYONE {
            for action in Action::ALL.into_iter().filter(|a| *a != Action::Read) {
                for protected in [true, false] {
                    for kind in [AssignmentKind::Coaching, AssignmentKind::Matching] {
                        let decision = decide_action(&engine, who, action, protected, kind);
                        let want = expected_action_allow(who, action, protected, kind);
                        let at = format!("{who:?} {action} protected={protected} {kind}");
                        assert_eq!(decision.is_allowed(), want, "{at}: {decision:?}");
                        assert_eq!(decision.action(), action);
                        if want {
                            assert_eq!(decision.policy_ids().len(), 1, "{at}: {decision:?}");
                        }
                        let on_candidate = action.resource_kind() == ResourceKind::Candidate;
                        let ids = decision.policy_ids();
                        if on_candidate && protected && who == Who::Employer {
                            assert!(ids.contains(&"protected-never-to-employer".into()), "{at}");
                        }
                        if on_candidate && protected && who == Who::Provider {
                            assert!(ids.contains(&"protected-never-to-provider".into()), "{at}");
                        }
                        if action == Action::OpenAssignment
                            && protected
                            && kind == AssignmentKind::Matching
                        {
                            assert!(
                                ids.contains(&"protected-no-matching-assignment".into()),
                                "{at}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn a_permit_everything_file_cannot_undo_the_forbids() {
        let engine = engine_with(&[PERMIT_EVERYTHING]);
        for cell in &all_cells() {
            let candidate = candidate(cell);
            let principal = principal(cell.who, &candidate);
            let purpose: Purpose = cell.purpose.parse().unwrap();
            let grant = engine.decide_read(&principal, &candidate, &purpose);
            for group in FieldGroup::ALL {
                let decision = grant.decision(group);
                let forbids = expected_forbids(cell, group);
                // With a universal permit, exactly the forbidden cells are denied.
                assert_eq!(
                    decision.is_allowed(),
                    forbids.is_empty(),
                    "{cell:?} {group}"
                );
                if forbids.is_empty() {
                    assert!(decision.policy_ids().contains(&"permit-everything".into()));
                } else {
                    assert_eq!(decision.policy_ids(), forbids, "{cell:?} {group}");
                }
            }
            let special = grant.decision(FieldGroup::Special);
            if cell.who == Who::Employer {
                assert!(!special.is_allowed(), "{cell:?}");
                assert!(special
                    .policy_ids()
                    .contains(&"special-never-to-employer".into()));
            }
            if cell.protected && matches!(cell.who, Who::Employer | Who::Provider) {
                assert!(grant.is_empty(), "{cell:?}: {:?}", grant.allowed_groups());
                let forbid = if cell.who == Who::Employer {
                    "protected-never-to-employer"
                } else {
                    "protected-never-to-provider"
                };
                assert!(grant.policy_ids().contains(&forbid.into()), "{cell:?}");
            }
            assert!(!grant.allows(FieldGroup::Control));
        }
        // ... nor let an employer or provider act on a protected candidate in any other way,
        // get anyone's subject access report, or match a protected candidate.
        for who in [Who::Employer, Who::Provider] {
            for action in Action::ALL.into_iter().filter(|a| *a != Action::Read) {
                let decision = decide_action(&engine, who, action, true, AssignmentKind::Matching);
                let on_candidate = action.resource_kind() == ResourceKind::Candidate;
                assert_eq!(decision.is_allowed(), !on_candidate, "{who:?} {action}");
            }
            let decision = decide_action(
                &engine,
                who,
                Action::SubjectAccess,
                false,
                AssignmentKind::Coaching,
            );
            assert_eq!(decision.policy_ids(), ["subject-access-only-dpo-or-self"]);
        }
        let decision = decide_action(
            &engine,
            Who::Caseworker,
            Action::OpenAssignment,
            true,
            AssignmentKind::Matching,
        );
        assert_eq!(decision.policy_ids(), ["protected-no-matching-assignment"]);
    }

    #[test]
    fn requests_that_do_not_fit_their_action_are_denied_even_under_a_universal_permit() {
        let engine = engine_with(&[PERMIT_EVERYTHING]);
        let cell = all_cells()[0];
        let candidate = candidate(&cell);
        let caseworker = principal(Who::Caseworker, &candidate);
        let purpose: Purpose = "coaching".parse().unwrap();

        // The universal permit does apply to a well-formed request ...
        assert!(engine
            .decide(&Request::on_vault(&caseworker, Action::Register))
            .is_allowed());
        // ... but not to a register on a candidate, a read on the vault, or a read without a
        // group or purpose.
        let wrong_resource = Request::on_candidate(&caseworker, Action::Register, &candidate);
        assert!(!engine.decide(&wrong_resource).is_allowed());
        assert!(!engine
            .decide(&Request::on_vault(&caseworker, Action::Read))
            .is_allowed());
        let no_group = Request {
            group: None,
            ..Request::read(&caseworker, &candidate, &purpose, FieldGroup::Identity)
        };
        assert!(!engine.decide(&no_group).is_allowed());
        let no_org = Request {
            org: None,
            ..Request::open_assignment(
                &caseworker,
                &candidate,
                AssignmentKind::Coaching,
                &purpose,
                &caseworker.org,
                OrgKind::Provider,
            )
        };
        assert!(!engine.decide(&no_org).is_allowed());

        // A subject principal that is not bound to a candidate is denied everything.
        let lost_subject = PrincipalFacts {
            subject_of: None,
            ..principal(Who::SubjectOwn, &candidate)
        };
        assert!(engine
            .decide_read(&lost_subject, &candidate, &purpose)
            .is_empty());
    }

    #[test]
    fn an_evaluation_error_denies_even_when_a_permit_matches() {
        let overflow = (
            "zz-overflow.cedar",
            "@id(\"overflows\")\n@description(\"Always fails to evaluate.\")\n\
             permit(principal, action, resource) when { 9223372036854775807 + 1 > 0 };\n",
        );
        let engine = engine_with(&[PERMIT_EVERYTHING, overflow]);
        let cell = all_cells()[0];
        let candidate = candidate(&cell);
        let caseworker = principal(Who::Caseworker, &candidate);
        let decision = engine.decide(&Request::on_vault(&caseworker, Action::Register));
        assert_eq!(decision.verdict(), Verdict::Deny);
        assert_eq!(decision.failed_policy_ids(), ["overflows"]);
        assert!(decision.policy_ids().is_empty());
        let purpose: Purpose = "coaching".parse().unwrap();
        let explanation = engine.explain(&caseworker, &candidate, &purpose);
        assert!(
            explanation[0].sentence.contains("could not be evaluated"),
            "{}",
            explanation[0].sentence
        );
    }

    #[test]
    fn only_an_allow_gives_a_proof_and_the_proof_names_its_action_and_candidate() {
        let engine = engine();
        let cell = all_cells()[0];
        let candidate = candidate(&cell);
        let caseworker = principal(Who::Caseworker, &candidate);
        let allowed = engine
            .decide(&Request::on_candidate(
                &caseworker,
                Action::Erase,
                &candidate,
            ))
            .allowed()
            .unwrap();
        assert_eq!(allowed.action(), Action::Erase);
        assert_eq!(allowed.candidate_id(), Some(candidate.candidate_id));
        assert_eq!(allowed.policy_ids(), ["caseworker-erase-on-request"]);
        assert_eq!(
            allowed.candidate_for(Action::Erase).unwrap(),
            candidate.candidate_id
        );
        // A proof of one action is no proof of another.
        assert!(matches!(
            allowed.candidate_for(Action::ReleaseHold),
            Err(Error::Internal(_))
        ));
        assert!(matches!(
            allowed.check_action(Action::Register),
            Err(Error::Internal(_))
        ));

        let dpo = principal(Who::Dpo, &candidate);
        let purpose: Purpose = "coaching".parse().unwrap();
        let denied = engine.decide(&Request::read(
            &dpo,
            &candidate,
            &purpose,
            FieldGroup::Identity,
        ));
        assert!(denied.allowed().is_none());
        assert_eq!(denied.policy_ids(), ["dpo-never-reads-profiles"]);
        assert!(engine
            .decide(&Request::on_vault(&dpo, Action::Register))
            .allowed()
            .is_none());
    }

    #[test]
    fn explain_says_why_in_plain_words_with_ids_and_descriptions() {
        let engine = engine();
        let cell = Cell {
            who: Who::Employer,
            assignment: Assignment::OpenMatching,
            purpose: "recruitment",
            consent: false,
            protected: false,
        };
        let candidate = candidate(&cell);
        let employer = principal(Who::Employer, &candidate);
        let recruitment: Purpose = "recruitment".parse().unwrap();
        let explanations = engine.explain(&employer, &candidate, &recruitment);
        assert_eq!(explanations.len(), 5);
        let by_group = |g: FieldGroup| explanations.iter().find(|e| e.group == g).unwrap();

        let professional = by_group(FieldGroup::Professional);
        assert_eq!(professional.verdict, Verdict::Allow);
        assert_eq!(
            professional.policies[0].policy_id,
            "employer-professional-for-recruitment"
        );
        assert!(!professional.policies[0].forbids);
        assert!(
            professional.sentence.starts_with(
                "Employer employer-1 of our-org may see professional for recruitment because \
                 policy employer-professional-for-recruitment: An employer with an open matching"
            ),
            "{}",
            professional.sentence
        );

        let special = by_group(FieldGroup::Special);
        assert_eq!(special.verdict, Verdict::Deny);
        assert!(special.policies[0].forbids);
        assert!(
            special.sentence.contains(
                "may not see special for recruitment: forbidden by \
                                       special-never-to-employer: Special categories"
            ),
            "{}",
            special.sentence
        );

        let identity = by_group(FieldGroup::Identity);
        assert_eq!(identity.verdict, Verdict::Deny);
        assert!(identity.policies.is_empty());
        assert_eq!(
            identity.sentence,
            "Employer employer-1 of our-org may not see identity for recruitment: denied: no \
             policy permits it."
        );

        let other: Purpose = "subject-access".parse().unwrap();
        for e in engine.explain(&employer, &candidate, &other) {
            assert_eq!(e.verdict, Verdict::Deny, "{}", e.sentence);
        }
    }

    #[test]
    fn policy_hash_is_stable_and_changes_with_any_file() {
        let schema = DEFAULT_FILES[0].1.to_owned();
        let files: Vec<(String, String)> = DEFAULT_FILES[1..]
            .iter()
            .map(|(n, t)| (n.to_string(), t.to_string()))
            .collect();
        let base = PolicyEngine::from_sources(&schema, &files)
            .unwrap()
            .policy_hash();
        assert_eq!(base, engine().policy_hash(), "same files, same hash");
        let reversed: Vec<_> = files.iter().rev().cloned().collect();
        assert_eq!(
            base,
            PolicyEngine::from_sources(&schema, &reversed)
                .unwrap()
                .policy_hash()
        );
        let from_dir =
            PolicyEngine::load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("policy")).unwrap();
        assert_eq!(base, from_dir.policy_hash());

        let changed_schema = format!("{schema}\n// edited\n");
        let hash = PolicyEngine::from_sources(&changed_schema, &files)
            .unwrap()
            .policy_hash();
        assert_ne!(hash, base, "schema edit");
        for i in 0..files.len() {
            let mut edited = files.clone();
            edited[i].1.push_str("\n// edited\n");
            let hash = PolicyEngine::from_sources(&schema, &edited)
                .unwrap()
                .policy_hash();
            assert_ne!(hash, base, "edit of {}", files[i].0);
            let mut renamed = files.clone();
            renamed[i].0 = format!("renamed-{}", files[i].0);
            let hash = PolicyEngine::from_sources(&schema, &renamed)
                .unwrap()
                .policy_hash();
            assert_ne!(hash, base, "rename of {}", files[i].0);
        }
        // Moving text between files changes the hash too (length prefixes).
        let mut moved = files.clone();
        let cut = moved[0].1.len() - 1;
        let tail = moved[0].1.split_off(cut);
        moved[1].1.insert_str(0, &tail);
        assert_ne!(load_hash(&schema, &moved), base);
    }

    fn load_hash(schema: &str, files: &[(String, String)]) -> [u8; 32] {
        PolicyEngine::from_sources(schema, files)
            .unwrap()
            .policy_hash()
    }

    #[test]
    fn load_dir_reports_a_bad_file_by_name_and_position() {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in DEFAULT_FILES {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        std::fs::write(dir.path().join("README.md"), "not a policy").unwrap();
        assert!(PolicyEngine::load_dir(dir.path()).is_ok());
        std::fs::write(
            dir.path().join("zz-typo.cedar"),
            "@id(\"typo\")\n@description(\"Typo.\")\npermit (principal, action == Action::\"read\", \
             resource is Candidate)\nwhen { resource.protectd };\n",
        )
        .unwrap();
        let err = PolicyEngine::load_dir(dir.path()).unwrap_err();
        match &err {
            Error::InvalidPolicy { file, position, .. } => {
                assert_eq!(file, "zz-typo.cedar");
                assert_eq!(position.as_deref(), Some("4:8"));
            }
            other => panic!("expected InvalidPolicy, got {other}"),
        }
        assert!(
            err.to_string()
                .starts_with("invalid policy zz-typo.cedar:4:8: "),
            "{err}"
        );
        std::fs::remove_file(dir.path().join(SCHEMA_FILE)).unwrap();
        assert!(matches!(
            PolicyEngine::load_dir(dir.path()),
            Err(Error::InvalidPolicy { message, .. }) if message.contains("schema")
        ));
    }

    #[test]
    fn a_schema_that_does_not_describe_the_requests_is_refused() {
        let schema = DEFAULT_FILES[0]
            .1
            .replace("  employer_contact_consent: Bool,\n", "");
        let files: Vec<(String, String)> = DEFAULT_FILES[1..]
            .iter()
            .filter(|(n, _)| *n != "employer.cedar")
            .map(|(n, t)| (n.to_string(), t.to_string()))
            .collect();
        match PolicyEngine::from_sources(&schema, &files) {
            Err(Error::InvalidPolicy { file, message, .. }) => {
                assert_eq!(file, SCHEMA_FILE);
                assert!(message.contains("does not describe"), "{message}");
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn an_assignment_links_only_its_kind_of_organisation_for_its_purpose() {
        // Before: `--kind matching --purpose statistics` and `--kind coaching --org <an
        // employer>` were opened, and the employer then read for recruitment.
        let engine = engine();
        let cell = Cell {
            who: Who::Caseworker,
            assignment: Assignment::None,
            purpose: "recruitment",
            consent: true,
            protected: false,
        };
        let candidate = candidate(&cell);
        let caseworker = principal(Who::Caseworker, &candidate);
        let partner = org("partner");
        let coaching: Purpose = "coaching".parse().unwrap();
        let recruitment: Purpose = "recruitment".parse().unwrap();
        for (kind, purpose, org_kind, allowed) in [
            (AssignmentKind::Coaching, &coaching, OrgKind::Provider, true),
            (
                AssignmentKind::Matching,
                &recruitment,
                OrgKind::Employer,
                true,
            ),
            (
                AssignmentKind::Matching,
                &coaching,
                OrgKind::Employer,
                false,
            ),
            (
                AssignmentKind::Coaching,
                &recruitment,
                OrgKind::Provider,
                false,
            ),
            (
                AssignmentKind::Coaching,
                &coaching,
                OrgKind::Employer,
                false,
            ),
            (
                AssignmentKind::Matching,
                &recruitment,
                OrgKind::Provider,
                false,
            ),
            (
                AssignmentKind::Matching,
                &recruitment,
                OrgKind::Agency,
                false,
            ),
        ] {
            let decision = engine.decide(&Request::open_assignment(
                &caseworker,
                &candidate,
                kind,
                purpose,
                &partner,
                org_kind,
            ));
            assert_eq!(
                decision.is_allowed(),
                allowed,
                "{kind} {purpose} {org_kind}"
            );
            if !allowed {
                assert_eq!(
                    decision.policy_ids(),
                    ["assignment-kind-links-its-organisation-for-its-purpose"]
                );
            }
        }
        assert!(engine
            .check_purpose(&"statistics".parse().unwrap())
            .is_err());
        let misspelt = engine
            .check_purpose(&"recruitmnet".parse().unwrap())
            .unwrap_err()
            .to_string();
        assert!(
            misspelt.contains("coaching, recruitment, subject-access"),
            "{misspelt}"
        );
        assert_eq!(
            engine.purposes(),
            ["coaching", "recruitment", "subject-access"]
        );
    }

    #[test]
    fn a_misspelt_purpose_in_a_policy_file_fails_validation() {
        let misspelt = r#"@id("typo")
@description("a typo")
permit (principal is Employer, action == Action::"read", resource is Candidate)
when { context.purpose == Purpose::"recruitmnet" };"#;
        let refused = PolicyEngine::from_sources(
            DEFAULT_FILES[0].1,
            &[("typo.cedar".to_owned(), misspelt.to_owned())],
        );
        assert!(
            matches!(&refused, Err(Error::InvalidPolicy { file, .. }) if file == "typo.cedar"),
            "{refused:?}"
        );
    }

    #[test]
    fn every_policy_is_listed_with_its_description() {
        let engine = engine();
        let notes = engine.policies();
        assert_eq!(notes.len(), 21);
        assert!(notes.iter().all(|n| !n.description.is_empty()));
        let forbid = engine.policy("special-never-to-employer").unwrap();
        assert!(forbid.forbids);
        assert_eq!(forbid.file, "forbid-special-categories.cedar");
        assert!(engine.policy("nope").is_none());
    }

    #[test]
    fn the_policy_subsets_by_role_and_action_decide_like_the_whole_set() {
        for extra in [&[][..], &[PERMIT_EVERYTHING][..]] {
            let partitioned = engine_with(extra);
            let mut whole = engine_with(extra);
            whole.by_role_action.clear();
            assert!(partitioned
                .by_role_action
                .values()
                .all(|s| s.num_of_policies() < 21));
            for cell in &all_cells() {
                let candidate = candidate(cell);
                let principal = principal(cell.who, &candidate);
                let purpose: Purpose = cell.purpose.parse().unwrap();
                let a = partitioned.decide_read(&principal, &candidate, &purpose);
                let b = whole.decide_read(&principal, &candidate, &purpose);
                for group in FieldGroup::ALL {
                    assert_eq!(a.decision(group), b.decision(group), "{cell:?} {group}");
                }
            }
            for who in EVERYONE {
                for action in Action::ALL.into_iter().filter(|a| *a != Action::Read) {
                    for protected in [true, false] {
                        for kind in [AssignmentKind::Coaching, AssignmentKind::Matching] {
                            let a = decide_action(&partitioned, who, action, protected, kind);
                            let b = decide_action(&whole, who, action, protected, kind);
                            assert_eq!(a.verdict(), b.verdict(), "{who:?} {action}");
                            assert_eq!(a.policy_ids(), b.policy_ids(), "{who:?} {action}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn action_groups_in_the_schema_are_refused() {
        let schema = DEFAULT_FILES[0]
            .1
            .replace(
                "action register, read_audit",
                "action disclosures;\naction register, read_audit",
            )
            .replace(
                "action read appliesTo",
                "action read in [Action::\"disclosures\"] appliesTo",
            );
        let files: Vec<(String, String)> = DEFAULT_FILES[1..]
            .iter()
            .map(|(n, t)| (n.to_string(), t.to_string()))
            .collect();
        match PolicyEngine::from_sources(&schema, &files) {
            Err(Error::InvalidPolicy { message, .. }) => {
                assert!(message.contains("action groups"), "{message}")
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
}
