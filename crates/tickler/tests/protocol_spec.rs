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
    for command in tickler_admin::protocol::COMMANDS {
        assert!(
            SPEC.contains(&format!("| `{command}` |")),
            "{command} is not in the spec's table"
        );
    }
}
