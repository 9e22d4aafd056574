//! Keeping a candidate current: replacing field groups of a profile (`update`), and finding a
//! candidate again by the agency's own reference (`find`).

use super::{actor, new_request_id, Vault};
use crate::audit::entry::Outcome;
use crate::audit::log::Record;
use crate::crypto::envelope::Dek;
use crate::error::{Error, Result};
use crate::ids::CandidateId;
use crate::policy::{Action, PrincipalFacts, Request};
use crate::profile::Profile;
use crate::store::rows::{self, SealedProfile, RECORD_VERSION};
use crate::vocabulary::FieldGroup;

/// What an update changed.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Updated {
    /// The candidate.
    pub candidate_id: CandidateId,
    /// The groups replaced.
    pub groups: Vec<FieldGroup>,
    /// The audit entry that recorded it.
    pub audit_index: u64,
}

impl Vault {
    /// Replaces field groups of a candidate's profile with those of `document` (a cvvault
    /// document, which may hold any of the groups, or a JSON Resume, which gives identity,
    /// contact and professional). `only` limits the update to these groups, each of which the
    /// document must hold; without it, every group the document holds is replaced and the
    /// others are kept.
    ///
    /// Decided by policy for each group replaced (`update`), and audited. The whole profile is
    /// sealed anew under a new data key, with fresh nonces, and the old key is shredded as an
    /// erasure shreds it: no copy of the old ciphertext that may remain in the database file
    /// can be opened. The WAL is then truncated, as after an erasure.
    pub fn update(
        &self,
        principal: &PrincipalFacts,
        candidate_id: &CandidateId,
        document: &[u8],
        only: Option<&[FieldGroup]>,
    ) -> Result<Updated> {
        let updated = self.update_quietly(principal, candidate_id, document, only)?;
        self.truncate_wal()?;
        Ok(updated)
    }

    /// [`Vault::update`] without truncating the WAL (an import truncates once at its end).
    pub(crate) fn update_quietly(
        &self,
        principal: &PrincipalFacts,
        candidate_id: &CandidateId,
        document: &[u8],
        only: Option<&[FieldGroup]>,
    ) -> Result<Updated> {
        let updated = self.update_decided(principal, candidate_id, document, only);
        self.conceal(principal, Some(candidate_id), "candidate", updated)
    }

    fn update_decided(
        &self,
        principal: &PrincipalFacts,
        candidate_id: &CandidateId,
        document: &[u8],
        only: Option<&[FieldGroup]>,
    ) -> Result<Updated> {
        let (replacement, groups) = groups_to_replace(document, only)?;
        let request_id = new_request_id();
        let facts = self
            .readers
            .read(|conn| self.erasure_facts(conn, candidate_id))?;
        let mut record = Record::new(
            "candidate.update",
            &actor(principal),
            Outcome::Deny,
            &request_id,
        );
        record.candidate = Some(*candidate_id);
        record.groups = groups.iter().map(|g| g.to_string()).collect();
        let Some((facts, unreadable)) = facts else {
            if self.hides(principal, Some(candidate_id)) {
                // INVARIANT: "not found" costs what "not yours" costs (see `decoy`).
                let asked = self.pseudonyms().candidate(candidate_id);
                self.decoy_work(principal, &asked, |facts| {
                    std::hint::black_box(self.policy.decide_update(principal, facts, &groups));
                });
            }
            record.note = Some("not-found".into());
            self.record(record)?;
            return Err(Error::NotFound { what: "candidate" });
        };
        let decision = self.policy.decide_update(principal, &facts, &groups);
        record.policy_ids = decision.policy_ids();
        let refused = decision.refused_groups();
        let Some(allowed) = decision.allowed() else {
            let named: Vec<String> = refused.iter().map(|g| g.to_string()).collect();
            return Err(self.refuse(
                principal,
                record,
                (
                    Action::Update,
                    format!(
                        "replacing the {} group(s) of this candidate",
                        named.join(", ")
                    ),
                ),
            )?);
        };
        if unreadable {
            // Decided on the most restrictive facts, but a profile that does not open cannot
            // be merged: on the record, and refused.
            record.note = Some("unreadable".into());
            self.record(record)?;
            return Err(Error::DecryptionFailed);
        }
        let allowed = std::sync::Arc::new(allowed);
        self.with_writing_keyring(|keyring| {
            let change = Replacement {
                id: *candidate_id,
                allowed: allowed.clone(),
                profile: replacement.clone(),
                groups: groups.clone(),
            };
            let record = record.clone();
            self.writer
                .write(move |ctx| replace_groups(ctx, &keyring, &change, record))
        })
    }

    /// The one candidate registered with this agency reference, for a principal that policy
    /// lets find it (`find`), audited. No listing, no partial match: an exact reference gives
    /// one id, or "not found".
    pub fn find_by_reference(
        &self,
        principal: &PrincipalFacts,
        reference: &str,
    ) -> Result<CandidateId> {
        let found = self.find_decided(principal, reference);
        self.conceal(principal, None, "candidate", found)
    }

    fn find_decided(&self, principal: &PrincipalFacts, reference: &str) -> Result<CandidateId> {
        crate::profile::check_agency_reference(reference).map_err(|_| {
            Error::invalid_input(format!(
                "an agency reference is the agency's case number: 1 to {} printable characters, without spaces around it",
                crate::profile::MAX_REFERENCE_BYTES
            ))
        })?;
        let mac = self.integrity.reference_mac(reference);
        let found = self.readers.read(|conn| {
            let Some(id) = rows::candidate_by_reference(conn, &self.integrity, &mac)? else {
                return Ok(None);
            };
            Ok(self.erasure_facts(conn, &id)?.map(|(facts, _)| (id, facts)))
        })?;
        let mut record = Record::new(
            "candidate.find",
            &actor(principal),
            Outcome::Deny,
            &new_request_id(),
        );
        let Some((id, facts)) = found else {
            if self.hides(principal, None) {
                // INVARIANT: "not found" costs what "not yours" costs (see `decoy`).
                self.decoy_work(principal, "agency-reference", |facts| {
                    std::hint::black_box(self.policy.decide(&Request::on_candidate(
                        principal,
                        Action::Find,
                        facts,
                    )));
                });
            }
            record.note = Some("not-found".into());
            self.record(record)?;
            return Err(Error::NotFound { what: "candidate" });
        };
        record.candidate = Some(id);
        let decision = self
            .policy
            .decide(&Request::on_candidate(principal, Action::Find, &facts));
        record.policy_ids = decision.policy_ids().to_vec();
        if !decision.is_allowed() {
            return Err(self.refuse(
                principal,
                record,
                (
                    Action::Find,
                    "finding candidates by agency reference".into(),
                ),
            )?);
        }
        record.decision = Outcome::Allow;
        self.record(record)?;
        Ok(id)
    }
}

/// The groups an update replaces, and their new contents, from its document and the groups
/// asked for.
fn groups_to_replace(
    document: &[u8],
    only: Option<&[FieldGroup]>,
) -> Result<(Profile, Vec<FieldGroup>)> {
    let (replacement, held) = Profile::from_update_document(document)?;
    let Some(only) = only.filter(|only| !only.is_empty()) else {
        return Ok((replacement, held));
    };
    let mut groups = Vec::with_capacity(only.len());
    for group in only {
        if !held.contains(group) {
            let holds: Vec<String> = held.iter().map(|g| g.to_string()).collect();
            return Err(Error::InvalidProfile {
                path: format!("$.{group}"),
                reason: format!(
                    "the document holds no {group} group to replace (it holds {}): write it as {{\"{group}\": {{...}}}}",
                    holds.join(", ")
                ),
            });
        }
        if !groups.contains(group) {
            groups.push(*group);
        }
    }
    Ok((replacement, groups))
}

/// An update's change, decided: what the writer replaces.
struct Replacement {
    id: CandidateId,
    allowed: std::sync::Arc<crate::policy::Allowed>,
    profile: Profile,
    groups: Vec<FieldGroup>,
}

/// The writer's part of an update: the kept groups opened, merged with the replacement,
/// sealed under a new DEK from `keyring`, and the entry.
fn replace_groups(
    ctx: &mut crate::store::WriteCtx<'_>,
    keyring: &crate::crypto::keyring::Keyring,
    change: &Replacement,
    mut record: Record,
) -> Result<Updated> {
    let Some(keys) = rows::candidate_keys(ctx.conn, ctx.integrity, &change.id)? else {
        return Err(Error::NotFound { what: "candidate" });
    };
    if let Some(reference) = &change.profile.agency_reference {
        let given = ctx.integrity.reference_mac(reference);
        if keys.reference_mac.as_deref() != Some(&given[..]) {
            return Err(Error::InvalidProfile {
                    path: "$.agency_reference".into(),
                    reason: "is not this candidate's agency reference: an update cannot change it; leave it out of the document".into(),
                });
        }
    }
    let old = rows::sealed_for_update(ctx.conn, &change.allowed)?.ok_or(Error::Corrupt {
        what: "a candidate has keys but no sealed profile",
    })?;
    // The groups kept are opened here, inside the vault, only to be sealed again.
    if keys.dek.kek_version > keyring.current_version() {
        // Rewrapped by a rotation that began after this keyring was chosen: the caller
        // prepares the write again with the rotated keyring. (A DEK under a version older
        // than the keyring holds is `Dek::unwrap`'s refusal, which says what to do.)
        return Err(Error::KeysRotated {
            current: keys.dek.kek_version,
            prepared_under: keyring.current_version(),
        });
    }
    let cipher = Dek::unwrap(keyring, &change.id, &keys.dek)?.cipher(change.id)?;
    let mut kept = Vec::with_capacity(FieldGroup::ALL.len());
    for group in FieldGroup::ALL
        .into_iter()
        .filter(|g| !change.groups.contains(g))
    {
        kept.push((
            group,
            cipher.open(group, old.record_version, old.group(group))?,
        ));
    }
    let mut profile = Profile::from_groups(kept.iter().map(|(g, b)| (*g, &b[..])))?;
    profile.take_groups(&change.profile, &change.groups);
    profile.validate()?;
    let dek = Dek::generate()?;
    let groups = dek
        .cipher(change.id)?
        .seal_all(RECORD_VERSION, profile.group_texts(0)?.all())?;
    let wrapped = dek.wrap(keyring, &change.id)?;
    rows::check_current_kek(
        ctx.conn,
        wrapped.kek_version,
        keyring.kek_id(wrapped.kek_version).as_deref(),
    )?;
    let sealed = SealedProfile {
        record_version: RECORD_VERSION,
        groups,
    };
    if !rows::replace_profile(ctx.conn, ctx.integrity, &change.allowed, &wrapped, &sealed)? {
        return Err(Error::NotFound { what: "candidate" });
    }
    record.decision = Outcome::Allow;
    let audit_index = ctx.audit.append(record)?;
    Ok(Updated {
        candidate_id: change.id,
        groups: change.groups.clone(),
        audit_index,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::super::testing::{beside_a_rotation, kek_version_of, unlock, vault_with_cw_and_emp};
    use super::*;

    #[test]
    fn an_update_prepared_just_before_a_rotation_rewrapped_its_key_is_prepared_again() {
        // Before: the writer found the candidate's DEK under a KEK version this keyring did
        // not hold yet and refused ("restart this process"), though the vault follows a
        // rotation without a restart.
        let dir = tempfile::tempdir().unwrap();
        let (paths, vault) = vault_with_cw_and_emp(dir.path());
        let operator = Vault::open(&paths, &unlock(&paths)).unwrap();
        let cw = vault.principal(&"cw".parse().unwrap()).unwrap();
        let id = vault
            .register(
                &cw,
                &crate::synth::Synth::new(4).profile_with_marker("OLDTEXT"),
            )
            .unwrap();
        // What `update_decided` does before the writer: the change, decided.
        let document =
            serde_json::to_vec(&crate::synth::Synth::new(5).profile_with_marker("NEWTEXT"))
                .unwrap();
        let (replacement, groups) =
            groups_to_replace(&document, Some(&[FieldGroup::Professional])).unwrap();
        let (facts, _) = vault
            .readers()
            .read(|conn| vault.erasure_facts(conn, &id))
            .unwrap()
            .unwrap();
        let allowed = std::sync::Arc::new(
            vault
                .policy
                .decide_update(&cw, &facts, &groups)
                .allowed()
                .unwrap(),
        );
        // The rotation rewraps this candidate's DEK after the first keyring was chosen.
        let (updated, prepared_under) = beside_a_rotation(&vault, (&operator, &paths), |keyring| {
            let change = Replacement {
                id,
                allowed: allowed.clone(),
                profile: replacement.clone(),
                groups: groups.clone(),
            };
            let mut record = Record::new("candidate.update", &actor(&cw), Outcome::Deny, "test");
            record.candidate = Some(id);
            vault
                .writer
                .write(move |ctx| replace_groups(ctx, &keyring, &change, record))
        });
        assert_eq!(
            prepared_under,
            vec![1, 2],
            "prepared again under the new KEK"
        );
        assert_eq!(updated.groups, vec![FieldGroup::Professional]);
        assert_eq!(kek_version_of(&vault, &id), 2);
        operator.close().unwrap();
        vault.close().unwrap();
    }
}
