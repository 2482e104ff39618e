//! Digest channels: instead of sending a message, collect it into a digest entity of the same
//! engine, one per recipient, whose own policy sends one message listing what was collected
//! (a consolidated mode: one email per recipient per day).
//!
//! A digest entity is an ordinary entity (`<kind>/<digest policy>/<recipient>`): its log says what
//! was collected, when, and what each digest contained. Collecting is idempotent per source
//! entity (an item is keyed by the entity it came from), so a retried delivery replaces its
//! item rather than listing it twice.

use std::collections::BTreeMap;
use std::sync::Arc;

use tickler_core::{Command, CreateEntity, EntityId, Policy, Rejection, Zone};

use crate::Error;
use crate::channel::{DeliveryError, Message};
use crate::metrics::Origin;
use crate::shared::{Shared, execute};

/// A channel that collects into digests of `policy`, in its list attribute `list`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DigestChannel {
    /// The digest policy, e.g. `daily-digest`.
    pub policy: String,
    /// The list attribute its collecting rule reads (the rule with `collects = "<list>"`).
    pub list: String,
    /// The zone digest entities are created in (the local time of their rule); `None`: the zone
    /// of the entity the first item came from.
    pub zone: Option<Zone>,
    /// What makes two items the same (a later one replaces an earlier one).
    pub key: DigestKey,
}

/// What identifies an item in a digest.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    serde::Deserialize,
    serde::Serialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum DigestKey {
    /// The source entity: its latest notice replaces the previous one (a survey's
    /// reminder replaces its available notice in the day's digest).
    #[default]
    Entity,
    /// The source occurrence: every message is listed (two reminders
    /// of one entity, due in the same slot, are both in the email).
    Occurrence,
}

impl DigestChannel {
    /// Checks the channel against the catalog: the policy exists and one of its rules collects
    /// `list`.
    pub(crate) fn check(&self, name: &str, policy: &Policy) -> Result<(), Error> {
        if policy
            .rules
            .iter()
            .any(|rule| rule.collects.as_deref() == Some(&self.list))
        {
            return Ok(());
        }
        Err(Error::Config {
            what: format!("channel {name}"),
            reason: format!(
                "no rule of policy {} collects {:?} (a rule with collects = {:?})",
                policy.name, self.list, self.list
            ),
        })
    }
}

/// The digest entity of `recipient` under `policy`.
pub fn digest_entity(policy: &Policy, recipient: &str) -> Result<EntityId, Error> {
    EntityId::new(&policy.entity_kind, &format!("{}/{recipient}", policy.name))
        .map_err(|err| Error::Internal(format!("no digest entity for {recipient:?}: {err}")))
}

/// Collects `message` into its recipient's digest, creating the digest entity on first use.
pub(crate) async fn collect(
    shared: &Arc<Shared>,
    digest: &DigestChannel,
    message: &Message,
    source_zone: Zone,
) -> Result<String, DeliveryError> {
    let permanent = |err: Error| DeliveryError::Permanent(err.to_string());
    let policy = shared.catalog.policy(&digest.policy).map_err(permanent)?;
    let id = digest_entity(policy, &message.recipient).map_err(permanent)?;
    let mut item = BTreeMap::from([
        (
            "key".to_owned(),
            match digest.key {
                DigestKey::Entity => message.entity.clone(),
                DigestKey::Occurrence => message.idempotency_key.clone(),
            },
        ),
        ("entity".to_owned(), message.entity.clone()),
        ("rule".to_owned(), message.rule.clone()),
        ("kind".to_owned(), message.kind.clone()),
        ("subject".to_owned(), message.subject.clone()),
        ("body".to_owned(), message.body.clone()),
        ("due_at".to_owned(), message.due_at.to_string()),
    ]);
    // The HTML part, when the source has one: an HTML digest embeds it as it was rendered.
    if let Some(html) = &message.html {
        item.insert("html".to_owned(), html.clone());
    }
    let command = || Command::Collect {
        list: digest.list.clone(),
        item: item.clone(),
    };
    let result = match execute(shared, &id, command(), Origin::Engine).await {
        Err(Error::Rejected(Rejection::UnknownEntity { .. })) => {
            let create = CreateEntity {
                policy: digest.policy.clone(),
                workflow: None,
                recipient: message.recipient.clone(),
                zone: digest.zone.unwrap_or(source_zone),
                anchors: BTreeMap::new(),
                attributes: BTreeMap::new(),
            };
            match execute(shared, &id, Command::Create(create), Origin::Engine).await {
                // Another delivery to the same recipient created it first: fine.
                Ok(_) | Err(Error::Rejected(Rejection::AlreadyExists { .. })) => {}
                Err(err) => return Err(classify(err)),
            }
            execute(shared, &id, command(), Origin::Engine).await
        }
        other => other,
    };
    match result {
        Ok(applied) => Ok(format!(
            "collected into {id} at version {}",
            applied.version
        )),
        Err(err) => Err(classify(err)),
    }
}

/// Takes the items that came from `source` out of `recipient`'s digests (it was answered, or
/// deleted): a digest never lists what no longer needs doing.
pub(crate) async fn discard(
    shared: &Arc<Shared>,
    digest: &DigestChannel,
    source: &EntityId,
    recipient: &str,
) -> Result<(), Error> {
    let policy = shared.catalog.policy(&digest.policy)?;
    let id = digest_entity(policy, recipient)?;
    let command = Command::Discard {
        list: digest.list.clone(),
        key: source.to_string(),
    };
    match execute(shared, &id, command, Origin::Engine).await {
        Ok(_) | Err(Error::Rejected(Rejection::UnknownEntity { .. })) => Ok(()),
        Err(err) => Err(err),
    }
}

/// A rejected command will be rejected again; anything else (storage, shutdown) may pass later.
fn classify(err: Error) -> DeliveryError {
    match err {
        Error::Rejected(rejection) => DeliveryError::Permanent(rejection.to_string()),
        other => DeliveryError::Transient(other.to_string()),
    }
}
