//! An in-memory [`Store`] for unit tests and benchmarks of the engine. Same contract and
//! limits as the persistent adapters; it passes the same conformance suite.

use crate::auth::{ANONYMOUS, AccessChange, SpaceAccess};
use crate::ids::SpaceId;
use crate::json_text::JsonText;
use crate::store::{
    ClientRecord, Commit, CommitOutcome, Created, EntryChange, PullSnapshot, PushSnapshot, Store,
    StoreError, Version,
};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

#[derive(Debug, Default)]
struct Entry {
    value: Option<Value>,
    /// `value` as the JSON text a persistent store holds: what a pull answers, as is.
    text: Option<JsonText>,
    version: Version,
}

#[derive(Debug)]
struct Space {
    access: SpaceAccess,
    version: Version,
    entries: BTreeMap<String, Entry>,
    clients: HashMap<String, (ClientRecord, Version)>,
    group_owners: HashMap<String, String>,
}

#[derive(Debug, Default)]
pub struct MemoryStore {
    spaces: Mutex<HashMap<SpaceId, Space>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn with_spaces<T>(
        &self,
        f: impl FnOnce(&mut HashMap<SpaceId, Space>) -> T,
    ) -> Result<T, StoreError> {
        let mut guard = self
            .spaces
            .lock()
            .map_err(|_| StoreError::Unavailable("memory store lock poisoned".into()))?;
        Ok(f(&mut guard))
    }
}

#[async_trait::async_trait]
impl Store for MemoryStore {
    async fn create_space_for(
        &self,
        space: &SpaceId,
        access: &SpaceAccess,
        owner_limit: Option<usize>,
    ) -> Result<Created, StoreError> {
        self.with_spaces(|spaces| {
            if spaces.contains_key(space) {
                return Created::Exists;
            }
            if let Some(limit) = owner_limit
                && access.owner != ANONYMOUS
                && spaces
                    .values()
                    .filter(|s| s.access.owner == access.owner)
                    .count()
                    >= limit
            {
                return Created::OwnerAtLimit;
            }
            spaces.insert(
                space.clone(),
                Space {
                    access: access.clone(),
                    version: 0,
                    entries: BTreeMap::new(),
                    clients: HashMap::new(),
                    group_owners: HashMap::new(),
                },
            );
            Created::Yes
        })
    }

    async fn space_access(&self, space: &SpaceId) -> Result<Option<SpaceAccess>, StoreError> {
        self.with_spaces(|spaces| spaces.get(space).map(|s| s.access.clone()))
    }

    async fn change_access(
        &self,
        space: &SpaceId,
        change: &AccessChange,
    ) -> Result<Option<SpaceAccess>, StoreError> {
        self.with_spaces(|spaces| {
            let s = spaces.get_mut(space)?;
            s.access = change.applied_to(&s.access);
            Some(s.access.clone())
        })
    }

    async fn space_version(&self, space: &SpaceId) -> Result<Option<Version>, StoreError> {
        self.with_spaces(|spaces| spaces.get(space).map(|s| s.version))
    }

    async fn push_snapshot(
        &self,
        space: &SpaceId,
        client_group_id: &str,
        client_ids: &[String],
    ) -> Result<Option<PushSnapshot>, StoreError> {
        self.with_spaces(|spaces| {
            spaces.get(space).map(|s| PushSnapshot {
                version: s.version,
                clients: client_ids
                    .iter()
                    .filter_map(|id| s.clients.get(id).map(|(rec, _)| (id.clone(), rec.clone())))
                    .collect(),
                group_owner: s.group_owners.get(client_group_id).cloned(),
                access: s.access.clone(),
            })
        })
    }

    async fn get_entry(&self, space: &SpaceId, key: &str) -> Result<Option<Value>, StoreError> {
        self.with_spaces(|spaces| {
            spaces
                .get(space)
                .and_then(|s| s.entries.get(key))
                .and_then(|e| e.value.clone())
        })
    }

    async fn scan_entries(
        &self,
        space: &SpaceId,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<(String, Value)>, StoreError> {
        self.with_spaces(|spaces| {
            let Some(s) = spaces.get(space) else {
                return Vec::new();
            };
            s.entries
                .range(prefix.to_owned()..)
                .take_while(|(k, _)| k.starts_with(prefix))
                .filter_map(|(k, e)| e.value.clone().map(|v| (k.clone(), v)))
                .take(limit)
                .collect()
        })
    }

    async fn commit(&self, space: &SpaceId, commit: &Commit) -> Result<CommitOutcome, StoreError> {
        self.with_spaces(|spaces| {
            let Some(s) = spaces.get_mut(space) else {
                return CommitOutcome::Conflict;
            };
            if s.version != commit.expected_version {
                return CommitOutcome::Conflict;
            }
            let v = commit.next_version;
            s.version = v;
            for (key, value) in &commit.entries {
                s.entries.insert(
                    key.clone(),
                    Entry {
                        value: value.clone(),
                        text: value.as_ref().map(JsonText::from_value),
                        version: v,
                    },
                );
            }
            for (id, rec) in &commit.clients {
                s.clients.insert(id.clone(), (rec.clone(), v));
            }
            if let Some((group, owner)) = &commit.new_group {
                s.group_owners
                    .entry(group.clone())
                    .or_insert_with(|| owner.clone());
            }
            CommitOutcome::Committed
        })
    }

    async fn pull_snapshot(
        &self,
        space: &SpaceId,
        client_group_id: &str,
        since: Version,
    ) -> Result<Option<PullSnapshot>, StoreError> {
        // One lock: the version and the rows are of one instant.
        self.with_spaces(|spaces| {
            let s = spaces.get(space)?;
            let mut client_lmids: Vec<(String, u64)> = s
                .clients
                .iter()
                .filter(|(_, (rec, v))| rec.client_group_id == client_group_id && *v > since)
                .map(|(id, (rec, _))| (id.clone(), rec.last_mutation_id))
                .collect();
            client_lmids.sort();
            Some(PullSnapshot {
                version: s.version,
                entries: s
                    .entries
                    .iter()
                    .filter(|(_, e)| e.version > since)
                    .map(|(k, e)| EntryChange {
                        key: k.clone(),
                        value: e.text.clone(),
                    })
                    .collect(),
                client_lmids,
                access: s.access.clone(),
                group_owner: s.group_owners.get(client_group_id).cloned(),
            })
        })
    }
}
