//! Planning: the occurrences a policy wants for an entity, as a pure function of the policy and
//! the entity's anchors, attributes, zone and id. `decide` compares this plan with the active
//! reminders to arm, move or retire occurrences.
//!
//! Two phases. First every rule gives the dates of its slots (an anchor and an offset, a series,
//! a pattern over a series). Then times of day are resolved in date order across all rules,
//! because some constraints span rules: a spread group shares the window's hours between the
//! rules that name it, and the policy's minimum gap separates consecutive occurrences. Every
//! draw is seeded by stable names, so the same entity always gets the same plan.

use std::collections::BTreeMap;

use chrono::{Days, NaiveTime, Timelike};

use crate::policy::{LocalTime, PerPeriod, Rule, SERIES_LEN_MAX, Step, TimeOfDay, Truncate};
use crate::seed::Draw;
use crate::{AttrValue, Entity, Policy, RuleName, Span, Timestamp};

/// One occurrence the plan wants: rule, position in the rule's series, and instant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Planned {
    pub rule: RuleName,
    pub slot: u32,
    pub kind: String,
    pub at: Timestamp,
}

const MINUTES_PER_HOUR: u32 = 60;
const MINUTES_PER_DAY: u32 = 24 * MINUTES_PER_HOUR;
const MS_PER_DAY: i64 = 86_400_000;
/// How many days a window draw may move forward (day 0 already past its window, a minimum gap
/// filling a day) before the computed date's window is used as it is.
const WINDOW_DAYS_AHEAD_MAX: u64 = 7;

/// Every occurrence the policy's rules give for `entity`, rule by rule, slot by slot.
pub fn plan(policy: &Policy, entity: &Entity) -> Vec<Planned> {
    let mut dated: Vec<Dated> = Vec::new();
    for (order, rule) in policy.rules.iter().enumerate() {
        if crate::conditions::first_false(&rule.applies_when, rule, entity, None).is_some() {
            continue;
        }
        // A kind an enqueue kill switch kept out when the entity was created.
        if entity
            .attributes
            .get(crate::policy::NOT_ENQUEUED)
            .is_some_and(|kinds| kinds.as_list().contains(&rule.kind))
        {
            continue;
        }
        dated.extend(
            series(rule, entity)
                .into_iter()
                .filter(|(slot, _)| kept_by_pattern(rule, *slot))
                .map(|(slot, base)| Dated {
                    order,
                    rule,
                    slot,
                    base,
                }),
        );
    }
    dated.sort_by_key(|d| (d.base, d.order, d.slot));
    let mut times = TimesOfDay::new(policy, entity);
    let mut planned: Vec<(usize, Planned)> = dated
        .into_iter()
        .filter_map(|d| {
            let at = match d.base {
                // Beyond the range already: no time of day can bring it back.
                Timestamp::MAX => Timestamp::MAX,
                base => truncate(d.rule.truncate, times.resolve(d.rule, d.slot, base)),
            };
            if beyond_until(d.rule, entity, at) || at_or_after_not_after(d.rule, entity, at) {
                return None;
            }
            Some((
                d.order,
                Planned {
                    rule: d.rule.name.clone(),
                    slot: d.slot,
                    kind: d.rule.kind.clone(),
                    at,
                },
            ))
        })
        .collect();
    planned.sort_by_key(|(order, p)| (*order, p.slot));
    planned.into_iter().map(|(_, p)| p).collect()
}

/// A rule's slot with its computed instant before the time of day is applied.
struct Dated<'a> {
    order: usize,
    rule: &'a Rule,
    slot: u32,
    base: Timestamp,
}

/// Whether `at` is past the rule's series bound (at or past it when the bound is exclusive).
fn beyond_until(rule: &Rule, entity: &Entity, at: Timestamp) -> bool {
    let exclusive = rule.until().is_some_and(|until| until.exclusive);
    until(rule, entity).is_some_and(|until| if exclusive { at >= until } else { at > until })
}

/// Whether `at` is at or past the rule's `not_after` bound (when its anchor is set).
fn at_or_after_not_after(rule: &Rule, entity: &Entity, at: Timestamp) -> bool {
    rule.not_after
        .as_ref()
        .and_then(|bound| {
            entity
                .anchors
                .get(&bound.anchor)
                .and_then(|anchor| anchor.checked_add(bound.offset))
        })
        .is_some_and(|bound| at >= bound)
}

fn until(rule: &Rule, entity: &Entity) -> Option<Timestamp> {
    let bound = &rule.until()?.bound;
    entity
        .anchors
        .get(&bound.anchor)
        .and_then(|at| at.checked_add(bound.offset))
}

/// The slots of a rule and their instants. A rule whose anchor is not set plans nothing; so does
/// a series bounded by an anchor that is not set (it has no end yet).
///
/// An instant past the last one tickler represents is given as [`Timestamp::MAX`] (for a
/// series, the first such slot, which ends it), so the occurrence gets a record that says so.
fn series(rule: &Rule, entity: &Entity) -> Vec<(u32, Timestamp)> {
    let Some(anchor) = entity.anchors.get(&rule.anchor) else {
        return Vec::new();
    };
    let Some(first) = anchor.checked_add(rule.offset) else {
        return beyond_range(rule.offset);
    };
    let Some(repeat) = rule.repeat() else {
        return vec![(0, first)];
    };
    if repeat.until.is_some() && until(rule, entity).is_none() {
        return Vec::new();
    }
    let slots = [repeat.count, count_of(rule, entity)]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(SERIES_LEN_MAX)
        .min(SERIES_LEN_MAX);
    let mut instants = Vec::new();
    for slot in 0..slots {
        let Some(base) = step(repeat.step, slot).and_then(|offset| first.checked_add(offset))
        else {
            instants.push((slot, Timestamp::MAX));
            break;
        };
        if beyond_until(rule, entity, base) {
            break;
        }
        instants.push((slot, base));
    }
    instants
}

/// Slot 0 beyond the range, when a forward offset overflows it (a negative one that falls
/// before 1970 plans nothing: it is in the past).
fn beyond_range(offset: Span) -> Vec<(u32, Timestamp)> {
    if offset.is_negative() {
        Vec::new()
    } else {
        vec![(0, Timestamp::MAX)]
    }
}

/// The offset of slot `slot` from the first occurrence.
fn step(step: Step, slot: u32) -> Option<Span> {
    match step {
        Step::Every(every) => every.checked_mul(i64::from(slot)),
        Step::PerPeriod(PerPeriod { times, period }) => {
            let period_ms = period.as_millis();
            let whole = i64::from(slot / times).checked_mul(period_ms)?;
            let mut within = i64::from(slot % times) * period_ms / i64::from(times);
            if period_ms % MS_PER_DAY == 0 {
                // "3 a week" means days 0, 2 and 4, not every 56 hours.
                within -= within % MS_PER_DAY;
            }
            Some(Span::from_millis(whole.checked_add(within)?))
        }
    }
}

fn kept_by_pattern(rule: &Rule, slot: u32) -> bool {
    rule.repeat()
        .and_then(|repeat| repeat.pattern.as_ref())
        .is_none_or(|pattern| pattern.slots.contains(&(slot % pattern.period)))
}

fn truncate(truncate: Truncate, at: Timestamp) -> Timestamp {
    match truncate {
        Truncate::None => at,
        Truncate::Hour => at.truncate_to_hour(),
    }
}

/// Resolves times of day in date order, carrying what spans occurrences: the last planned window
/// instant (for the minimum gap) and each spread group's unused hours.
struct TimesOfDay<'a> {
    policy: &'a Policy,
    entity: &'a Entity,
    previous: Option<Timestamp>,
    spreads: BTreeMap<String, Spread>,
}

impl<'a> TimesOfDay<'a> {
    fn new(policy: &'a Policy, entity: &'a Entity) -> TimesOfDay<'a> {
        TimesOfDay {
            policy,
            entity,
            previous: None,
            spreads: BTreeMap::new(),
        }
    }

    fn resolve(&mut self, rule: &Rule, slot: u32, base: Timestamp) -> Timestamp {
        let zone = self.entity.zone;
        let date = zone.local(base).date();
        let preferred = self.preferred(rule);
        match &rule.at {
            TimeOfDay::Exact => preferred.map_or(base, |time| at_minute(zone, date, time.minute())),
            TimeOfDay::Local {
                time,
                next,
                spread,
                spread_by,
            } => {
                let minute = preferred.unwrap_or(*time).minute();
                // The spread is real time after the local time's instant, so the slot is one
                // hour long on a DST day too and may run past midnight.
                let spread = self.spread_after(*spread, spread_by.as_deref());
                let at = at_minute(zone, date, minute).saturating_add(spread);
                match date.checked_add_days(Days::new(1)) {
                    // `next`: strictly after the computed instant, so a cycle anchored at the moment
                    // the previous one fired (08:00) lands on tomorrow's 08:00, not on itself.
                    Some(tomorrow) if *next && at <= base => {
                        at_minute(zone, tomorrow, minute).saturating_add(spread)
                    }
                    _ => at,
                }
            }
            TimeOfDay::Window { start, end, spread } => {
                let at = self.window(
                    rule,
                    slot,
                    base,
                    (*start, *end),
                    spread.as_deref(),
                    preferred,
                );
                self.previous = Some(at);
                at
            }
        }
    }

    /// Whole minutes after a local time's instant, fewer than `spread`, drawn once per entity
    /// (or per value of `spread_by`): every rule and day of the entity uses the same offset, so
    /// its messages of one slot go together.
    fn spread_after(&self, spread: Option<Span>, spread_by: Option<&str>) -> Span {
        let Some(spread) = spread else {
            return Span::ZERO;
        };
        let minutes = (spread.as_millis() / 60_000).max(1) as u64;
        let key = match spread_by.and_then(|name| self.entity.attributes.get(name)) {
            Some(AttrValue::Text(value)) => value.as_str(),
            _ => self.entity.id.as_str(),
        };
        let mut draw = Draw::new(self.policy.seed, &[b"spread", key.as_bytes()]);
        Span::from_millis(draw.below(minutes) as i64 * 60_000)
    }

    /// The entity's preferred time for this rule, if it set a valid one.
    fn preferred(&self, rule: &Rule) -> Option<LocalTime> {
        let name = rule.preferred_time.as_ref()?;
        match self.entity.attributes.get(name)? {
            AttrValue::Text(text) => LocalTime::parse(text).ok().filter(|t| !t.is_end_of_day()),
            _ => None,
        }
    }

    /// A minute of the window on the computed date or, when nothing is left of that day's window
    /// (the cadence starts after it, or the minimum gap fills it), on the next days'.
    fn window(
        &mut self,
        rule: &Rule,
        slot: u32,
        base: Timestamp,
        (start, end): (LocalTime, LocalTime),
        spread: Option<&str>,
        preferred: Option<LocalTime>,
    ) -> Timestamp {
        let zone = self.entity.zone;
        let first_date = zone.local(base).date();
        // Never before the cadence starts (day 0 uses what is left of its window), never closer
        // than the minimum gap to the previous occurrence.
        let anchor = self.entity.anchors.get(&rule.anchor).copied();
        let not_before = [
            anchor.filter(|a| zone.local(*a).date() == first_date),
            self.previous
                .zip(self.policy.min_gap)
                .map(|(previous, gap)| previous.saturating_add(gap)),
        ]
        .into_iter()
        .flatten()
        .max();
        let slot_text = slot.to_string();
        let mut draw = Draw::new(
            self.policy.seed,
            &[
                self.entity.id.as_str().as_bytes(),
                rule.name.as_str().as_bytes(),
                slot_text.as_bytes(),
            ],
        );
        let (start_minute, end_minute) = (start.minute(), end.minute());
        for days_ahead in 0..=WINDOW_DAYS_AHEAD_MAX {
            let Some(date) = first_date.checked_add_days(Days::new(days_ahead)) else {
                break;
            };
            let mut low = start_minute;
            if let Some(not_before) = not_before {
                let local = zone.local(not_before);
                if local.date() > date {
                    continue;
                }
                if local.date() == date {
                    low = low.max(minute_of_day_ceil(local.time()));
                }
            }
            if low >= end_minute {
                continue;
            }
            let minute = match spread {
                Some(group) => {
                    let spread = self
                        .spreads
                        .entry(group.to_owned())
                        .or_insert_with(|| Spread::new(start_minute, end_minute));
                    match spread.take(
                        self.policy.seed,
                        &self.entity.id,
                        group,
                        low,
                        end_minute,
                        &mut draw,
                    ) {
                        Some(minute) => minute,
                        None => continue,
                    }
                }
                None => low + draw.below(u64::from(end_minute - low)) as u32,
            };
            let drawn = at_minute(zone, date, minute);
            return match preferred {
                Some(time) => at_minute(zone, date, time.minute()),
                None => drawn,
            };
        }
        base
    }
}

/// A spread group's hours: a seeded permutation of the window's hours per round, each hour taken
/// once before the next round starts.
struct Spread {
    hours: Vec<u32>,
    round: u32,
    remaining: Vec<u32>,
}

impl Spread {
    fn new(start_minute: u32, end_minute: u32) -> Spread {
        let first = start_minute / MINUTES_PER_HOUR;
        let last = end_minute.div_ceil(MINUTES_PER_HOUR);
        Spread {
            hours: (first..last).collect(),
            round: 0,
            remaining: Vec::new(),
        }
    }

    /// The first unused hour (in this round's order) with room at or after `low`, and a minute in
    /// it; `None` when no unused hour has room on this day.
    fn take(
        &mut self,
        seed: u64,
        entity: &crate::EntityId,
        group: &str,
        low: u32,
        end: u32,
        draw: &mut Draw,
    ) -> Option<u32> {
        if self.remaining.is_empty() {
            self.remaining = self.permutation(seed, entity, group);
            self.round += 1;
        }
        let room = |hour: u32| {
            let from = (hour * MINUTES_PER_HOUR).max(low);
            let to = ((hour + 1) * MINUTES_PER_HOUR).min(end);
            (from < to).then_some((from, to))
        };
        let position = self
            .remaining
            .iter()
            .position(|hour| room(*hour).is_some())?;
        let hour = self.remaining.remove(position);
        let (from, to) = room(hour).expect("found with room");
        Some(from + draw.below(u64::from(to - from)) as u32)
    }

    fn permutation(&self, seed: u64, entity: &crate::EntityId, group: &str) -> Vec<u32> {
        let round_text = self.round.to_string();
        let mut draw = Draw::new(
            seed,
            &[
                entity.as_str().as_bytes(),
                b"spread",
                group.as_bytes(),
                round_text.as_bytes(),
            ],
        );
        let mut hours = self.hours.clone();
        // Fisher-Yates, with our own range mapping (see `seed`).
        for i in (1..hours.len()).rev() {
            let j = draw.below(i as u64 + 1) as usize;
            hours.swap(i, j);
        }
        hours
    }
}

fn minute_of_day(time: NaiveTime) -> u32 {
    time.hour() * MINUTES_PER_HOUR + time.minute()
}

fn minute_of_day_ceil(time: NaiveTime) -> u32 {
    let minute = minute_of_day(time);
    if time.second() > 0 || time.nanosecond() > 0 {
        minute + 1
    } else {
        minute
    }
}

/// The instant of a minute of a local date (the DST rules of `Zone::resolve` apply).
fn at_minute(zone: crate::Zone, date: chrono::NaiveDate, minute: u32) -> Timestamp {
    let time =
        NaiveTime::from_num_seconds_from_midnight_opt(minute.min(MINUTES_PER_DAY - 1) * 60, 0)
            .expect("a minute of the day is a valid time");
    zone.at_local(date, time)
}

/// What keeps slot `slot` of `rule`, last planned for `at`, out of the entity's plan now, when
/// it is a date or an attribute of the entity (rather than the rule's conditions, which
/// `conditions` describes, or an edited policy).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Exclusion {
    Anchor { anchor: String, bound: crate::Bound },
    Attribute { name: String },
}

pub fn exclusion(rule: &Rule, entity: &Entity, slot: u32, at: Timestamp) -> Option<Exclusion> {
    use crate::Bound;
    let anchor = |name: &str, bound| {
        Some(Exclusion::Anchor {
            anchor: name.to_owned(),
            bound,
        })
    };
    if !entity.anchors.contains_key(&rule.anchor) {
        return anchor(&rule.anchor, Bound::Cleared);
    }
    let repeat = rule.repeat();
    if repeat
        .and_then(|r| r.count)
        .is_some_and(|count| slot >= count)
    {
        return None; // the policy's own count: an edited policy
    }
    if let Some(name) = repeat.and_then(|r| r.count_attribute.as_ref())
        && count_of(rule, entity).is_some_and(|count| slot >= count)
    {
        return Some(Exclusion::Attribute { name: name.clone() });
    }
    if let Some(until) = rule.until() {
        if !entity.anchors.contains_key(&until.bound.anchor) {
            return anchor(&until.bound.anchor, Bound::Cleared);
        }
        let in_series = series(rule, entity).iter().any(|(s, _)| *s == slot);
        if !in_series || beyond_until(rule, entity, at) {
            let bound = if until.exclusive {
                Bound::UntilExclusive
            } else {
                Bound::Until
            };
            return anchor(&until.bound.anchor, bound);
        }
    }
    if let Some(bound) = &rule.not_after
        && at_or_after_not_after(rule, entity, at)
    {
        return anchor(&bound.anchor, Bound::NotAfter);
    }
    let kept_out = entity
        .attributes
        .get(crate::policy::NOT_ENQUEUED)
        .is_some_and(|kinds| kinds.as_list().contains(&rule.kind));
    kept_out.then(|| Exclusion::Attribute {
        name: crate::policy::NOT_ENQUEUED.to_owned(),
    })
}

/// The series length a count attribute allows, if the rule has one.
fn count_of(rule: &Rule, entity: &Entity) -> Option<u32> {
    rule.repeat()
        .and_then(|repeat| repeat.count_attribute.as_ref())
        .map(|name| match entity.attributes.get(name) {
            Some(AttrValue::Int(count)) => u32::try_from(*count).unwrap_or(0),
            _ => 0,
        })
}
