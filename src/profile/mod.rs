//! The CV model: a candidate profile split into separately sealed field groups, and the one
//! place where profile documents are parsed and validated.
//!
//! Every struct refuses unknown fields, so nothing the vault does not understand is stored.
//! Decrypted profiles are wiped from memory on drop and have no `Debug`, so they cannot
//! reach a log by accident.
//!
//! Parse errors are [`Error::InvalidProfile`] with the JSON path of the offending field
//! (`$.identity.birth_year`) and a reason that never quotes a value from the document:
//! serde_json's messages (`invalid type: string "Anna", expected u16`) are rebuilt from their
//! non-value parts (`wrong type: expected u16, found a string`). Keys the user wrote, as in
//! `unknown field `nationalty``, are kept: they name the mistake, not the person.
//!
//! - this file: the profile and its field groups; `parse.rs`: documents in, errors with paths;
//!   `validate.rs`: limits and plausible values; `serialize.rs`: the groups' texts, wiped on
//!   drop; `json_resume.rs`: the JSON Resume mapping.

pub mod json_resume;
mod parse;
mod serialize;
#[cfg(test)]
mod tests;
mod validate;

use parse::*;
pub use serialize::GroupTexts;
pub use validate::{check_agency_reference, MAX_REFERENCE_BYTES};

/// The JSON Schema (draft 2020-12) of a vault profile document, generated from the types that
/// parse it: what `cvvault candidate schema` prints.
pub fn json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(Profile)).unwrap_or_default()
}
use serialize::*;
use validate::*;

use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// The largest profile accepted, as a document and serialized (256 KiB).
pub const MAX_PROFILE_BYTES: usize = 256 * 1024;
/// The longest string accepted in any field (8 KiB, in UTF-8 bytes).
pub const MAX_STRING_BYTES: usize = 8 * 1024;
/// The most items accepted in any list (skills, work, education, languages, licences).
pub const MAX_LIST_ITEMS: usize = 200;
/// The earliest birth year accepted.
pub const MIN_BIRTH_YEAR: u16 = 1900;

/// A whole candidate profile. `identity` is required; every other group may be omitted.
#[derive(Clone, Default, Serialize, Deserialize, Zeroize, ZeroizeOnDrop, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Who the candidate is.
    pub identity: Identity,
    /// How to reach the candidate.
    #[serde(default)]
    pub contact: Contact,
    /// What the candidate can do.
    #[serde(default)]
    pub professional: Professional,
    /// GDPR Art. 9 special categories; never disclosed to employers.
    #[serde(default)]
    pub special: Special,
    /// Flags the vault itself reads for policy.
    #[serde(default)]
    pub control: Control,
    /// The agency's own reference for the candidate (its case number, e.g. `A-2026-0042`),
    /// to find them again: never sealed with the profile nor stored as written, only as a
    /// keyed HMAC, and unique in the vault. Not a field group, and never disclosed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agency_reference: Option<String>,
}

/// Field group `identity`.
#[derive(Clone, Default, Serialize, Deserialize, Zeroize, ZeroizeOnDrop, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    /// Full name as the candidate writes it.
    pub name: String,
    /// Year of birth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birth_year: Option<u16>,
    /// National identity number (personnummer or coordination number).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub personal_number: Option<String>,
}

/// Field group `contact`.
#[derive(Clone, Default, Serialize, Deserialize, Zeroize, ZeroizeOnDrop, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Contact {
    /// E-mail address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Phone number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// Postal address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Address>,
}

/// A postal address.
#[derive(Clone, Default, Serialize, Deserialize, Zeroize, ZeroizeOnDrop, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Address {
    /// Street and number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub street: Option<String>,
    /// Postal code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    /// City.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    /// Country (ISO 3166-1 alpha-2 or a name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
}

/// Field group `professional`.
#[derive(Clone, Default, Serialize, Deserialize, Zeroize, ZeroizeOnDrop, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Professional {
    /// One line: what the candidate does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headline: Option<String>,
    /// A short free-text summary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// Skills, optionally with a taxonomy id (e.g. an ESCO or JobTech concept id).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skills: Vec<Skill>,
    /// Work history, most recent first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub work: Vec<Work>,
    /// Education.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub education: Vec<Education>,
    /// Languages and fluency.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub languages: Vec<Language>,
    /// Licences and certificates (e.g. driving licence B, forklift).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub licences: Vec<String>,
}

/// A skill.
#[derive(Clone, Default, Serialize, Deserialize, Zeroize, ZeroizeOnDrop, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Skill {
    /// The skill as named.
    pub name: String,
    /// A taxonomy concept id, if mapped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub taxonomy_id: Option<String>,
    /// Level, free text (e.g. `advanced`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
}

/// A position held.
#[derive(Clone, Default, Serialize, Deserialize, Zeroize, ZeroizeOnDrop, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Work {
    /// Employer name.
    pub employer: String,
    /// Job title.
    pub title: String,
    /// Start, `YYYY-MM` or `YYYY-MM-DD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    /// End; absent while current.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
    /// What the work was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// An education.
#[derive(Clone, Default, Serialize, Deserialize, Zeroize, ZeroizeOnDrop, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Education {
    /// School or university.
    pub institution: String,
    /// Degree or level (e.g. `upper secondary`, `BSc`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
    /// Field of study.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    /// End.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
}

/// A language.
#[derive(Clone, Default, Serialize, Deserialize, Zeroize, ZeroizeOnDrop, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Language {
    /// The language.
    pub language: String,
    /// Fluency, free text or CEFR level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fluency: Option<String>,
}

/// Field group `special`: GDPR Art. 9 categories and what reveals them.
#[derive(Clone, Default, Serialize, Deserialize, Zeroize, ZeroizeOnDrop, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Special {
    /// Nationality or citizenship.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nationality: Option<String>,
    /// Asylum or residence-permit status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asylum_status: Option<String>,
    /// Health or disability relevant to work adaptation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<String>,
    /// Religion or belief.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub religion: Option<String>,
    /// Ethnic origin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ethnic_origin: Option<String>,
}

/// Field group `control`: read by the vault for policy, sealed like every other group.
#[derive(Clone, Default, Serialize, Deserialize, Zeroize, ZeroizeOnDrop, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Control {
    /// Protected personal data (skyddade personuppgifter): never disclosed to employers or
    /// providers, never listed, excluded from matching.
    #[serde(default)]
    pub protected: bool,
    /// What the candidate consented to.
    #[serde(default)]
    pub consents: Consents,
}

/// Consents given by the candidate.
#[derive(Clone, Default, Serialize, Deserialize, Zeroize, ZeroizeOnDrop, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Consents {
    /// The candidate agreed that matched employers may see identity and contact.
    #[serde(default)]
    pub employer_contact: bool,
}
