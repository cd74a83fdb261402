//! A store for tests that need storage to misbehave on cue: it delegates every call to an
//! inner store, after an optional delay, and lets a script decide commits and entry reads
//! first (a commit that loses the race or fails, a read the store refuses, a slow store).

use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use sync_core::SpaceId;
use sync_core::auth::{AccessChange, SpaceAccess};
use sync_core::store::{
    Commit, CommitOutcome, Created, Garbage, GarbageCutoffs, GcResumePoint, PullSnapshot, Purged,
    PushSnapshot, SpacePage, Store, StoreError, StoreLimits, Version,
};

/// Decides the commit numbered `n` (from 0): `None` lets it through to the inner store.
pub type CommitScript =
    Box<dyn Fn(usize, &Commit) -> Option<Result<CommitOutcome, StoreError>> + Send + Sync>;
/// Decides the read of an entry's key: `None` lets it through to the inner store.
pub type ReadScript = Box<dyn Fn(&str) -> Option<Result<Option<Value>, StoreError>> + Send + Sync>;

pub struct ScriptedStore<S> {
    inner: S,
    delay: Duration,
    commit_script: Option<CommitScript>,
    read_script: Option<ReadScript>,
    refuse_entries_with_snapshot: bool,
    commits: AtomicUsize,
}

impl<S: Store> ScriptedStore<S> {
    /// `inner` as it is, until a script or a delay is added.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            delay: Duration::ZERO,
            commit_script: None,
            read_script: None,
            refuse_entries_with_snapshot: false,
            commits: AtomicUsize::new(0),
        }
    }

    /// Every call first waits `delay`.
    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    pub fn with_commits(
        mut self,
        script: impl Fn(usize, &Commit) -> Option<Result<CommitOutcome, StoreError>>
        + Send
        + Sync
        + 'static,
    ) -> Self {
        self.commit_script = Some(Box::new(script));
        self
    }

    pub fn with_reads(
        mut self,
        script: impl Fn(&str) -> Option<Result<Option<Value>, StoreError>> + Send + Sync + 'static,
    ) -> Self {
        self.read_script = Some(Box::new(script));
        self
    }

    /// Refuses, permanently, every snapshot read that names entries (as DynamoDB refuses
    /// a transactional read over 4 MB); without entries it reads as the inner store.
    pub fn refusing_entries_with_snapshot(mut self) -> Self {
        self.refuse_entries_with_snapshot = true;
        self
    }

    /// Commits attempted so far.
    pub fn commits(&self) -> usize {
        self.commits.load(Ordering::SeqCst)
    }

    /// The store behind the scripts, to set up or inspect data directly.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    async fn pause(&self) {
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
    }
}

#[async_trait::async_trait]
impl<S: Store> Store for ScriptedStore<S> {
    fn limits(&self) -> StoreLimits {
        self.inner.limits()
    }
    async fn create_space_for(
        &self,
        space: &SpaceId,
        access: &SpaceAccess,
        owner_limit: Option<usize>,
    ) -> Result<Created, StoreError> {
        self.pause().await;
        self.inner
            .create_space_for(space, access, owner_limit)
            .await
    }
    async fn space_access(&self, space: &SpaceId) -> Result<Option<SpaceAccess>, StoreError> {
        self.pause().await;
        self.inner.space_access(space).await
    }
    async fn change_access(
        &self,
        space: &SpaceId,
        change: &AccessChange,
    ) -> Result<Option<SpaceAccess>, StoreError> {
        self.pause().await;
        self.inner.change_access(space, change).await
    }
    async fn space_version(&self, space: &SpaceId) -> Result<Option<Version>, StoreError> {
        self.pause().await;
        self.inner.space_version(space).await
    }
    async fn push_snapshot_with_entries(
        &self,
        space: &SpaceId,
        group: &str,
        clients: &[String],
        entry_keys: &[String],
    ) -> Result<Option<(PushSnapshot, HashMap<String, Option<Value>>)>, StoreError> {
        if self.refuse_entries_with_snapshot && !entry_keys.is_empty() {
            return Err(StoreError::Rejected(
                "the entries are too big to read together".into(),
            ));
        }
        // Through this store's own snapshot read (its delay and scripts); the mutators
        // read the entries.
        Ok(self
            .push_snapshot(space, group, clients)
            .await?
            .map(|snapshot| (snapshot, HashMap::new())))
    }
    async fn push_snapshot(
        &self,
        space: &SpaceId,
        group: &str,
        clients: &[String],
    ) -> Result<Option<PushSnapshot>, StoreError> {
        self.pause().await;
        self.inner.push_snapshot(space, group, clients).await
    }
    async fn get_entry(&self, space: &SpaceId, key: &str) -> Result<Option<Value>, StoreError> {
        self.pause().await;
        if let Some(decided) = self.read_script.as_ref().and_then(|script| script(key)) {
            return decided;
        }
        self.inner.get_entry(space, key).await
    }
    async fn scan_entries(
        &self,
        space: &SpaceId,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<(String, Value)>, StoreError> {
        self.pause().await;
        self.inner.scan_entries(space, prefix, limit).await
    }
    async fn commit(&self, space: &SpaceId, commit: &Commit) -> Result<CommitOutcome, StoreError> {
        self.pause().await;
        let n = self.commits.fetch_add(1, Ordering::SeqCst);
        if let Some(decided) = self
            .commit_script
            .as_ref()
            .and_then(|script| script(n, commit))
        {
            return decided;
        }
        self.inner.commit(space, commit).await
    }
    async fn pull_snapshot(
        &self,
        space: &SpaceId,
        group: &str,
        since: Version,
    ) -> Result<Option<PullSnapshot>, StoreError> {
        self.pause().await;
        self.inner.pull_snapshot(space, group, since).await
    }
    async fn list_spaces(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<SpacePage, StoreError> {
        self.pause().await;
        self.inner.list_spaces(after, limit).await
    }
    async fn find_garbage(
        &self,
        space: &SpaceId,
        cutoffs: &GarbageCutoffs,
    ) -> Result<Option<Garbage>, StoreError> {
        self.pause().await;
        self.inner.find_garbage(space, cutoffs).await
    }
    async fn purge(
        &self,
        space: &SpaceId,
        tombstones: &[(String, Version)],
        idle_clients: &[(String, String)],
        clients_idle_before_ms: u64,
    ) -> Result<Purged, StoreError> {
        self.pause().await;
        self.inner
            .purge(space, tombstones, idle_clients, clients_idle_before_ms)
            .await
    }

    async fn gc_resume_point(&self) -> Result<Option<GcResumePoint>, StoreError> {
        self.inner.gc_resume_point().await
    }

    async fn set_gc_resume_point(&self, point: Option<&GcResumePoint>) -> Result<(), StoreError> {
        self.inner.set_gc_resume_point(point).await
    }
}
