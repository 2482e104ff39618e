//! The JSON Schema of the admin protocol's requests, generated from the wire types (schemars)
//! into `proto/admin-protocol.schema.json`.
//!
//! The wire types carry values of the domain (ids, instants, zones) in their text forms; the
//! markers here say so in the schema (`#[schemars(with = "...")]`), so no domain type derives a
//! schema. A command family adds the schemas of its commands' arguments
//! ([`crate::CommandFamily::args_schemas`]).

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde_json::{Map, Value, json};

use crate::family::Families;
use crate::protocol::{PROTOCOL_VERSION, Reply, Request};

macro_rules! text_marker {
    ($name:ident, $description:expr) => {
        #[doc = $description]
        pub struct $name;

        impl JsonSchema for $name {
            fn schema_name() -> Cow<'static, str> {
                stringify!($name).into()
            }

            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!({ "type": "string", "description": $description })
            }
        }
    };
}

text_marker!(IdText, "An entity id, `kind/key` (e.g. `due/review-42`).");
text_marker!(
    InstantText,
    "An instant in RFC 3339 with an offset (e.g. `2026-03-20T10:00:00Z`)."
);
text_marker!(
    SpanText,
    "A duration: a number and a unit, `ms`, `s`, `m`, `h`, `d` (e.g. `3d`)."
);
text_marker!(ZoneText, "An IANA time zone (e.g. `Europe/Paris`).");
text_marker!(
    OccurrenceText,
    "An occurrence of an entity, `rule#index` (e.g. `pre-due#0`)."
);

/// An attribute value: a boolean, an integer, a string, a list of strings, or a table (a list
/// of objects with string fields).
pub struct AttrJson;

impl JsonSchema for AttrJson {
    fn schema_name() -> Cow<'static, str> {
        "AttrJson".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "An attribute value: boolean, integer, string, list of strings, or table.",
            "anyOf": [
                { "type": "boolean" },
                { "type": "integer" },
                { "type": "string" },
                { "type": "array", "items": { "type": "string" } },
                { "type": "array", "items": { "type": "object", "additionalProperties": { "type": "string" } } }
            ]
        })
    }
}

/// The schema document of the protocol: a request line (the envelope around the generic
/// commands and each family's) and a reply line.
pub fn protocol_schema(families: &Families) -> Value {
    let mut generator = schemars::generate::SchemaSettings::draft2020_12().into_generator();
    let generic = generator.subschema_for::<Request>().to_value();
    let generic = resolve(&generic, &generator);
    let mut commands = match generic.get("oneOf") {
        Some(Value::Array(variants)) => variants.clone(),
        _ => vec![generic],
    };
    for (cmd, args) in families.args_schemas(&mut generator) {
        commands.push(json!({
            "type": "object",
            "properties": { "cmd": { "const": cmd }, "args": args.to_value() },
            "required": ["cmd", "args"],
        }));
    }
    for variant in &mut commands {
        args_optional_when_all_are(variant, &generator);
        // `v` and `id` are the envelope's: a command's own schema only adds `cmd` and `args`.
        if let Some(object) = variant.as_object_mut() {
            object.remove("additionalProperties");
        }
    }
    let reply = generator.subschema_for::<Reply>().to_value();
    let mut definitions: Map<String, Value> = generator.take_definitions(true);
    definitions.remove("Request");
    definitions.insert("request".into(), request_line(commands));
    definitions.insert("reply".into(), reply);
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": format!("tickler admin protocol, version {PROTOCOL_VERSION}"),
        "description": "A request line or a reply line; proto/admin-protocol.md is the specification.",
        "$defs": definitions,
        "oneOf": [{ "$ref": "#/$defs/request" }, { "$ref": "#/$defs/reply" }],
    })
}

/// The definition a `$ref` names (a schema without one is itself).
fn resolve(schema: &Value, generator: &SchemaGenerator) -> Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(reference) => generator
            .definitions()
            .get(reference.rsplit('/').next().unwrap_or_default())
            .cloned()
            .unwrap_or(Value::Null),
        None => schema.clone(),
    }
}

/// The envelope of a request: `v`, `id`, and one of the commands (`cmd` and `args`).
fn request_line(commands: Vec<Value>) -> Value {
    json!({
        "type": "object",
        "properties": {
            "v": { "const": PROTOCOL_VERSION },
            "id": { "description": "Any JSON value, echoed in the reply." },
            "cmd": { "type": "string" },
            "args": {},
        },
        "required": ["v", "cmd"],
        "additionalProperties": false,
        "oneOf": commands,
    })
}

/// A command whose arguments are all optional may leave `args` out (the daemon takes `{}`).
fn args_optional_when_all_are(variant: &mut Value, generator: &SchemaGenerator) {
    let resolved = resolve(&variant["properties"]["args"], generator);
    let none_required = resolved
        .get("required")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty);
    if none_required && let Some(Value::Array(required)) = variant.get_mut("required") {
        required.retain(|field| field != "args");
    }
}
