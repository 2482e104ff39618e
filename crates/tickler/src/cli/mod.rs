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
mod output;
mod replay;
mod serve;
mod simulate;
mod transfer;

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, bail};
use tickler::config::Config;
use tickler::{AttrValue, EntityId, Timestamp};
use tickler_admin::protocol::{
    Cancel, ChangeRecipient, ClockAdvance, ClockSet, Complete, Due, DueCreate, DueMove, EntityArg,
    EntityCreate, Explain, GroupArg, GroupJoin, GroupLeave, History, List, MoveAnchor, PauseArgs,
    Retry, SetAttribute, SnapshotArgs, Toggle,
};
use tickler_admin::{Call, Client, Request};
use tickler_learning::cli as learning;

use crate::{Cli, ClockCmd, Cmd, DueCmd, EntityCmd, GroupCmd};

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
        let mut command = <Cli as clap::CommandFactory>::command();
        clap_complete::generate(shell, &mut command, "tickler", &mut std::io::stdout());
        return Ok(());
    }
    let config = load_config(cli.config.as_deref())?;
    let socket = cli.socket.clone().unwrap_or_else(|| config.socket_path());
    let request: Call = match cli.command {
        Cmd::Serve { data_dir, clock } => {
            return serve::run(config, data_dir, cli.socket, clock).await;
        }
        Cmd::Replay {
            data_dir,
            entity,
            as_of,
            events,
        } => {
            let data_dir = data_dir.unwrap_or_else(|| config.data_dir.clone());
            return replay::run(
                &data_dir,
                &parse_entity(&entity, None)?,
                as_of,
                events,
                cli.json,
            );
        }
        Cmd::Audit { data_dir } => {
            let data_dir = data_dir.unwrap_or_else(|| config.data_dir.clone());
            return audit::run(&data_dir, cli.json);
        }
        Cmd::Compact { data_dir } => {
            let data_dir = data_dir.unwrap_or_else(|| config.data_dir.clone());
            return compact::run(&data_dir);
        }
        Cmd::Simulate {
            scenario,
            until,
            start,
            format,
            sample,
        } => {
            return simulate::run(&config, &scenario, until, start, format, sample).await;
        }
        Cmd::Import { file } => {
            let socket = cli.socket.unwrap_or_else(|| config.socket_path());
            return transfer::import(&socket, &file).await;
        }
        Cmd::Watch => {
            let socket = cli.socket.unwrap_or_else(|| config.socket_path());
            return transfer::watch(&socket, cli.json).await;
        }
        Cmd::Export { output } => {
            let socket = cli.socket.unwrap_or_else(|| config.socket_path());
            return transfer::export(&socket, output.as_deref()).await;
        }
        Cmd::Learner(learning::LearnerCmd::Import(args)) => {
            let socket = cli.socket.unwrap_or_else(|| config.socket_path());
            return learning::import(&socket, args).await;
        }
        Cmd::Site(site) => learning::site_request(site)?,
        Cmd::Course(course) => learning::course_request(course)?,
        Cmd::Learner(learner) => learning::learner_request(learner)?,
        Cmd::Eval(eval) => tickler_evaluation::cli::eval_request(eval)?,
        Cmd::Preview(args) => learning::preview_request(args),
        command => generic_request(command)?.into(),
    };
    call(&socket, request, cli.json).await
}

/// The request of a generic command.
fn generic_request(command: Cmd) -> anyhow::Result<Request> {
    Ok(match command {
        Cmd::Backfill { from, to, policy } => {
            Request::Backfill(tickler_admin::protocol::BackfillArgs {
                policy: Some(policy),
                from,
                to,
            })
        }
        Cmd::Status => Request::Status,
        Cmd::DueDate(due) => due_request(due)?,
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
        Cmd::Due { from, to, limit } => Request::Due(Due {
            from,
            to,
            limit: Some(limit),
        }),
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
        Cmd::Entity(entity) => entity_request(entity)?,
        Cmd::Group(group) => group_request(group)?,
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
        } => Request::History(History {
            entity: parse_entity(&entity, None)?,
            outcome,
            since,
            until,
        }),
        Cmd::Clock(ClockCmd::Now) => Request::ClockNow,
        Cmd::Clock(ClockCmd::Advance { by }) => Request::ClockAdvance(ClockAdvance { by }),
        Cmd::Clock(ClockCmd::Set { to }) => Request::ClockSet(ClockSet { to }),
        Cmd::Shutdown => Request::Shutdown,
        Cmd::Serve { .. }
        | Cmd::Replay { .. }
        | Cmd::Audit { .. }
        | Cmd::Compact { .. }
        | Cmd::Simulate { .. }
        | Cmd::Import { .. }
        | Cmd::Watch
        | Cmd::Export { .. }
        | Cmd::Site(_)
        | Cmd::Course(_)
        | Cmd::Learner(_)
        | Cmd::Eval(_)
        | Cmd::Preview(_)
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

/// `--config` may name the file or the directory holding `tickler.toml`.
fn load_config(path: Option<&Path>) -> anyhow::Result<Config> {
    Ok(match path {
        Some(dir) if dir.is_dir() => Config::load(&dir.join("tickler.toml"))?,
        Some(path) => Config::load(path)?,
        None if Path::new(DEFAULT_CONFIG).exists() => Config::load(Path::new(DEFAULT_CONFIG))?,
        None => Config::defaults(),
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

fn due_request(due: DueCmd) -> anyhow::Result<Request> {
    Ok(match due {
        DueCmd::Create {
            entity,
            recipient,
            workflow,
            due,
            zone,
            title,
        } => Request::DueCreate(DueCreate {
            entity: parse_entity(&entity, Some("due"))?,
            workflow: Some(workflow),
            recipient,
            zone: zone.parse()?,
            due_at: due,
            title,
        }),
        DueCmd::Move { entity, to } => Request::DueMove(DueMove {
            entity: parse_entity(&entity, Some("due"))?,
            due_at: to,
        }),
        DueCmd::Complete { entity, reason } => Request::DueComplete(Complete {
            entity: parse_entity(&entity, Some("due"))?,
            reason,
        }),
    })
}

fn entity_request(command: EntityCmd) -> anyhow::Result<Request> {
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

fn group_request(command: GroupCmd) -> anyhow::Result<Request> {
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
            Request::GroupJoin(GroupJoin {
                group,
                contact,
                recipient,
                zone: zone.parse()?,
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
    let mut client = Client::connect(socket).await?;
    let reply = client.call(request.clone()).await?;
    if json {
        out!("{}", serde_json::to_string_pretty(&reply)?);
    } else if let Some(result) = &reply.result {
        output::print(&request, result);
    }
    match reply.error {
        None => Ok(()),
        Some(error) if json => bail!("{} [{}]", error.message, error.code),
        Some(error) => bail!("{} [{}]", error.message, error.code),
    }
}
