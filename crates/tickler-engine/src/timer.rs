//! The timer actor: wakes entities when their occurrences fall due, durably across restarts.
//!
//! The durable truth is the store's timer index (due instant, entity, occurrence), written in
//! the same atomic commit as the events that arm or disarm a timer. This actor keeps only the
//! near future in memory, in a hierarchical wheel: every index entry due before `loaded_until`
//! is in the wheel (or being handled); later ones are paged in as time approaches them, so
//! memory follows the next `timer_horizon`, not the whole future.
//!
//! Start-up is a page-in from the beginning of the index: whatever is overdue after downtime
//! fires first, in due order, at no more than `fire_rate_max_per_s`; the entity then applies the
//! rule's misfire policy (send late within grace, or record "missed"). Only the first page is
//! read before the engine is ready; the rest follows a few pages per tick, between dispatches,
//! so a restart with 100k overdue does not wait for all of them to be read (`paging`).
//!
//! A wake carries a [`WakeTicket`]. The entity marks it done once it has handled the wake; a
//! ticket dropped without that (the actor died) puts the timer back, so a wake is never lost.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use tickler_core::{EntityId, OccurrenceId, Span, Timestamp};
use tickler_store::TimerEntry;
use tickler_wheel::Wheel;
use tokio::task::JoinHandle;

use crate::activity::ActivityGuard;
use crate::fire_batch::FireBatch;
use crate::options::EngineOptions;
use crate::rate_limit::RateLimit;
use crate::shared::Shared;

/// Index entries read per page when paging timers in.
const PAGE_LEN_MAX: usize = 4_096;
/// Pages read before the engine is ready, and per tick while a page-in is unfinished.
const PAGES_AT_START: usize = 1;
const PAGES_PER_TICK: usize = 4;
/// Wakes dispatched per tick, so one tick never monopolises the actor.
const WAKE_BATCH_MAX: usize = 4_096;
/// How long a wake whose entity failed to handle it waits before it is retried.
const WAKE_RETRY_DELAY: Span = Span::seconds(1);
/// With the budget spent, how soon (real time) the timer looks again.
const THROTTLE_RECHECK: Duration = Duration::from_millis(5);
/// After a store error while paging in, how soon (real time) the timer tries again.
const PAGE_IN_RETRY: Duration = Duration::from_millis(200);

type Key = (EntityId, OccurrenceId);

pub(crate) enum TimerMsg {
    /// An entity's commit changed its wakes (sent after the commit is durable): `insert` are in
    /// the index too, `leases` (attempts' lease ends) only here.
    Update {
        remove: Vec<TimerEntry>,
        insert: Vec<TimerEntry>,
        leases: Vec<TimerEntry>,
    },
    /// Time may have come for something: poll the wheel.
    Tick,
    /// Poll now and reply whether anything due now is still waiting (throttled).
    TickNow(RpcReplyPort<bool>),
    /// The earliest due instant of every pending timer, in memory or still in the index.
    NextDue(RpcReplyPort<Option<Timestamp>>),
    /// A wake was handled, failed (to be retried), or deferred (its delivery is paused).
    WakeEnded {
        key: Key,
        due: Timestamp,
        outcome: WakeOutcome,
    },
    /// Delivery was resumed: parked wakes go back to the wheel (and are parked again if their
    /// scope is still paused).
    Unpark,
    Status(RpcReplyPort<TimerStatus>),
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TimerStatus {
    /// Timers in memory.
    pub in_memory: usize,
    /// Wakes handed to entities and not yet handled.
    pub in_flight: usize,
    /// Every index entry due before this instant is in memory.
    pub loaded_until: Option<Timestamp>,
    /// Wakes held because their delivery is paused.
    pub parked: usize,
    pub next_due: Option<Timestamp>,
    /// Wakes dispatched since start.
    pub fired: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WakeOutcome {
    Handled,
    Failed,
    Deferred,
}

/// Proof that a wake was handed over; see the module docs.
pub(crate) struct WakeTicket {
    key: Option<Key>,
    due: Timestamp,
    timer: ActorRef<TimerMsg>,
    _work: ActivityGuard,
}

impl WakeTicket {
    /// The instant the wake was due at.
    pub fn due(&self) -> Timestamp {
        self.due
    }

    pub fn done(mut self) {
        self.end(WakeOutcome::Handled);
    }

    /// The occurrence's delivery is paused: the timer parks it until a resume.
    pub fn defer(mut self) {
        self.end(WakeOutcome::Deferred);
    }

    fn end(&mut self, outcome: WakeOutcome) {
        if let Some(key) = self.key.take() {
            let _ = self.timer.cast(TimerMsg::WakeEnded {
                key,
                due: self.due,
                outcome,
            });
        }
    }
}

impl Drop for WakeTicket {
    fn drop(&mut self) {
        self.end(WakeOutcome::Failed);
    }
}

pub(crate) struct TimerActor;

pub(crate) struct TimerState {
    shared: Arc<Shared>,
    wheel: Wheel<Key>,
    /// The last index entry paged in; the next page starts after it.
    cursor: Option<TimerEntry>,
    loaded_until: Timestamp,
    /// An unfinished page-in: every entry up to `cursor` is in memory, those after it and due
    /// before this instant are still to be read.
    paging: Option<Timestamp>,
    in_flight: HashSet<Key>,
    /// Wakes whose delivery is paused, with their due instants, until a resume.
    parked: BTreeMap<Key, Timestamp>,
    rate: RateLimit,
    driver: Option<(Timestamp, JoinHandle<()>)>,
    fired: u64,
    page_in_failed: bool,
}

impl Actor for TimerActor {
    type Msg = TimerMsg;
    type State = TimerState;
    type Arguments = Arc<Shared>;

    async fn pre_start(
        &self,
        _myself: ActorRef<TimerMsg>,
        shared: Arc<Shared>,
    ) -> Result<TimerState, ActorProcessingErr> {
        let now = shared.clock.now();
        let rate = shared.options.fire_rate_max_per_s;
        let mut state = TimerState {
            wheel: Wheel::new(millis(now)),
            cursor: None,
            loaded_until: Timestamp::EPOCH,
            paging: None,
            in_flight: HashSet::new(),
            parked: BTreeMap::new(),
            rate: RateLimit::new(rate, Instant::now()),
            driver: None,
            fired: 0,
            page_in_failed: false,
            shared,
        };
        state.page_in(now, PAGES_AT_START)?;
        tracing::info!(
            in_memory = state.wheel.len(),
            loaded_until = %state.loaded_until,
            "timer loaded from the index"
        );
        // The first tick comes from the engine once the timer is registered in `Shared`, so no
        // entity can commit (and look for the timer) before it is there.
        Ok(state)
    }

    async fn handle(
        &self,
        myself: ActorRef<TimerMsg>,
        message: TimerMsg,
        state: &mut TimerState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            TimerMsg::Update {
                remove,
                insert,
                leases,
            } => {
                state.update(remove, insert, leases);
                state.arm_driver(&myself);
            }
            TimerMsg::Tick => {
                state.tick(&myself);
            }
            TimerMsg::TickNow(reply) => {
                let waiting = state.tick(&myself);
                let _ = reply.send(waiting);
            }
            TimerMsg::NextDue(reply) => {
                let _ = reply.send(state.next_due());
            }
            TimerMsg::WakeEnded { key, due, outcome } => {
                state.in_flight.remove(&key);
                match outcome {
                    WakeOutcome::Handled => {}
                    WakeOutcome::Failed => {
                        let retry_at = state
                            .shared
                            .clock
                            .now()
                            .saturating_add(WAKE_RETRY_DELAY)
                            .max(due);
                        state.wheel.insert(key, millis(retry_at));
                    }
                    WakeOutcome::Deferred => {
                        state.parked.insert(key, due);
                    }
                }
                state.arm_driver(&myself);
            }
            TimerMsg::Unpark => {
                for (key, due) in std::mem::take(&mut state.parked) {
                    state.wheel.insert(key, millis(due));
                }
                let _ = myself.cast(TimerMsg::Tick);
            }
            TimerMsg::Status(reply) => {
                let _ = reply.send(TimerStatus {
                    in_memory: state.wheel.len(),
                    in_flight: state.in_flight.len(),
                    loaded_until: Some(state.loaded_until),
                    parked: state.parked.len(),
                    next_due: state.next_due(),
                    fired: state.fired,
                });
            }
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<TimerMsg>,
        state: &mut TimerState,
    ) -> Result<(), ActorProcessingErr> {
        if let Some((_, driver)) = state.driver.take() {
            driver.abort();
        }
        Ok(())
    }
}

impl TimerState {
    /// Applies an entity's changed wakes: removals first, then what is due within the horizon
    /// (later entries are paged in from the index), then leases whatever their instant (they
    /// are not in the index, so they would never be paged in).
    fn update(
        &mut self,
        remove: Vec<TimerEntry>,
        insert: Vec<TimerEntry>,
        leases: Vec<TimerEntry>,
    ) {
        for entry in remove {
            let key = (entry.entity, entry.occurrence);
            self.wheel.remove(&key);
            self.parked.remove(&key);
        }
        // While a page-in is unfinished, an entry at or before its cursor will not be read by
        // it: it goes to the wheel now. Those after the cursor are read when paging reaches them.
        let cursor = self.cursor.clone();
        let within = insert.into_iter().filter(|entry| {
            entry.due < self.loaded_until
                || (self.paging.is_some() && cursor.as_ref().is_some_and(|c| entry <= c))
        });
        for entry in within.chain(leases) {
            self.wheel
                .insert((entry.entity, entry.occurrence), millis(entry.due));
        }
    }

    /// Fires what is due, within the rate budget. Returns whether due wakes are still waiting.
    ///
    /// Never fails: a store error while paging in is logged and retried on the next tick, since
    /// a timer actor that stopped would silently stop every reminder.
    fn tick(&mut self, myself: &ActorRef<TimerMsg>) -> bool {
        // A clock that went backwards needs no special case: the wheel never returns an entry
        // whose deadline is after the `now` it is polled with.
        let now = self.shared.clock.now();
        let page_due = self.paging.is_some()
            || now.saturating_add(Span::from_millis(
                self.shared.options.timer_horizon.as_millis() / 2,
            )) >= self.loaded_until;
        if page_due && let Err(err) = self.page_in(now, PAGES_PER_TICK) {
            // What is already in memory still fires; paging is retried by the next tick.
            tracing::error!(error = %err, "cannot page timers in from the store; retrying");
            self.page_in_failed = true;
        }
        let room = wakes_in_flight_max(&self.shared.options).saturating_sub(self.in_flight.len());
        let budget = self.rate.take(WAKE_BATCH_MAX.min(room), Instant::now());
        let expired = self.wheel.poll(millis(now), budget);
        self.rate.give_back(budget - expired.len());
        let mut batch = FireBatch::default();
        for (key, due) in expired {
            let due =
                Timestamp::from_millis(due as i64).expect("wheel deadlines come from timestamps");
            self.dispatch(myself, key, due, &mut batch);
        }
        batch.start(&self.shared);
        let due_in_wheel = self
            .wheel
            .next_deadline()
            .is_some_and(|next| next <= millis(now));
        if due_in_wheel {
            self.retry_later(myself, THROTTLE_RECHECK);
        } else if std::mem::take(&mut self.page_in_failed) {
            self.retry_later(myself, PAGE_IN_RETRY);
        } else if self.paging.is_some() {
            let _ = myself.cast(TimerMsg::Tick);
        } else {
            self.arm_driver(myself);
        }
        // Entries still to be paged in may be due already: they count as waiting.
        due_in_wheel || self.paging.is_some()
    }

    fn dispatch(
        &mut self,
        myself: &ActorRef<TimerMsg>,
        key: Key,
        due: Timestamp,
        batch: &mut FireBatch,
    ) {
        self.in_flight.insert(key.clone());
        self.fired += 1;
        // A wake is never early (the wheel rounds up), but a clock set back can make it look so.
        let late_ms = self.shared.clock.now().since(due).as_millis().max(0);
        self.shared
            .metrics
            .wake(Duration::from_millis(late_ms as u64));
        let (entity, occurrence) = key.clone();
        let ticket = WakeTicket {
            key: Some(key),
            due,
            timer: myself.clone(),
            _work: self.shared.activity.begin(),
        };
        if let Err(err) = batch.wake(&self.shared, entity.clone(), occurrence, ticket) {
            // The ticket came back inside the error and was dropped: the timer is re-armed.
            tracing::warn!(entity = %entity, error = %err, "cannot wake entity");
        }
    }

    /// Pages index entries due before `now + timer_horizon` into the wheel, reading at most
    /// `pages_max` pages; an unfinished page-in is continued, towards its own end, by the next.
    fn page_in(&mut self, now: Timestamp, pages_max: usize) -> Result<(), tickler_store::Error> {
        let until = self
            .paging
            .take()
            .unwrap_or_else(|| now.saturating_add(self.shared.options.timer_horizon));
        let mut pages = 0;
        'pages: loop {
            if pages == pages_max {
                self.paging = Some(until);
                return Ok(());
            }
            pages += 1;
            let page = match self
                .shared
                .store
                .timers_after(self.cursor.as_ref(), PAGE_LEN_MAX)
            {
                Ok(page) => page,
                Err(err) => {
                    self.paging = Some(until);
                    return Err(err);
                }
            };
            let last_page = page.len() < PAGE_LEN_MAX;
            for entry in page {
                // At the end of the range `until` is the last instant itself, and a timer due
                // then must be paged in too, or the clock could reach it and never fire it.
                if entry.due > until || (entry.due == until && until != Timestamp::MAX) {
                    break 'pages;
                }
                let key = (entry.entity.clone(), entry.occurrence.clone());
                if !self.in_flight.contains(&key) && !self.parked.contains_key(&key) {
                    self.wheel.insert(key, millis(entry.due));
                }
                self.cursor = Some(entry);
            }
            if last_page {
                break;
            }
        }
        self.loaded_until = self.loaded_until.max(until);
        Ok(())
    }

    /// The earliest due instant, in memory or in the index beyond what is paged in.
    ///
    /// The index is read from `loaded_until`, not from the cursor: what is due before it is in
    /// memory already (in the wheel, in flight or parked), possibly at another instant than its
    /// index entry says (a failed wake waits for its retry; a paused one for a resume), and an
    /// entry inserted since the last page-in may sort after the cursor.
    fn next_due(&self) -> Option<Timestamp> {
        let in_memory = self
            .wheel
            .next_deadline()
            .and_then(|ms| Timestamp::from_millis(ms as i64));
        let in_index = match self.shared.store.timers_from(self.loaded_until, 1) {
            Ok(entries) => entries.into_iter().next().map(|entry| entry.due),
            Err(err) => {
                tracing::warn!(error = %err, "cannot read the timer index");
                None
            }
        };
        match (in_memory, in_index) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Makes sure a driver task will send a Tick at the next deadline (or when paging is due).
    fn arm_driver(&mut self, myself: &ActorRef<TimerMsg>) {
        let page_at = Timestamp::from_millis(
            self.loaded_until.as_millis() - self.shared.options.timer_horizon.as_millis() / 2,
        )
        .unwrap_or(Timestamp::EPOCH);
        let next = self
            .wheel
            .next_deadline()
            .and_then(|ms| Timestamp::from_millis(ms as i64))
            .map_or(page_at, |deadline| deadline.min(page_at));
        if let Some((target, driver)) = &self.driver
            && *target <= next
            && !driver.is_finished()
        {
            return;
        }
        if let Some((_, driver)) = self.driver.take() {
            driver.abort();
        }
        let clock = self.shared.clock.clone();
        let myself = myself.clone();
        let driver = tokio::spawn(async move {
            while clock.now() < next {
                clock.sleep_until(next).await;
            }
            let _ = myself.cast(TimerMsg::Tick);
        });
        self.driver = Some((next, driver));
    }

    /// Ticks again after `delay` of real time (throttled, or waiting for the store to recover).
    fn retry_later(&mut self, myself: &ActorRef<TimerMsg>, delay: Duration) {
        if let Some((_, driver)) = self.driver.take() {
            driver.abort();
        }
        let myself = myself.clone();
        let now = self.shared.clock.now();
        let driver = tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = myself.cast(TimerMsg::Tick);
        });
        self.driver = Some((now, driver));
    }
}

/// How many wakes may be handed to entities and not yet handled: `wake_in_flight_max`, but
/// never more than `actors_max`. Each wake keeps its entity's actor live until it is handled;
/// with more of them than the cap, the passivator asks thousands of busy actors to stop every
/// 50 ms (they refuse while busy, and are asked again). At `actors_max` 2,000 and 10,000 wakes
/// in flight, that churn halved the fire rate of an overload on the memory store, and after a
/// restart with 100k overdue the first delivery waited 385–532 ms for thousands of actors to
/// start (BENCHMARKS.md, "Wakes in flight").
fn wakes_in_flight_max(options: &EngineOptions) -> usize {
    options.wake_in_flight_max.min(options.actors_max)
}

fn millis(at: Timestamp) -> u64 {
    at.as_millis() as u64
}
