//! Issue 22: the shipped `config/tickler.toml` is the configuration's reference: it lists every
//! key the configuration types accept (commented where it shows a default or an example), each
//! with what it means. The keys are asked of the types themselves: a config naming an unknown
//! key is refused with the list of the keys its table takes.

use std::path::Path;

/// The keys a table takes, from the error an unknown key gets (`expected one of `a`, `b``).
fn keys_of(table_header: &str, required: &str) -> Vec<String> {
    let text = format!("{table_header}\n{required}\nthis_key_is_not_one = 1\n");
    let work = tempfile::tempdir().unwrap();
    let path = work.path().join("tickler.toml");
    std::fs::write(&path, text).unwrap();
    let err = tickler::config::Config::load(&path)
        .unwrap_err()
        .to_string();
    let expected = err
        .split("expected")
        .nth(1)
        .unwrap_or_else(|| panic!("{table_header}: no list of keys in {err:?}"));
    expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_shipped_config_lists_every_key_the_configuration_takes() {
    let shipped = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/tickler.toml"),
    )
    .unwrap();
    // `key = …` (or commented, `# key = …`), or a table of that name, `[table.key]` or
    // `[key.name]`.
    let listed = |table: &str, key: &str| {
        let path = match table.trim_matches(['[', ']']) {
            "" => key.to_owned(),
            parent if parent.starts_with("channels.") => key.to_owned(),
            parent => format!("{parent}.{key}"),
        };
        shipped.lines().any(|line| {
            let line = line.trim_start_matches(['#', ' ']);
            line.starts_with(&format!("{key} ="))
                || line.starts_with(&format!("[{path}]"))
                || line.starts_with(&format!("[{path}."))
        })
    };
    let tables = [
        ("", ""),
        ("[log]", ""),
        ("[engine]", ""),
        ("[engine.delivery]", ""),
        ("[channels.x]", "kind = \"file\"\npath = \"x.jsonl\""),
        (
            "[channels.x]",
            "kind = \"webhook\"\nurl = \"https://x.example\"\nallow_hosts = []\nsecret_env = \"X\"",
        ),
        (
            "[channels.x]",
            "kind = \"smtp\"\nhost = \"x\"\nport = 25\ntls = \"none\"\nfrom = \"a@x.org\"",
        ),
        ("[channels.x]", "kind = \"digest\"\npolicy = \"p\""),
    ];
    let mut missing = Vec::new();
    for (table, required) in tables {
        let keys = keys_of(table, required);
        assert!(!keys.is_empty(), "{table}: no keys found");
        for key in keys {
            if !listed(table, &key) {
                missing.push(format!("{table} {key}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "keys config/tickler.toml does not list: {missing:#?}"
    );
}

/// The reference in `proto/` is the one the types generate, and says what every key means.
#[test]
fn the_configuration_reference_is_generated_from_the_types() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proto/configuration.md");
    let generated = tickler::config_reference::markdown();
    if std::env::var_os("TICKLER_WRITE_REFERENCE").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let shipped = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        shipped == generated,
        "proto/configuration.md differs from the types: TICKLER_WRITE_REFERENCE=1 cargo test -p tickler --test config_reference"
    );
    for row in generated.lines().filter(|line| line.starts_with("| `")) {
        let meaning = row.trim_end_matches(" |").rsplit(" | ").next().unwrap();
        // A channel's key starts with the kind it belongs to: the meaning is what follows.
        let meaning = match meaning.strip_prefix("(`kind = ") {
            Some(rest) => rest.split_once("`)").map_or("", |(_, after)| after),
            None => meaning,
        };
        assert!(!meaning.trim().is_empty(), "a key without a meaning: {row}");
    }
}
