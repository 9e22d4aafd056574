//! What the audit trail says the vault's authorization rows must be, compared with what they
//! are. A row's MAC proves that cvvault wrote it, not that it is the latest version: someone
//! who can write the database and holds an older copy could put one row back as it was (a
//! revoked token valid again, a released hold placed). Every change to such a row is a
//! decision in the append-only, MACed and signed trail, so `audit verify` replays the trail's
//! last word on each token, principal, assignment and hold and names every row that
//! disagrees.

use std::collections::HashMap;

use super::Vault;
use crate::audit::entry::{Entry, Outcome};
use crate::error::Result;
use crate::store::rows::{self, Finding};

/// The last state the trail records for each object, with the entry that recorded it.
#[derive(Default)]
pub(crate) struct TrailState {
    /// token id -> revoked (and the entry index).
    revoked: HashMap<String, u64>,
    /// principal name as the trail writes it -> (disabled, entry index).
    disabled: HashMap<String, (bool, u64)>,
    /// assignment pseudonym -> (closed, entry index).
    closed: HashMap<String, (bool, u64)>,
    /// candidate pseudonym -> (held, entry index).
    held: HashMap<String, (bool, u64)>,
    /// candidate pseudonym -> the entry that erased the candidate.
    erased: HashMap<String, u64>,
}

/// The actions whose entries change an authorization row.
const STATE_ACTIONS: [&str; 9] = [
    "candidate.erase",
    "retention.erase",
    "token.revoke",
    "principal.disable",
    "principal.enable",
    "assignment.open",
    "assignment.close",
    "hold.place",
    "hold.release",
];

/// Whether an entry's text may record a change to an authorization row. A canonical entry
/// begins with its `action` (its keys are in lexicographic order, and `action` is the
/// first), so that is one comparison; any other text is looked through.
fn may_change_a_row(text: &[u8]) -> bool {
    const KEY: &[u8] = b"{\"action\":\"";
    match text.strip_prefix(KEY) {
        Some(rest) => STATE_ACTIONS.iter().any(|a| {
            rest.strip_prefix(a.as_bytes())
                .is_some_and(|r| r.first() == Some(&b'"'))
        }),
        None => STATE_ACTIONS.iter().any(|a| {
            let quoted = format!("\"action\":\"{a}\"");
            text.windows(quoted.len()).any(|w| w == quoted.as_bytes())
        }),
    }
}

fn note_value<'a>(note: &'a str, key: &str) -> Option<&'a str> {
    note.split(' ')
        .find_map(|part| part.strip_prefix(key)?.strip_prefix('='))
}

impl TrailState {
    /// Takes in one entry's text (entries in index order).
    pub(crate) fn read(&mut self, text: &[u8]) {
        // Most entries change no row: only those are parsed.
        if !may_change_a_row(text) {
            return;
        }
        let Ok(entry) = serde_json::from_slice::<Entry>(text) else {
            return;
        };
        if entry.decision != Outcome::Allow {
            return;
        }
        let note = entry.note.as_deref().unwrap_or_default();
        let at = entry.index;
        match entry.action.as_str() {
            "token.revoke" => {
                if let Some(id) = note_value(note, "token_id") {
                    self.revoked.insert(id.to_owned(), at);
                }
            }
            "principal.disable" | "principal.enable" => {
                if let Some(name) = note_value(note, "principal") {
                    let disabled = entry.action == "principal.disable";
                    self.disabled.insert(name.to_owned(), (disabled, at));
                }
            }
            "assignment.open" | "assignment.close" => {
                if let Some(pseudonym) = entry.assignment {
                    self.closed
                        .insert(pseudonym, (entry.action == "assignment.close", at));
                }
            }
            "candidate.erase" | "retention.erase" => {
                if let Some(pseudonym) = entry.candidate {
                    self.erased.insert(pseudonym, at);
                }
            }
            "hold.place" | "hold.release" => {
                if let Some(pseudonym) = entry.candidate {
                    self.held
                        .insert(pseudonym, (entry.action == "hold.place", at));
                }
            }
            _ => {}
        }
    }
}

impl Vault {
    /// Every intact row whose state is not the one `trail` (read in the snapshot of `conn`)
    /// last recorded for it.
    ///
    /// INVARIANT: the trail and the rows are read in one snapshot; a change committed by
    /// another process between two reads would look like a rollback.
    pub(crate) fn rows_behind_the_trail(
        &self,
        conn: &crate::store::sql::Db,
        trail: &TrailState,
    ) -> Result<Vec<Finding>> {
        let (tokens, principals, assignments, holds) = (
            rows::tokens(conn, self.integrity())?,
            rows::principals(conn, self.integrity())?,
            rows::all_assignments(conn, self.integrity())?,
            rows::holds(conn, self.integrity())?,
        );
        let mut findings = Vec::new();
        let mut behind = |table: &'static str, row: String, what: &str, at: u64| {
            findings.push(Finding {
                table,
                row: format!("{row} ({what}, as entry {at} records, but not in the database)"),
            });
        };
        for token in tokens {
            if token.revoked_at.is_none() {
                if let Some(at) = trail.revoked.get(&token.token_id) {
                    behind("tokens", token.token_id.clone(), "revoked", *at);
                }
            }
        }
        for principal in principals {
            // Entries before subjects were pseudonymised name them by id: the later counts.
            let names = [
                self.audit_name(&principal.principal_id, Some(principal.role)),
                principal.principal_id.to_string(),
            ];
            let last = names
                .iter()
                .filter_map(|name| trail.disabled.get(name))
                .max_by_key(|(_, at)| *at);
            if let Some((disabled, at)) = last {
                if *disabled != principal.disabled {
                    let what = if *disabled { "disabled" } else { "enabled" };
                    behind("principals", principal.principal_id.to_string(), what, *at);
                }
            }
        }
        for assignment in assignments {
            let pseudonym = self.pseudonyms().assignment(&assignment.assignment_id);
            if let Some((closed, at)) = trail.closed.get(&pseudonym) {
                if *closed != assignment.closed_at.is_some() {
                    let what = if *closed { "closed" } else { "open" };
                    let id = hex::encode(assignment.assignment_id.as_bytes());
                    behind("assignments", id, what, *at);
                }
            }
        }
        for (candidate, held) in holds {
            let pseudonym = self.pseudonyms().candidate(&candidate);
            // A candidate put back after its erasure would undo the crypto-shredding.
            if let Some(at) = trail.erased.get(&pseudonym) {
                behind(
                    "candidates",
                    hex::encode(candidate.as_bytes()),
                    "erased",
                    *at,
                );
                continue;
            }
            if let Some((trail_held, at)) = trail.held.get(&pseudonym) {
                if *trail_held != held {
                    let what = if *trail_held { "held" } else { "released" };
                    behind("candidates", hex::encode(candidate.as_bytes()), what, *at);
                }
            }
        }
        Ok(findings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_entries_that_change_a_row_are_found_by_their_action_and_only_those() {
        for action in STATE_ACTIONS {
            let canonical = format!("{{\"action\":\"{action}\",\"actor\":\"cw\"}}");
            assert!(may_change_a_row(canonical.as_bytes()), "{action}");
            // Not canonical (another key first): still found.
            let other = format!("{{\"a\":1,\"action\":\"{action}\"}}");
            assert!(may_change_a_row(other.as_bytes()), "{action}");
            // A longer action that starts the same is another action.
            let longer = format!("{{\"action\":\"{action}x\",\"actor\":\"cw\"}}");
            assert!(!may_change_a_row(longer.as_bytes()), "{action}x");
        }
        assert!(!may_change_a_row(
            br#"{"action":"extract","note":"token.revoke"}"#
        ));
    }

    #[test]
    fn a_note_value_is_read_by_its_key_only() {
        assert_eq!(
            note_value("token_id=00aa principal=emp", "token_id"),
            Some("00aa")
        );
        assert_eq!(
            note_value("token_id=00aa principal=emp", "principal"),
            Some("emp")
        );
        assert_eq!(note_value("xtoken_id=1", "token_id"), None);
    }
}
