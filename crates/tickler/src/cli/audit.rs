//! `tickler audit`: verify a data directory offline (see `tickler_engine::audit`).

use std::path::Path;

use anyhow::bail;
use indicatif::{ProgressBar, ProgressStyle};
use tickler::Store;

pub fn run(data_dir: &Path, json: bool) -> anyhow::Result<()> {
    let (_locked, store) = super::open_offline(data_dir)?;
    let total = store.stats()?.entities;
    let bar = ProgressBar::new(total).with_style(
        ProgressStyle::with_template("auditing {bar:40} {pos}/{len} entities ({eta})")
            .expect("a valid template"),
    );
    let report = tickler::audit::audit(&store, |done| bar.set_position(done))?;
    bar.finish_and_clear();
    if json {
        out!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        out!(
            "audited {} entities, {} events, {} past events, {} timers: {} finding(s)",
            report.entities,
            report.events,
            report.past_events,
            report.timers,
            report.findings.len()
        );
        for finding in &report.findings {
            match &finding.entity {
                Some(entity) => out!("  {entity}: {}", finding.what),
                None => out!("  {}", finding.what),
            }
        }
    }
    if !report.is_clean() {
        bail!(
            "the audit found {} problem(s) in {}",
            report.findings.len(),
            data_dir.display()
        );
    }
    Ok(())
}
