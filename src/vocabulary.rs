//! The vocabulary every module shares: field groups, roles, purposes and assignment kinds.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// A separately sealed part of a candidate profile. Policy decides per group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldGroup {
    /// Name, birth year, personal number.
    Identity,
    /// E-mail, phone, address.
    Contact,
    /// Headline, skills, work history, education, languages, licences.
    Professional,
    /// GDPR Art. 9 special categories: nationality, asylum status, health, religion, ethnicity.
    Special,
    /// The protected-identity flag and consents, opened by the vault itself for policy.
    Control,
}

impl FieldGroup {
    /// Every group, in storage order.
    pub const ALL: [FieldGroup; 5] = [
        FieldGroup::Identity,
        FieldGroup::Contact,
        FieldGroup::Professional,
        FieldGroup::Special,
        FieldGroup::Control,
    ];

    /// The groups a person can be shown in an extract (control is the vault's own).
    pub const DISCLOSABLE: [FieldGroup; 4] = [
        FieldGroup::Identity,
        FieldGroup::Contact,
        FieldGroup::Professional,
        FieldGroup::Special,
    ];

    /// The stable name used in associated data, policy context and the audit trail.
    pub fn as_str(self) -> &'static str {
        match self {
            FieldGroup::Identity => "identity",
            FieldGroup::Contact => "contact",
            FieldGroup::Professional => "professional",
            FieldGroup::Special => "special",
            FieldGroup::Control => "control",
        }
    }
}

impl fmt::Display for FieldGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl FromStr for FieldGroup {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        FieldGroup::ALL
            .into_iter()
            .find(|g| g.as_str() == s)
            .ok_or_else(|| Error::invalid_input(format!(
                "unknown field group `{s}`: use one of identity, contact, professional, special, control"
            )))
    }
}

/// What a principal is to the vault. Each role is its own Cedar entity type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Agency staff: registers candidates, opens and closes assignments.
    Caseworker,
    /// A contracted job coach working with the candidates of its open assignments.
    Provider,
    /// An employer matched to candidates through open matching assignments.
    Employer,
    /// Data-protection officer: audits, never reads profiles.
    Dpo,
    /// The candidate (data subject) reading their own data.
    Subject,
    /// The built-in principal of the retention job.
    System,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 6] = [
        Role::Caseworker,
        Role::Provider,
        Role::Employer,
        Role::Dpo,
        Role::Subject,
        Role::System,
    ];

    /// The stable name (CLI, store, audit).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Caseworker => "caseworker",
            Role::Provider => "provider",
            Role::Employer => "employer",
            Role::Dpo => "dpo",
            Role::Subject => "subject",
            Role::System => "system",
        }
    }

    /// The Cedar entity type of principals with this role.
    pub fn cedar_type(self) -> &'static str {
        match self {
            Role::Caseworker => "Caseworker",
            Role::Provider => "Provider",
            Role::Employer => "Employer",
            Role::Dpo => "Dpo",
            Role::Subject => "Subject",
            Role::System => "System",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl FromStr for Role {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                Error::invalid_input(format!(
                    "unknown role `{s}`: use caseworker, provider, employer, dpo or subject"
                ))
            })
    }
}

/// Why an assignment exists; it decides which purposes policy allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssignmentKind {
    /// A provider coaches the candidate.
    Coaching,
    /// An employer is matched to the candidate.
    Matching,
}

impl AssignmentKind {
    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            AssignmentKind::Coaching => "coaching",
            AssignmentKind::Matching => "matching",
        }
    }
}

impl fmt::Display for AssignmentKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl FromStr for AssignmentKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "coaching" => Ok(AssignmentKind::Coaching),
            "matching" => Ok(AssignmentKind::Matching),
            _ => Err(Error::invalid_input(format!(
                "unknown assignment kind `{s}`: use coaching or matching"
            ))),
        }
    }
}

/// What an organisation is, by the principals registered for it: an assignment kind links only
/// one kind (see `policy/assignment-kinds.cedar`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrgKind {
    /// The agency itself: caseworkers and data-protection officers.
    Agency,
    /// A job-coaching provider.
    Provider,
    /// An employer.
    Employer,
    /// The public: subjects, the people whose data it is.
    Public,
}

impl OrgKind {
    /// The name policy sees (`OrgKind::"provider"`).
    pub fn as_str(self) -> &'static str {
        match self {
            OrgKind::Agency => "agency",
            OrgKind::Provider => "provider",
            OrgKind::Employer => "employer",
            OrgKind::Public => "public",
        }
    }

    /// The kind in a sentence: `the agency`, `a job-coaching provider`, `an employer`.
    pub fn described(self) -> &'static str {
        match self {
            OrgKind::Agency => "the agency",
            OrgKind::Provider => "a job-coaching provider",
            OrgKind::Employer => "an employer",
            OrgKind::Public => "the public (subjects)",
        }
    }

    /// The kind of organisation a principal of `role` belongs to.
    pub fn of_role(role: Role) -> OrgKind {
        match role {
            Role::Caseworker | Role::Dpo | Role::System => OrgKind::Agency,
            Role::Provider => OrgKind::Provider,
            Role::Employer => OrgKind::Employer,
            Role::Subject => OrgKind::Public,
        }
    }
}

impl fmt::Display for OrgKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// A declared purpose of processing (GDPR Art. 5(1)(b)), e.g. `coaching` or `recruitment`.
/// Parsed once: lowercase letters, digits, `-` and `_`, 1 to 40 characters.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Purpose(String);

impl Purpose {
    /// The purpose as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Purpose {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        let ok = !s.is_empty()
            && s.len() <= 40
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if ok {
            Ok(Purpose(s.to_owned()))
        } else {
            Err(Error::invalid_input(
                "a purpose is 1 to 40 lowercase letters, digits, `-` or `_` (e.g. coaching, recruitment)",
            ))
        }
    }
}

impl TryFrom<String> for Purpose {
    type Error = Error;
    fn try_from(s: String) -> Result<Self, Error> {
        s.parse()
    }
}

impl From<Purpose> for String {
    fn from(p: Purpose) -> String {
        p.0
    }
}

impl fmt::Display for Purpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}
