//! Loading policy/: parse the schema and every `*.cedar` file, require `@id` and
//! `@description` on each policy, validate the set in strict mode, and hash it.
//!
//! Every refusal is an [`Error::InvalidPolicy`] that names the file and, where the parser or
//! validator gives one, the `line:column` of the problem, so that a deployer can fix the file
//! before the vault starts (DOMAIN.md §4: policy files are checked before they take effect).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::str::FromStr;

use cedar_policy::ffi::DetailedError;
use cedar_policy::{Effect, PolicyId, PolicySet, Schema, ValidationMode, Validator};

use crate::error::Error;

/// The file name of the schema inside a policy directory.
pub const SCHEMA_FILE: &str = "vault.cedarschema";

/// The policy files shipped with cvvault, schema first, then the `*.cedar` files by name.
/// `cvvault init` writes them to a new deployment's policy/ directory.
pub const DEFAULT_FILES: &[(&str, &str)] = &[
    (SCHEMA_FILE, include_str!("../../policy/vault.cedarschema")),
    (
        "assignment-kinds.cedar",
        include_str!("../../policy/assignment-kinds.cedar"),
    ),
    (
        "caseworker.cedar",
        include_str!("../../policy/caseworker.cedar"),
    ),
    ("dpo.cedar", include_str!("../../policy/dpo.cedar")),
    (
        "employer.cedar",
        include_str!("../../policy/employer.cedar"),
    ),
    (
        "forbid-dpo-reads.cedar",
        include_str!("../../policy/forbid-dpo-reads.cedar"),
    ),
    (
        "forbid-protected-identity.cedar",
        include_str!("../../policy/forbid-protected-identity.cedar"),
    ),
    (
        "forbid-special-categories.cedar",
        include_str!("../../policy/forbid-special-categories.cedar"),
    ),
    (
        "forbid-subject-access.cedar",
        include_str!("../../policy/forbid-subject-access.cedar"),
    ),
    (
        "provider.cedar",
        include_str!("../../policy/provider.cedar"),
    ),
    (
        "retention.cedar",
        include_str!("../../policy/retention.cedar"),
    ),
    ("subject.cedar", include_str!("../../policy/subject.cedar")),
];

/// Domain separation for [`policy_set_hash`]; bump the version if the encoding changes.
const HASH_DOMAIN: &[u8] = b"cvvault/policy-set/v1";

/// What the loader knows about one policy beyond its Cedar text.
#[derive(Clone, Debug)]
pub(crate) struct PolicyMeta {
    /// The `@description` annotation, in words a caseworker understands.
    pub(crate) description: String,
    /// The file the policy came from.
    pub(crate) file: String,
    /// Whether it permits or forbids.
    pub(crate) effect: Effect,
}

/// A parsed, annotated and strictly validated policy set.
pub(crate) struct Loaded {
    pub(crate) policies: PolicySet,
    pub(crate) schema: Schema,
    /// Keyed by policy id (the `@id` annotation).
    pub(crate) meta: HashMap<String, PolicyMeta>,
    pub(crate) hash: [u8; 32],
    /// The purposes the schema declares (`entity Purpose enum [...]`), in its order.
    pub(crate) purposes: Vec<String>,
}

/// Reads `dir/vault.cedarschema` and every `dir/*.cedar` (sorted by name) and loads them.
pub(crate) fn read_dir(dir: &Path) -> Result<(String, Vec<(String, String)>), Error> {
    if !dir.is_dir() {
        return Err(Error::InvalidPolicy {
            file: format!("{}/", dir.display()),
            position: None,
            message: "there is no policy folder here: point the vault at the folder that holds \
                      vault.cedarschema and the *.cedar files (--policy-dir, \
                      CVVAULT_POLICY_DIR), or restore that folder from version control; for a \
                      new vault, `cvvault init` writes the default policy files"
                .to_owned(),
        });
    }
    let schema_path = dir.join(SCHEMA_FILE);
    if !schema_path.is_file() {
        return Err(Error::InvalidPolicy {
            file: schema_path.display().to_string(),
            position: None,
            message: format!(
                "the policy schema {SCHEMA_FILE} is missing: every policy directory needs it; \
                 restore it from a backup or from the defaults that `cvvault init` writes"
            ),
        });
    }
    let schema = std::fs::read_to_string(&schema_path).map_err(|e| Error::io(&schema_path, e))?;

    let mut files = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("cedar") || !path.is_file() {
            continue;
        }
        let name = entry
            .file_name()
            .into_string()
            .map_err(|_| Error::InvalidPolicy {
                file: path.display().to_string(),
                position: None,
                message: "the file name is not valid UTF-8: rename the file".to_owned(),
            })?;
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        files.push((name, text));
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    Ok((schema, files))
}

/// Parses, checks and validates a schema and policy files given as `(file name, text)`.
pub(crate) fn load(schema_src: &str, files: &[(String, String)]) -> Result<Loaded, Error> {
    // INVARIANT: files are processed in name order, so the first error reported, the policy
    // order and the hash do not depend on the order the caller listed them in.
    let mut sorted: BTreeMap<&str, &str> = BTreeMap::new();
    for (name, text) in files {
        if name == SCHEMA_FILE {
            return Err(invalid(
                name,
                None,
                "the schema is given separately; it cannot also be a policy file",
            ));
        }
        if sorted.insert(name.as_str(), text.as_str()).is_some() {
            return Err(invalid(
                name,
                None,
                "two policy files have this name: rename one",
            ));
        }
    }
    if sorted.is_empty() {
        return Err(invalid(
            "policy/",
            None,
            "no *.cedar policy files: without them every request is denied; copy the defaults \
             that `cvvault init` writes",
        ));
    }

    let schema = parse_schema(schema_src)?;
    let purposes = declared_enum(schema_src, "Purpose")?;

    let mut policies = PolicySet::new();
    let mut meta: HashMap<String, PolicyMeta> = HashMap::new();
    for (&file, &text) in &sorted {
        let parsed = PolicySet::from_str(text).map_err(|e| diagnostic(file, text, &e))?;
        if parsed.templates().next().is_some() {
            return Err(invalid(
                file,
                None,
                "policy templates (?principal, ?resource) are not supported: write a static policy",
            ));
        }
        for policy in parsed.policies() {
            let position = policy
                .to_cedar()
                .and_then(|src| text.find(src.as_str()).map(|offset| line_col(text, offset)));
            let id = annotation(policy.annotation("id"));
            let description = annotation(policy.annotation("description"));
            let Some(id) = id else {
                return Err(invalid(
                    file,
                    position,
                    "a policy has no @id(\"...\"): give every policy a unique id, e.g. \
                     @id(\"employer-professional\"), so that decisions and the audit trail can \
                     name it",
                ));
            };
            if !valid_policy_id(id) {
                return Err(invalid(
                    file,
                    position,
                    format!(
                        "policy id `{}` is not allowed: use 1 to 64 lowercase letters, digits \
                         and `-`",
                        crate::ids::printable(id)
                    ),
                ));
            }
            let Some(description) = description else {
                return Err(invalid(
                    file,
                    position,
                    format!(
                        "policy {id} has no @description(\"...\"): say in plain words what it \
                         allows or forbids, so that decisions can be explained"
                    ),
                ));
            };
            if let Some(other) = meta.get(id) {
                return Err(invalid(
                    file,
                    position,
                    format!(
                        "policy id {id} is already used in {}: ids must be unique",
                        other.file
                    ),
                ));
            }
            let policy_id = PolicyId::from_str(id).map_err(|_| {
                invalid(
                    file,
                    position.clone(),
                    format!("policy id {id} is not usable"),
                )
            })?;
            policies
                .add(policy.new_id(policy_id))
                .map_err(|e| invalid(file, position.clone(), e.to_string()))?;
            meta.insert(
                id.to_owned(),
                PolicyMeta {
                    description: description.to_owned(),
                    file: file.to_owned(),
                    effect: policy.effect(),
                },
            );
        }
    }

    let validator = Validator::new(schema.clone());
    let result = validator.validate(&policies, ValidationMode::Strict);
    let errors: Vec<_> = result.validation_errors().collect();
    let warnings: Vec<_> = result.validation_warnings().collect();
    let problems: Vec<(&PolicyId, DetailedError)> = errors
        .iter()
        .map(|e| (e.policy_id(), DetailedError::from(*e)))
        .chain(
            warnings
                .iter()
                .map(|w| (w.policy_id(), DetailedError::from(*w))),
        )
        .collect();
    if let Some((policy_id, first)) = problems.first() {
        let policy_id = policy_id.to_string();
        let file = meta
            .get(&policy_id)
            .map(|m| m.file.clone())
            .unwrap_or_else(|| "policy/".to_owned());
        let text = sorted.get(file.as_str()).copied().unwrap_or_default();
        let more = problems.len().saturating_sub(1);
        return Err(from_detailed(&file, text, first, more, Some(&policy_id)));
    }

    let hash = policy_set_hash(schema_src, &sorted);
    Ok(Loaded {
        policies,
        schema,
        meta,
        hash,
        purposes,
    })
}

/// The values of `entity <name> enum [...]` in the schema: the schema is the one place a
/// closed vocabulary (purposes) is declared, and the vault reads it from there.
fn declared_enum(src: &str, name: &str) -> Result<Vec<String>, Error> {
    let missing = || {
        Error::InvalidPolicy {
        file: SCHEMA_FILE.to_owned(),
        position: None,
        message: format!(
            "the schema must declare `entity {name} enum [...]`, the purposes an assignment, an extract and a policy may name. A policy/ folder from before purposes were a vocabulary: take vault.cedarschema, employer.cedar, provider.cedar and assignment-kinds.cedar from this version's policy/ (or run `cvvault init` in an empty folder and copy them), then `cvvault policy check`"
        ),
    }
    };
    let (fragment, _) = cedar_policy::SchemaFragment::from_cedarschema_str(src)
        .map_err(|e| diagnostic(SCHEMA_FILE, src, &e))?;
    let json: serde_json::Value = fragment
        .to_json_string()
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .ok_or_else(missing)?;
    let values: Vec<String> = json
        .as_object()
        .into_iter()
        .flat_map(|namespaces| namespaces.values())
        .filter_map(|namespace| namespace.get("entityTypes")?.get(name)?.get("enum"))
        .filter_map(serde_json::Value::as_array)
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    if values.is_empty() {
        return Err(missing());
    }
    Ok(values)
}

fn parse_schema(src: &str) -> Result<Schema, Error> {
    let (schema, warnings) =
        Schema::from_cedarschema_str(src).map_err(|e| diagnostic(SCHEMA_FILE, src, &e))?;
    let warnings: Vec<DetailedError> = warnings.map(|w| DetailedError::from(&w)).collect();
    if let Some(first) = warnings.first() {
        return Err(from_detailed(
            SCHEMA_FILE,
            src,
            first,
            warnings.len().saturating_sub(1),
            None,
        ));
    }
    Ok(schema)
}

/// SHA-256 over a length-prefixed encoding of the schema and every policy file (name and
/// text, in name order), so that the same files give the same hash on every run and machine.
pub(crate) fn policy_set_hash(schema_src: &str, sorted: &BTreeMap<&str, &str>) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    let field = |ctx: &mut ring::digest::Context, bytes: &[u8]| {
        ctx.update(&(bytes.len() as u64).to_be_bytes());
        ctx.update(bytes);
    };
    field(&mut ctx, HASH_DOMAIN);
    ctx.update(&((sorted.len() as u64) + 1).to_be_bytes());
    field(&mut ctx, SCHEMA_FILE.as_bytes());
    field(&mut ctx, schema_src.as_bytes());
    for (name, text) in sorted {
        field(&mut ctx, name.as_bytes());
        field(&mut ctx, text.as_bytes());
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// An annotation value, or `None` when absent or blank.
fn annotation(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|v| !v.is_empty())
}

fn valid_policy_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn invalid(file: &str, position: Option<String>, message: impl Into<String>) -> Error {
    Error::InvalidPolicy {
        file: file.to_owned(),
        position,
        message: message.into(),
    }
}

/// Renders a Cedar diagnostic (parse or schema error) as [`Error::InvalidPolicy`].
fn diagnostic<'a, E>(file: &str, text: &str, err: &'a E) -> Error
where
    DetailedError: From<&'a E>,
{
    let detailed = DetailedError::from(err);
    let more = detailed.related.len();
    from_detailed(file, text, &detailed, more, None)
}

fn from_detailed(
    file: &str,
    text: &str,
    err: &DetailedError,
    more: usize,
    policy_id: Option<&str>,
) -> Error {
    let offset = err
        .source_locations
        .first()
        .or_else(|| err.related.iter().find_map(|r| r.source_locations.first()))
        .map(|label| label.loc.start);
    let mut message = match policy_id {
        Some(id) if !err.message.contains(&format!("`{id}`")) => {
            format!("in policy {id}: {}", err.message)
        }
        _ => err.message.clone(),
    };
    if let Some(help) = &err.help {
        message.push_str(" (");
        message.push_str(help);
        message.push(')');
    }
    if more > 0 {
        message.push_str(&format!(" (and {more} more problem(s))"));
    }
    invalid(file, offset.map(|o| line_col(text, o)), message)
}

/// `line:column`, both from 1, of a byte offset; columns count characters.
pub(crate) fn line_col(text: &str, offset: usize) -> String {
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end = end.saturating_sub(1);
    }
    let before = text.get(..end).unwrap_or_default();
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    format!("{line}:{column}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> (String, Vec<(String, String)>) {
        let schema = DEFAULT_FILES[0].1.to_owned();
        let files = DEFAULT_FILES[1..]
            .iter()
            .map(|(n, t)| (n.to_string(), t.to_string()))
            .collect();
        (schema, files)
    }

    fn with_file(name: &str, text: &str) -> (String, Vec<(String, String)>) {
        let (schema, mut files) = defaults();
        files.push((name.to_owned(), text.to_owned()));
        (schema, files)
    }

    fn refusal(schema: &str, files: &[(String, String)]) -> (String, Option<String>, String) {
        match load(schema, files) {
            Err(Error::InvalidPolicy {
                file,
                position,
                message,
            }) => (file, position, message),
            Err(other) => panic!("expected InvalidPolicy, got {other}"),
            Ok(_) => panic!("expected the policy set to be refused"),
        }
    }

    #[test]
    fn the_defaults_load_and_every_policy_is_described() {
        let (schema, files) = defaults();
        let loaded = load(&schema, &files).unwrap();
        assert_eq!(loaded.meta.len(), loaded.policies.policies().count());
        assert!(loaded.meta.len() >= 15);
        for (id, meta) in &loaded.meta {
            assert!(
                meta.description.ends_with('.'),
                "{id}: {}",
                meta.description
            );
        }
    }

    #[test]
    fn the_shipped_directory_matches_the_embedded_defaults() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("policy");
        let (schema, files) = read_dir(&dir).unwrap();
        let (embedded_schema, embedded_files) = defaults();
        assert_eq!(schema, embedded_schema);
        assert_eq!(
            files, embedded_files,
            "add new policy/*.cedar files to DEFAULT_FILES"
        );
    }

    #[test]
    fn a_misspelled_attribute_is_refused_with_file_and_position() {
        let text = "@id(\"typo\")\n@description(\"Typo.\")\npermit (principal is Employer, \
                    action == Action::\"read\", resource is Candidate)\nwhen { resource.protectd };\n";
        let (schema, files) = with_file("zz-typo.cedar", text);
        let (file, position, message) = refusal(&schema, &files);
        assert_eq!(file, "zz-typo.cedar");
        assert_eq!(position.as_deref(), Some("4:8"), "{message}");
        assert!(message.contains("protectd"), "{message}");
        assert!(message.contains("typo"), "names the policy: {message}");
    }

    #[test]
    fn a_type_error_is_refused_with_file_and_position() {
        let text = "// a comment line\n@id(\"type-error\")\n@description(\"Wrong type.\")\n\
                    forbid (principal, action == Action::\"read\", resource is Candidate)\n\
                    when { resource.protected == \"yes\" };\n";
        let (schema, files) = with_file("type-error.cedar", text);
        let (file, position, message) = refusal(&schema, &files);
        assert_eq!(file, "type-error.cedar");
        let position = position.expect("the validator gives a position");
        assert!(position.starts_with("5:"), "{position}: {message}");
    }

    #[test]
    fn a_misspelled_field_group_is_refused() {
        let text = "@id(\"group-typo\")\n@description(\"Typo.\")\nforbid (principal, action == \
                    Action::\"read\", resource is Candidate)\nwhen { context.group == \
                    FieldGroup::\"specail\" };\n";
        let (schema, files) = with_file("group-typo.cedar", text);
        let (file, position, message) = refusal(&schema, &files);
        assert_eq!(file, "group-typo.cedar");
        assert!(position.is_some_and(|p| p.starts_with("4:")), "{message}");
    }

    #[test]
    fn a_syntax_error_is_refused_with_file_and_position() {
        let text = "@id(\"broken\")\n@description(\"Broken.\")\npermit (principal, action, \
                    resource)\nwhen { resource.protected && };\n";
        let (schema, files) = with_file("broken.cedar", text);
        let (file, position, message) = refusal(&schema, &files);
        assert_eq!(file, "broken.cedar");
        assert!(position.is_some_and(|p| p.starts_with("4:")), "{message}");
    }

    #[test]
    fn a_schema_syntax_error_names_the_schema_file() {
        let (schema, files) = defaults();
        let broken = schema.replace("entity Vault;", "entity Vault {");
        let (file, position, _) = refusal(&broken, &files);
        assert_eq!(file, SCHEMA_FILE);
        assert!(position.is_some());
    }

    #[test]
    fn policies_without_id_or_description_or_with_a_duplicate_id_are_refused() {
        let (schema, files) =
            with_file("bare.cedar", "\n\npermit (principal, action, resource);\n");
        let (file, position, message) = refusal(&schema, &files);
        assert_eq!(file, "bare.cedar");
        assert_eq!(position.as_deref(), Some("3:1"));
        assert!(message.contains("@id"), "{message}");

        let (schema, files) = with_file(
            "nodesc.cedar",
            "@id(\"x\")\npermit (principal, action, resource);\n",
        );
        let (_, _, message) = refusal(&schema, &files);
        assert!(message.contains("@description"), "{message}");

        let (schema, files) = with_file(
            "dup.cedar",
            "@id(\"caseworker-register\")\n@description(\"Dup.\")\npermit (principal, action, resource);\n",
        );
        let (file, _, message) = refusal(&schema, &files);
        assert_eq!(file, "dup.cedar");
        assert!(message.contains("caseworker.cedar"), "{message}");

        let (schema, files) = with_file(
            "bad-id.cedar",
            "@id(\"Has Spaces\")\n@description(\"x.\")\npermit (principal, action, resource);\n",
        );
        let (_, _, message) = refusal(&schema, &files);
        assert!(message.contains("not allowed"), "{message}");
    }

    #[test]
    fn templates_duplicate_names_and_an_empty_set_are_refused() {
        let (schema, files) = with_file(
            "template.cedar",
            "@id(\"t\")\n@description(\"T.\")\npermit (principal == ?principal, action, resource);\n",
        );
        let (_, _, message) = refusal(&schema, &files);
        assert!(message.contains("template"), "{message}");

        let (schema, mut files) = defaults();
        files.push(files[0].clone());
        let (_, _, message) = refusal(&schema, &files);
        assert!(message.contains("two policy files"), "{message}");

        let (_, _, message) = refusal(&schema, &[]);
        assert!(message.contains("no *.cedar"), "{message}");
    }

    #[test]
    fn a_missing_directory_or_schema_says_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        match read_dir(&missing) {
            Err(Error::InvalidPolicy { message, .. }) => assert!(message.contains("cvvault init")),
            _ => panic!("expected a refusal"),
        }
        std::fs::write(dir.path().join("caseworker.cedar"), DEFAULT_FILES[1].1).unwrap();
        match read_dir(dir.path()) {
            Err(Error::InvalidPolicy { file, message, .. }) => {
                assert!(file.ends_with(SCHEMA_FILE), "{file}");
                assert!(message.contains("missing"), "{message}");
            }
            _ => panic!("expected a refusal"),
        }
    }

    #[test]
    fn line_col_counts_lines_and_characters_from_one() {
        assert_eq!(line_col("abc", 0), "1:1");
        assert_eq!(line_col("ab\ncd", 3), "2:1");
        assert_eq!(line_col("ab\nåd", 5), "2:2");
        assert_eq!(line_col("ab", 99), "1:3");
    }
}
