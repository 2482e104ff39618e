//! The `--help` the CLI shows beyond what the argument types say: the commands grouped by task,
//! an example for every command (each one a test parses), and a description for the arguments
//! whose meaning their name alone gives (an entity is `kind/key`).

use clap::{Command, CommandFactory};

use crate::Cli;

/// Every subcommand, by what it is for: the top level's `--help` lists these groups.
pub const GROUPS: &[(&str, &[&str])] = &[
    (
        "Run the daemon",
        &[
            "serve",
            "status",
            "config",
            "dashboard",
            "clock",
            "metrics",
            "watch",
            "shutdown",
        ],
    ),
    (
        "Reminders of one entity",
        &[
            "due-date", "entity", "group", "eval", "site", "course", "learner", "toggle", "cancel",
        ],
    ),
    (
        "Read what happened",
        &[
            "show", "history", "explain", "list", "failures", "due", "preview",
        ],
    ),
    (
        "Operate",
        &[
            "retry", "pause", "resume", "backfill", "snapshot", "import", "export",
        ],
    ),
    (
        "Offline, on a data directory",
        &[
            "replay", "audit", "compact", "migrate", "restore", "simulate",
        ],
    ),
    ("Shell", &["completions", "man"]),
];

/// An example for every command (a path of subcommand names, then the example's arguments).
pub const EXAMPLES: &[(&str, &str)] = &[
    (
        "serve",
        "tickler serve --clock manual --start 2026-03-01T09:30:00Z 2> tickler.log &",
    ),
    ("status", "tickler status"),
    ("dashboard token", "tickler dashboard token --operator"),
    (
        "dashboard rotate-token",
        "tickler dashboard rotate-token --operator",
    ),
    ("config show", "tickler config show --json"),
    ("config reference", "tickler config reference"),
    ("clock now", "tickler clock now"),
    ("clock advance", "tickler clock advance 9d"),
    ("clock set", "tickler clock set 2026-03-10"),
    ("metrics", "tickler metrics"),
    ("watch", "tickler watch --json"),
    ("shutdown", "tickler shutdown"),
    (
        "due-date create",
        "tickler due-date create review-42 --recipient reviewer@example.org --zone Europe/Paris",
    ),
    (
        "due-date move",
        "tickler due-date move review-42 --to now+14d",
    ),
    (
        "due-date complete",
        "tickler due-date complete review-42 --reason review-submitted",
    ),
    (
        "entity create",
        "tickler entity create due/r-7 --policy due-date --recipient r@example.org --anchor due_at=2030-01-01T10:00:00Z",
    ),
    (
        "entity move-anchor",
        "tickler entity move-anchor due/r-7 due_at 2030-01-08",
    ),
    (
        "entity set-attribute",
        "tickler entity set-attribute contact/karma/c-1 preferred_time '\"18:30\"'",
    ),
    (
        "entity complete",
        "tickler entity complete due/r-7 --reason cancelled",
    ),
    ("entity replan", "tickler entity replan due/r-7"),
    (
        "entity change-recipient",
        "tickler entity change-recipient due/r-7 --zone Asia/Tokyo",
    ),
    (
        "group join",
        "tickler group join karma c-1 --recipient tel:+254700000001 --zone Africa/Nairobi",
    ),
    ("group leave", "tickler group leave karma c-1"),
    ("group replan", "tickler group replan karma"),
    (
        "eval create",
        "tickler eval create course-101 --title 'Course 101' --owner owner@example.org --students a@example.org --start 2030-03-02T08:00:00Z --due 2030-03-09T17:00:00Z --view 2030-03-10T08:00:00Z",
    ),
    (
        "eval respond",
        "tickler eval respond course-101 a@example.org",
    ),
    (
        "eval move-dates",
        "tickler eval move-dates course-101 --due 2030-03-12T17:00:00Z",
    ),
    ("eval delete", "tickler eval delete course-101"),
    (
        "site set",
        "tickler site set demo --default-zone Europe/Paris",
    ),
    ("site show", "tickler site show demo"),
    (
        "course set",
        "tickler course set course-v1:DemoX+Py101+2026 --site demo --start 2026-01-05T00:00:00Z",
    ),
    (
        "course show",
        "tickler course show course-v1:DemoX+Py101+2026",
    ),
    (
        "learner enroll",
        "tickler learner enroll --learner ana --email ana@example.org --course course-v1:DemoX+Py101+2026",
    ),
    (
        "learner import",
        "tickler learner import --file examples/enrolments.csv",
    ),
    (
        "learner show",
        "tickler learner show --course course-v1:DemoX+Py101+2026 --learner ana",
    ),
    (
        "learner history",
        "tickler learner history --course course-v1:DemoX+Py101+2026 --learner ana",
    ),
    (
        "learner unenroll",
        "tickler learner unenroll --course course-v1:DemoX+Py101+2026 --learner ana",
    ),
    (
        "learner upgrade",
        "tickler learner upgrade --course course-v1:DemoX+Py101+2026 --learner ana",
    ),
    (
        "learner change-track",
        "tickler learner change-track --course course-v1:DemoX+Py101+2026 --learner ana --track verified",
    ),
    (
        "learner opt-out",
        "tickler learner opt-out --site demo --learner ana --email ana@example.org",
    ),
    ("toggle", "tickler toggle due/review-42 first-late#0 --off"),
    ("cancel", "tickler cancel due/review-42 first-late#0"),
    ("show", "tickler show due/review-42"),
    (
        "history",
        "tickler history due/review-42 --outcome unsent --since now-7d",
    ),
    ("explain", "tickler explain due/review-42 pre-due#0"),
    ("list", "tickler list --policy due-date --limit 20"),
    ("failures", "tickler failures --channel email"),
    ("due", "tickler due --within 7d"),
    (
        "preview",
        "tickler preview --course course-v1:DemoX+Stats+2026 --from 2026-12-01T00:00:00Z --to 2027-01-01T00:00:00Z --sample 100",
    ),
    ("retry", "tickler retry --all --reason 'relay fixed'"),
    ("pause", "tickler pause --channel email"),
    ("resume", "tickler resume --channel email"),
    (
        "backfill",
        "tickler backfill --from 2026-04-01 --to 2026-04-02",
    ),
    ("snapshot", "tickler snapshot"),
    ("import", "tickler import examples/requests.jsonl"),
    ("export", "tickler export --output log.jsonl"),
    (
        "replay",
        "tickler replay due/review-42 --as-of 2026-03-05T00:00:00Z",
    ),
    ("audit", "tickler audit --data-dir data"),
    ("compact", "tickler compact --data-dir data"),
    ("migrate", "tickler migrate --data-dir data"),
    ("restore", "tickler restore --data-dir restored log.jsonl"),
    (
        "simulate",
        "tickler simulate --config config --scenario examples/scenario.jsonl --until 60d",
    ),
    (
        "completions",
        "tickler completions bash > /etc/bash_completion.d/tickler",
    ),
    ("man", "tickler man > /usr/local/share/man/man1/tickler.1"),
];

/// What an argument of a common name means, for arguments without a description of their own.
const COMMON_ARGUMENTS: &[(&str, &str)] = &[
    (
        "entity",
        "The entity, as kind/key (e.g. due/review-42; see `tickler list`).",
    ),
    (
        "occurrence",
        "The occurrence, as rule#index (e.g. pre-due#0; see `tickler show`).",
    ),
    (
        "kind",
        "Only entities of this kind (e.g. due, contact, eval).",
    ),
    ("policy", "Only those of this policy (e.g. due-date)."),
    ("recipient", "The recipient's address."),
    ("channel", "Only those of this channel (e.g. email, file)."),
    ("limit", "At most this many."),
    (
        "after",
        "Continue after this one (the `more: --after` of the previous page).",
    ),
    ("group", "The group (a policy runs for it, e.g. karma)."),
    ("contact", "The contact's id on the messaging platform."),
    ("on", "Switch it on."),
    (
        "off",
        "Switch it off: it ends unsent (deactivated) when its time comes.",
    ),
    ("all", "Every one of them."),
    ("file", "The file to read."),
    ("shell", "The shell: bash, zsh, fish, elvish or powershell."),
    ("by", "How far to move, e.g. 9d, 1h30m."),
    (
        "workflow",
        "The workflow template giving defaults (e.g. reviewer-report).",
    ),
    ("zone", "An IANA time zone, e.g. Europe/Paris."),
    ("anchor", "The anchor's name (e.g. due_at)."),
    ("name", "The attribute's name."),
    (
        "value",
        "The value as JSON (true, 3, \"text\"), or null to clear it.",
    ),
    ("reason", "Why: recorded with the change."),
    ("output", "The file to write [default: stdout]."),
    ("site", "The site's key (e.g. demo)."),
    (
        "course",
        "The course's key (e.g. course-v1:DemoX+Py101+2026).",
    ),
    ("learner", "The learner's key on the platform."),
    ("email", "The learner's email address."),
];

/// The CLI's command with the groups, examples and common argument descriptions added.
pub fn command() -> Command {
    let mut overview = String::from("Commands by task:\n");
    for (group, names) in GROUPS {
        overview.push_str(&format!("  {group}: {}\n", names.join(", ")));
    }
    overview.push_str("\nEach command's --help has an example.");
    let command = Cli::command().after_help(overview);
    decorate(command, "")
}

fn decorate(mut command: Command, path: &str) -> Command {
    if !path.is_empty()
        && let Some((_, example)) = EXAMPLES.iter().find(|(name, _)| *name == path)
    {
        command = command.after_help(format!("Example:\n  {example}"));
    }
    command = command.mut_args(|arg| {
        if arg.get_help().is_some() {
            return arg;
        }
        let name = arg.get_id().as_str().to_owned();
        match COMMON_ARGUMENTS.iter().find(|(common, _)| *common == name) {
            Some((_, help)) => arg.help(*help),
            None => arg,
        }
    });
    let names: Vec<String> = command
        .get_subcommands()
        .map(|sub| sub.get_name().to_owned())
        .collect();
    for name in names {
        let sub_path = if path.is_empty() {
            name.clone()
        } else {
            format!("{path} {name}")
        };
        command = command.mut_subcommand(&name, |sub| decorate(sub, &sub_path));
    }
    command
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The leaf commands, as paths of names.
    fn leaves(command: &Command, path: &str, found: &mut Vec<(String, Command)>) {
        let subcommands: Vec<&Command> = command
            .get_subcommands()
            .filter(|sub| sub.get_name() != "help")
            .collect();
        if subcommands.is_empty() {
            found.push((path.to_owned(), command.clone()));
        }
        for sub in subcommands {
            let sub_path = format!("{path} {}", sub.get_name()).trim().to_owned();
            leaves(sub, &sub_path, found);
        }
    }

    #[test]
    fn every_command_has_an_example_the_cli_accepts() {
        let mut found = Vec::new();
        leaves(&command(), "", &mut found);
        for (path, _) in &found {
            let example = EXAMPLES
                .iter()
                .find(|(name, _)| name == path)
                .unwrap_or_else(|| panic!("`tickler {path}` has no example"))
                .1;
            // The shell's part (a redirection, a background `&`) is not the CLI's.
            let words: Vec<String> = shell_words(example)
                .into_iter()
                .take_while(|word| !word.starts_with(['>', '&']) && !word.starts_with("2>"))
                .collect();
            if let Err(err) = command().try_get_matches_from(&words) {
                panic!("the example {example:?} is refused: {err}");
            }
        }
    }

    #[test]
    fn every_argument_has_a_description() {
        let mut found = Vec::new();
        leaves(&command(), "", &mut found);
        let mut missing = Vec::new();
        for (path, leaf) in &found {
            for arg in leaf.get_arguments() {
                let id = arg.get_id().as_str();
                if id != "help" && id != "version" && arg.get_help().is_none() {
                    missing.push(format!("tickler {path}: {id}"));
                }
            }
        }
        assert!(
            missing.is_empty(),
            "arguments without a description: {missing:#?}"
        );
    }

    #[test]
    fn every_command_is_in_one_group() {
        for sub in command()
            .get_subcommands()
            .filter(|sub| sub.get_name() != "help")
        {
            let groups = GROUPS
                .iter()
                .filter(|(_, names)| names.contains(&sub.get_name()))
                .count();
            assert_eq!(groups, 1, "{} is in {groups} groups", sub.get_name());
        }
    }

    /// Words of a command line, with '…' and "…" quoting (enough for the examples).
    fn shell_words(line: &str) -> Vec<String> {
        let mut words = Vec::new();
        let mut word = String::new();
        let mut quote: Option<char> = None;
        let mut in_word = false;
        for c in line.chars() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), c) => word.push(c),
                (None, '\'' | '"') => {
                    quote = Some(c);
                    in_word = true;
                }
                (None, c) if c.is_whitespace() => {
                    if in_word {
                        words.push(std::mem::take(&mut word));
                        in_word = false;
                    }
                }
                (None, c) => {
                    word.push(c);
                    in_word = true;
                }
            }
        }
        if in_word {
            words.push(word);
        }
        words
    }
}
