//! An in-memory [`Store`] for unit tests and benchmarks of the engine. Same contract and
//! limits as the persistent adapters; it passes the same conformance suite.

use crate::auth::{ANONYMOUS, AccessChange, SpaceAccess};
use crate::changed_entries::ChangedEntries;
use crate::ids::SpaceId;
use crate::json_text::JsonText;
use crate::store::{
    ClientRecord, Commit, CommitOutcome, Created, Garbage, GarbageCutoffs, GcResumePoint,
    PullSnapshot, Purged, PushSnapshot, SpacePage, Store, StoreError, Version, now_ms,
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
    /// When the commit that wrote it ran (epoch ms).
    at_ms: u64,
}

#[derive(Debug)]
struct Space {
    access: SpaceAccess,
    version: Version,
    entries: BTreeMap<String, Entry>,
    /// Client ID -> (record, version, when written in epoch ms).
    clients: HashMap<String, (ClientRecord, Version, u64)>,
    group_owners: HashMap<String, String>,
    tombstone_floor: Version,
}

#[derive(Debug, Default)]
pub struct MemoryStore {
    spaces: Mutex<HashMap<SpaceId, Space>>,
    gc_resume: Mutex<Option<GcResumePoint>>,
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
                    tombstone_floor: 0,
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
                    .filter_map(|id| s.clients.get(id).map(|(rec, ..)| (id.clone(), rec.clone())))
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
            let at_ms = now_ms();
            s.version = v;
            if let Some(floor) = commit.tombstone_floor {
                s.tombstone_floor = s.tombstone_floor.max(floor);
            }
            for (key, value) in &commit.entries {
                s.entries.insert(
                    key.clone(),
                    Entry {
                        value: value.clone(),
                        text: value.as_ref().map(JsonText::from_value),
                        version: v,
                        at_ms,
                    },
                );
            }
            for (id, rec) in &commit.clients {
                s.clients.insert(id.clone(), (rec.clone(), v, at_ms));
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
                .filter(|(_, (rec, v, _))| rec.client_group_id == client_group_id && *v > since)
                .map(|(id, (rec, ..))| (id.clone(), rec.last_mutation_id))
                .collect();
            client_lmids.sort();
            Some(PullSnapshot {
                version: s.version,
                entries: {
                    let mut entries = ChangedEntries::new();
                    for (key, entry) in s.entries.iter().filter(|(_, e)| e.version > since) {
                        entries.push(key, entry.text.as_ref().map(JsonText::as_raw));
                    }
                    entries
                },
                client_lmids,
                access: s.access.clone(),
                group_owner: s.group_owners.get(client_group_id).cloned(),
                tombstone_floor: s.tombstone_floor,
            })
        })
    }

    async fn list_spaces(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<SpacePage, StoreError> {
        self.with_spaces(|spaces| {
            let mut ids: Vec<&SpaceId> = spaces
                .keys()
                .filter(|id| after.is_none_or(|after| id.as_str() > after))
                .collect();
            ids.sort();
            let more = ids.len() > limit;
            let page: Vec<SpaceId> = ids.into_iter().take(limit).cloned().collect();
            SpacePage {
                next: more
                    .then(|| page.last().map(|id| id.as_str().to_owned()))
                    .flatten(),
                spaces: page,
            }
        })
    }

    async fn find_garbage(
        &self,
        space: &SpaceId,
        cutoffs: &GarbageCutoffs,
    ) -> Result<Option<Garbage>, StoreError> {
        self.with_spaces(|spaces| {
            let s = spaces.get(space)?;
            let mut idle_clients: Vec<(String, String)> = s
                .clients
                .iter()
                .filter(|(_, (_, _, at))| *at < cutoffs.clients_idle_before_ms)
                .map(|(id, (rec, ..))| (rec.client_group_id.clone(), id.clone()))
                .collect();
            idle_clients.sort();
            Some(Garbage {
                version: s.version,
                tombstone_floor: s.tombstone_floor,
                tombstones: s
                    .entries
                    .iter()
                    .filter(|(_, e)| e.value.is_none() && e.at_ms < cutoffs.tombstones_before_ms)
                    .map(|(k, e)| (k.clone(), e.version))
                    .collect(),
                idle_clients,
            })
        })
    }

    async fn purge(
        &self,
        space: &SpaceId,
        tombstones: &[(String, Version)],
        idle_clients: &[(String, String)],
        clients_idle_before_ms: u64,
    ) -> Result<Purged, StoreError> {
        self.with_spaces(|spaces| {
            let mut purged = Purged::default();
            let Some(s) = spaces.get_mut(space) else {
                return purged;
            };
            for (key, version) in tombstones {
                if s.entries
                    .get(key)
                    .is_some_and(|e| e.value.is_none() && e.version == *version)
                {
                    s.entries.remove(key);
                    purged.tombstones += 1;
                }
            }
            for (group, id) in idle_clients {
                if s.clients.get(id).is_some_and(|(rec, _, at)| {
                    rec.client_group_id == *group && *at < clients_idle_before_ms
                }) {
                    s.clients.remove(id);
                    purged.clients += 1;
                }
            }
            purged
        })
    }

    async fn gc_resume_point(&self) -> Result<Option<GcResumePoint>, StoreError> {
        Ok(self
            .gc_resume
            .lock()
            .map_err(|_| StoreError::Unavailable("memory store lock poisoned".into()))?
            .clone())
    }

    async fn set_gc_resume_point(&self, point: Option<&GcResumePoint>) -> Result<(), StoreError> {
        *self
            .gc_resume
            .lock()
            .map_err(|_| StoreError::Unavailable("memory store lock poisoned".into()))? =
            point.cloned();
        Ok(())
    }
}
