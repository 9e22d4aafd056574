//! Validation of a parsed profile: limits on sizes, lists and strings, and plausible values.

use super::*;
use crate::error::{Error, Result};

impl Profile {
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
    pub(super) fn validate_parsed(&self, document_len: usize) -> Result<()> {
        if document_len.saturating_add(serialized_len(&Profile::default())?) > MAX_PROFILE_BYTES {
            self.check_serialized_size()?;
        }
        self.check_fields()
    }

    pub(super) fn check_serialized_size(&self) -> Result<()> {
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
    pub(super) fn check_fields(&self) -> Result<()> {
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
        if let Some(reference) = &self.agency_reference {
            check_agency_reference(reference)?;
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
    pub(super) fn check_sizes(&self) -> Result<()> {
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
/// The longest agency reference accepted, in bytes.
pub const MAX_REFERENCE_BYTES: usize = 64;

/// An agency reference is a case number: 1 to 64 printable characters, no surrounding spaces.
pub fn check_agency_reference(reference: &str) -> Result<()> {
    let fits = !reference.is_empty()
        && reference.len() <= MAX_REFERENCE_BYTES
        && reference.trim() == reference
        && !reference.chars().any(char::is_control);
    if fits {
        Ok(())
    } else {
        Err(invalid(
            "$.agency_reference",
            format!(
                "must be the agency's case number: 1 to {MAX_REFERENCE_BYTES} printable characters, without spaces around it"
            ),
        ))
    }
}

pub(crate) fn invalid(path: impl Into<String>, reason: impl Into<String>) -> Error {
    Error::InvalidProfile {
        path: path.into(),
        reason: reason.into(),
    }
}

/// The current calendar year (UTC), the upper bound of `birth_year`.
pub(super) fn current_year() -> u16 {
    u16::try_from(time::OffsetDateTime::now_utc().year()).unwrap_or(u16::MAX)
}

/// Exactly one `@`, with something on both sides. Deliverability is not the vault's business.
pub(super) fn plausible_email(email: &str) -> bool {
    match email.split_once('@') {
        Some((local, domain)) => !local.is_empty() && !domain.is_empty() && !domain.contains('@'),
        None => false,
    }
}

pub(super) fn text(value: &str, path: impl FnOnce() -> String) -> Result<()> {
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

pub(super) fn opt_text(value: &Option<String>, path: impl FnOnce() -> String) -> Result<()> {
    match value {
        Some(value) => text(value, path),
        None => Ok(()),
    }
}

pub(super) fn list<T>(items: &[T], path: &str) -> Result<()> {
    if items.len() > MAX_LIST_ITEMS {
        return Err(invalid(
            path,
            format!("more than {MAX_LIST_ITEMS} items: keep the {MAX_LIST_ITEMS} most relevant"),
        ));
    }
    Ok(())
}
