//! One shape for every refusal about a candidate. The 2026-12 probes found that an employer
//! could tell candidates apart by what a refusal cost, by a 403 where others got 404 (a
//! subject asking about someone else), and by a 500 for a damaged record. For employers,
//! providers and another candidate's subject, a candidate that does not exist, is erased, is
//! damaged or is not theirs gets the same status and the same bytes on every route that
//! names one, a row holding a value of the wrong type included. (What it costs is measured by `benches/refusal_timing.rs`, not asserted here.)

use crate::support::{body_for, Api, LIMITS};
use cvvault::ids::CandidateId;

/// Flips one byte of the candidate's sealed control group: its record no longer opens.
fn damage(api: &Api, id: &CandidateId) {
    let raw = rusqlite::Connection::open(api.paths.database()).unwrap();
    let mut control: Vec<u8> = raw
        .query_row(
            "SELECT control FROM sealed_profiles WHERE candidate_id = ?1",
            [&id.as_bytes()[..]],
            |r| r.get(0),
        )
        .unwrap();
    let middle = control.len() / 2;
    control[middle] ^= 0x01;
    raw.execute(
        "UPDATE sealed_profiles SET control = ?1 WHERE candidate_id = ?2",
        rusqlite::params![control, &id.as_bytes()[..]],
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_says_nothing_about_whether_the_candidate_exists_is_erased_or_damaged() {
    crate::sqlite_only!();
    let mut api = Api::new(LIMITS);
    let operations = api.candidate_operations().await;

    // What each target is; none of them is the asking principal's to see.
    let unrelated = api.register("CONCEAL-UNRELATED", false, true);
    let erased = api.register("CONCEAL-ERASED", false, true);
    api.vault.erase(&api.facts("cw"), &erased).unwrap();
    // Linked to both organisations, then damaged: before, the employer got a 500 for it.
    let damaged = api.register("CONCEAL-DAMAGED", false, true);
    api.assign(damaged, "coach-org", "coaching", "coaching");
    api.assign(damaged, "emp-org", "matching", "recruitment");
    damage(&api, &damaged);
    // A key row whose wrapped key was replaced by text: a value of the wrong type.
    let mistyped = api.register("CONCEAL-MISTYPED", false, true);
    api.assign(mistyped, "emp-org", "matching", "recruitment");
    rusqlite::Connection::open(api.paths.database())
        .unwrap()
        .execute(
            "UPDATE candidate_keys SET wrapped_dek = 'not a key' WHERE candidate_id = ?1",
            [&mistyped.as_bytes()[..]],
        )
        .unwrap();
    let missing = CandidateId::random();
    let targets = [
        ("unrelated", unrelated),
        ("missing", missing),
        ("erased", erased),
        ("damaged", damaged),
        ("mistyped", mistyped),
    ];
    // Another candidate's subject asks too.
    let someone = api.register("CONCEAL-SUBJECT", false, true);
    let subject = api.subject(someone);

    let mut differences = Vec::new();
    for (role, token, purpose) in [
        ("emp", api.token("emp").to_owned(), "recruitment"),
        ("coach", api.token("coach").to_owned(), "coaching"),
        ("other subject", subject, "subject-access"),
    ] {
        for (method, template) in &operations {
            let body = body_for(method, template);
            let mut answers = Vec::new();
            for (name, id) in &targets {
                let mut path = template.replace("{candidate_id}", &id.to_string());
                if path.ends_with("/extract") {
                    path.push_str(&format!("?purpose={purpose}"));
                }
                let reply = api
                    .call(method.clone(), &path, Some(&token), body.as_deref())
                    .await;
                answers.push((*name, reply.status.as_u16(), reply.text()));
            }
            let (_, status, text) = answers[0].clone();
            if status != 404 {
                differences.push(format!("{method} {template} as {role}: {status} {text}"));
            }
            for (name, other_status, other_text) in &answers[1..] {
                if (*other_status, other_text) != (status, &text) {
                    differences.push(format!(
                        "{method} {template} as {role}: unrelated gave {status} {text}, {name} gave {other_status} {other_text}"
                    ));
                }
            }
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));

    // The damaged record is on the record for the DPO, and still opens for no one.
    let entries = api.vault.audit_search(&api.facts("dpo"), &damaged).unwrap();
    assert!(
        entries.iter().any(|e| e
            .note
            .as_deref()
            .is_some_and(|n| n.starts_with("unreadable"))),
        "the refusals of the damaged record are audited as unreadable"
    );
}
