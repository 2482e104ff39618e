//! Reading policies and templates from their directories: the one place the engine's catalog
//! comes from files. The engine itself reads no file; it is given a [`Catalog`] built here (or
//! by an embedder from strings, `Catalog::new` and `Templates::from_sources`).

use std::collections::BTreeMap;
use std::path::Path;

use tickler_core::Policy;
use tickler_engine::{Catalog, Error, Templates};

use tickler_engine::templates::{HTML_SUFFIX, SUBJECT_SUFFIX, TEXT_SUFFIX};

/// Loads every `*.toml` policy in `policies_dir` and every template under `templates_dir`.
pub fn load_catalog(policies_dir: &Path, templates_dir: &Path) -> Result<Catalog, Error> {
    Catalog::new(load_policies(policies_dir)?, load_templates(templates_dir)?)
}

/// Every `*.toml` policy in `dir`, in name order.
pub fn load_policies(dir: &Path) -> Result<Vec<Policy>, Error> {
    let mut policies = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|err| Error::Config {
        what: format!("policies directory {}", dir.display()),
        reason: err.to_string(),
    })?;
    let mut paths: Vec<_> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    paths.sort();
    for path in paths {
        let failed = |reason: String| Error::Config {
            what: format!("policy file {}", path.display()),
            reason,
        };
        let text = std::fs::read_to_string(&path).map_err(|err| failed(err.to_string()))?;
        policies.push(Policy::from_toml(&text).map_err(|err| failed(err.to_string()))?);
    }
    Ok(policies)
}

/// Loads every `*.subject.j2` / `*.text.j2` / `*.html.j2` file under `dir`, recursively.
pub fn load_templates(dir: &Path) -> Result<Templates, Error> {
    let mut files = BTreeMap::new();
    collect(dir, dir, &mut files)?;
    Templates::from_sources(files)
}

fn collect(root: &Path, dir: &Path, files: &mut BTreeMap<String, String>) -> Result<(), Error> {
    let unreadable = |path: &Path, err: std::io::Error| Error::Config {
        what: format!("templates directory {}", path.display()),
        reason: err.to_string(),
    };
    let entries = std::fs::read_dir(dir).map_err(|err| unreadable(dir, err))?;
    for entry in entries {
        let path = entry.map_err(|err| unreadable(dir, err))?.path();
        if path.is_dir() {
            collect(root, &path, files)?;
            continue;
        }
        let relative = path
            .strip_prefix(root)
            .expect("walked from root")
            .to_string_lossy()
            .replace('\\', "/");
        if [SUBJECT_SUFFIX, TEXT_SUFFIX, HTML_SUFFIX]
            .iter()
            .any(|suffix| relative.ends_with(suffix))
        {
            let source = std::fs::read_to_string(&path).map_err(|err| unreadable(&path, err))?;
            files.insert(relative, source);
        }
    }
    Ok(())
}
