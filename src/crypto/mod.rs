//! Cryptography: the age keyring, envelope encryption of profiles, extracts to a recipient.
