//! The `tickler` binary: the daemon (`serve`), the CLI that drives it over the admin socket,
//! and the offline tools (`replay`). Exit codes: 0 success, 1 error, 2 usage.

mod cli;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tickler::config::ClockMode;
use tickler::{EntityId, OccurrenceId, Span, Timestamp};
use tickler_admin::time_arg::TimeArg;

/// glibc's malloc spent about half of the engine's CPU time in its free-list upkeep
/// (`malloc_consolidate`, `unlink_chunk`, `_int_malloc`) under sled's many short-lived node
/// copies; with mimalloc the same load fires about 2.5 times as fast (BENCHMARKS.md). The
/// library leaves the choice of allocator to the program that embeds it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "tickler",
    version = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("TICKLER_COMMIT"), ")"),
    about = "A durable reminder engine: daemon, CLI and audit tools."
)]
pub struct Cli {
    /// The config file [default: config/tickler.toml when it exists, else built-in defaults].
    #[arg(long, global = true, env = "TICKLER_CONFIG")]
    pub config: Option<PathBuf>,
    /// The admin socket [default: <data dir>/admin/tickler.sock].
    #[arg(long, global = true, env = "TICKLER_SOCKET")]
    pub socket: Option<PathBuf>,
    /// The data directory: the daemon's store, and where clients find its socket
    /// [default: data_dir of the config, ./data].
    #[arg(long, global = true, env = "TICKLER_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Print the daemon's JSON reply instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Subcommand)]
pub enum Cmd {
    /// Run the daemon: the engine on its sled store, the admin socket and the channels.
    Serve {
        /// The clock: the system clock, or a manual one moved with `tickler clock`.
        #[arg(long, value_enum)]
        clock: Option<ClockMode>,
        /// Where a manual clock starts in a new store (a store that ran on a manual clock
        /// resumes where it stopped) [default: manual_clock_start of the config, else now].
        #[arg(long, value_name = "INSTANT")]
        start: Option<Timestamp>,
        /// Also seed the built-in demo site and courses (those the store lacks).
        #[arg(long)]
        demo: bool,
        /// Run as a node of a cluster: FILE names the node, its PostgreSQL shard log, the
        /// shard count and the lease TTL (see the README's cluster mode).
        #[arg(long, value_name = "FILE", conflicts_with_all = ["clock", "start", "demo"])]
        cluster: Option<PathBuf>,
    },
    /// The configuration in effect, and where each part of it comes from.
    #[command(subcommand)]
    Config(ConfigCmd),
    /// The web dashboard's login tokens (in the data directory; the daemon need not run).
    #[command(subcommand)]
    Dashboard(DashboardCmd),
    /// Version, uptime, clock, counts, next due timer, quarantined entities.
    Status,
    /// Due dates of tasks (the due-date chasing policy).
    #[command(subcommand, name = "due-date")]
    DueDate(DueCmd),
    /// Course evaluations: created, answered, re-dated, deleted (the evaluation policy).
    #[command(subcommand)]
    Eval(tickler_evaluation::cli::EvalCmd),
    /// Sites of learner schedules: schedule creation, hold-back, deadlines, kill switches.
    #[command(subcommand)]
    Site(tickler_learning::cli::SiteCmd),
    /// Courses of learner schedules: dates, pacing, verified track, highlights.
    #[command(subcommand)]
    Course(tickler_learning::cli::CourseCmd),
    /// Learners: enrolments (one, or a bulk import), track changes, opt-outs.
    #[command(subcommand)]
    Learner(tickler_learning::cli::LearnerCmd),
    /// Process occurrences of a policy that fell due in [from, to) and are still waiting, even
    /// while its delivery is paused (Open edX's "send for date D"); nothing is sent twice.
    Backfill {
        /// The first instant (RFC 3339, 2030-01-01, 2030-01-01T10:00 in UTC, now-1d, today).
        #[arg(long)]
        from: TimeArg,
        /// The instant after the last (as --from).
        #[arg(long)]
        to: TimeArg,
        #[arg(long, default_value = "learner-schedule")]
        policy: String,
    },
    /// What a course would send between two instants (its schedules, and simulated learners),
    /// with counts per day and kind; nothing is sent.
    Preview(tickler_learning::cli::PreviewArgs),
    /// Any entity, under any policy.
    #[command(subcommand)]
    Entity(EntityCmd),
    /// Contact groups: joining starts the group's cadences, leaving cancels them.
    #[command(subcommand)]
    Group(GroupCmd),
    /// Switch a pending reminder off or back on.
    Toggle {
        entity: String,
        /// The occurrence, e.g. pre-due#0 (see `tickler show`).
        occurrence: OccurrenceId,
        #[arg(long, conflicts_with = "off", required_unless_present = "off")]
        on: bool,
        #[arg(long)]
        off: bool,
    },
    /// An entity with its active reminders.
    Show { entity: String },
    /// An entity's past events: what was sent, and what was not and why.
    History {
        entity: String,
        /// sent, unsent, or an unsent reason (missed, system-error, completed…).
        #[arg(long)]
        outcome: Option<String>,
        /// Only past events closed at or after this instant (RFC 3339, or 2030-01-01,
        /// 2030-01-01T10:00 in the entity's zone, now-7d, today).
        #[arg(long)]
        since: Option<TimeArg>,
        /// Only past events closed before this instant (as --since).
        #[arg(long)]
        until: Option<TimeArg>,
    },
    /// Entities, optionally filtered by kind, policy or recipient.
    List {
        #[arg(long)]
        kind: Option<String>,
        #[arg(long)]
        policy: Option<String>,
        #[arg(long)]
        recipient: Option<String>,
        /// Continue after this entity (the `next` of the previous page).
        #[arg(long)]
        after: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Occurrences that ended in a system error and wait for a `retry`: where each went, its
    /// last error, when, after how many attempts.
    Failures {
        /// Only those of this policy.
        #[arg(long)]
        policy: Option<String>,
        /// Only those of this channel.
        #[arg(long)]
        channel: Option<String>,
        /// Continue after this one (the `more: --after` of the previous page).
        #[arg(long)]
        after: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Dry run: what falls due between two instants (nothing is sent).
    Due {
        /// The first instant (RFC 3339, 2030-01-01, 2030-01-01T10:00 in UTC, now+1d, today)
        /// [default: now].
        #[arg(long)]
        from: Option<TimeArg>,
        /// The instant after the last (as --from).
        #[arg(long, required_unless_present = "within", conflicts_with = "within")]
        to: Option<TimeArg>,
        /// Instead of --to: this long after --from, e.g. 7d.
        #[arg(long)]
        within: Option<Span>,
        #[arg(long, default_value_t = 1000)]
        limit: usize,
    },
    /// Why each occurrence of an entity was sent, not sent, moved, or is still pending.
    Explain {
        entity: String,
        occurrence: Option<OccurrenceId>,
    },
    /// Cancel one pending occurrence (unsent: deactivated), or the whole entity.
    Cancel {
        entity: String,
        occurrence: Option<OccurrenceId>,
    },
    /// Retry occurrences that ended in a system error (of one entity, or --all), under their
    /// original idempotency keys.
    Retry {
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        entity: Option<String>,
        occurrence: Option<OccurrenceId>,
        #[arg(long)]
        all: bool,
        /// Why, recorded with the retry (shown by history and explain).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Pause delivery (all, or one channel or policy): due occurrences wait; nothing is dropped.
    Pause {
        #[arg(long, conflicts_with = "policy")]
        channel: Option<String>,
        #[arg(long)]
        policy: Option<String>,
    },
    /// Resume what `pause` paused; waiting occurrences are processed in due order.
    Resume {
        #[arg(long, conflicts_with = "policy")]
        channel: Option<String>,
        #[arg(long)]
        policy: Option<String>,
    },
    /// Send the requests of a JSON-lines file (one admin request per line) to the daemon.
    Import { file: PathBuf },
    /// Offline: write an export (`tickler export`) into a new, empty data directory: every
    /// entity's log as it was; what was pending is pending again, past events are history
    /// (never sent again). Pauses and a manual clock's time are not carried.
    Restore {
        /// The export file (JSON lines).
        file: PathBuf,
    },
    /// Write every entity's log as JSON lines (to stdout, or a file).
    Export {
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Write a snapshot of one entity, or of all.
    Snapshot { entity: Option<String> },
    /// Counters and gauges in the Prometheus text format.
    Metrics,
    /// Print past events as they are recorded, until interrupted.
    Watch,
    /// Offline: verify a whole data directory (checksums, sequences, replay, past events, timers).
    Audit,
    /// Offline: rewrite the store compactly (reclaims the space sled leaves behind).
    Compact,
    /// Offline: upgrade a store written by an earlier tickler (record format v1) to this
    /// release's format; the old store is kept as store.v1.
    Migrate,
    /// Run a scenario on a throwaway engine with a manual clock and print what would be sent.
    Simulate {
        /// JSON lines of admin requests, each optionally with "at": an instant to move to first.
        #[arg(long)]
        scenario: PathBuf,
        /// How long to run after the start.
        #[arg(long)]
        until: Span,
        /// Where the clock starts [default: the first "at" of the scenario, else now].
        #[arg(long)]
        start: Option<Timestamp>,
        /// How to print: a table, CSV or JSON (also --json).
        #[arg(long, value_enum, default_value = "table")]
        format: SimulateFormat,
        /// Print the full timeline of this many entities too.
        #[arg(long, default_value_t = 3)]
        sample: usize,
    },
    /// The daemon's clock; a manual clock can be moved.
    #[command(subcommand)]
    Clock(ClockCmd),
    /// Stop the daemon.
    Shutdown,
    /// Print the manual page (roff), e.g. `tickler man > /usr/local/share/man/man1/tickler.1`
    /// (no daemon, no config needed).
    Man,
    /// Print the shell completion script, e.g. `tickler completions bash >
    /// /etc/bash_completion.d/tickler` (no daemon, no config needed).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Offline: an entity's state and history as of an instant, from a data directory (no
    /// daemon may be running on it).
    Replay {
        entity: String,
        /// Fold the log up to this instant (RFC 3339) [default: all of it].
        #[arg(long)]
        as_of: Option<Timestamp>,
        /// Also list every event of the log that was folded.
        #[arg(long)]
        events: bool,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SimulateFormat {
    Table,
    Csv,
    Json,
}

#[derive(Subcommand)]
pub enum DueCmd {
    /// Create a due date for a task.
    Create {
        /// The task, e.g. review-42 (due/ is added when missing).
        entity: String,
        #[arg(long)]
        recipient: String,
        /// The workflow template giving the default length [default: the policy's
        /// default_workflow, reviewer-report].
        #[arg(long)]
        workflow: Option<String>,
        /// The due date, rounded up to the hour: RFC 3339, or 2030-01-01, 2030-01-01T10:00
        /// in --zone, now+14d [default: the workflow's length].
        #[arg(long)]
        due: Option<TimeArg>,
        /// The recipient's IANA time zone.
        #[arg(long, default_value = "UTC")]
        zone: String,
        /// What the task is called in messages.
        #[arg(long)]
        title: Option<String>,
    },
    /// Move the due date: pending reminders follow it.
    Move {
        entity: String,
        /// The new due date: RFC 3339, or 2030-01-01, 2030-01-01T10:00 in the task's zone,
        /// now+14d.
        #[arg(long)]
        to: TimeArg,
    },
    /// The task is done: pending reminders are cancelled.
    Complete {
        entity: String,
        /// review-submitted, invitation-rescinded, decision-made or cancelled.
        #[arg(long, default_value = "review-submitted")]
        reason: String,
    },
}

#[derive(Subcommand)]
pub enum EntityCmd {
    /// Create an entity under a policy.
    Create {
        entity: EntityId,
        #[arg(long)]
        policy: String,
        #[arg(long)]
        recipient: String,
        #[arg(long)]
        workflow: Option<String>,
        #[arg(long, default_value = "UTC")]
        zone: String,
        /// An anchor, NAME=INSTANT; repeat for more.
        #[arg(long = "anchor", value_name = "NAME=INSTANT")]
        anchors: Vec<String>,
        /// An attribute, NAME=JSON (true, 3, "text"); repeat for more.
        #[arg(long = "attribute", value_name = "NAME=JSON")]
        attributes: Vec<String>,
    },
    /// Give an anchor a new value.
    MoveAnchor {
        entity: EntityId,
        anchor: String,
        /// RFC 3339, or 2030-01-01, 2030-01-01T10:00 in the entity's zone, now+7d.
        to: TimeArg,
    },
    /// Set an attribute to a JSON value (true, 3, "text"), or clear it with `null`.
    SetAttribute {
        entity: EntityId,
        name: String,
        value: String,
    },
    /// Complete the entity: pending reminders are cancelled.
    Complete {
        entity: EntityId,
        #[arg(long)]
        reason: String,
    },
    /// Re-plan pending occurrences under the policy as it is now (after a policy edit).
    Replan { entity: EntityId },
    /// A new recipient address and/or time zone (pending occurrences are re-planned in it).
    ChangeRecipient {
        entity: EntityId,
        #[arg(long)]
        recipient: Option<String>,
        #[arg(long)]
        zone: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum GroupCmd {
    /// A contact joins a group: its cadence starts (at its registration date, or now).
    Join {
        group: String,
        /// The contact's id on the messaging platform.
        contact: String,
        #[arg(long)]
        recipient: String,
        #[arg(long, default_value = "UTC")]
        zone: String,
        /// Day 0 of the cadence [default: now].
        #[arg(long)]
        registered_at: Option<TimeArg>,
        /// An attribute, NAME=JSON (e.g. preferred_time='"18:30"'); repeat for more.
        #[arg(long = "attribute", value_name = "NAME=JSON")]
        attributes: Vec<String>,
    },
    /// A contact leaves a group: what is pending is cancelled.
    Leave { group: String, contact: String },
    /// Re-plan every member's pending occurrences under the group's policies as they are now.
    Replan { group: String },
}

#[derive(Subcommand)]
pub enum DashboardCmd {
    /// Print the read-only token (or the operator's), creating the tokens if they are missing.
    Token {
        /// The operator's token: retry, cancel and pause from the dashboard.
        #[arg(long)]
        operator: bool,
    },
    /// Replace the read-only token (or the operator's) with a new one and print it: the
    /// dashboard sessions opened with the old one end at their next request.
    RotateToken {
        /// Rotate the operator's token instead of the read-only one.
        #[arg(long)]
        operator: bool,
    },
}

#[derive(Subcommand)]
pub enum ConfigCmd {
    /// Print the effective configuration: the file (or the built-in one), data directory,
    /// socket, clock, policies, templates, seeds and channels, each with its source.
    Show,
    /// Print the configuration reference: every key of tickler.toml with its type, default
    /// and meaning (Markdown, generated from the configuration types).
    Reference,
}

#[derive(Subcommand)]
pub enum ClockCmd {
    /// The daemon's current time.
    Now,
    /// Manual clock: move forward, processing every due occurrence at its own instant.
    Advance { by: Span },
    /// Manual clock: jump to an instant (as after downtime: overdue work runs at that instant).
    Set {
        /// RFC 3339, or 2030-01-01, 2030-01-01T10:00 in UTC, now+1d, today.
        to: TimeArg,
    },
}

fn main() -> ExitCode {
    // Before anything can create a file: the daemon's store and outboxes, the files sled writes
    // when an offline tool (`audit`, `replay`) opens a store, an export or an import report all
    // hold recipients' addresses.
    cli::create_files_privately();
    let json = std::env::args().any(|arg| arg == "--json");
    let parsed = cli::help::command()
        .try_get_matches()
        .and_then(|matches| <Cli as clap::FromArgMatches>::from_arg_matches(&matches));
    let cli = match parsed {
        Ok(cli) => cli,
        Err(err) if json && err.use_stderr() => {
            let failed = cli::Failed {
                code: "usage".into(),
                message: err
                    .to_string()
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .trim_start_matches("error: ")
                    .to_owned(),
                printed: false,
            };
            println!("{}", failed.to_json());
            err.exit()
        }
        Err(err) => err.exit(),
    };
    // `COLUMNS` when set (shells export it; tests pin it), else the terminal's width.
    let columns = std::env::var("COLUMNS")
        .ok()
        .and_then(|columns| columns.trim().parse::<u16>().ok());
    tickler_admin::terminal::set_output_width(
        columns.or_else(tickler_admin::terminal::terminal_width),
    );
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(cli::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            report(&err, json);
            ExitCode::from(1)
        }
    }
}

/// An error on stderr; with `--json` also as JSON on stdout (unless the daemon's reply, which
/// holds it, was printed already), in the shape of the daemon's error replies.
fn report(err: &anyhow::Error, json: bool) {
    match err.downcast_ref::<cli::Failed>() {
        Some(failed) => {
            if json && !failed.printed {
                println!("{}", failed.to_json());
            }
            match failed.code.as_str() {
                "failed" | "cannot_connect" => eprintln!("error: {}", failed.message),
                code => eprintln!("error: {} [{code}]", failed.message),
            }
        }
        None => {
            if json {
                let failed = cli::Failed {
                    code: "failed".into(),
                    message: format!("{err:#}"),
                    printed: false,
                };
                println!("{}", failed.to_json());
            }
            eprintln!("error: {err:#}");
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::Cli;

    /// The command an error message suggests, between backquotes, with its placeholders (in
    /// capitals) filled in.
    fn hinted_command(message: &str) -> Vec<String> {
        let hint = message
            .split('`')
            .nth(1)
            .unwrap_or_else(|| panic!("no command in backquotes in {message:?}"));
        hint.split_whitespace()
            .map(|word| match word {
                "SITE" => "demo".to_owned(),
                "DATE" => "2026-09-01T00:00:00Z".to_owned(),
                other => other.to_owned(),
            })
            .collect()
    }

    /// Issue 21: an error's hint is a command the CLI accepts as written (the old one,
    /// `tickler site set --site X`, was itself a usage error).
    #[test]
    fn every_hint_an_error_gives_is_a_command_the_cli_accepts() {
        let connect = tickler_admin::Error::Connect {
            path: "/run/tickler.sock".into(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        };
        for message in [
            tickler::learner::unknown_site("demo").to_string(),
            tickler::learner::unknown_course("course-v1:Demo+X+1").to_string(),
            connect.to_string(),
        ] {
            let command = hinted_command(&message);
            if let Err(err) = Cli::try_parse_from(&command) {
                panic!("{message:?} suggests {command:?}, which the CLI refuses: {err}");
            }
        }
    }
}
