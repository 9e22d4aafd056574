// Opening a candidate's data key without the vault.
fn main() {
    let _dek = cvvault::crypto::envelope::Dek::generate();
    let _ring = cvvault::crypto::keyring::Keyring::open;
}
