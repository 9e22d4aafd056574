//! Parsing profile documents (cvvault JSON, JSON Resume, sealed groups), and parse errors that
//! name the JSON path and never a value.

use serde::de::{DeserializeOwned, IgnoredAny};
use serde::Deserializer;

use super::*;
use crate::error::{Error, Result};
use crate::vocabulary::FieldGroup;

impl Profile {
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
}

/// The groups of a document for an update, as [`Profile::from_update_document`] reads it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupsDocument {
    identity: Option<Identity>,
    contact: Option<Contact>,
    professional: Option<Professional>,
    special: Option<Special>,
    control: Option<Control>,
    agency_reference: Option<String>,
}

impl Profile {
    /// Parses a document for an update: the groups it holds, and which they are.
    ///
    /// A cvvault document may hold any of the groups (none is required; a group it leaves out
    /// is not in the list). A JSON Resume document gives the groups it maps to: identity,
    /// contact and professional. The groups are checked as strictly as a registration's;
    /// the whole profile they will be part of is validated by the caller. An
    /// `agency_reference` is kept in the profile returned: the caller checks that it is the
    /// candidate's (an update cannot change it).
    pub fn from_update_document(bytes: &[u8]) -> Result<(Profile, Vec<FieldGroup>)> {
        check_document_size(bytes)?;
        if is_json_resume(bytes) {
            let profile = json_resume::parse(bytes)?;
            let groups = vec![
                FieldGroup::Identity,
                FieldGroup::Contact,
                FieldGroup::Professional,
            ];
            return Ok((profile, groups));
        }
        let parsed: GroupsDocument = parse_tracked(bytes, "$")?;
        let mut profile = Profile::default();
        profile.agency_reference = parsed.agency_reference;
        if let Some(reference) = &profile.agency_reference {
            check_agency_reference(reference)?;
        }
        let mut groups = Vec::new();
        if let Some(group) = parsed.identity {
            profile.identity = group;
            groups.push(FieldGroup::Identity);
        }
        if let Some(group) = parsed.contact {
            profile.contact = group;
            groups.push(FieldGroup::Contact);
        }
        if let Some(group) = parsed.professional {
            profile.professional = group;
            groups.push(FieldGroup::Professional);
        }
        if let Some(group) = parsed.special {
            profile.special = group;
            groups.push(FieldGroup::Special);
        }
        if let Some(group) = parsed.control {
            profile.control = group;
            groups.push(FieldGroup::Control);
        }
        if groups.is_empty() {
            return Err(invalid(
                "$",
                "the document holds no field group to replace: give at least one of identity, \
                 contact, professional, special or control",
            ));
        }
        Ok((profile, groups))
    }

    /// Replaces `groups` of this profile with those of `from`.
    pub fn take_groups(&mut self, from: &Profile, groups: &[FieldGroup]) {
        for group in groups {
            match group {
                FieldGroup::Identity => self.identity = from.identity.clone(),
                FieldGroup::Contact => self.contact = from.contact.clone(),
                FieldGroup::Professional => self.professional = from.professional.clone(),
                FieldGroup::Special => self.special = from.special.clone(),
                FieldGroup::Control => self.control = from.control.clone(),
            }
        }
    }
}

/// Refuses an empty document, and one larger than a profile may be, before parsing it.
pub(crate) fn check_document_size(bytes: &[u8]) -> Result<()> {
    if bytes.trim_ascii().is_empty() {
        return Err(invalid(
            "$",
            "the document is empty: a profile is one JSON object, at least {\"identity\": {\"name\": \"...\"}}",
        ));
    }
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
pub(super) fn is_json_resume(bytes: &[u8]) -> bool {
    #[derive(Deserialize)]
    struct Probe {
        #[serde(default, deserialize_with = "present")]
        basics: bool,
        #[serde(default, rename = "$schema")]
        schema: Option<serde_json::Value>,
    }
    pub(super) fn present<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<bool, D::Error> {
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
pub(super) fn push_segment(path: &mut String, segment: &serde_path_to_error::Segment) {
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
pub(super) fn reason(err: &serde_json::Error) -> String {
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
pub(super) fn describe_expected(expected: &str) -> String {
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
pub(super) fn describe_found(found: &str) -> Option<&'static str> {
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
