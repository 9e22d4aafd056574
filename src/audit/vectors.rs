//! The test vectors of the audit format (`tests/vectors/audit-v1.json`, documented in
//! SECURITY.md), checked against the code: an entry and its leaf hash, its MAC under a fixed
//! test audit key, candidate and assignment pseudonyms, a checkpoint signed by a fixed test key
//! with its verifier key, and an inclusion proof. A DPO's own verifier can test itself on them.
//!
//! `CVVAULT_WRITE_VECTORS=1 cargo test --lib vectors` rewrites the file from the code (after a
//! deliberate format change only); otherwise the file is compared, field by field.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use base64::Engine as _;

use super::entry::{Entry, Outcome};
use super::log::Pseudonymizer;
use super::merkle;
use super::note::{Checkpoint, NoteSigner, NoteVerifier};
use crate::ids::{AssignmentId, CandidateId};

const FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/audit-v1.json");
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// A test-only Ed25519 signing key (PKCS#8, base64): it signs nothing but these vectors.
const TEST_SIGNING_KEY_PKCS8: &str = "MFMCAQEwBQYDK2VwBCIEIMOMqlDs84/yNN83021KXVMzzmTNKHoM8P8SLyYwbWQmoSMDIQDULjSnB9yp1C+JvAYDtaM9kh1FP9DMK1jXDRlJgmN1aw==";

fn entry(index: u64, candidate: &str, action: &str) -> Entry {
    Entry {
        action: action.into(),
        actor: "cw-lena".into(),
        actor_org: Some("agency".into()),
        actor_role: "caseworker".into(),
        assignment: None,
        candidate: Some(candidate.into()),
        decision: Outcome::Allow,
        groups: vec!["identity".into(), "contact".into()],
        index,
        note: None,
        policy_hash: format!("sha256:{}", "ab".repeat(32)),
        policy_ids: vec!["caseworker-register".into()],
        purpose: None,
        request_id: format!("00000000-0000-4000-8000-00000000000{index}"),
        time: "2026-12-01T12:00:00Z".into(),
        v: 1,
    }
}

/// The vectors, computed from fixed inputs by the code.
fn computed() -> serde_json::Value {
    let audit_key = [0x42u8; 32];
    let pseudonyms = Pseudonymizer::new(&audit_key);
    let candidate = CandidateId::from_bytes(
        *b"\x0b\x6f\x2c\x6e\x8a\x4e\x4f\x55\x9c\x43\x6f\x1d\x2b\x7a\x9e\x10",
    );
    let assignment = AssignmentId::from_bytes(
        *b"\x1c\x7f\x3d\x7f\x9b\x5f\x40\x66\xad\x54\x70\x2e\x3c\x8b\xaf\x21",
    );
    let candidate_pseudonym = pseudonyms.candidate(&candidate);
    let entries: Vec<Entry> = (0..3)
        .map(|i| {
            entry(
                i,
                &candidate_pseudonym,
                if i == 2 {
                    "candidate.erase"
                } else {
                    "candidate.register"
                },
            )
        })
        .collect();
    let texts: Vec<String> = entries
        .iter()
        .map(|e| String::from_utf8(e.canonical_bytes()).unwrap())
        .collect();
    let leaves: Vec<merkle::Hash> = texts
        .iter()
        .map(|t| merkle::leaf_hash(t.as_bytes()))
        .collect();
    let root = merkle::root(&leaves);
    let origin = "cvvault.local/00000000-0000-4000-8000-000000000000";
    let pkcs8 = B64.decode(TEST_SIGNING_KEY_PKCS8).unwrap();
    let signer = NoteSigner::from_pkcs8(origin, &pkcs8).unwrap();
    let checkpoint = signer
        .sign(&Checkpoint {
            origin: origin.into(),
            size: leaves.len() as u64,
            root,
        })
        .unwrap();
    let proof = merkle::inclusion_proof(&leaves, 2).unwrap();
    serde_json::json!({
        "format": "cvvault-audit-test-vectors/v1",
        "audit_key_hex": hex::encode(audit_key),
        "candidate_id": candidate.to_string(),
        "candidate_pseudonym": candidate_pseudonym,
        "assignment_id": assignment.to_string(),
        "assignment_pseudonym": pseudonyms.assignment(&assignment),
        "entries": texts,
        "leaf_hashes_hex": leaves.iter().map(hex::encode).collect::<Vec<_>>(),
        "entry_macs_hex": leaves.iter().map(|l| hex::encode(pseudonyms.entry_mac(l))).collect::<Vec<_>>(),
        "root_base64": B64.encode(root),
        "verifier_key": signer.verifier_key(),
        "checkpoint": checkpoint,
        "inclusion_proof_of_entry_2": proof.iter().map(|h| B64.encode(h)).collect::<Vec<_>>(),
    })
}

#[test]
fn the_format_vectors_in_the_repository_match_the_code() {
    let computed = computed();
    if std::env::var_os("CVVAULT_WRITE_VECTORS").is_some() {
        let text = serde_json::to_string_pretty(&computed).unwrap();
        std::fs::write(FILE, format!("{text}\n")).unwrap();
    }
    let stored: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(FILE).expect("tests/vectors/audit-v1.json"))
            .unwrap();
    for (key, value) in computed.as_object().unwrap() {
        assert_eq!(
            &stored[key], value,
            "vector `{key}` no longer matches the code"
        );
    }
    assert_eq!(
        stored.as_object().unwrap().len(),
        computed.as_object().unwrap().len()
    );

    // And the stored vectors verify the way a DPO's verifier would use them.
    let verifier = NoteVerifier::parse(stored["verifier_key"].as_str().unwrap()).unwrap();
    let checkpoint = verifier
        .verify(stored["checkpoint"].as_str().unwrap())
        .unwrap();
    assert_eq!(B64.encode(checkpoint.root), stored["root_base64"]);
    let entry = stored["entries"][2].as_str().unwrap();
    let path: Vec<merkle::Hash> = stored["inclusion_proof_of_entry_2"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            merkle::Hash::try_from(B64.decode(h.as_str().unwrap()).unwrap().as_slice()).unwrap()
        })
        .collect();
    merkle::verify_inclusion(
        &merkle::leaf_hash(entry.as_bytes()),
        2,
        checkpoint.size,
        &path,
        &checkpoint.root,
    )
    .unwrap();
    let parsed: Entry = serde_json::from_str(entry).unwrap();
    assert_eq!(parsed.action, "candidate.erase");
    assert_eq!(
        parsed.candidate.as_deref(),
        stored["candidate_pseudonym"].as_str()
    );
}
