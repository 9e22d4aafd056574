//! One audit entry and its canonical encoding.
//!
//! An entry is a JSON object with exactly the keys below, in this order (lexicographic), no
//! insignificant white space, UTF-8; `null` where a key has no value. The leaf hash is
//! `SHA-256(0x00 || entry bytes)` over the bytes as stored and exported, so a verifier never
//! needs to re-encode. Candidates and assignments appear only as `hmac-sha256:<hex>`
//! pseudonyms under the audit key: never a name, a field value or profile content.

use serde::{Deserialize, Serialize};

/// The encoding version in every entry (`v`).
pub const ENTRY_VERSION: u32 = 1;

/// Allow or deny, as recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The action was permitted and carried out.
    Allow,
    /// The action was refused (by policy, quota, state, or because the target does not exist).
    Deny,
}

/// An audit entry as stored. Field order is the canonical key order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// What was attempted, e.g. `extract`, `candidate.register`, `retention.erase`.
    pub action: String,
    /// The principal id that acted (`operator` for keyring holders, `system` for retention).
    pub actor: String,
    /// The actor's organisation (the recipient organisation of a disclosure).
    pub actor_org: Option<String>,
    /// The actor's role.
    pub actor_role: String,
    /// `hmac-sha256:<hex>` pseudonym of the assignment concerned.
    pub assignment: Option<String>,
    /// `hmac-sha256:<hex>` pseudonym of the candidate concerned.
    pub candidate: Option<String>,
    /// Allow or deny.
    pub decision: Outcome,
    /// Field groups disclosed (allow) or asked for (deny).
    pub groups: Vec<String>,
    /// Position in the log, from 0.
    pub index: u64,
    /// A fixed, non-personal detail (a retention rule, a KEK version, a refusal reason code).
    pub note: Option<String>,
    /// `sha256:<hex>` of the policy set in force.
    pub policy_hash: String,
    /// Ids of the policies that decided.
    pub policy_ids: Vec<String>,
    /// The declared purpose.
    pub purpose: Option<String>,
    /// Correlates the entry with a request or command run.
    pub request_id: String,
    /// RFC 3339 UTC.
    pub time: String,
    /// Encoding version.
    pub v: u32,
}

impl Entry {
    /// The canonical bytes (compact JSON, keys in declaration order).
    pub fn canonical_bytes(&self) -> Vec<u8> {
        // INVARIANT: serializing plain strings, numbers and enums to a Vec cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_in_lexicographic_order_and_compact() {
        let entry = Entry {
            action: "extract".into(),
            actor: "e1".into(),
            actor_org: Some("acme".into()),
            actor_role: "employer".into(),
            assignment: None,
            candidate: Some("hmac-sha256:00".into()),
            decision: Outcome::Deny,
            groups: vec!["professional".into()],
            index: 7,
            note: None,
            policy_hash: "sha256:ab".into(),
            policy_ids: vec![],
            purpose: Some("recruitment".into()),
            request_id: "r".into(),
            time: "2026-01-01T00:00:00Z".into(),
            v: 1,
        };
        let text = String::from_utf8(entry.canonical_bytes()).unwrap();
        let keys = [
            "action",
            "actor",
            "actor_org",
            "actor_role",
            "assignment",
            "candidate",
            "decision",
            "groups",
            "index",
            "note",
            "policy_hash",
            "policy_ids",
            "purpose",
            "request_id",
            "time",
            "v",
        ];
        let mut sorted = keys;
        sorted.sort_unstable();
        assert_eq!(keys, sorted, "the documented order is lexicographic");
        let positions: Vec<usize> = keys
            .iter()
            .map(|k| text.find(&format!("\"{k}\":")).unwrap())
            .collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{text}");
        assert!(!text.contains(' '));
        let back: Entry = serde_json::from_str(&text).unwrap();
        assert_eq!(back, entry);
    }
}
