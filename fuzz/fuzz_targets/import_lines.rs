//! `candidate import`: newline-delimited profiles, each trimmed non-blank line read with
//! `Profile::from_document` (as `vault::candidates::for_each_line` does; lines longer than
//! 256 KiB never reach the parser there, and are refused by `from_document` by size here).
#![no_main]

use cvvault::profile::Profile;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for line in data.split(|&b| b == b'\n') {
        let line = line.trim_ascii();
        if line.is_empty() {
            continue;
        }
        if let Ok(profile) = Profile::from_document(line) {
            if let Err(e) = profile.validate() {
                panic!("an import line was accepted that validate() refuses: {e}");
            }
        }
    }
});
