//! The scope of a personal-data breach (GDPR Art. 33(3)(a): "the categories and approximate
//! number of data subjects concerned"): for a principal, an organisation or a token whose
//! credentials leaked, and a time window, which candidates had which field groups disclosed,
//! and when. Built from the audit trail's allowed extracts (the vault's
//! [`crate::vault::Vault::breach_scope`]); rendered here as JSON, CSV and text.

use serde::Serialize;

use crate::clock::rfc3339;
use crate::error::{Error, Result};
use crate::ids::CandidateId;
use crate::vault::{BreachQuery, BreachScope};

/// A breach question from its parts, as the console's form and the CLI give them: `scope` is
/// `principal`, `org` or `token`; `since` and `until` are dates (`until` included: a date
/// names its whole day) or RFC 3339 times (`until` excluded).
pub fn query(scope: &str, value: &str, since: &str, until: &str) -> Result<BreachQuery> {
    let value = value.trim().to_owned();
    let scope = match scope {
        "principal" => BreachScope::Principal(value),
        "org" => BreachScope::Org(value),
        "token" => BreachScope::Token(value),
        other => {
            return Err(Error::invalid_input(format!(
                "`{}` is not a scope: use principal, org or token",
                crate::ids::printable(other)
            )))
        }
    };
    let time = |text: &str, what: &str| {
        crate::clock::parse_time(text.trim()).ok_or_else(|| {
            Error::invalid_input(format!(
                "the {what} `{}` is not a date: use 2026-11-23 (or an RFC 3339 time)",
                crate::ids::printable(text.trim())
            ))
        })
    };
    let since = time(since, "start")?;
    let mut until_at = time(until, "end")?;
    if until.trim().len() == 10 {
        until_at += 86_400;
    }
    Ok(BreachQuery {
        scope,
        since,
        until: until_at,
    })
}

/// One disclosure in scope.
#[derive(Clone, Debug, Serialize)]
pub struct BreachRow {
    /// When (RFC 3339).
    pub time: String,
    /// The audit entry that recorded it (its inclusion can be proved).
    pub entry_index: u64,
    /// The candidate, while still in the vault; `None` once erased.
    pub candidate_id: Option<CandidateId>,
    /// The candidate's audit pseudonym (what the trail records).
    pub candidate_pseudonym: String,
    /// Who received it.
    pub recipient: String,
    /// Their organisation.
    pub recipient_org: Option<String>,
    /// The declared purpose.
    pub purpose: String,
    /// The field groups disclosed.
    pub groups: Vec<String>,
}

/// The counts of a breach report, over every disclosure in scope (listed or not).
#[derive(Clone, Debug, Default)]
pub struct Tally {
    /// Disclosures.
    pub disclosures: usize,
    /// Distinct candidates.
    pub candidates: usize,
    /// Of whom erased since.
    pub candidates_erased: usize,
    /// Disclosures per field group.
    pub per_group: std::collections::BTreeMap<String, usize>,
}

/// The breach-scope report.
#[derive(Clone, Debug, Serialize)]
pub struct BreachReport {
    /// `cvvault-breach-scope/v1`.
    pub format: &'static str,
    /// When it was made (RFC 3339).
    pub generated_at: String,
    /// The DPO who asked.
    pub generated_by: String,
    /// `principal`, `org` or `token`.
    pub scope: &'static str,
    /// The principal id, organisation or token id.
    pub scope_value: String,
    /// The window asked for (RFC 3339), start included.
    pub since: String,
    /// End of the window, excluded.
    pub until: String,
    /// For a token: when it was valid (issued, and revoked or expired).
    pub token_valid: Option<(String, Option<String>)>,
    /// What the report can and cannot say.
    pub notes: Vec<String>,
    /// Distinct candidates concerned.
    pub candidates: usize,
    /// Of whom erased since (named by their pseudonym only).
    pub candidates_erased: usize,
    /// Disclosures per field group.
    pub per_group: std::collections::BTreeMap<String, usize>,
    /// Disclosures in scope.
    pub disclosures_total: usize,
    /// The disclosures in scope, in log order: every one, or the first ones when the report
    /// was asked for a page (`disclosures_total` says how many there are).
    pub disclosures: Vec<BreachRow>,
}

impl BreachReport {
    /// The report over `rows`.
    pub fn new(
        scope: &BreachScope,
        (since, until): (i64, i64),
        token_validity: Option<(i64, i64)>,
        generated_at: String,
        generated_by: String,
        disclosures: Vec<BreachRow>,
        tally: Tally,
    ) -> BreachReport {
        let (kind, value) = match scope {
            BreachScope::Principal(id) => ("principal", id.clone()),
            BreachScope::Org(org) => ("org", org.clone()),
            BreachScope::Token(id) => ("token", id.clone()),
        };
        let mut notes = vec![
            "Each row is an allowed extract recorded in the audit trail: the field groups the recipient received. Refused requests disclosed nothing and are not listed.".to_owned(),
            "A candidate erased since is named by its audit pseudonym only; the vault no longer holds who it was.".to_owned(),
        ];
        if kind == "token" {
            notes.push("The trail records the principal, not the token: these are the principal's disclosures while the token was valid, which includes any other token of the principal valid at the time.".to_owned());
        }
        BreachReport {
            format: "cvvault-breach-scope/v1",
            generated_at,
            generated_by,
            scope: kind,
            scope_value: value,
            since: rfc3339(since),
            until: rfc3339(until),
            token_valid: token_validity
                .map(|(from, to)| (rfc3339(from), (to != i64::MAX).then(|| rfc3339(to)))),
            notes,
            candidates: tally.candidates,
            candidates_erased: tally.candidates_erased,
            per_group: tally.per_group,
            disclosures_total: tally.disclosures,
            disclosures,
        }
    }

    /// One line per disclosure, with a header (RFC 4180).
    pub fn to_csv(&self) -> Result<String> {
        let mut out = csv::Writer::from_writer(Vec::new());
        let failed = |_| Error::Corrupt {
            what: "the breach report could not be written as CSV",
        };
        out.write_record([
            "time",
            "entry_index",
            "candidate_id",
            "candidate_pseudonym",
            "recipient",
            "recipient_org",
            "purpose",
            "groups",
        ])
        .map_err(failed)?;
        for row in &self.disclosures {
            out.write_record([
                row.time.as_str(),
                &row.entry_index.to_string(),
                &row.candidate_id
                    .map(|id| id.to_string())
                    .unwrap_or_else(|| "erased".into()),
                &row.candidate_pseudonym,
                &row.recipient,
                row.recipient_org.as_deref().unwrap_or(""),
                &row.purpose,
                &row.groups.join(" "),
            ])
            .map_err(failed)?;
        }
        let bytes = out.into_inner().map_err(|_| Error::Corrupt {
            what: "the breach report could not be written as CSV",
        })?;
        String::from_utf8(bytes).map_err(|_| Error::Corrupt {
            what: "the breach report is not UTF-8",
        })
    }

    /// The report in words.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "Breach scope (GDPR Art. 33) for {} {}, {} to {}\ngenerated {} by {}\n",
            self.scope,
            self.scope_value,
            self.since,
            self.until,
            self.generated_at,
            self.generated_by
        );
        if let Some((from, to)) = &self.token_valid {
            out.push_str(&format!(
                "the token was valid from {from} {}\n",
                to.as_deref()
                    .map(|t| format!("until {t}"))
                    .unwrap_or_else(|| "and still is".into())
            ));
        }
        out.push_str(&format!(
            "\n{} candidate(s) concerned ({} erased since), {} disclosure(s)\n",
            self.candidates, self.candidates_erased, self.disclosures_total
        ));
        for (group, count) in &self.per_group {
            out.push_str(&format!("  {group:<14} disclosed {count} time(s)\n"));
        }
        out.push('\n');
        for row in &self.disclosures {
            out.push_str(&format!(
                "  {}  {}  to {} ({}) for {}: {}\n",
                row.time,
                row.candidate_id
                    .map(|id| id.to_string())
                    .unwrap_or_else(|| format!("erased {}", row.candidate_pseudonym)),
                row.recipient,
                row.recipient_org.as_deref().unwrap_or("-"),
                row.purpose,
                row.groups.join(", ")
            ));
        }
        for note in &self.notes {
            out.push_str(&format!("\nNote: {note}"));
        }
        out.push('\n');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(candidate: Option<CandidateId>, pseudonym: &str, groups: &[&str]) -> BreachRow {
        BreachRow {
            time: "2026-11-02T10:00:00Z".into(),
            entry_index: 7,
            candidate_id: candidate,
            candidate_pseudonym: pseudonym.into(),
            recipient: "hr@acme".into(),
            recipient_org: Some("acme, \"ltd\"".into()),
            purpose: "recruitment".into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
        }
    }

    fn tally(disclosures: usize, candidates: usize, erased: usize) -> Tally {
        Tally {
            disclosures,
            candidates,
            candidates_erased: erased,
            per_group: [("professional".to_owned(), 3), ("contact".to_owned(), 1)].into(),
        }
    }

    #[test]
    fn the_text_gives_the_counts_and_names_erased_candidates_by_pseudonym() {
        let id = CandidateId::random();
        let report = BreachReport::new(
            &BreachScope::Principal("hr@acme".into()),
            (0, 86_400),
            None,
            "2026-12-01T00:00:00Z".into(),
            "dpo".into(),
            vec![
                row(Some(id), "hmac-sha256:a", &["professional"]),
                row(Some(id), "hmac-sha256:a", &["professional", "contact"]),
                row(None, "hmac-sha256:b", &["professional"]),
            ],
            tally(3, 2, 1),
        );
        let text = report.to_text();
        assert!(text.contains("2 candidate(s) concerned (1 erased since), 3 disclosure(s)"));
        assert!(
            text.contains("professional   disclosed 3 time(s)"),
            "{text}"
        );
        assert!(text.contains("erased hmac-sha256:b"));
        assert!(text.contains(&id.to_string()));
    }

    #[test]
    fn the_csv_has_a_header_and_quotes_what_needs_quoting() {
        let report = BreachReport::new(
            &BreachScope::Org("acme".into()),
            (0, 86_400),
            None,
            "2026-12-01T00:00:00Z".into(),
            "dpo".into(),
            vec![row(None, "hmac-sha256:b", &["professional", "contact"])],
            tally(1, 1, 1),
        );
        let csv = report.to_csv().unwrap();
        let mut lines = csv.lines();
        assert_eq!(
            lines.next(),
            Some("time,entry_index,candidate_id,candidate_pseudonym,recipient,recipient_org,purpose,groups")
        );
        assert_eq!(
            lines.next(),
            Some("2026-11-02T10:00:00Z,7,erased,hmac-sha256:b,hr@acme,\"acme, \"\"ltd\"\"\",recruitment,professional contact")
        );
    }

    #[test]
    fn a_question_takes_dates_with_the_last_day_included_and_names_what_is_wrong() {
        let q = query("org", " acme ", "2026-11-01", "2026-11-01").unwrap();
        assert_eq!(q.scope, BreachScope::Org("acme".into()));
        assert_eq!(q.until - q.since, 86_400);
        let q = query("principal", "e", "2026-11-01", "2026-11-01T12:00:00Z").unwrap();
        assert_eq!(q.until - q.since, 43_200);
        let e = query("everyone", "x", "2026-11-01", "2026-11-02").unwrap_err();
        assert!(e.to_string().contains("use principal, org or token"), "{e}");
        let e = query("org", "x", "yesterday", "2026-11-02").unwrap_err();
        assert!(
            e.to_string()
                .contains("the start `yesterday` is not a date"),
            "{e}"
        );
    }

    #[test]
    fn a_token_report_says_it_counts_the_principal_while_the_token_was_valid() {
        let report = BreachReport::new(
            &BreachScope::Token("tok_1".into()),
            (0, 86_400),
            Some((100, i64::MAX)),
            "2026-12-01T00:00:00Z".into(),
            "dpo".into(),
            Vec::new(),
            Tally::default(),
        );
        assert_eq!(report.token_valid.as_ref().unwrap().1, None);
        assert!(report.notes.iter().any(|n| n.contains("not the token")));
    }
}
