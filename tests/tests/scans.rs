//! Scans of the store: a backfill reads every waiting timer once however many share an instant,
//! a group's re-plan reads the group's members, not the store, and a restart is ready after one
//! page of the timer index, then fires everything overdue.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use tickler::store::{Error as StoreError, TimerEntry, forward_store_methods};
use tickler::{
    CallbackChannel, Catalog, Channel, CreateEntity, Engine, EntityId, ManualClock, MemoryStore,
    PAGE_LEN, PauseScope, Policy, Span, Store, Templates, Zone,
};
use tickler_tests::{at, reviewer_report, shipped_config};

/// A policy with one rule at its anchor `due_at`, for entities of kind `kind`.
fn one_rule_policy(name: &str, kind: &str) -> Policy {
    Policy::from_toml(&format!(
        r#"
        name = "{name}"
        version = 1
        entity_kind = "{kind}"
        [anchors.due_at]
        [[rules]]
        name = "on-due"
        kind = "due"
        anchor = "due_at"
        template = "t"
        "#
    ))
    .unwrap()
}

async fn engine_with(policies: Vec<Policy>, store: Arc<dyn Store>) -> Engine {
    engine_at(policies, store, "2026-03-01T00:00:00Z").await
}

async fn engine_at(policies: Vec<Policy>, store: Arc<dyn Store>, start: &str) -> Engine {
    let templates = Templates::from_sources(BTreeMap::from([
        ("t.subject.j2".to_owned(), "Due".to_owned()),
        ("t.text.j2".to_owned(), "Due {{ entity.key }}".to_owned()),
    ]))
    .unwrap();
    let sink: Arc<dyn Channel> = Arc::new(CallbackChannel(|_: &tickler::Message| {
        Ok("accepted".to_owned())
    }));
    Engine::builder()
        .store(store)
        .clock(Arc::new(ManualClock::new(at(start))))
        .catalog(Catalog::new(policies, templates).unwrap())
        .channel("file", sink)
        .open()
        .await
        .unwrap()
}

fn due_at(instant: &str) -> CreateEntity {
    CreateEntity {
        policy: String::new(),
        workflow: None,
        recipient: "someone@example.org".into(),
        zone: Zone::UTC,
        anchors: BTreeMap::from([("due_at".to_owned(), at(instant))]),
        attributes: BTreeMap::new(),
    }
}

/// Creates `count` entities of `policy` at once, ids `<kind>/<n>`.
async fn create_many(engine: &Engine, policy: &str, kind: &str, count: usize, instant: &str) {
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..count {
        let engine = engine.clone();
        let id = EntityId::parse(&format!("{kind}/{n:05}")).unwrap();
        let mut create = due_at(instant);
        create.policy = policy.to_owned();
        tasks.spawn(async move { engine.create(&id, create).await.unwrap() });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
}

/// The old backfill resumed from the last instant it read, inclusively, with a page of 10,000:
/// ten thousand timers of another policy waiting at one instant made it read that page forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_reads_past_more_than_a_page_of_timers_waiting_at_one_instant() {
    let engine = engine_with(
        vec![
            one_rule_policy("chase", "chase"),
            one_rule_policy("nudge", "nudge"),
        ],
        Arc::new(MemoryStore::new()),
    )
    .await;
    for policy in ["chase", "nudge"] {
        engine
            .set_paused(&PauseScope::Policy(policy.into()), true)
            .await
            .unwrap();
    }
    let fillers = 10_000;
    assert!(fillers > PAGE_LEN);
    create_many(&engine, "chase", "chase", fillers, "2026-03-02T00:00:00Z").await;
    // A longer id sorts after every filler at the same instant.
    let late = EntityId::parse("nudge/the-last-one").unwrap();
    let mut create = due_at("2026-03-02T00:00:00Z");
    create.policy = "nudge".into();
    engine.create(&late, create).await.unwrap();
    engine.advance(Span::days(2)).await.unwrap();

    // A hang is the failure this test exists for: turn it into one.
    let backfill = tokio::time::timeout(
        Duration::from_secs(600),
        engine.backfill(
            "nudge",
            at("2026-03-01T00:00:00Z"),
            at("2026-03-03T00:00:00Z"),
        ),
    )
    .await
    .expect("the backfill ended")
    .unwrap();
    let woken: Vec<String> = backfill
        .woken
        .iter()
        .map(|(entity, occurrence)| format!("{entity} {occurrence}"))
        .collect();
    assert_eq!(woken, ["nudge/the-last-one on-due#0"]);
    engine.shutdown().await.unwrap();
}

/// Counts the entity ids the store hands out by listing (the entity list and the indexes).
struct Counting {
    inner: MemoryStore,
    listed: AtomicU64,
}

impl Store for Counting {
    fn entities_after(
        &self,
        after: Option<&EntityId>,
        limit: usize,
    ) -> Result<Vec<EntityId>, StoreError> {
        let page = self.inner.entities_after(after, limit)?;
        self.listed.fetch_add(page.len() as u64, Ordering::SeqCst);
        Ok(page)
    }

    fn index_members(
        &self,
        index: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let page = self.inner.index_members(index, after, limit)?;
        self.listed.fetch_add(page.len() as u64, Ordering::SeqCst);
        Ok(page)
    }

    forward_store_methods!(inner: commit, commit_group, flush, last_seq, read_events, snapshot,
        past_events, past_event, timers_after, timers_from, meta, set_meta, stats);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_replan_reads_the_groups_members_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Counting {
        inner: MemoryStore::new(),
        listed: AtomicU64::new(0),
    });
    let config = shipped_config(dir.path());
    let clock = ManualClock::new(at("2026-03-01T09:30:00Z"));
    let engine = config
        .open_engine(store.clone(), Arc::new(clock))
        .await
        .unwrap();
    for n in 0..2_000 {
        let id = EntityId::parse(&format!("due/other-{n:04}")).unwrap();
        engine.create(&id, reviewer_report(None)).await.unwrap();
    }
    for contact in ["ana", "bo", "cy"] {
        let join = tickler::JoinGroup {
            contact: contact.into(),
            recipient: format!("+3361234567{}", contact.len()),
            zone: Zone::parse("Europe/Paris").unwrap(),
            anchors: BTreeMap::new(),
            attributes: BTreeMap::new(),
        };
        engine.join_group("karma", join).await.unwrap();
    }
    store.listed.store(0, Ordering::SeqCst);
    engine.replan_group("karma").await.unwrap();
    assert_eq!(
        store.listed.load(Ordering::SeqCst),
        3,
        "a re-plan of three members listed more ids than theirs"
    );
    engine.shutdown().await.unwrap();
}

/// Lets the first page of the timer index through; a later page waits for `release` (the
/// engine is ready). If it waits in vain (ready needed it: `Engine::open` runs the timer's
/// start on the caller's task, so it could never return), it notes that and goes on after a
/// while, so such a build fails this test instead of hanging.
struct FirstTimerPageOnly {
    inner: Arc<dyn Store>,
    pages: AtomicU64,
    released: (Mutex<bool>, Condvar),
    read_before_ready: AtomicU64,
}

impl FirstTimerPageOnly {
    fn release(&self) {
        *self.released.0.lock().unwrap() = true;
        self.released.1.notify_all();
    }
}

impl Store for FirstTimerPageOnly {
    fn timers_after(
        &self,
        after: Option<&TimerEntry>,
        limit: usize,
    ) -> Result<Vec<TimerEntry>, StoreError> {
        if self.pages.fetch_add(1, Ordering::SeqCst) > 0 {
            let (released, wake) = &self.released;
            let released = released.lock().unwrap();
            let (released, _) = wake
                .wait_timeout_while(released, Duration::from_secs(20), |released| !*released)
                .unwrap();
            if !*released {
                self.read_before_ready.fetch_add(1, Ordering::SeqCst);
            }
        }
        self.inner.timers_after(after, limit)
    }

    forward_store_methods!(inner: commit, commit_group, flush, last_seq, read_events, snapshot,
        past_events, past_event, timers_from, entities_after, index_members, meta, set_meta,
        stats);
}

/// A restart with two pages and more of overdue timers (issue 24: with 100k overdue, reading
/// them all took a third of the time to ready) is ready after the first page, and every
/// overdue timer then fires once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_is_ready_after_one_page_of_overdue_timers_and_fires_them_all() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let overdue = 2 * 4_096 + 10;
    let engine = engine_with(vec![one_rule_policy("chase", "chase")], store.clone()).await;
    create_many(&engine, "chase", "chase", overdue, "2026-03-02T00:00:00Z").await;
    engine.shutdown().await.unwrap();

    let gated = Arc::new(FirstTimerPageOnly {
        inner: store.clone(),
        pages: AtomicU64::new(0),
        released: (Mutex::new(false), Condvar::new()),
        read_before_ready: AtomicU64::new(0),
    });
    let restarted = engine_at(
        vec![one_rule_policy("chase", "chase")],
        gated.clone(),
        "2026-03-03T00:00:00Z",
    )
    .await;
    gated.release();
    // Past events are write-once per occurrence, so their count says each timer fired once.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let stats = store.stats().unwrap();
        if stats.past_events == overdue as u64 && stats.timers == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{} of {overdue} overdue timers fired, {} timers left",
            stats.past_events,
            stats.timers
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(gated.read_before_ready.load(Ordering::SeqCst), 0);
    restarted.shutdown().await.unwrap();
}
