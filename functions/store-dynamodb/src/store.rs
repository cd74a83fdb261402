//! [`DynamoStore`]: the [`Store`] contract over one DynamoDB table (see [`crate::schema`]).
//!
//! Each job has its module: creating spaces and their access in [`crate::access`], reads
//! in [`crate::reads`], commits in [`crate::commit`], a pull's snapshot in
//! [`crate::pull`], what a failure means in [`crate::errors`], and retries in the SDK's
//! client (see [`crate::retries`]).
//!
//! DynamoDB applies a transaction item by item. Single-item and transactional reads are
//! serializable with it, but `Query` is only read-committed, and two reads one after the
//! other are not a snapshot: the space item can already show commit `v` while an entry
//! still shows its value before `v`. So a mutator's `get_entry` is a transactional read
//! (refused while a commit is being applied to the item), and the space item names the
//! items of the last commit so that a pull can wait for the ones its `Query` saw before
//! that commit landed on them.

use crate::capacity::{CapacityCounter, CapacityStats};
use crate::pull::PullStats;
use crate::schema::space_pk;
use aws_sdk_dynamodb::Client;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use sync_core::SpaceId;
use sync_core::auth::{AccessChange, SpaceAccess};
use sync_core::store::{
    Commit, CommitOutcome, Created, Garbage, GarbageCutoffs, GcResumePoint, PullSnapshot, Purged,
    PushSnapshot, SpacePage, Store, StoreError, Version,
};

/// The DynamoDB adapter. Cheap to clone (the SDK client is reference-counted).
///
/// Its calls are retried by `client`: build it with this crate ([`crate::client_from_env`],
/// [`crate::local_client`]), whose clients retry as [`crate::retries`] says.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
    pull_stats: Arc<PullStats>,
    capacity: CapacityCounter,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        // The store's own copy of the client reports what each request consumed.
        let capacity = CapacityCounter::default();
        Self {
            client: capacity.attach(&client),
            table: table.into(),
            pull_stats: Arc::default(),
            capacity,
        }
    }

    /// Capacity units DynamoDB reported for this store's requests, and the requests sent
    /// (shared by its clones; see [`crate::capacity`]).
    pub fn capacity_stats(&self) -> CapacityStats {
        self.capacity.stats()
    }

    /// How this store's pulls went (shared by its clones).
    pub fn pull_stats(&self) -> &PullStats {
        &self.pull_stats
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }
}

#[async_trait::async_trait]
impl Store for DynamoStore {
    async fn create_space_for(
        &self,
        space: &SpaceId,
        access: &SpaceAccess,
        owner_limit: Option<usize>,
    ) -> Result<Created, StoreError> {
        self.create_space_with(space, access, owner_limit).await
    }

    async fn space_access(&self, space: &SpaceId) -> Result<Option<SpaceAccess>, StoreError> {
        self.read_access(space).await
    }

    async fn change_access(
        &self,
        space: &SpaceId,
        change: &AccessChange,
    ) -> Result<Option<SpaceAccess>, StoreError> {
        self.update_access(space, change).await
    }

    async fn space_version(&self, space: &SpaceId) -> Result<Option<Version>, StoreError> {
        self.read_version(space).await
    }

    async fn push_snapshot(
        &self,
        space: &SpaceId,
        client_group_id: &str,
        client_ids: &[String],
    ) -> Result<Option<PushSnapshot>, StoreError> {
        Ok(self
            .read_push_snapshot(space, client_group_id, client_ids, &[])
            .await?
            .map(|(snapshot, _)| snapshot))
    }

    async fn push_snapshot_with_entries(
        &self,
        space: &SpaceId,
        client_group_id: &str,
        client_ids: &[String],
        entry_keys: &[String],
    ) -> Result<Option<(PushSnapshot, HashMap<String, Option<Value>>)>, StoreError> {
        self.read_push_snapshot(space, client_group_id, client_ids, entry_keys)
            .await
    }

    async fn get_entry(&self, space: &SpaceId, key: &str) -> Result<Option<Value>, StoreError> {
        self.read_entry(space, key).await
    }

    async fn scan_entries(
        &self,
        space: &SpaceId,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<(String, Value)>, StoreError> {
        self.scan(space, prefix, limit).await
    }

    async fn commit(&self, space: &SpaceId, commit: &Commit) -> Result<CommitOutcome, StoreError> {
        let outcome = self.write_commit(&space_pk(space.as_str()), commit).await?;
        tracing::debug!(space_id = %space, expected = commit.expected_version,
            next = commit.next_version, entries = commit.entries.len(),
            clients = commit.clients.len(), ?outcome, "commit");
        Ok(outcome)
    }

    async fn pull_snapshot(
        &self,
        space: &SpaceId,
        client_group_id: &str,
        since: Version,
    ) -> Result<Option<PullSnapshot>, StoreError> {
        crate::pull::pull_snapshot(self, space, client_group_id, since).await
    }

    async fn list_spaces(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<SpacePage, StoreError> {
        self.list_space_page(after, limit).await
    }

    async fn find_garbage(
        &self,
        space: &SpaceId,
        cutoffs: &GarbageCutoffs,
    ) -> Result<Option<Garbage>, StoreError> {
        self.read_garbage(space, cutoffs).await
    }

    async fn purge(
        &self,
        space: &SpaceId,
        tombstones: &[(String, Version)],
        idle_clients: &[(String, String)],
        clients_idle_before_ms: u64,
    ) -> Result<Purged, StoreError> {
        self.remove_garbage(space, tombstones, idle_clients, clients_idle_before_ms)
            .await
    }

    async fn gc_resume_point(&self) -> Result<Option<GcResumePoint>, StoreError> {
        self.read_gc_resume_point().await
    }

    async fn set_gc_resume_point(&self, point: Option<&GcResumePoint>) -> Result<(), StoreError> {
        self.write_gc_resume_point(point).await
    }
}
