//! What a data-protection officer supervises, for the console and the reports: the trail's
//! health, refusal alerts, legal holds, the retention preview and the scope of a breach
//! (GDPR Art. 33). Each call is one `read_audit` decision on the record, allowed or refused,
//! before anything is read; none opens a profile.

use serde::Serialize;

use super::{retention, Vault};
use crate::audit::digest::{Alert, Digest};
use crate::audit::note::Checkpoint;
use crate::clock::rfc3339;
use crate::crypto::integrity::Domain;
use crate::error::{Error, Result};
use crate::ids::CandidateId;
use crate::policy::PrincipalFacts;
use crate::report::breach::{BreachReport, BreachRow};
use crate::store::{audit_rows, rows};
use crate::vocabulary::FieldGroup;

const META_LAST_VERIFICATION: &str = "last_verification";
/// `vault_meta` key of the MAC over [`META_LAST_VERIFICATION`]'s text (hex): a database
/// writer cannot make a failed or missing verification look like a pass.
const META_LAST_VERIFICATION_MAC: &str = "last_verification.mac";
const DAY: i64 = 86_400;
/// Seconds after a token's revocation or expiry that its breach scope still counts.
const TOKEN_END_MARGIN: i64 = 60;

/// The last `audit verify` of the trail, by any process or node of the vault.
#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct LastVerification {
    /// When it ended (seconds since the epoch).
    pub at: i64,
    /// Who ran it.
    pub by: String,
    /// Whether the trail verified.
    pub verified: bool,
    /// Entries verified (when it verified).
    pub entries: Option<u64>,
    /// What failed, in the verifier's words (when it did not).
    pub failure: Option<String>,
}

/// A signed checkpoint, for display.
#[derive(Clone, Debug, Serialize)]
pub struct CheckpointSummary {
    /// Entries it covers.
    pub size: u64,
    /// Its root hash, hex.
    pub root: String,
    /// When it was signed (seconds since the epoch).
    pub signed_at: i64,
}

/// The trail at a glance.
#[derive(Clone, Debug, Serialize)]
pub struct TrailHealth {
    /// Entries in the trail.
    pub size: u64,
    /// Entries that do not parse (`audit verify` names them).
    pub unreadable: u64,
    /// Entry indexes missing between entries (deleted outside cvvault).
    pub missing: u64,
    /// The last verification, if any was run.
    pub last_verification: Option<LastVerification>,
    /// A record of a verification is stored but fails its MAC (written outside cvvault, or
    /// by a cvvault before records were MACed): it is not shown as a result.
    pub last_verification_unchecked: bool,
    /// The latest signed checkpoints, newest first.
    pub checkpoints: Vec<CheckpointSummary>,
    /// Decisions per day, oldest first: (day as YYYY-MM-DD, allowed, refused).
    pub per_day: Vec<(String, u64, u64)>,
    /// When this was read (seconds since the epoch).
    pub now: i64,
}

/// A candidate under a legal hold.
#[derive(Clone, Debug, Serialize)]
pub struct HeldCandidate {
    /// The candidate.
    pub candidate_id: CandidateId,
    /// The legal ground given when it was placed.
    pub ground: Option<String>,
    /// When the trail records it placed (RFC 3339), if it does.
    pub placed_at: Option<String>,
    /// Who placed it.
    pub placed_by: Option<String>,
}

/// Who the next retention run would erase.
#[derive(Debug, Serialize)]
pub struct RetentionPreview {
    /// When this was computed (RFC 3339).
    pub at: String,
    /// Due per rule.
    pub erased: std::collections::BTreeMap<&'static str, u64>,
    /// Every candidate due: id, rule, since when.
    pub due: Vec<retention::DueCandidate>,
    /// Due, but kept by a legal hold.
    pub held: u64,
    /// The settings the rules read (policy/retention.toml).
    pub settings: crate::settings::Retention,
}

/// Whose disclosures a breach concerns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BreachScope {
    /// One principal (its id).
    Principal(String),
    /// Every principal of one organisation.
    Org(String),
    /// One bearer token, by its id: its principal's disclosures while it was valid.
    Token(String),
}

/// A breach-scope question: whose disclosures, in `[since, until)`.
#[derive(Clone, Debug)]
pub struct BreachQuery {
    /// Whose.
    pub scope: BreachScope,
    /// From (seconds since the epoch).
    pub since: i64,
    /// Until, excluded.
    pub until: i64,
}

/// What a breach report counts while it lists.
#[derive(Default)]
struct Tally {
    disclosures: usize,
    candidates: std::collections::HashSet<String>,
    per_group: std::collections::BTreeMap<String, usize>,
}

impl Vault {
    /// Decides and records a DPO's look at the trail (`view` names it in the entry, e.g.
    /// `console.health`); Err when refused.
    pub fn supervise(&self, principal: &PrincipalFacts, view: &'static str) -> Result<()> {
        self.authorize_audit(principal, view)
    }

    /// Runs `f` on the trail's summary, caught up with the trail first.
    pub(crate) fn with_digest<T>(&self, f: impl FnOnce(&Digest) -> T) -> Result<T> {
        self.with_digest_progress(&|_| {}, f)
    }

    /// [`Vault::with_digest`], `progress(entries read)` while it catches up.
    fn with_digest_progress<T>(
        &self,
        progress: &dyn Fn(u64),
        f: impl FnOnce(&Digest) -> T,
    ) -> Result<T> {
        let mut digest = self.digest.lock().map_err(|_| Error::Corrupt {
            what: "the audit summary was left half-updated by a failed request",
        })?;
        self.readers.read(|conn| digest.extend(conn, progress))?;
        Ok(f(&digest))
    }

    /// Builds the trail's summary now (at start, so that the first page does not wait for it);
    /// `progress(entries read)`.
    pub fn summarize_trail(&self, progress: &dyn Fn(u64)) -> Result<u64> {
        self.with_digest_progress(progress, Digest::size)
    }

    /// Keeps the outcome of a verification where every node and the console read it.
    pub(super) fn remember_verification(
        &self,
        principal: &PrincipalFacts,
        outcome: &Result<crate::audit::verify::VerifyReport>,
    ) {
        let last = LastVerification {
            at: self.now(),
            by: principal.principal_id.to_string(),
            verified: outcome.is_ok(),
            entries: outcome.as_ref().ok().map(|r| r.entries),
            // The verifier's findings are shown as they are; any other failure (a read that
            // failed) by a fixed sentence, its details in the log.
            failure: outcome.as_ref().err().map(|e| match e {
                Error::AuditTampered(finding) => finding.clone(),
                _ => {
                    "the verification could not be completed (the server's log says why); try again"
                        .to_owned()
                }
            }),
        };
        let Ok(text) = serde_json::to_string(&last) else {
            return;
        };
        let stored = self.writer.write(move |ctx| {
            let mac = ctx.integrity.mac(Domain::Verification, &[text.as_bytes()]);
            rows::set_meta(ctx.conn, META_LAST_VERIFICATION, &text)?;
            rows::set_meta(ctx.conn, META_LAST_VERIFICATION_MAC, &hex::encode(mac))
        });
        if let Err(e) = stored {
            // The verification's own result is returned to its caller either way.
            tracing::warn!(error = %e, "the result of the verification could not be stored for the console");
        }
    }

    /// The trail at a glance, with decisions per day for the last `days` days.
    pub fn trail_health(&self, principal: &PrincipalFacts, days: u32) -> Result<TrailHealth> {
        self.supervise(principal, "console.health")?;
        let now = self.now();
        let (last, mac, stored) = self.readers.read(|conn| {
            Ok((
                rows::meta(conn, META_LAST_VERIFICATION)?,
                rows::meta(conn, META_LAST_VERIFICATION_MAC)?,
                audit_rows::latest_checkpoints(conn, 5)?,
            ))
        })?;
        let (last_verification, last_verification_unchecked) = match last {
            None => (None, false),
            Some(text) => {
                let mac = mac.and_then(|mac| hex::decode(mac).ok());
                let checks =
                    self.integrity
                        .verify(Domain::Verification, &[text.as_bytes()], mac.as_deref());
                match serde_json::from_str::<LastVerification>(&text) {
                    Ok(last) if checks => (Some(last), false),
                    _ => (None, true),
                }
            }
        };
        let checkpoints = stored
            .into_iter()
            .filter_map(|(_, note, signed_at)| {
                let body = note
                    .split_once("\n\n")
                    .map(|(body, _)| format!("{body}\n"))?;
                let checkpoint = Checkpoint::parse_body(&body).ok()?;
                Some(CheckpointSummary {
                    size: checkpoint.size,
                    root: hex::encode(checkpoint.root),
                    signed_at,
                })
            })
            .collect();
        let today = now.div_euclid(DAY);
        let first = today - i64::from(days.clamp(1, 366)) + 1;
        let (size, unreadable, missing, per_day) = self.with_digest(|digest| {
            (
                digest.size(),
                digest.unreadable(),
                digest.missing(),
                digest.per_day(first, today),
            )
        })?;
        Ok(TrailHealth {
            size,
            unreadable,
            missing,
            last_verification,
            last_verification_unchecked,
            checkpoints,
            per_day: per_day
                .into_iter()
                .map(|(day, counts)| {
                    let date = rfc3339(day * DAY);
                    let date = date.get(..10).unwrap_or(&date).to_owned();
                    (date, counts.allowed, counts.refused)
                })
                .collect(),
            now,
        })
    }

    /// Principals with at least `min_refused` refusals, or any quota hit, in the last
    /// `hours` hours: what harvesting looks like. The most recent first.
    pub fn refusal_alerts(
        &self,
        principal: &PrincipalFacts,
        hours: u32,
        min_refused: u64,
    ) -> Result<Vec<Alert>> {
        self.supervise(principal, "console.alerts")?;
        let since = self.now() - i64::from(hours.max(1)) * 3_600;
        self.with_digest(|digest| digest.alerts(since, min_refused))
    }

    /// Every candidate under a legal hold, with its ground and when the trail records it
    /// placed.
    pub fn legal_holds(&self, principal: &PrincipalFacts) -> Result<Vec<HeldCandidate>> {
        self.supervise(principal, "console.holds")?;
        let held = self
            .readers
            .read(|conn| rows::held_candidates(conn, &self.integrity))?;
        held.into_iter()
            .map(|(candidate_id, ground)| {
                let pseudonym = self.pseudonyms().candidate(&candidate_id);
                let entries = self
                    .readers
                    .read(|conn| crate::audit::verify::search(conn, &pseudonym))?;
                let placed = entries.iter().rev().find(|e| {
                    e.action == "hold.place" && e.decision == crate::audit::entry::Outcome::Allow
                });
                Ok(HeldCandidate {
                    candidate_id,
                    ground,
                    placed_at: placed.map(|e| e.time.clone()),
                    placed_by: placed.map(|e| e.actor.clone()),
                })
            })
            .collect()
    }

    /// Who the next retention run would erase, by which rule, from what date.
    pub fn retention_preview(&self, principal: &PrincipalFacts) -> Result<RetentionPreview> {
        self.supervise(principal, "console.retention")?;
        let settings = crate::settings::Retention::load(&self.paths.retention_settings())?;
        let now = self.now();
        let preview = retention::preview(self, &settings, now)?;
        Ok(RetentionPreview {
            at: rfc3339(now),
            erased: preview.erased,
            due: preview.due,
            held: preview.held,
            settings,
        })
    }

    /// The GDPR Art. 33 scope of a breach: which candidates had which field groups disclosed
    /// to the principal, organisation or token, when.
    /// `limit`: list at most this many of the disclosures (all are counted); `progress`:
    /// entries of the trail read (a first read, by the CLI, reads the whole trail).
    pub fn breach_scope(
        &self,
        principal: &PrincipalFacts,
        query: &BreachQuery,
        limit: Option<usize>,
        progress: &dyn Fn(u64),
    ) -> Result<BreachReport> {
        self.supervise(principal, "report.breach")?;
        let (mut since, mut until) = (query.since, query.until);
        if since >= until {
            return Err(Error::invalid_input(
                "the window is empty: its start must come before its end",
            ));
        }
        let mut token_validity = None;
        // The recipient as the trail names it: a subject by pseudonym. A principal or an
        // organisation the vault does not know is refused, not answered "no disclosure".
        let trail_name = |id: &crate::ids::PrincipalId| -> Result<String> {
            let facts = self.principal(id)?;
            Ok(if facts.role == crate::vocabulary::Role::Subject {
                self.pseudonyms().principal(id.as_str())
            } else {
                id.to_string()
            })
        };
        let recipient = match &query.scope {
            BreachScope::Principal(id) => trail_name(&id.parse()?)?,
            BreachScope::Org(org) => {
                let org_id: crate::ids::OrgId = org.parse()?;
                let known = self
                    .readers
                    .read(|conn| rows::org_kind(conn, &self.integrity, &org_id))?;
                if known.is_none() {
                    return Err(Error::UnknownOrg { org: org.clone() });
                }
                org.clone()
            }
            BreachScope::Token(token_id) => {
                let token = self
                    .readers
                    .read(|conn| rows::token(conn, &self.integrity, token_id))?
                    .ok_or(Error::NotFound { what: "token" })?;
                // The trail names the principal, not the token: what the token could have
                // received is its principal's disclosures while it was valid. A request
                // authenticated just before the end is recorded when it completes: a minute
                // more is counted.
                let ended = [token.revoked_at, token.expires_at]
                    .into_iter()
                    .flatten()
                    .min();
                token_validity = Some((token.created_at, ended.unwrap_or(i64::MAX)));
                since = since.max(token.created_at);
                if let Some(ended) = ended {
                    until = until.min(ended.saturating_add(TOKEN_END_MARGIN));
                }
                trail_name(&token.principal_id)?
            }
        };
        let matches = |actor: &crate::audit::digest::Actor| match &query.scope {
            BreachScope::Org(org) => actor.org.as_deref() == Some(org.as_str()),
            _ => actor.principal == recipient,
        };
        // Every disclosure is counted; at most `limit` are listed (a page shows the first
        // ones, a download all of them).
        let limit = limit.unwrap_or(usize::MAX);
        let (mut found, tally) = self.with_digest_progress(progress, |digest| {
            let mut found = Vec::new();
            let mut disclosures = 0usize;
            let mut candidates = std::collections::HashSet::new();
            let mut per_group = [0usize; FieldGroup::ALL.len()];
            for d in digest.disclosures(matches, since, until.max(since)) {
                disclosures += 1;
                candidates.insert(d.candidate);
                for (count, group) in per_group.iter_mut().zip(FieldGroup::ALL) {
                    *count += usize::from(d.has(group));
                }
                if found.len() < limit {
                    found.push(BreachRow {
                        time: rfc3339(d.time),
                        entry_index: d.index,
                        candidate_id: None,
                        candidate_pseudonym: d.candidate.to_owned(),
                        recipient: d.recipient.principal.clone(),
                        recipient_org: d.recipient.org.clone(),
                        purpose: d.purpose.to_owned(),
                        groups: d.groups().map(|g| g.to_string()).collect(),
                    });
                }
            }
            let tally = Tally {
                disclosures,
                candidates: candidates.into_iter().map(str::to_owned).collect(),
                per_group: FieldGroup::ALL
                    .iter()
                    .zip(per_group)
                    .filter(|(_, count)| *count > 0)
                    .map(|(group, count)| (group.to_string(), count))
                    .collect(),
            };
            (found, tally)
        })?;
        // Pseudonyms back to the ids of the candidates still in the vault; an erased
        // candidate is named by its pseudonym only.
        let known: std::collections::HashMap<String, CandidateId> = self
            .readers
            .read(|conn| rows::holds(conn, &self.integrity))?
            .into_iter()
            .map(|(id, _)| (self.pseudonyms().candidate(&id), id))
            .filter(|(pseudonym, _)| tally.candidates.contains(pseudonym))
            .collect();
        for row in &mut found {
            row.candidate_id = known.get(&row.candidate_pseudonym).copied();
        }
        let tally = crate::report::breach::Tally {
            disclosures: tally.disclosures,
            candidates: tally.candidates.len(),
            candidates_erased: tally.candidates.len() - known.len(),
            per_group: tally.per_group,
        };
        Ok(BreachReport::new(
            &query.scope,
            (query.since, query.until),
            token_validity,
            rfc3339(self.now()),
            principal.principal_id.to_string(),
            found,
            tally,
        ))
    }
}
