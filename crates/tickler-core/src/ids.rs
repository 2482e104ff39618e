//! Identifiers: entities, rules, occurrences and the idempotency key derived from them.
//!
//! Ids appear in store keys, file names of nothing, log lines and outbox records, so they are
//! restricted to printable characters without whitespace and bounded in length. The store
//! relies on that: it length-prefixes ids inside keys, and a bounded id keeps a key bounded.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::Error;

/// The longest entity id accepted, in bytes.
pub const ENTITY_ID_LEN_MAX: usize = 200;
/// The longest entity kind (the part before the first `/`), in bytes.
pub const ENTITY_KIND_LEN_MAX: usize = 32;
/// The longest rule name, in bytes.
pub const RULE_NAME_LEN_MAX: usize = 64;

/// One thing reminders hang off, addressed as `kind/key`, e.g. `due/review-42`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct EntityId(String);

/// Written as its text, exactly as a `String` is, without copying it first (serde's
/// `into = "String"` would allocate on every record written).
impl Serialize for EntityId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl EntityId {
    pub fn parse(text: &str) -> Result<EntityId, Error> {
        let invalid = |reason: &str| Error::InvalidEntityId {
            value: text.to_owned(),
            reason: reason.to_owned(),
        };
        if text.len() > ENTITY_ID_LEN_MAX {
            return Err(invalid("longer than 200 bytes"));
        }
        let Some((kind, key)) = text.split_once('/') else {
            return Err(invalid("expected kind/key, e.g. due/review-42"));
        };
        if !is_name(kind, ENTITY_KIND_LEN_MAX) {
            return Err(invalid(
                "the kind must be 1-32 of a-z, 0-9, '-', '_', starting with a letter",
            ));
        }
        if key.is_empty() {
            return Err(invalid("the key after '/' is empty"));
        }
        if key.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(invalid(
                "the key contains whitespace or a control character",
            ));
        }
        Ok(EntityId(text.to_owned()))
    }

    /// Builds `kind/key` from its parts, validating both.
    pub fn new(kind: &str, key: &str) -> Result<EntityId, Error> {
        EntityId::parse(&format!("{kind}/{key}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn kind(&self) -> &str {
        self.0.split_once('/').map_or("", |(kind, _)| kind)
    }

    pub fn key(&self) -> &str {
        self.0.split_once('/').map_or("", |(_, key)| key)
    }
}

/// A lowercase name: a letter first, then letters, digits, `-` or `_`.
fn is_name(text: &str, len_max: usize) -> bool {
    let mut bytes = text.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z'))
        && text.len() <= len_max
        && bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_'))
}

impl TryFrom<String> for EntityId {
    type Error = Error;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        EntityId::parse(&value)
    }
}

impl From<EntityId> for String {
    fn from(id: EntityId) -> String {
        id.0
    }
}

impl FromStr for EntityId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EntityId::parse(s)
    }
}

impl fmt::Display for EntityId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for EntityId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

/// The name of a rule within a policy, e.g. `pre-due`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct RuleName(String);

/// Written as its text, as [`EntityId`] is.
impl Serialize for RuleName {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl RuleName {
    pub fn parse(text: &str) -> Result<RuleName, Error> {
        if is_name(text, RULE_NAME_LEN_MAX) {
            Ok(RuleName(text.to_owned()))
        } else {
            Err(Error::InvalidName {
                what: "rule name",
                value: text.to_owned(),
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for RuleName {
    type Error = Error;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        RuleName::parse(&value)
    }
}

impl FromStr for RuleName {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RuleName::parse(s)
    }
}

impl From<RuleName> for String {
    fn from(name: RuleName) -> String {
        name.0
    }
}

impl fmt::Display for RuleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RuleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

/// One planned sending of a rule for an entity: the rule and the how-manieth time the rule was
/// armed for this entity. Written `rule#index`, e.g. `pre-due#0`.
///
/// The index only grows: a rule re-armed after its occurrence was processed (the due date moved
/// after the reminder was sent) gets the next index, so an occurrence id is never reused.
///
/// Text encodings (JSON) write it `rule#index`; the binary log writes the pair.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OccurrenceId {
    pub rule: RuleName,
    pub index: u32,
}

impl OccurrenceId {
    pub fn new(rule: RuleName, index: u32) -> OccurrenceId {
        OccurrenceId { rule, index }
    }

    pub fn parse(text: &str) -> Result<OccurrenceId, Error> {
        let invalid = || Error::InvalidOccurrenceId {
            value: text.to_owned(),
        };
        let (rule, index) = text.rsplit_once('#').ok_or_else(invalid)?;
        let rule = RuleName::parse(rule).map_err(|_| invalid())?;
        let index = index.parse::<u32>().map_err(|_| invalid())?;
        Ok(OccurrenceId { rule, index })
    }

    /// The key that identifies this occurrence to every channel and receiver, for ever.
    pub fn idempotency_key(&self, entity: &EntityId) -> IdempotencyKey {
        IdempotencyKey(format!("{entity}#{self}"))
    }
}

/// The binary form: field order is part of the record format.
#[derive(Deserialize)]
struct OccurrencePair {
    rule: RuleName,
    index: u32,
}

/// [`OccurrencePair`] as written: the same fields in the same order, borrowed.
#[derive(Serialize)]
struct OccurrencePairRef<'a> {
    rule: &'a RuleName,
    index: u32,
}

impl Serialize for OccurrenceId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.collect_str(self)
        } else {
            OccurrencePairRef {
                rule: &self.rule,
                index: self.index,
            }
            .serialize(serializer)
        }
    }
}

impl<'de> Deserialize<'de> for OccurrenceId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        if deserializer.is_human_readable() {
            let text = String::deserialize(deserializer)?;
            OccurrenceId::parse(&text).map_err(D::Error::custom)
        } else {
            let pair = OccurrencePair::deserialize(deserializer)?;
            Ok(OccurrenceId::new(pair.rule, pair.index))
        }
    }
}

impl FromStr for OccurrenceId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        OccurrenceId::parse(s)
    }
}

impl fmt::Display for OccurrenceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.rule, self.index)
    }
}

impl fmt::Debug for OccurrenceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// `entity#rule#index`, e.g. `due/review-42#pre-due#0`: stable across restarts, retries and
/// reschedules, so a receiver can drop a repeated delivery.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key of one address of a fan-out: `entity#rule#index/address`, with `%` and `#` in
    /// the address written `%25` and `%23`. An entity key may hold `#` and `/`, and so may an
    /// address; with no `#` after the index, the last `#` always ends the index and the key
    /// reads one way only, so two entities' deliveries never share a key. (Addresses without
    /// `#` or `%`, nearly all, keep the key they had before this encoding.)
    pub fn for_address(&self, address: &str) -> String {
        let mut key = String::with_capacity(self.0.len() + 1 + address.len());
        key.push_str(&self.0);
        key.push('/');
        for c in address.chars() {
            match c {
                '%' => key.push_str("%25"),
                '#' => key.push_str("%23"),
                c => key.push(c),
            }
        }
        key
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entity_ids_are_kind_slash_key() {
        let id = EntityId::parse("due/review-42").unwrap();
        assert_eq!((id.kind(), id.key()), ("due", "review-42"));
        let nested = EntityId::parse("member/alice@example.org/team-v1:Org+Name").unwrap();
        assert_eq!(nested.key(), "alice@example.org/team-v1:Org+Name");
    }

    #[test]
    fn malformed_entity_ids_are_refused_naming_the_value() {
        for bad in [
            "review-42",
            "/x",
            "Due/x",
            "due/",
            "due/a b",
            "due/\u{7}",
            &"a/".repeat(101),
        ] {
            let err = EntityId::parse(bad).unwrap_err();
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        }
    }

    #[test]
    fn occurrence_ids_round_trip_through_text() {
        let occ = OccurrenceId::parse("first-late#3").unwrap();
        assert_eq!(occ.rule.as_str(), "first-late");
        assert_eq!(occ.index, 3);
        assert_eq!(occ.to_string(), "first-late#3");
        for bad in ["first-late", "#1", "Late#1", "late#-1", "late#x"] {
            assert!(OccurrenceId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn occurrence_ids_are_text_in_json_and_a_pair_in_the_log() {
        let occ = OccurrenceId::parse("pre-due#2").unwrap();
        assert_eq!(serde_json::to_string(&occ).unwrap(), "\"pre-due#2\"");
        assert_eq!(
            serde_json::from_str::<OccurrenceId>("\"pre-due#2\"").unwrap(),
            occ
        );
        let bytes = postcard::to_stdvec(&occ).unwrap();
        assert_eq!(bytes, [7, b'p', b'r', b'e', b'-', b'd', b'u', b'e', 2]);
        assert_eq!(postcard::from_bytes::<OccurrenceId>(&bytes).unwrap(), occ);
    }

    #[test]
    fn keys_of_different_entities_and_addresses_never_coincide() {
        // The security review's pair: before the encoding both were
        // `eval/c#available#0/s#available#0/x`.
        let occ = OccurrenceId::parse("available#0").unwrap();
        let one = occ
            .idempotency_key(&EntityId::parse("eval/c").unwrap())
            .for_address("s#available#0/x");
        let two = occ
            .idempotency_key(&EntityId::parse("eval/c#available#0/s").unwrap())
            .for_address("x");
        assert_ne!(one, two);
        assert_eq!(one, "eval/c#available#0/s%23available%230/x");
        let plain = occ
            .idempotency_key(&EntityId::parse("eval/c").unwrap())
            .for_address("a@example.org");
        assert_eq!(
            plain, "eval/c#available#0/a@example.org",
            "unchanged for plain ones"
        );
    }

    #[test]
    fn idempotency_key_names_entity_rule_and_index() {
        let entity = EntityId::parse("due/review-42").unwrap();
        let occ = OccurrenceId::parse("pre-due#0").unwrap();
        assert_eq!(
            occ.idempotency_key(&entity).as_str(),
            "due/review-42#pre-due#0"
        );
    }
}
