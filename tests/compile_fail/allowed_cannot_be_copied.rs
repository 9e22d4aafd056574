// Keeping a proof of one decision to use it again: a proof is neither Clone nor Copy.
use cvvault::policy::Allowed;

fn keep(proof: &Allowed) -> Allowed {
    proof.clone()
}

fn main() {}
