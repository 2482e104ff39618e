//! Evaluations (the `evaluation` policy, after Sakai's Evaluation System) as an embedder or the
//! admin socket handles them: created from their dates and participants, answered, re-dated,
//! deleted. Everything here is a few commands to the evaluation entity (and its students'
//! digests); the notification chain itself is the policy's.
//!
//! Who answered is part of the entity's state, so reminders decided at fire time leave them out,
//! and their digests drop what they no longer need to do. The lists are the policy's attributes:
//! `students` may respond, `respondents` submitted, `in_progress` saved without submitting.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tickler_core::{AttrValue, Command, CreateEntity, EntityId, Timestamp, Zone};
use tickler_engine::{Applied, Engine, Error};

/// The policy evaluations run under.
pub const EVALUATION_POLICY: &str = "evaluation";
/// The completion reason of a deleted evaluation.
pub const DELETED: &str = "deleted";

/// The attribute listing who may respond.
pub const PARTICIPANTS: &str = "students";
/// The attribute listing who submitted a response.
pub const RESPONDENTS: &str = "respondents";
/// The attribute listing who saved a response without submitting it.
pub const IN_PROGRESS: &str = "in_progress";

/// What a participant did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Response {
    /// Submitted: no more reminders, and out of their digests.
    Submitted,
    /// Saved without submitting: reminded only if the entity allows saving.
    Saved,
}

#[async_trait]
impl crate::Evaluations for Engine {
    async fn record_response(
        &self,
        entity: &EntityId,
        participant: &str,
        response: Response,
    ) -> Result<Vec<Applied>, Error> {
        let state = self.show(entity).await?;
        let allowed = state
            .attributes
            .get(PARTICIPANTS)
            .is_some_and(|list| list.as_list().iter().any(|p| p == participant));
        if !allowed {
            return Err(Error::Family {
                code: "not_a_participant",
                message: format!(
                    "{participant:?} is not one of the participants ({PARTICIPANTS}) of {entity}"
                ),
            });
        }
        let add = |name: &str| Command::AddToList {
            name: name.to_owned(),
            value: participant.to_owned(),
        };
        let mut applied = Vec::new();
        match response {
            Response::Saved => applied.push(self.execute(entity, add(IN_PROGRESS)).await?),
            Response::Submitted => {
                applied.push(self.execute(entity, add(RESPONDENTS)).await?);
                let remove = Command::RemoveFromList {
                    name: IN_PROGRESS.to_owned(),
                    value: participant.to_owned(),
                };
                applied.push(self.execute(entity, remove).await?);
                self.withdraw_from_digests(entity, &[participant.to_owned()])
                    .await?;
            }
        }
        Ok(applied)
    }

    async fn create_evaluation(&self, evaluation: &NewEvaluation) -> Result<Applied, Error> {
        self.create(&evaluation.entity, evaluation.to_create()?)
            .await
    }

    async fn move_evaluation_dates(
        &self,
        entity: &EntityId,
        dates: &EvaluationDates,
    ) -> Result<Applied, Error> {
        let to = dates.anchors()?;
        if to.is_empty() {
            return Err(Error::Arguments {
                what: "eval.move-dates".into(),
                reason: "no date to move (start, due, stop, view, view_instructors, view_students)"
                    .into(),
            });
        }
        self.execute(entity, Command::MoveAnchors { to }).await
    }

    async fn delete_evaluation(&self, entity: &EntityId) -> Result<Applied, Error> {
        let applied = self
            .execute(
                entity,
                Command::Complete {
                    reason: DELETED.to_owned(),
                },
            )
            .await?;
        let state = self.show(entity).await?;
        let students = state
            .attributes
            .get(PARTICIPANTS)
            .map(|list| list.as_list().to_vec())
            .unwrap_or_default();
        self.withdraw_from_digests(entity, &students).await?;
        Ok(applied)
    }
}

/// An evaluation to create: its dates, participants and settings. Unset settings take the
/// policy's defaults (reminders never, available notice on, results to instructors only).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEvaluation {
    #[schemars(with = "tickler_admin::schema::IdText")]
    pub entity: EntityId,
    pub title: String,
    /// Hears that it was created and closed.
    pub owner: String,
    #[serde(default)]
    pub students: Vec<String>,
    #[serde(default)]
    pub instructors: Vec<String>,
    /// The zone dates are shown in, and digests are sent in by default.
    #[serde(default)]
    #[schemars(with = "tickler_admin::schema::ZoneText")]
    pub zone: Zone,
    /// At least start and due.
    pub dates: EvaluationDates,
    /// `never`, `every-1d` … `every-7d`, or `24h-before-due`.
    #[serde(default)]
    pub reminder: Option<String>,
    #[serde(default)]
    pub available_notice: Option<bool>,
    /// Takers who saved without submitting are reminded too.
    #[serde(default)]
    pub allow_saving: Option<bool>,
    #[serde(default)]
    pub results_to_instructors: Option<bool>,
    #[serde(default)]
    pub results_to_students: Option<bool>,
    /// One digest a day per student instead of a message per notice.
    #[serde(default)]
    pub consolidated: Option<bool>,
}

/// An evaluation's dates. `view` sets both view dates; it cannot be combined with them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EvaluationDates {
    #[serde(default)]
    #[schemars(with = "Option<tickler_admin::schema::InstantText>")]
    pub start: Option<Timestamp>,
    #[serde(default)]
    #[schemars(with = "Option<tickler_admin::schema::InstantText>")]
    pub due: Option<Timestamp>,
    /// The end of the grace period after due; closing happens then.
    #[serde(default)]
    #[schemars(with = "Option<tickler_admin::schema::InstantText>")]
    pub stop: Option<Timestamp>,
    #[serde(default)]
    #[schemars(with = "Option<tickler_admin::schema::InstantText>")]
    pub view: Option<Timestamp>,
    #[serde(default)]
    #[schemars(with = "Option<tickler_admin::schema::InstantText>")]
    pub view_instructors: Option<Timestamp>,
    #[serde(default)]
    #[schemars(with = "Option<tickler_admin::schema::InstantText>")]
    pub view_students: Option<Timestamp>,
}

impl EvaluationDates {
    /// The anchors these dates set.
    pub fn anchors(&self) -> Result<BTreeMap<String, Timestamp>, Error> {
        if self.view.is_some() && (self.view_instructors.is_some() || self.view_students.is_some())
        {
            return Err(Error::Arguments {
                what: "evaluation dates".into(),
                reason: "give view, or view_instructors and view_students, not both".into(),
            });
        }
        let view = |specific: Option<Timestamp>| specific.or(self.view);
        Ok([
            ("start", self.start),
            ("due", self.due),
            ("stop", self.stop),
            ("view_instructors", view(self.view_instructors)),
            ("view_students", view(self.view_students)),
        ]
        .into_iter()
        .filter_map(|(name, at)| at.map(|at| (name.to_owned(), at)))
        .collect())
    }
}

impl NewEvaluation {
    /// The `Create` command for the evaluation policy. The policy checks the values (dates in
    /// order, addresses, the reminder setting) and names what is wrong.
    /// The owner, students and instructors are email addresses (messages go by email): a
    /// name or an id typed for one is refused, naming it.
    fn check_addresses(&self) -> Result<(), Error> {
        let people = std::iter::once(("owner", &self.owner))
            .chain(self.students.iter().map(|s| ("student", s)))
            .chain(self.instructors.iter().map(|i| ("instructor", i)));
        for (role, address) in people {
            if !tickler_core::is_email_address(address) {
                return Err(Error::Family {
                    code: "invalid_attribute_value",
                    message: format!(
                        "{role} {address:?} is not an email address (expected one such as \
                         ana@example.org)"
                    ),
                });
            }
        }
        Ok(())
    }

    pub fn to_create(&self) -> Result<CreateEntity, Error> {
        self.check_addresses()?;
        let list = |items: &[String]| AttrValue::List(items.to_vec());
        let mut attributes = BTreeMap::from([
            ("title".to_owned(), AttrValue::Text(self.title.clone())),
            ("owner".to_owned(), AttrValue::Text(self.owner.clone())),
            (PARTICIPANTS.to_owned(), list(&self.students)),
            ("instructors".to_owned(), list(&self.instructors)),
        ]);
        if let Some(reminder) = &self.reminder {
            attributes.insert("reminder".into(), AttrValue::Text(reminder.clone()));
        }
        for (name, flag) in [
            ("available_notice", self.available_notice),
            ("allow_saving", self.allow_saving),
            ("results_to_instructors", self.results_to_instructors),
            ("results_to_students", self.results_to_students),
            ("consolidated", self.consolidated),
        ] {
            if let Some(flag) = flag {
                attributes.insert(name.to_owned(), AttrValue::Bool(flag));
            }
        }
        Ok(CreateEntity {
            policy: EVALUATION_POLICY.to_owned(),
            workflow: None,
            recipient: self.owner.clone(),
            zone: self.zone,
            anchors: self.dates.anchors()?,
            attributes,
        })
    }
}
