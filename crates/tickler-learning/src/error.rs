//! The family's refusals, as engine errors with the admin protocol's codes.

use tickler_engine::Error;

use crate::decide::LearnerError;

/// A site that was never set. The hint is a whole command: `site set` needs nothing else.
pub fn unknown_site(site: &str) -> Error {
    Error::Family {
        code: "unknown_site",
        message: format!("unknown site {site:?}: create it first with `tickler site set {site}`"),
    }
}

/// A course that was never set. A new course needs its site and start date.
pub fn unknown_course(course: &str) -> Error {
    Error::Family {
        code: "unknown_course",
        message: format!(
            "unknown course {course:?}: create it first with `tickler course set {course} --site \
             SITE --start DATE`"
        ),
    }
}

impl From<LearnerError> for Error {
    fn from(err: LearnerError) -> Error {
        Error::Arguments {
            what: "learner schedule".into(),
            reason: err.to_string(),
        }
    }
}
