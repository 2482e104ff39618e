//! The configuration reference, generated from the configuration types (their JSON Schema, by
//! schemars): every key of `tickler.toml` with its type, default and meaning. It is
//! `proto/configuration.md`; a test holds the file to the types, and another checks that the
//! shipped `config/tickler.toml` lists every key.

use serde_json::Value;

use crate::config::Config;

/// One key of the reference.
struct Row {
    key: String,
    kind: String,
    default: String,
    meaning: String,
}

/// The reference as Markdown.
pub fn markdown() -> String {
    let schema = serde_json::to_value(schemars::schema_for!(Config)).expect("schemas encode");
    let mut rows = Vec::new();
    walk(&schema, &schema["$defs"], "", &mut rows);
    let mut text = String::from(
        "# Configuration reference\n\n\
         Generated from the configuration types (`crates/tickler/src/config_reference.rs`; \
         `TICKLER_WRITE_REFERENCE=1 cargo test -p tickler --test config_reference` rewrites it). \
         Every key of `tickler.toml`; the shipped `config/tickler.toml` lists them all. \
         Durations are written `90s`, `5m`, `1h30m`, `2d`; instants in RFC 3339.\n\n\
         | key | type | default | meaning |\n| --- | --- | --- | --- |\n",
    );
    for row in rows {
        text.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            row.key, row.kind, row.default, row.meaning
        ));
    }
    text
}

/// The schema a `$ref` (alone, or as the non-null member of an `anyOf`) points at.
fn resolve<'a>(node: &'a Value, defs: &'a Value) -> &'a Value {
    if let Some(reference) = node["$ref"].as_str() {
        let name = reference.trim_start_matches("#/$defs/");
        return resolve(&defs[name], defs);
    }
    if let Some(members) = node["anyOf"].as_array()
        && let Some(some) = members.iter().find(|m| m["type"] != "null")
    {
        return resolve(some, defs);
    }
    node
}

fn walk(node: &Value, defs: &Value, prefix: &str, rows: &mut Vec<Row>) {
    let node = resolve(node, defs);
    let Some(properties) = node["properties"].as_object() else {
        return;
    };
    for (key, property) in properties {
        let path = format!("{prefix}{key}");
        let target = resolve(property, defs);
        if target["properties"].is_object() {
            walk(target, defs, &format!("{path}."), rows);
        } else if let Some(variants) =
            resolve(&target["additionalProperties"], defs)["oneOf"].as_array()
        {
            rows.push(row(&format!("{path}.NAME"), property, target, defs));
            for variant in variants {
                channel_rows(&format!("{path}.NAME"), variant, defs, rows);
            }
        } else {
            rows.push(row(&path, property, target, defs));
        }
    }
}

/// The keys of one kind of a tagged table (a channel of `kind = "webhook"`).
fn channel_rows(prefix: &str, variant: &Value, defs: &Value, rows: &mut Vec<Row>) {
    let kind = variant["properties"]["kind"]["const"]
        .as_str()
        .unwrap_or_default();
    rows.push(Row {
        key: format!("{prefix}.kind"),
        kind: format!("`\"{kind}\"`"),
        default: "required".into(),
        meaning: one_line(&variant["description"]),
    });
    let Some(properties) = variant["properties"].as_object() else {
        return;
    };
    for (key, property) in properties {
        if key == "kind" {
            continue;
        }
        let target = resolve(property, defs);
        let mut row = row(&format!("{prefix}.{key}"), property, target, defs);
        row.meaning = format!("(`kind = \"{kind}\"`) {}", row.meaning);
        rows.push(row);
    }
}

fn row(key: &str, property: &Value, target: &Value, defs: &Value) -> Row {
    let meaning = match &property["description"] {
        Value::Null => one_line(&target["description"]),
        text => one_line(text),
    };
    let default = match (&property["default"], &target["default"]) {
        (Value::Null, Value::Null) => "none".to_owned(),
        (Value::Null, value) | (value, _) => format!("`{}`", compact(value)),
    };
    Row {
        key: key.to_owned(),
        kind: type_of(property, target, defs),
        default,
        meaning,
    }
}

fn type_of(property: &Value, target: &Value, defs: &Value) -> String {
    let optional = property["type"]
        .as_array()
        .is_some_and(|types| types.iter().any(|t| t == "null"))
        || property["anyOf"].is_array();
    let values: Vec<String> = match (&target["enum"], &target["oneOf"]) {
        (Value::Array(values), _) => values.iter().map(compact).collect(),
        (_, Value::Array(variants)) => variants
            .iter()
            .filter_map(|variant| resolve(variant, defs)["const"].as_str())
            .map(|value| format!("\"{value}\""))
            .collect(),
        _ => Vec::new(),
    };
    let base = if !values.is_empty() {
        format!("one of {}", values.join(", "))
    } else {
        match &target["type"] {
            Value::String(name) => name.clone(),
            Value::Array(names) => names
                .iter()
                .filter(|name| *name != "null")
                .map(compact)
                .collect::<Vec<_>>()
                .join(" or ")
                .replace('"', ""),
            _ => "value".to_owned(),
        }
    };
    let base = match (base.as_str(), &target["items"]["type"]) {
        ("array", Value::String(item)) => format!("array of {item}"),
        _ => base,
    };
    if optional {
        format!("{base} (optional)")
    } else {
        base
    }
}

fn compact(value: &Value) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// A doc comment as one table cell: lines joined, pipes escaped.
fn one_line(value: &Value) -> String {
    value
        .as_str()
        .unwrap_or_default()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
}
