//! The C2SP checkpoint / signed-note parsers of `cvvault::audit::note`: checkpoints and
//! verifier keys come from outside the vault (`audit verify --checkpoint FILE`,
//! `audit verify-proof --key`, proofs and receipts handed to a third party).
//!
//! - `Checkpoint::parse_body` on the text; an accepted body re-encodes to the same text, and
//!   signed with a key generated once (`generate_pkcs8` + `NoteSigner::from_pkcs8`) it verifies
//!   back to the same checkpoint.
//! - `NoteVerifier::parse` on the text.
//! - `NoteVerifier::verify` (which opens the signed note, then parses its body) on the text,
//!   with the generated key and with the fixed key of the seed vault (so that the seeds,
//!   real signed checkpoints, get past the signature check).
//! - The first line as a verifier key and the rest as a note verified with it.
#![no_main]

use std::sync::OnceLock;

use cvvault::audit::note::{generate_pkcs8, Checkpoint, NoteSigner, NoteVerifier};
use libfuzzer_sys::fuzz_target;

/// The verifier key of the vault the corpus seeds were made with (fuzz/README.md).
const SEED_VKEY: &str =
    "cvvault.local/707668c5-2aa9-4edd-98f2-fe78f70b1ca3+f65a50bb+AQBqvuskQQNXCxuDmMnvSLdcOh2CNfQwywmRw7oYwjY7";

struct Keys {
    signer: NoteSigner,
    generated: NoteVerifier,
    seed: NoteVerifier,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let pkcs8 = generate_pkcs8().expect("generate an Ed25519 key");
        let signer =
            NoteSigner::from_pkcs8("fuzz.example/cvvault-audit", &pkcs8).expect("a valid signer");
        let generated = NoteVerifier::parse(&signer.verifier_key()).expect("its verifier key");
        let seed = NoteVerifier::parse(SEED_VKEY).expect("the seed vault's verifier key");
        Keys {
            signer,
            generated,
            seed,
        }
    })
}

fn check_note(verifier: &NoteVerifier, text: &str) {
    if let Ok(checkpoint) = verifier.verify(text) {
        // What was verified is the text before the signatures: it starts the note.
        assert!(
            text.starts_with(&checkpoint.body()),
            "verify returned a checkpoint that is not the note's text"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let keys = keys();
    let text = String::from_utf8_lossy(data);
    let text: &str = &text;

    if let Ok(checkpoint) = Checkpoint::parse_body(text) {
        assert_eq!(
            checkpoint.body(),
            text,
            "an accepted checkpoint is not canonical"
        );
        let note = keys
            .signer
            .sign(&checkpoint)
            .expect("a parsed checkpoint's origin can be signed");
        assert_eq!(
            keys.generated.verify(&note).as_ref(),
            Ok(&checkpoint),
            "a signed checkpoint does not verify"
        );
    }

    if let Ok(verifier) = NoteVerifier::parse(text) {
        assert!(text.starts_with(verifier.name()));
    }

    check_note(&keys.generated, text);
    check_note(&keys.seed, text);

    if let Some((vkey, note)) = text.split_once('\n') {
        if let Ok(verifier) = NoteVerifier::parse(vkey) {
            check_note(&verifier, note);
        }
    }
});
