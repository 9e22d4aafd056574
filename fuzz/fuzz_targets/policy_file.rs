//! `PolicyEngine::from_sources`: the deployer's policy/ folder, checked before the vault
//! starts (`policy check`, `serve`, every CLI command). Never a panic, only Ok or an error.
//!
//! Mode 1: the shipped schema and `*.cedar` files plus one more file, `fuzz.cedar`, holding
//! the input. Mode 2: the input as the schema, with the shipped `*.cedar` files. Every input
//! is run in both modes. An engine that loads is linted and listed (also must not panic).
#![no_main]

use std::sync::OnceLock;

use cvvault::policy::{Action, PolicyEngine, DEFAULT_FILES};
use libfuzzer_sys::fuzz_target;

/// The shipped `*.cedar` files (`DEFAULT_FILES[0]` is the schema).
fn default_cedar_files() -> &'static [(String, String)] {
    static FILES: OnceLock<Vec<(String, String)>> = OnceLock::new();
    FILES.get_or_init(|| {
        DEFAULT_FILES[1..]
            .iter()
            .map(|(name, text)| ((*name).to_owned(), (*text).to_owned()))
            .collect()
    })
}

fn exercise(engine: &PolicyEngine) {
    let _ = engine.lint();
    let _ = engine.policies();
    let _ = engine.purposes();
    let _ = engine.policy_hash();
    for action in Action::ALL {
        let _ = engine.roles_permitted(action);
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data).into_owned();

    // Mode 1: the input as an extra policy file.
    let schema = DEFAULT_FILES[0].1;
    let mut files = default_cedar_files().to_vec();
    files.push(("fuzz.cedar".to_owned(), text.clone()));
    if let Ok(engine) = PolicyEngine::from_sources(schema, &files) {
        exercise(&engine);
    }

    // Mode 2: the input as the schema.
    if let Ok(engine) = PolicyEngine::from_sources(&text, default_cedar_files()) {
        exercise(&engine);
    }
});
