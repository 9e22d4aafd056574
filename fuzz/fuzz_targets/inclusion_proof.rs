//! What `audit verify-proof FILE` reads (a file from anyone), with a fixed verifier key (the
//! seed vault's, so that the seeds' checkpoints verify and the checks behind the signature
//! are reached), following the dispatch of `cli::audit` (`verify_consistency_file`,
//! `verify_proof_file`, `receipt_claim`: private there, their JSON navigation repeated here):
//!
//! - `format` = `cvvault-audit-export/v1`: `verify::ExportBundle` + `verify::verify_bundle`;
//! - `format` = `cvvault-consistency-proof/v1`: `verify::ConsistencyProof` +
//!   `verify::verify_consistency_proof`;
//! - an erasure receipt (`format`, `candidate_id`, `candidate_pseudonym`, `proof`) or a bare
//!   `verify::InclusionProof` + `verify::verify_proof`, then the receipt's erase-entry check.
//!
//! The input is also read directly as each of the three types. The untrusted numbers and
//! hashes also go straight to `merkle::verify_inclusion`, `merkle::verify_consistency` and
//! `merkle::Frontier`; the input as bytes to `Frontier::from_bytes`.
#![no_main]

use std::sync::OnceLock;

use base64::{engine::general_purpose::STANDARD, Engine as _};
use cvvault::audit::entry::{Entry, Outcome};
use cvvault::audit::merkle::{self, Frontier, Hash};
use cvvault::audit::note::NoteVerifier;
use cvvault::audit::verify::{
    verify_bundle, verify_consistency_proof, verify_proof, ConsistencyProof, ExportBundle,
    InclusionProof, BUNDLE_FORMAT, CONSISTENCY_FORMAT,
};
use cvvault::ids::CandidateId;
use libfuzzer_sys::fuzz_target;
use serde::{de::DeserializeOwned, Serialize};
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

fn decode_hash(text: &str) -> Option<Hash> {
    STANDARD.decode(text).ok()?.try_into().ok()
}

fn decode_all(hashes: &[String]) -> Vec<Hash> {
    hashes.iter().filter_map(|h| decode_hash(h)).collect()
}

/// A document type round-trips through its own serialization.
fn round_trips<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(value: &T) {
    let json = serde_json::to_vec(value).expect("serialize");
    let again: T = serde_json::from_slice(&json).expect("re-read what was serialized");
    assert_eq!(&again, value);
}

/// `verify_proof`, and the Merkle checks on the proof's untrusted numbers and path.
fn check_inclusion(proof: &InclusionProof) -> bool {
    let verified = verify_proof(proof, verifier());
    let root: Hash = match &verified {
        Ok(checkpoint) => {
            assert_eq!(checkpoint.size, proof.tree_size);
            assert!(proof.index < proof.tree_size);
            checkpoint.root
        }
        Err(_) => [0u8; 32],
    };
    let path = decode_all(&proof.proof);
    let leaf = merkle::leaf_hash(proof.entry.as_bytes());
    let _ = merkle::verify_inclusion(&leaf, proof.index, proof.tree_size, &path, &root);
    let _ = merkle::verify_consistency(proof.index, proof.tree_size, &leaf, &root, &path);
    round_trips(proof);
    verified.is_ok()
}

/// `verify_consistency_proof`, and `merkle::verify_consistency` on its numbers.
fn check_consistency(proof: &ConsistencyProof) {
    let verified = verify_consistency_proof(proof, verifier());
    let (new_root, old_root) = match &verified {
        Ok((checkpoint, old_root)) => {
            assert_eq!(checkpoint.size, proof.new_size);
            assert!(proof.old_size <= proof.new_size);
            (checkpoint.root, *old_root)
        }
        Err(_) => ([0u8; 32], decode_hash(&proof.old_root).unwrap_or_default()),
    };
    let path = decode_all(&proof.proof);
    let _ = merkle::verify_consistency(proof.old_size, proof.new_size, &old_root, &new_root, &path);
    round_trips(proof);
}

/// `verify_bundle`, and a `Frontier` built from the bundle's untrusted start and subtrees.
fn check_bundle(bundle: &ExportBundle) {
    if let Ok(checkpoint) = verify_bundle(bundle, verifier()) {
        assert_eq!(checkpoint.size, bundle.end);
        assert_eq!(
            bundle.entries.len() as u64,
            bundle.end.saturating_sub(bundle.start)
        );
    }
    if let Ok(mut frontier) =
        Frontier::from_subtrees(bundle.start, decode_all(&bundle.start_subtrees))
    {
        let _ = frontier.root();
        for entry in &bundle.entries {
            if frontier.push(merkle::leaf_hash(entry.as_bytes())).is_err() {
                break;
            }
        }
        let _ = frontier.root();
        let bytes = frontier.to_bytes();
        assert_eq!(Frontier::from_bytes(&bytes).as_ref(), Ok(&frontier));
    }
    round_trips(bundle);
}

/// The receipt shape of `verify_proof_file` then `receipt_claim`.
fn check_proof_or_receipt(value: Value) {
    let receipt = value.get("format").and_then(Value::as_str) == Some(RECEIPT_FORMAT);
    let pseudonym = value
        .get("candidate_pseudonym")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let candidate_id = value
        .get("candidate_id")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let proof_value = if receipt {
        value.get("proof").cloned().unwrap_or_default()
    } else {
        value
    };
    let Ok(proof) = serde_json::from_value::<InclusionProof>(proof_value) else {
        return;
    };
    if !check_inclusion(&proof) || !receipt {
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
        if let (Some(id), Some(_)) = (candidate_id, pseudonym) {
            let _ = id.parse::<CandidateId>();
        }
    }
}

/// The dispatch of `audit verify-proof FILE` on a JSON value.
fn check_document(value: Value) {
    let format = value.get("format").and_then(Value::as_str);
    if format == Some(BUNDLE_FORMAT) {
        if let Ok(bundle) = serde_json::from_value::<ExportBundle>(value) {
            check_bundle(&bundle);
        }
    } else if format == Some(CONSISTENCY_FORMAT) {
        if let Ok(proof) = serde_json::from_value::<ConsistencyProof>(value) {
            check_consistency(&proof);
        }
    } else {
        check_proof_or_receipt(value);
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(proof) = serde_json::from_slice::<InclusionProof>(data) {
        check_inclusion(&proof);
    }
    if let Ok(proof) = serde_json::from_slice::<ConsistencyProof>(data) {
        check_consistency(&proof);
    }
    if let Ok(bundle) = serde_json::from_slice::<ExportBundle>(data) {
        check_bundle(&bundle);
    }
    if let Ok(value) = serde_json::from_slice::<Value>(data) {
        check_document(value);
    }
    if let Ok(frontier) = Frontier::from_bytes(data) {
        assert_eq!(
            frontier.to_bytes(),
            data,
            "a frontier read is not the bytes it came from"
        );
    }
});
