//! Unit tests of profile parsing, validation and serialization.

use super::*;
use crate::error::Error;
use crate::vocabulary::FieldGroup;
use proptest::prelude::*;
use zeroize::Zeroizing;

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

fn err_of(result: crate::error::Result<Profile>) -> (String, String) {
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

    let (path, reason) = parse_err(r#"{"identity":{"name":"A"},"professional":{"licences":"B"}}"#);
    assert_eq!(path, "$.professional.licences");
    assert_eq!(reason, "wrong type: expected an array, found a string");

    let (path, reason) = parse_err(r#"{"identity":{"name":"A"},"control":{"protected":"yes"}}"#);
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

    // An empty document says so (it used to be "malformed JSON at line 1 column 0").
    for empty in ["", " \n\t"] {
        let (path, reason) = parse_err(empty);
        assert_eq!(path, "$");
        assert!(reason.starts_with("the document is empty"), "{reason}");
    }
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
    ("[A-Za-z0-9]{8,16}", ".{0,8}", ".{0,8}")
        .prop_map(|(core, before, after)| (format!("Q{core}"), format!("{before}Q{core}{after}")))
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
        format!(r#"{{"basics":{{"name":"A"}},"work":[{{"name":"E","position":{{"x":{v}}}}}]}}"#),
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
