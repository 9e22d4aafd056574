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

#[test]
fn each_step_shows_its_command_line_and_only_a_kept_demo_points_at_its_files() {
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_cvvault"))
            .args(args)
            .env_remove("CVVAULT_PASSPHRASE")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let text = run(&["demo", "--candidates", "5"]);
    // Every numbered step is followed by the command line that does it.
    let steps: Vec<&str> = text.split("\n== ").skip(1).collect();
    assert!(steps.len() >= 14, "{text}");
    for step in &steps {
        assert!(
            step.contains("\n  $ cvvault ") || step.starts_with("5. registering"),
            "a step without its command line:\n{step}"
        );
    }
    for line in [
        "  $ cvvault init",
        "  $ cvvault retention run --dry-run",
        "  $ cvvault audit verify --as dpo-sara",
    ] {
        assert!(text.contains(line), "{text}");
    }
    // Deleted at the end: no path to open, but how to keep it.
    assert!(!text.contains("age -d -i"), "{text}");
    assert!(text.contains("cvvault demo --keep"), "{text}");

    let kept = run(&["demo", "--candidates", "5", "--keep"]);
    let dir = kept
        .lines()
        .find_map(|l| l.strip_prefix("kept the demo vault in "))
        .and_then(|rest| rest.split(':').next())
        .expect("the kept folder is named");
    let dir = std::path::Path::new(dir);
    assert!(dir.join("extract-hr-bygg.age").exists(), "{kept}");
    assert!(kept.contains(&format!(
        "age -d -i {}",
        dir.join("hr-bygg-identity.txt").display()
    )));
    std::fs::remove_dir_all(dir).unwrap();
}
