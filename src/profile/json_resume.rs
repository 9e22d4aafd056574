//! Import of JSON Resume documents (<https://jsonresume.org/schema>, v1.0.0) into a [`Profile`].
//!
//! What is mapped:
//!
//! | JSON Resume                                   | profile                                   |
//! |-----------------------------------------------|-------------------------------------------|
//! | `basics.name`                                 | `identity.name`                           |
//! | `basics.email`, `basics.phone`                | `contact.email`, `contact.phone`          |
//! | `basics.location.address`                     | `contact.address.street`                  |
//! | `basics.location.postalCode`, `.city`         | `contact.address.postal_code`, `.city`    |
//! | `basics.location.countryCode`                 | `contact.address.country`                 |
//! | `basics.label`, `basics.summary`              | `professional.headline`, `.summary`       |
//! | `work[].name` (or the older `company`)        | `professional.work[].employer`            |
//! | `work[].position`                             | `professional.work[].title`               |
//! | `work[].startDate`, `endDate`                 | `professional.work[].start`, `end`        |
//! | `work[].summary` + `highlights`               | `professional.work[].description`         |
//! | `education[].institution`, `studyType`, `area`| `professional.education[].institution`, `level`, `field` |
//! | `education[].startDate`, `endDate`            | `professional.education[].start`, `end`   |
//! | `skills[].name`, `level`                      | `professional.skills[]`                   |
//! | `skills[].keywords[]`                         | further `professional.skills[]`, one each |
//! | `languages[].language`, `fluency`             | `professional.languages[]`                |
//! | `certificates[].name`                         | `professional.licences[]`                 |
//!
//! Everything else that JSON Resume defines (`basics.image`, `basics.url`, `basics.profiles`,
//! `basics.location.region`, `work[].url`, `work[].location`, `work[].description`,
//! `education[].score`, `education[].courses`, `certificates[].date`/`issuer`/`url`,
//! `volunteer`, `awards`, `publications`, `interests`, `references`, `projects`, `meta`) is
//! refused with its path and a message saying the vault does not store it, as are fields
//! JSON Resume does not define: the vault drops nothing silently. A refused field that is
//! empty (`null`, `""`, `[]`, `{}` or made only of those, as resume builders export them)
//! carries nothing and is accepted. `$schema` is accepted: it names the format, not the
//! person. Fields the vault requires (`basics.name`, an employer and a position per job, an
//! institution, a skill name, a language, a certificate name) are required here too, and
//! optional strings that are blank are treated as absent.

use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::{
    invalid, parse_tracked, Address, Contact, Control, Education, Identity, Language, Professional,
    Profile, Skill, Special, Work, NOT_STORED,
};
use crate::error::{Error, Result};

/// Parses and maps a JSON Resume document, then validates the profile. Paths in errors are
/// JSON Resume paths (`$.basics.image`).
pub fn parse(bytes: &[u8]) -> Result<Profile> {
    super::check_document_size(bytes)?;
    let mut resume: Resume = parse_tracked(bytes, "$").map_err(vault_group_hint)?;
    let profile = resume.take_profile()?;
    profile.validate().map_err(resume_path)?;
    Ok(profile)
}

/// A vault field group written into a JSON Resume (`special`, `control`, ...): JSON Resume has
/// no place for it, so the error says how it gets into the vault instead.
fn vault_group_hint(err: Error) -> Error {
    match err {
        Error::InvalidProfile { path, reason }
            if [
                "$.special",
                "$.control",
                "$.identity",
                "$.contact",
                "$.professional",
            ]
            .contains(&path.as_str()) =>
        {
            let group = path.trim_start_matches("$.").to_owned();
            Error::InvalidProfile {
                reason: format!(
                    "{reason}. A JSON Resume has no `{group}`: register the resume without it, then replace that group from a vault document that holds only it ({{\"{group}\": {{...}}}}), an update of the candidate; or write the whole profile as a vault document"
                ),
                path,
            }
        }
        other => other,
    }
}

/// The top level. Field names are JSON Resume's.
#[derive(Deserialize, Zeroize, ZeroizeOnDrop)]
#[serde(deny_unknown_fields)]
struct Resume {
    #[serde(default, rename = "$schema")]
    schema: Option<String>,
    /// Not JSON Resume's: the agency's own reference, as in a vault document.
    #[serde(default)]
    agency_reference: Option<String>,
    basics: Basics,
    #[serde(default)]
    work: Vec<ResumeWork>,
    #[serde(default)]
    education: Vec<ResumeEducation>,
    #[serde(default)]
    skills: Vec<ResumeSkill>,
    #[serde(default)]
    languages: Vec<ResumeLanguage>,
    #[serde(default)]
    certificates: Vec<Certificate>,
    #[serde(default)]
    #[zeroize(skip)]
    volunteer: NotStored,
    #[serde(default)]
    #[zeroize(skip)]
    awards: NotStored,
    #[serde(default)]
    #[zeroize(skip)]
    publications: NotStored,
    #[serde(default)]
    #[zeroize(skip)]
    interests: NotStored,
    #[serde(default)]
    #[zeroize(skip)]
    references: NotStored,
    #[serde(default)]
    #[zeroize(skip)]
    projects: NotStored,
    #[serde(default)]
    #[zeroize(skip)]
    meta: NotStored,
}

#[derive(Deserialize, Zeroize, ZeroizeOnDrop)]
#[serde(deny_unknown_fields)]
struct Basics {
    name: String,
    #[serde(default)]
    label: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    phone: Option<String>,
    #[serde(default)]
    summary: Option<String>,
    #[serde(default)]
    location: Option<Location>,
    #[serde(default)]
    #[zeroize(skip)]
    image: NotStored,
    #[serde(default)]
    #[zeroize(skip)]
    url: NotStored,
    /// The pre-1.0 spelling of `url`.
    #[serde(default)]
    #[zeroize(skip)]
    website: NotStored,
    #[serde(default)]
    #[zeroize(skip)]
    profiles: NotStored,
}

#[derive(Deserialize, Zeroize, ZeroizeOnDrop)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Location {
    #[serde(default)]
    address: Option<String>,
    #[serde(default)]
    postal_code: Option<String>,
    #[serde(default)]
    city: Option<String>,
    #[serde(default)]
    country_code: Option<String>,
    #[serde(default)]
    #[zeroize(skip)]
    region: NotStored,
}

#[derive(Deserialize, Zeroize, ZeroizeOnDrop)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ResumeWork {
    #[serde(default)]
    name: Option<String>,
    /// The pre-1.0 spelling of `name`.
    #[serde(default)]
    company: Option<String>,
    position: String,
    #[serde(default)]
    start_date: Option<String>,
    #[serde(default)]
    end_date: Option<String>,
    #[serde(default)]
    summary: Option<String>,
    #[serde(default)]
    highlights: Vec<String>,
    #[serde(default)]
    #[zeroize(skip)]
    url: NotStored,
    /// The pre-1.0 spelling of `url`.
    #[serde(default)]
    #[zeroize(skip)]
    website: NotStored,
    #[serde(default)]
    #[zeroize(skip)]
    location: NotStored,
    /// In JSON Resume this describes the employer (`Social media company`), not the work.
    #[serde(default)]
    #[zeroize(skip)]
    description: NotStored,
}

#[derive(Deserialize, Zeroize, ZeroizeOnDrop)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ResumeEducation {
    institution: String,
    #[serde(default)]
    study_type: Option<String>,
    #[serde(default)]
    area: Option<String>,
    #[serde(default)]
    start_date: Option<String>,
    #[serde(default)]
    end_date: Option<String>,
    #[serde(default)]
    #[zeroize(skip)]
    url: NotStored,
    #[serde(default)]
    #[zeroize(skip)]
    score: NotStored,
    /// The pre-1.0 spelling of `score`.
    #[serde(default)]
    #[zeroize(skip)]
    gpa: NotStored,
    #[serde(default)]
    #[zeroize(skip)]
    courses: NotStored,
}

#[derive(Deserialize, Zeroize, ZeroizeOnDrop)]
#[serde(deny_unknown_fields)]
struct ResumeSkill {
    name: String,
    #[serde(default)]
    level: Option<String>,
    #[serde(default)]
    keywords: Vec<String>,
}

#[derive(Deserialize, Zeroize, ZeroizeOnDrop)]
#[serde(deny_unknown_fields)]
struct ResumeLanguage {
    language: String,
    #[serde(default)]
    fluency: Option<String>,
}

#[derive(Deserialize, Zeroize, ZeroizeOnDrop)]
#[serde(deny_unknown_fields)]
struct Certificate {
    name: String,
    #[serde(default)]
    #[zeroize(skip)]
    date: NotStored,
    #[serde(default)]
    #[zeroize(skip)]
    issuer: NotStored,
    #[serde(default)]
    #[zeroize(skip)]
    url: NotStored,
}

impl Resume {
    /// Moves the mapped fields into a profile. Strings are moved, not copied, and the
    /// emptied resume is wiped on drop.
    fn take_profile(&mut self) -> Result<Profile> {
        let basics = &mut self.basics;
        let address = basics.location.as_mut().and_then(|location| {
            let address = Address {
                street: blank_to_none(location.address.take()),
                postal_code: blank_to_none(location.postal_code.take()),
                city: blank_to_none(location.city.take()),
                country: blank_to_none(location.country_code.take()),
            };
            let empty = address.street.is_none()
                && address.postal_code.is_none()
                && address.city.is_none()
                && address.country.is_none();
            (!empty).then_some(address)
        });

        let mut work = Vec::with_capacity(self.work.len());
        for (index, job) in self.work.iter_mut().enumerate() {
            let employer = match (
                blank_to_none(job.name.take()),
                blank_to_none(job.company.take()),
            ) {
                (Some(name), None) | (None, Some(name)) => name,
                (Some(name), Some(company)) if name == company => name,
                (Some(_), Some(_)) => {
                    return Err(invalid(
                        format!("$.work[{index}].company"),
                        "both `name` and `company` name the employer: keep `name` only \
                         (`company` is the pre-1.0 spelling)",
                    ))
                }
                (None, None) => {
                    return Err(invalid(
                        format!("$.work[{index}]"),
                        "missing field `name`: give the employer",
                    ))
                }
            };
            work.push(Work {
                employer,
                title: std::mem::take(&mut job.position),
                start: blank_to_none(job.start_date.take()),
                end: blank_to_none(job.end_date.take()),
                description: description(blank_to_none(job.summary.take()), &job.highlights),
            });
        }

        let education = self
            .education
            .iter_mut()
            .map(|school| Education {
                institution: std::mem::take(&mut school.institution),
                level: blank_to_none(school.study_type.take()),
                field: blank_to_none(school.area.take()),
                start: blank_to_none(school.start_date.take()),
                end: blank_to_none(school.end_date.take()),
            })
            .collect();

        let mut skills: Vec<Skill> = Vec::with_capacity(self.skills.len());
        for skill in &mut self.skills {
            skills.push(Skill {
                name: std::mem::take(&mut skill.name),
                taxonomy_id: None,
                level: blank_to_none(skill.level.take()),
            });
            for keyword in &mut skill.keywords {
                let known = keyword.trim().is_empty()
                    || skills.iter().any(|s| s.name.eq_ignore_ascii_case(keyword));
                if !known {
                    skills.push(Skill {
                        name: std::mem::take(keyword),
                        taxonomy_id: None,
                        level: None,
                    });
                }
            }
        }

        let languages = self
            .languages
            .iter_mut()
            .map(|language| Language {
                language: std::mem::take(&mut language.language),
                fluency: blank_to_none(language.fluency.take()),
            })
            .collect();

        let licences = self
            .certificates
            .iter_mut()
            .map(|certificate| std::mem::take(&mut certificate.name))
            .collect();

        Ok(Profile {
            identity: Identity {
                name: std::mem::take(&mut basics.name),
                birth_year: None,
                personal_number: None,
            },
            contact: Contact {
                email: blank_to_none(basics.email.take()),
                phone: blank_to_none(basics.phone.take()),
                address,
            },
            professional: Professional {
                headline: blank_to_none(basics.label.take()),
                summary: blank_to_none(basics.summary.take()),
                skills,
                work,
                education,
                languages,
                licences,
            },
            special: Special::default(),
            control: Control::default(),
            agency_reference: self.agency_reference.take(),
        })
    }
}

/// A blank optional string carries nothing: resume builders export unset fields as `""`.
fn blank_to_none(value: Option<String>) -> Option<String> {
    match value {
        Some(mut text) if text.trim().is_empty() => {
            text.zeroize();
            None
        }
        other => other,
    }
}

/// `summary`, then each highlight on its own `- ` line.
fn description(summary: Option<String>, highlights: &[String]) -> Option<String> {
    let highlights: Vec<&str> = highlights
        .iter()
        .map(|h| h.trim())
        .filter(|h| !h.is_empty())
        .collect();
    if highlights.is_empty() {
        return summary;
    }
    let mut summary = summary;
    let head = summary.as_deref().unwrap_or_default();
    let size = head.len() + highlights.iter().map(|h| h.len() + 3).sum::<usize>();
    // Sized once so that no reallocation leaves an unwiped copy behind.
    let mut text = String::with_capacity(size);
    text.push_str(head);
    for highlight in highlights {
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str("- ");
        text.push_str(highlight);
    }
    summary.zeroize();
    Some(text)
}

/// Translates the path of a validation error on the mapped profile back to the JSON Resume
/// field it came from, so the user is pointed at their own document.
fn resume_path(err: Error) -> Error {
    let Error::InvalidProfile { path, reason } = err else {
        return err;
    };
    let fixed = [
        ("$.identity.name", "$.basics.name"),
        ("$.contact.email", "$.basics.email"),
        ("$.contact.phone", "$.basics.phone"),
        ("$.contact.address.street", "$.basics.location.address"),
        (
            "$.contact.address.postal_code",
            "$.basics.location.postalCode",
        ),
        ("$.contact.address.city", "$.basics.location.city"),
        ("$.contact.address.country", "$.basics.location.countryCode"),
        ("$.professional.headline", "$.basics.label"),
        ("$.professional.summary", "$.basics.summary"),
        ("$.professional.work", "$.work"),
        ("$.professional.education", "$.education"),
        ("$.professional.languages", "$.languages"),
        ("$.professional.licences", "$.certificates"),
    ];
    if let Some((_, to)) = fixed.iter().find(|(from, _)| path == *from) {
        return invalid(*to, reason);
    }
    // Skills: keywords became skills of their own, so an index no longer points into the
    // document; name the list.
    if path.starts_with("$.professional.skills") {
        return invalid("$.skills", format!("{reason} (keywords count as skills)"));
    }
    let renames = [
        ("$.professional.work[", "$.work[", ".employer", ".name"),
        ("$.professional.work[", "$.work[", ".title", ".position"),
        ("$.professional.work[", "$.work[", ".start", ".startDate"),
        ("$.professional.work[", "$.work[", ".end", ".endDate"),
        (
            "$.professional.work[",
            "$.work[",
            ".description",
            ".summary",
        ),
        (
            "$.professional.education[",
            "$.education[",
            ".institution",
            ".institution",
        ),
        (
            "$.professional.education[",
            "$.education[",
            ".level",
            ".studyType",
        ),
        (
            "$.professional.education[",
            "$.education[",
            ".field",
            ".area",
        ),
        (
            "$.professional.education[",
            "$.education[",
            ".start",
            ".startDate",
        ),
        (
            "$.professional.education[",
            "$.education[",
            ".end",
            ".endDate",
        ),
        (
            "$.professional.languages[",
            "$.languages[",
            ".language",
            ".language",
        ),
        (
            "$.professional.languages[",
            "$.languages[",
            ".fluency",
            ".fluency",
        ),
        ("$.professional.licences[", "$.certificates[", "]", "].name"),
    ];
    for (from, to, leaf, new_leaf) in renames {
        if let Some(rest) = path.strip_prefix(from) {
            if let Some(index) = rest.strip_suffix(leaf) {
                if index
                    .trim_end_matches(']')
                    .bytes()
                    .all(|b| b.is_ascii_digit())
                {
                    let index = index.trim_end_matches(']');
                    let bracket = if leaf == "]" { "" } else { "]" };
                    return invalid(format!("{to}{index}{bracket}{new_leaf}"), reason);
                }
            }
        }
    }
    invalid(path, reason)
}

/// A JSON Resume field the vault does not store: refused unless it is empty.
#[derive(Default)]
struct NotStored;

impl<'de> Deserialize<'de> for NotStored {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        if IsEmpty::deserialize(deserializer)?.0 {
            Ok(NotStored)
        } else {
            Err(de::Error::custom(NOT_STORED))
        }
    }
}

/// Whether a value is empty: `null`, `""`, or an array or object of empty values. Reading it
/// never fails on content, so a refusal is reported at the field, not deep inside it, and
/// nothing of the value is kept.
struct IsEmpty(bool);

impl<'de> Deserialize<'de> for IsEmpty {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        deserializer.deserialize_any(IsEmptyVisitor)
    }
}

struct IsEmptyVisitor;

impl<'de> Visitor<'de> for IsEmptyVisitor {
    type Value = IsEmpty;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E: de::Error>(self) -> std::result::Result<IsEmpty, E> {
        Ok(IsEmpty(true))
    }
    fn visit_none<E: de::Error>(self) -> std::result::Result<IsEmpty, E> {
        Ok(IsEmpty(true))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> std::result::Result<IsEmpty, E> {
        Ok(IsEmpty(false))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> std::result::Result<IsEmpty, E> {
        Ok(IsEmpty(false))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> std::result::Result<IsEmpty, E> {
        Ok(IsEmpty(false))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> std::result::Result<IsEmpty, E> {
        Ok(IsEmpty(false))
    }
    fn visit_str<E: de::Error>(self, value: &str) -> std::result::Result<IsEmpty, E> {
        Ok(IsEmpty(value.trim().is_empty()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<IsEmpty, A::Error> {
        let mut empty = true;
        // Every element is read: the parser needs the whole array consumed.
        while let Some(IsEmpty(element)) = seq.next_element()? {
            empty &= element;
        }
        Ok(IsEmpty(empty))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<IsEmpty, A::Error> {
        let mut empty = true;
        while let Some((IgnoredAny, IsEmpty(value))) = map.next_entry()? {
            empty &= value;
        }
        Ok(IsEmpty(empty))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocabulary::FieldGroup;

    /// A realistic JSON Resume v1.0.0 document, as a resume builder exports it: every mapped
    /// field, and the refused ones left empty.
    const RESUME: &str = r#"{
      "$schema": "https://raw.githubusercontent.com/jsonresume/resume-schema/v1.0.0/schema.json",
      "basics": {
        "name": "Yousef Al-Haddad",
        "label": "CNC-operatör och maskinställare",
        "image": "",
        "email": "yousef.al-haddad@example.org",
        "phone": "070-174 06 42",
        "url": "",
        "summary": "Maskinställare med tio års erfarenhet från Aleppo och Västerås.",
        "location": {
          "address": "Vasagatan 14, lgh 1102",
          "postalCode": "722 15",
          "city": "Västerås",
          "countryCode": "SE",
          "region": ""
        },
        "profiles": []
      },
      "work": [
        {
          "name": "Mekaniska Verkstaden AB",
          "position": "CNC-operatör",
          "url": "",
          "startDate": "2021-09-01",
          "summary": "Ställ och körning av fleroperationsmaskiner i treskift.",
          "highlights": [
            "Programmering i Heidenhain TNC 640",
            "Introducerade nya medarbetare i mätrutiner"
          ]
        },
        {
          "company": "Verkstadsföretag i Aleppo",
          "position": "Maskinställare",
          "startDate": "2009-03",
          "endDate": "2015-06",
          "summary": "Svarvning och fräsning av reservdelar."
        },
        {
          "name": "Lager Syd AB",
          "position": "Lagerarbetare",
          "startDate": "2018-01",
          "endDate": "2021-08",
          "highlights": ["Truckkörning i höglager"]
        }
      ],
      "volunteer": [],
      "education": [
        {
          "institution": "Yrkeshögskolan i Västerås",
          "url": "",
          "area": "CNC-teknik",
          "studyType": "yrkeshögskoleexamen",
          "startDate": "2019-08",
          "endDate": "2021-06",
          "score": "",
          "courses": []
        },
        {"institution": "SFI Västerås", "studyType": "svenska för invandrare", "area": "kurs D"}
      ],
      "awards": [],
      "certificates": [
        {"name": "Truckkort A+B", "date": "", "issuer": "", "url": ""},
        {"name": "Heta arbeten"}
      ],
      "publications": [],
      "skills": [
        {"name": "CNC-fräsning", "level": "Avancerad", "keywords": ["Heidenhain", "Fanuc", "cnc-fräsning"]},
        {"name": "Ritningsläsning"}
      ],
      "languages": [
        {"language": "arabiska", "fluency": "modersmål"},
        {"language": "svenska", "fluency": "B2"},
        {"language": "engelska", "fluency": ""}
      ],
      "interests": [],
      "references": [],
      "projects": [],
      "meta": {"canonical": "", "version": "", "lastModified": ""}
    }"#;

    fn refusal(doc: &str) -> (String, String) {
        match Profile::from_document(doc.as_bytes()) {
            Err(Error::InvalidProfile { path, reason }) => (path, reason),
            Err(other) => panic!("expected InvalidProfile, got {other}"),
            Ok(_) => panic!("accepted: {doc}"),
        }
    }

    #[test]
    fn a_full_resume_is_mapped() {
        let p = Profile::from_document(RESUME.as_bytes()).unwrap();
        assert_eq!(p.identity.name, "Yousef Al-Haddad");
        assert!(p.identity.birth_year.is_none() && p.identity.personal_number.is_none());

        assert_eq!(
            p.contact.email.as_deref(),
            Some("yousef.al-haddad@example.org")
        );
        assert_eq!(p.contact.phone.as_deref(), Some("070-174 06 42"));
        let address = p.contact.address.as_ref().unwrap();
        assert_eq!(address.street.as_deref(), Some("Vasagatan 14, lgh 1102"));
        assert_eq!(address.postal_code.as_deref(), Some("722 15"));
        assert_eq!(address.city.as_deref(), Some("Västerås"));
        assert_eq!(address.country.as_deref(), Some("SE"));

        let pro = &p.professional;
        assert_eq!(
            pro.headline.as_deref(),
            Some("CNC-operatör och maskinställare")
        );
        assert!(pro
            .summary
            .as_deref()
            .unwrap()
            .starts_with("Maskinställare med tio"));

        assert_eq!(pro.work.len(), 3);
        let first = &pro.work[0];
        assert_eq!(first.employer, "Mekaniska Verkstaden AB");
        assert_eq!(first.title, "CNC-operatör");
        assert_eq!(first.start.as_deref(), Some("2021-09-01"));
        assert!(first.end.is_none(), "current job");
        assert_eq!(
            first.description.as_deref(),
            Some(
                "Ställ och körning av fleroperationsmaskiner i treskift.\n\
                 - Programmering i Heidenhain TNC 640\n\
                 - Introducerade nya medarbetare i mätrutiner"
            )
        );
        assert_eq!(
            pro.work[1].employer, "Verkstadsföretag i Aleppo",
            "`company` spelling"
        );
        assert_eq!(pro.work[1].end.as_deref(), Some("2015-06"));
        assert_eq!(
            pro.work[1].description.as_deref(),
            Some("Svarvning och fräsning av reservdelar.")
        );
        assert_eq!(
            pro.work[2].description.as_deref(),
            Some("- Truckkörning i höglager")
        );

        assert_eq!(pro.education.len(), 2);
        let school = &pro.education[0];
        assert_eq!(school.institution, "Yrkeshögskolan i Västerås");
        assert_eq!(school.level.as_deref(), Some("yrkeshögskoleexamen"));
        assert_eq!(school.field.as_deref(), Some("CNC-teknik"));
        assert_eq!(school.start.as_deref(), Some("2019-08"));
        assert_eq!(school.end.as_deref(), Some("2021-06"));

        let skills: Vec<(&str, Option<&str>)> = pro
            .skills
            .iter()
            .map(|s| (s.name.as_str(), s.level.as_deref()))
            .collect();
        assert_eq!(
            skills,
            [
                ("CNC-fräsning", Some("Avancerad")),
                ("Heidenhain", None),
                ("Fanuc", None),
                ("Ritningsläsning", None),
            ],
            "keywords become skills; one repeating the skill's own name is dropped"
        );

        let languages: Vec<(&str, Option<&str>)> = pro
            .languages
            .iter()
            .map(|l| (l.language.as_str(), l.fluency.as_deref()))
            .collect();
        assert_eq!(
            languages,
            [
                ("arabiska", Some("modersmål")),
                ("svenska", Some("B2")),
                ("engelska", None)
            ]
        );
        assert_eq!(pro.licences, ["Truckkort A+B", "Heta arbeten"]);

        // Nothing lands in the special or control groups.
        assert_eq!(p.group_json(FieldGroup::Special).unwrap().as_slice(), b"{}");
        assert!(!p.control.protected && !p.control.consents.employer_contact);
    }

    #[test]
    fn every_field_the_vault_does_not_store_is_refused_with_its_path() {
        let cases = [
            (
                r#""basics":{"name":"A","image":"https://example.org/me.jpg"}"#,
                "$.basics.image",
            ),
            (
                r#""basics":{"name":"A","url":"https://example.org"}"#,
                "$.basics.url",
            ),
            (
                r#""basics":{"name":"A","website":"https://example.org"}"#,
                "$.basics.website",
            ),
            (
                r#""basics":{"name":"A","profiles":[{"network":"LinkedIn","username":"a"}]}"#,
                "$.basics.profiles",
            ),
            (
                r#""basics":{"name":"A","location":{"city":"Malmö","region":"Skåne"}}"#,
                "$.basics.location.region",
            ),
            (
                r#""basics":{"name":"A"},"work":[{"name":"E","position":"P","url":"https://e.example"}]"#,
                "$.work[0].url",
            ),
            (
                r#""basics":{"name":"A"},"work":[{"name":"E","position":"P","location":"Malmö"}]"#,
                "$.work[0].location",
            ),
            (
                r#""basics":{"name":"A"},"work":[{"name":"E","position":"P"},{"name":"E","position":"P","description":"Bank"}]"#,
                "$.work[1].description",
            ),
            (
                r#""basics":{"name":"A"},"education":[{"institution":"I","score":"4.0"}]"#,
                "$.education[0].score",
            ),
            (
                r#""basics":{"name":"A"},"education":[{"institution":"I","courses":["Matematik 1c"]}]"#,
                "$.education[0].courses",
            ),
            (
                r#""basics":{"name":"A"},"certificates":[{"name":"C","issuer":"Transportstyrelsen"}]"#,
                "$.certificates[0].issuer",
            ),
            (
                r#""basics":{"name":"A"},"certificates":[{"name":"C","date":"2020-01-01"}]"#,
                "$.certificates[0].date",
            ),
            (
                r#""basics":{"name":"A"},"volunteer":[{"organization":"Röda Korset"}]"#,
                "$.volunteer",
            ),
            (
                r#""basics":{"name":"A"},"awards":[{"title":"Årets kollega"}]"#,
                "$.awards",
            ),
            (
                r#""basics":{"name":"A"},"publications":[{"name":"Artikel"}]"#,
                "$.publications",
            ),
            (
                r#""basics":{"name":"A"},"interests":[{"name":"Fotboll"}]"#,
                "$.interests",
            ),
            (
                r#""basics":{"name":"A"},"references":[{"name":"Chef","reference":"Bra"}]"#,
                "$.references",
            ),
            (
                r#""basics":{"name":"A"},"projects":[{"name":"Projekt"}]"#,
                "$.projects",
            ),
            (
                r#""basics":{"name":"A"},"meta":{"theme":"elegant"}"#,
                "$.meta",
            ),
        ];
        for (body, expected) in cases {
            let (path, reason) = refusal(&format!("{{{body}}}"));
            assert_eq!(path, expected, "{body}");
            assert!(
                reason.starts_with("the vault does not store this JSON Resume field"),
                "{reason}"
            );
            assert!(reason.contains("remove it"), "{reason}");
        }
    }

    #[test]
    fn a_refused_field_quotes_nothing_of_its_value() {
        let (_, reason) =
            refusal(r#"{"basics":{"name":"A","profiles":[{"username":"secret-handle"}]}}"#);
        let message = Error::InvalidProfile {
            path: String::new(),
            reason,
        }
        .to_string();
        assert!(!message.contains("secret-handle"));
    }

    #[test]
    fn empty_refused_fields_carry_nothing_and_are_accepted() {
        let doc = r#"{"basics":{"name":"A","image":null,"url":"  ","profiles":[{"network":"","url":""}],
                      "location":{"region":""}},
                      "projects":[{}], "meta":{"canonical":"","version":null}}"#;
        let profile = Profile::from_document(doc.as_bytes()).unwrap();
        assert!(
            profile.contact.address.is_none(),
            "a location of empty strings is no address"
        );
    }

    #[test]
    fn fields_json_resume_does_not_define_are_refused() {
        let (path, reason) = refusal(r#"{"basics":{"name":"A","nationality":"Syrian"}}"#);
        assert_eq!(path, "$.basics.nationality");
        assert!(
            reason.starts_with("unknown field `nationality`"),
            "{reason}"
        );
        let (path, _) = refusal(r#"{"basics":{"name":"A"},"hobbies":[]}"#);
        assert_eq!(path, "$.hobbies");
        let (path, _) = refusal(r#"{"basics":{"name":"A"},"skills":[{"name":"S","years":3}]}"#);
        assert_eq!(path, "$.skills[0].years");
    }

    #[test]
    fn fields_the_vault_requires_are_required() {
        let cases = [
            (
                r#"{"basics":{"label":"L"}}"#,
                "$.basics",
                "missing field `name`",
            ),
            (
                r#"{"basics":{"name":"A"},"work":[{"name":"E"}]}"#,
                "$.work[0]",
                "missing field `position`",
            ),
            (
                r#"{"basics":{"name":"A"},"work":[{"position":"P"}]}"#,
                "$.work[0]",
                "missing field `name`: give the employer",
            ),
            (
                r#"{"basics":{"name":"A"},"education":[{"area":"F"}]}"#,
                "$.education[0]",
                "missing field `institution`",
            ),
            (
                r#"{"basics":{"name":"A"},"skills":[{"level":"L"}]}"#,
                "$.skills[0]",
                "missing field `name`",
            ),
            (
                r#"{"basics":{"name":"A"},"languages":[{"fluency":"B2"}]}"#,
                "$.languages[0]",
                "missing field `language`",
            ),
            (
                r#"{"basics":{"name":"A"},"certificates":[{"issuer":""}]}"#,
                "$.certificates[0]",
                "missing field `name`",
            ),
        ];
        for (doc, expected_path, expected_reason) in cases {
            let (path, reason) = refusal(doc);
            assert_eq!(
                (path.as_str(), reason.as_str()),
                (expected_path, expected_reason),
                "{doc}"
            );
        }
    }

    #[test]
    fn name_and_company_may_not_disagree() {
        let same = r#"{"basics":{"name":"A"},"work":[{"name":"E","company":"E","position":"P"}]}"#;
        assert_eq!(
            Profile::from_document(same.as_bytes())
                .unwrap()
                .professional
                .work[0]
                .employer,
            "E"
        );
        let (path, reason) = refusal(
            r#"{"basics":{"name":"A"},"work":[{"name":"E","company":"F","position":"P"}]}"#,
        );
        assert_eq!(path, "$.work[0].company");
        assert!(reason.starts_with("both `name` and `company`"), "{reason}");
    }

    #[test]
    fn validation_errors_point_into_the_resume() {
        let (path, reason) = refusal(r#"{"basics":{"name":" "}}"#);
        assert_eq!(path, "$.basics.name");
        assert!(reason.starts_with("must not be empty"));
        let (path, _) = refusal(r#"{"basics":{"name":"A","email":"a.example.org"}}"#);
        assert_eq!(path, "$.basics.email");
        let long = "x".repeat(crate::profile::MAX_STRING_BYTES + 1);
        let (path, _) = refusal(&format!(
            r#"{{"basics":{{"name":"A"}},"work":[{{"name":"E","position":"P"}},{{"name":"E","position":"{long}"}}]}}"#
        ));
        assert_eq!(path, "$.work[1].position");
        let (path, _) = refusal(&format!(
            r#"{{"basics":{{"name":"A"}},"certificates":[{{"name":"C"}},{{"name":"C"}},{{"name":"{long}"}}]}}"#
        ));
        assert_eq!(path, "$.certificates[2].name");
        let (path, _) = refusal(&format!(
            r#"{{"basics":{{"name":"A","location":{{"postalCode":"{long}"}}}}}}"#
        ));
        assert_eq!(path, "$.basics.location.postalCode");
        let keywords: Vec<String> = (0..crate::profile::MAX_LIST_ITEMS)
            .map(|i| format!("k{i}"))
            .collect();
        let doc = serde_json::json!({"basics": {"name": "A"}, "skills": [{"name": "S", "keywords": keywords}]});
        let (path, reason) = refusal(&doc.to_string());
        assert_eq!(path, "$.skills");
        assert!(reason.ends_with("(keywords count as skills)"), "{reason}");
    }

    #[test]
    fn wrong_types_in_a_resume_name_the_resume_path() {
        let (path, reason) = refusal(r#"{"basics":{"name":"A","location":"Malmö"}}"#);
        assert_eq!(path, "$.basics.location");
        assert_eq!(reason, "wrong type: expected an object, found a string");
        let (path, reason) = refusal(
            r#"{"basics":{"name":"A"},"work":[{"name":"E","position":"P","highlights":"many"}]}"#,
        );
        assert_eq!(path, "$.work[0].highlights");
        assert_eq!(reason, "wrong type: expected an array, found a string");
    }
}
