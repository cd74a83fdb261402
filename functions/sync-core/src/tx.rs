//! `Tx`: what a mutator sees of its space. Reads go through the writes of this mutation,
//! then the writes of the commit being assembled, then storage (cached). Writes stay in
//! the mutation's own layer until the mutator returns `Ok`, so a failed mutator leaves no
//! trace.

use crate::ids::SpaceId;
use crate::mutators::MutationError;
use crate::store::{Store, StoreLimits};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// A pending write and its size in bytes (key plus JSON value).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PendingWrite {
    pub value: Option<Value>,
    pub bytes: usize,
}

/// The state of a space as the current commit will leave it: values read from storage at
/// the commit's base version, plus the commit's own writes.
#[derive(Debug, Default)]
pub(crate) struct Overlay {
    /// Values known at the base version (read, or written by an earlier commit of this
    /// push). `None` = known absent.
    pub known: HashMap<String, Option<Value>>,
    /// Writes of the commit being assembled.
    pub batch: BTreeMap<String, PendingWrite>,
    /// Keys whose stored value a mutator needed: what a retry, or the space's next push,
    /// reads in its snapshot ([`crate::store::Store::push_snapshot_with_entries`]).
    pub read: BTreeSet<String>,
}

impl Overlay {
    /// After a successful commit the batch is storage's state: keep it as known values.
    pub fn committed(&mut self) {
        for (key, write) in std::mem::take(&mut self.batch) {
            self.known.insert(key, write.value);
        }
    }

    pub fn batch_bytes(&self) -> usize {
        self.batch.values().map(|w| w.bytes).sum()
    }
}

pub struct Tx<'a> {
    store: &'a dyn Store,
    space: &'a SpaceId,
    limits: StoreLimits,
    overlay: &'a mut Overlay,
    writes: BTreeMap<String, PendingWrite>,
    /// The client and ID of the mutation being run, when it runs for a push.
    mutation: Option<(&'a str, u64)>,
}

impl<'a> Tx<'a> {
    pub(crate) fn new(
        store: &'a dyn Store,
        space: &'a SpaceId,
        limits: StoreLimits,
        overlay: &'a mut Overlay,
    ) -> Self {
        Self {
            store,
            space,
            limits,
            overlay,
            writes: BTreeMap::new(),
            mutation: None,
        }
    }

    /// The same transaction, running mutation `id` of `client_id` (Replicache's
    /// `tx.clientID` and `tx.mutationID`).
    pub(crate) fn for_mutation(mut self, client_id: &'a str, id: u64) -> Self {
        self.mutation = Some((client_id, id));
        self
    }

    /// The ID of the client whose mutation this is; `None` outside a push.
    pub fn client_id(&self) -> Option<&str> {
        self.mutation.map(|(client, _)| client)
    }

    /// The ID of the mutation being run; `None` outside a push.
    pub fn mutation_id(&self) -> Option<u64> {
        self.mutation.map(|(_, id)| id)
    }

    /// The live value of `key`, if any.
    pub async fn get(&mut self, key: &str) -> Result<Option<Value>, MutationError> {
        self.check_key(key)?;
        if let Some(w) = self.writes.get(key) {
            return Ok(w.value.clone());
        }
        if let Some(w) = self.overlay.batch.get(key) {
            return Ok(w.value.clone());
        }
        self.overlay.read.insert(key.to_owned());
        if let Some(known) = self.overlay.known.get(key) {
            return Ok(known.clone());
        }
        let value = self.store.get_entry(self.space, key).await?;
        self.overlay.known.insert(key.to_owned(), value.clone());
        Ok(value)
    }

    pub async fn has(&mut self, key: &str) -> Result<bool, MutationError> {
        Ok(self.get(key).await?.is_some())
    }

    /// Sets `key` to `value`. Keys and values beyond the store's limits (too long, too
    /// large for one item, nested too deep to read back) are a permanent error: the
    /// mutation is processed with no effect.
    pub fn put(&mut self, key: &str, value: Value) -> Result<(), MutationError> {
        self.check_key(key)?;
        if depth(&value) > self.limits.max_value_depth {
            return Err(MutationError::ValueTooDeep {
                max: self.limits.max_value_depth,
            });
        }
        let bytes = key.len()
            + serde_json::to_vec(&value)
                .map(|v| v.len())
                .unwrap_or(usize::MAX);
        if bytes > self.limits.max_entry_bytes {
            return Err(MutationError::EntryTooLarge {
                bytes,
                max: self.limits.max_entry_bytes,
            });
        }
        self.writes.insert(
            key.to_owned(),
            PendingWrite {
                value: Some(value),
                bytes,
            },
        );
        Ok(())
    }

    /// Deletes `key`; returns whether it existed.
    pub async fn del(&mut self, key: &str) -> Result<bool, MutationError> {
        let existed = self.has(key).await?;
        if existed {
            self.writes.insert(
                key.to_owned(),
                PendingWrite {
                    value: None,
                    bytes: key.len(),
                },
            );
        }
        Ok(existed)
    }

    /// Live entries whose key starts with `prefix`, in key order, at most `limit`.
    pub async fn scan(
        &mut self,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<(String, Value)>, MutationError> {
        self.check_key(prefix)?;
        let pending = |w: &BTreeMap<String, PendingWrite>| {
            w.range(prefix.to_owned()..)
                .take_while(|(k, _)| k.starts_with(prefix))
                .map(|(k, w)| (k.clone(), w.value.clone()))
                .collect::<Vec<_>>()
        };
        let mut overrides: BTreeMap<String, Option<Value>> = BTreeMap::new();
        for (k, v) in pending(&self.overlay.batch)
            .into_iter()
            .chain(pending(&self.writes))
        {
            overrides.insert(k, v);
        }
        // Every overriding delete may hide one stored entry: ask for that many more.
        let hidden = overrides.values().filter(|v| v.is_none()).count();
        let stored = self
            .store
            .scan_entries(self.space, prefix, limit.saturating_add(hidden))
            .await?;
        let mut merged: BTreeMap<String, Option<Value>> =
            stored.into_iter().map(|(k, v)| (k, Some(v))).collect();
        merged.extend(overrides);
        Ok(merged
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .take(limit)
            .collect())
    }

    /// Every key reaching the store is within its limits: a key it would refuse is the
    /// mutation's permanent error, never a failed (and retried) storage call.
    fn check_key(&self, key: &str) -> Result<(), MutationError> {
        if key.len() > self.limits.max_key_bytes {
            return Err(MutationError::KeyTooLong {
                bytes: key.len(),
                max: self.limits.max_key_bytes,
            });
        }
        Ok(())
    }

    /// The writes of this mutation, for the engine to fold into the commit.
    pub(crate) fn into_writes(self) -> BTreeMap<String, PendingWrite> {
        self.writes
    }
}

/// Nesting depth of a JSON value: 0 for a scalar, 1 for `[]` or `{}`. Iterative, so that a
/// value built deep by a mutator cannot overflow the stack here.
fn depth(value: &Value) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(value, 0usize)];
    while let Some((v, level)) = stack.pop() {
        let children: Box<dyn Iterator<Item = &Value>> = match v {
            Value::Array(items) => Box::new(items.iter()),
            Value::Object(map) => Box::new(map.values()),
            _ => continue,
        };
        deepest = deepest.max(level + 1);
        stack.extend(children.map(|c| (c, level + 1)));
    }
    deepest
}

#[cfg(test)]
mod tests {
    use super::depth;
    use serde_json::json;

    #[test]
    fn depth_counts_nesting() {
        assert_eq!(depth(&json!(1)), 0);
        assert_eq!(depth(&json!([])), 1);
        assert_eq!(depth(&json!({"a": [1, {"b": []}]})), 4);
        let mut deep = json!(null);
        for _ in 0..1000 {
            deep = json!([deep]);
        }
        assert_eq!(depth(&deep), 1000);
    }
}
