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

/// A catalog of the named built-in policies only (e.g. `&["due-date"]`) and the built-in
/// templates: an embedder registers the channels those policies name, not every channel of
/// the shipped catalog. An empty list means every built-in policy.
pub fn builtin_catalog(names: &[&str]) -> Result<tickler_engine::Catalog, Error> {
    let all = policies()?;
    let known = || {
        all.iter()
            .map(|policy| policy.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if let Some(unknown) = names
        .iter()
        .find(|name| !all.iter().any(|policy| policy.name == **name))
    {
        return Err(Error::UnknownPolicy {
            value: (*unknown).to_owned(),
            known: known(),
        });
    }
    let chosen = all
        .iter()
        .filter(|policy| names.is_empty() || names.contains(&policy.name.as_str()))
        .cloned()
        .collect();
    tickler_engine::Catalog::new(chosen, templates()?)
}
