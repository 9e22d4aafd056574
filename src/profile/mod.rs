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

pub mod json_resume;

use std::io;

use serde::de::{DeserializeOwned, IgnoredAny};
use serde::{Deserialize, Deserializer, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::error::{Error, Result};
use crate::vocabulary::FieldGroup;

/// The largest profile accepted, as a document and serialized (256 KiB).
pub const MAX_PROFILE_BYTES: usize = 256 * 1024;
/// The longest string accepted in any field (8 KiB, in UTF-8 bytes).
pub const MAX_STRING_BYTES: usize = 8 * 1024;
/// The most items accepted in any list (skills, work, education, languages, licences).
pub const MAX_LIST_ITEMS: usize = 200;
/// The earliest birth year accepted.
pub const MIN_BIRTH_YEAR: u16 = 1900;

/// A whole candidate profile. `identity` is required; every other group may be omitted.
#[derive(Clone, Default, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
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
}

/// Field group `identity`.
#[derive(Clone, Default, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
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
#[derive(Clone, Default, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
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
#[derive(Clone, Default, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
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
#[derive(Clone, Default, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
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
#[derive(Clone, Default, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
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
#[derive(Clone, Default, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
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
#[derive(Clone, Default, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
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
#[derive(Clone, Default, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
#[serde(deny_unknown_fields)]
pub struct Language {
    /// The language.
    pub language: String,
    /// Fluency, free text or CEFR level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fluency: Option<String>,
}

/// Field group `special`: GDPR Art. 9 categories and what reveals them.
#[derive(Clone, Default, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
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
#[derive(Clone, Default, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
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
#[derive(Clone, Default, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
#[serde(deny_unknown_fields)]
pub struct Consents {
    /// The candidate agreed that matched employers may see identity and contact.
    #[serde(default)]
    pub employer_contact: bool,
}

impl Profile {
    /// Serializes one field group to JSON, in memory that is wiped on drop.
    pub fn group_json(&self, group: FieldGroup) -> Result<Zeroizing<Vec<u8>>> {
        match group {
            FieldGroup::Identity => to_zeroizing_json(&self.identity),
            FieldGroup::Contact => to_zeroizing_json(&self.contact),
            FieldGroup::Professional => to_zeroizing_json(&self.professional),
            FieldGroup::Special => to_zeroizing_json(&self.special),
            FieldGroup::Control => to_zeroizing_json(&self.control),
        }
    }

    /// Every group's JSON ([`Profile::group_json`]), serialized one after the other into one
    /// buffer. `document_len` is the length of the document the profile was parsed from (0 if
    /// none): the buffer is sized for it and never grows for a cvvault document (see
    /// [`Profile::validate_parsed`] for the bound); otherwise it grows, wiping what it leaves.
    pub fn group_texts(&self, document_len: usize) -> Result<GroupTexts> {
        let capacity = document_len
            .saturating_add(GroupTexts::SLACK)
            .clamp(GROUP_BUFFER, MAX_PROFILE_BYTES + GroupTexts::SLACK);
        let mut out = ZeroizingWriter(Zeroizing::new(Vec::with_capacity(capacity)));
        let mut ends = [0usize; FieldGroup::ALL.len()];
        for (end, group) in ends.iter_mut().zip(FieldGroup::ALL) {
            match group {
                FieldGroup::Identity => write_json(&mut out, &self.identity),
                FieldGroup::Contact => write_json(&mut out, &self.contact),
                FieldGroup::Professional => write_json(&mut out, &self.professional),
                FieldGroup::Special => write_json(&mut out, &self.special),
                FieldGroup::Control => write_json(&mut out, &self.control),
            }?;
            *end = out.0.len();
        }
        Ok(GroupTexts {
            buffer: out.0,
            ends,
        })
    }

    /// Parses a cvvault profile document and validates it ([`Profile::validate`]).
    ///
    /// Unknown fields are refused. Errors are [`Error::InvalidProfile`] with the JSON path of
    /// the offending field and a reason that quotes no value from the document.
    pub fn from_json(bytes: &[u8]) -> Result<Profile> {
        check_document_size(bytes)?;
        let profile: Profile = parse_tracked(bytes, "$")?;
        profile.validate_parsed(bytes.len())?;
        Ok(profile)
    }

    /// Parses either a cvvault profile or a JSON Resume document (jsonresume.org, v1.0.0),
    /// mapping the latter as described in [`json_resume`].
    ///
    /// A document is JSON Resume when it has a top-level `basics` or a `$schema` that
    /// mentions `jsonresume`; anything else is read as a cvvault profile. Either way the
    /// result is validated.
    pub fn from_document(bytes: &[u8]) -> Result<Profile> {
        check_document_size(bytes)?;
        // Fast path for the common case, a valid cvvault profile: one plain parse. A JSON
        // Resume document fails it (its `basics` is an unknown field), and so does every
        // malformed one; those take the slower paths below, which also explain errors.
        if let Ok(profile) = serde_json::from_slice::<Profile>(bytes) {
            if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
                profile.validate_parsed(bytes.len())?;
                return Ok(profile);
            }
        }
        if is_json_resume(bytes) {
            json_resume::parse(bytes)
        } else {
            Profile::from_json(bytes)
        }
    }

    /// Rebuilds a profile from opened field groups (one JSON document per group), as when
    /// decrypting; groups not given stay at their defaults.
    ///
    /// Each group is parsed as strictly as in [`Profile::from_json`] (error paths start at
    /// `$.<group>`), but the whole is not re-validated: what was accepted when it was sealed
    /// stays readable. A group given twice is refused.
    pub fn from_groups<'a>(
        groups: impl IntoIterator<Item = (FieldGroup, &'a [u8])>,
    ) -> Result<Profile> {
        let mut profile = Profile::default();
        let mut seen: Vec<FieldGroup> = Vec::with_capacity(FieldGroup::ALL.len());
        for (group, bytes) in groups {
            let prefix = format!("$.{group}");
            if seen.contains(&group) {
                return Err(invalid(prefix, "the field group was given twice"));
            }
            seen.push(group);
            match group {
                FieldGroup::Identity => profile.identity = parse_tracked(bytes, &prefix)?,
                FieldGroup::Contact => profile.contact = parse_tracked(bytes, &prefix)?,
                FieldGroup::Professional => profile.professional = parse_tracked(bytes, &prefix)?,
                FieldGroup::Special => profile.special = parse_tracked(bytes, &prefix)?,
                FieldGroup::Control => profile.control = parse_tracked(bytes, &prefix)?,
            }
        }
        Ok(profile)
    }

    /// Serializes only the given groups, as `{"identity": {...}, "contact": {...}}` in the
    /// order given (an extract), in memory that is wiped on drop. A group listed twice is
    /// written once.
    pub fn to_json_groups(&self, groups: &[FieldGroup]) -> Result<Zeroizing<Vec<u8>>> {
        let mut parts: Vec<(FieldGroup, Zeroizing<Vec<u8>>)> = Vec::with_capacity(groups.len());
        for &group in groups {
            if parts.iter().all(|(seen, _)| *seen != group) {
                parts.push((group, self.group_json(group)?));
            }
        }
        // `{`, `}`, commas between groups and per group `"name":`; sized up front so the buffer holding
        // plaintext is never reallocated (a reallocation would leave an unwiped copy behind).
        let total = parts
            .iter()
            .fold(1 + parts.len().max(1), |sum, (group, json)| {
                sum + group.as_str().len() + 3 + json.len()
            });
        let mut out = Zeroizing::new(Vec::with_capacity(total));
        out.push(b'{');
        for (index, (group, json)) in parts.iter().enumerate() {
            if index > 0 {
                out.push(b',');
            }
            out.push(b'"');
            out.extend_from_slice(group.as_str().as_bytes());
            out.extend_from_slice(b"\":");
            out.extend_from_slice(json);
        }
        out.push(b'}');
        Ok(out)
    }

    /// Checks what types cannot: the name is not blank, `birth_year` is from 1900 to the
    /// current year, the e-mail address has exactly one `@` with text on both sides, no string
    /// is longer than [`MAX_STRING_BYTES`], no list has more than [`MAX_LIST_ITEMS`] items and
    /// the serialized profile is at most [`MAX_PROFILE_BYTES`].
    pub fn validate(&self) -> Result<()> {
        self.check_serialized_size()?;
        self.check_fields()
    }

    /// [`Profile::validate`] for a profile just parsed from a cvvault document of
    /// `document_len` bytes, without serializing it to measure it when it cannot be too large.
    ///
    /// Serialized, such a profile is at most the document's length plus the serialized
    /// length of an empty profile: every value is written in at most as many bytes as any
    /// JSON text that parses to it (no whitespace, no escape longer than the input's, absent
    /// options and empty lists left out), and the only fields written that the document may
    /// have left out are the defaults an empty profile also writes. A property test checks
    /// this bound.
    fn validate_parsed(&self, document_len: usize) -> Result<()> {
        if document_len.saturating_add(serialized_len(&Profile::default())?) > MAX_PROFILE_BYTES {
            self.check_serialized_size()?;
        }
        self.check_fields()
    }

    fn check_serialized_size(&self) -> Result<()> {
        if serialized_len(self)? > MAX_PROFILE_BYTES {
            return Err(invalid(
                "$",
                format!(
                    "the profile is larger than {} KiB ({MAX_PROFILE_BYTES} bytes) serialized: \
                     shorten the work history or the free texts",
                    MAX_PROFILE_BYTES / 1024
                ),
            ));
        }
        Ok(())
    }

    /// Every check of [`Profile::validate`] but the size.
    fn check_fields(&self) -> Result<()> {
        let identity = &self.identity;
        if identity.name.trim().is_empty() {
            return Err(invalid(
                "$.identity.name",
                "must not be empty: give the candidate's name",
            ));
        }
        if let Some(year) = identity.birth_year {
            let current = current_year();
            if !(MIN_BIRTH_YEAR..=current).contains(&year) {
                return Err(invalid(
                    "$.identity.birth_year",
                    format!("must be a year from {MIN_BIRTH_YEAR} to {current}"),
                ));
            }
        }
        if let Some(email) = &self.contact.email {
            if !plausible_email(email) {
                return Err(invalid(
                    "$.contact.email",
                    "must be an e-mail address with exactly one `@` and text on both sides",
                ));
            }
        }
        self.check_sizes()
    }

    /// The string-length and list-length limits, field by field, with paths.
    fn check_sizes(&self) -> Result<()> {
        let id = &self.identity;
        text(&id.name, || "$.identity.name".into())?;
        opt_text(&id.personal_number, || "$.identity.personal_number".into())?;

        let contact = &self.contact;
        opt_text(&contact.email, || "$.contact.email".into())?;
        opt_text(&contact.phone, || "$.contact.phone".into())?;
        if let Some(address) = &contact.address {
            opt_text(&address.street, || "$.contact.address.street".into())?;
            opt_text(&address.postal_code, || {
                "$.contact.address.postal_code".into()
            })?;
            opt_text(&address.city, || "$.contact.address.city".into())?;
            opt_text(&address.country, || "$.contact.address.country".into())?;
        }

        let pro = &self.professional;
        opt_text(&pro.headline, || "$.professional.headline".into())?;
        opt_text(&pro.summary, || "$.professional.summary".into())?;
        list(&pro.skills, "$.professional.skills")?;
        for (i, skill) in pro.skills.iter().enumerate() {
            let at = |field: &str| format!("$.professional.skills[{i}].{field}");
            text(&skill.name, || at("name"))?;
            opt_text(&skill.taxonomy_id, || at("taxonomy_id"))?;
            opt_text(&skill.level, || at("level"))?;
        }
        list(&pro.work, "$.professional.work")?;
        for (i, work) in pro.work.iter().enumerate() {
            let at = |field: &str| format!("$.professional.work[{i}].{field}");
            text(&work.employer, || at("employer"))?;
            text(&work.title, || at("title"))?;
            opt_text(&work.start, || at("start"))?;
            opt_text(&work.end, || at("end"))?;
            opt_text(&work.description, || at("description"))?;
        }
        list(&pro.education, "$.professional.education")?;
        for (i, education) in pro.education.iter().enumerate() {
            let at = |field: &str| format!("$.professional.education[{i}].{field}");
            text(&education.institution, || at("institution"))?;
            opt_text(&education.level, || at("level"))?;
            opt_text(&education.field, || at("field"))?;
            opt_text(&education.start, || at("start"))?;
            opt_text(&education.end, || at("end"))?;
        }
        list(&pro.languages, "$.professional.languages")?;
        for (i, language) in pro.languages.iter().enumerate() {
            let at = |field: &str| format!("$.professional.languages[{i}].{field}");
            text(&language.language, || at("language"))?;
            opt_text(&language.fluency, || at("fluency"))?;
        }
        list(&pro.licences, "$.professional.licences")?;
        for (i, licence) in pro.licences.iter().enumerate() {
            text(licence, || format!("$.professional.licences[{i}]"))?;
        }

        let special = &self.special;
        opt_text(&special.nationality, || "$.special.nationality".into())?;
        opt_text(&special.asylum_status, || "$.special.asylum_status".into())?;
        opt_text(&special.health, || "$.special.health".into())?;
        opt_text(&special.religion, || "$.special.religion".into())?;
        opt_text(&special.ethnic_origin, || "$.special.ethnic_origin".into())?;
        Ok(())
    }
}

/// Shorthand for [`Error::InvalidProfile`].
pub(crate) fn invalid(path: impl Into<String>, reason: impl Into<String>) -> Error {
    Error::InvalidProfile {
        path: path.into(),
        reason: reason.into(),
    }
}

/// The current calendar year (UTC), the upper bound of `birth_year`.
fn current_year() -> u16 {
    u16::try_from(time::OffsetDateTime::now_utc().year()).unwrap_or(u16::MAX)
}

/// Exactly one `@`, with something on both sides. Deliverability is not the vault's business.
fn plausible_email(email: &str) -> bool {
    match email.split_once('@') {
        Some((local, domain)) => !local.is_empty() && !domain.is_empty() && !domain.contains('@'),
        None => false,
    }
}

fn text(value: &str, path: impl FnOnce() -> String) -> Result<()> {
    if value.len() > MAX_STRING_BYTES {
        return Err(invalid(
            path(),
            format!(
                "text longer than {} KiB ({MAX_STRING_BYTES} bytes): shorten it",
                MAX_STRING_BYTES / 1024
            ),
        ));
    }
    Ok(())
}

fn opt_text(value: &Option<String>, path: impl FnOnce() -> String) -> Result<()> {
    match value {
        Some(value) => text(value, path),
        None => Ok(()),
    }
}

fn list<T>(items: &[T], path: &str) -> Result<()> {
    if items.len() > MAX_LIST_ITEMS {
        return Err(invalid(
            path,
            format!("more than {MAX_LIST_ITEMS} items: keep the {MAX_LIST_ITEMS} most relevant"),
        ));
    }
    Ok(())
}

/// Refuses a document larger than a profile may be, before parsing it.
pub(crate) fn check_document_size(bytes: &[u8]) -> Result<()> {
    if bytes.len() > MAX_PROFILE_BYTES {
        return Err(invalid(
            "$",
            format!(
                "the document is larger than {} KiB ({MAX_PROFILE_BYTES} bytes): a profile may \
                 be at most that; shorten the work history or the free texts",
                MAX_PROFILE_BYTES / 1024
            ),
        ));
    }
    Ok(())
}

/// Whether a document is JSON Resume: a top-level `basics`, or a `$schema` naming jsonresume.
/// A document that is not even a JSON object is not; [`Profile::from_json`] then says why.
fn is_json_resume(bytes: &[u8]) -> bool {
    #[derive(Deserialize)]
    struct Probe {
        #[serde(default, deserialize_with = "present")]
        basics: bool,
        #[serde(default, rename = "$schema")]
        schema: Option<serde_json::Value>,
    }
    fn present<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<bool, D::Error> {
        IgnoredAny::deserialize(d).map(|_| true)
    }
    match serde_json::from_slice::<Probe>(bytes) {
        Ok(probe) => {
            probe.basics
                || probe
                    .schema
                    .as_ref()
                    .and_then(serde_json::Value::as_str)
                    .is_some_and(|s| s.to_ascii_lowercase().contains("jsonresume"))
        }
        Err(_) => false,
    }
}

/// Deserializes `bytes` as a `T`, the whole input, and turns a failure into
/// [`Error::InvalidProfile`] whose path starts at `prefix` (`$` or `$.<group>`).
pub(crate) fn parse_tracked<T: DeserializeOwned>(bytes: &[u8], prefix: &str) -> Result<T> {
    // serde reads a struct from a positional array too; a profile or group document is an
    // object. (Nested groups written as arrays are still read positionally: typed, and an
    // extra element is refused, so nothing unknown is stored.)
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first.is_some_and(|&b| b != b'{') && serde_json::from_slice::<IgnoredAny>(bytes).is_ok() {
        return Err(invalid(prefix, "wrong type: expected an object"));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de)
        .map_err(|err| parse_error(prefix, Some(err.path()), err.inner()))?;
    // Trailing characters after the document are a syntax error, as in serde_json::from_slice.
    de.end().map_err(|err| parse_error(prefix, None, &err))?;
    Ok(value)
}

/// The message of a JSON Resume field the vault does not store (see [`json_resume`]); kept as
/// it is when rewriting parse errors.
pub(crate) const NOT_STORED: &str =
    "the vault does not store this JSON Resume field: remove it from the document (or leave it \
     empty) and import again";

/// Builds [`Error::InvalidProfile`] from a serde_json error at `path` below `prefix`.
pub(crate) fn parse_error(
    prefix: &str,
    path: Option<&serde_path_to_error::Path>,
    err: &serde_json::Error,
) -> Error {
    let mut at = String::from(prefix);
    for segment in path.into_iter().flatten() {
        push_segment(&mut at, segment);
    }
    invalid(at, reason(err))
}

/// Appends one path segment in JSONPath notation: `.key`, `["odd key"]`, `[3]`.
fn push_segment(path: &mut String, segment: &serde_path_to_error::Segment) {
    use serde_path_to_error::Segment;
    match segment {
        Segment::Seq { index } => path.push_str(&format!("[{index}]")),
        Segment::Map { key } | Segment::Enum { variant: key } => {
            let plain = key.chars().next().is_some_and(|c| !c.is_ascii_digit())
                && key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
            if plain {
                path.push('.');
                path.push_str(key);
            } else {
                // A key is something the user wrote as a field name, not a field value.
                let quoted = serde_json::to_string(key).unwrap_or_else(|_| "\"?\"".to_owned());
                path.push_str(&format!("[{quoted}]"));
            }
        }
        // A key that could not be read (malformed JSON): the position says where.
        Segment::Unknown => {}
    }
}

/// The reason for a serde_json error, rebuilt so that it never carries a document value.
///
/// INVARIANT: every branch builds its text from the error's category and position, from key
/// names, or from what the *type* expected; the part of serde's message that describes the
/// value found (`string "Anna"`, `integer `70000``) is never copied.
fn reason(err: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let (line, column) = (err.line(), err.column());
    match err.classify() {
        Category::Syntax => return format!("malformed JSON at line {line} column {column}"),
        Category::Eof => {
            return format!(
                "malformed JSON at line {line} column {column}: the document ends too early"
            )
        }
        Category::Io => return "the document could not be read".to_owned(),
        Category::Data => {}
    }
    let full = err.to_string();
    let suffix = format!(" at line {line} column {column}");
    let message = if line == 0 {
        full.as_str()
    } else {
        full.strip_suffix(&suffix).unwrap_or(&full)
    };
    // Messages that name a key, not a value: serde's `unknown field`, `missing field` and
    // `duplicate field`, whose backticked names are field names from the document or the
    // model. The JSON Resume refusal is our own text.
    let keeps = ["unknown field `", "missing field `", "duplicate field `"];
    if keeps.iter().any(|start| message.starts_with(start)) || message == NOT_STORED {
        return message.to_owned();
    }
    // `<kind>: <value found>, expected <what the type wants>`; the value sits before the last
    // `, expected `, and what follows comes from the type, so only that part is kept.
    let expected = message
        .rsplit_once(", expected ")
        .map(|(_, expected)| describe_expected(expected));
    if let Some(found) = message.strip_prefix("invalid type: ") {
        let found = describe_found(found);
        return match (expected, found) {
            (Some(e), Some(f)) => format!("wrong type: expected {e}, found {f}"),
            (Some(e), None) => format!("wrong type: expected {e}"),
            (None, _) => "wrong type".to_owned(),
        };
    }
    let kinds = [
        ("invalid value: ", "invalid value"),
        ("invalid length ", "wrong number of items"),
        ("unknown variant ", "unknown variant"),
    ];
    for (start, kind) in kinds {
        if message.starts_with(start) {
            return match expected {
                Some(e) => format!("{kind}: expected {e}"),
                None => kind.to_owned(),
            };
        }
    }
    "the value does not fit the profile model".to_owned()
}

/// What a type expected, in JSON's words where serde uses Rust's.
fn describe_expected(expected: &str) -> String {
    if expected.starts_with("struct ") || expected == "a map" {
        "an object".to_owned()
    } else if expected == "a sequence" {
        "an array".to_owned()
    } else {
        expected.to_owned()
    }
}

/// The JSON kind of the value found, from the first word of serde's `Unexpected` rendering
/// (`string "..."`, `integer `5``); the rest of that text is the value and is dropped.
fn describe_found(found: &str) -> Option<&'static str> {
    let word = found.split(' ').next().unwrap_or_default();
    let kind = match word {
        "string" | "character" => "a string",
        "integer" | "floating" => "a number",
        "boolean" => "a boolean",
        "null" | "unit" => "null",
        "map" => "an object",
        "sequence" => "an array",
        _ => return None,
    };
    Some(kind)
}

/// Counts bytes written, to size buffers and check limits without holding a copy.
struct ByteCount(usize);

impl io::Write for ByteCount {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 = self.0.saturating_add(buf.len());
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn serialized_len<T: Serialize>(value: &T) -> Result<usize> {
    let mut count = ByteCount(0);
    serde_json::to_writer(&mut count, value).map_err(|_| Error::Corrupt {
        what: "a profile group could not be serialized",
    })?;
    Ok(count.0)
}

/// A growing buffer for plaintext that wipes every allocation it leaves behind: it grows by
/// copying into a new buffer twice the size and wiping the old one, where `Vec`'s own
/// growth would free the old allocation unwiped.
struct ZeroizingWriter(Zeroizing<Vec<u8>>);

impl ZeroizingWriter {
    #[cold]
    fn grow(&mut self, needed: usize) {
        let capacity = needed.max(self.0.capacity().saturating_mul(2));
        let mut grown = Zeroizing::new(Vec::with_capacity(capacity));
        grown.extend_from_slice(&self.0);
        // The old buffer is wiped as it drops.
        self.0 = grown;
    }
}

impl io::Write for ZeroizingWriter {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let needed = self.0.len().saturating_add(buf.len());
        if needed > self.0.capacity() {
            self.grow(needed);
        }
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// First allocation for a serialized group; most fit, the largest grow once or twice.
const GROUP_BUFFER: usize = 1024;

/// Serializes into memory that is wiped on drop, in one pass, with no unwiped copy left by
/// reallocation.
fn to_zeroizing_json<T: Serialize>(value: &T) -> Result<Zeroizing<Vec<u8>>> {
    let mut out = ZeroizingWriter(Zeroizing::new(Vec::with_capacity(GROUP_BUFFER)));
    write_json(&mut out, value)?;
    Ok(out.0)
}

fn write_json<T: Serialize>(out: &mut ZeroizingWriter, value: &T) -> Result<()> {
    serde_json::to_writer(out, value).map_err(|_| Error::Corrupt {
        what: "a profile group could not be serialized",
    })
}

/// Every field group's JSON text, one after the other in one buffer that is wiped on drop
/// ([`Profile::group_texts`]).
pub struct GroupTexts {
    buffer: Zeroizing<Vec<u8>>,
    /// Where each group's text ends, in [`FieldGroup::ALL`] order.
    ends: [usize; FieldGroup::ALL.len()],
}

impl GroupTexts {
    /// What the groups' texts may add to the length of the document they were parsed from:
    /// at most the serialized length of an empty profile, which is below this (tested).
    const SLACK: usize = 256;

    /// Each group's JSON text, in [`FieldGroup::ALL`] order.
    pub fn all(&self) -> [&[u8]; FieldGroup::ALL.len()] {
        let mut start = 0;
        self.ends.map(|end| {
            // INVARIANT: the ends were recorded in order while writing `buffer`.
            let text = self.buffer.get(start..end).unwrap_or_default();
            start = end;
            text
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A profile with every field set, as a cvvault document.
    const FULL: &str = r#"{
        "identity": {"name": "Anna Lindqvist", "birth_year": 1985,
                     "personal_number": "19850374-9802"},
        "contact": {"email": "anna.lindqvist@example.org", "phone": "070-174 06 12",
                    "address": {"street": "Storgatan 12", "postal_code": "113 22",
                                "city": "Stockholm", "country": "SE"}},
        "professional": {
            "headline": "Undersköterska med 8 års erfarenhet",
            "summary": "Söker arbete i Stockholm.",
            "skills": [{"name": "omvårdnad", "taxonomy_id": "abc_123", "level": "god"}],
            "work": [
                {"employer": "Vårdboendet Solrosen", "title": "undersköterska",
                 "start": "2019-03", "description": "Omvårdnad av äldre."},
                {"employer": "Hemtjänsten Centrum", "title": "vårdbiträde",
                 "start": "2016-01", "end": "2019-02"}
            ],
            "education": [{"institution": "Komvux i Stockholm", "level": "gymnasieexamen",
                           "field": "vård- och omsorgsprogrammet", "start": "2014",
                           "end": "2015"}],
            "languages": [{"language": "svenska", "fluency": "C2"}],
            "licences": ["B-körkort"]
        },
        "special": {"nationality": "Swedish", "asylum_status": "n/a", "health": "dyslexi",
                    "religion": "none", "ethnic_origin": "n/a"},
        "control": {"protected": true, "consents": {"employer_contact": true}}
    }"#;

    fn err_of(result: Result<Profile>) -> (String, String) {
        match result {
            Err(Error::InvalidProfile { path, reason }) => (path, reason),
            Err(other) => panic!("expected InvalidProfile, got {other}"),
            Ok(_) => panic!("expected an error, the document was accepted"),
        }
    }

    fn parse_err(doc: &str) -> (String, String) {
        err_of(Profile::from_json(doc.as_bytes()))
    }

    fn json(profile: &Profile) -> serde_json::Value {
        serde_json::to_value(profile).unwrap()
    }

    #[test]
    fn full_document_parses_and_round_trips() {
        let profile = Profile::from_json(FULL.as_bytes()).unwrap();
        assert_eq!(profile.identity.name, "Anna Lindqvist");
        assert_eq!(profile.identity.birth_year, Some(1985));
        assert_eq!(profile.professional.work.len(), 2);
        assert!(profile.control.protected);
        assert!(profile.control.consents.employer_contact);
        let again = Profile::from_json(&serde_json::to_vec(&profile).unwrap()).unwrap();
        assert_eq!(json(&profile), json(&again));
        let expected: serde_json::Value = serde_json::from_str(FULL).unwrap();
        assert_eq!(json(&profile), expected);
    }

    #[test]
    fn minimal_document_takes_defaults() {
        let profile = Profile::from_json(br#"{"identity":{"name":"Farid Rahimi"}}"#).unwrap();
        assert!(profile.contact.email.is_none());
        assert!(profile.professional.work.is_empty());
        assert!(!profile.control.protected);
        assert!(!profile.control.consents.employer_contact);
    }

    #[test]
    fn unknown_field_is_refused_with_its_path() {
        let (path, reason) =
            parse_err(r#"{"identity":{"name":"A"},"special":{"nationalty":"Syrian"}}"#);
        assert_eq!(path, "$.special.nationalty");
        assert!(
            reason.starts_with("unknown field `nationalty`, expected one of"),
            "{reason}"
        );
        assert!(!reason.contains("Syrian"));

        let (path, _) = parse_err(r#"{"identity":{"name":"A"},"hobbies":["chess"]}"#);
        assert_eq!(path, "$.hobbies");
        let (path, _) = parse_err(
            r#"{"identity":{"name":"A"},"professional":{"work":[
                {"employer":"E","title":"T"},{"employer":"E","title":"T","salary":1}]}}"#,
        );
        assert_eq!(path, "$.professional.work[1].salary");
    }

    #[test]
    fn odd_keys_are_quoted_in_the_path() {
        let (path, _) = parse_err(r#"{"identity":{"name":"A","full name":"B"}}"#);
        assert_eq!(path, r#"$.identity["full name"]"#);
    }

    #[test]
    fn wrong_type_names_the_type_not_the_value() {
        let (path, reason) = parse_err(r#"{"identity":{"name":"A","birth_year":"Anna"}}"#);
        assert_eq!(path, "$.identity.birth_year");
        assert_eq!(reason, "wrong type: expected u16, found a string");

        let (path, reason) = parse_err(r#"{"identity":{"name":1234567}}"#);
        assert_eq!(path, "$.identity.name");
        assert_eq!(reason, "wrong type: expected a string, found a number");

        let (path, reason) =
            parse_err(r#"{"identity":{"name":"A"},"contact":{"address":"Storgatan 1"}}"#);
        assert_eq!(path, "$.contact.address");
        assert_eq!(reason, "wrong type: expected an object, found a string");

        let (path, reason) =
            parse_err(r#"{"identity":{"name":"A"},"professional":{"licences":"B"}}"#);
        assert_eq!(path, "$.professional.licences");
        assert_eq!(reason, "wrong type: expected an array, found a string");

        let (path, reason) =
            parse_err(r#"{"identity":{"name":"A"},"control":{"protected":"yes"}}"#);
        assert_eq!(path, "$.control.protected");
        assert_eq!(reason, "wrong type: expected a boolean, found a string");

        let (path, reason) = parse_err(r#"{"identity":{"name":null}}"#);
        assert_eq!(path, "$.identity.name");
        assert!(
            reason.starts_with("wrong type: expected a string"),
            "{reason}"
        );

        // serde would read a struct from a positional array; the top level is refused.
        for doc in [r#"["Anna"]"#, r#"[{"name":"Anna"}]"#, " \n\"Anna\"", "42"] {
            let (path, reason) = parse_err(doc);
            assert_eq!(path, "$");
            assert_eq!(reason, "wrong type: expected an object");
        }
    }

    #[test]
    fn out_of_range_number_is_an_invalid_value_without_the_number() {
        let (path, reason) = parse_err(r#"{"identity":{"name":"A","birth_year":70000}}"#);
        assert_eq!(path, "$.identity.birth_year");
        assert_eq!(reason, "invalid value: expected u16");
        let (_, reason) = parse_err(r#"{"identity":{"name":"A","birth_year":-1985}}"#);
        assert!(!reason.contains("1985"), "{reason}");
        let (_, reason) = parse_err(r#"{"identity":{"name":"A","birth_year":1985.5}}"#);
        assert_eq!(reason, "wrong type: expected u16, found a number");
    }

    #[test]
    fn missing_and_duplicate_fields_name_the_field() {
        let (path, reason) = parse_err(r#"{"contact":{}}"#);
        assert_eq!(
            (path.as_str(), reason.as_str()),
            ("$", "missing field `identity`")
        );
        let (path, reason) = parse_err(r#"{"identity":{}}"#);
        assert_eq!(
            (path.as_str(), reason.as_str()),
            ("$.identity", "missing field `name`")
        );
        let (path, reason) =
            parse_err(r#"{"identity":{"name":"A"},"professional":{"work":[{"employer":"E"}]}}"#);
        assert_eq!(path, "$.professional.work[0]");
        assert_eq!(reason, "missing field `title`");
        let (path, reason) = parse_err(r#"{"identity":{"name":"A","name":"B"}}"#);
        assert_eq!(path, "$.identity");
        assert_eq!(reason, "duplicate field `name`");
    }

    #[test]
    fn malformed_json_gives_line_and_column() {
        let (path, reason) = parse_err("{\"identity\":\n  {\"name\": \"Anna\" \"x\"}}");
        assert_eq!(path, "$.identity");
        assert_eq!(reason, "malformed JSON at line 2 column 19");

        let (path, reason) = parse_err(r#"{"identity":{"name":"Anna"#);
        assert_eq!(path, "$.identity.name");
        assert!(
            reason.starts_with("malformed JSON at line 1 column "),
            "{reason}"
        );
        assert!(reason.ends_with("the document ends too early"), "{reason}");

        let (path, reason) = parse_err(r#"{"identity":{"name":"Anna"}} trailing"#);
        assert_eq!(path, "$");
        assert_eq!(reason, "malformed JSON at line 1 column 30");

        let (path, reason) = parse_err("");
        assert_eq!(path, "$");
        assert!(reason.starts_with("malformed JSON"), "{reason}");
    }

    #[test]
    fn validate_refuses_a_blank_name() {
        let (path, reason) = parse_err(r#"{"identity":{"name":"  "}}"#);
        assert_eq!(path, "$.identity.name");
        assert!(reason.starts_with("must not be empty"));
    }

    #[test]
    fn validate_bounds_the_birth_year() {
        let year = |y: i64| format!(r#"{{"identity":{{"name":"A","birth_year":{y}}}}}"#);
        let current = i64::from(current_year());
        assert!(Profile::from_json(year(1900).as_bytes()).is_ok());
        assert!(Profile::from_json(year(current).as_bytes()).is_ok());
        for bad in [1899, current + 1] {
            let (path, reason) = parse_err(&year(bad));
            assert_eq!(path, "$.identity.birth_year");
            assert_eq!(reason, format!("must be a year from 1900 to {current}"));
            assert!(!reason.contains(&bad.to_string()));
        }
    }

    #[test]
    fn validate_wants_exactly_one_at_in_the_email() {
        let email = |e: &str| {
            format!(
                r#"{{"identity":{{"name":"A"}},"contact":{{"email":{}}}}}"#,
                serde_json::json!(e)
            )
        };
        assert!(Profile::from_json(email("a@example.org").as_bytes()).is_ok());
        for bad in [
            "anna.example.org",
            "a@b@example.org",
            "@example.org",
            "anna@",
            "",
        ] {
            let (path, reason) = parse_err(&email(bad));
            assert_eq!(path, "$.contact.email");
            assert!(reason.contains("exactly one `@`"), "{reason}");
        }
    }

    #[test]
    fn validate_bounds_strings() {
        let mut profile = Profile::from_json(FULL.as_bytes()).unwrap();
        profile.professional.work[1].description = Some("x".repeat(MAX_STRING_BYTES));
        profile.validate().unwrap();
        profile.professional.work[1].description = Some("x".repeat(MAX_STRING_BYTES + 1));
        let (path, reason) = err_of(profile.validate().map(|()| Profile::default()));
        assert_eq!(path, "$.professional.work[1].description");
        assert_eq!(reason, "text longer than 8 KiB (8192 bytes): shorten it");

        let mut profile = Profile::from_json(FULL.as_bytes()).unwrap();
        profile
            .professional
            .licences
            .push("ü".repeat(MAX_STRING_BYTES / 2 + 1));
        let (path, _) = err_of(profile.validate().map(|()| Profile::default()));
        assert_eq!(path, "$.professional.licences[1]");
    }

    #[test]
    fn validate_bounds_lists() {
        let mut profile = Profile::from_json(FULL.as_bytes()).unwrap();
        profile.professional.languages = (0..MAX_LIST_ITEMS)
            .map(|i| Language {
                language: format!("l{i}"),
                fluency: None,
            })
            .collect();
        profile.validate().unwrap();
        profile.professional.languages.push(Language::default());
        let (path, reason) = err_of(profile.validate().map(|()| Profile::default()));
        assert_eq!(path, "$.professional.languages");
        assert!(reason.starts_with("more than 200 items"), "{reason}");
    }

    #[test]
    fn validate_bounds_the_whole_profile() {
        let mut profile = Profile::from_json(FULL.as_bytes()).unwrap();
        profile.professional.work = (0..40)
            .map(|_| Work {
                employer: "E".into(),
                title: "T".into(),
                start: None,
                end: None,
                description: Some("y".repeat(MAX_STRING_BYTES)),
            })
            .collect();
        let (path, reason) = err_of(profile.validate().map(|()| Profile::default()));
        assert_eq!(path, "$");
        assert!(
            reason.starts_with("the profile is larger than 256 KiB"),
            "{reason}"
        );
    }

    #[test]
    fn an_oversized_document_is_refused_before_parsing() {
        let doc = format!(
            r#"{{"identity":{{"name":"A"}}}}{}"#,
            " ".repeat(MAX_PROFILE_BYTES)
        );
        let (path, reason) = parse_err(&doc);
        assert_eq!(path, "$");
        assert!(
            reason.starts_with("the document is larger than 256 KiB"),
            "{reason}"
        );
        let (path, _) = err_of(Profile::from_document(doc.as_bytes()));
        assert_eq!(path, "$");
    }

    #[test]
    fn groups_round_trip_through_from_groups() {
        let profile = Profile::from_json(FULL.as_bytes()).unwrap();
        let sealed: Vec<(FieldGroup, Zeroizing<Vec<u8>>)> = FieldGroup::ALL
            .iter()
            .map(|&g| (g, profile.group_json(g).unwrap()))
            .collect();
        let rebuilt =
            Profile::from_groups(sealed.iter().map(|(g, bytes)| (*g, bytes.as_slice()))).unwrap();
        assert_eq!(json(&profile), json(&rebuilt));
    }

    #[test]
    fn from_groups_leaves_missing_groups_default() {
        let profile = Profile::from_json(FULL.as_bytes()).unwrap();
        let identity = profile.group_json(FieldGroup::Identity).unwrap();
        let rebuilt = Profile::from_groups([(FieldGroup::Identity, identity.as_slice())]).unwrap();
        assert_eq!(rebuilt.identity.name, "Anna Lindqvist");
        assert!(rebuilt.contact.email.is_none());
        assert!(rebuilt.special.nationality.is_none());
        assert!(!rebuilt.control.protected);
        let empty = Profile::from_groups([]).unwrap();
        assert_eq!(empty.identity.name, "");
    }

    #[test]
    fn from_groups_errors_carry_the_group_path() {
        let (path, reason) = err_of(Profile::from_groups([(
            FieldGroup::Contact,
            br#"{"email": 42}"#.as_slice(),
        )]));
        assert_eq!(path, "$.contact.email");
        assert_eq!(reason, "wrong type: expected a string, found a number");
        let (path, _) = err_of(Profile::from_groups([(
            FieldGroup::Control,
            br#"{"x":1}"#.as_slice(),
        )]));
        assert_eq!(path, "$.control.x");
        let twice = [
            (FieldGroup::Special, b"{}".as_slice()),
            (FieldGroup::Special, b"{}".as_slice()),
        ];
        let (path, reason) = err_of(Profile::from_groups(twice));
        assert_eq!(path, "$.special");
        assert_eq!(reason, "the field group was given twice");
    }

    #[test]
    fn to_json_groups_writes_only_the_groups_asked_for() {
        let profile = Profile::from_json(FULL.as_bytes()).unwrap();
        let extract = profile
            .to_json_groups(&[
                FieldGroup::Professional,
                FieldGroup::Identity,
                FieldGroup::Identity,
            ])
            .unwrap();
        assert_eq!(
            extract.len(),
            extract.capacity(),
            "sized exactly, never reallocated"
        );
        let value: serde_json::Value = serde_json::from_slice(&extract).unwrap();
        let object = value.as_object().unwrap();
        let mut keys: Vec<&String> = object.keys().collect();
        keys.sort();
        assert_eq!(keys, ["identity", "professional"]);
        assert!(
            extract.starts_with(br#"{"professional":"#),
            "order as asked"
        );
        assert_eq!(object["identity"], json(&profile)["identity"]);
        assert_eq!(object["professional"], json(&profile)["professional"]);
        assert!(!String::from_utf8_lossy(&extract).contains("dyslexi"));

        assert_eq!(profile.to_json_groups(&[]).unwrap().as_slice(), b"{}");
        let all = profile.to_json_groups(&FieldGroup::ALL).unwrap();
        let value: serde_json::Value = serde_json::from_slice(&all).unwrap();
        assert_eq!(value, json(&profile));
    }

    #[test]
    fn group_json_is_serde_json_through_every_growth_of_its_buffer() {
        let mut profile = Profile::from_json(FULL.as_bytes()).unwrap();
        // Past the first buffer several times over, with writes that straddle each growth.
        profile.professional.licences = (0..300).map(|n| "l".repeat(n % 37)).collect();
        for group in FieldGroup::ALL {
            let bytes = profile.group_json(group).unwrap();
            let expected = match group {
                FieldGroup::Identity => serde_json::to_vec(&profile.identity),
                FieldGroup::Contact => serde_json::to_vec(&profile.contact),
                FieldGroup::Professional => serde_json::to_vec(&profile.professional),
                FieldGroup::Special => serde_json::to_vec(&profile.special),
                FieldGroup::Control => serde_json::to_vec(&profile.control),
            }
            .unwrap();
            assert_eq!(bytes.as_slice(), expected.as_slice(), "{group}");
        }
        assert!(profile.group_json(FieldGroup::Professional).unwrap().len() > 4 * GROUP_BUFFER);
    }

    #[test]
    fn group_texts_are_the_groups_json_whatever_the_buffer_starts_at() {
        let mut profile = Profile::from_json(FULL.as_bytes()).unwrap();
        profile.professional.licences = (0..300).map(|n| "l".repeat(n % 37)).collect();
        let expected: Vec<Vec<u8>> = FieldGroup::ALL
            .iter()
            .map(|g| profile.group_json(*g).unwrap().to_vec())
            .collect();
        let total: usize = expected.iter().map(Vec::len).sum();
        // From too small (grows several times) to larger than needed.
        for document_len in [0, 1, total / 2, total, 10 * total] {
            let texts = profile.group_texts(document_len).unwrap();
            let all: Vec<Vec<u8>> = texts.all().iter().map(|t| t.to_vec()).collect();
            assert_eq!(all, expected, "starting from {document_len}");
        }
        assert!(serialized_len(&Profile::default()).unwrap() <= GroupTexts::SLACK);
    }

    #[test]
    fn from_document_reads_both_formats() {
        let profile = Profile::from_document(FULL.as_bytes()).unwrap();
        assert_eq!(profile.identity.name, "Anna Lindqvist");
        let resume = Profile::from_document(br#"{"basics":{"name":"Amani Haile"}}"#).unwrap();
        assert_eq!(resume.identity.name, "Amani Haile");
        let by_schema = br#"{"$schema":"https://raw.githubusercontent.com/jsonresume/resume-schema/v1.0.0/schema.json","basics":{"name":"Hodan Warsame"}}"#;
        assert_eq!(
            Profile::from_document(by_schema).unwrap().identity.name,
            "Hodan Warsame"
        );
        let (path, reason) = err_of(Profile::from_document(
            br#"{"$schema":"https://jsonresume.org/schema"}"#,
        ));
        assert_eq!(
            (path.as_str(), reason.as_str()),
            ("$", "missing field `basics`")
        );
        // Not JSON at all: the cvvault parser explains.
        let (path, reason) = err_of(Profile::from_document(b"name: Anna"));
        assert_eq!(path, "$");
        assert!(
            reason.starts_with("malformed JSON at line 1 column "),
            "{reason}"
        );
    }

    /// Wraps `core` in arbitrary text, so that quoting and escaping are exercised too.
    fn marked() -> impl Strategy<Value = (String, String)> {
        ("[A-Za-z0-9]{8,16}", ".{0,8}", ".{0,8}").prop_map(|(core, before, after)| {
            (format!("Q{core}"), format!("{before}Q{core}{after}"))
        })
    }

    /// Documents that put `value` (a JSON string) where it does not belong.
    fn misplaced(value: &str) -> Vec<String> {
        let v = serde_json::to_string(value).unwrap();
        vec![
            format!(r#"{{"identity":{{"name":"A","birth_year":{v}}}}}"#),
            format!(r#"{{"identity":{{"name":"A"}},"control":{{"protected":{v}}}}}"#),
            format!(r#"{{"identity":{{"name":"A"}},"contact":{{"address":{v}}}}}"#),
            format!(r#"{{"identity":{{"name":"A"}},"professional":{{"skills":{v}}}}}"#),
            format!(r#"{{"identity":{{"name":"A"}},"professional":{{"work":[{v}]}}}}"#),
            format!(r#"{{"identity":{v}}}"#),
            format!(r#"{{"identity":{{"name":"A"}},"special":{{"health":[{v}]}}}}"#),
            format!(
                r#"{{"identity":{{"name":"A"}},"control":{{"consents":{{"employer_contact":{v}}}}}}}"#
            ),
            format!(r#"{{"identity":{{"name":{v}}},"contact":{{"email":{v}}}}}"#),
            format!(r#"{{"identity":{{"name":{v}}}}} {v}"#),
            format!(r#"{{"identity":{{"name":{v} {v}}}}}"#),
            format!(r#"{{"identity":{{"name":{v}"#),
            format!(r#"{{"basics":{{"name":"A","image":{v}}}}}"#),
            format!(r#"{{"basics":{{"name":"A","email":[{v}]}}}}"#),
            format!(
                r#"{{"basics":{{"name":"A"}},"work":[{{"name":"E","position":{{"x":{v}}}}}]}}"#
            ),
            format!(r#"{{"basics":{{"name":"A","location":{{"region":{v}}}}}}}"#),
            format!(r#"{{"basics":{{"name":"A","email":{v}}}}}"#),
            format!(r#"{{"$schema":"jsonresume","basics":{v}}}"#),
        ]
    }

    /// Text with what JSON must escape, what it may, and what it need not.
    fn text() -> impl Strategy<Value = String> {
        "[a-zA-Z åäö\"\\\\/\\x00-\\x1f\\x7f\u{2028}\u{10348}]{0,24}"
    }

    /// An optional field as a JSON member, absent about half the time.
    fn member(
        key: &'static str,
        value: impl Strategy<Value = serde_json::Value>,
    ) -> impl Strategy<Value = Option<(String, serde_json::Value)>> {
        proptest::option::of(value.prop_map(move |v| (key.to_owned(), v)))
    }

    fn object(members: Vec<Option<(String, serde_json::Value)>>) -> serde_json::Value {
        serde_json::Value::Object(members.into_iter().flatten().collect())
    }

    fn string() -> impl Strategy<Value = serde_json::Value> {
        text().prop_map(serde_json::Value::String)
    }

    /// cvvault documents with any subset of the optional members, written compactly: the
    /// shortest text of each value, so the tightest case for the serialized-size bound.
    fn documents() -> impl Strategy<Value = serde_json::Value> {
        let identity = (
            "[A-Za-zåö]{1,12}",
            member(
                "birth_year",
                (1900u16..2000).prop_map(serde_json::Value::from),
            ),
            member("personal_number", string()),
        )
            .prop_map(|(name, year, number)| {
                object(vec![Some(("name".into(), name.into())), year, number])
            });
        let address = (member("street", string()), member("city", string()))
            .prop_map(|(a, b)| object(vec![a, b]));
        let contact = (member("phone", string()), member("address", address))
            .prop_map(|(a, b)| object(vec![a, b]));
        let work = (string(), string(), member("description", string())).prop_map(|(e, t, d)| {
            object(vec![
                Some(("employer".into(), e)),
                Some(("title".into(), t)),
                d,
            ])
        });
        let professional = (
            member("headline", string()),
            member(
                "work",
                proptest::collection::vec(work, 0..4).prop_map(serde_json::Value::from),
            ),
            member(
                "licences",
                proptest::collection::vec(string(), 0..3).prop_map(serde_json::Value::from),
            ),
        )
            .prop_map(|(a, b, c)| object(vec![a, b, c]));
        let special = (member("health", string()), member("religion", string()))
            .prop_map(|(a, b)| object(vec![a, b]));
        let consents = member(
            "employer_contact",
            any::<bool>().prop_map(serde_json::Value::from),
        )
        .prop_map(|a| object(vec![a]));
        let control = (
            member("protected", any::<bool>().prop_map(serde_json::Value::from)),
            member("consents", consents),
        )
            .prop_map(|(a, b)| object(vec![a, b]));
        (
            identity,
            member("contact", contact),
            member("professional", professional),
            member("special", special),
            member("control", control),
        )
            .prop_map(|(identity, contact, professional, special, control)| {
                object(vec![
                    Some(("identity".into(), identity)),
                    contact,
                    professional,
                    special,
                    control,
                ])
            })
    }

    #[test]
    fn a_document_near_the_limit_that_grows_by_its_defaults_is_measured_and_refused() {
        let default_len = serialized_len(&Profile::default()).unwrap();
        let skeleton = r#"{"identity":{"name":"A"},"professional":{"licences":[]}}"#.len();
        // Licences of 8,000 bytes each ("x...",) fill the document to just under the limit.
        let room = MAX_PROFILE_BYTES - 10 - skeleton;
        let mut licences: Vec<String> = vec!["x".repeat(8_000); room / 8_003];
        let used: usize = licences.iter().map(|l| l.len() + 3).sum::<usize>() - 1;
        licences.push("x".repeat(room - used - 3));
        let doc = serde_json::to_vec(&serde_json::json!({
            "identity": {"name": "A"},
            "professional": {"licences": licences},
        }))
        .unwrap();
        assert!(doc.len() <= MAX_PROFILE_BYTES && doc.len() + default_len > MAX_PROFILE_BYTES);
        // Serialized, the absent groups are written as defaults and take it over the limit.
        for result in [Profile::from_document(&doc), Profile::from_json(&doc)] {
            let (path, reason) = err_of(result);
            assert_eq!(path, "$");
            assert!(
                reason.starts_with("the profile is larger than 256 KiB"),
                "{reason}"
            );
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// The bound `validate_parsed` relies on to skip measuring: serialized, a parsed
        /// document is at most its own length plus an empty profile's serialized length.
        #[test]
        fn a_parsed_document_serializes_within_its_length_plus_the_defaults(value in documents()) {
            let doc = serde_json::to_vec(&value).unwrap();
            // Every generated document is valid: a case that did not parse would prove nothing.
            let profile = Profile::from_document(&doc).unwrap();
            let serialized = serialized_len(&profile).unwrap();
            let bound = doc.len() + serialized_len(&Profile::default()).unwrap();
            prop_assert!(serialized <= bound, "{serialized} > {bound}");
            let groups: usize = FieldGroup::ALL
                .iter()
                .map(|g| profile.group_json(*g).unwrap().len())
                .sum();
            // The groups, as sealed, are the profile less its braces, keys and commas.
            prop_assert!(groups < serialized);
            // So the buffer `group_texts` sizes from the document never has to grow.
            let texts = profile.group_texts(doc.len()).unwrap();
            prop_assert_eq!(texts.buffer.capacity(), (doc.len() + GroupTexts::SLACK).max(GROUP_BUFFER));
            prop_assert_eq!(texts.buffer.len(), groups);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn no_error_message_carries_a_document_value((core, value) in marked()) {
            for doc in misplaced(&value) {
                if let Err(err) = Profile::from_document(doc.as_bytes()) {
                    let message = err.to_string();
                    prop_assert!(!message.contains(&core), "{message} <- {doc}");
                }
            }
        }

        #[test]
        fn no_error_message_carries_a_misplaced_number(n in any::<i64>(), f in any::<f64>()) {
            let n_text = n.to_string();
            for doc in [
                format!(r#"{{"identity":{{"name":"A","birth_year":{n}}}}}"#),
                format!(r#"{{"identity":{{"name":{n}}}}}"#),
                format!(r#"{{"identity":{{"name":"A"}},"control":{{"protected":{n}}}}}"#),
            ] {
                let message = Profile::from_json(doc.as_bytes()).err().map(|e| e.to_string());
                if let Some(message) = message {
                    // A u16 birth year in range is accepted or refused by validate, which names
                    // the bounds; only numbers of 5+ digits cannot be mistaken for those.
                    if n_text.len() >= 5 {
                        prop_assert!(!message.contains(&n_text), "{message}");
                    }
                }
            }
            if f.is_finite() {
                let doc = format!(r#"{{"identity":{{"name":"A","birth_year":{f:e}}}}}"#);
                let message = Profile::from_json(doc.as_bytes()).err().map(|e| e.to_string());
                prop_assert_eq!(
                    message.as_deref(),
                    Some("invalid profile at $.identity.birth_year: wrong type: expected u16, found a number")
                );
            }
        }
    }
}
