//! The template renderer with hostile values: the shipped templates rendered for an entity
//! whose attributes, recipient and ids come from the input. Rendering may fail (a value of the
//! wrong shape), but never panics, never runs unbounded (the fuel limit), and the HTML part
//! never contains an unescaped `<script`.
#![no_main]

use std::collections::BTreeMap;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tickler::{ActiveReminder, AttrValue, EntityId, Event, OccurrenceId, Phase, Templates, Zone};

fn templates() -> &'static Templates {
    static TEMPLATES: OnceLock<Templates> = OnceLock::new();
    TEMPLATES.get_or_init(|| {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/templates");
        tickler::load_templates(&dir).expect("the shipped templates load")
    })
}

const NAMES: [&str; 8] = [
    "schedule/recurring-nudge",
    "schedule/upgrade-reminder",
    "schedule/course-update",
    "schedule/digest",
    "evaluation/reminder",
    "evaluation/digest",
    "due/pre-due",
    "contact/conversation-a",
];

fuzz_target!(|bytes: &[u8]| {
    let text = String::from_utf8_lossy(bytes).into_owned();
    let mut parts = text.split('\u{1f}');
    let mut next = || parts.next().unwrap_or("").to_owned();
    let name = NAMES[bytes.first().copied().unwrap_or(0) as usize % NAMES.len()];
    let hostile = next();
    let row: BTreeMap<String, String> = [
        ("section", next()),
        ("highlights", next()),
        ("subject", next()),
        ("body", next()),
        ("html", next()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let mut attributes = BTreeMap::new();
    for key in [
        "course_name", "learner_name", "lms_url", "course", "learner", "title", "owner",
    ] {
        attributes.insert(key.to_owned(), AttrValue::Text(hostile.clone()));
    }
    attributes.insert("highlights".into(), AttrValue::Table(vec![row.clone(); 3]));
    attributes.insert("items_sending".into(), AttrValue::Table(vec![row]));
    attributes.insert("students".into(), AttrValue::List(vec![hostile.clone()]));
    let Ok(id) = EntityId::new("fuzz", "entity") else {
        return;
    };
    let at = tickler::Timestamp::from_millis(1_767_225_600_000).unwrap();
    let anchors: BTreeMap<String, tickler::Timestamp> = [
        "due_at", "start", "due", "upgrade_deadline", "course_end", "view_instructors",
    ]
    .iter()
    .map(|a| (a.to_string(), at))
    .collect();
    let created = Event::Created {
        policy: "fuzz".into(),
        policy_version: 1,
        workflow: None,
        recipient: hostile.clone(),
        zone: Zone::UTC,
        anchors,
        attributes,
    };
    let Ok(entity) = tickler_core::fold(&id, None, [(1, at, &created)]).map(|(e, _)| e.unwrap()) else {
        return;
    };
    let reminder = ActiveReminder {
        occurrence: OccurrenceId::new("rule".parse().unwrap(), u32::from(bytes.len() as u8 % 4)),
        slot: 0,
        kind: "kind".into(),
        planned_at: at,
        enabled: true,
        phase: Phase::Pending,
        delivered: Vec::new(),
        refused: Vec::new(),
        key: None,
    };
    if let Ok(rendered) = templates().render(name, &entity, &reminder, 1, &hostile) {
        if let Some(html) = rendered.html {
            // Values are escaped in HTML; only the digest embeds an item's own (already
            // rendered) HTML, which the schedules' templates escaped when they made it.
            if name != "schedule/digest" {
                assert!(!html.contains("<script"), "unescaped value in {name}: {html}");
            }
        }
    }
});
