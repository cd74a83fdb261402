//! [`DynamoStore`]: the [`Store`] contract over one DynamoDB table (see [`crate::schema`]).
//!
//! Every read is strongly consistent. A commit is one `TransactWriteItems` whose first
//! action moves the space version from `expected` to `next` under a condition, so a commit
//! that lost the race writes nothing.
//!
//! DynamoDB applies a transaction item by item. Single-item and transactional reads are
//! serializable with it, but `Query` is only read-committed, and two reads one after the
//! other are not a snapshot: the space item can already show commit `v` while an entry
//! still shows its value before `v`. So a mutator's `get_entry` is a transactional read
//! (refused while a commit is being applied to the item), and the space item names the
//! items of the last commit so that a pull can wait for the ones its `Query` saw before
//! that commit landed on them.

use crate::item::{self, Item, entry_item, entry_value, get_n, get_s, n, s};
use crate::pull::PullStats;
use crate::retry::{Failure, RetryPolicy, describe, with_retries};
use crate::schema::{self, space_pk};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::BuildError;
use aws_sdk_dynamodb::operation::query::QueryOutput;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::transact_get_items::TransactGetItemsError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, CancellationReason, Get, Put, TransactGetItem, TransactWriteItem, Update,
};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};
use sync_core::SpaceId;
use sync_core::store::{
    ClientRecord, Commit, CommitOutcome, PullSnapshot, PushSnapshot, Store, StoreError, Version,
};

/// Actions one `TransactWriteItems` may hold.
const MAX_WRITE_ACTIONS: usize = 100;
/// Items one `TransactGetItems` reads. DynamoDB takes 100 since 2022; 25 (the old limit)
/// keeps servers that still enforce it (moto) working, and costs a second request only
/// for a push naming more than 23 clients.
const MAX_TRANSACT_GETS: usize = 25;
/// Items a `scan_entries` page asks for: enough for the usual small scan in one request,
/// without reading 1 MB when only a few entries are wanted.
const MAX_SCAN_PAGE: usize = 1_000;

const SET_HEAD: &str = "SET #hv = :next, #hi = :items, #hiv = :next";
/// A version-only commit leaves the head items alone (see `schema::HEAD_ITEMS_VERSION`).
const SET_VERSION: &str = "SET #hv = :next";
const HEAD_VERSION_IS_EXPECTED: &str = "#hv = :expected";
const ITEM_IS_NEW: &str = "attribute_not_exists(#pk)";

/// The DynamoDB adapter. Cheap to clone (the SDK client is reference-counted).
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
    retry: RetryPolicy,
    pull_stats: Arc<PullStats>,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            retry: RetryPolicy::default(),
            pull_stats: Arc::default(),
        }
    }

    /// How this store's pulls went (shared by its clones).
    pub fn pull_stats(&self) -> &PullStats {
        &self.pull_stats
    }

    /// Replaces the bounds on retries of throttled or failed calls.
    pub fn with_retry_policy(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Reads `sks` of one partition with `TransactGetItems`, in chunks, in order. Unlike
    /// `BatchGetItem` (read-committed: it can see half of a concurrent commit), a
    /// transactional read is a snapshot: every item it returns is as of one moment.
    async fn transact_get(
        &self,
        pk: &str,
        sks: &[String],
    ) -> Result<Vec<Option<Item>>, StoreError> {
        let mut items = Vec::with_capacity(sks.len());
        for chunk in sks.chunks(MAX_TRANSACT_GETS) {
            let gets = chunk
                .iter()
                .map(|sk| {
                    Get::builder()
                        .table_name(&self.table)
                        .set_key(Some(item::key(pk, sk.as_str())))
                        .build()
                        .map(|get| TransactGetItem::builder().get(get).build())
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(invalid_request)?;
            let request = self
                .client
                .transact_get_items()
                .set_transact_items(Some(gets));
            let output = with_retries(&self.retry, "TransactGetItems", || {
                let request = request.clone();
                async move {
                    request.send().await.map_err(|err| {
                        if let Some(TransactGetItemsError::TransactionCanceledException(e)) =
                            err.as_service_error()
                        {
                            // Only a commit in flight on one of the items, or load: both
                            // pass.
                            return match cancellation(e.cancellation_reasons()) {
                                Cancellation::Throttled => {
                                    Failure::Throttled(describe("TransactGetItems", &err))
                                }
                                Cancellation::Conflict => {
                                    Failure::Transient(describe("TransactGetItems", &err))
                                }
                                Cancellation::Other => Failure::Permanent(StoreError::Rejected(
                                    describe("TransactGetItems", &err),
                                )),
                            };
                        }
                        Failure::from_sdk("TransactGetItems", &err)
                    })
                }
            })
            .await?;
            let responses = output.responses();
            if responses.len() != chunk.len() {
                return Err(StoreError::Unavailable(format!(
                    "TransactGetItems answered {} items for {} keys",
                    responses.len(),
                    chunk.len()
                )));
            }
            items.extend(responses.iter().map(|r| r.item().cloned()));
        }
        Ok(items)
    }

    /// One page of a `Query`, retried like every other call.
    pub(crate) async fn query_page(
        &self,
        request: QueryFluentBuilder,
    ) -> Result<QueryOutput, StoreError> {
        with_retries(&self.retry, "Query", || {
            let request = request.clone();
            async move {
                request
                    .send()
                    .await
                    .map_err(|err| Failure::from_sdk("Query", &err))
            }
        })
        .await
    }

    pub(crate) async fn get_item(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
        let request = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(item::key(pk, sk)))
            .consistent_read(true);
        let output = with_retries(&self.retry, "GetItem", || {
            let request = request.clone();
            async move {
                request
                    .send()
                    .await
                    .map_err(|err| Failure::from_sdk("GetItem", &err))
            }
        })
        .await?;
        Ok(output.item)
    }

    /// The version bump alone: one conditional `UpdateItem`, cheaper than a transaction.
    /// It wrote no item, so the head names none.
    async fn bump_version(&self, pk: &str, commit: &Commit) -> Result<CommitOutcome, StoreError> {
        let request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(item::key(pk, schema::META_SK)))
            .update_expression(SET_VERSION)
            .condition_expression(HEAD_VERSION_IS_EXPECTED)
            .expression_attribute_names("#hv", schema::HEAD_VERSION)
            .expression_attribute_values(":next", n(commit.next_version))
            .expression_attribute_values(":expected", n(commit.expected_version));
        with_retries(&self.retry, "UpdateItem", || {
            let request = request.clone();
            async move {
                match request.send().await {
                    Ok(_) => Ok(CommitOutcome::Committed),
                    Err(err)
                        if err
                            .as_service_error()
                            .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
                    {
                        Ok(CommitOutcome::Conflict)
                    }
                    Err(err) => Err(Failure::from_sdk("UpdateItem", &err)),
                }
            }
        })
        .await
    }

    /// Every action of a commit: the conditional version move first.
    fn commit_actions(
        &self,
        pk: &str,
        commit: &Commit,
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        let mut actions = Vec::with_capacity(2 + commit.entries.len() + commit.clients.len());
        // The sort keys of the entries and clients written (the ones a pull reads; the group
        // item is not pulled).
        let head_items = commit
            .entries
            .iter()
            .map(|(key, _)| s(schema::entry_sk(key)))
            .chain(
                commit
                    .clients
                    .iter()
                    .map(|(id, _)| s(schema::client_sk(id))),
            )
            .collect();
        let bump = Update::builder()
            .table_name(&self.table)
            .set_key(Some(item::key(pk, schema::META_SK)))
            .update_expression(SET_HEAD)
            .condition_expression(HEAD_VERSION_IS_EXPECTED)
            .expression_attribute_names("#hv", schema::HEAD_VERSION)
            .expression_attribute_names("#hi", schema::HEAD_ITEMS)
            .expression_attribute_names("#hiv", schema::HEAD_ITEMS_VERSION)
            .expression_attribute_values(":next", n(commit.next_version))
            .expression_attribute_values(":expected", n(commit.expected_version))
            .expression_attribute_values(":items", AttributeValue::L(head_items))
            .build()
            .map_err(invalid_request)?;
        actions.push(TransactWriteItem::builder().update(bump).build());
        for (key, value) in &commit.entries {
            let item = entry_item(pk, key, value.as_ref(), commit.next_version)?;
            actions.push(self.put(item, false)?);
        }
        for (client_id, record) in &commit.clients {
            let mut item = item::key(pk, schema::client_sk(client_id));
            item.insert(
                schema::CLIENT_GROUP_ID.to_owned(),
                s(&record.client_group_id),
            );
            item.insert(
                schema::LAST_MUTATION_ID.to_owned(),
                n(record.last_mutation_id),
            );
            item.insert(schema::VERSION.to_owned(), n(commit.next_version));
            actions.push(self.put(item, false)?);
        }
        if let Some((group_id, owner)) = &commit.new_group {
            let mut item = item::key(pk, schema::group_sk(group_id));
            item.insert(schema::OWNER.to_owned(), s(owner));
            // A group is claimed once: a concurrent first push of the same group conflicts.
            actions.push(self.put(item, true)?);
        }
        Ok(actions)
    }

    fn put(&self, item: Item, only_if_new: bool) -> Result<TransactWriteItem, StoreError> {
        let mut put = Put::builder().table_name(&self.table).set_item(Some(item));
        if only_if_new {
            put = put
                .condition_expression(ITEM_IS_NEW)
                .expression_attribute_names("#pk", schema::PK);
        }
        let put = put.build().map_err(invalid_request)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    async fn transact_write(
        &self,
        actions: Vec<TransactWriteItem>,
    ) -> Result<CommitOutcome, StoreError> {
        // One token for every try: if a try committed but its answer was lost, the next
        // try is recognized as the same transaction and succeeds without writing again.
        let token = format!("{:032x}", rand::random::<u128>());
        let request = self
            .client
            .transact_write_items()
            .set_transact_items(Some(actions))
            .client_request_token(token);
        with_retries(&self.retry, "TransactWriteItems", || {
            let request = request.clone();
            async move {
                let err = match request.send().await {
                    Ok(_) => return Ok(CommitOutcome::Committed),
                    Err(err) => err,
                };
                if let Some(TransactWriteItemsError::TransactionCanceledException(e)) =
                    err.as_service_error()
                {
                    return match cancellation(e.cancellation_reasons()) {
                        Cancellation::Conflict => Ok(CommitOutcome::Conflict),
                        Cancellation::Throttled => {
                            Err(Failure::Throttled(describe("TransactWriteItems", &err)))
                        }
                        Cancellation::Other => Err(Failure::Permanent(StoreError::Rejected(
                            describe("TransactWriteItems", &err),
                        ))),
                    };
                }
                Err(Failure::from_sdk("TransactWriteItems", &err))
            }
        })
        .await
    }
}

#[async_trait::async_trait]
impl Store for DynamoStore {
    async fn create_space(&self, space: &SpaceId) -> Result<bool, StoreError> {
        let mut meta = item::key(&space_pk(space.as_str()), schema::META_SK);
        meta.insert(schema::HEAD_VERSION.to_owned(), n(0));
        meta.insert(schema::CREATED_AT.to_owned(), n(now_millis()));
        let request = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(meta))
            .condition_expression(ITEM_IS_NEW)
            .expression_attribute_names("#pk", schema::PK);
        let created = with_retries(&self.retry, "PutItem", || {
            let request = request.clone();
            async move {
                match request.send().await {
                    Ok(_) => Ok(true),
                    Err(err)
                        if err
                            .as_service_error()
                            .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
                    {
                        Ok(false)
                    }
                    Err(err) => Err(Failure::from_sdk("PutItem", &err)),
                }
            }
        })
        .await?;
        if created {
            tracing::info!(space_id = %space, "space created");
        }
        Ok(created)
    }

    async fn space_version(&self, space: &SpaceId) -> Result<Option<Version>, StoreError> {
        self.get_item(&space_pk(space.as_str()), schema::META_SK)
            .await?
            .map(|meta| get_n(&meta, schema::HEAD_VERSION))
            .transpose()
    }

    async fn push_snapshot(
        &self,
        space: &SpaceId,
        client_group_id: &str,
        client_ids: &[String],
    ) -> Result<Option<PushSnapshot>, StoreError> {
        let pk = space_pk(space.as_str());
        // The space item comes first, so it is in the first chunk: with more than one
        // chunk, every later read happens after the version read, and anything committed
        // in between moves the version and fails the commit built on this snapshot.
        let mut unique = HashSet::new();
        let ids: Vec<&String> = client_ids.iter().filter(|id| unique.insert(*id)).collect();
        let mut sks = vec![
            schema::META_SK.to_owned(),
            schema::group_sk(client_group_id),
        ];
        sks.extend(ids.iter().map(|id| schema::client_sk(id)));
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
        for (id, found) in ids.into_iter().zip(items) {
            if let Some(client) = found {
                let record = ClientRecord {
                    client_group_id: get_s(&client, schema::CLIENT_GROUP_ID)?.to_owned(),
                    last_mutation_id: get_n(&client, schema::LAST_MUTATION_ID)?,
                };
                clients.insert(id.clone(), record);
            }
        }
        Ok(Some(PushSnapshot {
            version,
            clients,
            group_owner,
        }))
    }

    async fn get_entry(&self, space: &SpaceId, key: &str) -> Result<Option<Value>, StoreError> {
        // A transactional read, not a `GetItem`: a `GetItem` can return the entry as it was
        // before a commit whose version the push's snapshot already saw (the commit has
        // reached the space item but not this one yet), and the push would then commit on
        // a stale value. DynamoDB cancels a transactional read while a commit is being
        // applied to the item, and `transact_get` retries that. It costs twice the read
        // units of a consistent `GetItem`.
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

    // A `Query`, so read-committed: it may see part of a commit that is being applied
    // (some entries after it, some before). The version condition of the push's commit
    // then protects only what was read by `get_entry`, not the scanned values.
    async fn scan_entries(
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
                .client
                .query()
                .table_name(&self.table)
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

    async fn commit(&self, space: &SpaceId, commit: &Commit) -> Result<CommitOutcome, StoreError> {
        let pk = space_pk(space.as_str());
        let outcome =
            if commit.entries.is_empty() && commit.clients.is_empty() && commit.new_group.is_none()
            {
                self.bump_version(&pk, commit).await?
            } else {
                let actions = self.commit_actions(&pk, commit)?;
                if actions.len() > MAX_WRITE_ACTIONS {
                    // The engine keeps commits within `limits()`; this is a bug, not a load.
                    return Err(StoreError::Rejected(format!(
                        "a commit of {} actions exceeds DynamoDB's {MAX_WRITE_ACTIONS}",
                        actions.len()
                    )));
                }
                self.transact_write(actions).await?
            };
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
}

/// How a cancelled transaction is handled.
enum Cancellation {
    /// A condition failed, or another transaction held an item: someone else got there
    /// first, nothing was written.
    Conflict,
    /// DynamoDB shed load.
    Throttled,
    /// Anything else (validation, item collection full): retrying cannot help.
    Other,
}

fn cancellation(reasons: &[CancellationReason]) -> Cancellation {
    let codes: Vec<&str> = reasons.iter().filter_map(|r| r.code()).collect();
    if codes
        .iter()
        .any(|c| matches!(*c, "ConditionalCheckFailed" | "TransactionConflict"))
    {
        Cancellation::Conflict
    } else if codes.iter().any(|c| {
        matches!(
            *c,
            "ThrottlingError" | "ProvisionedThroughputExceeded" | "RequestLimitExceeded"
        )
    }) {
        Cancellation::Throttled
    } else {
        Cancellation::Other
    }
}

fn entry_key(entry: &Item) -> Result<String, StoreError> {
    let sk = get_s(entry, schema::SK)?;
    sk.strip_prefix(schema::ENTRY_PREFIX)
        .map(str::to_owned)
        .ok_or_else(|| StoreError::Corrupt("an entry's sort key lacks its prefix".into()))
}

/// A request the SDK refused to build: it would be refused the same way every time.
fn invalid_request(err: BuildError) -> StoreError {
    StoreError::Rejected(format!("invalid DynamoDB request: {err}"))
}

fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reasons(codes: &[&str]) -> Vec<CancellationReason> {
        codes
            .iter()
            .map(|c| CancellationReason::builder().code(*c).build())
            .collect()
    }

    #[test]
    fn cancellations_are_classified() {
        assert!(matches!(
            cancellation(&reasons(&["ConditionalCheckFailed", "None"])),
            Cancellation::Conflict
        ));
        assert!(matches!(
            cancellation(&reasons(&["None", "TransactionConflict"])),
            Cancellation::Conflict
        ));
        assert!(matches!(
            cancellation(&reasons(&["ThrottlingError", "None"])),
            Cancellation::Throttled
        ));
        assert!(matches!(
            cancellation(&reasons(&["ValidationError"])),
            Cancellation::Other
        ));
        assert!(matches!(cancellation(&[]), Cancellation::Other));
    }
}
