//! The README's first command: `cvvault demo` walks the whole lifecycle and succeeds.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::process::Command;

#[test]
fn the_demo_walks_the_whole_lifecycle() {
    let out = Command::new(env!("CARGO_BIN_EXE_cvvault"))
        .args(["demo", "--candidates", "60"])
        .env_remove("CVVAULT_PASSPHRASE")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for step in [
        "imported 60",
        "registering as an employer grants nothing",
        "disclosed: identity, contact, professional",
        "forbidden by special-never-to-employer",
        "KEK v2 current",
        "Subject access report",
        "erased 1 candidate(s)",
        "is in the log of",
        "MACs checked: true",
        "demo complete",
    ] {
        assert!(
            text.contains(step),
            "the demo output lacks `{step}`:\n{text}"
        );
    }
}
