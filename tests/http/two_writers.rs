//! Regression: two vaults on one database (a `cvvault token issue` while `cvvault serve`
//! runs) must keep one audit tree. The writer used to append with a stale tree edge after the
//! other process appended, and fail every write from then on.

use cvvault::vault::Vault;

use crate::common::Fixture;

#[test]
fn appends_from_two_vaults_on_one_database_interleave_into_one_verified_tree() {
    let fixture = Fixture::new();
    let other = Vault::open(&fixture.paths, &fixture.unlock()).unwrap();
    let employer: cvvault::ids::PrincipalId = "emp".parse().unwrap();
    for round in 0..5 {
        fixture.vault.issue_token(&employer).unwrap();
        other.issue_token(&employer).unwrap();
        fixture.register_marked(&format!("TW-{round}"), false, false);
        fixture.vault.sign_checkpoint().unwrap();
        other.sign_checkpoint().unwrap();
    }
    other.close().unwrap();
    let dpo = fixture.as_("dpo");
    let report = fixture.vault.audit_verify(&dpo, vec![], &|_| {}).unwrap();
    let tokens = fixture.vault.list_tokens().unwrap();
    assert_eq!(tokens.len(), 10);
    assert!(report.entries > 20, "{}", report.entries);
}
