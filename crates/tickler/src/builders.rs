//! Typed builders for creating entities from Rust, so that an embedder writes
//! `engine.due_date("review-42").recipient("reviewer@example.org").create()` rather than filling
//! a `CreateEntity` by hand: a misspelt setter is a compile error, a misspelt policy or workflow a
//! clear error naming the policy and the names it knows.
//!
//! `create` has `Engine::create`'s semantics: the identical request again succeeds (a retry),
//! a different one for the same id is `Rejection::Conflict` naming the field.

use std::collections::BTreeMap;

use tickler_core::{AttrValue, CreateEntity, Entity, EntityId, Rejection, Timestamp, Zone};
use tickler_engine::{Engine, Error};

/// The builders, as methods of [`Engine`]: `use tickler::Builders;`.
pub trait Builders {
    /// An entity of `policy`, with the id `<the policy's kind>/<key>`.
    fn new_entity(&self, policy: &str, key: &str) -> NewEntity<'_>;

    /// A due date under the shipped `due-date` policy: `due/<key>`.
    fn due_date(&self, key: &str) -> DueDate<'_>;
}

impl Builders for Engine {
    fn new_entity(&self, policy: &str, key: &str) -> NewEntity<'_> {
        NewEntity {
            engine: self,
            key: key.to_owned(),
            create: CreateEntity {
                policy: policy.to_owned(),
                workflow: None,
                recipient: String::new(),
                zone: Zone::UTC,
                anchors: BTreeMap::new(),
                attributes: BTreeMap::new(),
            },
        }
    }

    fn due_date(&self, key: &str) -> DueDate<'_> {
        DueDate(self.new_entity(DUE_DATE_POLICY, key))
    }
}

/// The shipped due-date policy (`config/policies/due-date.toml`).
pub const DUE_DATE_POLICY: &str = "due-date";

/// An entity about to be created; see [`Builders::new_entity`].
#[must_use = "nothing is created until `create` is awaited"]
pub struct NewEntity<'a> {
    engine: &'a Engine,
    key: String,
    create: CreateEntity,
}

impl<'a> NewEntity<'a> {
    /// Who the entity's reminders go to (required).
    pub fn recipient(mut self, recipient: impl Into<String>) -> Self {
        self.create.recipient = recipient.into();
        self
    }

    /// The recipient's time zone, for local rules (default UTC).
    pub fn zone(mut self, zone: Zone) -> Self {
        self.create.zone = zone;
        self
    }

    /// A workflow of the policy (default: the policy's `default_workflow`, if it has one).
    pub fn workflow(mut self, workflow: &str) -> Self {
        self.create.workflow = Some(workflow.to_owned());
        self
    }

    pub fn anchor(mut self, name: &str, at: Timestamp) -> Self {
        self.create.anchors.insert(name.to_owned(), at);
        self
    }

    pub fn attribute(mut self, name: &str, value: AttrValue) -> Self {
        self.create.attributes.insert(name.to_owned(), value);
        self
    }

    /// The id the entity gets: `<the policy's kind>/<key>`.
    pub fn id(&self) -> Result<EntityId, Error> {
        let policy = self.engine.catalog().policy(&self.create.policy)?;
        EntityId::new(&policy.entity_kind, &self.key).map_err(|err| {
            Error::Rejected(Rejection::InvalidRecipient {
                value: self.key.clone(),
                reason: format!("not usable as an entity key: {err}"),
            })
        })
    }

    /// Creates the entity (durably, when this returns) and returns it as it is now.
    pub async fn create(self) -> Result<Entity, Error> {
        let id = self.id()?;
        if self.create.recipient.is_empty() {
            return Err(Error::Rejected(Rejection::InvalidRecipient {
                value: String::new(),
                reason: format!("{id} was given no recipient: call .recipient(address)"),
            }));
        }
        self.engine.create(&id, self.create).await?;
        self.engine.show(&id).await
    }
}

/// A due date about to be created; see [`Builders::due_date`].
#[must_use = "nothing is created until `create` is awaited"]
pub struct DueDate<'a>(NewEntity<'a>);

impl<'a> DueDate<'a> {
    /// Who is chased (required).
    pub fn recipient(self, recipient: impl Into<String>) -> Self {
        DueDate(self.0.recipient(recipient))
    }

    /// The recipient's time zone (default UTC).
    pub fn zone(self, zone: Zone) -> Self {
        DueDate(self.0.zone(zone))
    }

    /// `reviewer-report` (ten days, the default) or `revision` (fourteen).
    pub fn workflow(self, workflow: &str) -> Self {
        DueDate(self.0.workflow(workflow))
    }

    /// The due date, rounded up to the hour (default: the workflow's length from now).
    pub fn due_at(self, at: Timestamp) -> Self {
        DueDate(self.0.anchor("due_at", at))
    }

    /// What the task is called in messages.
    pub fn title(self, title: impl Into<String>) -> Self {
        DueDate(self.0.attribute("title", AttrValue::Text(title.into())))
    }

    /// Creates the due date and returns it with its planned reminders.
    pub async fn create(self) -> Result<Entity, Error> {
        self.0.create().await
    }
}
