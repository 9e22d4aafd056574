//! Principal administration. The operator (who holds the keyring) registers principals;
//! registering grants nothing by itself: access still needs an open assignment.

use super::Vault;
use crate::error::{Error, Result};
use crate::ids::{CandidateId, OrgId, PrincipalId};
use crate::model::Role;
use crate::store::rows::{self, PrincipalRow};

impl Vault {
    /// Adds a principal. A subject must name the candidate they are.
    pub fn add_principal(
        &self,
        id: PrincipalId,
        role: Role,
        org: OrgId,
        subject_of: Option<CandidateId>,
    ) -> Result<()> {
        if id.as_str() == "system" || id.as_str() == "operator" {
            return Err(Error::invalid_input(format!(
                "`{id}` is reserved: choose another principal id"
            )));
        }
        match (role, subject_of) {
            (Role::System, _) => {
                return Err(Error::invalid_input(
                    "the system principal is built in (it runs retention): choose caseworker, provider, employer, dpo or subject",
                ))
            }
            (Role::Subject, None) => {
                return Err(Error::invalid_input(
                    "a subject principal needs --candidate ID: the candidate this person is",
                ))
            }
            (Role::Subject, Some(candidate)) => {
                let exists = self.readers().read(|conn| rows::candidate_keys(conn, &candidate))?.is_some();
                if !exists {
                    return Err(Error::NotFound { what: "candidate" });
                }
            }
            (_, Some(_)) => {
                return Err(Error::invalid_input("--candidate is only for --role subject"));
            }
            _ => {}
        }
        let row = PrincipalRow {
            principal_id: id.clone(),
            role,
            org_id: org.clone(),
            subject_of,
            disabled: false,
        };
        self.writer().write(move |ctx| {
            rows::insert_principal(ctx.conn, &row, ctx.audit.now())?;
            let mut record = crate::audit::log::Record::new(
                "principal.add",
                &crate::audit::log::Actor::operator(),
                crate::audit::entry::Outcome::Allow,
                &super::new_request_id(),
            );
            record.note = Some(format!(
                "principal={} role={} org={}",
                row.principal_id, row.role, row.org_id
            ));
            ctx.audit.append(ctx.conn, record).map(|_| ())
        })
    }

    /// Every principal.
    pub fn list_principals(&self) -> Result<Vec<PrincipalRow>> {
        self.readers().read(rows::principals)
    }

    /// Disables (or re-enables) a principal; a disabled principal is refused everything.
    pub fn set_principal_disabled(&self, id: &PrincipalId, disabled: bool) -> Result<()> {
        let id = id.clone();
        self.writer().write(move |ctx| {
            if !rows::set_principal_disabled(ctx.conn, &id, disabled)? {
                return Err(Error::invalid_input(format!(
                    "unknown principal `{id}`: see `cvvault principal list`"
                )));
            }
            let mut record = crate::audit::log::Record::new(
                if disabled {
                    "principal.disable"
                } else {
                    "principal.enable"
                },
                &crate::audit::log::Actor::operator(),
                crate::audit::entry::Outcome::Allow,
                &super::new_request_id(),
            );
            record.note = Some(format!("principal={id}"));
            ctx.audit.append(ctx.conn, record).map(|_| ())
        })
    }
}
