//! The conformance suite, run against both stores.

use tickler_core::EntityId;
use tickler_store::conformance::Fixture;
use tickler_store::{SledStore, Store};

mod memory {
    tickler_store::conformance_tests!(tickler_store::MemoryStore::new);
}

/// A sled store in a temporary directory that lives as long as the store.
struct SledFixture {
    store: SledStore,
    _dir: tempfile::TempDir,
}

impl SledFixture {
    fn new() -> SledFixture {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = SledStore::open(dir.path()).expect("a new sled store opens");
        SledFixture { store, _dir: dir }
    }
}

impl Fixture for SledFixture {
    fn store(&self) -> &dyn Store {
        &self.store
    }

    fn overwrite_event(&self, entity: &EntityId, seq: u64, bytes: &[u8]) {
        self.store
            .overwrite_event_for_tests(entity, seq, bytes)
            .expect("raw write");
    }
}

mod sled {
    tickler_store::conformance_tests!(super::SledFixture::new);
}
