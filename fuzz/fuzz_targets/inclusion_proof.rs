//! Inclusion proofs and erasure receipts, as `audit verify-proof FILE` reads them (a file
//! from anyone): JSON into `audit::verify::InclusionProof`, `verify::verify_proof` with a
//! fixed verifier (the seed vault's key, so that the seeds' checkpoints verify and the audit
//! path is checked), and the receipt shape of `cli::audit::verify_proof_file` /
//! `receipt_claim` (private there; its JSON navigation is repeated here with public API).
//! The proof's numbers and path also go straight to `merkle::verify_inclusion` and
//! `merkle::verify_consistency`, against the checkpoint's root when it verifies.
#![no_main]

use std::sync::OnceLock;

use base64::{engine::general_purpose::STANDARD, Engine as _};
use cvvault::audit::entry::{Entry, Outcome};
use cvvault::audit::merkle::{self, Hash};
use cvvault::audit::note::NoteVerifier;
use cvvault::audit::verify::{verify_proof, InclusionProof};
use cvvault::ids::CandidateId;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// The verifier key of the vault the corpus seeds were made with (fuzz/README.md).
const SEED_VKEY: &str =
    "cvvault.local/707668c5-2aa9-4edd-98f2-fe78f70b1ca3+f65a50bb+AQBqvuskQQNXCxuDmMnvSLdcOh2CNfQwywmRw7oYwjY7";
/// `cli::audit::RECEIPT_FORMAT` (private).
const RECEIPT_FORMAT: &str = "cvvault-erasure-receipt/v1";

fn verifier() -> &'static NoteVerifier {
    static VERIFIER: OnceLock<NoteVerifier> = OnceLock::new();
    VERIFIER.get_or_init(|| NoteVerifier::parse(SEED_VKEY).expect("the seed vault's key"))
}

/// `verify_proof`, and the Merkle checks on the proof's untrusted numbers and path.
fn check_proof(proof: &InclusionProof) -> bool {
    let verified = verify_proof(proof, verifier());
    let root: Hash = match &verified {
        Ok(checkpoint) => {
            assert_eq!(checkpoint.size, proof.tree_size);
            assert!(proof.index < proof.tree_size);
            checkpoint.root
        }
        Err(_) => [0u8; 32],
    };
    let path: Vec<Hash> = proof.proof.iter().filter_map(|h| decode_hash(h)).collect();
    let leaf = merkle::leaf_hash(proof.entry.as_bytes());
    let _ = merkle::verify_inclusion(&leaf, proof.index, proof.tree_size, &path, &root);
    let _ = merkle::verify_consistency(proof.index, proof.tree_size, &leaf, &root, &path);
    // The proof type round-trips through its own serialization.
    let json = serde_json::to_vec(proof).expect("serialize a proof");
    let again: InclusionProof = serde_json::from_slice(&json).expect("re-read a proof");
    assert_eq!(&again, proof);
    verified.is_ok()
}

fn decode_hash(text: &str) -> Option<Hash> {
    STANDARD.decode(text).ok()?.try_into().ok()
}

/// `cli::audit::verify_proof_file` then `receipt_claim`, on an already-parsed JSON value.
fn check_document(value: Value) {
    let receipt = value.get("format").and_then(Value::as_str) == Some(RECEIPT_FORMAT);
    let pseudonym = value
        .get("candidate_pseudonym")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let claim = (
        value
            .get("candidate_id")
            .and_then(Value::as_str)
            .map(str::to_owned),
        pseudonym.clone(),
    );
    let proof_value = if receipt {
        value.get("proof").cloned().unwrap_or_default()
    } else {
        value
    };
    let Ok(proof) = serde_json::from_value::<InclusionProof>(proof_value) else {
        return;
    };
    if !check_proof(&proof) || !receipt {
        return;
    }
    let entry: Option<Entry> = serde_json::from_str(&proof.entry).ok();
    let erases = entry.is_some_and(|e| {
        matches!(e.action.as_str(), "candidate.erase" | "retention.erase")
            && e.decision == Outcome::Allow
            && pseudonym.is_some()
            && e.candidate == pseudonym
    });
    if erases {
        if let (Some(id), Some(_)) = claim {
            let _ = id.parse::<CandidateId>();
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(proof) = serde_json::from_slice::<InclusionProof>(data) {
        check_proof(&proof);
    }
    if let Ok(value) = serde_json::from_slice::<Value>(data) {
        check_document(value);
    }
});
