//! Paths and settings: flags > CVVAULT_* environment > defaults.
