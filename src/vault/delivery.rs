//! How an extract leaves the vault: as JSON to the caller, or encrypted to the principal's own
//! age recipient so that it can travel. Decided here for both edges (HTTP and CLI); they parse
//! the request, write the bytes, and add their own next step to an error.

use zeroize::Zeroizing;

use super::{ExtractRefusal, Vault};
use crate::crypto::extract::encrypt_to;
use crate::crypto::keyring::read_recipients;
use crate::error::{Error, Result};
use crate::ids::{CandidateId, PrincipalId};
use crate::policy::PrincipalFacts;
use crate::vocabulary::{FieldGroup, Purpose};

/// The media type of an extract encrypted to an age recipient (the binary age format).
pub const AGE_MEDIA_TYPE: &str = "application/age";

/// How the extract is to be delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Plain JSON, to the caller that asked (a terminal, an HTTPS response).
    Json,
    /// Encrypted to the principal's age recipient in `keys/recipients/<principal>.txt`,
    /// readable only with the principal's own identity (`age -d -i ...`).
    AgeToPrincipal,
}

/// An extract ready to hand over.
pub struct Delivered {
    /// The bytes: JSON, or an age file.
    pub bytes: Zeroizing<Vec<u8>>,
    /// Whether `bytes` is encrypted.
    pub encrypted: bool,
    /// `application/json` or [`AGE_MEDIA_TYPE`].
    pub media_type: &'static str,
    /// The groups it contains.
    pub groups: Vec<FieldGroup>,
    /// The audit entry that recorded the disclosure.
    pub audit_index: u64,
}

impl Vault {
    /// [`Vault::extract`], delivered as `delivery` says. An encrypted delivery for a principal
    /// with no registered recipient is refused (and audited) before anything is decided or
    /// disclosed.
    pub fn deliver_extract(
        &self,
        principal: &PrincipalFacts,
        candidate_id: &CandidateId,
        purpose: &Purpose,
        delivery: Delivery,
    ) -> Result<Delivered> {
        let recipients = match delivery {
            Delivery::Json => None,
            Delivery::AgeToPrincipal => match self.principal_recipients(&principal.principal_id) {
                Ok(recipients) => Some(recipients),
                Err(error) => {
                    self.refuse_extract(
                        principal,
                        Some(*candidate_id),
                        Some(purpose),
                        ExtractRefusal::InvalidRequest,
                    )?;
                    return Err(error);
                }
            },
        };
        let extract = self.extract(principal, candidate_id, purpose)?;
        let (bytes, media_type) = match &recipients {
            None => (extract.json, "application/json"),
            Some(recipients) => (
                Zeroizing::new(encrypt_to(recipients, &extract.json)?),
                AGE_MEDIA_TYPE,
            ),
        };
        Ok(Delivered {
            bytes,
            encrypted: recipients.is_some(),
            media_type,
            groups: extract.groups,
            audit_index: extract.audit_index,
        })
    }

    /// The age recipients a principal's extracts are encrypted to; [`Error::NoRecipient`]
    /// when none is registered.
    pub fn principal_recipients(
        &self,
        principal: &PrincipalId,
    ) -> Result<Vec<age::x25519::Recipient>> {
        let path = self.paths().principal_recipient(principal);
        if !path.exists() {
            return Err(Error::NoRecipient {
                principal: principal.to_string(),
                path,
            });
        }
        read_recipients(&path)
    }
}
