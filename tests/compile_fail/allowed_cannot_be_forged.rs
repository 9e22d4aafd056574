// Making the proof of an allowed decision without asking policy.
use cvvault::ids::CandidateId;
use cvvault::policy::{Action, Allowed};

fn main() {
    let _forged = Allowed {
        action: Action::Erase,
        candidate_id: Some(CandidateId::random()),
        group: None,
        policy_ids: Vec::new(),
    };
}
