//! Writes of a commit: building and sending it.
//!
//! A commit is one `TransactWriteItems` whose first action moves the space version from
//! `expected` to `next` under a condition, so a commit that lost the race writes nothing
//! and comes back as [`CommitOutcome::Conflict`] for the engine to rebuild. The SDK fills
//! in the transaction's `ClientRequestToken` once per call and sends the same request on
//! each of its retries (see [`crate::retries`]), so a retry of a commit whose answer was
//! lost is recognized as the same transaction and succeeds without writing again.

use crate::errors::{invalid_request, store_error, transact_write_outcome};
use crate::item::{self, Item, entry_item, n, s};
use crate::schema;
use crate::store::DynamoStore;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use sync_core::store::{Commit, CommitOutcome, StoreError, now_ms};

/// Actions one `TransactWriteItems` may hold.
const MAX_WRITE_ACTIONS: usize = 100;

const SET_HEAD: &str = "SET #hv = :next, #hi = :items, #hiv = :next";
/// A version-only commit leaves the head items alone (see `schema::HEAD_ITEMS_VERSION`).
const SET_VERSION: &str = "SET #hv = :next";
const HEAD_VERSION_IS_EXPECTED: &str = "#hv = :expected";
/// Added to garbage collection's commit (the one that sets the tombstone floor), with its
/// condition: a floor never goes down (a lower one loses like a version race). The commit
/// also empties the head: it succeeded only once the commit before it had landed on all
/// its items (DynamoDB refuses a write to an item of a transaction in flight), so no pull
/// needs to wait for any of them, and the collector may then remove some of them.
const SET_FLOOR_EMPTY_HEAD: &str = ", #tf = :floor, #hi = :none, #hiv = :next";
/// A commit with items sets the floor beside its own head.
const SET_FLOOR: &str = ", #tf = :floor";
const FLOOR_NOT_ABOVE: &str = " AND (attribute_not_exists(#tf) OR #tf <= :floor)";
const ITEM_IS_NEW: &str = "attribute_not_exists(#pk)";

impl DynamoStore {
    /// Writes `commit` to the space's partition `pk`.
    pub(crate) async fn write_commit(
        &self,
        pk: &str,
        commit: &Commit,
    ) -> Result<CommitOutcome, StoreError> {
        if commit.entries.is_empty() && commit.clients.is_empty() && commit.new_group.is_none() {
            return self.bump_version(pk, commit).await;
        }
        let actions = self.commit_actions(pk, commit)?;
        if actions.len() > MAX_WRITE_ACTIONS {
            // The engine keeps commits within `limits()`; this is a bug, not a load.
            return Err(StoreError::Rejected(format!(
                "a commit of {} actions exceeds DynamoDB's {MAX_WRITE_ACTIONS}",
                actions.len()
            )));
        }
        match self
            .client()
            .transact_write_items()
            .set_transact_items(Some(actions))
            .send()
            .await
        {
            Ok(_) => Ok(CommitOutcome::Committed),
            Err(err) => transact_write_outcome(&err),
        }
    }

    /// The version bump alone: one conditional `UpdateItem`, cheaper than a transaction.
    /// It wrote no item, so the head names none.
    async fn bump_version(&self, pk: &str, commit: &Commit) -> Result<CommitOutcome, StoreError> {
        let (update, condition) = with_floor(SET_VERSION, SET_FLOOR_EMPTY_HEAD, commit);
        let mut request = self
            .client()
            .update_item()
            .table_name(self.table())
            .set_key(Some(item::key(pk, schema::META_SK)))
            .update_expression(update)
            .condition_expression(condition)
            .expression_attribute_names("#hv", schema::HEAD_VERSION)
            .expression_attribute_values(":next", n(commit.next_version))
            .expression_attribute_values(":expected", n(commit.expected_version));
        if let Some(floor) = commit.tombstone_floor {
            request = request
                .expression_attribute_names("#tf", schema::TOMBSTONE_FLOOR)
                .expression_attribute_names("#hi", schema::HEAD_ITEMS)
                .expression_attribute_names("#hiv", schema::HEAD_ITEMS_VERSION)
                .expression_attribute_values(":floor", n(floor))
                .expression_attribute_values(":none", AttributeValue::L(Vec::new()));
        }
        let result = request.send().await;
        match result {
            Ok(_) => Ok(CommitOutcome::Committed),
            // Without a token, a retry after a try that moved the version but whose answer
            // was lost lands here too; the engine then re-reads the version, which is what
            // it wanted.
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(CommitOutcome::Conflict)
            }
            Err(err) => Err(store_error("UpdateItem", &err)),
        }
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
                    .map(|(id, record)| s(schema::client_sk(&record.client_group_id, id))),
            )
            .collect();
        let (update, condition) = with_floor(SET_HEAD, SET_FLOOR, commit);
        let mut bump = Update::builder()
            .table_name(self.table())
            .set_key(Some(item::key(pk, schema::META_SK)))
            .update_expression(update)
            .condition_expression(condition)
            .expression_attribute_names("#hv", schema::HEAD_VERSION)
            .expression_attribute_names("#hi", schema::HEAD_ITEMS)
            .expression_attribute_names("#hiv", schema::HEAD_ITEMS_VERSION)
            .expression_attribute_values(":next", n(commit.next_version))
            .expression_attribute_values(":expected", n(commit.expected_version))
            .expression_attribute_values(":items", AttributeValue::L(head_items));
        if let Some(floor) = commit.tombstone_floor {
            bump = bump
                .expression_attribute_names("#tf", schema::TOMBSTONE_FLOOR)
                .expression_attribute_values(":floor", n(floor));
        }
        let bump = bump.build().map_err(invalid_request)?;
        actions.push(TransactWriteItem::builder().update(bump).build());
        let written_at = n(now_ms());
        for (key, value) in &commit.entries {
            let mut item = entry_item(pk, key, value.as_ref(), commit.next_version)?;
            item.insert(schema::WRITTEN_AT.to_owned(), written_at.clone());
            actions.push(self.put(item, false)?);
        }
        for (client_id, record) in &commit.clients {
            let mut item = item::key(pk, schema::client_sk(&record.client_group_id, client_id));
            item.insert(
                schema::CLIENT_GROUP_ID.to_owned(),
                s(&record.client_group_id),
            );
            item.insert(
                schema::LAST_MUTATION_ID.to_owned(),
                n(record.last_mutation_id),
            );
            item.insert(schema::CLIENT_VERSION.to_owned(), n(commit.next_version));
            item.insert(schema::WRITTEN_AT.to_owned(), written_at.clone());
            actions.push(self.put(item, false)?);
        }
        for client_id in &commit.new_clients {
            let Some((_, record)) = commit.clients.iter().find(|(id, _)| id == client_id) else {
                continue;
            };
            let mut item = item::key(pk, schema::member_sk(client_id));
            item.insert(
                schema::CLIENT_GROUP_ID.to_owned(),
                s(&record.client_group_id),
            );
            // A client joins one group: a concurrent first record of it in another group
            // conflicts (the same group again, after garbage collection, does not).
            let put = Put::builder()
                .table_name(self.table())
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(#pk) OR #g = :g")
                .expression_attribute_names("#pk", schema::PK)
                .expression_attribute_names("#g", schema::CLIENT_GROUP_ID)
                .expression_attribute_values(":g", s(&record.client_group_id))
                .build()
                .map_err(invalid_request)?;
            actions.push(TransactWriteItem::builder().put(put).build());
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
        let mut put = Put::builder().table_name(self.table()).set_item(Some(item));
        if only_if_new {
            put = put
                .condition_expression(ITEM_IS_NEW)
                .expression_attribute_names("#pk", schema::PK);
        }
        let put = put.build().map_err(invalid_request)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }
}

/// The update and condition expressions of the space item's update, with the floor's
/// parts when the commit raises it.
fn with_floor(update: &str, set_floor: &str, commit: &Commit) -> (String, String) {
    match commit.tombstone_floor {
        Some(_) => (
            format!("{update}{set_floor}"),
            format!("{HEAD_VERSION_IS_EXPECTED}{FLOOR_NOT_ABOVE}"),
        ),
        None => (update.to_owned(), HEAD_VERSION_IS_EXPECTED.to_owned()),
    }
}
