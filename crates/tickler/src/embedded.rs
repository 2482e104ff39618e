//! The shipped configuration built into the binary (by `build.rs`, from `config/`): what
//! `tickler serve` runs with when no `config/tickler.toml` is found, so that the binary alone
//! is enough. A configured directory replaces the built-in policies or templates whole.

use tickler_core::Policy;
use tickler_engine::{Error, Templates};

include!(concat!(env!("OUT_DIR"), "/embedded.rs"));

/// The commit the binary was built from (`unknown` outside a git checkout).
pub const COMMIT: &str = env!("TICKLER_COMMIT");

/// The built-in policies, in file name order.
pub fn policies() -> Result<Vec<Policy>, Error> {
    POLICIES
        .iter()
        .filter(|(name, _)| name.ends_with(".toml"))
        .map(|(name, text)| {
            Policy::from_toml(text).map_err(|err| Error::Config {
                what: format!("built-in policy {name}"),
                reason: err.to_string(),
            })
        })
        .collect()
}

/// The built-in templates.
pub fn templates() -> Result<Templates, Error> {
    use tickler_engine::templates::{HTML_SUFFIX, SUBJECT_SUFFIX, TEXT_SUFFIX};
    let files = TEMPLATES
        .iter()
        .filter(|(name, _)| {
            [SUBJECT_SUFFIX, TEXT_SUFFIX, HTML_SUFFIX]
                .iter()
                .any(|suffix| name.ends_with(suffix))
        })
        .map(|(name, text)| ((*name).to_owned(), (*text).to_owned()))
        .collect();
    Templates::from_sources(files)
}
