//! The shared suite every Store adapter passes, against a real DynamoDB-compatible server.

mod support;

use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance() {
    let f = support::fixture("conformance").await;
    store_conformance::run_all(Arc::new(f.store.clone())).await;
}
