//! The family's subcommands (`tickler eval …`, feature `cli`): requests over the admin socket.
//! The binary mounts them.

use clap::Subcommand;
use tickler_admin::Call;
use tickler_admin::protocol::EntityArg;
use tickler_core::{EntityId, Timestamp};

use crate::commands::{EvalMoveDates, EvalRespond, call};
use crate::{EvaluationDates, NewEvaluation};

/// `course-101` means `eval/course-101`; a full `kind/key` id is taken as is.
fn entity(text: &str) -> anyhow::Result<EntityId> {
    let full = if text.contains('/') {
        text.to_owned()
    } else {
        format!("eval/{text}")
    };
    Ok(EntityId::parse(&full)?)
}

/// An evaluation's dates (RFC 3339 instants). `--view` sets both view dates.
#[derive(clap::Args, Default)]
pub struct EvalDatesArgs {
    /// When it opens (RFC 3339).
    #[arg(long)]
    pub start: Option<Timestamp>,
    /// When answers are due (RFC 3339).
    #[arg(long)]
    pub due: Option<Timestamp>,
    /// The end of the grace period after due; closing happens then.
    #[arg(long)]
    pub stop: Option<Timestamp>,
    /// When instructors and students may view the results.
    #[arg(long, conflicts_with_all = ["view_instructors", "view_students"])]
    pub view: Option<Timestamp>,
    /// When instructors may see the results (RFC 3339) [default: --view].
    #[arg(long)]
    pub view_instructors: Option<Timestamp>,
    /// When students may see the results (RFC 3339) [default: --view].
    #[arg(long)]
    pub view_students: Option<Timestamp>,
}

#[derive(Subcommand)]
pub enum EvalCmd {
    /// Create an evaluation: its notification chain is planned from its dates.
    Create {
        /// The evaluation, e.g. course-101 (eval/ is added when missing).
        entity: String,
        /// What the evaluation is called in messages.
        #[arg(long)]
        title: String,
        /// Hears that it was created and closed.
        #[arg(long)]
        owner: String,
        /// Comma-separated addresses.
        #[arg(long, value_delimiter = ',')]
        students: Vec<String>,
        /// The instructors' addresses, comma-separated.
        #[arg(long, value_delimiter = ',')]
        instructors: Vec<String>,
        #[command(flatten)]
        dates: EvalDatesArgs,
        /// never, every-1d … every-7d, or 24h-before-due.
        #[arg(long, default_value = "never")]
        reminder: String,
        /// No "available" notice to students at start.
        #[arg(long)]
        no_available_notice: bool,
        /// Remind takers who saved without submitting.
        #[arg(long)]
        allow_saving: bool,
        /// Tell students when they can view the results.
        #[arg(long)]
        results_to_students: bool,
        /// Do not tell instructors when they can view the results.
        #[arg(long)]
        no_results_to_instructors: bool,
        /// One digest a day per student instead of a message per notice.
        #[arg(long)]
        consolidated: bool,
        /// The zone dates are shown in.
        #[arg(long, default_value = "UTC")]
        zone: String,
    },
    /// A student answered: no more reminders, and out of their digest.
    Respond {
        entity: String,
        /// The student who answered (their address).
        student: String,
        /// Saved without submitting (reminded only if the evaluation allows saving).
        #[arg(long)]
        saved: bool,
    },
    /// Move any of the dates at once: every pending step follows.
    MoveDates {
        entity: String,
        #[command(flatten)]
        dates: EvalDatesArgs,
    },
    /// Delete it: pending notices end unsent (completed), the created notice included.
    Delete { entity: String },
}

fn eval_dates(args: EvalDatesArgs) -> EvaluationDates {
    EvaluationDates {
        start: args.start,
        due: args.due,
        stop: args.stop,
        view: args.view,
        view_instructors: args.view_instructors,
        view_students: args.view_students,
    }
}

/// The request of an `eval` subcommand.
pub fn eval_request(command: EvalCmd) -> anyhow::Result<Call> {
    Ok(match command {
        EvalCmd::Create {
            entity: name,
            title,
            owner,
            students,
            instructors,
            dates,
            reminder,
            no_available_notice,
            allow_saving,
            results_to_students,
            no_results_to_instructors,
            consolidated,
            zone,
        } => call(
            "eval.create",
            &NewEvaluation {
                entity: entity(&name)?,
                title,
                owner,
                students,
                instructors,
                zone: zone.parse()?,
                dates: eval_dates(dates),
                reminder: Some(reminder),
                available_notice: Some(!no_available_notice),
                allow_saving: Some(allow_saving),
                results_to_instructors: Some(!no_results_to_instructors),
                results_to_students: Some(results_to_students),
                consolidated: Some(consolidated),
            },
        ),
        EvalCmd::Respond {
            entity: name,
            student,
            saved,
        } => call(
            "eval.respond",
            &EvalRespond {
                entity: entity(&name)?,
                student,
                saved,
            },
        ),
        EvalCmd::MoveDates {
            entity: name,
            dates,
        } => call(
            "eval.move-dates",
            &EvalMoveDates {
                entity: entity(&name)?,
                dates: eval_dates(dates),
            },
        ),
        EvalCmd::Delete { entity: name } => call(
            "eval.delete",
            &EntityArg {
                entity: entity(&name)?,
            },
        ),
    }
    .into())
}
