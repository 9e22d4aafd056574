//! `Profile::from_document` (cvvault JSON or JSON Resume) and `Profile::from_update_document`:
//! the bytes of `candidate add` / `candidate update` and of the HTTP API's profile bodies.
//!
//! Never a panic; a profile accepted by `from_document` passes `validate()` (the fast path
//! uses `validate_parsed`, which skips the serialized-size check when it cannot matter).
#![no_main]

use cvvault::profile::Profile;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(profile) = Profile::from_document(data) {
        if let Err(e) = profile.validate() {
            panic!("from_document accepted a profile that validate() refuses: {e}");
        }
    }
    if let Ok((profile, groups)) = Profile::from_update_document(data) {
        assert!(
            !groups.is_empty(),
            "an update document with no group was accepted"
        );
        // Replacing those groups of an empty profile must not panic either.
        let mut base = Profile::default();
        base.take_groups(&profile, &groups);
    }
});
