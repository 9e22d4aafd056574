//! Equal work for every refusal about a candidate. An employer or provider gets the same
//! "not found" for a candidate that does not exist as for one that is not theirs, but the
//! existing one used to cost a key unwrap, a control-group decryption, the store reads and a
//! Cedar decision more, which the 2026-12 probes measured (+180 to +375 µs median) and used
//! to tell the two apart. When there is no such candidate, the vault does the same work on a
//! decoy instead: a candidate that lives only in memory, with a data key wrapped under a key
//! of its own, a sealed control group, and the store reads of a stand-in candidate's rows
//! (read and checked, never decrypted, nothing of them returned).

use super::Vault;
use crate::crypto::envelope::{Dek, WrappedDek};
use crate::crypto::keyring::Keyring;
use crate::error::Result;
use crate::ids::CandidateId;
use crate::policy::{CandidateFacts, PrincipalFacts};
use crate::profile::Control;
use crate::store::rows::{self, RECORD_VERSION};
use crate::vocabulary::{FieldGroup, Purpose};

/// A candidate that exists only in this process, to do a real candidate's work on.
pub(crate) struct Decoy {
    id: CandidateId,
    /// The highest key slot seen, so that a stand-in is found with one lookup (refreshed
    /// when a lookup runs past the end).
    highest_slot: std::sync::atomic::AtomicU64,
    ring: Keyring,
    wrapped: WrappedDek,
    control: Vec<u8>,
}

impl Decoy {
    /// A fresh decoy: its own keyring (never written anywhere), a DEK wrapped under it, and
    /// a sealed default control group.
    pub(crate) fn new() -> Result<Decoy> {
        let ring = Keyring::generate()?;
        let id = CandidateId::random();
        let dek = Dek::generate()?;
        let plain = serde_json::to_vec(&Control::default()).map_err(|_| crate::Error::Corrupt {
            what: "a control group could not be encoded",
        })?;
        let control = dek
            .cipher(id)?
            .seal(FieldGroup::Control, RECORD_VERSION, &plain)?;
        Ok(Decoy {
            highest_slot: std::sync::atomic::AtomicU64::new(0),
            wrapped: dek.wrap(&ring, &id)?,
            id,
            ring,
            control,
        })
    }
}

impl Vault {
    /// The work of reading a real candidate's facts and deciding `decide` on them, done on
    /// the decoy. Its result is thrown away; errors are too (the caller's answer is already
    /// "not found").
    /// No refused path reads a sealed profile (only a grant of some group lets the store read
    /// one), so neither does the decoy. `asked`: the pseudonym of what the request named; the stand-in is
    /// chosen by it, so that asking for the same missing id again reads the same, by then
    /// warm, pages, as asking for the same existing id does.
    pub(crate) fn decoy_work(
        &self,
        principal: &PrincipalFacts,
        asked: &str,
        decide: impl FnOnce(&CandidateFacts),
    ) {
        let decoy = &self.decoy;
        let read = self.readers().read(|conn| {
            // The reads a real candidate's facts and profile take, on a real candidate's rows
            // (a stand-in chosen by the keyed pseudonym of what was asked: read, checked,
            // never decrypted), so that the pages read are as many, and as warm on a repeated
            // question, as for a candidate that exists.
            let slot = asked
                .rsplit(':')
                .next()
                .and_then(|hex| hex.get(..16))
                .and_then(|digits| u64::from_str_radix(digits, 16).ok())
                .unwrap_or(0);
            use std::sync::atomic::Ordering;
            let mut highest = decoy.highest_slot.load(Ordering::Relaxed);
            if highest == 0 {
                highest = rows::highest_slot(conn)?;
                decoy.highest_slot.store(highest, Ordering::Relaxed);
            }
            let mut stand_in = rows::candidate_at_slot(conn, slot % highest.max(1))?;
            if stand_in.is_none() {
                decoy
                    .highest_slot
                    .store(rows::highest_slot(conn)?, Ordering::Relaxed);
                stand_in = rows::candidate_at_slot(conn, 0)?;
            }
            let stand_in = stand_in.unwrap_or(decoy.id);
            let keys = rows::candidate_keys_and_control(conn, self.integrity(), &stand_in);
            let orgs = rows::open_orgs(conn, self.integrity(), &stand_in, None);
            std::hint::black_box((keys.is_ok(), orgs.is_ok()));
            Ok(())
        });
        let _ = read;
        let facts = (|| -> Result<CandidateFacts> {
            let dek = Dek::unwrap(&decoy.ring, &decoy.id, &decoy.wrapped)?;
            let plain =
                dek.cipher(decoy.id)?
                    .open(FieldGroup::Control, RECORD_VERSION, &decoy.control)?;
            let control: Control =
                serde_json::from_slice(&plain).map_err(|_| crate::Error::Corrupt {
                    what: "a control group does not parse",
                })?;
            Ok(CandidateFacts {
                candidate_id: decoy.id,
                protected: control.protected,
                employer_contact_consent: control.consents.employer_contact,
                coaching_orgs: Vec::new(),
                matching_orgs: Vec::new(),
            })
        })();
        if let Ok(facts) = facts {
            let _ = principal;
            decide(std::hint::black_box(&facts));
        }
    }

    /// [`Vault::decoy_work`] for a read of every group of `asked` for `purpose`.
    pub(crate) fn decoy_read(
        &self,
        principal: &PrincipalFacts,
        asked: &CandidateId,
        purpose: &Purpose,
    ) {
        let asked = self.pseudonyms().candidate(asked);
        self.decoy_work(principal, &asked, |facts| {
            std::hint::black_box(self.policy().decide_read(principal, facts, purpose));
        });
    }
}
