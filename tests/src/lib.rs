//! Shared helpers for the integration tests: an engine on a manual clock over a memory or sled
//! store, with the shipped config, readers for the file outbox, and a loopback HTTP server.

pub mod gate;
pub mod http;
pub mod postgres;
pub mod smtp;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tickler::config::Config;

use tickler::{
    AttrValue, CreateEntity, Engine, EntityId, ManualClock, MemoryStore, Message, SledStore, Store,
    Timestamp, Zone,
};

/// The repository's `config/` directory.
pub fn config_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../config")
}

/// The shipped `config/tickler.toml`, with its data directory moved to `data_dir`.
pub fn shipped_config(data_dir: &Path) -> Config {
    let mut config =
        Config::load(&config_dir().join("tickler.toml")).expect("the shipped config loads");
    config.data_dir = data_dir.to_owned();
    config
}

pub fn at(text: &str) -> Timestamp {
    Timestamp::parse(text).unwrap()
}

pub fn id(text: &str) -> EntityId {
    EntityId::parse(text).unwrap()
}

pub enum StoreKind {
    Memory(Arc<MemoryStore>),
    Sled,
    /// A store of the test's own (a wrapper that watches or refuses commits).
    Other(Arc<dyn Store>),
}

/// An engine on a manual clock, its data in `data_dir`.
pub struct Harness {
    pub engine: Engine,
    pub clock: ManualClock,
    pub data_dir: PathBuf,
    pub store: Arc<dyn Store>,
}

/// Where the tests' manual clock starts unless they say otherwise.
pub const TEST_START: &str = "2026-03-01T09:30:00Z";

impl Harness {
    /// An engine on a fresh memory store, its clock at [`TEST_START`].
    pub async fn in_memory(data_dir: &Path) -> Harness {
        let store = StoreKind::Memory(Arc::new(MemoryStore::new()));
        Harness::start(data_dir, store, at(TEST_START)).await
    }

    pub async fn start(data_dir: &Path, store: StoreKind, now: Timestamp) -> Harness {
        Harness::start_with(data_dir, store, now, |_| {}).await
    }

    /// Like `start`, with a chance to change the shipped config first.
    pub async fn start_with(
        data_dir: &Path,
        store: StoreKind,
        now: Timestamp,
        adjust: impl FnOnce(&mut Config),
    ) -> Harness {
        let mut config = shipped_config(data_dir);
        adjust(&mut config);
        let store: Arc<dyn Store> = match store {
            StoreKind::Memory(store) => store,
            StoreKind::Other(store) => store,
            StoreKind::Sled => Arc::new(SledStore::open(&data_dir.join("store")).unwrap()),
        };
        let clock = ManualClock::new(now);
        let engine = config
            .open_engine(store.clone(), Arc::new(clock.clone()))
            .await
            .unwrap();
        Harness {
            engine,
            clock,
            data_dir: data_dir.to_owned(),
            store,
        }
    }

    pub fn outbox(&self) -> Vec<Message> {
        read_outbox(&self.data_dir.join("outbox.jsonl"))
    }

    pub async fn stop(self) -> (Arc<dyn Store>, ManualClock) {
        self.engine.shutdown().await.unwrap();
        (self.store, self.clock)
    }
}

pub fn read_outbox(path: &Path) -> Vec<Message> {
    match std::fs::read_to_string(path) {
        Ok(text) => text
            .lines()
            .map(|line| serde_json::from_str(line).expect("outbox lines are messages"))
            .collect(),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(err) => panic!("cannot read {}: {err}", path.display()),
    }
}

/// A reviewer report of the due-date policy (due in the workflow's 10 days unless `due_at`).
pub fn reviewer_report(due_at: Option<&str>) -> CreateEntity {
    CreateEntity {
        policy: "due-date".into(),
        workflow: Some("reviewer-report".into()),
        recipient: "reviewer@example.org".into(),
        zone: Zone::parse("Europe/Paris").unwrap(),
        anchors: due_at
            .map(|d| BTreeMap::from([("due_at".to_owned(), at(d))]))
            .unwrap_or_default(),
        attributes: BTreeMap::from([(
            "title".to_owned(),
            AttrValue::Text("Review of manuscript 42".into()),
        )]),
    }
}

/// Copies a directory tree (a config to edit, a data directory to tamper with).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Joins contact `c-1` (a Nairobi phone number) to the karma group of the shipped contact
/// cadence, returning its entity.
pub async fn join_karma_contact(engine: &Engine) -> EntityId {
    let joined = engine
        .join_group(
            "karma",
            tickler::JoinGroup {
                contact: "c-1".into(),
                recipient: "tel:+254700000001".into(),
                zone: Zone::parse("Africa/Nairobi").unwrap(),
                anchors: BTreeMap::new(),
                attributes: BTreeMap::new(),
            },
        )
        .await
        .unwrap();
    joined[0].0.clone()
}
