//! `profile::json_resume::parse`: a JSON Resume (jsonresume.org v1.0.0) document mapped to a
//! vault profile. Never a panic; what it returns is validated (asserted again here).
#![no_main]

use cvvault::profile::json_resume;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(profile) = json_resume::parse(data) {
        if let Err(e) = profile.validate() {
            panic!("json_resume::parse returned a profile that validate() refuses: {e}");
        }
    }
});
