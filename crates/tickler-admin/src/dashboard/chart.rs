//! The geometry of the SVG charts, as plain numbers the templates draw: the overview's bars
//! (what fired and failed each hour) and an entity's timeline (each event of its log, in
//! order, on the lane of what it did). Pure: tested without a browser.

use serde::Serialize;
use tickler_core::Timestamp;

use super::activity::Hour;

/// The bar chart's drawing area, in SVG user units.
pub const BARS_WIDTH: u32 = 720;
pub const BARS_HEIGHT: u32 = 120;

/// One hour's stacked bar: its segments bottom up, and what a hover says.
#[derive(Debug, Serialize)]
pub struct Bar {
    pub x: u32,
    pub width: u32,
    pub segments: Vec<Segment>,
    /// The hour's label under the axis, every third hour ("" otherwise).
    pub label: String,
    pub title: String,
}

#[derive(Debug, PartialEq, Eq, Serialize)]
pub struct Segment {
    /// sent, failed or suppressed: the stylesheet's class.
    pub class: &'static str,
    pub y: u32,
    pub height: u32,
}

/// The bars of `hours`, scaled so the busiest hour fills the height.
pub fn bars(hours: &[Hour]) -> Vec<Bar> {
    let peak = hours
        .iter()
        .map(|h| h.counts.sent + h.counts.failed + h.counts.suppressed)
        .max()
        .unwrap_or(0)
        .max(1);
    let slot = BARS_WIDTH / u32::try_from(hours.len().max(1)).unwrap_or(1);
    hours
        .iter()
        .zip(0u32..)
        .map(|(hour, index)| {
            let mut top = BARS_HEIGHT;
            let mut segments = Vec::new();
            for (class, count) in [
                ("sent", hour.counts.sent),
                ("failed", hour.counts.failed),
                ("suppressed", hour.counts.suppressed),
            ] {
                let height = u32::try_from(count * u64::from(BARS_HEIGHT) / peak).unwrap_or(0);
                // A non-zero count is always visible.
                let height = if count > 0 { height.max(2) } else { 0 };
                top = top.saturating_sub(height);
                segments.push(Segment {
                    class,
                    y: top,
                    height,
                });
            }
            let start = hour.start.to_chrono().format("%H:00").to_string();
            Bar {
                x: index * slot,
                width: slot.saturating_sub(2).max(1),
                segments,
                label: if index % 3 == 0 {
                    start.clone()
                } else {
                    String::new()
                },
                title: format!(
                    "{start} UTC: {} sent, {} failed, {} suppressed",
                    hour.counts.sent, hour.counts.failed, hour.counts.suppressed
                ),
            }
        })
        .collect()
}

/// The lanes of the timeline, top down.
pub const LANES: &[&str] = &[
    "changed", "planned", "moved", "toggled", "attempt", "sent", "unsent",
];
const LANE_HEIGHT: u32 = 22;
const POINT_SPACING: u32 = 34;
const LEFT_MARGIN: u32 = 80;

/// An event of the log, on the timeline.
#[derive(Debug, Serialize)]
pub struct Point {
    pub seq: u64,
    /// The event's name (`occurrence-planned`…).
    pub name: String,
    pub lane: &'static str,
    pub x: u32,
    pub y: u32,
    pub at: Timestamp,
}

/// The timeline's size and its points, one per event, in log order from left to right.
#[derive(Debug, Serialize)]
pub struct Timeline {
    pub width: u32,
    pub height: u32,
    pub lanes: Vec<LaneLabel>,
    pub points: Vec<Point>,
}

#[derive(Debug, Serialize)]
pub struct LaneLabel {
    pub name: &'static str,
    pub y: u32,
}

/// Which lane an event of the log belongs on, by its name.
pub fn lane_of(event_name: &str) -> &'static str {
    match event_name {
        "occurrence-planned" | "retry-planned" => "planned",
        "occurrence-rescheduled" => "moved",
        "occurrence-toggled" => "toggled",
        "delivery-started"
        | "delivery-failed"
        | "retry-requested"
        | "fan-out-started"
        | "recipients-reported" => "attempt",
        "occurrence-sent" => "sent",
        "occurrence-unsent" => "unsent",
        _ => "changed",
    }
}

/// The timeline of `events` (seq, recorded at, name), already in log order.
pub fn timeline(events: &[(u64, Timestamp, String)]) -> Timeline {
    let lane_y = |lane: &str| {
        let index = LANES.iter().position(|l| *l == lane).unwrap_or(0);
        LANE_HEIGHT / 2 + LANE_HEIGHT * u32::try_from(index).unwrap_or(0)
    };
    let points = events
        .iter()
        .zip(0u32..)
        .map(|((seq, at, name), index)| {
            let lane = lane_of(name);
            Point {
                seq: *seq,
                name: name.clone(),
                lane,
                x: LEFT_MARGIN + POINT_SPACING / 2 + index * POINT_SPACING,
                y: lane_y(lane),
                at: *at,
            }
        })
        .collect::<Vec<_>>();
    let count = u32::try_from(points.len()).unwrap_or(u32::MAX);
    Timeline {
        width: LEFT_MARGIN + POINT_SPACING * count.max(1),
        height: LANE_HEIGHT * u32::try_from(LANES.len()).unwrap_or(0),
        lanes: LANES
            .iter()
            .map(|name| LaneLabel {
                name,
                y: lane_y(name),
            })
            .collect(),
        points,
    }
}

/// Colours the stylesheet has for kinds, by position (`kind-0`…); more kinds reuse them.
const KIND_CLASSES: usize = 6;

/// Per-day stacked bars of counts by kind, with the legend.
#[derive(Debug, Serialize)]
pub struct DayChart {
    pub width: u32,
    pub height: u32,
    pub days: Vec<DayBar>,
    /// Each kind and its class, in first-seen order.
    pub kinds: Vec<(String, String)>,
    pub total: u64,
}

#[derive(Debug, Serialize)]
pub struct DayBar {
    pub day: String,
    pub x: u32,
    pub width: u32,
    pub segments: Vec<KindSegment>,
    pub title: String,
    /// Shown under the axis for the first day and every seventh.
    pub label: String,
}

#[derive(Debug, Serialize)]
pub struct KindSegment {
    pub class: String,
    pub y: u32,
    pub height: u32,
}

/// The chart of `counts` (day, kind, count), days in the order given (the dry run's, by date).
pub fn day_bars(counts: &[(String, String, u64)]) -> DayChart {
    let mut kinds: Vec<(String, String)> = Vec::new();
    let mut days: Vec<(String, Vec<(usize, u64)>)> = Vec::new();
    for (day, kind, count) in counts {
        let kind_index = kinds
            .iter()
            .position(|(k, _)| k == kind)
            .unwrap_or_else(|| {
                kinds.push((kind.clone(), format!("kind-{}", kinds.len() % KIND_CLASSES)));
                kinds.len() - 1
            });
        match days.last_mut() {
            Some((last, per_kind)) if last == day => per_kind.push((kind_index, *count)),
            _ => days.push((day.clone(), vec![(kind_index, *count)])),
        }
    }
    let peak = days
        .iter()
        .map(|(_, c)| c.iter().map(|(_, n)| n).sum::<u64>())
        .max()
        .unwrap_or(0)
        .max(1);
    let slot = (BARS_WIDTH / u32::try_from(days.len().max(1)).unwrap_or(1)).clamp(4, 60);
    let bars = days
        .iter()
        .zip(0u32..)
        .map(|((day, per_kind), index)| {
            let mut top = BARS_HEIGHT;
            let segments = per_kind
                .iter()
                .map(|(kind, count)| {
                    let height = u32::try_from(count * u64::from(BARS_HEIGHT) / peak).unwrap_or(0);
                    let height = if *count > 0 { height.max(2) } else { 0 };
                    top = top.saturating_sub(height);
                    KindSegment {
                        class: kinds[*kind].1.clone(),
                        y: top,
                        height,
                    }
                })
                .collect();
            let described: Vec<String> = per_kind
                .iter()
                .map(|(kind, count)| format!("{count} {}", kinds[*kind].0))
                .collect();
            DayBar {
                day: day.clone(),
                x: index * slot,
                width: slot.saturating_sub(2).max(1),
                segments,
                title: format!("{day}: {}", described.join(", ")),
                label: if index % 7 == 0 {
                    day.clone()
                } else {
                    String::new()
                },
            }
        })
        .collect();
    DayChart {
        width: (slot * u32::try_from(days.len()).unwrap_or(0)).max(BARS_WIDTH),
        height: BARS_HEIGHT,
        days: bars,
        kinds,
        total: counts.iter().map(|(_, _, n)| n).sum(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dashboard::activity::HourCounts;

    fn hour(sent: u64, failed: u64) -> Hour {
        Hour {
            start: Timestamp::from_millis(0).unwrap(),
            counts: HourCounts {
                sent,
                failed,
                suppressed: 0,
            },
        }
    }

    #[test]
    fn the_busiest_hour_fills_the_chart_and_others_scale_to_it() {
        let bars = bars(&[hour(10, 0), hour(4, 1), hour(0, 0)]);
        assert_eq!(bars[0].segments[0].height, BARS_HEIGHT);
        assert_eq!(bars[0].segments[0].y, 0);
        assert_eq!(bars[1].segments[0].height, BARS_HEIGHT * 4 / 10);
        // The failed segment sits on the sent one.
        let failed = &bars[1].segments[1];
        assert_eq!(failed.y + failed.height, bars[1].segments[0].y);
        assert!(bars[2].segments.iter().all(|s| s.height == 0));
        assert!(
            bars[1].title.contains("4 sent, 1 failed"),
            "{}",
            bars[1].title
        );
    }

    #[test]
    fn a_single_occurrence_among_thousands_stays_visible() {
        let bars = bars(&[hour(10_000, 1)]);
        assert!(bars[0].segments[1].height > 0);
    }

    #[test]
    fn the_timeline_puts_each_event_right_of_the_one_before_on_its_lane() {
        let at = Timestamp::from_millis(0).unwrap();
        let events = [
            (1, at, "created".to_owned()),
            (2, at, "occurrence-planned".to_owned()),
            (3, at, "occurrence-rescheduled".to_owned()),
            (4, at, "occurrence-sent".to_owned()),
        ];
        let timeline = timeline(&events);
        let lanes: Vec<&str> = timeline.points.iter().map(|p| p.lane).collect();
        assert_eq!(lanes, ["changed", "planned", "moved", "sent"]);
        assert!(timeline.points.windows(2).all(|w| w[0].x < w[1].x));
        assert!(timeline.points.iter().all(|p| p.x < timeline.width));
        assert!(timeline.points.iter().all(|p| p.y < timeline.height));
    }

    #[test]
    fn a_dry_runs_counts_become_one_bar_per_day_stacked_by_kind() {
        let counts = [
            ("2026-03-01".to_owned(), "welcome".to_owned(), 4),
            ("2026-03-01".to_owned(), "nudge".to_owned(), 4),
            ("2026-03-02".to_owned(), "nudge".to_owned(), 2),
        ];
        let chart = day_bars(&counts);
        assert_eq!(chart.total, 10);
        assert_eq!(chart.days.len(), 2);
        assert_eq!(chart.kinds[0], ("welcome".to_owned(), "kind-0".to_owned()));
        let first = &chart.days[0];
        assert_eq!(first.segments.len(), 2);
        assert_eq!(first.segments[1].y, 0, "the busiest day fills the height");
        assert_eq!(chart.days[1].segments[0].height, BARS_HEIGHT / 4);
        assert_eq!(chart.days[1].segments[0].class, "kind-1");
        assert_eq!(first.title, "2026-03-01: 4 welcome, 4 nudge");
    }
}
