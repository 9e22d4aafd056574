//! A summary of the audit trail kept in memory, for the DPO's console and reports: decisions
//! per day, refusals per principal and hour, and every disclosure (who received which field
//! groups of which candidate pseudonym, when).
//!
//! The trail is append-only and its entries are numbered from 0 without gaps, so a summary of
//! its first `n` entries stays true: [`Digest::extend`] reads only the entries appended since,
//! and a page over a trail of a million entries reads a few rows, not the trail. The summary
//! holds what the entries hold (pseudonyms, never a name or a field value), about 40 bytes per
//! disclosure and a few per other entry; it is rebuilt from the trail whenever the process
//! starts, so nothing in it is trusted that the trail does not say.

use std::collections::{BTreeMap, HashMap};

use super::entry::{Entry, Outcome};
use crate::error::Result;
use crate::store::audit_rows;
use crate::store::sql::Db;
use crate::vocabulary::FieldGroup;

/// Seconds in a day and in an hour (the trail's times are UTC).
const DAY: i64 = 86_400;
const HOUR: i64 = 3_600;

/// Decisions of one day.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct DayCounts {
    /// Entries whose decision is allow.
    pub allowed: u64,
    /// Entries whose decision is deny.
    pub refused: u64,
}

/// Who acted, as the trail names them.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Actor {
    /// The principal id (`operator`, `system` for the vault's own principals).
    pub principal: String,
    /// Its organisation.
    pub org: Option<String>,
    /// Its role.
    pub role: String,
}

/// Refusals of one principal in one hour.
#[derive(Clone, Copy, Debug, Default)]
struct Refusals {
    refused: u64,
    quota_hits: u64,
    last: i64,
}

/// A principal with many refusals or any quota hit in a window: what harvesting looks like.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Alert {
    /// The principal id.
    pub principal: String,
    /// Its organisation.
    pub org: Option<String>,
    /// Its role.
    pub role: String,
    /// Refused requests in the window (quota hits included).
    pub refused: u64,
    /// Extracts refused because the principal's quota was used up.
    pub quota_hits: u64,
    /// The last refusal in the window (seconds since the epoch).
    pub last: i64,
}

/// One disclosure, as the trail recorded it.
#[derive(Clone, Copy, Debug)]
struct DisclosureRef {
    index: u64,
    time: i64,
    actor: u32,
    candidate: u32,
    purpose: u32,
    groups: u8,
}

/// A disclosure found by [`Digest::disclosures`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Disclosure<'d> {
    /// The entry that recorded it.
    pub index: u64,
    /// When (seconds since the epoch).
    pub time: i64,
    /// Who received it.
    pub recipient: &'d Actor,
    /// The candidate's audit pseudonym.
    pub candidate: &'d str,
    /// The declared purpose.
    pub purpose: &'d str,
    group_bits: u8,
}

/// Strings seen many times, kept once.
struct Interned<T> {
    values: Vec<T>,
    ids: HashMap<T, u32>,
}

impl<T> Default for Interned<T> {
    fn default() -> Self {
        Interned {
            values: Vec::new(),
            ids: HashMap::new(),
        }
    }
}

impl<T: Clone + Eq + std::hash::Hash> Interned<T> {
    fn id(&mut self, value: T) -> u32 {
        if let Some(id) = self.ids.get(&value) {
            return *id;
        }
        let id = self.values.len() as u32;
        self.ids.insert(value.clone(), id);
        self.values.push(value);
        id
    }

    fn value(&self, id: u32) -> Option<&T> {
        self.values.get(id as usize)
    }
}

/// The summary of the first [`Digest::size`] entries of the trail.
#[derive(Default)]
pub struct Digest {
    next: u64,
    unreadable: u64,
    missing: u64,
    days: BTreeMap<i64, DayCounts>,
    refusals: BTreeMap<(i64, u32), Refusals>,
    actors: Interned<Actor>,
    candidates: Interned<String>,
    purposes: Interned<String>,
    disclosures: Vec<DisclosureRef>,
}

impl Digest {
    /// The number of entries summarized.
    pub fn size(&self) -> u64 {
        self.next
    }

    /// Entries that did not parse (counted, not summarized; `audit verify` names them).
    pub fn unreadable(&self) -> u64 {
        self.unreadable
    }

    /// Indexes skipped between entries read: an entry deleted outside cvvault (entries
    /// become visible in index order, so a gap is never an append still in flight).
    pub fn missing(&self) -> u64 {
        self.missing
    }

    /// Reads the entries appended since the last call; returns how many.
    pub fn extend(&mut self, conn: &Db, progress: &dyn Fn(u64)) -> Result<u64> {
        let before = self.next;
        audit_rows::each_entry_text_from(conn, self.next as i64, |index, text| {
            self.add(index, text);
            if index % 65_536 == 0 {
                progress(index as u64);
            }
            Ok(())
        })?;
        Ok(self.next - before)
    }

    /// Adds entry `index`.
    pub fn add(&mut self, index: i64, text: &str) {
        let index_u = u64::try_from(index).unwrap_or(0);
        self.missing += index_u.saturating_sub(self.next);
        self.next = self.next.max(index_u + 1);
        let Some((entry, time)) = serde_json::from_str::<Entry>(text)
            .ok()
            .and_then(|e| crate::clock::parse_time(&e.time).map(|t| (e, t)))
        else {
            self.unreadable += 1;
            return;
        };
        let day = self.days.entry(time.div_euclid(DAY)).or_default();
        let actor = Actor {
            principal: entry.actor,
            org: entry.actor_org,
            role: entry.actor_role,
        };
        match entry.decision {
            Outcome::Allow => day.allowed += 1,
            Outcome::Deny => {
                day.refused += 1;
                if actor.role != "system" {
                    let actor = self.actors.id(actor);
                    let hour = self
                        .refusals
                        .entry((time.div_euclid(HOUR), actor))
                        .or_default();
                    hour.refused += 1;
                    if entry.note.as_deref() == Some("quota-exceeded") {
                        hour.quota_hits += 1;
                    }
                    hour.last = hour.last.max(time);
                }
                return;
            }
        }
        if entry.action != "extract" {
            return;
        }
        let Some(candidate) = entry.candidate else {
            return;
        };
        let groups = entry
            .groups
            .iter()
            .filter_map(|g| g.parse::<FieldGroup>().ok())
            .fold(0u8, |mask, g| mask | group_bit(g));
        let reference = DisclosureRef {
            index: index as u64,
            time,
            actor: self.actors.id(actor),
            candidate: self.candidates.id(candidate),
            purpose: self.purposes.id(entry.purpose.unwrap_or_default()),
            groups,
        };
        self.disclosures.push(reference);
    }

    /// Decisions per day, for every day from `first_day` to `last_day` (days since the
    /// epoch), zero included.
    pub fn per_day(&self, first_day: i64, last_day: i64) -> Vec<(i64, DayCounts)> {
        (first_day..=last_day)
            .map(|day| (day, self.days.get(&day).copied().unwrap_or_default()))
            .collect()
    }

    /// Principals with at least `min_refused` refusals, or any quota hit, from `since` on
    /// (seconds since the epoch; counted by the hour), the most recent refusal first.
    pub fn alerts(&self, since: i64, min_refused: u64) -> Vec<Alert> {
        let mut by_actor: HashMap<u32, Refusals> = HashMap::new();
        for ((_, actor), hour) in self.refusals.range((since.div_euclid(HOUR), 0)..) {
            let sum = by_actor.entry(*actor).or_default();
            sum.refused += hour.refused;
            sum.quota_hits += hour.quota_hits;
            sum.last = sum.last.max(hour.last);
        }
        let mut alerts: Vec<Alert> = by_actor
            .into_iter()
            .filter(|(_, sum)| sum.refused >= min_refused.max(1) || sum.quota_hits > 0)
            .filter_map(|(actor, sum)| {
                let actor = self.actors.value(actor)?;
                Some(Alert {
                    principal: actor.principal.clone(),
                    org: actor.org.clone(),
                    role: actor.role.clone(),
                    refused: sum.refused,
                    quota_hits: sum.quota_hits,
                    last: sum.last,
                })
            })
            .collect();
        alerts.sort_by(|a, b| (b.last, &a.principal).cmp(&(a.last, &b.principal)));
        alerts
    }

    /// The disclosures to recipients that `to` accepts, in `[since, until)`, in log order.
    pub fn disclosures<'d>(
        &'d self,
        to: impl Fn(&Actor) -> bool,
        since: i64,
        until: i64,
    ) -> impl Iterator<Item = Disclosure<'d>> + 'd {
        let accepted: Vec<bool> = self.actors.values.iter().map(to).collect();
        self.disclosures
            .iter()
            .filter(move |d| d.time >= since && d.time < until)
            .filter(move |d| accepted.get(d.actor as usize).copied().unwrap_or(false))
            .filter_map(|d| {
                Some(Disclosure {
                    index: d.index,
                    time: d.time,
                    recipient: self.actors.value(d.actor)?,
                    candidate: self.candidates.value(d.candidate)?,
                    purpose: self.purposes.value(d.purpose)?,
                    group_bits: d.groups,
                })
            })
    }
}

impl Disclosure<'_> {
    /// Whether `group` was disclosed.
    pub fn has(&self, group: FieldGroup) -> bool {
        self.group_bits & group_bit(group) != 0
    }

    /// The field groups disclosed.
    pub fn groups(&self) -> impl Iterator<Item = FieldGroup> + '_ {
        FieldGroup::ALL.into_iter().filter(|g| self.has(*g))
    }
}

fn group_bit(group: FieldGroup) -> u8 {
    let position = FieldGroup::ALL
        .iter()
        .position(|g| *g == group)
        .unwrap_or(0);
    1 << position
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: u64, time: &str, actor: (&str, &str), decision: &str, rest: &str) -> String {
        format!(
            r#"{{"action":"extract","actor":"{}","actor_org":"acme","actor_role":"{}","assignment":null,"candidate":"hmac-sha256:c{index}","decision":"{decision}","groups":["professional","contact"],"index":{index},"note":{rest},"policy_hash":"sha256:00","policy_ids":[],"purpose":"recruitment","request_id":"r","time":"{time}","v":1}}"#,
            actor.0, actor.1
        )
    }

    fn digest_of(entries: &[String]) -> Digest {
        let mut digest = Digest::default();
        for (index, text) in entries.iter().enumerate() {
            digest.add(index as i64, text);
        }
        digest
    }

    #[test]
    fn decisions_are_counted_per_day_with_the_empty_days_between() {
        let digest = digest_of(&[
            entry(
                0,
                "2026-11-01T10:00:00Z",
                ("e1", "employer"),
                "allow",
                "null",
            ),
            entry(
                1,
                "2026-11-01T23:59:59Z",
                ("e1", "employer"),
                "deny",
                "null",
            ),
            entry(
                2,
                "2026-11-03T00:00:00Z",
                ("e1", "employer"),
                "deny",
                "null",
            ),
        ]);
        let first = crate::clock::parse_time("2026-11-01").unwrap() / DAY;
        let days = digest.per_day(first, first + 2);
        let counts: Vec<(u64, u64)> = days.iter().map(|(_, c)| (c.allowed, c.refused)).collect();
        assert_eq!(counts, vec![(1, 1), (0, 0), (0, 1)]);
        assert_eq!(digest.size(), 3);
    }

    #[test]
    fn alerts_name_principals_over_the_threshold_or_with_a_quota_hit_newest_first() {
        let mut entries = Vec::new();
        for i in 0..5 {
            entries.push(entry(
                i,
                "2026-11-02T08:00:00Z",
                ("harvester", "employer"),
                "deny",
                "null",
            ));
        }
        entries.push(entry(
            5,
            "2026-11-02T09:00:00Z",
            ("quota", "employer"),
            "deny",
            "\"quota-exceeded\"",
        ));
        entries.push(entry(
            6,
            "2026-11-02T09:30:00Z",
            ("once", "employer"),
            "deny",
            "null",
        ));
        entries.push(entry(
            7,
            "2026-11-01T09:30:00Z",
            ("old", "employer"),
            "deny",
            "\"quota-exceeded\"",
        ));
        let digest = digest_of(&entries);
        let since = crate::clock::parse_time("2026-11-02").unwrap();
        let alerts = digest.alerts(since, 5);
        let names: Vec<&str> = alerts.iter().map(|a| a.principal.as_str()).collect();
        assert_eq!(names, vec!["quota", "harvester"]);
        assert_eq!((alerts[0].refused, alerts[0].quota_hits), (1, 1));
        assert_eq!((alerts[1].refused, alerts[1].quota_hits), (5, 0));
    }

    #[test]
    fn disclosures_are_the_allowed_extracts_of_the_recipients_asked_for_in_the_window() {
        let digest = digest_of(&[
            entry(
                0,
                "2026-11-01T10:00:00Z",
                ("e1", "employer"),
                "allow",
                "null",
            ),
            entry(
                1,
                "2026-11-02T10:00:00Z",
                ("e1", "employer"),
                "deny",
                "null",
            ),
            entry(
                2,
                "2026-11-03T10:00:00Z",
                ("e2", "employer"),
                "allow",
                "null",
            ),
            entry(
                3,
                "2026-11-04T10:00:00Z",
                ("e1", "employer"),
                "allow",
                "null",
            ),
        ]);
        let all: Vec<Disclosure> = digest
            .disclosures(|a| a.principal == "e1", 0, i64::MAX)
            .collect();
        let indexes: Vec<u64> = all.iter().map(|d| d.index).collect();
        assert_eq!(indexes, vec![0, 3]);
        assert_eq!(all[0].candidate, "hmac-sha256:c0");
        let groups: Vec<FieldGroup> = all[0].groups().collect();
        assert_eq!(groups, vec![FieldGroup::Contact, FieldGroup::Professional]);
        assert!(all[0].has(FieldGroup::Contact) && !all[0].has(FieldGroup::Special));
        let since = crate::clock::parse_time("2026-11-02").unwrap();
        let until = crate::clock::parse_time("2026-11-04").unwrap();
        assert_eq!(
            digest
                .disclosures(|a| a.principal == "e1", since, until)
                .count(),
            0
        );
    }

    #[test]
    fn an_entry_that_does_not_parse_is_counted_and_the_next_one_still_summarized() {
        let digest = digest_of(&[
            "{not json".to_owned(),
            entry(
                1,
                "2026-11-01T10:00:00Z",
                ("e1", "employer"),
                "allow",
                "null",
            ),
        ]);
        assert_eq!((digest.size(), digest.unreadable()), (2, 1));
        assert_eq!(digest.missing(), 0);
        assert_eq!(digest.disclosures(|_| true, 0, i64::MAX).count(), 1);
    }

    #[test]
    fn an_index_skipped_is_counted_as_missing() {
        let mut digest = Digest::default();
        let text = entry(
            0,
            "2026-11-01T10:00:00Z",
            ("e1", "employer"),
            "allow",
            "null",
        );
        digest.add(0, &text);
        digest.add(3, &text);
        assert_eq!((digest.size(), digest.missing()), (4, 2));
        assert_eq!(digest.disclosures(|_| true, 0, i64::MAX).count(), 2);
    }
}
