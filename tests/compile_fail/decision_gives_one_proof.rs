// Turning one allowed decision into two proofs (one for now, one kept for later).
use cvvault::policy::Decision;

fn twice(decision: Decision) {
    let _now = decision.allowed();
    let _later = decision.allowed();
}

fn main() {}
