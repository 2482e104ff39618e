//! `tickler replay`: an entity as of an instant, from the data directory alone.

use std::path::Path;

use serde_json::json;
use tickler::{EntityId, Timestamp};
use tickler_admin::views::{EntityView, PastEventView};

pub fn run(
    data_dir: &Path,
    entity: &EntityId,
    as_of: Option<Timestamp>,
    events: bool,
    json: bool,
) -> anyhow::Result<()> {
    let (_locked, store) = super::open_offline(data_dir)?;
    let view = tickler::replay::replay(&store, entity, as_of)?;
    let entity_view = serde_json::to_value(EntityView::new(&view.entity))?;
    let past: Vec<PastEventView> = view.past_events.iter().map(PastEventView::new).collect();
    let past = serde_json::to_value(past)?;
    if json {
        let mut out = json!({
            "as_of": view.as_of,
            "entity": entity_view,
            "past_events": past,
        });
        if events {
            out["events"] = serde_json::to_value(&view.events)?;
        }
        out!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    match view.as_of {
        Some(as_of) => out!("as of {as_of} ({} events folded)", view.events.len()),
        None => out!("the whole log ({} events)", view.events.len()),
    }
    super::output::print_replay(&entity_view, &past);
    if events {
        for event in &view.events {
            out!(
                "{:>6}  {}  {}",
                event.seq,
                event.recorded_at,
                serde_json::to_string(&event.event)?
            );
        }
    }
    Ok(())
}
