//! Extract attempts that an edge refuses before the vault decides: past the principal's quota,
//! or not a well-formed request. They are audited like every other refusal, because many
//! extracts by one principal is what harvesting looks like (DOMAIN.md §1).

use super::{actor, new_request_id, Vault};
use crate::audit::entry::Outcome;
use crate::audit::log::Record;
use crate::error::Result;
use crate::ids::CandidateId;
use crate::policy::PrincipalFacts;
use crate::vocabulary::{FieldGroup, Purpose};

/// Why an edge refused an extract attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExtractRefusal {
    /// The principal used up its extract quota for the window (policy/limits.toml).
    QuotaExceeded,
    /// The request was malformed (a candidate id or purpose that does not parse, or an
    /// encrypted extract for a principal without a registered age recipient).
    InvalidRequest,
}

impl ExtractRefusal {
    /// The fixed note recorded in the audit entry.
    pub fn note(self) -> &'static str {
        match self {
            ExtractRefusal::QuotaExceeded => "quota-exceeded",
            ExtractRefusal::InvalidRequest => "invalid-request",
        }
    }
}

impl Vault {
    /// Records an extract attempt refused at the edge, as a deny entry with a fixed note.
    /// Nothing is read; the candidate is recorded (as its pseudonym) when the id parsed.
    pub fn refuse_extract(
        &self,
        principal: &PrincipalFacts,
        candidate_id: Option<CandidateId>,
        purpose: Option<&Purpose>,
        refusal: ExtractRefusal,
    ) -> Result<()> {
        if refusal == ExtractRefusal::QuotaExceeded {
            tracing::warn!(
                principal = %principal.principal_id,
                role = %principal.role,
                org = %principal.org,
                "extract quota exceeded: refused and audited (possible harvesting)"
            );
        }
        let mut record = Record::new(
            "extract",
            &actor(principal),
            Outcome::Deny,
            &new_request_id(),
        );
        record.candidate = candidate_id;
        record.purpose = purpose.map(ToString::to_string);
        record.groups = FieldGroup::DISCLOSABLE
            .iter()
            .map(|g| g.to_string())
            .collect();
        record.note = Some(refusal.note().to_owned());
        self.writer()
            .write(move |ctx| ctx.audit.append(record).map(|_| ()))
    }
}
