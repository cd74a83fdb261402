//! The engine against the protocol's reference model (see `store_conformance::model`), on
//! SQLite in memory and in a file. `PROPTEST_CASES` overrides the number of cases.

use std::sync::Arc;
use store_conformance::model::{model_cases, run_model_test, runtime};
use store_sqlite::SqliteStore;

#[test]
fn in_memory_store_matches_the_model() {
    let rt = runtime();
    let store = SqliteStore::in_memory().expect("an in-memory store");
    run_model_test(&rt, Arc::new(store), model_cases(128));
}

#[test]
fn file_store_matches_the_model() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = SqliteStore::open(dir.path().join("model.db")).expect("a file store");
    let rt = runtime();
    run_model_test(&rt, Arc::new(store), model_cases(128));
}
