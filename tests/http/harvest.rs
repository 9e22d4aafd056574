//! Harvesting: an employer with no assignments asks for 1,000 extracts of existing and random
//! ids. Every answer is the same 404 until the quota is used up, then 429 with Retry-After;
//! and the audit trail holds an entry for every one of the 1,000 attempts.

use std::collections::BTreeMap;

use crate::support::Api;

const QUOTA: usize = 50;
const ATTEMPTS: usize = 1_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_employer_harvesting_ids_gets_404_then_429_and_every_attempt_is_audited() {
    let api = Api::new(&format!(
        "[extract]\nextracts = {QUOTA}\nwindow_seconds = 3600\n\n[http]\nmax_body_bytes = 65536\n"
    ));
    let existing: Vec<_> = (0..20)
        .map(|n| api.register(&format!("HARVEST-{n}"), n % 5 == 0, true))
        .collect();
    // Someone else's candidate, matched to another employer: "not yours" must look like "no such".
    api.assign(existing[1], "emp2-org", "matching", "recruitment");
    let before: Vec<_> = api.entries();

    let mut first_404: Option<axum::body::Bytes> = None;
    let mut statuses = BTreeMap::new();
    for attempt in 0..ATTEMPTS {
        let id = if attempt % 3 == 0 {
            existing[attempt % existing.len()].to_string()
        } else {
            uuid::Uuid::new_v4().to_string()
        };
        let reply = api
            .get(
                &format!("/v1/candidates/{id}/extract?purpose=recruitment"),
                "emp",
            )
            .await;
        *statuses.entry(reply.status.as_u16()).or_insert(0) += 1;
        if attempt < QUOTA {
            reply.expect(404);
            // The same body for an existing, a protected, someone else's and a random id.
            match &first_404 {
                None => first_404 = Some(reply.body.clone()),
                Some(body) => assert_eq!(&reply.body, body, "attempt {attempt}"),
            }
        } else {
            reply.expect(429);
            crate::support::assert_problem(&reply);
            let retry: u64 = reply.headers["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((1..=3600).contains(&retry), "Retry-After {retry}");
            assert!(!reply.text().contains("HARVEST"));
        }
    }
    assert_eq!(
        statuses,
        BTreeMap::from([(404, QUOTA), (429, ATTEMPTS - QUOTA)])
    );

    // Another principal is not affected by the employer's quota.
    api.get(
        &format!("/v1/candidates/{}/extract?purpose=recruitment", existing[1]),
        "emp2",
    )
    .await
    .expect(200);

    let entries = api.entries();
    let attempts: Vec<_> = entries[before.len()..]
        .iter()
        .filter(|e| e.action == "extract" && e.actor == "emp")
        .collect();
    assert_eq!(attempts.len(), ATTEMPTS, "one audit entry per attempt");
    assert!(attempts
        .iter()
        .all(|e| e.decision == cvvault::audit::entry::Outcome::Deny));
    let mut notes = BTreeMap::new();
    for e in &attempts {
        *notes.entry(e.note.clone().unwrap_or_default()).or_insert(0) += 1;
        assert!(
            e.candidate
                .as_deref()
                .is_some_and(|c| c.starts_with("hmac-sha256:")),
            "the attempted id is recorded as a pseudonym"
        );
    }
    assert_eq!(
        notes.get("quota-exceeded"),
        Some(&(ATTEMPTS - QUOTA)),
        "{notes:?}"
    );
    assert_eq!(notes.values().sum::<usize>(), ATTEMPTS);
    // The DPO sees the harvesting in the refused requests of an existing candidate's report.
    let report = api
        .vault
        .subject_access(&api.facts("dpo"), &existing[0])
        .unwrap();
    assert!(report.refused_requests > 0);
}
