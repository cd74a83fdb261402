use std::sync::Arc;
use sync_core::memory_store::MemoryStore;

#[tokio::test]
async fn memory_store_passes_the_conformance_suite() {
    store_conformance::run_all(Arc::new(MemoryStore::new())).await;
}
