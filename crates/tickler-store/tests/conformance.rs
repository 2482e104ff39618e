//! The conformance suite, run against both stores (the sled one at both durability levels).

use tickler_core::EntityId;
use tickler_store::conformance::Fixture;
use tickler_store::{Durability, SledStore, Store};

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
        SledFixture::with(Durability::Process)
    }

    fn device() -> SledFixture {
        SledFixture::with(Durability::Device)
    }

    fn with(durability: Durability) -> SledFixture {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = SledStore::open_with(dir.path(), durability).expect("a new sled store opens");
        assert_eq!(store.durability(), durability);
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

mod sled_device {
    tickler_store::conformance_tests!(super::SledFixture::device);
}
