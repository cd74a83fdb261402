//! Fuzzing of push and pull bodies and of mutator args through the API, over the
//! in-memory store: see `store_conformance::fuzz` for what is generated and checked.
//! A longer run: `FUZZ_CASES=100000 cargo test -p sync-core --test fuzz --release`.

use std::sync::Arc;
use store_conformance::fuzz;
use sync_core::memory_store::MemoryStore;

#[test]
fn fuzz_api_over_memory_store() {
    fuzz::run_fuzz(Arc::new(MemoryStore::new()), fuzz::cases_from_env(300));
}
