//! Rows written into the database by someone who holds no keyring (the 2026-12 review's M3:
//! a subject principal and a token inserted with `sqlite3` alone made the running server
//! hand out a protected candidate's whole profile). Every such row must get 401 or 404 and
//! be named by `audit verify`, never grant data.

use axum::http::Method;
use ring::digest;

use crate::common::{cvvault, stderr};
use crate::support::{Api, LIMITS};

const MARKER: &str = "FORGEDROWMARK";

fn sha256(text: &str) -> Vec<u8> {
    digest::digest(&digest::SHA256, text.as_bytes())
        .as_ref()
        .to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_inserted_without_the_keyring_grant_nothing_and_are_named() {
    crate::sqlite_only!();
    let api = Api::new(LIMITS);
    let protected = api.register(MARKER, true, true);
    let unrelated = api.register(&format!("{MARKER}-2"), false, true);
    let raw = rusqlite::Connection::open(api.paths.database()).unwrap();

    // 1. A subject principal for the protected candidate and a token for it, the way the
    //    previous version stored them (SHA-256 of a token the writer chose).
    let chosen = format!("cvv_{}_{}", "00000000000000aa", "ab".repeat(32));
    raw.execute(
        "INSERT INTO principals (principal_id, role, org_id, subject_candidate_id, disabled, created_at)
         VALUES ('ghost', 'subject', 'agency', ?1, 0, 0)",
        [&protected.as_bytes()[..]],
    )
    .unwrap();
    raw.execute(
        "INSERT INTO tokens (token_id, principal_id, token_hash, created_at) VALUES ('00000000000000aa', 'ghost', ?1, 0)",
        [sha256(&chosen)],
    )
    .unwrap();
    let reply = api
        .call(
            Method::GET,
            &format!("/v1/candidates/{protected}/extract?purpose=subject-access"),
            Some(&chosen),
            None,
        )
        .await;
    assert_eq!(reply.status.as_u16(), 401, "{}", reply.text());
    assert!(!reply.text().contains(MARKER));

    // 2. A real employer's token, with an assignment row linking its organisation to a
    //    candidate, inserted by hand.
    raw.execute(
        "INSERT INTO assignments (assignment_id, candidate_id, org_id, kind, purpose, opened_at, opened_by)
         VALUES (?1, ?2, 'emp-org', 'matching', 'recruitment', 0, 'cw')",
        rusqlite::params![&[9u8; 16][..], &unrelated.as_bytes()[..]],
    )
    .unwrap();
    let reply = api
        .call(
            Method::GET,
            &format!("/v1/candidates/{unrelated}/extract?purpose=recruitment"),
            Some(api.token("emp")),
            None,
        )
        .await;
    assert_eq!(reply.status.as_u16(), 404, "{}", reply.text());
    assert!(!reply.text().contains(MARKER));

    // 3. A disabled employer enabled again by hand, and a revoked token un-revoked.
    api.vault
        .set_principal_disabled(&"emp2".parse().unwrap(), true)
        .unwrap();
    raw.execute(
        "UPDATE principals SET disabled = 0 WHERE principal_id = 'emp2'",
        [],
    )
    .unwrap();
    let reply = api
        .call(
            Method::GET,
            "/v1/audit/checkpoint",
            Some(api.token("emp2")),
            None,
        )
        .await;
    assert_eq!(reply.status.as_u16(), 401, "{}", reply.text());
    let coach_token_id = &api.token("coach")[4..20];
    api.vault.revoke_token(coach_token_id).unwrap();
    raw.execute(
        "UPDATE tokens SET revoked_at = NULL WHERE token_id = ?1",
        [coach_token_id],
    )
    .unwrap();
    let reply = api
        .call(
            Method::GET,
            "/v1/audit/checkpoint",
            Some(api.token("coach")),
            None,
        )
        .await;
    assert_eq!(reply.status.as_u16(), 401, "{}", reply.text());

    // 3b. A real employer's token re-pointed at the DPO (whose role reads the audit trail).
    let emp_token_id = &api.token("emp")[4..20];
    raw.execute(
        "UPDATE tokens SET principal_id = 'dpo' WHERE token_id = ?1",
        [emp_token_id],
    )
    .unwrap();
    let reply = api
        .call(
            Method::GET,
            "/v1/audit/entries",
            Some(api.token("emp")),
            None,
        )
        .await;
    assert_eq!(reply.status.as_u16(), 401, "{}", reply.text());
    // And a real principal's role changed by hand.
    raw.execute(
        "UPDATE principals SET role = 'dpo' WHERE principal_id = 'coach'",
        [],
    )
    .unwrap();
    let dpo_view = api.vault.principal(&"coach".parse().unwrap());
    assert!(
        matches!(dpo_view, Err(cvvault::Error::Forged { .. })),
        "{:?}",
        dpo_view.map(|p| p.role)
    );

    // 4. A hold cleared by hand (so that retention would erase) is refused, not trusted.
    api.vault
        .set_hold(&api.facts("dpo"), &unrelated, true, "case 17")
        .unwrap();
    raw.execute(
        "UPDATE candidates SET legal_hold = 0, legal_hold_reason = NULL WHERE candidate_id = ?1",
        [&unrelated.as_bytes()[..]],
    )
    .unwrap();
    let erase = api.vault.erase(&api.facts("cw"), &unrelated);
    assert!(
        matches!(erase, Err(cvvault::Error::Forged { .. })),
        "{:?}",
        erase.err().map(|e| e.to_string())
    );
    drop(raw);

    // The real binary: acting as the forged principal is refused, and `audit verify` names
    // every forged row and fails.
    api.vault.close().unwrap();
    let ghost = cvvault(
        api.dir.path(),
        &[
            "--as",
            "ghost",
            "extract",
            "--candidate",
            &protected.to_string(),
            "--purpose",
            "subject-access",
        ],
    );
    assert_eq!(ghost.status.code(), Some(17), "{}", stderr(&ghost));
    assert!(
        stderr(&ghost).contains("principals row ghost"),
        "{}",
        stderr(&ghost)
    );
    assert!(!String::from_utf8_lossy(&ghost.stdout).contains(MARKER));
    let verify = cvvault(api.dir.path(), &["audit", "verify", "--as", "dpo"]);
    assert_eq!(verify.status.code(), Some(17), "{}", stderr(&verify));
    let message = stderr(&verify);
    for named in [
        "principals ghost",
        "principals emp2",
        "principals coach",
        &format!("tokens {emp_token_id}"),
        "tokens 00000000000000aa",
        &format!("tokens {coach_token_id}"),
        "assignments 09090909090909090909090909090909",
        &format!("candidates {}", hex::encode(unrelated.as_bytes())),
    ] {
        assert!(message.contains(named), "{named}: {message}");
    }
}
