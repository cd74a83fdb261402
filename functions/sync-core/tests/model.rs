//! The engine against the protocol's reference model (see `store_conformance::model`), on
//! the in-memory store. `PROPTEST_CASES` overrides the number of cases.

use std::sync::Arc;
use store_conformance::model::{model_cases, run_model_test, runtime};
use sync_core::memory_store::MemoryStore;

#[test]
fn memory_store_matches_the_model() {
    let rt = runtime();
    run_model_test(&rt, Arc::new(MemoryStore::new()), model_cases(256));
}
