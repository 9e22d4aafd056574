//! Identifiers, parsed once at the edge: candidates, assignments, principals, organisations.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::Error;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh random (v4) id.
            pub fn random() -> Self {
                $name(Uuid::new_v4())
            }
            /// The 16 bytes stored in SQLite and bound into associated data.
            pub fn as_bytes(&self) -> &[u8; 16] {
                self.0.as_bytes()
            }
            /// Rebuild from the 16 stored bytes.
            pub fn from_bytes(bytes: [u8; 16]) -> Self {
                $name(Uuid::from_bytes(bytes))
            }
            /// Rebuild from a stored blob; a blob of the wrong length is a corrupt row.
            pub fn from_slice(bytes: &[u8]) -> Result<Self, Error> {
                let arr: [u8; 16] = bytes.try_into().map_err(|_| Error::Corrupt {
                    what: concat!("a stored ", $what, " id is not 16 bytes"),
                })?;
                Ok($name(Uuid::from_bytes(arr)))
            }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self, Error> {
                Uuid::parse_str(s.trim()).map($name).map_err(|_| {
                    Error::invalid_input(format!(
                        concat!("`{}` is not a valid ", $what, " id: expected a UUID such as ",
                                "0b6f2c6e-8a4e-4f55-9c43-6f1d2b7a9e10"),
                        crate::ids::printable(s)
                    ))
                })
            }
        }

        impl TryFrom<String> for $name {
            type Error = Error;
            fn try_from(s: String) -> Result<Self, Error> {
                s.parse()
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0.to_string()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }
    };
}

uuid_id!(
    /// A candidate (data subject) record.
    CandidateId,
    "candidate"
);
uuid_id!(
    /// An assignment linking an organisation to a candidate.
    AssignmentId,
    "assignment"
);

/// Shortens untrusted input before it is echoed in an error message.
pub(crate) fn printable(s: &str) -> String {
    let cleaned: String = s.chars().filter(|c| !c.is_control()).take(48).collect();
    if s.chars().count() > 48 {
        format!("{cleaned}...")
    } else {
        cleaned
    }
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'@'))
        && s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
}

macro_rules! name_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The id as written.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// A built-in id known to be valid (e.g. `system`); checked in debug builds.
            pub(crate) fn builtin(s: &'static str) -> Self {
                debug_assert!(valid_name(s), "built-in ids are valid");
                $name(s.to_owned())
            }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self, Error> {
                if valid_name(s) {
                    Ok($name(s.to_owned()))
                } else {
                    Err(Error::invalid_input(format!(
                        concat!("`{}` is not a valid ", $what, " id: use 1 to 64 ASCII letters, ",
                                "digits, `-`, `_`, `.` or `@`, starting with a letter or digit"),
                        printable(s)
                    )))
                }
            }
        }

        impl TryFrom<String> for $name {
            type Error = Error;
            fn try_from(s: String) -> Result<Self, Error> {
                s.parse()
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(&self.0)
            }
        }
    };
}

name_id!(
    /// A principal: a person or system that acts on the vault.
    PrincipalId,
    "principal"
);
impl PrincipalId {
    /// A fresh id for a subject principal, `subject-<16 hex digits>`: random, so that it is
    /// no personal data (a person's own account must not be named after them; an e-mail
    /// address as id would outlive their erasure wherever it was written down).
    pub fn new_subject() -> PrincipalId {
        PrincipalId(format!(
            "subject-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..16]
        ))
    }

    /// Whether the id has the form [`PrincipalId::new_subject`] gives.
    pub fn is_generated_subject(&self) -> bool {
        self.0.strip_prefix("subject-").is_some_and(|rest| {
            rest.len() == 16
                && rest
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        })
    }
}

name_id!(
    /// An organisation: the agency, a provider or an employer.
    OrgId,
    "organisation"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidate_id_round_trips_through_text_and_bytes() {
        let id = CandidateId::random();
        let parsed: CandidateId = id.to_string().parse().unwrap();
        assert_eq!(parsed, id);
        assert_eq!(CandidateId::from_slice(id.as_bytes()).unwrap(), id);
    }

    #[test]
    fn bad_ids_are_refused_with_a_hint() {
        let err = "not-a-uuid".parse::<CandidateId>().unwrap_err().to_string();
        assert!(err.contains("expected a UUID"), "{err}");
        assert!("".parse::<PrincipalId>().is_err());
        assert!("-lead".parse::<OrgId>().is_err());
        assert!("a b".parse::<OrgId>().is_err());
        assert_eq!("acme-ab".parse::<OrgId>().unwrap().as_str(), "acme-ab");
    }
}
