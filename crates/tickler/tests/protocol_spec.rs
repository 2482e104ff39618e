//! Holds the daemon to its specification: every example in `proto/admin-protocol.md` is sent to a
//! real daemon, in order, and the reply compared with the one the spec shows.

mod support;

use serde_json::Value;
use support::Daemon;

const SPEC: &str = include_str!("../../../proto/admin-protocol.md");

/// The `> request` / `< reply` pairs of every ```example block, in order.
fn examples() -> Vec<(String, Value)> {
    let mut pairs = Vec::new();
    let mut in_example = false;
    let mut request: Option<String> = None;
    for line in SPEC.lines() {
        match line.trim_end() {
            "```example" => in_example = true,
            "```" if in_example => in_example = false,
            line if in_example => {
                if let Some(text) = line.strip_prefix("> ") {
                    assert!(request.is_none(), "two requests in a row: {text}");
                    request = Some(text.to_owned());
                } else if let Some(text) = line.strip_prefix("< ") {
                    let reply = serde_json::from_str(text).unwrap_or_else(|err| {
                        panic!("the spec's reply is not JSON ({err}): {text}")
                    });
                    pairs.push((request.take().expect("a reply follows a request"), reply));
                } else if !line.is_empty() {
                    panic!("an example line must start with '> ' or '< ': {line}");
                }
            }
            _ => {}
        }
    }
    pairs
}

/// `expected` matches `actual` when every field it shows is equal; "<any>" matches anything;
/// arrays match element by element and must have the same length.
fn matches(expected: &Value, actual: &Value, path: &str) -> Result<(), String> {
    match (expected, actual) {
        (Value::String(any), _) if any == "<any>" => Ok(()),
        (Value::Object(want), Value::Object(have)) => {
            for (key, value) in want {
                let field = have
                    .get(key)
                    .ok_or_else(|| format!("{path}.{key} is missing"))?;
                matches(value, field, &format!("{path}.{key}"))?;
            }
            Ok(())
        }
        (Value::Array(want), Value::Array(have)) => {
            if want.len() != have.len() {
                return Err(format!(
                    "{path} has {} items, the spec shows {}",
                    have.len(),
                    want.len()
                ));
            }
            for (index, (w, h)) in want.iter().zip(have).enumerate() {
                matches(w, h, &format!("{path}[{index}]"))?;
            }
            Ok(())
        }
        (want, have) if want == have => Ok(()),
        (want, have) => Err(format!("{path} is {have}, the spec shows {want}")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_example_of_the_spec_runs_against_the_daemon_as_written() {
    let work = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(work.path(), "2026-03-01T09:30:00Z").await;
    let mut client = daemon.client().await;
    let examples = examples();
    assert!(
        examples.len() >= 15,
        "the spec has its examples ({})",
        examples.len()
    );
    for (request, expected) in examples {
        let mut line = request.clone().into_bytes();
        line.push(b'\n');
        let reply = client.send_raw(&line).await.unwrap();
        let actual = serde_json::to_value(&reply).unwrap();
        if let Err(difference) = matches(&expected, &actual, "reply") {
            panic!("request {request}\n{difference}\nfull reply: {actual}");
        }
    }
}

#[test]
fn the_spec_lists_every_command_the_daemon_knows() {
    let families = tickler::config::Config::command_families().commands();
    for command in tickler_admin::protocol::COMMANDS.iter().chain(&families) {
        assert!(
            SPEC.contains(&format!("| `{command}` |")),
            "{command} is not in the spec's table"
        );
    }
}

const SCHEMA_FILE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../proto/admin-protocol.schema.json"
);

/// The schema generated from the wire types of the daemon's commands, generic and families'.
fn generated_schema() -> Value {
    tickler_admin::schema::protocol_schema(&tickler::config::Config::command_families())
}

/// `proto/admin-protocol.schema.json` is what the wire types generate: a change to a request's
/// shape shows in the contract's diff. `TICKLER_WRITE_SCHEMA=1 cargo test -p tickler --test
/// protocol_spec` rewrites it.
#[test]
fn the_schema_file_is_the_one_the_wire_types_generate() {
    let generated = serde_json::to_string_pretty(&generated_schema()).unwrap() + "\n";
    if std::env::var_os("TICKLER_WRITE_SCHEMA").is_some() {
        std::fs::write(SCHEMA_FILE, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(SCHEMA_FILE).unwrap_or_default();
    assert!(
        committed == generated,
        "proto/admin-protocol.schema.json is not what the wire types generate: rerun with \
         TICKLER_WRITE_SCHEMA=1 and review the change"
    );
}

/// A validator for one of the schema's lines (`request` or `reply`).
fn validator(line: &str) -> jsonschema::Validator {
    let mut schema = generated_schema();
    schema["oneOf"] = serde_json::json!([{ "$ref": format!("#/$defs/{line}") }]);
    jsonschema::validator_for(&schema).unwrap()
}

/// Every request of the spec's examples that the daemon runs is valid under the schema; every
/// one it refuses as malformed, unknown or of another version is not; every reply is a reply.
#[test]
fn every_example_of_the_spec_validates_against_the_schema() {
    let requests = validator("request");
    let replies = validator("reply");
    let refused_before_parsing = [
        "malformed_request",
        "unknown_command",
        "unsupported_version",
    ];
    let (mut valid, mut invalid) = (0, 0);
    for (request, reply) in examples() {
        assert!(replies.is_valid(&reply), "{reply}");
        let Ok(request_value) = serde_json::from_str::<Value>(&request) else {
            continue;
        };
        let code = reply["error"]["code"].as_str().unwrap_or_default();
        if reply["ok"] == true {
            let errors: Vec<String> = requests
                .iter_errors(&request_value)
                .map(|err| format!("{err} at {}", err.instance_path()))
                .collect();
            assert!(errors.is_empty(), "{request}: {errors:#?}");
            valid += 1;
        } else if refused_before_parsing.contains(&code) && request_value.is_object() {
            assert!(
                !requests.is_valid(&request_value),
                "{request} passes the schema"
            );
            invalid += 1;
        }
    }
    assert!(
        valid >= 25 && invalid >= 2,
        "{valid} valid, {invalid} refused examples"
    );
}

/// The schema refuses what the daemon refuses for its shape, for generic and family commands.
#[test]
fn the_schema_refuses_requests_of_the_wrong_shape() {
    let requests = validator("request");
    for (line, valid) in [
        (r#"{"v":1,"cmd":"show","args":{"entity":"due/x"}}"#, true),
        (r#"{"v":1,"cmd":"list"}"#, true),
        (r#"{"v":1,"cmd":"show"}"#, false),
        (
            r#"{"v":1,"cmd":"show","args":{"entity":"due/x","colour":1}}"#,
            false,
        ),
        (
            r#"{"v":1,"cmd":"toggle","args":{"entity":"due/x","occurrence":"a#0","enabled":"yes"}}"#,
            false,
        ),
        (
            r#"{"v":1,"cmd":"site.set","args":{"site":"demo","delivery_time":"09:00"}}"#,
            true,
        ),
        (
            r#"{"v":1,"cmd":"site.set","args":{"site":"demo","colour":"red"}}"#,
            false,
        ),
        (
            r#"{"v":1,"cmd":"eval.respond","args":{"entity":"eval/e","student":"s@x.org"}}"#,
            true,
        ),
        (
            r#"{"v":1,"cmd":"eval.respond","args":{"entity":"eval/e"}}"#,
            false,
        ),
    ] {
        let request: Value = serde_json::from_str(line).unwrap();
        assert_eq!(requests.is_valid(&request), valid, "{line}");
    }
}
