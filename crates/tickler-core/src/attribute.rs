//! Entity attributes: small typed values that conditions and templates read.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};

/// An attribute value. In JSON and TOML it is written naturally (`true`, `3`, `"text"`,
/// `["a", "b"]`); in the binary log it is an explicitly tagged enum, because postcard is not
/// self-describing and cannot decode an untagged value.
#[derive(Clone, PartialEq, Eq)]
pub enum AttrValue {
    Bool(bool),
    Int(i64),
    Text(String),
    List(Vec<String>),
    /// Records with text fields (a digest's collected items). In JSON: a list of objects.
    Table(Vec<BTreeMap<String, String>>),
}

/// Whether `text` has the shape of an email address: one `@` between a non-empty local part
/// and a domain with a dot inside it, no whitespace or control characters, at most 320 bytes.
/// (Deliverability is the relay's to say; this catches a name or an id typed for an address.)
pub fn is_email_address(text: &str) -> bool {
    let Some((local, domain)) = text.split_once('@') else {
        return false;
    };
    let dotted = domain
        .split_once('.')
        .is_some_and(|(head, tail)| !head.is_empty() && !tail.is_empty() && !tail.ends_with('.'));
    text.len() <= 320
        && !local.is_empty()
        && !domain.contains('@')
        && dotted
        && !text.chars().any(|c| c.is_whitespace() || c.is_control())
}

impl AttrValue {
    pub fn is_true(&self) -> bool {
        matches!(self, AttrValue::Bool(true))
    }

    /// Empty text, list or table.
    pub fn is_empty(&self) -> bool {
        match self {
            AttrValue::Text(text) => text.is_empty(),
            AttrValue::List(items) => items.is_empty(),
            AttrValue::Table(rows) => rows.is_empty(),
            AttrValue::Bool(_) | AttrValue::Int(_) => false,
        }
    }

    /// The strings of a list (an empty slice for other values).
    pub fn as_list(&self) -> &[String] {
        match self {
            AttrValue::List(items) => items,
            _ => &[],
        }
    }
}

impl fmt::Debug for AttrValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttrValue::Bool(v) => write!(f, "{v}"),
            AttrValue::Int(v) => write!(f, "{v}"),
            AttrValue::Text(v) => write!(f, "{v:?}"),
            AttrValue::List(v) => write!(f, "{v:?}"),
            AttrValue::Table(v) => write!(f, "{v:?}"),
        }
    }
}

impl fmt::Display for AttrValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttrValue::Text(v) => f.write_str(v),
            AttrValue::List(v) => f.write_str(&v.join(", ")),
            AttrValue::Table(v) => write!(f, "{} record(s)", v.len()),
            other => fmt::Debug::fmt(other, f),
        }
    }
}

/// The binary form: variant order is part of the record format (append only).
#[derive(Serialize, Deserialize)]
enum Tagged {
    Bool(bool),
    Int(i64),
    Text(String),
    List(Vec<String>),
    Table(Vec<BTreeMap<String, String>>),
}

impl Serialize for AttrValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            match self {
                AttrValue::Bool(v) => serializer.serialize_bool(*v),
                AttrValue::Int(v) => serializer.serialize_i64(*v),
                AttrValue::Text(v) => serializer.serialize_str(v),
                AttrValue::List(v) => v.serialize(serializer),
                AttrValue::Table(v) => v.serialize(serializer),
            }
        } else {
            let tagged = match self.clone() {
                AttrValue::Bool(v) => Tagged::Bool(v),
                AttrValue::Int(v) => Tagged::Int(v),
                AttrValue::Text(v) => Tagged::Text(v),
                AttrValue::List(v) => Tagged::List(v),
                AttrValue::Table(v) => Tagged::Table(v),
            };
            tagged.serialize(serializer)
        }
    }
}

impl<'de> Deserialize<'de> for AttrValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            deserializer.deserialize_any(NaturalVisitor)
        } else {
            Ok(match Tagged::deserialize(deserializer)? {
                Tagged::Bool(v) => AttrValue::Bool(v),
                Tagged::Int(v) => AttrValue::Int(v),
                Tagged::Text(v) => AttrValue::Text(v),
                Tagged::List(v) => AttrValue::List(v),
                Tagged::Table(v) => AttrValue::Table(v),
            })
        }
    }
}

struct NaturalVisitor;

impl<'de> Visitor<'de> for NaturalVisitor {
    type Value = AttrValue;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a boolean, an integer, a string, a list of strings or a list of objects")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<AttrValue, E> {
        Ok(AttrValue::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<AttrValue, E> {
        Ok(AttrValue::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<AttrValue, E> {
        i64::try_from(v)
            .map(AttrValue::Int)
            .map_err(|_| E::custom(format!("integer {v} is too large")))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<AttrValue, E> {
        Ok(AttrValue::Text(v.to_owned()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<AttrValue, A::Error> {
        // A list of strings, or a list of objects with string values (a table).
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Item {
            Text(String),
            Record(BTreeMap<String, String>),
        }
        let mut texts = Vec::new();
        let mut records = Vec::new();
        while let Some(item) = seq.next_element::<Item>()? {
            match item {
                Item::Text(text) => texts.push(text),
                Item::Record(record) => records.push(record),
            }
        }
        match (texts.is_empty(), records.is_empty()) {
            (_, true) => Ok(AttrValue::List(texts)),
            (true, false) => Ok(AttrValue::Table(records)),
            (false, false) => Err(de::Error::custom("a list mixes strings and objects")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_natural_and_postcard_is_tagged() {
        for (value, json) in [
            (AttrValue::Bool(true), "true"),
            (AttrValue::Int(-3), "-3"),
            (AttrValue::Text("Ada".into()), "\"Ada\""),
            (
                AttrValue::List(vec!["a".into(), "b".into()]),
                "[\"a\",\"b\"]",
            ),
        ] {
            assert_eq!(serde_json::to_string(&value).unwrap(), json);
            assert_eq!(serde_json::from_str::<AttrValue>(json).unwrap(), value);
            let bytes = postcard::to_stdvec(&value).unwrap();
            assert_eq!(postcard::from_bytes::<AttrValue>(&bytes).unwrap(), value);
        }
        assert!(serde_json::from_str::<AttrValue>("1.5").is_err());
    }
}

#[cfg(test)]
mod email_tests {
    use super::is_email_address;

    #[test]
    fn an_email_address_has_a_local_part_and_a_dotted_domain() {
        for good in ["ana@example.org", "a.b+c@mail.example.co.uk"] {
            assert!(is_email_address(good), "{good}");
        }
        for bad in [
            "ana",
            "ana@",
            "@example.org",
            "ana@example",
            "a@b@c.org",
            "ana @x.org",
            "a@x.",
        ] {
            assert!(!is_email_address(bad), "{bad}");
        }
    }
}
