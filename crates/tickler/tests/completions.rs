//! `tickler completions SHELL` prints a completion script that knows the subcommands, the
//! families' included, without a daemon or a config.

use std::process::Command;

fn completions(shell: &str) -> String {
    let empty = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_tickler"))
        .args(["completions", shell])
        .current_dir(empty.path())
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn bash_completion_knows_the_subcommands_of_every_family() {
    let script = completions("bash");
    assert!(script.contains("_tickler()"), "{script}");
    for subcommand in [
        "due-date", "eval", "learner", "site", "course", "history", "retry",
    ] {
        assert!(script.contains(subcommand), "{subcommand} is not completed");
    }
    assert!(script.contains("--reason"), "options are completed too");
}

#[test]
fn zsh_and_fish_scripts_are_printed_too() {
    assert!(completions("zsh").starts_with("#compdef tickler"));
    assert!(completions("fish").contains("complete -c tickler"));
}

#[test]
fn an_unknown_shell_is_a_usage_error_listing_the_shells() {
    let output = Command::new(env!("CARGO_BIN_EXE_tickler"))
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("bash") && stderr.contains("zsh"),
        "{stderr}"
    );
}
