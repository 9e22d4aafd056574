//! The `cvvault` binary: set-up, unlocking, bad input and exit codes, and interoperability
//! with the `age` command-line tool.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::Path;
use std::process::Command;

use common::{cvvault, cvvault_env, stderr, stdout};

fn init(root: &Path) {
    let out = cvvault(root, &["init"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

fn code(out: &std::process::Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

fn setup_principals(root: &Path) {
    common::add_principals(
        root,
        &[
            ("cw", "caseworker", "agency"),
            ("emp", "employer", "emp-org"),
            ("coach", "provider", "coach-org"),
            ("dpo", "dpo", "agency"),
        ],
    );
}

fn add_candidate(root: &Path, doc: &str) -> String {
    let file = root.join("profile.json");
    std::fs::write(&file, doc).unwrap();
    let out = cvvault(
        root,
        &["candidate", "add", file.to_str().unwrap(), "--as", "cw"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out).trim().to_owned()
}

const PROFILE: &str = r#"{"identity":{"name":"Amani Haile","birth_year":1991},
 "contact":{"email":"amani@example.org"},
 "professional":{"headline":"Undersköterska CLIMARKER","skills":[{"name":"omvårdnad"}]},
 "special":{"nationality":"Eritrea","asylum_status":"permanent residence permit"},
 "control":{"protected":false,"consents":{"employer_contact":true}}}"#;

fn age_or_fail() {
    assert!(
        common::age_cli(),
        "the `age` command-line tool is required by this test: apt-get install age (.ci/run installs it)"
    );
}

#[test]
fn init_creates_a_keyring_the_age_tool_decrypts_and_refuses_to_overwrite() {
    age_or_fail();
    let dir = tempfile::tempdir().unwrap();
    init(dir.path());
    let identity = dir.path().join("keys/identity.txt");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&identity).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let out = Command::new("age")
        .args([
            "-d",
            "-i",
            identity.to_str().unwrap(),
            dir.path().join("keys/keyring.age").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "age -d: {}", stderr(&out));
    let keyring: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(keyring["format"], "cvvault-keyring/v1");
    assert_eq!(keyring["keks"][0]["version"], 1);
    // A second init refuses and changes nothing.
    let before = std::fs::read(dir.path().join("keys/keyring.age")).unwrap();
    let again = cvvault(dir.path(), &["init"]);
    assert_eq!(code(&again), 10, "{}", stderr(&again));
    assert!(stderr(&again).contains("refusing to overwrite"));
    assert_eq!(
        before,
        std::fs::read(dir.path().join("keys/keyring.age")).unwrap()
    );
}

#[test]
fn unlock_failures_each_have_their_message_and_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    // Missing keyring.
    let out = cvvault(root, &["keys", "status"]);
    assert_eq!(code(&out), 11, "{}", stderr(&out));
    assert!(stderr(&out).contains("run `cvvault init` first"));

    // Passphrase vault: wrong passphrase, then the right one.
    let pass = [("CVVAULT_PASSPHRASE", "correct horse battery staple")];
    let out = cvvault_env(root, &["init", "--passphrase"], &pass);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!root.join("keys/identity.txt").exists());
    let wrong = cvvault_env(
        root,
        &["keys", "status"],
        &[("CVVAULT_PASSPHRASE", "not the passphrase at all")],
    );
    assert_eq!(code(&wrong), 12, "{}", stderr(&wrong));
    assert!(stderr(&wrong).contains("wrong passphrase"));
    let ok = cvvault_env(root, &["keys", "status"], &pass);
    assert!(ok.status.success(), "{}", stderr(&ok));
    let no_pass = cvvault(root, &["keys", "status"]);
    assert_eq!(code(&no_pass), 13, "{}", stderr(&no_pass));
    assert!(stderr(&no_pass).contains("CVVAULT_PASSPHRASE"));

    // Identity vault: a foreign identity, a missing identity, a corrupt keyring.
    let dir2 = tempfile::tempdir().unwrap();
    let root2 = dir2.path();
    init(root2);
    let foreign = root2.join("foreign.txt");
    let identity = age::x25519::Identity::generate();
    std::fs::write(
        &foreign,
        format!(
            "{}\n",
            age::secrecy::ExposeSecret::expose_secret(&identity.to_string())
        ),
    )
    .unwrap();
    let out = cvvault_env(
        root2,
        &["keys", "status"],
        &[("CVVAULT_IDENTITY", foreign.to_str().unwrap())],
    );
    assert_eq!(code(&out), 13, "{}", stderr(&out));
    assert!(stderr(&out).contains("cannot open the keyring"));
    let out = cvvault_env(
        root2,
        &["keys", "status"],
        &[("CVVAULT_IDENTITY", "/nonexistent/identity.txt")],
    );
    assert_eq!(code(&out), 13);
    assert!(stderr(&out).contains("no usable age identity"));
    let keyring = root2.join("keys/keyring.age");
    let mut bytes = std::fs::read(&keyring).unwrap();
    let n = bytes.len();
    bytes[n - 20] ^= 0xff;
    std::fs::write(&keyring, &bytes).unwrap();
    let out = cvvault(root2, &["keys", "status"]);
    assert_eq!(code(&out), 14, "{}", stderr(&out));
    assert!(stderr(&out).contains("corrupt"));
    std::fs::write(&keyring, b"not an age file").unwrap();
    assert_eq!(code(&cvvault(root2, &["keys", "status"])), 14);
}

#[test]
fn bad_input_gets_a_clear_message_and_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    init(root);
    setup_principals(root);
    let file = root.join("bad.json");
    let cases: &[(&str, i32, &str)] = &[
        (
            r#"{"identity":{"name":"A"},"extra":1}"#,
            65,
            "unknown field",
        ),
        (
            r#"{"identity":{"name":"A","birth_year":"x"}}"#,
            65,
            "$.identity.birth_year",
        ),
        (r#"{"identity":{"name":"A""#, 65, "malformed JSON"),
        (r#"[1,2]"#, 65, ""),
    ];
    for (doc, expected, message) in cases {
        std::fs::write(&file, doc).unwrap();
        let out = cvvault(
            root,
            &["candidate", "add", file.to_str().unwrap(), "--as", "cw"],
        );
        assert_eq!(code(&out), *expected, "{doc}: {}", stderr(&out));
        assert!(stderr(&out).contains(message), "{doc}: {}", stderr(&out));
    }
    let out = cvvault(root, &["candidate", "add", file.to_str().unwrap()]);
    assert_eq!(code(&out), 65);
    assert!(stderr(&out).contains("--as"), "{}", stderr(&out));
    let out = cvvault(
        root,
        &[
            "candidate",
            "show",
            "not-a-uuid",
            "--as",
            "cw",
            "--purpose",
            "coaching",
        ],
    );
    assert_eq!(code(&out), 65);
    assert!(stderr(&out).contains("not a valid candidate id"));
    let out = cvvault(
        root,
        &[
            "candidate",
            "show",
            "0b6f2c6e-8a4e-4f55-9c43-6f1d2b7a9e10",
            "--as",
            "emp",
            "--purpose",
            "recruitment",
        ],
    );
    assert_eq!(code(&out), 4, "{}", stderr(&out));
    let out = cvvault(
        root,
        &["candidate", "add", file.to_str().unwrap(), "--as", "nobody"],
    );
    assert_eq!(code(&out), 65);
    assert!(stderr(&out).contains("unknown principal"));
    let out = cvvault(
        root,
        &["principal", "add", "x", "--role", "king", "--org", "o"],
    );
    assert_eq!(code(&out), 65);
    assert!(stderr(&out).contains("unknown role"));
    let out = cvvault(
        root,
        &["candidate", "add", file.to_str().unwrap(), "--as", "emp"],
    );
    assert_eq!(
        code(&out),
        3,
        "policy decides before the document is read: {}",
        stderr(&out)
    );
    std::fs::write(&file, PROFILE).unwrap();
    let out = cvvault(
        root,
        &["candidate", "add", file.to_str().unwrap(), "--as", "emp"],
    );
    assert_eq!(
        code(&out),
        3,
        "employers may not register: {}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("denied by policy"));
    // A closed-assignment step that is wrong.
    let id = add_candidate(root, PROFILE);
    let out = cvvault(
        root,
        &[
            "assignment",
            "open",
            "--candidate",
            &id,
            "--org",
            "nowhere",
            "--kind",
            "matching",
            "--purpose",
            "recruitment",
            "--as",
            "cw",
        ],
    );
    assert_eq!(code(&out), 65);
    assert!(stderr(&out).contains("unknown organisation"));
}

#[test]
fn import_reports_every_bad_line_in_both_modes() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    init(root);
    setup_principals(root);
    let file = root.join("batch.ndjson");
    let good = PROFILE.replace('\n', "");
    std::fs::write(
        &file,
        format!("{good}\n{{\"identity\":{{}}}}\n{good}\n\n{{oops\n"),
    )
    .unwrap();
    let file_arg = file.to_str().unwrap();
    let out = cvvault(
        root,
        &[
            "candidate",
            "import",
            file_arg,
            "--all-or-nothing",
            "--as",
            "cw",
        ],
    );
    assert_eq!(code(&out), 65, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("nothing imported") && err.contains("line 2:") && err.contains("line 5:"),
        "{err}"
    );
    assert!(!err.contains("line 1:") && !err.contains("line 3:"));
    // The default: good lines in, bad ones reported with the command that re-imports them.
    let out = cvvault(root, &["candidate", "import", file_arg, "--as", "cw"]);
    assert_eq!(code(&out), 65, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("imported 2 candidates") && err.contains("--only-lines 2,5"),
        "{err}"
    );
    std::fs::write(&file, format!("{good}\n{good}\n")).unwrap();
    let out = cvvault(
        root,
        &[
            "--json",
            "candidate",
            "import",
            file.to_str().unwrap(),
            "--as",
            "cw",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(report["imported"], 2);
    let out = cvvault(root, &["--json", "keys", "status"]);
    let status: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        status["deks_per_version"],
        serde_json::json!([[1, 4]]),
        "2 from the default run, 2 from the clean file"
    );
}

#[test]
fn an_extract_to_a_file_is_encrypted_to_the_employer_and_holds_only_permitted_groups() {
    age_or_fail();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    init(root);
    setup_principals(root);
    let id = add_candidate(root, PROFILE);
    let out = cvvault(
        root,
        &[
            "assignment",
            "open",
            "--candidate",
            &id,
            "--org",
            "emp-org",
            "--kind",
            "matching",
            "--purpose",
            "recruitment",
            "--as",
            "cw",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    // The employer's own key pair; only its public half is registered with the vault.
    let keygen = Command::new("age-keygen")
        .arg("-o")
        .arg(root.join("emp-identity.txt"))
        .output()
        .unwrap();
    assert!(keygen.status.success());
    let public = String::from_utf8_lossy(&keygen.stderr)
        .trim()
        .trim_start_matches("Public key: ")
        .to_owned();
    let out_file = root.join("extract.age");
    let out = cvvault(
        root,
        &[
            "extract",
            "--candidate",
            &id,
            "--purpose",
            "recruitment",
            "--out",
            out_file.to_str().unwrap(),
            "--as",
            "emp",
        ],
    );
    assert_eq!(
        code(&out),
        65,
        "no recipient registered yet: {}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("keys/recipients/emp.txt"),
        "{}",
        stderr(&out)
    );
    std::fs::create_dir_all(root.join("keys/recipients")).unwrap();
    std::fs::write(root.join("keys/recipients/emp.txt"), format!("{public}\n")).unwrap();
    let out = cvvault(
        root,
        &[
            "extract",
            "--candidate",
            &id,
            "--purpose",
            "recruitment",
            "--out",
            out_file.to_str().unwrap(),
            "--as",
            "emp",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let sealed = std::fs::read(&out_file).unwrap();
    assert!(!common::contains(&sealed, b"CLIMARKER"));
    let plain = Command::new("age")
        .args([
            "-d",
            "-i",
            root.join("emp-identity.txt").to_str().unwrap(),
            out_file.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(plain.status.success(), "age -d: {}", stderr(&plain));
    let json: serde_json::Value = serde_json::from_slice(&plain.stdout).unwrap();
    let mut groups: Vec<&String> = json["groups"].as_object().unwrap().keys().collect();
    groups.sort();
    assert_eq!(groups, ["contact", "identity", "professional"]);
    assert!(json["groups"]["professional"]["headline"]
        .as_str()
        .unwrap()
        .contains("CLIMARKER"));
    assert!(
        !String::from_utf8_lossy(&plain.stdout).contains("Eritrea"),
        "special never reaches an employer"
    );
}

#[test]
fn policy_check_and_explain() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    init(root);
    setup_principals(root);
    let out = cvvault(root, &["policy", "check"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("is valid"));
    let id = add_candidate(root, PROFILE);
    cvvault(
        root,
        &[
            "assignment",
            "open",
            "--candidate",
            &id,
            "--org",
            "emp-org",
            "--kind",
            "matching",
            "--purpose",
            "recruitment",
            "--as",
            "cw",
        ],
    );
    let out = cvvault(
        root,
        &[
            "policy",
            "explain",
            "--candidate",
            &id,
            "--purpose",
            "recruitment",
            "--as",
            "emp",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("may see professional") && text.contains("special-never-to-employer"),
        "{text}"
    );
    // A valid permit that only the forbid files hold back: a warning, and with --strict a
    // failure, naming the policy and what to add.
    std::fs::write(
        root.join("policy/wide.cedar"),
        "@id(\"coach-reads-all\")\n@description(\"Too wide.\")\npermit (principal is Provider, action == Action::\"read\", resource is Candidate) when { resource.coaching_orgs.contains(principal.org) };\n",
    )
    .unwrap();
    let out = cvvault(root, &["policy", "check"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("warning: coach-reads-all (wide.cedar)")
            && text.contains("!resource.protected")
            && text.contains("with 1 warning(s)"),
        "{text}"
    );
    let out = cvvault(root, &["policy", "check", "--strict"]);
    assert_eq!(code(&out), 15, "{}", stdout(&out));
    assert!(
        stdout(&out).contains("--strict makes them fail"),
        "{}",
        stdout(&out)
    );
    std::fs::remove_file(root.join("policy/wide.cedar")).unwrap();
    let out = cvvault(root, &["policy", "check", "--strict"]);
    assert!(
        out.status.success(),
        "the shipped policy passes --strict: {}",
        stdout(&out)
    );
    std::fs::write(
        root.join("policy/broken.cedar"),
        "permit(principal, action, resource) when { resource.nope };",
    )
    .unwrap();
    let out = cvvault(root, &["policy", "check"]);
    assert_eq!(code(&out), 15, "{}", stderr(&out));
    assert!(stderr(&out).contains("broken.cedar"), "{}", stderr(&out));
    let out = cvvault(root, &["keys", "status"]);
    assert_eq!(
        code(&out),
        15,
        "the vault refuses to start on an invalid policy"
    );
}

#[test]
fn rotation_through_the_binary_keeps_every_record_readable() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    init(root);
    setup_principals(root);
    let id = add_candidate(root, PROFILE);
    cvvault(
        root,
        &[
            "assignment",
            "open",
            "--candidate",
            &id,
            "--org",
            "coach-org",
            "--kind",
            "coaching",
            "--purpose",
            "coaching",
            "--as",
            "cw",
        ],
    );
    let out = cvvault(root, &["--json", "keys", "rotate"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(report["new_version"], 2);
    let out = cvvault(root, &["--json", "keys", "status"]);
    let status: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(status["keyring_versions"], serde_json::json!([2]));
    assert_eq!(status["deks_per_version"], serde_json::json!([[2, 1]]));
    let out = cvvault(
        root,
        &[
            "candidate",
            "show",
            &id,
            "--purpose",
            "coaching",
            "--as",
            "coach",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("CLIMARKER"));
}

#[test]
fn help_explains_every_command() {
    let out = Command::new(env!("CARGO_BIN_EXE_cvvault"))
        .arg("--help")
        .output()
        .unwrap();
    let text = stdout(&out);
    for command in [
        "init",
        "candidate",
        "principal",
        "assignment",
        "extract",
        "policy",
        "keys",
        "audit",
        "retention",
        "demo",
    ] {
        assert!(text.contains(command), "--help lists {command}");
    }
    assert!(text.contains("Exit codes"));
}

#[test]
fn init_with_an_existing_identity_and_a_recovery_recipient() {
    age_or_fail();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let own = root.join("own-identity.txt");
    let recovery = root.join("recovery-identity.txt");
    for file in [&own, &recovery] {
        assert!(Command::new("age-keygen")
            .arg("-o")
            .arg(file)
            .output()
            .unwrap()
            .status
            .success());
    }
    let recovery_public = Command::new("age-keygen")
        .arg("-y")
        .arg(&recovery)
        .output()
        .unwrap();
    let recovery_public = stdout(&recovery_public).trim().to_owned();
    let out = cvvault(
        root,
        &[
            "init",
            "--identity",
            own.to_str().unwrap(),
            "--recovery-recipient",
            &recovery_public,
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        !root.join("keys/identity.txt").exists(),
        "no identity is generated"
    );
    // Both the operator's identity and the recovery identity open the keyring.
    for identity in [&own, &recovery] {
        let out = cvvault_env(
            root,
            &["keys", "status"],
            &[("CVVAULT_IDENTITY", identity.to_str().unwrap())],
        );
        assert!(
            out.status.success(),
            "{}: {}",
            identity.display(),
            stderr(&out)
        );
    }
    let bad = cvvault(
        &root.join("other"),
        &["init", "--recovery-recipient", "age1notakey"],
    );
    assert_eq!(code(&bad), 65, "{}", stderr(&bad));
    assert!(stderr(&bad).contains("not an age X25519 recipient"));
}

#[test]
fn one_exit_code_table_for_help_main_and_the_readme() {
    // The table lived in three places (error.rs, `--help`, README) and drifted.
    let help = cvvault_bin_help();
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let listed: Vec<(u8, String)> = readme
        .lines()
        .skip_while(|l| !l.starts_with("| code | meaning |"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split(" | ").map(str::trim).collect();
            (cells[0].parse().unwrap(), cells[1].to_owned())
        })
        .collect();
    let table: Vec<(u8, String)> = cvvault::error::EXIT_CODES
        .iter()
        .map(|(c, m)| (*c, (*m).to_owned()))
        .collect();
    assert_eq!(listed, table, "README's exit-code table is the library's");
    for (code, meaning) in cvvault::error::EXIT_CODES {
        assert!(
            help.contains(&format!("{code:>3}  {meaning}")),
            "--help lacks {code}: {help}"
        );
    }
    // Every error the library returns maps to a code in the table.
    let samples = [
        cvvault::Error::invalid_input("x"),
        cvvault::Error::NotFound { what: "candidate" },
        cvvault::Error::Conflict("x".into()),
        cvvault::Error::Unauthenticated,
        cvvault::Error::DecryptionFailed,
        cvvault::Error::AuditTampered("x".into()),
        cvvault::Error::Forged {
            table: "tokens",
            row: "x".into(),
        },
        cvvault::Error::RotationLocked { path: "k".into() },
        cvvault::Error::UnsupportedMediaType {
            expected: "application/json",
        },
        cvvault::Error::WrongPassphrase,
    ];
    for error in samples {
        let code = error.exit_code();
        assert!(
            cvvault::error::EXIT_CODES.iter().any(|(c, _)| *c == code),
            "{error}: exit {code} is not in the table"
        );
    }
}

fn cvvault_bin_help() -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cvvault"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn library_errors_name_no_flag_or_command_and_the_cli_adds_its_next_step() {
    // Before: HTTP clients were told about `--reason` and `cvvault hold release`. The library
    // says what is wrong; each edge says what to do (here: the CLI's `next:` line).
    use cvvault::Error;
    let path = std::path::PathBuf::from("/srv/vault/keys/recipients/hr.txt");
    let errors = [
        Error::VaultExists { path: path.clone() },
        Error::KeyringMissing { path: path.clone() },
        Error::DatabaseMissing { path: path.clone() },
        Error::LegalHold,
        Error::BadReason {
            saying: "naming the legal ground",
        },
        Error::UnknownOrg {
            org: "acme-ab".into(),
        },
        Error::UnknownPrincipal {
            principal: "hr".into(),
        },
        Error::NoRecipient {
            principal: "hr".into(),
            path: path.clone(),
        },
        Error::PrincipalDisabled {
            principal: "hr".into(),
        },
        Error::Unauthenticated,
        Error::Corrupt { what: "a row" },
        Error::Forged {
            table: "assignments",
            row: "x".into(),
        },
    ];
    for error in &errors {
        let text = error.to_string();
        assert!(!text.contains("--"), "a flag in: {text}");
        assert!(!text.contains("`cvvault"), "a command in: {text}");
        let step = cvvault::cli::next_step(error);
        if !matches!(error, Error::Unauthenticated) {
            assert!(
                step.as_deref()
                    .is_some_and(|s| s.contains("cvvault") || s.contains("--")),
                "no CLI next step for: {text}"
            );
        }
    }
}

#[test]
fn the_document_format_is_printed_and_the_readme_example_is_a_valid_document() {
    // Before: the vault's own document format was documented nowhere.
    let out = cvvault(
        tempfile::tempdir().unwrap().path(),
        &["candidate", "schema"],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let schema: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(schema["additionalProperties"], false);
    assert_eq!(schema["required"], serde_json::json!(["identity"]));
    for group in ["identity", "contact", "professional", "special", "control"] {
        assert!(schema["properties"][group].is_object(), "{group}");
    }
    // The README's example, exactly as printed there, is a document the vault accepts.
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let example = readme
        .split("<!-- profile-example -->\n```json\n")
        .nth(1)
        .and_then(|rest| rest.split("\n```").next())
        .expect("README has the profile example");
    let profile = cvvault::profile::Profile::from_document(example.as_bytes()).unwrap();
    assert!(profile.control.consents.employer_contact);
    assert!(!profile.control.protected);
    assert_eq!(profile.special.nationality.as_deref(), Some("Somali"));
}

#[test]
fn update_find_and_an_idempotent_import_through_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    init(root);
    setup_principals(root);
    let file = root.join("people.ndjson");
    std::fs::write(
        &file,
        concat!(
            r#"{"identity": {"name": "Line One"}, "agency_reference": "AF-1"}"#,
            "\n",
            r#"{"identity": {"name": "No Reference"}}"#,
            "\n",
        ),
    )
    .unwrap();
    let file_arg = file.to_str().unwrap();
    let out = cvvault(root, &["candidate", "import", file_arg, "--as", "cw"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("1 candidate(s) were registered without an agency_reference")
            && err.contains("people.ndjson.results.csv"),
        "{err}"
    );
    let results = std::fs::read_to_string(root.join("people.ndjson.results.csv")).unwrap();
    let rows: Vec<&str> = results.lines().collect();
    assert_eq!(rows[0], "line,agency_reference,status,candidate_id,error");
    assert!(rows[1].starts_with("1,AF-1,registered,"), "{results}");
    assert!(rows[2].starts_with("2,,registered,"), "{results}");

    // Found again by its reference: exactly the id of the result file.
    let out = cvvault(root, &["candidate", "find", "--ref", "AF-1", "--as", "cw"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let id = stdout(&out).trim().to_owned();
    assert!(rows[1].contains(&id), "{results}");
    let out = cvvault(root, &["candidate", "find", "--ref", "AF-1", "--as", "emp"]);
    assert_eq!(code(&out), 4, "{}", stderr(&out));

    // Run again: the referenced line is skipped and says so.
    let out = cvvault(root, &["candidate", "import", file_arg, "--as", "cw"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("1 line(s) name an agency reference that is already registered"),
        "{}",
        stderr(&out)
    );
    // The first run's result file (the only record of the id without a reference) is kept;
    // this run's goes beside it.
    let first = std::fs::read_to_string(root.join("people.ndjson.results.csv")).unwrap();
    assert!(
        first.contains(&format!("1,AF-1,registered,{id},")),
        "{first}"
    );
    let results = std::fs::read_to_string(root.join("people.ndjson.results-2.csv")).unwrap();
    assert!(
        results.contains(&format!("1,AF-1,already_registered,{id},")),
        "{results}"
    );
    // A result file that cannot be written stops the import before anyone is registered.
    let before = cvvault(root, &["--json", "keys", "status"]);
    let out = cvvault(
        root,
        &[
            "candidate",
            "import",
            file_arg,
            "--results",
            "/nonexistent-folder/r.csv",
            "--as",
            "cw",
        ],
    );
    assert_eq!(code(&out), 74, "{}", stderr(&out));
    let after = cvvault(root, &["--json", "keys", "status"]);
    let deks = |out: &std::process::Output| {
        serde_json::from_str::<serde_json::Value>(&stdout(out)).unwrap()["deks_per_version"].clone()
    };
    assert_eq!(deks(&before), deks(&after), "nothing was registered");
    // Nor does a named one replace an earlier run's.
    let out = cvvault(
        root,
        &[
            "candidate",
            "import",
            file_arg,
            "--results",
            root.join("people.ndjson.results.csv").to_str().unwrap(),
            "--as",
            "cw",
        ],
    );
    assert_eq!(code(&out), 65, "{}", stderr(&out));
    assert!(stderr(&out).contains("exists already"), "{}", stderr(&out));

    // Registering the reference by hand is refused with where to go instead.
    let doc = root.join("one.json");
    std::fs::write(&doc, r#"{"identity": {"name": "Line One"}}"#).unwrap();
    let doc_arg = doc.to_str().unwrap();
    let out = cvvault(
        root,
        &["candidate", "add", doc_arg, "--ref", "AF-1", "--as", "cw"],
    );
    assert_eq!(code(&out), 5, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("candidate find --ref"),
        "{}",
        stderr(&out)
    );

    // Update one group, by the caseworker; the employer is told "not found".
    std::fs::write(&doc, r#"{"contact": {"phone": "+46 70 555 55 55"}}"#).unwrap();
    let out = cvvault(root, &["candidate", "update", &id, doc_arg, "--as", "cw"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), format!("updated {id}: contact"));
    let out = cvvault(
        root,
        &[
            "candidate",
            "update",
            &id,
            doc_arg,
            "--group",
            "special",
            "--as",
            "cw",
        ],
    );
    assert_eq!(code(&out), 65, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("holds no special group"),
        "{}",
        stderr(&out)
    );
    let out = cvvault(root, &["candidate", "update", &id, doc_arg, "--as", "emp"]);
    assert_eq!(code(&out), 4, "{}", stderr(&out));
}

#[test]
fn the_readme_walkthrough_runs_as_written_on_a_fresh_vault() {
    // The README's walkthrough is a script; it is run here exactly as it stands, with the
    // built binary first on PATH, in an empty folder, stopping at the first failing command.
    age_or_fail();
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let script = readme
        .split("<!-- walkthrough -->\n```sh\n")
        .nth(1)
        .and_then(|rest| rest.split("\n```").next())
        .expect("README has the walkthrough");
    let dir = tempfile::tempdir().unwrap();
    let bin = Path::new(env!("CARGO_BIN_EXE_cvvault")).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", script])
        .current_dir(dir.path())
        .env("PATH", path)
        .env_remove("CVVAULT_KEYS_DIR")
        .env_remove("CVVAULT_DATA_DIR")
        .env_remove("CVVAULT_POLICY_DIR")
        .env_remove("CVVAULT_PASSPHRASE")
        .env_remove("CVVAULT_IDENTITY")
        .env_remove("CVVAULT_PRINCIPAL")
        .output()
        .unwrap();
    let (out_text, err_text) = (stdout(&out), stderr(&out));
    assert!(
        out.status.success(),
        "the walkthrough stopped ({:?}):\n{out_text}\n{err_text}",
        out.status
    );
    // What each step promises: the employer's decrypted extract holds the updated contact
    // group (consent given) and never the control group; the trail verifies.
    assert!(out_text.contains("+46 70 123 45 67"), "{out_text}");
    assert!(!out_text.contains("employer_contact"), "{out_text}");
    assert!(
        out_text.to_lowercase().contains("verified") || out_text.contains("ok"),
        "{out_text}"
    );
    assert!(dir.path().join("cv.age").exists());
}

#[test]
fn wrong_steps_are_refused_with_what_to_do_next() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    init(root);
    setup_principals(root);
    // An empty document says so, not "malformed JSON at line 1 column 0".
    let empty = root.join("empty.json");
    std::fs::write(&empty, "\n").unwrap();
    let out = cvvault(
        root,
        &["candidate", "add", empty.to_str().unwrap(), "--as", "cw"],
    );
    assert_eq!(code(&out), 65);
    assert!(
        stderr(&out).contains("the document is empty"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("column 0"), "{}", stderr(&out));
    // An employer's "not found" says whom to ask (the same words whatever the id).
    let out = cvvault(
        root,
        &[
            "extract",
            "--candidate",
            &cvvault::ids::CandidateId::random().to_string(),
            "--purpose",
            "recruitment",
            "--as",
            "emp",
        ],
    );
    assert_eq!(code(&out), 4);
    assert!(
        stderr(&out).contains("ask the agency's caseworker"),
        "{}",
        stderr(&out)
    );
    // A DPO's refused read names the policy that decided it, not the control group's.
    let id = add_candidate(root, PROFILE);
    let out = cvvault(
        root,
        &[
            "extract",
            "--candidate",
            &id,
            "--purpose",
            "recruitment",
            "--as",
            "dpo",
        ],
    );
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("dpo-never-reads-profiles")
            && !stderr(&out).contains("control-never-read"),
        "{}",
        stderr(&out)
    );
    // A refusal by policy names the roles policy lets do it, and the next step.
    let out = cvvault(
        root,
        &["candidate", "add", empty.to_str().unwrap(), "--as", "emp"],
    );
    assert_eq!(code(&out), 3);
    assert!(
        stderr(&out).contains("Policy lets a caseworker do this")
            && stderr(&out).contains("next: act as a principal of a role"),
        "{}",
        stderr(&out)
    );
    // A file that is not there says where it was looked for.
    let out = cvvault(root, &["candidate", "add", "nope.json", "--as", "cw"]);
    assert_eq!(code(&out), 74);
    assert!(
        stderr(&out).contains("nope.json")
            && stderr(&out).contains("a relative path is read from the folder you are in"),
        "{}",
        stderr(&out)
    );
    // A lost keyring beside an existing database: restore it, do not init.
    std::fs::rename(root.join("keys/keyring.age"), root.join("keyring.backup")).unwrap();
    let out = cvvault(root, &["keys", "status"]);
    assert_eq!(code(&out), 11);
    let err = stderr(&out);
    assert!(
        err.contains("restore the keyring from its backup")
            && err.contains("Do not run `cvvault init`"),
        "{err}"
    );
    std::fs::rename(root.join("keyring.backup"), root.join("keys/keyring.age")).unwrap();
    // And a lost database file beside the keyring: restore it, init would refuse.
    if !common::on_postgres() {
        std::fs::rename(root.join("data/vault.db"), root.join("vault.db.backup")).unwrap();
        let out = cvvault(root, &["keys", "status"]);
        assert_eq!(code(&out), 11);
        let err = stderr(&out);
        assert!(
            err.contains("restore the database from its backup")
                && err.contains("`cvvault init` refuses here"),
            "{err}"
        );
        std::fs::rename(root.join("vault.db.backup"), root.join("data/vault.db")).unwrap();
    }
    // A secret passed where a public key or a token id belongs is never echoed back.
    let secret = "AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ";
    let other = tempfile::tempdir().unwrap();
    let out = cvvault(other.path(), &["init", "--recovery-recipient", secret]);
    assert_eq!(code(&out), 65);
    assert!(
        stderr(&out).contains("SECRET key") && !stderr(&out).contains("QQQQ"),
        "{}",
        stderr(&out)
    );
    let token = format!("cvv_0123456789abcdef_{}", "ab".repeat(32));
    let out = cvvault(root, &["token", "revoke", &token]);
    assert_eq!(code(&out), 65);
    assert!(
        stderr(&out).contains("its id is 0123456789abcdef") && !stderr(&out).contains("abab"),
        "{}",
        stderr(&out)
    );
    // Retention settings where 0 would erase everyone are refused.
    std::fs::write(
        root.join("policy/retention.toml"),
        "grace_after_close_days = 0\nmax_idle_days = 0\nmax_life_days = 1095\n",
    )
    .unwrap();
    let out = cvvault(root, &["retention", "run", "--dry-run"]);
    assert_eq!(code(&out), 15, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("max_idle_days = 0 would erase every candidate"),
        "{}",
        stderr(&out)
    );
    // An extract to a folder that does not exist is refused before anything is disclosed.
    let out = cvvault(
        root,
        &[
            "extract",
            "--candidate",
            &id,
            "--purpose",
            "recruitment",
            "--out",
            root.join("no-such-folder/cv.age").to_str().unwrap(),
            "--as",
            "emp",
        ],
    );
    assert_eq!(code(&out), 74, "{}", stderr(&out));
    assert!(!root.join("no-such-folder").exists());
}

#[test]
fn rust_version_is_true_for_every_locked_dependency() {
    // Cargo.toml's rust-version must be at least what every locked dependency declares (the
    // locked cedar-policy needs 1.89; it once said 1.85).
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--locked"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let metadata: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // "1.89" and "1.89.0" are the same version.
    let parse = |v: &str| -> Vec<u64> {
        let mut parts: Vec<u64> = v.split('.').map(|n| n.parse().unwrap()).collect();
        parts.resize(3, 0);
        parts
    };
    let packages = metadata["packages"].as_array().unwrap();
    let ours = packages
        .iter()
        .find(|p| p["name"] == "cvvault")
        .and_then(|p| p["rust_version"].as_str())
        .expect("cvvault declares a rust-version");
    let (needed, by) = packages
        .iter()
        .filter_map(|p| Some((parse(p["rust_version"].as_str()?), p["name"].as_str()?)))
        .max()
        .unwrap();
    assert!(
        parse(ours) >= needed,
        "rust-version {ours} is older than {needed:?}, which {by} needs"
    );
}

#[test]
fn tokens_are_issued_with_a_lifetime_listed_with_their_expiry_and_rotated() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    init(root);
    setup_principals(root);
    let out = cvvault(
        root,
        &[
            "--json",
            "token",
            "issue",
            "--principal",
            "emp",
            "--ttl",
            "2h",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let issued: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let id = issued["token_id"].as_str().unwrap().to_owned();
    assert!(issued["expires_at"].as_str().unwrap().ends_with('Z'));
    let out = cvvault(root, &["token", "list"]);
    assert!(
        stdout(&out).contains(&id) && stdout(&out).contains("expires "),
        "{}",
        stdout(&out)
    );
    let out = cvvault(root, &["token", "rotate", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).trim().starts_with("cvv_"));
    assert!(
        stderr(&out).contains(&format!("rotated {id}: issued its successor"))
            && stderr(&out).contains("valid until"),
        "{}",
        stderr(&out)
    );
    let out = cvvault(
        root,
        &["token", "issue", "--principal", "emp", "--ttl", "400d"],
    );
    assert_eq!(code(&out), 65);
    assert!(
        stderr(&out).contains("1 minute to 365 days"),
        "{}",
        stderr(&out)
    );
    let out = cvvault(
        root,
        &["token", "issue", "--principal", "emp", "--ttl", "soon"],
    );
    assert_eq!(code(&out), 65);
    assert!(stderr(&out).contains("e.g. 30d"), "{}", stderr(&out));
}
