use std::sync::Arc;
use store_sqlite::SqliteStore;
use sync_core::Store;

/// Every case of the suite: `run_all`, and the access cases, which `run_all` does not list
/// (yet).
async fn run_every_case(store: Arc<dyn Store>) {
    store_conformance::run_all(store.clone()).await;
    eprintln!("conformance: access_is_recorded_and_read_back");
    store_conformance::access_is_recorded_and_read_back(store.clone()).await;
    eprintln!("conformance: spaces_per_owner_are_limited");
    store_conformance::spaces_per_owner_are_limited(store.clone()).await;
    eprintln!("conformance: api_cross_user_access");
    store_conformance::api_cross_user_access(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_store_passes_the_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("sync.db")).unwrap();
    run_every_case(Arc::new(store)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_memory_store_passes_the_conformance_suite() {
    run_every_case(Arc::new(SqliteStore::in_memory().unwrap())).await;
}
