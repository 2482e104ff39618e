//! The README's "Cluster mode" commands, run verbatim and in order in one shell, in a directory
//! holding the shipped `config/` and `examples/`: a throwaway PostgreSQL, three nodes, a due
//! date created through one node and read through another, a node killed, the due date read
//! again. What a reader does by hand is done by the harness, outside the README's text: the
//! `tickler` alias (the tour's), and waiting until the nodes serve every shard before the next
//! command (after the third node starts, and after the kill).
//!
//! The commands run PostgreSQL as its own user, so they need root (CI is) and Debian's
//! `postgresql`; otherwise skipped, unless `TICKLER_REQUIRE_PG` is set (CI), then failed.

mod support;

use std::path::Path;
use std::process::Command;

/// The commands of the section's `sh` blocks.
fn cluster_commands(readme: &str) -> Vec<String> {
    let start = readme
        .find("## Cluster mode")
        .expect("the README has Cluster mode");
    let end = start + readme[start..].find("\n## ").expect("a section follows");
    let mut commands = Vec::new();
    let mut in_block = false;
    for line in readme[start..end].lines() {
        if line.starts_with("```") {
            in_block = line == "```sh";
            continue;
        }
        if in_block && !line.trim().is_empty() {
            commands.push(line.to_owned());
        }
    }
    commands
}

/// Each command preceded by a marker; a wait until every shard is served after the third
/// `serve` and after the kill: until the status names a node 9 times (the node itself, and an
/// owner in each of the 8 routes; a route without one says `null`).
fn script(commands: &[String]) -> String {
    let mut script = format!(
        "set -e\nshopt -s expand_aliases\nalias tickler={bin}\n\
         trap '__rc=$?; set +e; kill -9 $(jobs -p) 2>/dev/null; runuser -u postgres -- $PG/pg_ctl -D pg/data stop -m immediate >/dev/null 2>&1; exit $__rc' EXIT\n\
         __names() {{ {bin} --data-dir $1 status --json 2>/dev/null | grep -c \"\\\"node\\\": \\\"$2\" || true; }}\n\
         __settled() {{ for _ in $(seq 300); do [ \"$(__names $1 node-)\" = 9 ] && [ -z \"$2\" -o \"$(__names $1 $2)\" = 0 ] && return; sleep 0.1; done; echo 'the shards did not settle'; exit 1; }}\n",
        bin = support::BIN
    );
    let mut serves = 0;
    for (index, command) in commands.iter().enumerate() {
        script.push_str(&format!("echo '### {index}'\n{command}\n"));
        if command.contains("tickler serve") {
            serves += 1;
            if serves == 3 {
                script.push_str("__settled node-a\n");
            }
        }
        if command.starts_with("kill -9") {
            script.push_str("__settled node-b node-a\n");
        }
    }
    script
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn the_readme_cluster_commands_run_as_written() {
    let pg_installed = std::fs::read_dir("/usr/lib/postgresql").is_ok();
    if !(pg_installed && is_root()) {
        assert!(
            std::env::var_os("TICKLER_REQUIRE_PG").is_none(),
            "TICKLER_REQUIRE_PG is set, but the README's cluster commands need root and \
             PostgreSQL (installed: {pg_installed}, root: {})",
            is_root()
        );
        eprintln!("skipped: the README's cluster commands need root and PostgreSQL");
        return;
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let readme = std::fs::read_to_string(repo.join("README.md")).unwrap();
    let commands = cluster_commands(&readme);
    assert!(commands.len() >= 14, "{commands:?}");
    let work = tempfile::tempdir().unwrap();
    // The postgres user must reach pg/ inside it.
    std::fs::set_permissions(
        work.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    support::copy_dir(&repo.join("config"), &work.path().join("config"));
    support::copy_dir(&repo.join("examples"), &work.path().join("examples"));
    let out_path = work.path().join("cluster.out");
    let status = Command::new("bash")
        .arg("-c")
        .arg(script(&commands))
        .current_dir(work.path())
        .env_remove("TICKLER_CONFIG")
        .env_remove("TICKLER_SOCKET")
        .env_remove("TICKLER_DATA_DIR")
        .env_remove("TICKLER_POSTGRES_URL")
        .env("COLUMNS", "100")
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(work.path().join("cluster.err")).unwrap())
        .status()
        .unwrap();
    let out = std::fs::read_to_string(&out_path).unwrap();
    let err = std::fs::read_to_string(work.path().join("cluster.err")).unwrap();
    let logs: String = ["node-a", "node-b", "node-c"]
        .iter()
        .map(|n| std::fs::read_to_string(work.path().join(format!("{n}.log"))).unwrap_or_default())
        .collect();
    let context = format!("{out}\n--- stderr:\n{err}\n--- node logs:\n{logs}");
    assert!(
        status.success(),
        "the commands failed ({status}):\n{context}"
    );
    let section = |index: usize| -> &str {
        let start = out.find(&format!("### {index}\n")).expect("marker");
        let rest = &out[start..];
        let end = rest[4..].find("### ").map_or(rest.len(), |e| e + 4);
        &rest[..end]
    };
    let index_of = |prefix: &str| {
        commands
            .iter()
            .position(|c| c.starts_with(prefix))
            .unwrap_or_else(|| panic!("no command {prefix:?}"))
    };
    let status_a = section(index_of("tickler --data-dir node-a status"));
    assert!(
        status_a.contains("node node-a of a cluster of 8 shards"),
        "{context}"
    );
    let shown = section(index_of("tickler --data-dir node-c show"));
    assert!(shown.contains("reviewer@example.org"), "{context}");
    let status_b = section(index_of("tickler --data-dir node-b status"));
    assert!(
        !status_b.contains("node-a "),
        "node-a serves nothing after its death:\n{context}"
    );
    let shown_again = section(index_of("tickler --data-dir node-b show"));
    assert!(shown_again.contains("reviewer@example.org"), "{context}");
}
