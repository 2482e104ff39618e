//! `tickler.toml`: where the daemon (or an embedder) keeps its data, policies, templates and
//! channels. Relative paths: `data_dir` and `socket` are relative to the working directory (a
//! fresh checkout runs with `./data`); `policies` and `templates` are relative to the config
//! file, so a config directory can be moved as a whole.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use tickler_core::Timestamp;
use tickler_engine::{
    Catalog, Channel, Clock, Engine, EngineOptions, Error, FileChannel, LogChannel,
};
use tickler_store::Store;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// Default: `<data_dir>/admin/tickler.sock`.
    #[serde(default)]
    pub socket: Option<PathBuf>,
    #[serde(default = "default_policies")]
    pub policies: PathBuf,
    #[serde(default = "default_templates")]
    pub templates: PathBuf,
    #[serde(default)]
    pub clock: ClockMode,
    /// Where a manual clock starts the first time (later starts resume where it stopped).
    #[serde(default)]
    pub manual_clock_start: Option<Timestamp>,
    #[serde(default)]
    pub log: LogConfig,
    #[serde(default)]
    pub engine: EngineOptions,
    #[serde(default = "default_channels")]
    pub channels: BTreeMap<String, ChannelConfig>,
    /// The directory the config file is in; relative policy and template paths start there.
    #[serde(skip)]
    pub base_dir: PathBuf,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum ClockMode {
    #[default]
    System,
    Manual,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    #[serde(default)]
    pub format: LogFormat,
    /// A `tracing` filter, e.g. `info` or `tickler=debug`; `RUST_LOG` overrides it.
    #[serde(default = "default_log_filter")]
    pub filter: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Human,
            filter: default_log_filter(),
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogFormat {
    #[default]
    Human,
    Json,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum ChannelConfig {
    /// A JSON-lines outbox; `path` is relative to the data directory.
    File { path: PathBuf },
    /// Deliveries written to the log (`tickler::outbox` target).
    Log,
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("data")
}
fn default_policies() -> PathBuf {
    PathBuf::from("policies")
}
fn default_templates() -> PathBuf {
    PathBuf::from("templates")
}
fn default_log_filter() -> String {
    "info".to_owned()
}
fn default_channels() -> BTreeMap<String, ChannelConfig> {
    BTreeMap::from([
        (
            "file".to_owned(),
            ChannelConfig::File {
                path: PathBuf::from("outbox.jsonl"),
            },
        ),
        ("log".to_owned(), ChannelConfig::Log),
    ])
}

impl Config {
    /// The built-in defaults, as if read from an empty file in the working directory.
    pub fn defaults() -> Config {
        toml::from_str("").expect("an empty config is valid")
    }

    /// Reads and checks a config file. Errors name the file and what is wrong.
    pub fn load(path: &Path) -> Result<Config, Error> {
        let text = std::fs::read_to_string(path).map_err(|err| Error::Config {
            what: format!("config file {}", path.display()),
            reason: err.to_string(),
        })?;
        let mut config: Config = toml::from_str(&text).map_err(|err| Error::Config {
            what: format!("config file {}", path.display()),
            reason: err.to_string(),
        })?;
        config.base_dir = path.parent().map(Path::to_owned).unwrap_or_default();
        Ok(config)
    }

    pub fn policies_dir(&self) -> PathBuf {
        self.base_dir.join(&self.policies)
    }

    pub fn templates_dir(&self) -> PathBuf {
        self.base_dir.join(&self.templates)
    }

    pub fn socket_path(&self) -> PathBuf {
        self.socket
            .clone()
            .unwrap_or_else(|| self.data_dir.join("admin").join("tickler.sock"))
    }

    pub fn catalog(&self) -> Result<Catalog, Error> {
        Catalog::load(&self.policies_dir(), &self.templates_dir())
    }

    /// Opens the configured channels (the file outbox is created under the data directory).
    pub fn channels(&self) -> Result<BTreeMap<String, Arc<dyn Channel>>, Error> {
        let mut channels: BTreeMap<String, Arc<dyn Channel>> = BTreeMap::new();
        for (name, config) in &self.channels {
            let channel: Arc<dyn Channel> = match config {
                ChannelConfig::File { path } => {
                    let path = self.data_dir.join(path);
                    Arc::new(FileChannel::open(&path).map_err(|err| Error::Config {
                        what: format!("channel {name}: outbox {}", path.display()),
                        reason: err.to_string(),
                    })?)
                }
                ChannelConfig::Log => Arc::new(LogChannel),
            };
            channels.insert(name.clone(), channel);
        }
        Ok(channels)
    }

    /// Builds and opens an engine on `store` and `clock` with this configuration.
    pub async fn open_engine(
        &self,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
    ) -> Result<Engine, Error> {
        let mut builder = Engine::builder()
            .options(self.engine.clone())
            .store(store)
            .clock(clock)
            .catalog(self.catalog()?);
        for (name, channel) in self.channels()? {
            builder = builder.channel(&name, channel);
        }
        builder.open().await
    }
}
