//! The Entity page: its state, active reminders, the timeline of its log with what `explain`
//! says of each event, its past events; now or as of an instant (the replay's fold).

use std::collections::BTreeMap;

use axum::Extension;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};
use tickler_core::EntityId;

use super::auth::Signed;
use super::pages::{non_empty, parse_instant};
use super::{Dashboard, chart};
use crate::views::{EntityView, PastEventView, local_text};

#[derive(Debug, Deserialize)]
pub struct EntityQuery {
    id: String,
    /// Show the entity as it was at this instant (RFC 3339); empty: now.
    #[serde(default)]
    as_of: String,
}

/// An entity: its state, active reminders, timeline and the story of each occurrence, now or
/// as of an instant.
pub async fn entity(
    State(dashboard): State<Dashboard>,
    Extension(signed): Extension<Signed>,
    Query(query): Query<EntityQuery>,
) -> Response {
    match entity_content(&dashboard, &query) {
        Ok(content) => dashboard.show(&signed, "search", "entity.html", content),
        Err(err) => dashboard.problem(&signed, StatusCode::BAD_REQUEST, &err),
    }
}

fn entity_content(dashboard: &Dashboard, query: &EntityQuery) -> Result<Value, String> {
    let id = EntityId::parse(query.id.trim()).map_err(|err| err.to_string())?;
    let as_of = match non_empty(&query.as_of) {
        None => None,
        Some(text) => Some(parse_instant(text)?),
    };
    let (view, story) = dashboard
        .0
        .engine
        .story_as_of(&id, as_of)
        .map_err(|err| err.to_string())?;
    let zone = view.entity.zone;
    let timeline = chart::timeline(
        &view
            .events
            .iter()
            .map(|e| (e.seq, e.recorded_at, e.event.name().to_owned()))
            .collect::<Vec<_>>(),
    );
    // Each event of the log, with the sentences `explain` says about it.
    let mut sentences: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    let lines = story
        .entity_lines
        .iter()
        .chain(story.occurrences.iter().flat_map(|s| &s.lines));
    for line in lines {
        sentences
            .entry(line.seq)
            .or_default()
            .push(line.text.clone());
    }
    let events: Vec<Value> = timeline
        .points
        .iter()
        .map(|point| {
            json!({
                "seq": point.seq, "name": point.name, "lane": point.lane, "at": point.at,
                "local": local_text(point.at, zone),
                "sentences": sentences.get(&point.seq).cloned().unwrap_or_default(),
            })
        })
        .collect();
    let past: Vec<PastEventView> = view.past_events.iter().map(PastEventView::new).collect();
    Ok(json!({
        "id": id, "as_of": as_of, "as_of_text": query.as_of.trim(),
        "entity": EntityView::new(&view.entity), "timeline": timeline, "events": events,
        "stories": story.occurrences, "past_events": past,
    }))
}
