//! The record of processing activities (GDPR Art. 30(1)), generated from the Cedar policy set
//! in force: who receives which field groups of a candidate's profile, for which purposes,
//! under which conditions, by which policies, and how long candidates are kept.
//!
//! Nothing here restates a rule (STYLE.md: "the same rule should never also be written in
//! Rust"). Every "may receive" is a decision of the engine: for each role and purpose, the
//! policy set is evaluated over every combination of the facts Cedar is given about a
//! principal and a candidate, and a condition is a fact that every allowed combination shares.
//! The record says which facts were evaluated, so it never claims more than was decided.
//! Art. 30(1)(b) purposes, (d) categories of recipients, (f) time limits for erasure.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde::Serialize;

use crate::ids::{CandidateId, OrgId, PrincipalId};
use crate::policy::{
    Action, CandidateFacts, Decision, PolicyEngine, PolicyNote, PrincipalFacts, Request,
};
use crate::settings::Retention;
use crate::vault::retention::Rule;
use crate::vocabulary::{FieldGroup, Purpose, Role};

/// The `format` of every record this module writes; bump it if the shape changes.
pub const FORMAT: &str = "cvvault-record-of-processing/v1";

/// The record of processing activities of a vault, as the policy files in force decide it.
#[derive(Clone, Debug, Serialize)]
pub struct RecordOfProcessing {
    /// [`FORMAT`].
    pub format: &'static str,
    /// When the record was generated (RFC 3339).
    pub generated_at: String,
    /// `sha256:<hex>` of the policy set the record was generated from, as in every audit
    /// entry decided under it.
    pub policy_hash: String,
    /// The purposes of processing the schema declares (Art. 5(1)(b)), each evaluated.
    pub purposes: Vec<Purpose>,
    /// How the conditions were derived, and what that leaves out.
    pub method: String,
    /// The facts about a principal and a candidate the policies were evaluated over.
    pub evaluated_facts: Vec<FactNote>,
    /// Per role: what it receives, what it never receives, what else it may do.
    pub roles: Vec<RoleRecord>,
    /// How long candidates are kept, and the policies that decide erasure and holds.
    pub retention: RetentionRecord,
    /// Policies whose evaluation failed in some evaluated case (the vault denies then, so the
    /// record shows less than such a policy meant to allow). Empty for a sound policy set.
    pub failed_policy_ids: Vec<String>,
}

/// A fact about a principal and a candidate that Cedar is given, evaluated both ways.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fact {
    /// The candidate has protected personal data (`resource.protected`).
    Protected,
    /// The candidate consented to employer contact (`resource.employer_contact_consent`).
    EmployerContactConsent,
    /// The recipient's organisation is in `resource.matching_orgs`.
    OrgMatching,
    /// The recipient's organisation is in `resource.coaching_orgs`.
    OrgCoaching,
    /// Another organisation is in `resource.matching_orgs`.
    OtherOrgMatching,
    /// Another organisation is in `resource.coaching_orgs`.
    OtherOrgCoaching,
    /// The candidate is the recipient themself (`principal.candidate == resource`, subjects).
    OwnRecord,
}

impl Serialize for Fact {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl Fact {
    /// The fact's name in the JSON record and in the text's listing of cases.
    pub fn as_str(self) -> &'static str {
        match self {
            Fact::Protected => "protected",
            Fact::EmployerContactConsent => "employer_contact_consent",
            Fact::OrgMatching => "org_matching",
            Fact::OrgCoaching => "org_coaching",
            Fact::OtherOrgMatching => "other_org_matching",
            Fact::OtherOrgCoaching => "other_org_coaching",
            Fact::OwnRecord => "own_record",
        }
    }

    /// What the fact is, in a DPO's words.
    pub fn meaning(self) -> &'static str {
        match self {
            Fact::Protected => {
                "the candidate has protected personal data (skyddade personuppgifter)"
            }
            Fact::EmployerContactConsent => {
                "the candidate consented to matched employers seeing their name and contact \
                 details"
            }
            Fact::OrgMatching => {
                "an open matching assignment links the recipient's organisation to the candidate"
            }
            Fact::OrgCoaching => {
                "an open coaching assignment links the recipient's organisation to the candidate"
            }
            Fact::OtherOrgMatching => {
                "an open matching assignment links another organisation to the candidate"
            }
            Fact::OtherOrgCoaching => {
                "an open coaching assignment links another organisation to the candidate"
            }
            Fact::OwnRecord => "the candidate is the recipient themself (their own record)",
        }
    }

    /// The condition that the fact must hold (`true`) or must not (`false`).
    fn condition(self, holds: bool) -> &'static str {
        match (self, holds) {
            (Fact::Protected, false) => "never for a candidate with protected identity",
            (Fact::Protected, true) => "only for a candidate with protected identity",
            (Fact::EmployerContactConsent, true) => {
                "only if the candidate consented to employer contact"
            }
            (Fact::EmployerContactConsent, false) => {
                "only if the candidate did not consent to employer contact"
            }
            (Fact::OrgMatching, true) => {
                "only while an open matching assignment links the organisation to the candidate"
            }
            (Fact::OrgMatching, false) => {
                "only while no open matching assignment links the organisation to the candidate"
            }
            (Fact::OrgCoaching, true) => {
                "only while an open coaching assignment links the organisation to the candidate"
            }
            (Fact::OrgCoaching, false) => {
                "only while no open coaching assignment links the organisation to the candidate"
            }
            (Fact::OtherOrgMatching, true) => {
                "only while an open matching assignment links another organisation to the \
                 candidate"
            }
            (Fact::OtherOrgMatching, false) => {
                "only while no open matching assignment links another organisation to the \
                 candidate"
            }
            (Fact::OtherOrgCoaching, true) => {
                "only while an open coaching assignment links another organisation to the \
                 candidate"
            }
            (Fact::OtherOrgCoaching, false) => {
                "only while no open coaching assignment links another organisation to the \
                 candidate"
            }
            (Fact::OwnRecord, true) => "only the candidate's own record",
            (Fact::OwnRecord, false) => "only other candidates' records, never their own",
        }
    }
}

/// A fact the record was derived from, and the roles it was evaluated for.
#[derive(Clone, Debug, Serialize)]
pub struct FactNote {
    /// The fact.
    pub fact: Fact,
    /// What it is.
    pub meaning: &'static str,
    /// The roles whose decisions were evaluated with it true and false.
    pub roles: Vec<Role>,
}

/// A fact that must hold, or must not, for a disclosure.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Condition {
    /// The fact.
    pub fact: Fact,
    /// Whether it must hold (`false`: it must not).
    pub holds: bool,
    /// The condition in words, e.g. "only if the candidate consented to employer contact".
    pub text: &'static str,
}

impl Condition {
    fn new(fact: Fact, holds: bool) -> Self {
        Self {
            fact,
            holds,
            text: fact.condition(holds),
        }
    }
}

/// One field group a role may receive for one purpose.
#[derive(Clone, Debug, Serialize)]
pub struct Disclosure {
    /// The field group.
    pub group: FieldGroup,
    /// The purpose.
    pub purpose: Purpose,
    /// The facts every allowed case shares.
    pub conditions: Vec<Condition>,
    /// Whether the conditions are also enough: every evaluated case that meets them is
    /// allowed, whatever the other facts. When `false`, `allowed_cases` lists the cases.
    pub conditions_are_exact: bool,
    /// When the conditions are not exact: every allowed case, as the value of each fact.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allowed_cases: Vec<Vec<Condition>>,
    /// The permits that allowed it.
    pub permitted_by: Vec<PolicyNote>,
    /// The forbids that refused it in some evaluated case.
    pub refusable_by: Vec<PolicyNote>,
    /// The disclosure in one sentence.
    pub sentence: String,
}

/// A field group a role receives for no purpose.
#[derive(Clone, Debug, Serialize)]
pub struct Withheld {
    /// The field group.
    pub group: FieldGroup,
    /// The forbids that refused it in every evaluated case, for every purpose; empty when it
    /// is refused because no permit allows it.
    pub forbidden_by: Vec<PolicyNote>,
    /// Why, in one sentence.
    pub sentence: String,
}

/// What one role receives and may do.
#[derive(Clone, Debug, Serialize)]
pub struct RoleRecord {
    /// The role.
    pub role: Role,
    /// True when the role receives no field group of any candidate, for any purpose.
    pub receives_nothing: bool,
    /// The role's receipts in one sentence.
    pub summary: String,
    /// The field groups it may receive, per purpose.
    pub receives: Vec<Disclosure>,
    /// The field groups it receives for no purpose.
    pub withheld: Vec<Withheld>,
    /// The other actions some permit lets it take (under that permit's conditions), by
    /// their Cedar action ids.
    pub other_actions: Vec<&'static str>,
}

/// The retention settings in force and the policies that decide erasure and legal holds.
#[derive(Clone, Debug, Serialize)]
pub struct RetentionRecord {
    /// `retention.toml`: days after the last open assignment closes.
    pub grace_after_close_days: u32,
    /// `retention.toml`: days without any open assignment.
    pub max_idle_days: u32,
    /// `retention.toml`: days since registration.
    pub max_life_days: u32,
    /// How the retention job applies them.
    pub summary: String,
    /// Each rule in words, by the name the retention job's audit entries give it.
    pub rules: Vec<RetentionRule>,
    /// The actions of erasure by retention and of legal holds, as the policies decide them.
    pub actions: Vec<ActionRecord>,
}

/// One retention rule.
#[derive(Clone, Debug, Serialize)]
pub struct RetentionRule {
    /// The rule's name in the retention job's reports and audit entries.
    pub rule: &'static str,
    /// Its period, in days.
    pub days: u32,
    /// The rule in words.
    pub text: String,
}

/// Who may take an action on a candidate, and by which policies.
#[derive(Clone, Debug, Serialize)]
pub struct ActionRecord {
    /// The Cedar action id.
    pub action: &'static str,
    /// The roles allowed it in some evaluated case.
    pub allowed_roles: Vec<Role>,
    /// The permits that allowed it.
    pub permitted_by: Vec<PolicyNote>,
    /// The forbids that refused it in some evaluated case.
    pub refusable_by: Vec<PolicyNote>,
}

/// The actions on a candidate that decide how long it is kept.
const RETENTION_ACTIONS: [Action; 3] = [
    Action::RetentionErase,
    Action::PlaceHold,
    Action::ReleaseHold,
];

/// Generates the record of processing from the policy set in force and the retention
/// settings. Deterministic for a given policy set, settings and `generated_at`.
pub fn record_of_processing(
    policy: &PolicyEngine,
    retention: &Retention,
    generated_at: String,
) -> RecordOfProcessing {
    let stand_ins = StandIns::new();
    // A purpose that is not a valid `Purpose` can never be asked for, so nothing is ever
    // disclosed for it: leaving it out claims nothing.
    let purposes: Vec<Purpose> = policy
        .purposes()
        .iter()
        .filter_map(|p| p.parse().ok())
        .collect();
    let readers = policy.roles_permitted(Action::Read);
    let mut failed = BTreeSet::new();
    let roles = Role::ALL
        .into_iter()
        .filter(|role| *role != Role::System || readers.contains(role))
        .map(|role| role_record(policy, &stand_ins, &purposes, role, &mut failed))
        .collect::<Vec<_>>();
    let retention = retention_record(policy, &stand_ins, retention, &mut failed);
    let evaluated_facts = facts_noted(&roles);
    RecordOfProcessing {
        format: FORMAT,
        generated_at,
        policy_hash: format!("sha256:{}", hex::encode(policy.policy_hash())),
        purposes,
        method: "Generated from the Cedar policy files in force, not written by hand: for \
                 each role and purpose, the policy set was evaluated for every combination of \
                 the facts listed (each true and false), and a condition is a fact that every \
                 allowed combination shares. One principal, organisation and candidate stand \
                 for all: a policy that names a particular principal, organisation or \
                 candidate by its id is not reflected, and neither is any fact not listed."
            .to_owned(),
        evaluated_facts,
        roles,
        retention,
        failed_policy_ids: failed.into_iter().collect(),
    }
}

/// The principal, organisations and candidates the policies are evaluated with.
struct StandIns {
    principal_id: PrincipalId,
    own_org: OrgId,
    other_org: OrgId,
    candidate_id: CandidateId,
    other_candidate_id: CandidateId,
}

impl StandIns {
    fn new() -> Self {
        Self {
            principal_id: PrincipalId::builtin("record-of-processing"),
            own_org: OrgId::builtin("recipient-org"),
            other_org: OrgId::builtin("other-org"),
            candidate_id: CandidateId::from_bytes([1; 16]),
            other_candidate_id: CandidateId::from_bytes([2; 16]),
        }
    }

    /// The principal of `role` and the candidate of one case. Both are built field by field,
    /// so a fact added to [`PrincipalFacts`] or [`CandidateFacts`] does not compile here until
    /// it is given a [`Fact`] and evaluated both ways.
    fn scenario(&self, role: Role, case: &Case) -> (PrincipalFacts, CandidateFacts) {
        let orgs = |own: Fact, other: Fact| {
            let mut orgs = Vec::new();
            if case.holds(own) {
                orgs.push(self.own_org.clone());
            }
            if case.holds(other) {
                orgs.push(self.other_org.clone());
            }
            orgs
        };
        let candidate = CandidateFacts {
            candidate_id: self.candidate_id,
            protected: case.holds(Fact::Protected),
            employer_contact_consent: case.holds(Fact::EmployerContactConsent),
            coaching_orgs: orgs(Fact::OrgCoaching, Fact::OtherOrgCoaching),
            matching_orgs: orgs(Fact::OrgMatching, Fact::OtherOrgMatching),
        };
        // Cedar sees `subject_of` of a subject only (as `principal.candidate`), and the
        // organisation of every other role only (as `principal.org`): see policy/cedar.rs.
        let subject_of = (role == Role::Subject).then(|| {
            if case.holds(Fact::OwnRecord) {
                self.candidate_id
            } else {
                self.other_candidate_id
            }
        });
        let principal = PrincipalFacts {
            principal_id: self.principal_id.clone(),
            role,
            org: self.own_org.clone(),
            subject_of,
        };
        (principal, candidate)
    }
}

/// The facts Cedar sees for a principal of `role`: a subject has no organisation in the
/// schema (so only other organisations' assignments), every other role no candidate of its own.
fn facts_for(role: Role) -> &'static [Fact] {
    match role {
        Role::Subject => &[
            Fact::OwnRecord,
            Fact::Protected,
            Fact::EmployerContactConsent,
            Fact::OtherOrgMatching,
            Fact::OtherOrgCoaching,
        ],
        _ => &[
            Fact::Protected,
            Fact::EmployerContactConsent,
            Fact::OrgMatching,
            Fact::OrgCoaching,
            Fact::OtherOrgMatching,
            Fact::OtherOrgCoaching,
        ],
    }
}

/// One combination of the facts of a role: bit `i` of `mask` is the value of `facts[i]`.
#[derive(Clone, Copy)]
struct Case {
    facts: &'static [Fact],
    mask: u32,
}

impl Case {
    /// Every combination of `facts`.
    fn all(facts: &'static [Fact]) -> impl Iterator<Item = Case> {
        (0..1u32 << facts.len()).map(move |mask| Case { facts, mask })
    }

    fn holds(&self, fact: Fact) -> bool {
        self.facts
            .iter()
            .position(|f| *f == fact)
            .is_some_and(|i| self.mask & (1 << i) != 0)
    }

    fn conditions(&self) -> Vec<Condition> {
        self.facts
            .iter()
            .map(|f| Condition::new(*f, self.holds(*f)))
            .collect()
    }
}

/// What the engine decided in one case.
struct Outcome {
    case: Case,
    allowed: bool,
    policy_ids: Vec<String>,
}

impl Outcome {
    fn new(case: Case, decision: &Decision, failed: &mut BTreeSet<String>) -> Self {
        failed.extend(decision.failed_policy_ids().iter().cloned());
        Self {
            case,
            allowed: decision.is_allowed(),
            policy_ids: decision.policy_ids().to_vec(),
        }
    }
}

/// The conditions and policies of a set of outcomes over all the cases of `facts`.
struct Derived {
    conditions: Vec<Condition>,
    exact: bool,
    allowed_cases: Vec<Case>,
    permitted_by: BTreeSet<String>,
    refused_by: BTreeSet<String>,
}

/// `None` when no case is allowed.
fn derive(facts: &'static [Fact], outcomes: &[Outcome]) -> Option<Derived> {
    let allowed: Vec<Case> = outcomes
        .iter()
        .filter(|o| o.allowed)
        .map(|o| o.case)
        .collect();
    if allowed.is_empty() {
        return None;
    }
    let conditions: Vec<Condition> = facts
        .iter()
        .filter_map(|fact| {
            let first = allowed.first().map(|c| c.holds(*fact))?;
            allowed
                .iter()
                .all(|c| c.holds(*fact) == first)
                .then(|| Condition::new(*fact, first))
        })
        .collect();
    // The cases that meet the conditions are 2^(free facts); all of them are allowed exactly
    // when there are as many allowed cases (the allowed ones all meet the conditions).
    let exact = allowed.len() == 1usize << (facts.len() - conditions.len());
    let ids = |allowed: bool| -> BTreeSet<String> {
        outcomes
            .iter()
            .filter(|o| o.allowed == allowed)
            .flat_map(|o| o.policy_ids.iter().cloned())
            .collect()
    };
    Some(Derived {
        conditions,
        exact,
        allowed_cases: if exact { Vec::new() } else { allowed },
        permitted_by: ids(true),
        refused_by: ids(false),
    })
}

fn notes(policy: &PolicyEngine, ids: &BTreeSet<String>) -> Vec<PolicyNote> {
    ids.iter()
        .map(|id| {
            policy.policy(id).unwrap_or_else(|| PolicyNote {
                policy_id: id.clone(),
                description: String::new(),
                file: String::new(),
                forbids: false,
            })
        })
        .collect()
}

/// "An employer", "The data-protection officer", ...
fn recipient(role: Role) -> &'static str {
    match role {
        Role::Caseworker => "A caseworker",
        Role::Provider => "A job-coaching provider",
        Role::Employer => "An employer",
        Role::Dpo => "The data-protection officer",
        Role::Subject => "The candidate (data subject)",
        Role::System => "The retention job",
    }
}

fn cited(notes: &[PolicyNote]) -> String {
    notes
        .iter()
        .map(|n| n.policy_id.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The outcomes of every case, per purpose, for one field group.
type ByPurpose = Vec<(Purpose, Vec<Outcome>)>;

fn role_record(
    policy: &PolicyEngine,
    stand_ins: &StandIns,
    purposes: &[Purpose],
    role: Role,
    failed: &mut BTreeSet<String>,
) -> RoleRecord {
    let facts = facts_for(role);
    // outcomes[group][purpose]: one outcome per case.
    let mut outcomes: Vec<(FieldGroup, ByPurpose)> = FieldGroup::ALL
        .into_iter()
        .map(|group| (group, Vec::new()))
        .collect();
    for purpose in purposes {
        let mut per_group: Vec<Vec<Outcome>> = FieldGroup::ALL.iter().map(|_| Vec::new()).collect();
        for case in Case::all(facts) {
            let (principal, candidate) = stand_ins.scenario(role, &case);
            let grant = policy.decide_read(&principal, &candidate, purpose);
            for (group, cases) in FieldGroup::ALL.into_iter().zip(per_group.iter_mut()) {
                cases.push(Outcome::new(case, grant.decision(group), failed));
            }
        }
        for ((_, by_purpose), cases) in outcomes.iter_mut().zip(per_group) {
            by_purpose.push((purpose.clone(), cases));
        }
    }

    let mut receives = Vec::new();
    let mut withheld = Vec::new();
    for (group, by_purpose) in &outcomes {
        let mut received = false;
        for (purpose, cases) in by_purpose {
            if let Some(derived) = derive(facts, cases) {
                received = true;
                receives.push(disclosure(policy, role, *group, purpose, derived));
            }
        }
        if !received {
            withheld.push(withholding(policy, role, *group, by_purpose));
        }
    }
    let summary = if receives.is_empty() {
        format!(
            "{} receives no field group of any candidate's profile, for any purpose.",
            recipient(role)
        )
    } else {
        // "identity (for coaching, recruitment), contact (for coaching)": receives is in
        // group order, then purpose order.
        let mut groups: Vec<(FieldGroup, Vec<&str>)> = Vec::new();
        for d in &receives {
            match groups.last_mut() {
                Some((group, purposes)) if *group == d.group => purposes.push(d.purpose.as_str()),
                _ => groups.push((d.group, vec![d.purpose.as_str()])),
            }
        }
        let groups: Vec<String> = groups
            .iter()
            .map(|(group, purposes)| format!("{group} (for {})", purposes.join(", ")))
            .collect();
        format!(
            "{} may receive {}, under the conditions listed.",
            recipient(role),
            groups.join(", ")
        )
    };
    let other_actions = Action::ALL
        .into_iter()
        .filter(|action| *action != Action::Read)
        .filter(|action| policy.roles_permitted(*action).contains(&role))
        .map(Action::as_str)
        .collect();
    RoleRecord {
        role,
        receives_nothing: receives.is_empty(),
        summary,
        receives,
        withheld,
        other_actions,
    }
}

fn disclosure(
    policy: &PolicyEngine,
    role: Role,
    group: FieldGroup,
    purpose: &Purpose,
    derived: Derived,
) -> Disclosure {
    let conditions_text = if derived.conditions.is_empty() && derived.exact {
        "in every case evaluated".to_owned()
    } else {
        derived
            .conditions
            .iter()
            .map(|c| c.text)
            .collect::<Vec<_>>()
            .join(", and ")
    };
    let permitted_by = notes(policy, &derived.permitted_by);
    let mut sentence = format!(
        "{} may receive {group} for {purpose}: {conditions_text}",
        recipient(role)
    );
    if !derived.exact {
        let _ = write!(
            sentence,
            "{}only in the {} combinations of facts listed",
            if derived.conditions.is_empty() {
                ""
            } else {
                "; and even then "
            },
            derived.allowed_cases.len()
        );
    }
    let _ = write!(sentence, " (permitted by {}).", cited(&permitted_by));
    Disclosure {
        group,
        purpose: purpose.clone(),
        conditions: derived.conditions,
        conditions_are_exact: derived.exact,
        allowed_cases: derived.allowed_cases.iter().map(Case::conditions).collect(),
        permitted_by,
        refusable_by: notes(policy, &derived.refused_by),
        sentence,
    }
}

/// A group no case of any purpose allowed: the forbids that refused every one of them.
fn withholding(
    policy: &PolicyEngine,
    role: Role,
    group: FieldGroup,
    by_purpose: &ByPurpose,
) -> Withheld {
    let mut all = by_purpose.iter().flat_map(|(_, cases)| cases.iter());
    let mut always: BTreeSet<String> = all
        .next()
        .map(|o| o.policy_ids.iter().cloned().collect())
        .unwrap_or_default();
    for outcome in all {
        always.retain(|id| outcome.policy_ids.contains(id));
    }
    let forbidden_by: Vec<PolicyNote> = notes(policy, &always)
        .into_iter()
        .filter(|n| n.forbids)
        .collect();
    let sentence = if forbidden_by.is_empty() {
        format!(
            "{} never receives {group}: no policy permits it.",
            recipient(role)
        )
    } else {
        format!(
            "{} never receives {group}: forbidden in every case by {}.",
            recipient(role),
            cited(&forbidden_by)
        )
    };
    Withheld {
        group,
        forbidden_by,
        sentence,
    }
}

/// The roles listed with each fact, from the roles of the record.
fn facts_noted(roles: &[RoleRecord]) -> Vec<FactNote> {
    let mut all: Vec<Fact> = roles
        .iter()
        .flat_map(|r| facts_for(r.role).iter().copied())
        .collect();
    all.sort();
    all.dedup();
    all.into_iter()
        .map(|fact| FactNote {
            fact,
            meaning: fact.meaning(),
            roles: roles
                .iter()
                .map(|r| r.role)
                .filter(|role| facts_for(*role).contains(&fact))
                .collect(),
        })
        .collect()
}

fn retention_record(
    policy: &PolicyEngine,
    stand_ins: &StandIns,
    settings: &Retention,
    failed: &mut BTreeSet<String>,
) -> RetentionRecord {
    let rule = |rule: Rule, days: u32, text: String| RetentionRule {
        rule: rule.as_str(),
        days,
        text,
    };
    let grace = settings.grace_after_close_days;
    let rules = vec![
        rule(
            Rule::ClosedGrace,
            grace,
            if grace == 0 {
                "erased at the first retention run after the candidate's last open assignment \
                 closes"
                    .to_owned()
            } else {
                format!("erased {grace} day(s) after the candidate's last open assignment closes")
            },
        ),
        rule(
            Rule::MaxIdle,
            settings.max_idle_days,
            format!(
                "erased after {} day(s) without any open assignment (e.g. registered but never \
                 assigned)",
                settings.max_idle_days
            ),
        ),
        rule(
            Rule::MaxLife,
            settings.max_life_days,
            format!(
                "erased at the latest {} day(s) after registration, whatever assignments are \
                 open",
                settings.max_life_days
            ),
        ),
    ];
    let actions = RETENTION_ACTIONS
        .into_iter()
        .map(|action| action_record(policy, stand_ins, action, failed))
        .collect();
    RetentionRecord {
        grace_after_close_days: settings.grace_after_close_days,
        max_idle_days: settings.max_idle_days,
        max_life_days: settings.max_life_days,
        summary: "The retention job (`cvvault retention run`, from cron or a timer) \
                  crypto-shreds a candidate as soon as one of these rules makes them due, \
                  unless a legal hold keeps them; who may erase and hold is decided by the \
                  policies listed."
            .to_owned(),
        rules,
        actions,
    }
}

/// Who the policies let take `action` on a candidate, evaluated over every case of each role.
fn action_record(
    policy: &PolicyEngine,
    stand_ins: &StandIns,
    action: Action,
    failed: &mut BTreeSet<String>,
) -> ActionRecord {
    let mut allowed_roles = Vec::new();
    let mut permitted = BTreeSet::new();
    let mut refused = BTreeSet::new();
    for role in Role::ALL {
        let facts = facts_for(role);
        let outcomes: Vec<Outcome> = Case::all(facts)
            .map(|case| {
                let (principal, candidate) = stand_ins.scenario(role, &case);
                let decision =
                    policy.decide(&Request::on_candidate(&principal, action, &candidate));
                Outcome::new(case, &decision, failed)
            })
            .collect();
        // Only the forbids that can refuse a role that is otherwise allowed: a forbid that
        // keeps a role no permit admits anyway refuses nothing the record lists.
        if let Some(derived) = derive(facts, &outcomes) {
            allowed_roles.push(role);
            permitted.extend(derived.permitted_by);
            refused.extend(derived.refused_by);
        }
    }
    ActionRecord {
        action: action.as_str(),
        allowed_roles,
        permitted_by: notes(policy, &permitted),
        refusable_by: notes(policy, &refused),
    }
}

fn policy_lines(out: &mut String, indent: &str, label: &str, notes: &[PolicyNote]) {
    for note in notes {
        let _ = writeln!(
            out,
            "{indent}{label} {} ({}): {}",
            note.policy_id, note.file, note.description
        );
    }
}

impl RecordOfProcessing {
    /// The record as plain text, for the command line.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "Record of processing activities (GDPR Art. 30(1))");
        let _ = writeln!(out, "format:       {}", self.format);
        let _ = writeln!(out, "generated at: {}", self.generated_at);
        let _ = writeln!(out, "policy:       {}", self.policy_hash);
        let purposes: Vec<&str> = self.purposes.iter().map(Purpose::as_str).collect();
        let _ = writeln!(out, "purposes:     {}", purposes.join(", "));
        let _ = writeln!(out, "\n{}", self.method);
        let _ = writeln!(out, "Facts evaluated:");
        for fact in &self.evaluated_facts {
            let roles: Vec<&str> = fact.roles.iter().map(|r| r.as_str()).collect();
            let _ = writeln!(
                out,
                "  - {}: {} [evaluated for: {}]",
                fact.fact.as_str(),
                fact.meaning,
                roles.join(", ")
            );
        }
        if !self.failed_policy_ids.is_empty() {
            let _ = writeln!(
                out,
                "\nWARNING: these policies failed to evaluate in some case, and the vault denied \
                 there: {}",
                self.failed_policy_ids.join(", ")
            );
        }

        let _ = writeln!(out, "\nRecipients of candidate data, by role");
        for role in &self.roles {
            let _ = writeln!(out, "\n{}", role.role);
            let _ = writeln!(out, "  {}", role.summary);
            // Disclosures of one group that differ only in purpose are listed once.
            let mut receives = role.receives.iter().peekable();
            while let Some(d) = receives.next() {
                let mut purposes = vec![d.purpose.as_str()];
                while let Some(next) = receives.next_if(|next| same_but_purpose(d, next)) {
                    purposes.push(next.purpose.as_str());
                }
                let _ = writeln!(out, "  receives {} for {}", d.group, purposes.join(", "));
                if d.conditions.is_empty() && d.conditions_are_exact {
                    let _ = writeln!(out, "    - in every case evaluated");
                }
                for c in &d.conditions {
                    let _ = writeln!(out, "    - {}", c.text);
                }
                if !d.conditions_are_exact {
                    let _ = writeln!(out, "    - and only in these combinations of facts:");
                    for case in &d.allowed_cases {
                        let facts: Vec<String> = case
                            .iter()
                            .map(|c| format!("{}={}", c.fact.as_str(), c.holds))
                            .collect();
                        let _ = writeln!(out, "        {}", facts.join(" "));
                    }
                }
                policy_lines(&mut out, "    ", "permitted by", &d.permitted_by);
                policy_lines(&mut out, "    ", "can be refused by", &d.refusable_by);
            }
            for w in &role.withheld {
                let _ = writeln!(out, "  never receives {}", w.group);
                if w.forbidden_by.is_empty() {
                    let _ = writeln!(out, "    - no policy permits it");
                }
                policy_lines(&mut out, "    ", "forbidden by", &w.forbidden_by);
            }
            if role.other_actions.is_empty() {
                let _ = writeln!(out, "  other actions: none");
            } else {
                let _ = writeln!(
                    out,
                    "  other actions a permit allows (under its conditions): {}",
                    role.other_actions.join(", ")
                );
            }
        }

        let r = &self.retention;
        let _ = writeln!(out, "\nRetention (policy/retention.toml)");
        let _ = writeln!(out, "  {}", r.summary);
        for rule in &r.rules {
            let _ = writeln!(out, "  - {}: {}", rule.rule, rule.text);
        }
        for action in &r.actions {
            let roles: Vec<&str> = action.allowed_roles.iter().map(|r| r.as_str()).collect();
            let who = if roles.is_empty() {
                "no role".to_owned()
            } else {
                roles.join(", ")
            };
            let _ = writeln!(out, "  {}: {}", action.action, who);
            policy_lines(&mut out, "    ", "permitted by", &action.permitted_by);
            policy_lines(&mut out, "    ", "can be refused by", &action.refusable_by);
        }
        out.truncate(out.trim_end().len());
        out
    }
}

/// Whether two disclosures say the same of one group, for different purposes.
fn same_but_purpose(a: &Disclosure, b: &Disclosure) -> bool {
    a.group == b.group
        && a.conditions == b.conditions
        && a.conditions_are_exact == b.conditions_are_exact
        && a.allowed_cases == b.allowed_cases
        && a.permitted_by == b.permitted_by
        && a.refusable_by == b.refusable_by
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{DEFAULT_FILES, SCHEMA_FILE};

    const AT: &str = "2026-01-01T00:00:00Z";

    fn retention() -> Retention {
        Retention::parse(crate::settings::DEFAULT_RETENTION).unwrap()
    }

    fn record(engine: &PolicyEngine) -> RecordOfProcessing {
        record_of_processing(engine, &retention(), AT.to_owned())
    }

    fn default_record() -> RecordOfProcessing {
        record(&PolicyEngine::embedded_default().unwrap())
    }

    /// The default files with `edit` applied to the text of `file`, plus `extra` files.
    fn engine_edited(
        file: &str,
        edit: impl Fn(&str) -> String,
        extra: &[(&str, &str)],
    ) -> PolicyEngine {
        let mut schema = String::new();
        let mut files = Vec::new();
        for (name, text) in DEFAULT_FILES {
            if *name == SCHEMA_FILE {
                schema = (*text).to_owned();
            } else if *name == file {
                files.push(((*name).to_owned(), edit(text)));
            } else {
                files.push(((*name).to_owned(), (*text).to_owned()));
            }
        }
        files.extend(
            extra
                .iter()
                .map(|(n, t)| ((*n).to_owned(), (*t).to_owned())),
        );
        PolicyEngine::from_sources(&schema, &files).unwrap()
    }

    fn role(record: &RecordOfProcessing, role: Role) -> &RoleRecord {
        record.roles.iter().find(|r| r.role == role).unwrap()
    }

    fn received<'a>(
        record: &'a RoleRecord,
        group: FieldGroup,
        purpose: &str,
    ) -> Option<&'a Disclosure> {
        record
            .receives
            .iter()
            .find(|d| d.group == group && d.purpose.as_str() == purpose)
    }

    fn literals(d: &Disclosure) -> Vec<(Fact, bool)> {
        d.conditions.iter().map(|c| (c.fact, c.holds)).collect()
    }

    fn ids(notes: &[PolicyNote]) -> Vec<&str> {
        notes.iter().map(|n| n.policy_id.as_str()).collect()
    }

    #[test]
    fn an_employer_receives_professional_for_recruitment_only_with_an_open_matching_assignment() {
        let record = default_record();
        let employer = role(&record, Role::Employer);
        let professional = received(employer, FieldGroup::Professional, "recruitment").unwrap();
        assert_eq!(
            literals(professional),
            vec![(Fact::Protected, false), (Fact::OrgMatching, true)]
        );
        assert!(professional.conditions_are_exact);
        assert!(professional.allowed_cases.is_empty());
        assert_eq!(
            ids(&professional.permitted_by),
            ["employer-professional-for-recruitment"]
        );
        assert!(
            !professional.permitted_by[0].description.is_empty()
                && !professional.permitted_by[0].forbids
        );
        assert_eq!(
            ids(&professional.refusable_by),
            ["protected-never-to-employer"]
        );
        assert!(professional.sentence.contains(
            "only while an open matching assignment links the organisation to the candidate"
        ));
        for purpose in ["coaching", "subject-access"] {
            assert!(received(employer, FieldGroup::Professional, purpose).is_none());
        }
    }

    #[test]
    fn an_employer_receives_contact_and_identity_only_with_consent_and_never_special() {
        let record = default_record();
        let employer = role(&record, Role::Employer);
        for group in [FieldGroup::Contact, FieldGroup::Identity] {
            let d = received(employer, group, "recruitment").unwrap();
            assert_eq!(
                literals(d),
                vec![
                    (Fact::Protected, false),
                    (Fact::EmployerContactConsent, true),
                    (Fact::OrgMatching, true)
                ],
                "{group}"
            );
            assert!(d.conditions_are_exact);
            assert_eq!(ids(&d.permitted_by), ["employer-contact-with-consent"]);
            assert!(d
                .conditions
                .iter()
                .any(|c| c.text == "only if the candidate consented to employer contact"));
        }
        assert!(employer
            .receives
            .iter()
            .all(|d| d.group != FieldGroup::Special && d.group != FieldGroup::Control));
        let special = employer
            .withheld
            .iter()
            .find(|w| w.group == FieldGroup::Special)
            .unwrap();
        assert_eq!(ids(&special.forbidden_by), ["special-never-to-employer"]);
        assert!(!employer.receives_nothing);
        assert_eq!(employer.receives.len(), 3);
    }

    #[test]
    fn a_dpo_and_a_caseworker_receive_no_field_group_and_the_record_says_so() {
        let record = default_record();
        let dpo = role(&record, Role::Dpo);
        assert!(dpo.receives_nothing && dpo.receives.is_empty());
        assert!(
            dpo.summary.contains("receives no field group"),
            "{}",
            dpo.summary
        );
        assert_eq!(dpo.withheld.len(), FieldGroup::ALL.len());
        assert!(dpo
            .withheld
            .iter()
            .all(|w| ids(&w.forbidden_by).contains(&"dpo-never-reads-profiles")));
        for action in ["read_audit", "subject_access", "place_hold", "release_hold"] {
            assert!(dpo.other_actions.contains(&action), "{action}");
        }
        assert!(!dpo.other_actions.contains(&"register"));

        let caseworker = role(&record, Role::Caseworker);
        assert!(caseworker.receives_nothing);
        assert!(caseworker
            .withheld
            .iter()
            .filter(|w| w.group != FieldGroup::Control)
            .all(|w| w.forbidden_by.is_empty() && w.sentence.contains("no policy permits it")));
        assert!(caseworker.other_actions.contains(&"register"));
        assert!(caseworker.other_actions.contains(&"open_assignment"));
        assert!(!caseworker.other_actions.contains(&"read"));
    }

    #[test]
    fn providers_receive_for_coaching_only_and_subjects_only_their_own_record() {
        let record = default_record();
        let provider = role(&record, Role::Provider);
        let groups: Vec<(FieldGroup, &str)> = provider
            .receives
            .iter()
            .map(|d| (d.group, d.purpose.as_str()))
            .collect();
        assert_eq!(
            groups,
            [
                (FieldGroup::Identity, "coaching"),
                (FieldGroup::Contact, "coaching"),
                (FieldGroup::Professional, "coaching")
            ]
        );
        for d in &provider.receives {
            assert_eq!(
                literals(d),
                vec![(Fact::Protected, false), (Fact::OrgCoaching, true)]
            );
        }

        let subject = role(&record, Role::Subject);
        assert_eq!(subject.receives.len(), 4 * record.purposes.len());
        for d in &subject.receives {
            assert_eq!(literals(d), vec![(Fact::OwnRecord, true)], "{}", d.sentence);
            assert_eq!(d.conditions[0].text, "only the candidate's own record");
            assert_eq!(ids(&d.permitted_by), ["subject-reads-own-profile"]);
        }
        assert!(record.roles.iter().all(|r| r.role != Role::System));
        assert_eq!(record.roles.len(), 5);
    }

    #[test]
    fn the_record_names_its_format_hash_facts_and_retention() {
        let engine = PolicyEngine::embedded_default().unwrap();
        let record = record(&engine);
        assert_eq!(record.format, "cvvault-record-of-processing/v1");
        assert_eq!(record.generated_at, AT);
        assert_eq!(
            record.policy_hash,
            format!("sha256:{}", hex::encode(engine.policy_hash()))
        );
        assert!(record.failed_policy_ids.is_empty());
        let facts: Vec<Fact> = record.evaluated_facts.iter().map(|f| f.fact).collect();
        assert_eq!(facts.len(), 7, "every fact Cedar sees: {facts:?}");
        let own = record
            .evaluated_facts
            .iter()
            .find(|f| f.fact == Fact::OwnRecord)
            .unwrap();
        assert_eq!(own.roles, [Role::Subject]);
        assert!(record.method.contains("not reflected"));

        let r = &record.retention;
        assert_eq!(
            (r.grace_after_close_days, r.max_idle_days, r.max_life_days),
            (0, 30, 1095)
        );
        let rules: Vec<&str> = r.rules.iter().map(|x| x.rule).collect();
        assert_eq!(rules, ["closed-grace", "max-idle", "max-life"]);
        assert!(r.rules[1].text.contains("30 day(s)"));
        assert!(r.rules[2].text.contains("1095 day(s)"));
        let erase = &r.actions[0];
        assert_eq!(erase.action, "retention_erase");
        assert_eq!(erase.allowed_roles, [Role::System]);
        assert_eq!(ids(&erase.permitted_by), ["system-retention-erase"]);
        let hold = &r.actions[1];
        assert_eq!(hold.allowed_roles, [Role::Dpo]);
        assert_eq!(ids(&hold.permitted_by), ["dpo-legal-hold"]);
        // Regression: the forbids that keep employers and providers from every action were
        // listed as refusing the retention job and the DPO, whom they never concern.
        assert!(
            r.actions.iter().all(|a| a.refusable_by.is_empty()),
            "{:?}",
            r.actions
        );
    }

    #[test]
    fn every_fact_is_named_once_in_json_as_in_text() {
        let record = default_record();
        let json = serde_json::to_value(&record).unwrap();
        let names: Vec<&str> = json["evaluated_facts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["fact"].as_str().unwrap())
            .collect();
        let expected: Vec<&str> = record
            .evaluated_facts
            .iter()
            .map(|f| f.fact.as_str())
            .collect();
        assert_eq!(names, expected);
        let mut unique = names.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), 7);
        assert_eq!(json["roles"][2]["role"], "employer");
        assert_eq!(
            json["roles"][2]["receives"][0]["conditions"][0]["fact"],
            "protected"
        );
    }

    #[test]
    fn removing_the_employer_contact_permit_changes_the_record_and_its_hash() {
        let default = default_record();
        let engine = engine_edited(
            "employer.cedar",
            |text| {
                let start = text.find("@id(\"employer-contact-with-consent\")").unwrap();
                text[..start].to_owned()
            },
            &[],
        );
        assert!(engine.policy("employer-contact-with-consent").is_none());
        let edited = record(&engine);
        assert_ne!(edited.policy_hash, default.policy_hash);
        let employer = role(&edited, Role::Employer);
        assert!(received(employer, FieldGroup::Contact, "recruitment").is_none());
        assert!(received(employer, FieldGroup::Identity, "recruitment").is_none());
        assert!(received(employer, FieldGroup::Professional, "recruitment").is_some());
        let contact = employer
            .withheld
            .iter()
            .find(|w| w.group == FieldGroup::Contact)
            .unwrap();
        assert!(contact.sentence.contains("no policy permits it"));
        assert!(!edited.to_text().contains("employer-contact-with-consent"));
        assert!(default.to_text().contains("employer-contact-with-consent"));
    }

    #[test]
    fn a_condition_on_another_organisation_is_found() {
        // Whether other organisations are linked is a fact Cedar sees too.
        let engine = engine_edited(
            "caseworker.cedar",
            |text| text.to_owned(),
            &[(
                "zz-unmatched.cedar",
                r#"@id("caseworker-unmatched-professional")
@description("A caseworker may see professional details while no employer is matched.")
permit (principal is Caseworker, action == Action::"read", resource is Candidate)
when { resource.matching_orgs.isEmpty() && context.group == FieldGroup::"professional" };
"#,
            )],
        );
        let record = record(&engine);
        let caseworker = role(&record, Role::Caseworker);
        assert!(!caseworker.receives_nothing);
        let d = received(caseworker, FieldGroup::Professional, "coaching").unwrap();
        assert_eq!(
            literals(d),
            vec![(Fact::OrgMatching, false), (Fact::OtherOrgMatching, false)]
        );
        assert!(d.conditions_are_exact);
    }

    #[test]
    fn a_disjunction_is_not_claimed_as_conditions_it_does_not_need() {
        let engine = engine_edited(
            "caseworker.cedar",
            |text| text.to_owned(),
            &[(
                "zz-either.cedar",
                r#"@id("caseworker-either")
@description("A caseworker may see professional details with consent or with coaching.")
permit (principal is Caseworker, action == Action::"read", resource is Candidate)
when {
  (resource.employer_contact_consent || resource.coaching_orgs.contains(principal.org)) &&
  context.group == FieldGroup::"professional"
};
"#,
            )],
        );
        let record = record(&engine);
        let d = received(
            role(&record, Role::Caseworker),
            FieldGroup::Professional,
            "recruitment",
        )
        .unwrap();
        assert!(d.conditions.is_empty(), "{:?}", d.conditions);
        assert!(!d.conditions_are_exact);
        // 64 cases, of which the quarter with neither consent nor coaching is refused.
        assert_eq!(d.allowed_cases.len(), 48);
        assert!(
            d.sentence.contains("only in the 48 combinations"),
            "{}",
            d.sentence
        );
        assert!(record
            .to_text()
            .contains("and only in these combinations of facts"));
    }

    #[test]
    fn the_text_lists_each_role_its_groups_and_the_retention_rules() {
        let text = default_record().to_text();
        for needle in [
            "Record of processing activities (GDPR Art. 30(1))",
            "policy:       sha256:",
            "\nemployer\n",
            "  receives professional for recruitment\n\
             \x20   - never for a candidate with protected identity\n\
             \x20   - only while an open matching assignment links the organisation to the \
             candidate\n\
             \x20   permitted by employer-professional-for-recruitment (employer.cedar): ",
            "    can be refused by protected-never-to-employer",
            "  never receives special\n    forbidden by special-never-to-employer",
            "The data-protection officer receives no field group of any candidate's profile",
            "  - max-idle: erased after 30 day(s) without any open assignment",
            "  retention_erase: system\n    permitted by system-retention-erase",
            "  - own_record: the candidate is the recipient themself (their own record) \
             [evaluated for: subject]",
            // Purposes with the same conditions and policies are listed together.
            "  receives special for coaching, recruitment, subject-access\n    - only the \
             candidate's own record\n",
            "The candidate (data subject) may receive identity (for coaching, recruitment, \
             subject-access), contact (for coaching, recruitment, subject-access)",
            "An employer may receive identity (for recruitment), contact (for recruitment), \
             professional (for recruitment), under the conditions listed.",
        ] {
            assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
        }
        assert!(!text.ends_with('\n'));
    }
}
