//! What each subcommand does. `serve` and `replay` open the data directory themselves; every
//! other command is a request over the admin socket.

/// `println!` that ends the program quietly when stdout is closed (`tickler history … | head`)
/// instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {
        tickler_admin::terminal::write_stdout(format_args!($($arg)*))
    };
}

mod audit;
mod compact;
mod config_show;
mod dashboard;
pub mod help;
mod migrate;
mod output;
mod replay;
mod restore;
mod serve;
mod serve_cluster;
mod simulate;
mod times;
mod transfer;

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, bail};
use tickler::config::Config;
use tickler::{AttrValue, EntityId, Timestamp};
use tickler_admin::protocol::{
    Cancel, ChangeRecipient, ClockAdvance, ClockSet, Complete, Due, DueCreate, DueMove, EntityArg,
    EntityCreate, Explain, FailuresArgs, GroupArg, GroupJoin, GroupLeave, History, List,
    MoveAnchor, PauseArgs, Retry, SetAttribute, SnapshotArgs, Toggle,
};
use tickler_admin::{Call, Request};
use tickler_learning::cli as learning;

use crate::{Cli, ClockCmd, Cmd, DueCmd, EntityCmd, GroupCmd};
use times::Times;

/// Locks the data directory for an offline tool and opens its store read-only, after finishing
/// or discarding an interrupted compaction (said on stderr). The lock is held while the
/// returned `DataDir` lives.
fn open_offline(
    data_dir: &Path,
) -> anyhow::Result<(tickler::data_dir::DataDir, tickler::SledStore)> {
    let dir = tickler::data_dir::DataDir::lock(data_dir)?;
    let (store_dir, recovered) = dir.existing_store()?;
    if let Some(recovered) = recovered {
        eprintln!("note: {recovered} ({})", data_dir.display());
    }
    let store = tickler::SledStore::open_read_only(&store_dir)
        .with_context(|| format!("cannot open the store in {}", data_dir.display()))?;
    Ok((dir, store))
}

/// Where the config is looked for when `--config` is not given.
const DEFAULT_CONFIG: &str = "config/tickler.toml";

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    if let Cmd::Completions { shell } = cli.command {
        let mut command = help::command();
        clap_complete::generate(shell, &mut command, "tickler", &mut std::io::stdout());
        return Ok(());
    }
    if let Cmd::Man = cli.command {
        clap_mangen::Man::new(help::command()).render(&mut std::io::stdout())?;
        return Ok(());
    }
    let (mut config, config_source) = load_config(cli.config.as_deref())?;
    if let Some(dir) = &cli.data_dir {
        config.data_dir = dir.clone();
    }
    let choice = SocketChoice::of(&cli, &config, &config_source);
    if let Cmd::Config(crate::ConfigCmd::Reference) = cli.command {
        out!("{}", tickler::config_reference::markdown().trim_end());
        return Ok(());
    }
    if let Cmd::Config(crate::ConfigCmd::Show) = cli.command {
        return config_show::run(&config, &config_source, &choice, cli.json);
    }
    command(cli, config, &choice.path)
        .await
        .map_err(|err| Failed::of(&err, &choice).into())
}

/// Runs one subcommand with its configuration and the socket it talks to.
async fn command(cli: Cli, config: Config, socket: &Path) -> anyhow::Result<()> {
    let socket = socket.to_owned();
    let request: Call = match cli.command {
        Cmd::Serve {
            cluster: Some(cluster),
            ..
        } => return serve_cluster::run(config, &cluster, cli.socket).await,
        Cmd::Serve {
            clock, start, demo, ..
        } => {
            let mut config = config;
            config.demo = demo;
            return serve::run(config, cli.socket, clock, start).await;
        }
        Cmd::Replay {
            entity,
            as_of,
            events,
        } => {
            return replay::run(
                &config.data_dir,
                &parse_entity(&entity, None)?,
                as_of,
                events,
                cli.json,
            );
        }
        Cmd::Dashboard(cmd) => return dashboard::run(&config.data_dir, cmd, cli.json),
        Cmd::Audit => return audit::run(&config.data_dir, cli.json),
        Cmd::Compact => return compact::run(&config.data_dir, cli.json),
        Cmd::Migrate => return migrate::run(&config.data_dir, cli.json),
        Cmd::Restore { file } => return restore::run(&config.data_dir, &file, cli.json),
        Cmd::Simulate {
            scenario,
            until,
            start,
            format,
            sample,
        } => {
            // `--json` is `--format json`, as every other command takes it.
            let format = if cli.json {
                crate::SimulateFormat::Json
            } else {
                format
            };
            return simulate::run(&config, &scenario, until, start, format, sample).await;
        }
        Cmd::Import { file } => return transfer::import(&socket, &file, cli.json).await,
        Cmd::Watch => return transfer::watch(&socket, cli.json).await,
        Cmd::Export { output } => return transfer::export(&socket, output.as_deref()).await,
        Cmd::Learner(learning::LearnerCmd::Import(args)) => {
            return learning::import(&socket, args, cli.json).await;
        }
        Cmd::Site(site) => learning::site_request(site)?,
        Cmd::Course(course) => learning::course_request(course)?,
        Cmd::Learner(learner) => learning::learner_request(learner)?,
        Cmd::Eval(eval) => tickler_evaluation::cli::eval_request(eval)?,
        Cmd::Preview(args) => learning::preview_request(args),
        Cmd::Shutdown => {
            call(&socket, Request::Shutdown.into(), cli.json).await?;
            return wait_until_stopped(&socket, &config.data_dir).await;
        }
        command => {
            let mut times = times::Times::new(&socket);
            generic_request(command, &mut times).await?.into()
        }
    };
    call(&socket, request, cli.json).await
}

/// The request of a generic command.
async fn generic_request(command: Cmd, times: &mut Times<'_>) -> anyhow::Result<Request> {
    Ok(match command {
        Cmd::Backfill { from, to, policy } => {
            Request::Backfill(tickler_admin::protocol::BackfillArgs {
                policy: Some(policy),
                from: times.at(from, None, None).await?,
                to: times.at(to, None, None).await?,
            })
        }
        Cmd::Status => Request::Status,
        Cmd::DueDate(due) => due_request(due, times).await?,
        Cmd::List {
            kind,
            policy,
            recipient,
            after,
            limit,
        } => Request::List(List {
            kind,
            policy,
            recipient,
            after,
            limit: Some(limit),
        }),
        Cmd::Failures {
            policy,
            channel,
            after,
            limit,
        } => Request::Failures(FailuresArgs {
            policy,
            channel,
            after,
            limit: Some(limit),
        }),
        Cmd::Due {
            from,
            to,
            within,
            limit,
        } => {
            let from = match from {
                Some(from) => times.at(from, None, None).await?,
                None => times.now().await?,
            };
            let to = match (to, within) {
                (Some(to), _) => times.at(to, None, None).await?,
                (None, Some(within)) => from.saturating_add(within),
                (None, None) => bail!("give --to or --within"),
            };
            Request::Due(Due {
                from,
                to,
                limit: Some(limit),
            })
        }
        Cmd::Explain { entity, occurrence } => Request::Explain(Explain {
            entity: parse_entity(&entity, None)?,
            occurrence,
        }),
        Cmd::Cancel { entity, occurrence } => Request::Cancel(Cancel {
            entity: parse_entity(&entity, None)?,
            occurrence,
        }),
        Cmd::Retry {
            entity,
            occurrence,
            all,
            reason,
        } => Request::Retry(Retry {
            entity: entity.map(|e| parse_entity(&e, None)).transpose()?,
            occurrence,
            all,
            reason,
        }),
        Cmd::Pause { channel, policy } => Request::Pause(PauseArgs { channel, policy }),
        Cmd::Resume { channel, policy } => Request::Resume(PauseArgs { channel, policy }),
        Cmd::Snapshot { entity } => Request::Snapshot(SnapshotArgs {
            entity: entity.map(|e| parse_entity(&e, None)).transpose()?,
        }),
        Cmd::Metrics => Request::Metrics,
        Cmd::Entity(entity) => entity_request(entity, times).await?,
        Cmd::Group(group) => group_request(group, times).await?,
        Cmd::Toggle {
            entity,
            occurrence,
            on,
            off,
        } => {
            debug_assert!(
                on != off,
                "clap makes --on and --off exclusive and one required"
            );
            Request::Toggle(Toggle {
                entity: parse_entity(&entity, None)?,
                occurrence,
                enabled: on,
            })
        }
        Cmd::Show { entity } => Request::Show(EntityArg {
            entity: parse_entity(&entity, None)?,
        }),
        Cmd::History {
            entity,
            outcome,
            since,
            until,
        } => {
            let entity = parse_entity(&entity, None)?;
            Request::History(History {
                since: times.maybe(since, None, Some(&entity)).await?,
                until: times.maybe(until, None, Some(&entity)).await?,
                entity,
                outcome,
            })
        }
        Cmd::Clock(ClockCmd::Now) => Request::ClockNow,
        Cmd::Clock(ClockCmd::Advance { by }) => Request::ClockAdvance(ClockAdvance { by }),
        Cmd::Clock(ClockCmd::Set { to }) => Request::ClockSet(ClockSet {
            to: times.at(to, None, None).await?,
        }),
        Cmd::Serve { .. }
        | Cmd::Replay { .. }
        | Cmd::Audit
        | Cmd::Dashboard(_)
        | Cmd::Compact
        | Cmd::Migrate
        | Cmd::Restore { .. }
        | Cmd::Simulate { .. }
        | Cmd::Import { .. }
        | Cmd::Watch
        | Cmd::Export { .. }
        | Cmd::Site(_)
        | Cmd::Course(_)
        | Cmd::Learner(_)
        | Cmd::Eval(_)
        | Cmd::Preview(_)
        | Cmd::Config(_)
        | Cmd::Shutdown
        | Cmd::Man
        | Cmd::Completions { .. } => unreachable!("run by `run` itself, not as a generic request"),
    })
}

/// Makes every file and directory this process creates from now on private to its user
/// (umask 077), whatever umask it was started with: the store, the outboxes, exports and import
/// reports hold recipients' addresses and messages, and sled writes files into a store even
/// when an offline tool only reads it. A `socket_group` widens the socket and its directory
/// explicitly.
pub fn create_files_privately() {
    // SAFETY: umask(2) only replaces the process's file-mode creation mask; it cannot fail and
    // reads or writes no memory of ours.
    unsafe {
        libc::umask(0o077);
    }
}

/// `--config` may name the file or the directory holding `tickler.toml`. Also says where the
/// configuration came from, for messages.
fn load_config(path: Option<&Path>) -> anyhow::Result<(Config, String)> {
    Ok(match path {
        Some(dir) if dir.is_dir() => {
            let file = dir.join("tickler.toml");
            (Config::load(&file)?, file.display().to_string())
        }
        Some(path) => (Config::load(path)?, path.display().to_string()),
        None if Path::new(DEFAULT_CONFIG).exists() => (
            Config::load(Path::new(DEFAULT_CONFIG))?,
            DEFAULT_CONFIG.to_owned(),
        ),
        None => (Config::defaults(), "the built-in defaults".to_owned()),
    })
}

/// `review-42` means `due/review-42` for due commands; a full `kind/key` id is taken as is.
fn parse_entity(text: &str, default_kind: Option<&str>) -> anyhow::Result<EntityId> {
    let full = match default_kind {
        Some(kind) if !text.contains('/') => format!("{kind}/{text}"),
        _ => text.to_owned(),
    };
    Ok(EntityId::parse(&full)?)
}

async fn due_request(due: DueCmd, times: &mut Times<'_>) -> anyhow::Result<Request> {
    Ok(match due {
        DueCmd::Create {
            entity,
            recipient,
            workflow,
            due,
            zone,
            title,
        } => {
            let zone = zone.parse()?;
            Request::DueCreate(DueCreate {
                entity: parse_entity(&entity, Some("due"))?,
                workflow,
                recipient,
                zone,
                due_at: times.maybe(due, Some(zone), None).await?,
                title,
            })
        }
        DueCmd::Move { entity, to } => {
            let entity = parse_entity(&entity, Some("due"))?;
            Request::DueMove(DueMove {
                due_at: times.at(to, None, Some(&entity)).await?,
                entity,
            })
        }
        DueCmd::Complete { entity, reason } => Request::DueComplete(Complete {
            entity: parse_entity(&entity, Some("due"))?,
            reason,
        }),
    })
}

async fn entity_request(command: EntityCmd, times: &mut Times<'_>) -> anyhow::Result<Request> {
    Ok(match command {
        EntityCmd::Create {
            entity,
            policy,
            recipient,
            workflow,
            zone,
            anchors,
            attributes,
        } => {
            let mut anchor_map = BTreeMap::new();
            for pair in anchors {
                let (name, at) = split_pair(&pair, "--anchor")?;
                anchor_map.insert(name.to_owned(), Timestamp::parse(at)?);
            }
            let mut attribute_map = BTreeMap::new();
            for pair in attributes {
                let (name, value) = split_pair(&pair, "--attribute")?;
                attribute_map.insert(name.to_owned(), parse_attribute(value)?);
            }
            Request::EntityCreate(EntityCreate {
                entity,
                policy,
                workflow,
                recipient,
                zone: zone.parse()?,
                anchors: anchor_map,
                attributes: attribute_map,
            })
        }
        EntityCmd::MoveAnchor { entity, anchor, to } => {
            let to = times.at(to, None, Some(&entity)).await?;
            Request::EntityMoveAnchor(MoveAnchor { entity, anchor, to })
        }
        EntityCmd::SetAttribute {
            entity,
            name,
            value,
        } => {
            let value = if value == "null" {
                None
            } else {
                Some(parse_attribute(&value)?)
            };
            Request::EntitySetAttribute(SetAttribute {
                entity,
                name,
                value,
            })
        }
        EntityCmd::Complete { entity, reason } => {
            Request::EntityComplete(Complete { entity, reason })
        }
        EntityCmd::Replan { entity } => Request::EntityReplan(EntityArg { entity }),
        EntityCmd::ChangeRecipient {
            entity,
            recipient,
            zone,
        } => Request::EntityChangeRecipient(ChangeRecipient {
            entity,
            recipient,
            zone: zone.map(|z| z.parse()).transpose()?,
        }),
    })
}

async fn group_request(command: GroupCmd, times: &mut Times<'_>) -> anyhow::Result<Request> {
    Ok(match command {
        GroupCmd::Join {
            group,
            contact,
            recipient,
            zone,
            registered_at,
            attributes,
        } => {
            let mut attribute_map = BTreeMap::new();
            for pair in attributes {
                let (name, value) = split_pair(&pair, "--attribute")?;
                attribute_map.insert(name.to_owned(), parse_attribute(value)?);
            }
            let zone = zone.parse()?;
            let registered_at = times.maybe(registered_at, Some(zone), None).await?;
            Request::GroupJoin(GroupJoin {
                group,
                contact,
                recipient,
                zone,
                anchors: registered_at
                    .map(|at| BTreeMap::from([("registered_at".to_owned(), at)]))
                    .unwrap_or_default(),
                attributes: attribute_map,
            })
        }
        GroupCmd::Leave { group, contact } => Request::GroupLeave(GroupLeave { group, contact }),
        GroupCmd::Replan { group } => Request::GroupReplan(GroupArg { group }),
    })
}

fn split_pair<'a>(pair: &'a str, flag: &str) -> anyhow::Result<(&'a str, &'a str)> {
    match pair.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name, value)),
        _ => bail!("invalid {flag} {pair:?}: expected NAME=VALUE"),
    }
}

fn parse_attribute(text: &str) -> anyhow::Result<AttrValue> {
    serde_json::from_str(text).with_context(|| {
        format!("invalid attribute value {text:?}: expected JSON such as true, 3 or \"text\"")
    })
}

async fn call(socket: &Path, request: Call, json: bool) -> anyhow::Result<()> {
    // In cluster mode the node asked may send the command on to the shard's owner.
    let reply = tickler_admin::client::call_routed(socket, request.clone()).await?;
    if json {
        out!("{}", serde_json::to_string_pretty(&reply)?);
    } else if let Some(result) = &reply.result {
        output::print(&request, result);
    }
    match reply.error {
        None => Ok(()),
        Some(error) => Err(Failed {
            code: error.code,
            message: error.message,
            printed: json,
        }
        .into()),
    }
}

/// After `shutdown` is acknowledged: returns once the daemon has let go of its socket and its
/// data directory, so that what comes next (an offline tool, a new daemon) finds them free.
async fn wait_until_stopped(socket: &Path, data_dir: &Path) -> anyhow::Result<()> {
    const STOP_WAIT_MAX: std::time::Duration = std::time::Duration::from_secs(60);
    let started = std::time::Instant::now();
    // Only a data directory a daemon locked can tell: with only a socket, its removal does.
    let has_lock = data_dir.join("tickler.lock").exists();
    while started.elapsed() < STOP_WAIT_MAX {
        let stopped =
            !socket.exists() && (!has_lock || tickler::data_dir::DataDir::lock(data_dir).is_ok());
        if stopped {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    bail!(
        "the daemon acknowledged the shutdown but still holds {} after {} s",
        data_dir.display(),
        STOP_WAIT_MAX.as_secs()
    )
}

/// Why a command failed, with the protocol's error code: the daemon's, or one of the CLI's
/// own (`cannot_connect`, `invalid_arguments`, `failed`). With `--json` it is printed as the
/// daemon prints an error reply, `{"ok": false, "error": {"code", "message"}}`.
#[derive(Debug, thiserror::Error)]
#[error("{message} [{code}]")]
pub struct Failed {
    pub code: String,
    pub message: String,
    /// Whether the daemon's reply, holding the error, was already printed (`--json`).
    pub printed: bool,
}

impl Failed {
    /// The failure an error of the CLI is: a daemon's error as it came, a connection error as
    /// `cannot_connect` (naming the socket and how it was chosen), anything else `failed`.
    pub fn of(error: &anyhow::Error, socket: &SocketChoice) -> Failed {
        if let Some(failed) = error.downcast_ref::<Failed>() {
            return Failed {
                code: failed.code.clone(),
                message: failed.message.clone(),
                printed: failed.printed,
            };
        }
        let connect = error.chain().find_map(|cause| match cause.downcast_ref() {
            Some(tickler_admin::Error::Connect { source, .. }) => Some(source.to_string()),
            _ => None,
        });
        match connect {
            Some(cause) => Failed {
                code: "cannot_connect".into(),
                message: format!(
                    "cannot connect to the daemon at {} ({}): {cause}; is `tickler serve` running \
                     with the same data directory?",
                    socket.path.display(),
                    socket.how
                ),
                printed: false,
            },
            None => Failed {
                code: "failed".into(),
                message: format!("{error:#}"),
                printed: false,
            },
        }
    }

    /// `{"ok": false, "error": {"code", "message"}}`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "ok": false,
            "error": { "code": self.code, "message": self.message },
        })
    }
}

/// The admin socket a client uses, made absolute, and how it was chosen (said when it
/// cannot be reached).
pub struct SocketChoice {
    pub path: std::path::PathBuf,
    pub how: String,
}

impl SocketChoice {
    pub fn of(cli: &Cli, config: &Config, config_source: &str) -> SocketChoice {
        let (path, how) = match (&cli.socket, &cli.data_dir, &config.socket) {
            (Some(socket), _, _) => (socket.clone(), "from --socket or TICKLER_SOCKET".to_owned()),
            (None, Some(_), _) => (
                config.socket_path(),
                "in the data directory of --data-dir or TICKLER_DATA_DIR".to_owned(),
            ),
            (None, None, Some(socket)) => (socket.clone(), format!("socket of {config_source}")),
            (None, None, None) => (
                config.socket_path(),
                format!("in data_dir of {config_source}"),
            ),
        };
        let path = std::path::absolute(&path).unwrap_or(path);
        SocketChoice { path, how }
    }
}
