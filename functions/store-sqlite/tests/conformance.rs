use std::sync::Arc;
use store_sqlite::SqliteStore;
use sync_core::Store;

async fn run_every_case(store: Arc<dyn Store>) {
    store_conformance::run_all(store).await;
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
