//! `tickler.toml`: where the daemon (or an embedder) keeps its data, policies, templates and
//! channels. Relative paths: `data_dir` and `socket` are relative to the working directory (a
//! fresh checkout runs with `./data`); `policies` and `templates` are relative to the config
//! file, so a config directory can be moved as a whole.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tickler_core::{Span, Timestamp, Zone};
use tickler_engine::{
    Catalog, Channel, Clock, DigestChannel, DigestKey, Engine, EngineBuilder, EngineOptions, Error,
    FileChannel, LogChannel, SmtpTls,
};
#[cfg(feature = "webhook")]
use tickler_engine::{Payload, WebhookChannel, WebhookConfig};
#[cfg(feature = "smtp")]
use tickler_engine::{SmtpChannel, SmtpConfig};
use tickler_learning::{CourseSettings, LearnerSchedules, SiteSettings};
use tickler_store::Store;

/// `tickler.toml` (its schema, from these types, is `proto/configuration.md`).
#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The data directory: the store, the outboxes, the admin socket's directory (relative to
    /// the working directory).
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// Default: `<data_dir>/admin/tickler.sock`.
    #[serde(default)]
    pub socket: Option<PathBuf>,
    /// Users who are operators on the admin socket (every command), besides the daemon's own
    /// user and root. `admin_uids` is the older name.
    #[serde(default, alias = "admin_uids")]
    pub operator_uids: Vec<u32>,
    /// Groups whose members (by primary or supplementary group) are operators.
    #[serde(default)]
    pub operator_groups: Vec<String>,
    /// Users who are apps on the admin socket: create, move, complete, answer, enrol, join and
    /// read, but not stop the daemon, move the clock, pause, cancel, retry or export.
    #[serde(default)]
    pub app_uids: Vec<u32>,
    /// Groups whose members are apps.
    #[serde(default)]
    pub app_groups: Vec<String>,
    /// The admin socket file's group: its members can open the socket (it becomes mode 0660).
    /// What they may do comes from the role lists above; a member in none is refused.
    #[serde(default)]
    pub socket_group: Option<String>,
    /// A second socket for applications, e.g. `/run/tickler/app/tickler.sock`: whoever can open
    /// it is an app (root included). Its directory must not be the admin socket's.
    #[serde(default)]
    pub app_socket: Option<PathBuf>,
    /// The application socket's group (the socket becomes 0660, its directory 0750).
    #[serde(default)]
    pub app_socket_group: Option<String>,
    /// Serve HTTP on this address, e.g. `127.0.0.1:9464`: `GET /metrics` (Prometheus text),
    /// `/healthz` (the process serves) and `/readyz` (the engine is open, its store reads and
    /// writes). A loopback address unless `http_allow_non_loopback`. Formerly `metrics_listen`,
    /// still accepted.
    #[serde(default, alias = "metrics_listen")]
    #[schemars(with = "Option<String>")]
    pub http_listen: Option<std::net::SocketAddr>,
    /// Let `http_listen` be an address other hosts can reach: whoever reaches it reads the
    /// metrics and probes (the endpoints are read-only; put TLS and access control in a proxy).
    #[serde(default)]
    pub http_allow_non_loopback: bool,
    /// Serve the web dashboard on this address, e.g. `127.0.0.1:8090`: pages for support staff
    /// and operators, behind a login with a token of the data directory (`dashboard.token` to
    /// read, `dashboard-operator.token` to also retry, cancel and pause; `tickler dashboard
    /// token` prints them). Off when unset. A loopback address unless
    /// `dashboard_allow_non_loopback`.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub dashboard_listen: Option<std::net::SocketAddr>,
    /// Let `dashboard_listen` be an address other hosts can reach. The dashboard speaks plain
    /// HTTP: put a proxy that terminates TLS in front of it, or its session cookie and the
    /// recipients' addresses cross the network in clear.
    #[serde(default)]
    pub dashboard_allow_non_loopback: bool,
    /// The policies' directory (relative to the config file), which must exist; none: the
    /// policies built into the binary (the shipped `config/policies`).
    #[serde(default)]
    pub policies: Option<PathBuf>,
    /// The templates' directory, as `policies`; none: the built-in templates.
    #[serde(default)]
    pub templates: Option<PathBuf>,
    /// Sites and courses of learner schedules (`*.toml`, see `LearningSeed`) that a store
    /// starts with: each one the store does not have yet is created when the engine opens;
    /// after that, they change over the socket (`tickler site set`, `tickler course set`).
    /// None: no seeds (`serve --demo` adds the built-in demo site and courses).
    #[serde(default)]
    pub learning: Option<PathBuf>,
    /// Seed the built-in demo site and courses too (`serve --demo`).
    #[serde(skip)]
    pub demo: bool,
    /// `system`, or `manual`: a clock that moves only with `tickler clock advance|set`.
    #[serde(default)]
    pub clock: ClockMode,
    /// What an acknowledged command survives: `process` (a crash of the daemon) or `device` (a
    /// power cut too: an fdatasync after each group commit's flush).
    #[serde(default)]
    pub durability: DurabilityConfig,
    /// Where a manual clock starts the first time (later starts resume where it stopped).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub manual_clock_start: Option<Timestamp>,
    /// The daemon's log.
    #[serde(default)]
    pub log: LogConfig,
    /// The engine's settings.
    #[serde(default)]
    pub engine: EngineOptions,
    /// The channels policies deliver through, by name: each a `kind` and its settings.
    #[serde(default = "default_channels")]
    pub channels: BTreeMap<String, ChannelConfig>,
    /// The directory the config file is in; relative policy and template paths start there.
    #[serde(skip)]
    pub base_dir: PathBuf,
}

/// One file of the learning directory: sites and courses to start with.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LearningSeed {
    #[serde(default)]
    pub sites: Vec<SiteSettings>,
    #[serde(default)]
    pub courses: Vec<CourseSettings>,
}

#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum DurabilityConfig {
    #[default]
    Process,
    Device,
}

impl DurabilityConfig {
    pub fn store(self) -> tickler_store::Durability {
        match self {
            DurabilityConfig::Process => tickler_store::Durability::Process,
            DurabilityConfig::Device => tickler_store::Durability::Device,
        }
    }
}

#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Deserialize,
    Serialize,
    schemars::JsonSchema,
    clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum ClockMode {
    #[default]
    System,
    Manual,
}

#[derive(Clone, Debug, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// `human`, or `json`: one JSON object per line.
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

#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum LogFormat {
    #[default]
    Human,
    Json,
}

#[derive(Clone, Debug, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum ChannelConfig {
    /// A JSON-lines outbox; `path` is relative to the data directory.
    File {
        /// The outbox file, relative to the data directory.
        path: PathBuf,
    },
    /// Deliveries written to the log (`tickler::outbox` target).
    Log,
    /// An HTTP POST per delivery, signed; see `WebhookChannel`.
    Webhook {
        /// Where each delivery is POSTed (https, or http to an allowed private host).
        url: String,
        /// Hosts the url may point at (`*.example.org` for subdomains).
        allow_hosts: Vec<String>,
        /// Allow loopback, private and link-local destinations.
        #[serde(default)]
        allow_private: bool,
        /// The environment variable holding the HMAC-SHA256 signing key.
        secret_env: String,
        /// The header carrying `sha256=<hex of the HMAC of the body>`.
        #[serde(default = "default_signature_header")]
        signature_header: String,
        /// `message`: the whole message as JSON; `body`: the rendered template is the body.
        #[serde(default)]
        payload: PayloadConfig,
        /// How long connecting may take.
        #[serde(default = "default_connect_timeout")]
        #[schemars(with = "String")]
        connect_timeout: Span,
        /// How long a request may take, answer included.
        #[serde(default = "default_timeout")]
        #[schemars(with = "String")]
        timeout: Span,
    },
    /// An email per delivery through an SMTP relay; see `SmtpChannel`.
    Smtp {
        /// The relay's host name.
        host: String,
        /// The relay's port (587 for STARTTLS, 465 for TLS).
        port: u16,
        /// `none` (loopback relays and tests only), `starttls` or `tls`.
        tls: SmtpTls,
        /// Environment variables holding the user name and password; both or neither.
        #[serde(default)]
        username_env: Option<String>,
        /// The environment variable holding the password (with `username_env`).
        #[serde(default)]
        password_env: Option<String>,
        /// The sender, e.g. `Course evaluations <evaluations@example.org>`.
        from: String,
        /// Where replies go, when not to the sender.
        #[serde(default)]
        reply_to: Option<String>,
        /// How long each SMTP command may take.
        #[serde(default = "default_timeout")]
        #[schemars(with = "String")]
        timeout: Span,
    },
    /// Collects messages into one digest per recipient, sent by `policy` (the rule of it that
    /// `collects` the list `list`); see `DigestChannel`.
    Digest {
        /// The policy whose rule sends the digests.
        policy: String,
        /// The list attribute of the digest entity that collects the items.
        #[serde(default = "default_digest_list")]
        list: String,
        /// The zone digests are sent in; default: the zone of the entity the first item came from.
        #[serde(default)]
        #[schemars(with = "Option<String>")]
        zone: Option<Zone>,
        /// `entity` (default: a source's later notice replaces its earlier one) or
        /// `occurrence` (every message is listed).
        #[serde(default)]
        key: DigestKey,
    },
}

#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum PayloadConfig {
    /// The whole message as JSON.
    #[default]
    Message,
    /// The rendered template, which must be JSON.
    Body,
}

fn default_digest_list() -> String {
    "items".to_owned()
}
fn default_signature_header() -> String {
    "x-tickler-signature".to_owned()
}
fn default_connect_timeout() -> Span {
    Span::seconds(5)
}
fn default_timeout() -> Span {
    Span::seconds(20)
}

/// The id of a group named in `/etc/group`; `what` is the setting that names it.
fn group_id(name: &str, what: &str) -> Result<u32, Error> {
    let groups = std::fs::read_to_string("/etc/group").map_err(|err| Error::Config {
        what: what.into(),
        reason: format!("cannot read /etc/group: {err}"),
    })?;
    groups
        .lines()
        .filter_map(|line| {
            let mut fields = line.split(':');
            let group = fields.next()?;
            let gid = fields.nth(1)?.parse::<u32>().ok()?;
            (group == name).then_some(gid)
        })
        .next()
        .ok_or_else(|| Error::Config {
            what: what.into(),
            reason: format!("no group named {name:?} in /etc/group"),
        })
}

/// A configured channel this build left out (`--no-default-features`).
#[cfg(not(all(feature = "webhook", feature = "smtp")))]
fn not_built(name: &str, channel: &ChannelConfig) -> Error {
    let feature = match channel {
        ChannelConfig::Webhook { .. } => "webhook",
        ChannelConfig::Smtp { .. } => "smtp",
        _ => "its",
    };
    Error::Config {
        what: format!("channel {name}"),
        reason: format!(
            "this build of tickler has no {feature} channel: build it with the `{feature}` feature"
        ),
    }
}

#[cfg(any(feature = "webhook", feature = "smtp"))]
fn duration(span: Span) -> std::time::Duration {
    std::time::Duration::from_millis(span.as_millis().max(1) as u64)
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("data")
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
    /// The built-in configuration (the shipped `config/tickler.toml`, built into the binary)
    /// with the built-in policies and templates, and no seeds.
    pub fn defaults() -> Config {
        let mut config: Config =
            toml::from_str(crate::embedded::CONFIG_FILE).expect("the shipped config is valid");
        config.policies = None;
        config.templates = None;
        config.learning = None;
        config
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
        config.check_http_listen().map_err(|reason| Error::Config {
            what: format!("config file {}", path.display()),
            reason,
        })?;
        // Checked here too, so that the daemon refuses before it opens the data directory.
        config.engine.check().map_err(|err| match err {
            Error::Config { what, reason } => Error::Config {
                what: format!("config file {}: {what}", path.display()),
                reason,
            },
            other => other,
        })?;
        Ok(config)
    }

    /// A non-loopback `http_listen` needs `http_allow_non_loopback`, a non-loopback
    /// `dashboard_listen` `dashboard_allow_non_loopback`: the endpoint would serve whoever
    /// reaches it.
    fn check_http_listen(&self) -> Result<(), String> {
        match self.http_listen {
            Some(addr) if !addr.ip().is_loopback() && !self.http_allow_non_loopback => {
                Err(format!(
                    "http_listen = \"{addr}\" is not a loopback address, and anyone who can reach it \
                 would read the metrics: set http_allow_non_loopback = true to serve there"
                ))
            }
            _ => Ok(()),
        }?;
        match self.dashboard_listen {
            Some(addr) if !addr.ip().is_loopback() && !self.dashboard_allow_non_loopback => {
                Err(format!(
                    "dashboard_listen = \"{addr}\" is not a loopback address: set \
                     dashboard_allow_non_loopback = true to serve there, behind a proxy that \
                     terminates TLS"
                ))
            }
            _ => Ok(()),
        }
    }

    pub fn policies_dir(&self) -> Option<PathBuf> {
        self.policies.as_ref().map(|dir| self.base_dir.join(dir))
    }

    pub fn templates_dir(&self) -> Option<PathBuf> {
        self.templates.as_ref().map(|dir| self.base_dir.join(dir))
    }

    pub fn learning_dir(&self) -> Option<PathBuf> {
        self.learning.as_ref().map(|dir| self.base_dir.join(dir))
    }

    /// The seeds to apply, each named by where it came from: the learning directory's files
    /// in name order (none when it does not exist), then the built-in demo with `demo`.
    pub fn learning_seeds(&self) -> Result<Vec<(String, LearningSeed)>, Error> {
        let unreadable = |source: &str, reason: String| Error::Config {
            what: format!("learning seed {source}"),
            reason,
        };
        let mut sources: Vec<(String, String)> = Vec::new();
        if let Some(dir) = self.learning_dir() {
            for path in seed_files(&dir)? {
                let text = std::fs::read_to_string(&path)
                    .map_err(|err| unreadable(&path.display().to_string(), err.to_string()))?;
                sources.push((path.display().to_string(), text));
            }
        }
        if self.demo {
            for (name, text) in crate::embedded::DEMO_SEEDS {
                sources.push((format!("built-in {name}"), (*text).to_owned()));
            }
        }
        sources
            .into_iter()
            .map(|(source, text)| {
                let seed =
                    toml::from_str(&text).map_err(|err| unreadable(&source, err.to_string()))?;
                Ok((source, seed))
            })
            .collect()
    }

    /// Creates the seeded sites and courses the engine's store does not have yet; returns how
    /// many were created. Existing ones are left as they are (changed at run time, they stay so).
    pub async fn apply_learning_seeds(&self, engine: &Engine) -> Result<usize, Error> {
        let mut created = 0;
        for (source, seed) in self.learning_seeds()? {
            let failed = |err: Error| Error::Config {
                what: format!("learning seed {source}"),
                reason: err.to_string(),
            };
            for site in &seed.sites {
                let id = tickler_learning::site_id(&site.site).map_err(|e| failed(e.into()))?;
                if engine.directory_entity(&id).is_none() {
                    engine.set_site(site).await.map_err(failed)?;
                    created += 1;
                }
            }
            for course in &seed.courses {
                let id =
                    tickler_learning::course_id(&course.course).map_err(|e| failed(e.into()))?;
                if engine.directory_entity(&id).is_none() {
                    engine.set_course(course).await.map_err(failed)?;
                    created += 1;
                }
            }
        }
        Ok(created)
    }

    /// The command families the daemon serves beside the generic commands.
    pub fn command_families() -> tickler_admin::Families {
        tickler_admin::Families::default()
            .with(tickler_learning::commands())
            .with(tickler_evaluation::commands())
    }

    pub fn socket_path(&self) -> PathBuf {
        self.socket
            .clone()
            .unwrap_or_else(|| self.data_dir.join("admin").join("tickler.sock"))
    }

    /// The admin socket's access rules, resolving group names in `/etc/group`.
    pub fn socket_access(&self) -> Result<tickler_admin::Access, Error> {
        let gids = |names: &[String], what: &str| -> Result<Vec<u32>, Error> {
            names.iter().map(|name| group_id(name, what)).collect()
        };
        Ok(tickler_admin::Access {
            operator_uids: self.operator_uids.clone(),
            operator_gids: gids(&self.operator_groups, "operator_groups")?,
            app_uids: self.app_uids.clone(),
            app_gids: gids(&self.app_groups, "app_groups")?,
            group: self
                .socket_group
                .as_deref()
                .map(|name| group_id(name, "socket_group"))
                .transpose()?,
            apps_only: false,
            groups_of: Some(crate::peer_groups::supplementary_groups),
        })
    }

    /// The application socket's path and access, if one is configured. Refused in the admin
    /// socket's directory, which only the daemon's user (or `socket_group`) may enter.
    pub fn app_socket_access(&self) -> Result<Option<(PathBuf, tickler_admin::Access)>, Error> {
        let Some(path) = &self.app_socket else {
            return Ok(None);
        };
        let directory = |path: &Path| path.parent().and_then(|dir| std::path::absolute(dir).ok());
        if directory(path) == directory(&self.socket_path()) {
            return Err(Error::Config {
                what: "app_socket".into(),
                reason: format!(
                    "{} is in the admin socket's directory; give the application socket a \
                     directory of its own, e.g. {}",
                    path.display(),
                    self.data_dir.join("app").join("tickler.sock").display()
                ),
            });
        }
        let group = self
            .app_socket_group
            .as_deref()
            .map(|name| group_id(name, "app_socket_group"))
            .transpose()?;
        Ok(Some((
            path.clone(),
            tickler_admin::Access::apps_only(group),
        )))
    }

    /// The policies and templates: from the configured directories, or those built in.
    pub fn catalog(&self) -> Result<Catalog, Error> {
        let policies = match self.policies_dir() {
            Some(dir) => crate::catalog_files::load_policies(&dir)?,
            None => crate::embedded::policies()?,
        };
        let templates = match self.templates_dir() {
            Some(dir) => crate::catalog_files::load_templates(&dir)?,
            None => crate::embedded::templates()?,
        };
        Catalog::new(policies, templates)
    }

    /// Opens the configured channels that send (the file outbox is created under the data
    /// directory). Call inside a Tokio runtime: the SMTP channel's connection pool needs one.
    pub fn channels(&self) -> Result<BTreeMap<String, Arc<dyn Channel>>, Error> {
        let mut channels: BTreeMap<String, Arc<dyn Channel>> = BTreeMap::new();
        for (name, config) in &self.channels {
            let channel: Arc<dyn Channel> = match config {
                ChannelConfig::Digest { .. } => continue,
                #[cfg(feature = "smtp")]
                ChannelConfig::Smtp {
                    host,
                    port,
                    tls,
                    username_env,
                    password_env,
                    from,
                    reply_to,
                    timeout,
                } => {
                    let variable = |env: &str| {
                        std::env::var(env).map_err(|_| Error::Config {
                            what: format!("channel {name}"),
                            reason: format!("the smtp credential variable {env} is not set"),
                        })
                    };
                    let credentials = match (username_env, password_env) {
                        (None, None) => None,
                        (Some(user), Some(password)) => {
                            Some((variable(user)?, variable(password)?))
                        }
                        _ => {
                            return Err(Error::Config {
                                what: format!("channel {name}"),
                                reason: "username_env and password_env go together".into(),
                            });
                        }
                    };
                    Arc::new(SmtpChannel::new(SmtpConfig {
                        name: name.clone(),
                        host: host.clone(),
                        port: *port,
                        tls: *tls,
                        credentials,
                        from: from.clone(),
                        reply_to: reply_to.clone(),
                        timeout: duration(*timeout),
                    })?)
                }
                ChannelConfig::File { path } => {
                    let path = self.data_dir.join(path);
                    Arc::new(FileChannel::open(&path).map_err(|err| Error::Config {
                        what: format!("channel {name}: outbox {}", path.display()),
                        reason: err.to_string(),
                    })?)
                }
                ChannelConfig::Log => Arc::new(LogChannel),
                #[cfg(feature = "webhook")]
                ChannelConfig::Webhook {
                    url,
                    allow_hosts,
                    allow_private,
                    secret_env,
                    signature_header,
                    payload,
                    connect_timeout,
                    timeout,
                } => {
                    let secret = std::env::var(secret_env).map_err(|_| Error::Config {
                        what: format!("channel {name}"),
                        reason: format!("the signing secret variable {secret_env} is not set"),
                    })?;
                    Arc::new(WebhookChannel::new(WebhookConfig {
                        name: name.clone(),
                        url: url.clone(),
                        allow_hosts: allow_hosts.clone(),
                        allow_private: *allow_private,
                        secret: secret.into_bytes(),
                        signature_header: signature_header.clone(),
                        connect_timeout: duration(*connect_timeout),
                        timeout: duration(*timeout),
                        payload: match payload {
                            PayloadConfig::Message => Payload::Message,
                            PayloadConfig::Body => Payload::Body,
                        },
                    })?)
                }
                #[cfg(not(all(feature = "webhook", feature = "smtp")))]
                other => return Err(not_built(name, other)),
            };
            channels.insert(name.clone(), channel);
        }
        Ok(channels)
    }

    /// The configured digest channels.
    pub fn digest_channels(&self) -> BTreeMap<String, DigestChannel> {
        self.channels
            .iter()
            .filter_map(|(name, config)| match config {
                ChannelConfig::Digest {
                    policy,
                    list,
                    zone,
                    key,
                } => Some((
                    name.clone(),
                    DigestChannel {
                        policy: policy.clone(),
                        list: list.clone(),
                        zone: *zone,
                        key: *key,
                    },
                )),
                _ => None,
            })
            .collect()
    }

    /// Builds and opens an engine on `store` and `clock` with this configuration.
    pub async fn open_engine(
        &self,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
    ) -> Result<Engine, Error> {
        let engine = self.engine_builder(store, clock)?.open().await?;
        self.seed(&engine).await?;
        Ok(engine)
    }

    /// A builder with everything this configuration says (options, catalog, channels, the
    /// families' extensions), for a caller that adds or replaces a channel before opening it;
    /// then [`Config::seed`] the engine as `open_engine` does.
    pub fn engine_builder(
        &self,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
    ) -> Result<EngineBuilder, Error> {
        let builder = Engine::builder()
            .options(self.engine.clone())
            .store(store)
            .clock(clock)
            .catalog(self.catalog()?)
            .extension(tickler_learning::extension());
        self.add_channels(builder)
    }

    /// Applies the configured seeds (sites and courses) the engine's store lacks.
    pub async fn seed(&self, engine: &Engine) -> Result<(), Error> {
        let created = self.apply_learning_seeds(engine).await?;
        if created > 0 {
            tracing::info!(
                created,
                "learning seeds applied (sites and courses the store lacked)"
            );
        }
        Ok(())
    }

    /// Adds every configured channel, sending and digest, to an engine being built.
    pub fn add_channels(&self, mut builder: EngineBuilder) -> Result<EngineBuilder, Error> {
        for (name, channel) in self.channels()? {
            builder = builder.channel(&name, channel);
        }
        for (name, digest) in self.digest_channels() {
            builder = builder.digest_channel(&name, digest);
        }
        Ok(builder)
    }
}

/// The `*.toml` files of a seed directory, in name order (none when it does not exist).
fn seed_files(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => {
            return Err(Error::Config {
                what: format!("learning seeds {}", dir.display()),
                reason: err.to_string(),
            });
        }
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    paths.sort();
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Config {
        let mut config: Config = toml::from_str(text).unwrap();
        config.data_dir = tempfile::tempdir().unwrap().keep();
        config
    }

    #[test]
    fn a_webhook_without_its_signing_secret_is_refused_naming_the_variable() {
        let config = parse(
            r#"
            [channels.hook]
            kind = "webhook"
            url = "https://api.example.org/flows"
            allow_hosts = ["api.example.org"]
            secret_env = "TICKLER_TEST_SECRET_NEVER_SET"
            "#,
        );
        let err = config.channels().err().unwrap().to_string();
        assert!(
            err.contains("channel hook") && err.contains("TICKLER_TEST_SECRET_NEVER_SET"),
            "{err}"
        );
    }

    #[test]
    fn a_webhook_to_a_host_off_its_allow_list_is_refused_naming_the_host() {
        // PATH stands in for the secret: any variable that is set will do.
        let config = parse(
            r#"
            [channels.hook]
            kind = "webhook"
            url = "https://evil.example.net/flows"
            allow_hosts = ["api.example.org"]
            secret_env = "PATH"
            "#,
        );
        let err = config.channels().err().unwrap().to_string();
        assert!(
            err.contains("\"evil.example.net\" is not in allow_hosts"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn the_shipped_config_loads_with_every_channel_its_policies_name() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/tickler.toml");
        let mut config = Config::load(&path).unwrap();
        config.data_dir = tempfile::tempdir().unwrap().keep();
        let channels = config.channels().unwrap();
        let digests = config.digest_channels();
        for policy in config.catalog().unwrap().policies() {
            for rule in &policy.rules {
                let name = rule
                    .channel
                    .as_ref()
                    .unwrap_or(&config.engine.default_channel);
                let chosen = rule.channel_if.as_ref().map(|choice| &choice.channel);
                for name in std::iter::once(name).chain(chosen) {
                    assert!(
                        channels.contains_key(name) || digests.contains_key(name),
                        "{}: channel {name}",
                        policy.name
                    );
                }
            }
        }
    }

    #[tokio::test]
    async fn smtp_credentials_come_from_the_environment_and_a_missing_one_is_named() {
        let config = parse(
            r#"
            [channels.email]
            kind = "smtp"
            host = "smtp.example.org"
            port = 587
            tls = "starttls"
            username_env = "PATH"
            password_env = "TICKLER_TEST_SMTP_PASSWORD_NEVER_SET"
            from = "Evaluations <evaluations@example.org>"
            "#,
        );
        let err = config.channels().err().unwrap().to_string();
        assert!(
            err.contains("channel email") && err.contains("TICKLER_TEST_SMTP_PASSWORD_NEVER_SET"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn an_unknown_tls_mode_is_refused_naming_the_value() {
        let err = toml::from_str::<Config>(
            r#"
            [channels.email]
            kind = "smtp"
            host = "smtp.example.org"
            port = 587
            tls = "maybe"
            from = "evaluations@example.org"
            "#,
        )
        .err()
        .unwrap()
        .to_string();
        assert!(err.contains("maybe") && err.contains("starttls"), "{err}");
    }
}
