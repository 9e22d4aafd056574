//! Translating the vault's facts about a principal and a candidate into Cedar entities,
//! contexts and requests, in the shape that policy/vault.cedarschema declares.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::str::FromStr;

use cedar_policy::{
    Context, Entities, Entity, EntityId, EntityTypeName, EntityUid, RestrictedExpression, Schema,
};

use crate::ids::OrgId;
use crate::vocabulary::{AssignmentKind, FieldGroup, OrgKind, Purpose, Role};

use super::{Action, CandidateFacts, PrincipalFacts, Resource};

/// The id of the singleton `Vault` entity.
const VAULT_ENTITY_ID: &str = "vault";

/// Entity type names parsed once per engine, not once per request.
#[derive(Debug)]
pub(crate) struct Vocabulary {
    organisation: EntityTypeName,
    candidate: EntityTypeName,
    vault: EntityTypeName,
    field_group: EntityTypeName,
    assignment_kind: EntityTypeName,
    purpose: EntityTypeName,
    org_kind: EntityTypeName,
    action: EntityTypeName,
    caseworker: EntityTypeName,
    provider: EntityTypeName,
    employer: EntityTypeName,
    dpo: EntityTypeName,
    subject: EntityTypeName,
    system: EntityTypeName,
}

/// The entities of one decision (or of the five decisions of one read) and the uids the
/// requests refer to.
pub(crate) struct Scene {
    pub(crate) entities: Entities,
    pub(crate) principal: EntityUid,
    pub(crate) resource: EntityUid,
}

fn type_name(name: &str) -> Result<EntityTypeName, String> {
    EntityTypeName::from_str(name).map_err(|e| format!("entity type {name}: {e}"))
}

impl Vocabulary {
    pub(crate) fn new() -> Result<Self, String> {
        Ok(Self {
            organisation: type_name("Organisation")?,
            candidate: type_name("Candidate")?,
            vault: type_name("Vault")?,
            field_group: type_name("FieldGroup")?,
            assignment_kind: type_name("AssignmentKind")?,
            purpose: type_name("Purpose")?,
            org_kind: type_name("OrgKind")?,
            action: type_name("Action")?,
            caseworker: type_name(Role::Caseworker.cedar_type())?,
            provider: type_name(Role::Provider.cedar_type())?,
            employer: type_name(Role::Employer.cedar_type())?,
            dpo: type_name(Role::Dpo.cedar_type())?,
            subject: type_name(Role::Subject.cedar_type())?,
            system: type_name(Role::System.cedar_type())?,
        })
    }

    /// Whether `uid` names a candidate.
    pub(crate) fn is_candidate(&self, uid: &EntityUid) -> bool {
        uid.type_name() == &self.candidate
    }

    pub(crate) fn role(&self, role: Role) -> &EntityTypeName {
        match role {
            Role::Caseworker => &self.caseworker,
            Role::Provider => &self.provider,
            Role::Employer => &self.employer,
            Role::Dpo => &self.dpo,
            Role::Subject => &self.subject,
            Role::System => &self.system,
        }
    }

    fn uid(ty: &EntityTypeName, id: &str) -> EntityUid {
        EntityUid::from_type_name_and_id(ty.clone(), EntityId::new(id))
    }

    fn org_uid(&self, org: &str) -> EntityUid {
        Self::uid(&self.organisation, org)
    }

    fn candidate_uid(&self, candidate: &CandidateFacts) -> EntityUid {
        Self::uid(&self.candidate, &candidate.candidate_id.to_string())
    }

    pub(crate) fn action_uid(&self, action: Action) -> EntityUid {
        Self::uid(&self.action, action.as_str())
    }

    /// The entities for a principal acting on a resource. `extra_org` is an organisation named
    /// in the context (the organisation an assignment is opened for).
    pub(crate) fn scene(
        &self,
        principal: &PrincipalFacts,
        resource: Resource<'_>,
        extra_org: Option<&OrgId>,
        schema: Option<&Schema>,
    ) -> Result<Scene, String> {
        let principal_uid = Self::uid(self.role(principal.role), principal.principal_id.as_str());
        let mut orgs: BTreeSet<&str> = BTreeSet::new();
        let mut entities: Vec<Entity> = Vec::with_capacity(8);

        let principal_attrs = match principal.role {
            Role::Subject => {
                // INVARIANT: a subject is always bound to their own candidate record; one that
                // is not cannot be described to the policy and gets no decision but Deny.
                let own = principal
                    .subject_of
                    .ok_or("a subject principal without the candidate it is")?;
                let own_uid = Self::uid(&self.candidate, &own.to_string());
                HashMap::from([(
                    "candidate".to_owned(),
                    RestrictedExpression::new_entity_uid(own_uid),
                )])
            }
            _ => {
                orgs.insert(principal.org.as_str());
                HashMap::from([(
                    "org".to_owned(),
                    RestrictedExpression::new_entity_uid(self.org_uid(principal.org.as_str())),
                )])
            }
        };
        entities.push(
            Entity::new(principal_uid.clone(), principal_attrs, HashSet::new())
                .map_err(|e| e.to_string())?,
        );

        let resource_uid = match resource {
            Resource::Vault => {
                let uid = Self::uid(&self.vault, VAULT_ENTITY_ID);
                entities.push(Entity::new_no_attrs(uid.clone(), HashSet::new()));
                uid
            }
            Resource::Candidate(candidate) => {
                let uid = self.candidate_uid(candidate);
                let org_set =
                    |list: &[OrgId]| {
                        RestrictedExpression::new_set(list.iter().map(|o| {
                            RestrictedExpression::new_entity_uid(self.org_uid(o.as_str()))
                        }))
                    };
                let attrs = HashMap::from([
                    (
                        "protected".to_owned(),
                        RestrictedExpression::new_bool(candidate.protected),
                    ),
                    (
                        "employer_contact_consent".to_owned(),
                        RestrictedExpression::new_bool(candidate.employer_contact_consent),
                    ),
                    (
                        "coaching_orgs".to_owned(),
                        org_set(&candidate.coaching_orgs),
                    ),
                    (
                        "matching_orgs".to_owned(),
                        org_set(&candidate.matching_orgs),
                    ),
                ]);
                orgs.extend(candidate.coaching_orgs.iter().map(OrgId::as_str));
                orgs.extend(candidate.matching_orgs.iter().map(OrgId::as_str));
                entities.push(
                    Entity::new(uid.clone(), attrs, HashSet::new()).map_err(|e| e.to_string())?,
                );
                uid
            }
        };
        if let Some(org) = extra_org {
            orgs.insert(org.as_str());
        }
        entities.extend(
            orgs.into_iter()
                .map(|o| Entity::new_no_attrs(self.org_uid(o), HashSet::new())),
        );

        let entities = Entities::from_entities(entities, schema).map_err(|e| e.to_string())?;
        Ok(Scene {
            entities,
            principal: principal_uid,
            resource: resource_uid,
        })
    }

    /// The context of a `read` of one field group.
    pub(crate) fn read_context(
        &self,
        purpose: &Purpose,
        group: FieldGroup,
    ) -> Result<Context, String> {
        Context::from_pairs([
            (
                "purpose".to_owned(),
                RestrictedExpression::new_entity_uid(Self::uid(&self.purpose, purpose.as_str())),
            ),
            (
                "group".to_owned(),
                RestrictedExpression::new_entity_uid(Self::uid(&self.field_group, group.as_str())),
            ),
        ])
        .map_err(|e| e.to_string())
    }

    /// The context of `update`: the field group replaced.
    pub(crate) fn update_context(&self, group: FieldGroup) -> Result<Context, String> {
        Context::from_pairs([(
            "group".to_owned(),
            RestrictedExpression::new_entity_uid(Self::uid(&self.field_group, group.as_str())),
        )])
        .map_err(|e| e.to_string())
    }

    /// The context of `open_assignment`.
    pub(crate) fn assignment_context(
        &self,
        kind: AssignmentKind,
        purpose: &Purpose,
        org: &OrgId,
        org_kind: OrgKind,
    ) -> Result<Context, String> {
        Context::from_pairs([
            (
                "kind".to_owned(),
                RestrictedExpression::new_entity_uid(Self::uid(
                    &self.assignment_kind,
                    kind.as_str(),
                )),
            ),
            (
                "purpose".to_owned(),
                RestrictedExpression::new_entity_uid(Self::uid(&self.purpose, purpose.as_str())),
            ),
            (
                "org".to_owned(),
                RestrictedExpression::new_entity_uid(self.org_uid(org.as_str())),
            ),
            (
                "org_kind".to_owned(),
                RestrictedExpression::new_entity_uid(Self::uid(&self.org_kind, org_kind.as_str())),
            ),
        ])
        .map_err(|e| e.to_string())
    }

    pub(crate) fn request(
        &self,
        scene: &Scene,
        action: Action,
        context: Context,
        schema: Option<&Schema>,
    ) -> Result<cedar_policy::Request, String> {
        cedar_policy::Request::new(
            scene.principal.clone(),
            self.action_uid(action),
            scene.resource.clone(),
            context,
            schema,
        )
        .map_err(|e| e.to_string())
    }
}
