//! A store for engine tests that need a commit to lose or fail on cue: it delegates every
//! call to an inner store, and asks a script about each commit first.

use serde_json::Value;
use std::sync::atomic::{AtomicUsize, Ordering};
use sync_core::SpaceId;
use sync_core::store::{
    Commit, CommitOutcome, PullSnapshot, PushSnapshot, Store, StoreError, Version,
};

/// Decides the commit numbered `n` (from 0): `None` lets it through to the inner store.
pub type CommitScript =
    Box<dyn Fn(usize) -> Option<Result<CommitOutcome, StoreError>> + Send + Sync>;

pub struct ScriptedCommits<S> {
    inner: S,
    script: CommitScript,
    commits: AtomicUsize,
}

impl<S: Store> ScriptedCommits<S> {
    pub fn new(
        inner: S,
        script: impl Fn(usize) -> Option<Result<CommitOutcome, StoreError>> + Send + Sync + 'static,
    ) -> Self {
        Self {
            inner,
            script: Box::new(script),
            commits: AtomicUsize::new(0),
        }
    }

    /// Commits attempted so far.
    pub fn commits(&self) -> usize {
        self.commits.load(Ordering::SeqCst)
    }
}

#[async_trait::async_trait]
impl<S: Store> Store for ScriptedCommits<S> {
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
        let n = self.commits.fetch_add(1, Ordering::SeqCst);
        match (self.script)(n) {
            Some(decided) => decided,
            None => self.inner.commit(space, commit).await,
        }
    }
    async fn pull_snapshot(
        &self,
        space: &SpaceId,
        group: &str,
        since: Version,
    ) -> Result<Option<PullSnapshot>, StoreError> {
        self.inner.pull_snapshot(space, group, since).await
    }
}
