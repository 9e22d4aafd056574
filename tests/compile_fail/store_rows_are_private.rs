// Erasing a candidate straight through the store, with no decision and no audit entry.
fn main() {
    let _erase = cvvault::store::rows::erase_candidate;
    let _read = cvvault::store::rows::sealed_profile;
}
