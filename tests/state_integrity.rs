//! The vault's own state can be neither lost nor forged: regressions for the findings of the
//! 2026-12 cryptography review, each named after what broke, through the real binary where it
//! was found there.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;

use common::{cvvault, cvvault_env, stderr, stdout, Fixture};
use cvvault::audit::entry::Outcome;
use cvvault::ids::CandidateId;
use cvvault::settings::Retention;
use cvvault::synth::Synth;
use cvvault::vault::Unlock;
use cvvault::vault::{ImportOptions, InitOptions, Vault};
use cvvault::vocabulary::FieldGroup;
use cvvault::Error;

/// Imports `n` synthetic candidates as the fixture's caseworker; returns their ids.
fn import(vault: &Vault, n: usize) -> Vec<CandidateId> {
    let mut text = Vec::new();
    let mut synth = Synth::new(11);
    for _ in 0..n {
        let mut profile = synth.profile();
        profile.control.protected = false;
        text.extend_from_slice(&profile.to_json_groups(&FieldGroup::ALL).unwrap());
        text.push(b'\n');
    }
    let cw = vault.principal(&"cw".parse().unwrap()).unwrap();
    let open = move || -> cvvault::Result<Box<dyn std::io::BufRead>> {
        Ok(Box::new(std::io::Cursor::new(text.clone())))
    };
    vault
        .import(&cw, &open, &ImportOptions::default(), &|_, _| {})
        .unwrap()
        .ids
}

/// Starts `runs` `cvvault keys rotate` at once and returns each one's output.
fn rotate_at_once(root: &Path, runs: usize, env: &[(&str, &str)]) -> Vec<std::process::Output> {
    let children: Vec<_> = (0..runs)
        .map(|_| {
            let mut cmd = common::vault_command(root);
            cmd.args(["keys", "rotate"])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            for (k, v) in env {
                cmd.env(k, v);
            }
            cmd.spawn().unwrap()
        })
        .collect();
    children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect()
}

/// Every run either rotated or was refused with the lock message; at least one rotated.
fn each_rotated_or_refused(outputs: &[std::process::Output]) {
    let mut rotated = 0;
    for out in outputs {
        match out.status.code() {
            Some(0) => {
                assert!(stdout(out).contains("DEKs rewrapped"), "{}", stdout(out));
                rotated += 1;
            }
            Some(75) => assert!(
                stderr(out).contains("another key rotation is in progress"),
                "{}",
                stderr(out)
            ),
            other => panic!("exit {other:?}: {} {}", stdout(out), stderr(out)),
        }
    }
    assert!(rotated >= 1, "no run rotated");
}

/// `keys verify` through the binary: every DEK opens.
fn every_key_opens(root: &Path, env: &[(&str, &str)], expected: usize) {
    let out = cvvault_env(root, &["keys", "verify"], env);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{} {}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stdout(&out).contains(&format!("every data key opens: {expected} DEKs checked")),
        "{}",
        stdout(&out)
    );
}

#[test]
fn six_simultaneous_rotations_lose_no_data_key() {
    // Before: 4 of 6 simultaneous runs destroyed all 3,000 DEKs or the keyring itself, and
    // the run that "won" reported success.
    let f = Fixture::new();
    let ids = import(&f.vault, 3_000);
    let root = f.dir.path().to_path_buf();
    let f = f.reopen();
    f.vault.close().unwrap();
    drop(f.vault);
    for _ in 0..2 {
        let outputs = rotate_at_once(&root, 6, &[]);
        each_rotated_or_refused(&outputs);
        every_key_opens(&root, &[], ids.len());
    }
    let status = cvvault(&root, &["--json", "keys", "status"]);
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["keyring_versions"].as_array().unwrap().len(), 1);
    assert_eq!(status["rotation_pending"], false);
    // And a profile still reads, through policy, as before.
    let explain = cvvault(
        &root,
        &[
            "--as",
            "cw",
            "policy",
            "explain",
            "--candidate",
            &ids[1_234].to_string(),
            "--purpose",
            "coaching",
        ],
    );
    assert_eq!(explain.status.code(), Some(0), "{}", stderr(&explain));
}

#[test]
fn simultaneous_rotations_of_a_passphrase_keyring_lose_no_data_key() {
    // Before: a second run started 0.8 s after the first lost all 50 DEKs; both said success.
    let dir = tempfile::tempdir().unwrap();
    let (paths, _pg) = common::test_paths(dir.path());
    let passphrase = "correct horse battery staple";
    Vault::init(
        &paths,
        InitOptions {
            passphrase: Some(passphrase.to_owned().into()),
            identity: None,
            recovery_recipients: vec![],
        },
    )
    .unwrap();
    let unlock = Unlock::Passphrase(passphrase.to_owned().into());
    let vault = Vault::open(&paths, &unlock).unwrap();
    vault
        .add_principal(
            "cw".parse().unwrap(),
            cvvault::vocabulary::Role::Caseworker,
            "agency".parse().unwrap(),
            None,
        )
        .unwrap();
    let ids = import(&vault, 50);
    vault.close().unwrap();
    drop(vault);
    let env = [("CVVAULT_PASSPHRASE", passphrase)];
    let outputs = rotate_at_once(dir.path(), 3, &env);
    each_rotated_or_refused(&outputs);
    every_key_opens(dir.path(), &env, ids.len());
}

/// An age identity made by the real `age-keygen`, and its recipient.
fn age_keygen(path: &Path) -> String {
    let out = Command::new("age-keygen")
        .arg("-o")
        .arg(path)
        .output()
        .expect("age-keygen is required (apt-get install age; .ci/run installs it)");
    assert!(out.status.success());
    let out = Command::new("age-keygen")
        .arg("-y")
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Whether the real `age` tool decrypts the keyring with `identity`.
fn age_opens(keyring: &Path, identity: &Path) -> bool {
    Command::new("age")
        .arg("-d")
        .arg("-i")
        .arg(identity)
        .arg(keyring)
        .output()
        .expect("age is required (apt-get install age; .ci/run installs it)")
        .status
        .success()
}

#[test]
fn rotation_never_encrypts_to_an_edited_recipients_file() {
    // Before: `keys rotate` encrypted every KEK to whatever keys/keyring.recipients listed,
    // and found out only after rewrapping every DEK that the operator was locked out.
    let f = Fixture::new();
    let ids = import(&f.vault, 50);
    f.vault.close().unwrap();
    let root = f.dir.path();
    let keys = f.paths.keys_dir.clone();
    let stranger = age_keygen(&root.join("stranger.key"));
    std::fs::write(keys.join("keyring.recipients"), format!("{stranger}\n")).unwrap();

    let out = cvvault(root, &["keys", "rotate"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("does not list the recipients the keyring records"),
        "the operator is told the file is not used: {}",
        stderr(&out)
    );
    assert!(age_opens(
        &keys.join("keyring.age"),
        &keys.join("identity.txt")
    ));
    assert!(!age_opens(
        &keys.join("keyring.age"),
        &root.join("stranger.key")
    ));
    every_key_opens(root, &[], ids.len());

    // Changing recipients is an explicit command, which refuses to lock the operator out...
    let only_stranger = root.join("only-stranger.txt");
    std::fs::write(&only_stranger, format!("{stranger}\n")).unwrap();
    let out = cvvault(
        root,
        &["keys", "recipients", "set", only_stranger.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(65), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("would no longer open"),
        "{}",
        stderr(&out)
    );
    assert!(!age_opens(
        &keys.join("keyring.age"),
        &root.join("stranger.key")
    ));

    // ...and, given the operator's key too, re-encrypts, mirrors and audits the change.
    let listed = cvvault(root, &["--json", "keys", "recipients", "list"]);
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let operator = listed["recipients"][0].as_str().unwrap().to_owned();
    let both = root.join("both.txt");
    std::fs::write(&both, format!("{operator}\n{stranger}\n")).unwrap();
    let out = cvvault(root, &["keys", "recipients", "set", both.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(age_opens(
        &keys.join("keyring.age"),
        &root.join("stranger.key")
    ));
    assert!(age_opens(
        &keys.join("keyring.age"),
        &keys.join("identity.txt")
    ));
    let mirror = std::fs::read_to_string(keys.join("keyring.recipients")).unwrap();
    assert!(
        mirror.contains(&stranger) && mirror.contains(&operator),
        "{mirror}"
    );
    let export = cvvault(root, &["--as", "dpo", "audit", "export"]);
    assert!(
        stdout(&export).contains("\"action\":\"keys.recipients.set\""),
        "{}",
        stdout(&export)
    );
}

#[test]
fn a_new_identity_leaves_old_keyring_copies_to_the_old_identity_alone() {
    // Before: erasure plus rotation was undone by freed disk blocks, because the unchanged
    // identity opened every earlier keyring, "destroyed" KEKs included.
    let f = Fixture::new();
    let ids = import(&f.vault, 20);
    f.vault.close().unwrap();
    let root = f.dir.path();
    let keys = f.paths.keys_dir.clone();
    let old = root.join("old");
    std::fs::create_dir(&old).unwrap();
    std::fs::copy(keys.join("keyring.age"), old.join("keyring.age")).unwrap();
    std::fs::copy(keys.join("identity.txt"), old.join("identity.txt")).unwrap();

    let out = cvvault(root, &["keys", "rotate", "--new-identity"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("opens only with the new identity"),
        "{}",
        stdout(&out)
    );
    assert_ne!(
        std::fs::read(keys.join("identity.txt")).unwrap(),
        std::fs::read(old.join("identity.txt")).unwrap()
    );
    assert_eq!(
        std::fs::metadata(keys.join("identity.txt"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    assert!(!keys.join("identity.txt.next").exists());
    assert!(age_opens(
        &keys.join("keyring.age"),
        &keys.join("identity.txt")
    ));
    assert!(!age_opens(
        &keys.join("keyring.age"),
        &old.join("identity.txt")
    ));
    // The old copy still opens with the old identity, but holds only the destroyed KEK.
    let old_plain = Command::new("age")
        .arg("-d")
        .arg("-i")
        .arg(old.join("identity.txt"))
        .arg(old.join("keyring.age"))
        .output()
        .unwrap();
    let old_doc: serde_json::Value = serde_json::from_slice(&old_plain.stdout).unwrap();
    let status = cvvault(root, &["--json", "keys", "status"]);
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let current = status["current_kek_version"].as_u64().unwrap();
    assert!(old_doc["keks"]
        .as_array()
        .unwrap()
        .iter()
        .all(|kek| kek["version"].as_u64() != Some(current)));
    every_key_opens(root, &[], ids.len());
}

#[test]
fn a_forged_frontier_is_refused_and_nothing_is_signed_over_it() {
    crate::sqlite_only!();
    // Before: replacing the `audit_frontier` row made the vault sign a forged history, and a
    // forged `candidate.erase` entry then passed `audit verify-proof`.
    let f = Fixture::new();
    f.register_marked("FRONTIER", false, false);
    f.vault.close().unwrap();
    let root = f.dir.path();
    let key = stdout(&cvvault(root, &["audit", "key"]));
    let raw = f.raw();
    let checkpoints = |raw: &rusqlite::Connection| -> i64 {
        raw.query_row("SELECT count(*) FROM audit_checkpoints", [], |r| r.get(0))
            .unwrap()
    };
    let before = checkpoints(&raw);
    let mut frontier: Vec<u8> = raw
        .query_row(
            "SELECT frontier FROM audit_frontier WHERE id = 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    // The last hash of the edge, as the right edge of another log of the same size.
    let last = frontier.len() - 1;
    frontier[last] ^= 0x01;
    raw.execute(
        "UPDATE audit_frontier SET frontier = ?1 WHERE id = 1",
        [&frontier],
    )
    .unwrap();
    let out = cvvault(
        root,
        &[
            "principal",
            "add",
            "someone",
            "--role",
            "employer",
            "--org",
            "x",
        ],
    );
    assert_eq!(out.status.code(), Some(17), "{}", stderr(&out));
    assert!(stderr(&out).contains("audit_frontier"), "{}", stderr(&out));
    assert_eq!(checkpoints(&raw), before, "no checkpoint was signed");
    let added: i64 = raw
        .query_row(
            "SELECT count(*) FROM principals WHERE principal_id = 'someone'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(added, 0);
    // The DPO's own check, with the verifier key only, finds it too.
    let offline = cvvault(root, &["audit", "verify", "--key", key.trim()]);
    assert_eq!(offline.status.code(), Some(17), "{}", stderr(&offline));
    assert!(
        stderr(&offline).contains("tree edge"),
        "{}",
        stderr(&offline)
    );
}

#[test]
fn every_hold_acknowledged_during_a_retention_run_is_respected() {
    crate::sqlite_only!();
    // Before: 42 of 179 holds placed during one retention run were acknowledged, audited,
    // and then ignored.
    let f = Fixture::new();
    let ids = import(&f.vault, 2_000);
    f.clock.advance(2 * 86_400);
    let settings =
        Retention::parse("grace_after_close_days = 0\nmax_idle_days = 1\nmax_life_days = 3650\n")
            .unwrap();
    let vault = Arc::new(f.vault);
    let dpo = vault.principal(&"dpo".parse().unwrap()).unwrap();
    let start = Arc::new(std::sync::Barrier::new(2));
    let holder = {
        let (vault, ids, start) = (vault.clone(), ids.clone(), start.clone());
        std::thread::spawn(move || {
            start.wait();
            // From the end backwards, towards the slots retention reaches last.
            let mut acknowledged = Vec::new();
            for id in ids.iter().rev().step_by(3) {
                if vault.set_hold(&dpo, id, true, "case 2026-12").is_ok() {
                    acknowledged.push(*id);
                }
            }
            acknowledged
        })
    };
    start.wait();
    let report = cvvault::vault::retention::run(&vault, &settings, false, None, &|_| {}).unwrap();
    let acknowledged = holder.join().unwrap();
    let raw = rusqlite::Connection::open(f.paths.database()).unwrap();
    let present = |id: &CandidateId| -> bool {
        raw.query_row(
            "SELECT count(*) FROM candidates WHERE candidate_id = ?1",
            [&id.as_bytes()[..]],
            |r| r.get::<_, i64>(0),
        )
        .unwrap()
            == 1
    };
    let violated: Vec<_> = acknowledged.iter().filter(|id| !present(id)).collect();
    assert!(
        violated.is_empty(),
        "{} of {} acknowledged holds were erased anyway",
        violated.len(),
        acknowledged.len()
    );
    println!(
        "holds acknowledged: {}, erased: {}, held: {}",
        acknowledged.len(),
        report.total,
        report.held
    );
    assert_eq!(
        report.total as usize,
        ids.len() - ids.iter().filter(|id| present(id)).count(),
        "the report counts what was erased"
    );
    // The trail agrees: no candidate has a retention erasure after an allowed hold.
    let dpo = vault.principal(&"dpo".parse().unwrap()).unwrap();
    for id in &acknowledged {
        let entries = vault.audit_search(&dpo, id).unwrap();
        assert!(!entries
            .iter()
            .any(|e| e.action == "retention.erase" && e.decision == Outcome::Allow));
    }
}

#[test]
fn erasure_takes_the_subjects_account_and_tokens_with_it() {
    crate::sqlite_only!();
    // Before: the subject principal (an e-mail address as id) stayed, with the erased
    // candidate's id in clear, and audit entries named it in clear.
    let f = Fixture::new();
    let id = f.register_marked("SUBJECTGONE", false, false);
    let refused = f.vault.add_principal(
        "anna.lindqvist@example.org".parse().unwrap(),
        cvvault::vocabulary::Role::Subject,
        "self".parse().unwrap(),
        Some(id),
    );
    assert!(
        matches!(&refused, Err(Error::InvalidInput { message }) if message.contains("generated")),
        "{:?}",
        refused.err().map(|e| e.to_string())
    );
    let subject = f.vault.add_subject(id, "self".parse().unwrap()).unwrap();
    let token = f.vault.issue_token(&subject).unwrap();
    let facts = f.vault.authenticate(&token.token).unwrap();
    f.vault
        .extract(&facts, &id, &"subject-access".parse().unwrap())
        .unwrap();
    f.vault.erase(&f.as_("cw"), &id).unwrap();

    assert!(matches!(
        f.vault.authenticate(&token.token),
        Err(Error::Unauthenticated)
    ));
    assert!(f
        .vault
        .list_principals()
        .unwrap()
        .iter()
        .all(|p| p.principal_id != subject));
    assert!(f
        .vault
        .list_tokens()
        .unwrap()
        .iter()
        .all(|t| t.principal_id != subject));
    let raw = f.raw();
    let left: i64 = raw
        .query_row(
            "SELECT (SELECT count(*) FROM principals WHERE subject_candidate_id = ?1 OR principal_id = ?2)
                  + (SELECT count(*) FROM tokens WHERE principal_id = ?2)",
            rusqlite::params![&id.as_bytes()[..], subject.as_str()],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(left, 0);
    let named: i64 = raw
        .query_row(
            "SELECT count(*) FROM audit_entries WHERE instr(entry, ?1) > 0",
            [subject.as_str()],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(named, 0, "the trail names the subject only by pseudonym");
}

#[test]
fn a_control_group_that_fails_to_open_is_audited_and_can_still_be_erased() {
    crate::sqlite_only!();
    // Before: the refusal left no audit entry, and the candidate could never be erased.
    let f = Fixture::new();
    let id = f.register_marked("CONTROLFLIP", false, true);
    f.assign(id, "emp-org", "matching", "recruitment");
    let raw = f.raw();
    let mut control: Vec<u8> = raw
        .query_row(
            "SELECT s.control FROM sealed_profiles s JOIN candidates c ON c.key_id = s.key_id WHERE c.candidate_id = ?1",
            [&id.as_bytes()[..]],
            |r| r.get(0),
        )
        .unwrap();
    let middle = control.len() / 2;
    control[middle] ^= 0x10;
    raw.execute(
        "UPDATE sealed_profiles SET control = ?1 WHERE candidate_id = ?2",
        rusqlite::params![control, &id.as_bytes()[..]],
    )
    .unwrap();
    let entries_before = f.vault.audit_search(&f.as_("dpo"), &id).unwrap().len();
    let extract = f
        .vault
        .extract(&f.as_("emp"), &id, &"recruitment".parse().unwrap());
    // Concealed from the employer (a damaged record is no business of theirs), and on the
    // record for the DPO.
    assert!(matches!(extract, Err(Error::NotFound { .. })));
    let entries = f.vault.audit_search(&f.as_("dpo"), &id).unwrap();
    let refusal = entries
        .iter()
        .find(|e| e.action == "extract" && e.decision == Outcome::Deny)
        .expect("the failed open is on the record");
    assert_eq!(
        refusal.note.as_deref(),
        Some("unreadable: decryption-failed")
    );
    assert!(entries.len() > entries_before);
    f.vault.erase(&f.as_("cw"), &id).unwrap();
    let gone: i64 = raw
        .query_row(
            "SELECT count(*) FROM candidates WHERE candidate_id = ?1",
            [&id.as_bytes()[..]],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(gone, 0);
    let erase = f
        .vault
        .audit_search(&f.as_("dpo"), &id)
        .unwrap()
        .into_iter()
        .find(|e| e.action == "candidate.erase")
        .unwrap();
    assert_eq!(erase.decision, Outcome::Allow);
    assert_eq!(
        erase.note.as_deref(),
        Some("unreadable: decided as protected")
    );
}

#[test]
fn the_database_and_its_folder_are_private() {
    crate::sqlite_only!();
    // Before: `data/` was 0755 and `vault.db` 0644 (the process umask).
    let dir = tempfile::tempdir().unwrap();
    let out = cvvault(dir.path(), &["init"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir.path().join("data")), 0o700);
    assert_eq!(mode(&dir.path().join("data").join("vault.db")), 0o600);
    assert_eq!(mode(&dir.path().join("keys").join("keyring.age")), 0o600);
    assert_eq!(mode(&dir.path().join("keys").join("identity.txt")), 0o600);
    // The WAL and shared-memory files SQLite makes take the database file's mode.
    let out = cvvault(
        dir.path(),
        &[
            "principal",
            "add",
            "cw",
            "--role",
            "caseworker",
            "--org",
            "agency",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    for name in ["vault.db-wal", "vault.db-shm"] {
        let path = dir.path().join("data").join(name);
        if path.exists() {
            assert_eq!(mode(&path), 0o600, "{name}");
        }
    }
    // A second init refuses, and leaves the first vault as it was.
    let again = cvvault(dir.path(), &["init"]);
    assert_eq!(again.status.code(), Some(10), "{}", stderr(&again));
    let out = cvvault(dir.path(), &["principal", "list"]);
    assert!(stdout(&out).contains("cw"), "{}", stdout(&out));
}

#[test]
fn a_wrong_identity_file_never_replaces_the_keyring() {
    // The new keyring is proven to open before it replaces the old one: with an identity
    // that is not among the recorded recipients, nothing changes.
    let f = Fixture::new();
    import(&f.vault, 5);
    f.vault.close().unwrap();
    let root = f.dir.path();
    let keyring_before = std::fs::read(f.paths.keyring()).unwrap();
    let stranger = root.join("stranger.key");
    age_keygen(&stranger);
    let out = cvvault_env(
        root,
        &["keys", "rotate"],
        &[("CVVAULT_IDENTITY", stranger.to_str().unwrap())],
    );
    assert_eq!(out.status.code(), Some(13), "{}", stderr(&out));
    assert_eq!(std::fs::read(f.paths.keyring()).unwrap(), keyring_before);
    every_key_opens(root, &[], 5);
    let mut leftovers = std::fs::read_dir(&f.paths.keys_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .peekable();
    assert!(
        leftovers.peek().is_none(),
        "no temporary keyring is left behind"
    );
    let _ = std::io::stdout().flush();
}

#[test]
fn a_vault_from_the_previous_version_keeps_its_tokens_and_rows() {
    crate::sqlite_only!();
    // Schema 3 had no MACs and stored SHA-256 token hashes. Migration 4 signs the rows as
    // they are and keys the hashes, so an issued token keeps working after the upgrade.
    let f = Fixture::new();
    let id = f.register_marked("UPGRADE", false, true);
    f.assign(id, "emp-org", "matching", "recruitment");
    let token = f.vault.issue_token(&"emp".parse().unwrap()).unwrap();
    f.vault.close().unwrap();
    let Fixture {
        dir, paths, vault, ..
    } = f;
    drop(vault);
    let raw = rusqlite::Connection::open(paths.database()).unwrap();
    let sha = ring::digest::digest(&ring::digest::SHA256, token.token.as_bytes());
    raw.execute_batch(
        "ALTER TABLE tokens DROP COLUMN expires_at;
         DROP INDEX candidates_by_reference;
         ALTER TABLE candidates DROP COLUMN reference_mac;
         ALTER TABLE principals DROP COLUMN row_mac;
         ALTER TABLE tokens DROP COLUMN row_mac;
         ALTER TABLE assignments DROP COLUMN row_mac;
         ALTER TABLE candidates DROP COLUMN row_mac;
         ALTER TABLE audit_frontier DROP COLUMN mac;
         PRAGMA user_version = 3;",
    )
    .unwrap();
    raw.execute(
        "UPDATE tokens SET token_hash = ?1 WHERE token_id = ?2",
        rusqlite::params![sha.as_ref(), token.token_id],
    )
    .unwrap();
    let vault = Vault::open(&paths, &Fixture::unlock_for(&paths)).unwrap();
    let emp = vault.authenticate(&token.token).unwrap();
    let extract = vault
        .extract(&emp, &id, &"recruitment".parse().unwrap())
        .unwrap();
    assert!(extract.groups.contains(&FieldGroup::Professional));
    let version: i64 = raw
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 6, "migrated to the latest schema");
    let stored: Vec<u8> = raw
        .query_row(
            "SELECT token_hash FROM tokens WHERE token_id = ?1",
            [&token.token_id],
            |r| r.get(0),
        )
        .unwrap();
    assert_ne!(stored, sha.as_ref(), "the stored hash is keyed now");
    // A token from before tokens expired gets one default lifetime from the migration.
    let expires: Option<i64> = raw
        .query_row(
            "SELECT expires_at FROM tokens WHERE token_id = ?1",
            [&token.token_id],
            |r| r.get(0),
        )
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let left = expires.unwrap() - now;
    assert!(
        (cvvault::vault::DEFAULT_TOKEN_TTL_SECS - 600..=cvvault::vault::DEFAULT_TOKEN_TTL_SECS)
            .contains(&left),
        "{left}"
    );
    let dpo = vault.principal(&"dpo".parse().unwrap()).unwrap();
    assert!(vault.audit_verify(&dpo, vec![], &|_| {}).is_ok());
    vault.close().unwrap();
    drop(dir);
}

#[test]
fn a_rotation_stopped_after_destroying_the_old_kek_finishes_instead_of_refusing() {
    crate::sqlite_only!();
    // A run that destroyed the old KEK and then stopped before recording its end left the
    // next run refusing with advice to restore an older keyring (which holds destroyed keys).
    let f = Fixture::new();
    import(&f.vault, 10);
    f.vault.close().unwrap();
    let root = f.dir.path();
    let out = cvvault(root, &["keys", "rotate"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let raw = f.raw();
    raw.execute(
        "INSERT INTO vault_meta (key, value) VALUES ('rotation_to', '2')",
        [],
    )
    .unwrap();
    let status = cvvault(root, &["--json", "keys", "status"]);
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["rotation_pending"], true);
    // --new-identity waits until the pending rotation is finished.
    let out = cvvault(root, &["keys", "rotate", "--new-identity"]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(stderr(&out).contains("finish it first"), "{}", stderr(&out));
    let out = cvvault(root, &["keys", "rotate"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("resumed"), "{}", stdout(&out));
    let status = cvvault(root, &["--json", "keys", "status"]);
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["rotation_pending"], false);
    every_key_opens(root, &[], 10);
}

#[test]
fn a_row_put_back_from_an_older_copy_is_named_by_audit_verify() {
    crate::sqlite_only!();
    // A row's MAC proves cvvault wrote it, not that it is the latest version: an older copy
    // of a token, an assignment or a candidate row passes it. The trail's last decision on
    // each of them does not.
    let f = Fixture::new();
    let id = f.register_marked("ROLLBACK", false, true);
    let assignment = f.assign(id, "emp-org", "matching", "recruitment");
    let token = f.vault.issue_token(&"emp".parse().unwrap()).unwrap();
    let raw = f.raw();
    let copy = |sql: &str| -> Vec<u8> { raw.query_row(sql, [], |r| r.get(0)).unwrap() };
    let token_mac = copy(&format!(
        "SELECT row_mac FROM tokens WHERE token_id = '{}'",
        token.token_id
    ));
    let assignment_mac = copy("SELECT row_mac FROM assignments");
    f.vault.revoke_token(&token.token_id).unwrap();
    f.vault
        .close_assignment(&f.as_("cw"), &assignment, "placed in work")
        .unwrap();
    let dpo = f.as_("dpo");
    assert!(f.vault.audit_verify(&dpo, vec![], &|_| {}).is_ok());

    // Put both rows back as they were, MACs included.
    raw.execute(
        "UPDATE tokens SET revoked_at = NULL, row_mac = ?1 WHERE token_id = ?2",
        rusqlite::params![token_mac, token.token_id],
    )
    .unwrap();
    raw.execute(
        "UPDATE assignments SET closed_at = NULL, closed_by = NULL, close_reason = NULL, row_mac = ?1",
        [assignment_mac],
    )
    .unwrap();
    let failed = f.vault.audit_verify(&dpo, vec![], &|_| {}).unwrap_err();
    let message = failed.to_string();
    assert!(matches!(failed, Error::AuditTampered(_)), "{message}");
    assert!(
        message.contains(&format!("tokens {} (revoked", token.token_id)),
        "{message}"
    );
    assert!(
        message.contains(&format!(
            "assignments {} (closed",
            hex::encode(assignment.as_bytes())
        )),
        "{message}"
    );
}

#[test]
fn an_erased_candidate_put_back_from_an_older_copy_is_named_by_audit_verify() {
    crate::sqlite_only!();
    // Every row of an erased candidate restored from a backup passes its MAC; the trail's
    // erasure entry does not let it pass.
    let f = Fixture::new();
    let id = f.register_marked("RESURRECTED", false, false);
    let raw = f.raw();
    let rows: Vec<(String, Vec<rusqlite::types::Value>)> =
        ["candidate_keys", "candidates", "sealed_profiles"]
            .iter()
            .map(|table| {
                let mut stmt = raw
                    .prepare(&format!("SELECT * FROM {table} WHERE candidate_id = ?1"))
                    .unwrap();
                let n = stmt.column_count();
                let values = stmt
                    .query_row([&id.as_bytes()[..]], |r| {
                        (0..n)
                            .map(|i| r.get::<_, rusqlite::types::Value>(i))
                            .collect()
                    })
                    .unwrap();
                ((*table).to_owned(), values)
            })
            .collect();
    f.vault.erase(&f.as_("cw"), &id).unwrap();
    // The key slot is overwritten in place; put the old one back, and the deleted rows.
    raw.execute("DELETE FROM candidate_keys WHERE kek_version = 0", [])
        .unwrap();
    for (table, values) in &rows {
        let marks = vec!["?"; values.len()].join(", ");
        raw.execute(
            &format!("INSERT INTO {table} VALUES ({marks})"),
            rusqlite::params_from_iter(values.iter()),
        )
        .unwrap();
    }
    let dpo = f.as_("dpo");
    let failed = f.vault.audit_verify(&dpo, vec![], &|_| {}).unwrap_err();
    assert!(
        failed.to_string().contains(&format!(
            "candidates {} (erased",
            hex::encode(id.as_bytes())
        )),
        "{failed}"
    );
}

#[test]
fn a_token_expires_and_a_database_writer_cannot_extend_it() {
    crate::sqlite_only!();
    let f = Fixture::new();
    let emp: cvvault::ids::PrincipalId = "emp".parse().unwrap();
    let issued = f.vault.issue_token_for(&emp, 3_600, None).unwrap();
    assert_eq!(issued.expires_at, f.now() + 3_600);
    assert!(f.vault.authenticate(&issued.token).is_ok());
    // Pushed a decade out by someone who can write the file but holds no keyring: the row
    // fails its MAC and the token opens nothing, before or after its real expiry.
    f.raw()
        .execute(
            "UPDATE tokens SET expires_at = expires_at + 315360000 WHERE token_id = ?1",
            [&issued.token_id],
        )
        .unwrap();
    assert!(matches!(
        f.vault.authenticate(&issued.token),
        Err(Error::Unauthenticated)
    ));
    // A token left alone lapses at its expiry, to the second.
    let other = f.vault.issue_token_for(&emp, 120, None).unwrap();
    f.clock.advance(119);
    assert!(f.vault.authenticate(&other.token).is_ok());
    f.clock.advance(1);
    match f.vault.authenticate(&other.token) {
        Err(Error::TokenExpired { token_id, .. }) => assert_eq!(token_id, other.token_id),
        Err(e) => panic!("expected an expired token, got {e}"),
        Ok(_) => panic!("an expired token authenticated"),
    }
    // Lifetimes outside a minute to a year are refused.
    for ttl in [59, 366 * 86_400] {
        assert!(f.vault.issue_token_for(&emp, ttl, None).is_err(), "{ttl}");
    }
    assert_eq!(cvvault::vault::parse_ttl("30d").unwrap(), 30 * 86_400);
    assert_eq!(cvvault::vault::parse_ttl("2w").unwrap(), 14 * 86_400);
    assert_eq!(cvvault::vault::parse_ttl("90m").unwrap(), 5_400);
    for bad in [
        "",
        "30",
        "d",
        "30x",
        "-1d",
        "400d",
        "10s",
        "99999999999999999999d",
    ] {
        assert!(cvvault::vault::parse_ttl(bad).is_err(), "{bad}");
    }
}
