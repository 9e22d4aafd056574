//! What is asked of policy: the actions, who asks, what the vault knows of a candidate, and
//! one request.

use std::fmt;

use crate::ids::{CandidateId, OrgId, PrincipalId};
use crate::vocabulary::{AssignmentKind, FieldGroup, OrgKind, Purpose, Role};

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
    /// Replace one field group of a candidate's profile (a correction, new details).
    Update,
    /// Find a candidate by the agency's own reference (its case number).
    Find,
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
    pub const ALL: [Action; 12] = [
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
        Action::Update,
        Action::Find,
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
            Action::Update => "update",
            Action::Find => "find",
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
    pub(super) fn kind(&self) -> ResourceKind {
        match self {
            Resource::Vault => ResourceKind::Vault,
            Resource::Candidate(_) => ResourceKind::Candidate,
        }
    }

    pub(super) fn candidate_id(&self) -> Option<CandidateId> {
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
    /// The field group (read, update).
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

    /// Replacing one field group of a candidate's profile.
    pub fn update(
        principal: &'a PrincipalFacts,
        candidate: &'a CandidateFacts,
        group: FieldGroup,
    ) -> Self {
        Self {
            group: Some(group),
            ..Self::bare(principal, Action::Update, Resource::Candidate(candidate))
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

    pub(super) fn bare(
        principal: &'a PrincipalFacts,
        action: Action,
        resource: Resource<'a>,
    ) -> Self {
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
