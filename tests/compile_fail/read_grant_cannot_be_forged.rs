// Making a read grant (the proof a sealed profile is read with) without asking policy.
use cvvault::policy::{Decision, ReadGrant};

fn grant(decision: Decision) -> ReadGrant {
    ReadGrant {
        candidate_id: cvvault::ids::CandidateId::random(),
        principal_id: "emp".parse().unwrap(),
        purpose: "recruitment".parse().unwrap(),
        identity: decision.clone(),
        contact: decision.clone(),
        professional: decision.clone(),
        special: decision.clone(),
        control: decision,
    }
}

fn main() {}
