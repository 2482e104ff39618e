//! The shard log conformance suite, run against the memory log.

mod memory {
    tickler_cluster::shard_log_conformance_tests!(tickler_cluster::conformance::MemoryFixture::new);
}
