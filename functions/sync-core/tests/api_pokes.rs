//! When the service pokes: after every push that committed something (also one that
//! failed after an earlier commit of its own), never for a push that committed nothing.

use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use store_conformance::ScriptedStore;
use sync_core::api::ApiRequest;
use sync_core::memory_store::MemoryStore;
use sync_core::mutators::app;
use sync_core::poke::Poker;
use sync_core::store::{Store, StoreError};
use sync_core::{SpaceId, SyncService};

#[derive(Default)]
struct CountingPoker(AtomicUsize);

#[async_trait::async_trait]
impl Poker for CountingPoker {
    async fn poke(&self, _space: &SpaceId) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A store whose commits fail after the first `allowed`.
fn failing_after(allowed: usize) -> Arc<ScriptedStore<MemoryStore>> {
    Arc::new(
        ScriptedStore::new(MemoryStore::new()).with_commits(move |n, _| {
            (n >= allowed).then(|| Err(StoreError::Unavailable("injected failure".into())))
        }),
    )
}

async fn push(svc: &SyncService, space: &str, mutations: Vec<Value>) -> u16 {
    let body = json!({"pushVersion":1,"clientGroupID":"g","mutations":mutations}).to_string();
    svc.handle(ApiRequest {
        method: "POST",
        path: "/api/replicache/push",
        space_id: Some(space),
        body: body.as_bytes(),
        accepts_gzip: false,
        user: "",
    })
    .await
    .status
}

fn set_items(range: std::ops::RangeInclusive<u64>) -> Vec<Value> {
    range
        .map(|i| json!({"clientID":"c","id":i,"name":"setItem","args":{"key":format!("k{i}"),"value":i}}))
        .collect()
}

#[tokio::test]
async fn pokes_follow_commits() {
    let poker = Arc::new(CountingPoker::default());
    let store = failing_after(usize::MAX);
    let svc = SyncService::new(store.clone(), Arc::new(app::registry()), poker.clone());
    let space = SpaceId::generate();
    store.create_space(&space).await.unwrap();

    assert_eq!(push(&svc, space.as_str(), set_items(1..=2)).await, 200);
    assert_eq!(poker.0.load(Ordering::SeqCst), 1);
    // The same mutations again: duplicates, nothing committed, no poke.
    assert_eq!(push(&svc, space.as_str(), set_items(1..=2)).await, 200);
    assert_eq!(poker.0.load(Ordering::SeqCst), 1);
    // A push with nothing in it: no poke either.
    assert_eq!(push(&svc, space.as_str(), vec![]).await, 200);
    assert_eq!(poker.0.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_push_failing_after_a_commit_still_pokes() {
    let poker = Arc::new(CountingPoker::default());
    let store = failing_after(1);
    let svc = SyncService::new(store.clone(), Arc::new(app::registry()), poker.clone());
    let space = SpaceId::generate();
    store.create_space(&space).await.unwrap();
    // 150 distinct keys need two commits; the second fails.
    assert_eq!(push(&svc, space.as_str(), set_items(1..=150)).await, 503);
    assert_eq!(
        poker.0.load(Ordering::SeqCst),
        1,
        "the first commit stands and must be poked"
    );
    assert_eq!(store.space_version(&space).await.unwrap(), Some(1));
}
