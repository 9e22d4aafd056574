// Making a read grant (the proof a sealed profile is read with) without asking policy.
use cvvault::policy::{Decision, ReadGrant};

fn grant(a: Decision, b: Decision, c: Decision, d: Decision, e: Decision) -> ReadGrant {
    ReadGrant {
        candidate_id: cvvault::ids::CandidateId::random(),
        principal_id: "emp".parse().unwrap(),
        purpose: "recruitment".parse().unwrap(),
        identity: a,
        contact: b,
        professional: c,
        special: d,
        control: e,
    }
}

fn main() {}
