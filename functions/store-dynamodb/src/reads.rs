//! Reads: transactional gets (the push's snapshot, a mutator's entry), consistent
//! `GetItem`s, and `Query` pages (a scan of entries here, a pull's changes in
//! [`crate::pull`]). Every read is strongly consistent; the SDK retries each call (see
//! [`crate::retries`]).

use crate::errors::{invalid_request, store_error, transact_get_error};
use crate::item::{self, Item, entry_value, get_access, get_n, get_s, s};
use crate::schema::{self, space_pk};
use crate::store::DynamoStore;
use aws_sdk_dynamodb::operation::query::QueryOutput;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::types::{Get, KeysAndAttributes, TransactGetItem};
use futures::future::try_join_all;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::time::Duration;
use sync_core::SpaceId;
use sync_core::store::{ClientRecord, PushSnapshot, StoreError, Version};

/// Items one `TransactGetItems` reads. DynamoDB takes 100 since 2022; 25 (the old limit)
/// keeps servers that still enforce it (moto) working, and costs a second request only
/// for a push naming more than 23 clients.
const MAX_TRANSACT_GETS: usize = 25;
/// Keys one `BatchGetItem` takes.
const MAX_BATCH_GETS: usize = 100;
/// Rounds of a `BatchGetItem`'s unprocessed keys in a row that read nothing (DynamoDB
/// sheds load) before the read gives up as throttled; pauses below 20, 40, 80, 160 ms.
const MAX_STALLED_BATCH_ROUNDS: u32 = 4;
/// Items a `scan_entries` page asks for: enough for the usual small scan in one request,
/// without reading 1 MB when only a few entries are wanted.
const MAX_SCAN_PAGE: usize = 1_000;

impl DynamoStore {
    /// Reads `sks` of one partition with `TransactGetItems`, in chunks, in order. Unlike
    /// `BatchGetItem` (read-committed: it can see half of a concurrent commit), a
    /// transactional read is a snapshot: every item one chunk returns is as of one moment.
    /// The first chunk is read before the others, which are then sent at once: every
    /// later read happens after the first one (the push's snapshot relies on that, see
    /// `read_push_snapshot`), in two round trips however many chunks.
    async fn transact_get(
        &self,
        pk: &str,
        sks: &[String],
    ) -> Result<Vec<Option<Item>>, StoreError> {
        let mut chunks = sks.chunks(MAX_TRANSACT_GETS);
        let Some(first) = chunks.next() else {
            return Ok(Vec::new());
        };
        let mut items = self.transact_get_chunk(pk, first).await?;
        let later = try_join_all(chunks.map(|chunk| self.transact_get_chunk(pk, chunk))).await?;
        items.extend(later.into_iter().flatten());
        Ok(items)
    }

    /// One `TransactGetItems` of at most [`MAX_TRANSACT_GETS`] keys.
    async fn transact_get_chunk(
        &self,
        pk: &str,
        chunk: &[String],
    ) -> Result<Vec<Option<Item>>, StoreError> {
        let gets = chunk
            .iter()
            .map(|sk| {
                Get::builder()
                    .table_name(self.table())
                    .set_key(Some(item::key(pk, sk.as_str())))
                    .build()
                    .map(|get| TransactGetItem::builder().get(get).build())
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(invalid_request)?;
        let output = self
            .client()
            .transact_get_items()
            .set_transact_items(Some(gets))
            .send()
            .await
            .map_err(|err| transact_get_error(&err))?;
        let responses = output.responses();
        if responses.len() != chunk.len() {
            return Err(StoreError::Unavailable(format!(
                "TransactGetItems answered {} items for {} keys",
                responses.len(),
                chunk.len()
            )));
        }
        Ok(responses.iter().map(|r| r.item().cloned()).collect())
    }

    /// Reads `sks` of one partition with consistent `BatchGetItem`s (`None` for an item
    /// that does not exist), in the order of `sks`.
    ///
    /// Each item is read as a consistent `GetItem` reads it: serializable with a
    /// transaction writing it. The items together are not a snapshot (read-committed): one
    /// may already show a commit that another does not show yet. Keys DynamoDB leaves
    /// unprocessed (a response past 16 MB, or load) are asked for again.
    pub(crate) async fn batch_get(
        &self,
        pk: &str,
        sks: &[String],
    ) -> Result<Vec<Option<Item>>, StoreError> {
        // A batch may not name one key twice.
        let mut unique = HashSet::new();
        let wanted: Vec<&String> = sks.iter().filter(|sk| unique.insert(*sk)).collect();
        let mut found: HashMap<String, Item> = HashMap::with_capacity(wanted.len());
        for chunk in wanted.chunks(MAX_BATCH_GETS) {
            let mut keys: Vec<Item> = chunk.iter().map(|sk| item::key(pk, sk.as_str())).collect();
            let mut stalled = 0;
            while !keys.is_empty() {
                let request = KeysAndAttributes::builder()
                    .set_keys(Some(keys))
                    .consistent_read(true)
                    .build()
                    .map_err(invalid_request)?;
                let output = self
                    .client()
                    .batch_get_item()
                    .request_items(self.table(), request)
                    .send()
                    .await
                    .map_err(|err| store_error("BatchGetItem", &err))?;
                let items = output
                    .responses
                    .and_then(|mut by_table| by_table.remove(self.table()))
                    .unwrap_or_default();
                let read = items.len();
                for item in items {
                    found.insert(get_s(&item, schema::SK)?.to_owned(), item);
                }
                keys = output
                    .unprocessed_keys
                    .and_then(|mut by_table| by_table.remove(self.table()))
                    .map(|unprocessed| unprocessed.keys)
                    .unwrap_or_default();
                if keys.is_empty() {
                    break;
                }
                if read > 0 {
                    stalled = 0;
                    continue;
                }
                stalled += 1;
                if stalled > MAX_STALLED_BATCH_ROUNDS {
                    let error = StoreError::Throttled(format!(
                        "BatchGetItem left {} keys unprocessed {stalled} times in a row",
                        keys.len()
                    ));
                    crate::errors::log("BatchGetItem", &error);
                    return Err(error);
                }
                let ceiling = Duration::from_millis(10).saturating_mul(1 << stalled);
                tokio::time::sleep(ceiling.mul_f64(rand::random::<f64>())).await;
            }
        }
        Ok(sks.iter().map(|sk| found.get(sk).cloned()).collect())
    }

    /// One page of a `Query`.
    pub(crate) async fn query_page(
        &self,
        request: QueryFluentBuilder,
    ) -> Result<QueryOutput, StoreError> {
        request
            .send()
            .await
            .map_err(|err| store_error("Query", &err))
    }

    /// One item, read consistently (serializable with a transaction writing it).
    pub(crate) async fn get_item(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
        let output = self
            .client()
            .get_item()
            .table_name(self.table())
            .set_key(Some(item::key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|err| store_error("GetItem", &err))?;
        Ok(output.item)
    }

    pub(crate) async fn read_version(
        &self,
        space: &SpaceId,
    ) -> Result<Option<Version>, StoreError> {
        self.get_item(&space_pk(space.as_str()), schema::META_SK)
            .await?
            .map(|meta| get_n(&meta, schema::HEAD_VERSION))
            .transpose()
    }

    /// The space version, the group's owner and the named clients' records, in one
    /// snapshot.
    pub(crate) async fn read_push_snapshot(
        &self,
        space: &SpaceId,
        client_group_id: &str,
        client_ids: &[String],
        entry_keys: &[String],
    ) -> Result<Option<(PushSnapshot, HashMap<String, Option<Value>>)>, StoreError> {
        let pk = space_pk(space.as_str());
        // The space item comes first, so it is in the first chunk: with more than one
        // chunk, every later read happens after the version read (`transact_get` reads the
        // first chunk before the others), and anything committed in between moves the
        // version and fails the commit built on this snapshot.
        let mut unique = HashSet::new();
        let ids: Vec<&String> = client_ids.iter().filter(|id| unique.insert(*id)).collect();
        let mut sks = vec![
            schema::META_SK.to_owned(),
            schema::group_sk(client_group_id),
        ];
        // Clients are keyed by their group; a client's membership says whether one with no
        // record in this group is another group's. Both in the one read: one more item per
        // client costs less than a round trip more for a client's first push.
        for id in &ids {
            sks.push(schema::client_sk(client_group_id, id));
            sks.push(schema::member_sk(id));
        }
        // The entries too, in the same transactional read: their values are as of the
        // snapshot's version (see `read_entry` for why a plain read would not do).
        let mut unique_keys = HashSet::new();
        let keys: Vec<&String> = entry_keys
            .iter()
            .filter(|k| unique_keys.insert(*k))
            .collect();
        sks.extend(keys.iter().map(|k| schema::entry_sk(k)));
        let mut items = self.transact_get(&pk, &sks).await?.into_iter();
        let Some(meta) = items.next().flatten() else {
            return Ok(None);
        };
        let version = get_n(&meta, schema::HEAD_VERSION)?;
        let group_owner = match items.next().flatten() {
            Some(group) => Some(get_s(&group, schema::OWNER)?.to_owned()),
            None => None,
        };
        let mut clients = HashMap::new();
        for id in ids {
            let (Some(found), Some(member)) = (items.next(), items.next()) else {
                return Err(StoreError::Corrupt(
                    "a snapshot read answered too few items".into(),
                ));
            };
            let record = match (found, member) {
                (Some(client), _) => ClientRecord {
                    client_group_id: get_s(&client, schema::CLIENT_GROUP_ID)?.to_owned(),
                    last_mutation_id: get_n(&client, schema::LAST_MUTATION_ID)?,
                },
                // Another group's client: refused, whatever its LMID.
                (None, Some(member))
                    if get_s(&member, schema::CLIENT_GROUP_ID)? != client_group_id =>
                {
                    ClientRecord {
                        client_group_id: get_s(&member, schema::CLIENT_GROUP_ID)?.to_owned(),
                        last_mutation_id: 0,
                    }
                }
                // New to this group (or removed by garbage collection).
                (None, _) => continue,
            };
            clients.insert(id.clone(), record);
        }
        let mut entries = HashMap::with_capacity(keys.len());
        for (key, found) in keys.into_iter().zip(items) {
            let value = match found {
                Some(entry) => entry_value(&entry)?,
                None => None,
            };
            entries.insert(key.clone(), value);
        }
        let snapshot = PushSnapshot {
            version,
            clients,
            group_owner,
            access: get_access(&meta)?,
        };
        Ok(Some((snapshot, entries)))
    }

    /// A mutator's read of one entry.
    pub(crate) async fn read_entry(
        &self,
        space: &SpaceId,
        key: &str,
    ) -> Result<Option<Value>, StoreError> {
        // A transactional read, not a `GetItem`: a `GetItem` can return the entry as it was
        // before a commit whose version the push's snapshot already saw (the commit has
        // reached the space item but not this one yet), and the push would then commit on
        // a stale value. DynamoDB cancels a transactional read while a commit is being
        // applied to the item, and the SDK retries that (see `crate::retries`). It costs
        // twice the read units of a consistent `GetItem`.
        let sks = [schema::entry_sk(key)];
        match self
            .transact_get(&space_pk(space.as_str()), &sks)
            .await?
            .pop()
            .flatten()
        {
            Some(entry) => entry_value(&entry),
            None => Ok(None),
        }
    }

    /// Up to `limit` live entries whose keys start with `prefix`, in key order.
    ///
    /// A `Query`, so read-committed: it may see part of a commit that is being applied
    /// (some entries after it, some before). The version condition of the push's commit
    /// then protects only what was read by `read_entry`, not the scanned values.
    pub(crate) async fn scan(
        &self,
        space: &SpaceId,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<(String, Value)>, StoreError> {
        let mut found = Vec::new();
        let mut start: Option<Item> = None;
        while found.len() < limit {
            // A few more than wanted, so that some deleted entries cost no extra page.
            let page = (limit - found.len()).saturating_add(8).min(MAX_SCAN_PAGE);
            let request = self
                .client()
                .query()
                .table_name(self.table())
                .consistent_read(true)
                .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
                .expression_attribute_names("#pk", schema::PK)
                .expression_attribute_names("#sk", schema::SK)
                .expression_attribute_values(":pk", s(space_pk(space.as_str())))
                .expression_attribute_values(":prefix", s(schema::entry_sk(prefix)))
                .limit(i32::try_from(page).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start.take());
            let output = self.query_page(request).await?;
            for entry in output.items() {
                if found.len() == limit {
                    break;
                }
                if let Some(value) = entry_value(entry)? {
                    found.push((entry_key(entry)?, value));
                }
            }
            match output.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
        Ok(found)
    }
}

fn entry_key(entry: &Item) -> Result<String, StoreError> {
    let sk = get_s(entry, schema::SK)?;
    sk.strip_prefix(schema::ENTRY_PREFIX)
        .map(str::to_owned)
        .ok_or_else(|| StoreError::Corrupt("an entry's sort key lacks its prefix".into()))
}
