//! Fuzzing of push and pull bodies and of mutator args through the API, over SQLite: see
//! `store_conformance::fuzz`. A longer run:
//! `FUZZ_CASES=100000 cargo test -p store-sqlite --test fuzz --release`.

use std::sync::Arc;
use store_conformance::fuzz;
use store_sqlite::SqliteStore;

#[test]
fn fuzz_api_over_sqlite_store() {
    let store = SqliteStore::in_memory().expect("an in-memory SQLite store");
    fuzz::run_fuzz(Arc::new(store), fuzz::cases_from_env(200));
}
