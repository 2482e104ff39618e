//! The family's admin protocol commands (`site.set`, `course.set`, `learner.*`, `preview`):
//! their arguments as they travel, and how each runs. Specified in `proto/admin-protocol.md`.

use async_trait::async_trait;
use schemars::{Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tickler_admin::dispatch::{applied_reply, to_value};
use tickler_admin::{CommandFamily, FamilyCall, parse_args};
use tickler_engine::{Engine, Error};

use crate::{
    CourseSettings, Enrolment, LearnerSchedules, PreviewRequest, SCHEDULE_POLICY, SiteSettings,
    schedule_id, site_id,
};

/// The commands, as written in a request's `cmd`.
pub const COMMANDS: &[&str] = &[
    "site.set",
    "course.set",
    "learner.enroll",
    "learner.unenroll",
    "learner.change-track",
    "learner.opt-out",
    "preview",
];

/// A learner's schedule in a course.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LearnerInCourse {
    pub course: String,
    pub learner: String,
}

/// A learner moved to another track (`verified`: upgraded).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeTrack {
    pub course: String,
    pub learner: String,
    pub track: String,
}

/// A learner unsubscribed from one course's email, or (without `course`) from all of a site's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OptOut {
    pub site: String,
    pub learner: String,
    pub email: String,
    #[serde(default)]
    pub course: Option<String>,
}

/// A request of this family, for a client (the CLI) to send.
pub fn call(cmd: &'static str, args: &impl Serialize) -> FamilyCall {
    debug_assert!(COMMANDS.contains(&cmd), "{cmd} is not a learner command");
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
        // A site's settings (hold-back ratio, deadlines for every course) are an operator's.
        &[
            "course.set",
            "learner.enroll",
            "learner.unenroll",
            "learner.change-track",
            "learner.opt-out",
            "preview",
        ]
    }

    fn dry_run(&self) -> Option<tickler_admin::DryRun> {
        Some(tickler_admin::DryRun {
            cmd: "preview",
            subject: "course",
            sample: Some("sample"),
        })
    }

    fn args_schemas(&self, generator: &mut SchemaGenerator) -> Vec<(&'static str, Schema)> {
        vec![
            ("site.set", generator.subschema_for::<SiteSettings>()),
            ("course.set", generator.subschema_for::<CourseSettings>()),
            ("learner.enroll", generator.subschema_for::<Enrolment>()),
            (
                "learner.unenroll",
                generator.subschema_for::<LearnerInCourse>(),
            ),
            (
                "learner.change-track",
                generator.subschema_for::<ChangeTrack>(),
            ),
            ("learner.opt-out", generator.subschema_for::<OptOut>()),
            ("preview", generator.subschema_for::<PreviewRequest>()),
        ]
    }

    fn backfill_policy(&self) -> Option<&'static str> {
        Some(SCHEDULE_POLICY)
    }

    async fn run(&self, engine: &Engine, cmd: &str, args: Value) -> Result<Value, Error> {
        match cmd {
            "site.set" => {
                let settings: SiteSettings = parse_args(cmd, args)?;
                let applied = engine.set_site(&settings).await?;
                applied_reply(engine, &site_id(&settings.site)?, &applied).await
            }
            "course.set" => {
                let settings: CourseSettings = parse_args(cmd, args)?;
                to_value(&engine.set_course(&settings).await?)
            }
            "learner.enroll" => {
                let enrolment: Enrolment = parse_args(cmd, args)?;
                to_value(&engine.enroll(&enrolment).await?)
            }
            "learner.unenroll" => {
                let args: LearnerInCourse = parse_args(cmd, args)?;
                let applied = engine.unenroll(&args.course, &args.learner).await?;
                let id = schedule_id(&args.course, &args.learner)?;
                applied_reply(engine, &id, &applied).await
            }
            "learner.change-track" => {
                let args: ChangeTrack = parse_args(cmd, args)?;
                let applied = engine
                    .change_track(&args.course, &args.learner, &args.track)
                    .await?;
                let id = schedule_id(&args.course, &args.learner)?;
                applied_reply(engine, &id, &applied).await
            }
            "learner.opt-out" => {
                let args: OptOut = parse_args(cmd, args)?;
                let changed = engine
                    .opt_out(
                        &args.site,
                        &args.learner,
                        &args.email,
                        args.course.as_deref(),
                    )
                    .await?;
                Ok(json!({ "schedules_changed": changed }))
            }
            "preview" => {
                let request: PreviewRequest = parse_args(cmd, args)?;
                to_value(&engine.preview(&request).await?)
            }
            other => Err(Error::Arguments {
                what: other.to_owned(),
                reason: "not a learner schedule command".into(),
            }),
        }
    }
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
