//! `cvvault report processing` through the real binary: the record of processing (GDPR Art.
//! 30) is generated from the policy files in force, and names the policy hash the audit trail
//! carries.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::Path;

use common::{cvvault, stderr, stdout};
use serde_json::Value;

fn run_ok(root: &Path, args: &[&str]) -> String {
    let out = cvvault(root, args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{args:?}: {}{}",
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

fn json(root: &Path, args: &[&str]) -> Value {
    serde_json::from_str(&run_ok(root, args)).unwrap()
}

/// The policy hash of every audit entry, in order.
fn audit_hashes(root: &Path) -> Vec<String> {
    run_ok(root, &["audit", "export", "--as", "dpo"])
        .lines()
        .map(|line| {
            let entry: Value = serde_json::from_str(line).unwrap();
            entry["policy_hash"].as_str().unwrap().to_owned()
        })
        .collect()
}

/// The employer's disclosure of `group` for `purpose` in a JSON record, if any.
fn employer_receives<'a>(record: &'a Value, group: &str, purpose: &str) -> Option<&'a Value> {
    let employer = record["roles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["role"] == "employer")
        .unwrap();
    employer["receives"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["group"] == group && d["purpose"] == purpose)
}

#[test]
fn the_record_of_processing_carries_the_audit_trails_policy_hash_and_follows_the_policy_files() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    run_ok(root, &["init"]);
    common::add_principals(root, &[("dpo", "dpo", "agency")]);

    // No --as: the record holds no personal data.
    let record = json(root, &["report", "processing", "--json"]);
    assert_eq!(record["format"], "cvvault-record-of-processing/v1");
    let hash = record["policy_hash"].as_str().unwrap().to_owned();
    assert!(hash.starts_with("sha256:") && hash.len() == 71, "{hash}");
    let checked = json(root, &["policy", "check", "--json"]);
    assert_eq!(checked["policy_hash"], hash.as_str());
    let hashes = audit_hashes(root);
    assert!(!hashes.is_empty(), "init and principal add are audited");
    assert!(hashes.iter().all(|h| *h == hash), "{hashes:?} vs {hash}");

    let professional = employer_receives(&record, "professional", "recruitment").unwrap();
    assert_eq!(
        professional["permitted_by"][0]["policy_id"],
        "employer-professional-for-recruitment"
    );
    let conditions: Vec<(&str, bool)> = professional["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["fact"].as_str().unwrap(), c["holds"].as_bool().unwrap()))
        .collect();
    assert_eq!(conditions, [("protected", false), ("org_matching", true)]);
    assert!(employer_receives(&record, "contact", "recruitment").is_some());
    assert!(employer_receives(&record, "special", "recruitment").is_none());

    let text = run_ok(root, &["report", "processing"]);
    for needle in [
        &format!("policy:       {hash}\n"),
        "\nemployer\n",
        "  receives professional for recruitment\n",
        "    - only while an open matching assignment links the organisation to the candidate\n",
        "    permitted by employer-professional-for-recruitment (employer.cedar): ",
        "The data-protection officer receives no field group of any candidate's profile",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
    }

    // Edit the policy files in force: the record follows them, under the new hash that the
    // trail records from then on.
    let employer_file = root.join("policy/employer.cedar");
    let policy = std::fs::read_to_string(&employer_file).unwrap();
    let start = policy
        .find("@id(\"employer-contact-with-consent\")")
        .unwrap();
    std::fs::write(&employer_file, &policy[..start]).unwrap();
    let edited = json(root, &["report", "processing", "--json"]);
    let new_hash = edited["policy_hash"].as_str().unwrap().to_owned();
    assert_ne!(new_hash, hash);
    assert_eq!(audit_hashes(root).last(), Some(&new_hash));
    assert!(employer_receives(&edited, "contact", "recruitment").is_none());
    assert!(employer_receives(&edited, "professional", "recruitment").is_some());
    let text = run_ok(root, &["report", "processing"]);
    assert!(!text.contains("employer-contact-with-consent"), "{text}");
}

#[test]
fn report_processing_help_says_it_is_generated_from_the_policy_files() {
    let dir = tempfile::tempdir().unwrap();
    let help = run_ok(dir.path(), &["report", "processing", "--help"]);
    assert!(help.contains("Art. 30"), "{help}");
    assert!(
        help.contains("Generated from the Cedar policy files in force"),
        "{help}"
    );
    assert!(help.contains("--json"), "{help}");
}

const PROFILE: &str = r#"{"identity":{"name":"Amani Haile","birth_year":1991},
 "contact":{"email":"amani@example.org"},
 "professional":{"headline":"Undersköterska","skills":[{"name":"omvårdnad"}]},
 "control":{"protected":false,"consents":{"employer_contact":false}}}"#;

#[test]
fn report_breach_lists_what_a_principal_received_as_csv_json_and_text_for_the_dpo_only() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    run_ok(root, &["init"]);
    common::add_principals(
        root,
        &[
            ("cw", "caseworker", "agency"),
            ("emp", "employer", "emp-org"),
            ("dpo", "dpo", "agency"),
        ],
    );
    let file = root.join("profile.json");
    std::fs::write(&file, PROFILE).unwrap();
    let id = run_ok(
        root,
        &["candidate", "add", file.to_str().unwrap(), "--as", "cw"],
    )
    .trim()
    .to_owned();
    run_ok(
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
    let extract = [
        "extract",
        "--candidate",
        &id,
        "--purpose",
        "recruitment",
        "--as",
        "emp",
    ];
    run_ok(root, &extract);
    let today = &run_ok(root, &["audit", "export", "--as", "dpo"])
        .lines()
        .last()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["time"]
                .as_str()
                .unwrap()[..10]
                .to_owned()
        })
        .unwrap();
    let breach = |format: &str, as_: &str| {
        cvvault(
            root,
            &[
                "report",
                "breach",
                "--principal",
                "emp",
                "--since",
                today,
                "--until",
                today,
                "--format",
                format,
                "--as",
                as_,
            ],
        )
    };
    let out = breach("csv", "dpo");
    let csv = stdout(&out);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 2, "{csv}{}", stderr(&out));
    assert!(lines[0].starts_with("time,entry_index,candidate_id"));
    assert!(
        lines[1].contains(&id) && lines[1].contains("professional"),
        "{csv}"
    );
    assert!(
        !csv.contains("contact"),
        "no consent: contact was not disclosed"
    );
    let report: Value = serde_json::from_str(&stdout(&breach("json", "dpo"))).unwrap();
    assert_eq!(report["format"], "cvvault-breach-scope/v1");
    assert_eq!(report["candidates"], 1);
    let text = stdout(&breach("text", "dpo"));
    assert!(text.contains("1 candidate(s) concerned"), "{text}");
    assert!(
        !text.contains("Amani") && !text.contains("Undersköterska"),
        "no profile data"
    );

    let refused = breach("csv", "emp");
    assert_ne!(refused.status.code(), Some(0));
    assert!(stdout(&refused).is_empty(), "the employer sees nothing");
    let entries = run_ok(root, &["audit", "export", "--as", "dpo"]);
    assert!(
        entries.contains(r#""action":"report.breach","actor":"emp""#),
        "the refusal is audited"
    );
    assert!(entries.contains(r#""action":"report.breach","actor":"dpo""#));

    let bad = cvvault(
        root,
        &[
            "report",
            "breach",
            "--org",
            "emp-org",
            "--since",
            "yesterday",
            "--until",
            today,
            "--as",
            "dpo",
        ],
    );
    assert_eq!(bad.status.code(), Some(65), "{}", stderr(&bad));
    assert!(stderr(&bad).contains("is not a date"), "{}", stderr(&bad));
    let none = cvvault(
        root,
        &[
            "report", "breach", "--since", today, "--until", today, "--as", "dpo",
        ],
    );
    assert_ne!(none.status.code(), Some(0));
    assert!(stderr(&none).contains("--principal"), "{}", stderr(&none));
}
