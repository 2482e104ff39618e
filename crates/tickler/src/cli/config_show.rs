//! `tickler config show`: the configuration in effect, and where each part comes from.

use serde_json::{Value, json};
use tickler::config::{ChannelConfig, Config};

use super::SocketChoice;

pub fn run(
    config: &Config,
    config_source: &str,
    socket: &SocketChoice,
    json: bool,
) -> anyhow::Result<()> {
    let catalog = config.catalog()?;
    let mut policies: Vec<String> = catalog
        .policies()
        .map(|policy| format!("{} v{}", policy.name, policy.version))
        .collect();
    policies.sort();
    let seeds: Vec<String> = config
        .learning_seeds()?
        .into_iter()
        .map(|(source, _)| source)
        .collect();
    let shown = json!({
        "config": config_source,
        "data_dir": config.data_dir,
        "socket": { "path": socket.path, "chosen": socket.how },
        "clock": format!("{:?}", config.clock).to_lowercase(),
        "durability": config.durability.store().name(),
        "policies": {
            "from": source_of(config.policies_dir().as_deref(), "built-in policies"),
            "names": policies,
        },
        "templates": {
            "from": source_of(config.templates_dir().as_deref(), "built-in templates"),
            "count": catalog.templates().names().len(),
        },
        "seeds": seeds,
        "channels": config.channels.iter().map(|(name, channel)| {
            (name.clone(), Value::from(describe(channel)))
        }).collect::<serde_json::Map<_, _>>(),
    });
    if json {
        out!("{}", serde_json::to_string_pretty(&shown)?);
        return Ok(());
    }
    out!("configuration: {config_source}");
    out!("data directory: {}", config.data_dir.display());
    out!("socket: {} ({})", socket.path.display(), socket.how);
    out!(
        "clock: {}; durability: {}",
        shown["clock"].as_str().unwrap_or_default(),
        shown["durability"].as_str().unwrap_or_default()
    );
    out!(
        "policies ({}): {}",
        text(&shown["policies"]["from"]),
        shown["policies"]["names"]
            .as_array()
            .map(|n| n.iter().map(text).collect::<Vec<_>>().join(", "))
            .unwrap_or_default()
    );
    out!(
        "templates ({}): {} files",
        text(&shown["templates"]["from"]),
        catalog.templates().names().len()
    );
    if seeds.is_empty() {
        out!("seeds: none (serve --demo adds the built-in demo site and courses)");
    } else {
        out!("seeds: {}", seeds.join(", "));
    }
    out!("channels:");
    for (name, channel) in &config.channels {
        out!("  {name}: {}", describe(channel));
    }
    Ok(())
}

fn source_of(dir: Option<&std::path::Path>, built_in: &str) -> String {
    match dir {
        Some(dir) => dir.display().to_string(),
        None => built_in.to_owned(),
    }
}

fn text(value: &Value) -> String {
    tickler_admin::terminal::cell(value)
}

/// What a channel is, without its secrets (variables are named, never read).
fn describe(channel: &ChannelConfig) -> String {
    match channel {
        ChannelConfig::File { path } => {
            format!("file outbox {} (in the data directory)", path.display())
        }
        ChannelConfig::Log => "the log (tickler::outbox)".to_owned(),
        ChannelConfig::Webhook { url, .. } => format!("webhook to {}", origin(url)),
        ChannelConfig::Smtp {
            host, port, tls, ..
        } => format!("smtp via {host}:{port} ({tls:?})"),
        ChannelConfig::Digest { policy, .. } => format!("digest, sent by policy {policy}"),
    }
}

/// A URL's scheme and host only: a token in its path or query stays out of the output.
fn origin(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    format!("{scheme}://{host}")
}
