// Making an "allow" decision by hand, to turn it into a proof.
use cvvault::policy::{Action, Decision, Verdict};

fn main() {
    let allow = Decision {
        verdict: Verdict::Allow,
        policy_ids: Vec::new(),
        failed_policy_ids: Vec::new(),
        action: Action::Read,
        candidate_id: None,
        group: None,
    };
    let _proof = allow.allowed();
}
