//! The family's admin protocol commands (`eval.*`): their arguments as they travel, and how
//! each runs. Specified in `proto/admin-protocol.md`.

use async_trait::async_trait;
use schemars::{Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tickler_admin::dispatch::{applied_reply, entity_view, to_value};
use tickler_admin::protocol::EntityArg;
use tickler_admin::views::AppliedView;
use tickler_admin::{CommandFamily, FamilyCall, parse_args};
use tickler_core::EntityId;
use tickler_engine::{Engine, Error};

use crate::{EvaluationDates, Evaluations, NewEvaluation, Response};

/// The commands, as written in a request's `cmd`.
pub const COMMANDS: &[&str] = &[
    "eval.create",
    "eval.respond",
    "eval.move-dates",
    "eval.delete",
];

/// A student answered an evaluation (or saved an answer without submitting it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EvalRespond {
    #[schemars(with = "tickler_admin::schema::IdText")]
    pub entity: EntityId,
    pub student: String,
    /// Saved, not submitted: still reminded when the evaluation allows saving.
    #[serde(default)]
    pub saved: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EvalMoveDates {
    #[schemars(with = "tickler_admin::schema::IdText")]
    pub entity: EntityId,
    pub dates: EvaluationDates,
}

/// A request of this family, for a client (the CLI) to send.
pub fn call(cmd: &'static str, args: &impl Serialize) -> FamilyCall {
    debug_assert!(
        COMMANDS.contains(&cmd),
        "{cmd} is not an evaluation command"
    );
    FamilyCall::new(cmd, args)
}

/// The family as the daemon serves it.
pub struct Commands;

#[async_trait]
impl CommandFamily for Commands {
    fn commands(&self) -> &'static [&'static str] {
        COMMANDS
    }

    fn app_commands(&self) -> &'static [&'static str] {
        COMMANDS
    }

    fn args_schemas(&self, generator: &mut SchemaGenerator) -> Vec<(&'static str, Schema)> {
        vec![
            ("eval.create", generator.subschema_for::<NewEvaluation>()),
            ("eval.respond", generator.subschema_for::<EvalRespond>()),
            (
                "eval.move-dates",
                generator.subschema_for::<EvalMoveDates>(),
            ),
            ("eval.delete", generator.subschema_for::<EntityArg>()),
        ]
    }

    async fn run(&self, engine: &Engine, cmd: &str, args: Value) -> Result<Value, Error> {
        match cmd {
            "eval.create" => {
                let evaluation: NewEvaluation = parse_args(cmd, args)?;
                let applied = engine.create_evaluation(&evaluation).await?;
                applied_reply(engine, &evaluation.entity, &applied).await
            }
            "eval.respond" => respond(engine, parse_args(cmd, args)?).await,
            "eval.move-dates" => {
                let args: EvalMoveDates = parse_args(cmd, args)?;
                let applied = engine
                    .move_evaluation_dates(&args.entity, &args.dates)
                    .await?;
                applied_reply(engine, &args.entity, &applied).await
            }
            "eval.delete" => {
                let args: EntityArg = parse_args(cmd, args)?;
                let applied = engine.delete_evaluation(&args.entity).await?;
                applied_reply(engine, &args.entity, &applied).await
            }
            other => Err(Error::Arguments {
                what: other.to_owned(),
                reason: "not an evaluation command".into(),
            }),
        }
    }
}

/// Each list change the response made, the last with the evaluation after them.
async fn respond(engine: &Engine, args: EvalRespond) -> Result<Value, Error> {
    let response = if args.saved {
        Response::Saved
    } else {
        Response::Submitted
    };
    let applied = engine
        .record_response(&args.entity, &args.student, response)
        .await?;
    let state = engine.show(&args.entity).await?;
    let mut views: Vec<AppliedView> = applied
        .iter()
        .map(|applied| AppliedView::new(&args.entity, applied, None))
        .collect();
    if let Some(last) = views.last_mut() {
        last.state = Some(entity_view(engine, &state));
    }
    to_value(&json!({ "entity": args.entity, "student": args.student, "applied": views }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_has_the_schema_of_its_arguments() {
        let mut generator = SchemaGenerator::default();
        let described: Vec<&str> = Commands
            .args_schemas(&mut generator)
            .into_iter()
            .map(|(cmd, _)| cmd)
            .collect();
        assert_eq!(described, COMMANDS);
    }
}
