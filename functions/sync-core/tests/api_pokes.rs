//! When the service pokes: after every push that committed something (also one that
//! failed after an earlier commit of its own), never for a push that committed nothing.

use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use sync_core::api::ApiRequest;
use sync_core::memory_store::MemoryStore;
use sync_core::mutators::app;
use sync_core::poke::Poker;
use sync_core::store::{Changes, Commit, CommitOutcome, PushSnapshot, Store, StoreError, Version};
use sync_core::{SpaceId, SyncService};

#[derive(Default)]
struct CountingPoker(AtomicUsize);

#[async_trait::async_trait]
impl Poker for CountingPoker {
    async fn poke(&self, _space: &SpaceId) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Fails every commit after the first `allowed`.
struct FailingAfter {
    inner: MemoryStore,
    allowed: usize,
    commits: AtomicUsize,
}

#[async_trait::async_trait]
impl Store for FailingAfter {
    async fn create_space(&self, space: &SpaceId) -> Result<bool, StoreError> {
        self.inner.create_space(space).await
    }
    async fn space_version(&self, space: &SpaceId) -> Result<Option<Version>, StoreError> {
        self.inner.space_version(space).await
    }
    async fn push_snapshot(
        &self,
        space: &SpaceId,
        group: &str,
        clients: &[String],
    ) -> Result<Option<PushSnapshot>, StoreError> {
        self.inner.push_snapshot(space, group, clients).await
    }
    async fn get_entry(&self, space: &SpaceId, key: &str) -> Result<Option<Value>, StoreError> {
        self.inner.get_entry(space, key).await
    }
    async fn scan_entries(
        &self,
        space: &SpaceId,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<(String, Value)>, StoreError> {
        self.inner.scan_entries(space, prefix, limit).await
    }
    async fn commit(&self, space: &SpaceId, commit: &Commit) -> Result<CommitOutcome, StoreError> {
        if self.commits.fetch_add(1, Ordering::SeqCst) >= self.allowed {
            return Err(StoreError::Unavailable("injected failure".into()));
        }
        self.inner.commit(space, commit).await
    }
    async fn changes(
        &self,
        space: &SpaceId,
        group: &str,
        since: Version,
        upto: Version,
    ) -> Result<Changes, StoreError> {
        self.inner.changes(space, group, since, upto).await
    }
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
    let store = Arc::new(FailingAfter {
        inner: MemoryStore::new(),
        allowed: usize::MAX,
        commits: AtomicUsize::new(0),
    });
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
    let store = Arc::new(FailingAfter {
        inner: MemoryStore::new(),
        allowed: 1,
        commits: AtomicUsize::new(0),
    });
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
