//! The invariants ARCHITECTURE.md states, checked on the source tree: the crates' dependency
//! direction, no seed vocabulary in the generic crates, only `tickler-store` names sled, only
//! the binary crate reads the environment and configuration files, and no function in the
//! generic crates over [`FN_LINES_MAX`] lines but those the allow-list names.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The generic crates: they know entities, policies, rules, anchors, attributes, audiences,
/// digests, groups and channels, and nothing of any one customer.
const GENERIC: &[&str] = &[
    "tickler-core",
    "tickler-wheel",
    "tickler-store",
    "tickler-cluster",
    "tickler-engine",
    "tickler-admin",
];

/// The workspace crates each crate may depend on (normal dependencies).
const ALLOWED_DEPENDENCIES: &[(&str, &[&str])] = &[
    ("tickler-wheel", &[]),
    ("tickler-core", &[]),
    ("tickler-store", &["tickler-core"]),
    ("tickler-cluster", &["tickler-core", "tickler-store"]),
    (
        "tickler-engine",
        &["tickler-core", "tickler-wheel", "tickler-store"],
    ),
    ("tickler-admin", &["tickler-core", "tickler-engine"]),
    (
        "tickler-learning",
        &["tickler-core", "tickler-engine", "tickler-admin"],
    ),
    (
        "tickler-evaluation",
        &["tickler-core", "tickler-engine", "tickler-admin"],
    ),
    (
        "tickler",
        &[
            "tickler-core",
            "tickler-store",
            "tickler-engine",
            "tickler-admin",
            "tickler-cluster",
            "tickler-learning",
            "tickler-evaluation",
        ],
    ),
];

/// Words of the seed systems that the generic crates must not use, even in a comment: a
/// policy family's vocabulary lives in its own crate.
const SEED_WORDS: &[&str] = &[
    "course",
    "learner",
    "evaluation",
    "student",
    "respondent",
    "enrol",
];

/// The longest function the generic crates may hold.
const FN_LINES_MAX: usize = 70;

/// Functions longer than [`FN_LINES_MAX`], each with the most lines it may grow to: the ones
/// still to split. A function that shrinks under the limit must leave the list (the test says
/// so), and none may grow.
const LONG_FUNCTIONS: &[(&str, &str, usize)] = &[
    ("crates/tickler-core/src/decide.rs", "decide_command", 79),
    ("crates/tickler-core/src/decide.rs", "decide_create", 106),
    (
        "crates/tickler-core/src/decide.rs",
        "check_attribute_value",
        88,
    ),
    ("crates/tickler-core/src/entity.rs", "evolve", 209),
    ("crates/tickler-core/src/fire.rs", "decide_wake", 177),
    (
        "crates/tickler-core/src/fire.rs",
        "decide_fan_out_result",
        81,
    ),
    ("crates/tickler-core/src/plan.rs", "window", 78),
    ("crates/tickler-core/src/reconcile.rs", "reconcile", 161),
    ("crates/tickler-store/src/commit.rs", "validate", 80),
    (
        "crates/tickler-store/src/conformance/log.rs",
        "invalid_batches_are_refused",
        83,
    ),
    (
        "crates/tickler-store/src/golden_tests.rs",
        "golden_keys_decode_to_their_fields_and_re_encode_byte_for_byte",
        80,
    ),
    ("crates/tickler-engine/src/audit.rs", "audit", 74),
    ("crates/tickler-engine/src/audit.rs", "audit_entity", 122),
    ("crates/tickler-engine/src/engine.rs", "open", 91),
    ("crates/tickler-engine/src/entity_actor.rs", "commit", 145),
    (
        "crates/tickler-engine/src/explain.rs",
        "planning_sentences",
        98,
    ),
    ("crates/tickler-admin/src/protocol.rs", "parse_request", 82),
];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

fn crate_src(name: &str) -> PathBuf {
    workspace().join("crates").join(name).join("src")
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut dirs = vec![dir.to_owned()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The file's text up to its unit tests (`#[cfg(test)]` at the start of a line), which may
/// read fixtures and need not be short.
fn non_test_source(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    match text.find("\n#[cfg(test)]") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

fn relative(path: &Path) -> String {
    path.strip_prefix(workspace())
        .unwrap()
        .display()
        .to_string()
}

#[test]
fn crates_depend_on_each_other_in_one_direction() {
    let output = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(workspace())
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let mut checked = BTreeSet::new();
    let mut wrong = Vec::new();
    for package in metadata["packages"].as_array().unwrap() {
        let name = package["name"].as_str().unwrap();
        let Some((_, allowed)) = ALLOWED_DEPENDENCIES.iter().find(|(n, _)| *n == name) else {
            continue;
        };
        checked.insert(name);
        for dependency in package["dependencies"].as_array().unwrap() {
            let dep = dependency["name"].as_str().unwrap();
            let normal = dependency["kind"].is_null();
            if normal && dep.starts_with("tickler") && !allowed.contains(&dep) {
                wrong.push(format!("{name} depends on {dep}"));
            }
            if normal && dep == "sled" && name != "tickler-store" {
                wrong.push(format!("{name} depends on sled: only tickler-store may"));
            }
        }
    }
    assert_eq!(checked.len(), ALLOWED_DEPENDENCIES.len(), "{checked:?}");
    assert!(wrong.is_empty(), "{wrong:#?}");
}

/// An embedder who sends through channels of its own builds the engine without the network
/// channels' features, and so without an HTTP client, an SMTP client or their TLS stack.
#[test]
fn the_engine_without_its_network_features_has_no_network_stack() {
    let output = Command::new(env!("CARGO"))
        .args([
            "tree",
            "--offline",
            "-e",
            "normal",
            "-p",
            "tickler-engine",
            "--no-default-features",
            "--prefix",
            "none",
        ])
        .current_dir(workspace())
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let tree = String::from_utf8(output.stdout).unwrap();
    assert!(tree.contains("tokio"), "{tree}");
    let network: Vec<&str> = tree
        .lines()
        .filter(|line| {
            ["reqwest ", "lettre ", "rustls ", "hyper "]
                .iter()
                .any(|c| line.starts_with(c))
        })
        .collect();
    assert!(network.is_empty(), "{network:?}");
}

#[test]
fn the_generic_crates_know_no_seed_vocabulary() {
    let mut found = Vec::new();
    for name in GENERIC {
        for file in rust_files(&crate_src(name)) {
            let text = std::fs::read_to_string(&file).unwrap();
            for (n, line) in text.lines().enumerate() {
                let lower = line.to_lowercase();
                if let Some(word) = SEED_WORDS.iter().find(|w| lower.contains(*w)) {
                    found.push(format!(
                        "{}:{}: {word}: {}",
                        relative(&file),
                        n + 1,
                        line.trim()
                    ));
                }
            }
        }
    }
    assert!(found.is_empty(), "{found:#?}");
}

#[test]
fn only_the_store_names_sled() {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(workspace().join("crates")).unwrap() {
        let dir = entry.unwrap().path();
        if dir.ends_with("tickler-store") {
            continue;
        }
        for file in rust_files(&dir.join("src")) {
            let text = std::fs::read_to_string(&file).unwrap();
            if text.contains("sled::") || text.contains("extern crate sled") {
                found.push(relative(&file));
            }
        }
    }
    assert!(found.is_empty(), "{found:#?}");
}

#[test]
fn only_the_binary_crate_reads_the_environment_and_configuration_files() {
    // The store reads its own data files, and a family's subcommands (`cli.rs`, built for the
    // binary) the files their command lines name; nothing else but `tickler` reads a file.
    let env_reads = ["env::var", "env::vars", "env::args"];
    let file_reads = ["read_to_string(", "read_dir(", "fs::read(", "File::open("];
    let mut found = Vec::new();
    for entry in std::fs::read_dir(workspace().join("crates")).unwrap() {
        let dir = entry.unwrap().path();
        if dir.ends_with("tickler") {
            continue;
        }
        let is_store = dir.ends_with("tickler-store");
        for file in rust_files(&dir.join("src")) {
            let text = non_test_source(&file);
            let may_read = is_store || file.ends_with("cli.rs");
            for (n, line) in text.lines().enumerate() {
                let reads_file = !may_read && file_reads.iter().any(|r| line.contains(r));
                if reads_file || env_reads.iter().any(|r| line.contains(r)) {
                    found.push(format!("{}:{}: {}", relative(&file), n + 1, line.trim()));
                }
            }
        }
    }
    assert!(found.is_empty(), "{found:#?}");
}

#[test]
fn functions_in_the_generic_crates_fit_on_a_screen() {
    let mut over = Vec::new();
    let mut seen = BTreeSet::new();
    for name in GENERIC {
        for file in rust_files(&crate_src(name)) {
            let path = relative(&file);
            for (function, lines) in function_lengths(&non_test_source(&file)) {
                let allowed = LONG_FUNCTIONS
                    .iter()
                    .find(|(p, f, _)| *p == path && *f == function);
                if let Some((_, _, most)) = allowed {
                    seen.insert((path.clone(), function.clone()));
                    if lines > *most {
                        over.push(format!(
                            "{path}: {function} grew to {lines} lines (at most {most})"
                        ));
                    } else if lines <= FN_LINES_MAX {
                        over.push(format!(
                            "{path}: {function} is {lines} lines: take it off LONG_FUNCTIONS"
                        ));
                    }
                } else if lines > FN_LINES_MAX {
                    over.push(format!(
                        "{path}: {function} is {lines} lines (at most {FN_LINES_MAX})"
                    ));
                }
            }
        }
    }
    for (path, function, _) in LONG_FUNCTIONS {
        if !seen.contains(&(path.to_string(), function.to_string())) {
            over.push(format!(
                "{path}: {function} is gone: take it off LONG_FUNCTIONS"
            ));
        }
    }
    assert!(over.is_empty(), "{over:#?}");
}

/// Every `fn` with a body in `source`, with its length in lines (signature to closing brace).
fn function_lengths(source: &str) -> Vec<(String, usize)> {
    let code = blank_strings_and_comments(source);
    let lines: Vec<&str> = code.lines().collect();
    let mut found = Vec::new();
    for (start, line) in lines.iter().enumerate() {
        let Some(name) = fn_name(line) else { continue };
        // The body opens at the first `{` (or the signature ends at `;`: no body).
        let mut depth = 0i64;
        let mut opened = false;
        'scan: for (end, body_line) in lines.iter().enumerate().skip(start) {
            for c in body_line.chars() {
                match c {
                    ';' if !opened => break 'scan,
                    '{' => {
                        depth += 1;
                        opened = true;
                    }
                    '}' => {
                        depth -= 1;
                        if opened && depth == 0 {
                            found.push((name.clone(), end - start + 1));
                            break 'scan;
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    found
}

/// The name of the function a line declares, if it does.
fn fn_name(line: &str) -> Option<String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = words.iter().position(|w| *w == "fn")?;
    let before_ok = words[..at].iter().all(|w| {
        ["pub", "async", "const", "unsafe", "extern"].contains(w) || w.starts_with("pub(")
    });
    let name: String = words
        .get(at + 1)?
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    (before_ok && !name.is_empty()).then_some(name)
}

/// `source` with the insides of string and character literals and comments replaced by spaces,
/// so that braces in them are not counted. Lines are kept.
fn blank_strings_and_comments(source: &str) -> String {
    let chars: Vec<char> = source.chars().collect();
    let mut out = String::with_capacity(source.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                out.push(if chars[i] == '\n' { '\n' } else { ' ' });
                i += 1;
            }
            i += 2;
        } else if c == 'r' && (next == Some('#') || next == Some('"')) && is_raw_start(&chars, i) {
            let hashes = chars[i + 1..].iter().take_while(|c| **c == '#').count();
            i += 2 + hashes;
            let closing: String = std::iter::once('"')
                .chain(std::iter::repeat_n('#', hashes))
                .collect();
            while i < chars.len() && !chars[i..].iter().collect::<String>().starts_with(&closing) {
                out.push(if chars[i] == '\n' { '\n' } else { ' ' });
                i += 1;
            }
            i += closing.len();
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    i += 1;
                }
                out.push(if chars.get(i) == Some(&'\n') {
                    '\n'
                } else {
                    ' '
                });
                i += 1;
            }
            i += 1;
        } else if c == '\'' && is_char_literal(&chars, i) {
            i += 1;
            while i < chars.len() && chars[i] != '\'' {
                if chars[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// `r"` or `r#"` starting a raw string, not the end of an identifier such as `for`.
fn is_raw_start(chars: &[char], i: usize) -> bool {
    let prev_ident = i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_');
    let hashes = chars[i + 1..].iter().take_while(|c| **c == '#').count();
    !prev_ident && chars.get(i + 1 + hashes) == Some(&'"')
}

/// A `'` opening a character literal (`'{'`, `'\n'`), not a lifetime (`'a`).
fn is_char_literal(chars: &[char], i: usize) -> bool {
    matches!(
        (chars.get(i + 1), chars.get(i + 2)),
        (Some('\\'), _) | (Some(_), Some('\''))
    )
}

#[test]
fn the_function_scanner_measures_what_it_should() {
    let source = "fn short() {\n    let s = \"}\";\n    let c = '{';\n}\n\npub async fn long<'a>(x: &'a str) -> u8 {\n    // }\n    if true {\n        1\n    } else {\n        2\n    }\n}\n\nfn declared();\n";
    assert_eq!(
        function_lengths(source),
        [("short".to_owned(), 4), ("long".to_owned(), 8)]
    );
}
