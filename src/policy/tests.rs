//! Unit tests of the policy engine: the decision table over every role and candidate state,
//! explain, and the proofs.

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
                && (group == Professional || (cell.consent && matches!(group, Identity | Contact)))
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
fn expected_action_allow(who: Who, action: Action, protected: bool, kind: AssignmentKind) -> bool {
    match action {
        Action::Read => unreachable!("covered by the read table"),
        Action::Register | Action::CloseAssignment | Action::Erase => who == Who::Caseworker,
        Action::OpenAssignment => {
            who == Who::Caseworker && !(protected && kind == AssignmentKind::Matching)
        }
        Action::ReadAudit | Action::PlaceHold | Action::ReleaseHold => who == Who::Dpo,
        Action::SubjectAccess => who == Who::Dpo || who == Who::SubjectOwn,
        Action::RetentionErase => who == Who::System,
        // Decided here on the identity group; every group in `updates_follow_the_groups...`.
        Action::Update => who == Who::Caseworker || who == Who::SubjectOwn,
        Action::Find => who == Who::Caseworker,
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
        Action::Update => Request::update(&principal, &candidate, FieldGroup::Identity),
        _ => Request::on_candidate(&principal, action, &candidate),
    };
    engine.decide(&request)
}

#[test]
fn updates_follow_the_groups_each_role_may_correct() {
    // A caseworker corrects every group; a candidate their own identity, contact and
    // professional details only; nobody else anything, and nobody another's profile.
    let engine = engine();
    let cell = Cell {
        who: Who::Caseworker,
        assignment: Assignment::OpenMatching,
        purpose: "recruitment",
        consent: true,
        protected: false,
    };
    let candidate = candidate(&cell);
    for who in EVERYONE {
        let principal = principal(who, &candidate);
        for group in FieldGroup::ALL {
            let decision = engine.decide(&Request::update(&principal, &candidate, group));
            let want = match who {
                Who::Caseworker => true,
                Who::SubjectOwn => matches!(
                    group,
                    FieldGroup::Identity | FieldGroup::Contact | FieldGroup::Professional
                ),
                _ => false,
            };
            assert_eq!(decision.is_allowed(), want, "{who:?} {group}: {decision:?}");
            assert_eq!(decision.group(), Some(group));
        }
    }
    // An update without a group does not fit the action: denied, not evaluated.
    let principal = principal(Who::Caseworker, &candidate);
    let bare = engine.decide(&Request::on_candidate(
        &principal,
        Action::Update,
        &candidate,
    ));
    assert!(!bare.is_allowed());
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
    assert_eq!(denied.policy_ids(), ["dpo-never-reads-profiles"]);
    assert!(denied.allowed().is_none());
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
    assert_eq!(notes.len(), 24);
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

#[test]
fn the_shipped_policies_give_no_lint_warning() {
    assert_eq!(engine().lint(), Vec::new());
}

#[test]
fn lint_warns_of_open_permits_and_of_permits_only_a_forbid_holds_back() {
    let engine = engine_with(&[(
        "wide.cedar",
        r#"@id("everyone-reads-everything")
@description("Too wide.")
permit (principal, action, resource);

@id("coach-reads-all-groups")
@description("A provider with a coaching assignment reads every group.")
permit (principal is Provider, action == Action::"read", resource is Candidate)
when { resource.coaching_orgs.contains(principal.org) };

@id("employer-reads-special")
@description("An employer with a matching assignment reads special categories.")
permit (principal is Employer, action == Action::"read", resource is Candidate)
when { resource.matching_orgs.contains(principal.org) && !resource.protected };
"#,
    )]);
    let warnings = engine.lint();
    let about = |id: &str| -> Vec<String> {
        warnings
            .iter()
            .filter(|w| w.policy_id == id)
            .map(|w| w.message.clone())
            .collect()
    };
    let everyone = about("everyone-reads-everything");
    assert!(
        everyone
            .iter()
            .any(|m| m.contains("any principal, any action, any resource")),
        "{everyone:?}"
    );
    assert!(everyone.iter().any(|m| m.contains("special categories")));
    assert!(everyone.iter().any(|m| m.contains("protected candidate")));
    let coach = about("coach-reads-all-groups");
    assert_eq!(coach.len(), 1, "{coach:?}");
    assert!(coach[0].contains("a protected candidate") && coach[0].contains("!resource.protected"));
    let employer = about("employer-reads-special");
    assert_eq!(employer.len(), 1, "{employer:?}");
    assert!(employer[0].contains("special categories to an employer"));
    assert!(
        warnings.iter().all(|w| w.file == "wide.cedar"),
        "{warnings:?}"
    );
    // The forbids still hold whatever the lint says: warnings are about defence in depth.
}

// ----- the read memo -----

#[test]
fn a_remembered_read_gives_the_decisions_a_fresh_evaluation_gives_in_every_cell() {
    let engine = engine();
    for cell in all_cells() {
        let candidate = candidate(&cell);
        let principal = principal(cell.who, &candidate);
        let purpose: Purpose = cell.purpose.parse().unwrap();
        let first = engine.decide_read(&principal, &candidate, &purpose);
        // Another candidate with the same facts: a memo hit, about this candidate.
        let twin = CandidateFacts {
            candidate_id: CandidateId::random(),
            ..candidate.clone()
        };
        let principal = principal_for_twin(cell.who, &principal, &twin);
        let remembered = engine.decide_read(&principal, &twin, &purpose);
        let fresh = engine.evaluate_read(&principal, &twin, &purpose);
        assert_eq!(remembered, fresh, "{cell:?}");
        assert_eq!(remembered.candidate_id(), twin.candidate_id);
        for group in FieldGroup::ALL {
            assert_eq!(
                remembered.decision(group).candidate_id(),
                Some(twin.candidate_id)
            );
            assert_eq!(
                first.decision(group).verdict(),
                remembered.decision(group).verdict(),
                "{cell:?} {group}"
            );
        }
    }
}

/// The principal of `who` for `twin`: a subject of its own record stays its own.
fn principal_for_twin(
    who: Who,
    principal: &PrincipalFacts,
    twin: &CandidateFacts,
) -> PrincipalFacts {
    match who {
        Who::SubjectOwn => PrincipalFacts {
            subject_of: Some(twin.candidate_id),
            ..principal.clone()
        },
        _ => principal.clone(),
    }
}

#[test]
fn a_read_that_grants_nothing_is_never_remembered_and_one_that_grants_is_once() {
    let engine = engine();
    let purpose: Purpose = "recruitment".parse().unwrap();
    let refused = candidate(&Cell {
        who: Who::Employer,
        assignment: Assignment::OtherOrganisationOpen,
        purpose: "recruitment",
        consent: true,
        protected: false,
    });
    let employer = principal(Who::Employer, &refused);
    for _ in 0..3 {
        assert!(engine.decide_read(&employer, &refused, &purpose).is_empty());
    }
    assert_eq!(
        engine.read_memo.len(),
        0,
        "a hidden refusal always costs the evaluations"
    );
    let matched = CandidateFacts {
        matching_orgs: vec![org(OUR_ORG)],
        ..refused.clone()
    };
    for _ in 0..3 {
        assert!(engine
            .decide_read(&employer, &matched, &purpose)
            .allows(FieldGroup::Professional));
    }
    assert_eq!(engine.read_memo.len(), 1);
}

#[test]
fn a_subject_is_remembered_per_candidate_so_another_record_stays_refused() {
    let engine = engine();
    let own = candidate(&Cell {
        who: Who::SubjectOwn,
        assignment: Assignment::None,
        purpose: "subject-access",
        consent: false,
        protected: false,
    });
    let subject = principal(Who::SubjectOwn, &own);
    let purpose: Purpose = "subject-access".parse().unwrap();
    assert!(engine
        .decide_read(&subject, &own, &purpose)
        .allows(FieldGroup::Professional));
    let other = CandidateFacts {
        candidate_id: CandidateId::random(),
        ..own.clone()
    };
    assert!(!engine
        .decide_read(&subject, &other, &purpose)
        .allows(FieldGroup::Professional));
}

#[test]
fn a_policy_that_names_a_candidate_makes_the_memo_key_by_candidate() {
    let named = CandidateId::random();
    let text = format!(
        "@id(\"one-candidate\")\n@description(\"One named candidate's professional details to employers.\")\n\
         permit(principal is Employer, action == Action::\"read\", resource == Candidate::\"{named}\")\n\
         when {{ context.group == FieldGroup::\"professional\" }};\n"
    );
    let engine = engine_with(&[("zz-one-candidate.cedar", &text)]);
    assert!(engine.names_candidates);
    assert!(!self::engine().names_candidates);
    let cell = Cell {
        who: Who::Employer,
        assignment: Assignment::None,
        purpose: "recruitment",
        consent: false,
        protected: false,
    };
    let first = CandidateFacts {
        candidate_id: named,
        ..candidate(&cell)
    };
    let employer = principal(Who::Employer, &first);
    let purpose: Purpose = "recruitment".parse().unwrap();
    assert!(engine
        .decide_read(&employer, &first, &purpose)
        .allows(FieldGroup::Professional));
    let same_facts_other_id = CandidateFacts {
        candidate_id: CandidateId::random(),
        ..first.clone()
    };
    assert!(!engine
        .decide_read(&employer, &same_facts_other_id, &purpose)
        .allows(FieldGroup::Professional));
}
