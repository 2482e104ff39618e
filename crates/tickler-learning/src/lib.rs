//! Learner schedules (the `learner-schedule` policy, after Open edX's Schedules app): a policy
//! family of the tickler engine.
//!
//! Sites and courses are directory entities (`site/<name>`, `course/<key>`); an enrolment
//! becomes a schedule entity (`schedule/<course>/<learner>`) whose anchors and attributes are
//! derived from them by the pure functions of [`decide`]; a course change reaches every schedule
//! of the course as one `Update` each. The crate plugs into the engine through its public API
//! ([`LearnerSchedules`] for embedders), into the daemon as a command family
//! ([`commands::Commands`]) and an [`tickler_engine::Extension`] that finishes a course change a
//! crash left part way ([`extension`]).

#[cfg(feature = "cli")]
pub mod cli;
pub mod commands;
pub mod decide;
mod error;
mod operations;

use std::sync::Arc;

use async_trait::async_trait;
use tickler_core::EntityId;
use tickler_engine::{Applied, Error};

pub use decide::*;
pub use error::{unknown_course, unknown_site};
pub use operations::{
    CourseChange, CourseSettings, Enrolled, Highlight, PREVIEW_LEARNERS_MAX, PREVIEW_LIMIT_MAX,
    Preview, PreviewCount, PreviewMessage, PreviewRequest, SiteSettings,
};

/// What an embedder does with learner schedules. Implemented for [`tickler_engine::Engine`]:
/// `use tickler_learning::LearnerSchedules;` and call them on the engine.
#[async_trait]
pub trait LearnerSchedules {
    /// Creates or updates a site.
    async fn set_site(&self, settings: &SiteSettings) -> Result<Applied, Error>;

    /// Creates or updates a course; a change reaches every schedule of the course (re-anchored,
    /// re-planned) before this returns.
    async fn set_course(&self, settings: &CourseSettings) -> Result<CourseChange, Error>;

    /// Turns an enrolment into a schedule (or into nothing, when schedule creation is off).
    /// Sending the same enrolment twice changes nothing.
    async fn enroll(&self, enrolment: &Enrolment) -> Result<Enrolled, Error>;

    /// The learner left the course: pending messages end unsent (completed: unenrolled), and
    /// what was collected for their next digest is taken back.
    async fn unenroll(&self, course: &str, learner: &str) -> Result<Applied, Error>;

    /// The learner changed track (`verified`: upgraded). The schedule restarts: from the
    /// enrolment for the audit track, from now otherwise, never before the course start; an
    /// upgraded learner gets no upgrade reminder.
    async fn change_track(
        &self,
        course: &str,
        learner: &str,
        track: &str,
    ) -> Result<Applied, Error>;

    /// The learner unsubscribed: from one course's email (`course`), or from all of the site's.
    /// Their pending messages end unsent (opted out); later enrolments plan nothing. Returns how
    /// many schedules changed.
    async fn opt_out(
        &self,
        site: &str,
        learner: &str,
        email: &str,
        course: Option<&str>,
    ) -> Result<u64, Error>;

    /// Every message a course would send in [from, to): its schedules' pending occurrences and
    /// those of simulated enrolments, decided by the same pure core as real ones. Nothing is
    /// written or sent.
    async fn preview(&self, request: &PreviewRequest) -> Result<Preview, Error>;

    /// The schedules of a course, in id order (at most `limit`).
    async fn course_schedules(&self, course: &str, limit: usize) -> Result<Vec<EntityId>, Error>;
}

/// Finishes, when the engine opens, the course changes a crash or a failing schedule left part
/// way. Register it on the builder: `.extension(tickler_learning::extension())`.
pub fn extension() -> Arc<dyn tickler_engine::Extension> {
    Arc::new(operations::FinishCourseChanges)
}

/// The admin protocol commands of the family, for `Families::with`.
pub fn commands() -> Arc<dyn tickler_admin::CommandFamily> {
    Arc::new(commands::Commands)
}
