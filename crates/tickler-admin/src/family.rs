//! How a policy family (a crate of its own) adds commands to the admin protocol.
//!
//! The generic protocol knows entities, groups, digests and operations; a family's commands
//! are parsed and run by the family, which registers itself with
//! [`Families`] when the daemon starts. Their wire shapes are specified in
//! `proto/admin-protocol.md` like every other command.

use std::sync::Arc;

use async_trait::async_trait;
use schemars::{Schema, SchemaGenerator};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tickler_engine::{Engine, Error};

/// A family's commands.
#[async_trait]
pub trait CommandFamily: Send + Sync {
    /// The commands it serves, as written in a request's `cmd`.
    fn commands(&self) -> &'static [&'static str];

    /// Each command and the schema of its arguments, for `proto/admin-protocol.schema.json`.
    fn args_schemas(&self, generator: &mut SchemaGenerator) -> Vec<(&'static str, Schema)>;

    /// Those of its commands an application may send (the rest are an operator's): see
    /// `role.rs`.
    fn app_commands(&self) -> &'static [&'static str] {
        &[]
    }

    /// The policy `backfill` processes when a request names none.
    fn backfill_policy(&self) -> Option<&'static str> {
        None
    }

    /// The dry run the dashboard's Preview page charts, if the family has one.
    fn dry_run(&self) -> Option<DryRun> {
        None
    }

    /// Runs one of its commands; `args` is the request's arguments (`{}` when left out).
    async fn run(&self, engine: &Engine, cmd: &str, args: Value) -> Result<Value, Error>;
}

/// A family's dry run of what it would send, as the dashboard's Preview page asks for it: the
/// page sends `cmd` with `{<subject>: <key>, "from", "to", <sample>: <n>, "limit": 1}` and
/// charts the reply's `counts`, a list of `{day, kind, count}`. Nothing is sent or written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DryRun {
    /// The family command that runs it.
    pub cmd: &'static str,
    /// The argument naming what is previewed; the page's label for it.
    pub subject: &'static str,
    /// The argument giving a number of simulated subjects to add, if the run takes one.
    pub sample: Option<&'static str>,
}

/// The command families a daemon serves.
#[derive(Clone, Default)]
pub struct Families {
    families: Vec<Arc<dyn CommandFamily>>,
}

impl Families {
    pub fn with(mut self, family: Arc<dyn CommandFamily>) -> Families {
        self.families.push(family);
        self
    }

    pub fn serves(&self, cmd: &str) -> bool {
        self.family_of(cmd).is_some()
    }

    /// Every command the families serve, in registration order.
    pub fn commands(&self) -> Vec<&'static str> {
        self.families
            .iter()
            .flat_map(|family| family.commands().iter().copied())
            .collect()
    }

    /// Every family command with the schema of its arguments.
    pub fn args_schemas(&self, generator: &mut SchemaGenerator) -> Vec<(&'static str, Schema)> {
        self.families
            .iter()
            .flat_map(|family| family.args_schemas(generator))
            .collect()
    }

    /// Whether a family lets an application send `cmd`.
    pub fn app_may(&self, cmd: &str) -> bool {
        self.families
            .iter()
            .any(|family| family.app_commands().contains(&cmd))
    }

    /// The families' dry runs, in registration order.
    pub fn dry_runs(&self) -> Vec<DryRun> {
        self.families.iter().filter_map(|f| f.dry_run()).collect()
    }

    pub fn backfill_policy(&self) -> Option<&'static str> {
        self.families.iter().find_map(|f| f.backfill_policy())
    }

    pub(crate) async fn run(
        &self,
        engine: &Engine,
        cmd: &str,
        args: Value,
    ) -> Result<Value, Error> {
        match self.family_of(cmd) {
            Some(family) => family.run(engine, cmd, args).await,
            None => Err(Error::Arguments {
                what: cmd.to_owned(),
                reason: "no command family serves it".into(),
            }),
        }
    }

    fn family_of(&self, cmd: &str) -> Option<&Arc<dyn CommandFamily>> {
        self.families
            .iter()
            .find(|family| family.commands().contains(&cmd))
    }
}

/// A family command's arguments, parsed; an error names the command and the offending field,
/// worded as a generic command's (`<cmd>: <what is wrong>`).
pub fn parse_args<T: DeserializeOwned>(cmd: &str, args: Value) -> Result<T, Error> {
    serde_json::from_value(args).map_err(|err| Error::Family {
        code: "invalid_arguments",
        message: format!("{cmd}: {err}"),
    })
}
