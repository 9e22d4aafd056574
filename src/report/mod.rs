//! The reports GDPR asks of a data-protection officer, shared by the CLI (`cvvault report`) and the DPO console.
pub mod breach;
pub mod processing;
