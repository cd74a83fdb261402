//! Spaces and who may use them: creating a space (counted against its owner's limit),
//! reading its access, and changing it.
//!
//! A space's access lives on its space item ([`schema::OWNER`], [`schema::LINK`],
//! [`schema::MEMBERS`]), so the push's snapshot and the pull's first read carry it with the
//! version at no extra request. Messages and logs here never name a user.

use crate::errors::{CreationCancelled, creation_cancelled, invalid_request, store_error};
use crate::item::{self, Item, access_attributes, get_access, n, s, string_set};
use crate::schema::{self, space_pk, user_pk};
use crate::store::DynamoStore;
use aws_sdk_dynamodb::operation::update_item::UpdateItemOutput;
use aws_sdk_dynamodb::types::{Put, ReturnValue, TransactWriteItem, Update};
use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use sync_core::SpaceId;
use sync_core::auth::{ANONYMOUS, AccessChange, LinkAccess, SpaceAccess};
use sync_core::store::{Created, StoreError};

const ITEM_IS_NEW: &str = "attribute_not_exists(#pk)";
const ITEM_EXISTS: &str = "attribute_exists(#pk)";
/// The owner's count may move while below the limit; a first creation creates it.
const COUNT_BELOW_LIMIT: &str = "attribute_not_exists(#count) OR #count < :limit";
/// With a limit of 0 no count is below it, not even a missing one.
const COUNT_BELOW_ZERO: &str = "#count < :limit";

/// Operands DynamoDB takes in one `IN` of a condition.
const MAX_IN_OPERANDS: usize = 100;
/// Tries of a creation, or of an access change read first, that keeps meeting a
/// concurrent one on the same items (the same owner creating spaces, the same space's
/// access changing) before it gives up with a temporary error.
const MAX_TRIES: u32 = 5;

impl DynamoStore {
    /// Creates the space item at version 0 with `access`; with `owner_limit` and an owner,
    /// in one transaction with the owner's count (see [`schema::SPACE_COUNT`]).
    pub(crate) async fn create_space_with(
        &self,
        space: &SpaceId,
        access: &SpaceAccess,
        owner_limit: Option<usize>,
    ) -> Result<Created, StoreError> {
        let mut meta = item::key(&space_pk(space.as_str()), schema::META_SK);
        meta.insert(schema::HEAD_VERSION.to_owned(), n(0));
        meta.insert(schema::CREATED_AT.to_owned(), n(now_millis()));
        meta.extend(access_attributes(access));
        let created = match owner_limit {
            Some(limit) if access.owner != ANONYMOUS => {
                self.put_counted_space(meta, &access.owner, limit).await?
            }
            _ => self.put_space(meta).await?,
        };
        tracing::debug!(space_id = %space, counted = owner_limit.is_some()
            && access.owner != ANONYMOUS, ?created, "create space");
        Ok(created)
    }

    /// One conditional `PutItem`.
    async fn put_space(&self, meta: Item) -> Result<Created, StoreError> {
        let result = self
            .client()
            .put_item()
            .table_name(self.table())
            .set_item(Some(meta))
            .condition_expression(ITEM_IS_NEW)
            .expression_attribute_names("#pk", schema::PK)
            .send()
            .await;
        match result {
            Ok(_) => Ok(Created::Yes),
            // Also what a retry finds after a try that created the space but whose answer
            // was lost: the space exists either way.
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(Created::Exists)
            }
            Err(err) => Err(store_error("PutItem", &err)),
        }
    }

    /// One `TransactWriteItems`: the space item if it does not exist, and the owner's count
    /// up by one if it is below `limit`; either both or neither. The SDK sends a retry
    /// with the same `ClientRequestToken`, so a retry after a lost answer is recognized
    /// as the same transaction, and the space is not counted twice.
    async fn put_counted_space(
        &self,
        meta: Item,
        owner: &str,
        limit: usize,
    ) -> Result<Created, StoreError> {
        let limit = u64::try_from(limit).unwrap_or(u64::MAX);
        let put = Put::builder()
            .table_name(self.table())
            .set_item(Some(meta))
            .condition_expression(ITEM_IS_NEW)
            .expression_attribute_names("#pk", schema::PK)
            .build()
            .map_err(invalid_request)?;
        let count = Update::builder()
            .table_name(self.table())
            .set_key(Some(item::key(&user_pk(owner), schema::SPACE_COUNT_SK)))
            .update_expression("ADD #count :one")
            .condition_expression(if limit == 0 {
                COUNT_BELOW_ZERO
            } else {
                COUNT_BELOW_LIMIT
            })
            .expression_attribute_names("#count", schema::SPACE_COUNT)
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":limit", n(limit))
            .build()
            .map_err(invalid_request)?;
        // The space item first: `creation_cancelled` reads the reasons in this order.
        let actions = vec![
            TransactWriteItem::builder().put(put).build(),
            TransactWriteItem::builder().update(count).build(),
        ];
        for attempt in 0..MAX_TRIES {
            if attempt > 0 {
                tokio::time::sleep(pause(attempt)).await;
            }
            let result = self
                .client()
                .transact_write_items()
                .set_transact_items(Some(actions.clone()))
                .send()
                .await;
            match result {
                Ok(_) => return Ok(Created::Yes),
                Err(err) => match creation_cancelled(&err)? {
                    CreationCancelled::Exists => return Ok(Created::Exists),
                    CreationCancelled::OwnerAtLimit => return Ok(Created::OwnerAtLimit),
                    // Another creation by the same owner held the count: nothing was
                    // written, try again.
                    CreationCancelled::Conflict => {}
                },
            }
        }
        tracing::warn!(
            tries = MAX_TRIES,
            "creating a space met a concurrent creation by the same owner each time"
        );
        Err(StoreError::Unavailable(format!(
            "the owner's space count was busy during each of {MAX_TRIES} tries; retry"
        )))
    }

    /// Who may use the space, from a consistent `GetItem` of its space item.
    pub(crate) async fn read_access(
        &self,
        space: &SpaceId,
    ) -> Result<Option<SpaceAccess>, StoreError> {
        self.get_item(&space_pk(space.as_str()), schema::META_SK)
            .await?
            .map(|meta| get_access(&meta))
            .transpose()
    }

    /// Applies `change` ([`AccessChange::applied_to`]: removals win over additions, the
    /// owner never becomes a member) and returns the access after it.
    ///
    /// Usually one conditional `UpdateItem` that adds to or deletes from the members set
    /// in place and sets the link access. One update cannot both add to and delete from
    /// one set (DynamoDB refuses two actions on one path), and it cannot leave the owner
    /// out of `add` without knowing who that is: it is conditioned on the owner not being
    /// among the users added. A change that adds and removes, that adds more users than
    /// one `IN` takes, or whose additions turn out to include the owner, is read first and
    /// written whole, on the condition that the members are still the ones read.
    pub(crate) async fn update_access(
        &self,
        space: &SpaceId,
        change: &AccessChange,
    ) -> Result<Option<SpaceAccess>, StoreError> {
        let pk = space_pk(space.as_str());
        let add: BTreeSet<&String> = change.add.difference(&change.remove).collect();
        if add.is_empty() && change.remove.is_empty() && change.link.is_none() {
            return self.read_access(space).await;
        }
        if (add.is_empty() || change.remove.is_empty())
            && add.len() <= MAX_IN_OPERANDS
            && let Some(access) = self
                .update_access_in_place(&pk, &add, &change.remove, change.link)
                .await?
        {
            return Ok(Some(access));
        }
        // The space is unknown (the read says so), the owner is among the users added, or
        // the change needs the whole set written.
        self.update_access_read_first(&pk, change).await
    }

    /// The change as one `UpdateItem` of the members set in place (`add` and `remove` are
    /// not both non-empty). `None` when its condition failed: the space is unknown, or
    /// its owner is among `add`; nothing was written.
    async fn update_access_in_place(
        &self,
        pk: &str,
        add: &BTreeSet<&String>,
        remove: &BTreeSet<String>,
        link: Option<LinkAccess>,
    ) -> Result<Option<SpaceAccess>, StoreError> {
        let mut request = self
            .client()
            .update_item()
            .table_name(self.table())
            .set_key(Some(item::key(pk, schema::META_SK)))
            .expression_attribute_names("#pk", schema::PK)
            .return_values(ReturnValue::AllNew);
        let mut clauses = Vec::new();
        // Every change counts itself, so that a read-first change can tell whether one
        // landed since its read (see `schema::ACCESS_VERSION`).
        let mut additions = vec!["#av :one".to_owned()];
        request = request
            .expression_attribute_names("#av", schema::ACCESS_VERSION)
            .expression_attribute_values(":one", n(1));
        let mut condition = ITEM_EXISTS.to_owned();
        if let Some(link) = link {
            clauses.push("SET #link = :link".to_owned());
            request = request
                .expression_attribute_names("#link", schema::LINK)
                .expression_attribute_values(":link", s(link.as_str()));
        }
        if let Some(users) = string_set(add.iter().copied()) {
            additions.push("#members :add".to_owned());
            request = request
                .expression_attribute_names("#members", schema::MEMBERS)
                .expression_attribute_names("#owner", schema::OWNER)
                .expression_attribute_values(":add", users);
            // The owner is never a member. A space without an owner attribute is nobody's:
            // `#owner IN (...)` is false there.
            let mut operands = Vec::with_capacity(add.len());
            for (i, user) in add.iter().enumerate() {
                let operand = format!(":u{i}");
                request = request.expression_attribute_values(&operand, s(*user));
                operands.push(operand);
            }
            condition.push_str(&format!(" AND NOT (#owner IN ({}))", operands.join(", ")));
        }
        if let Some(users) = string_set(remove) {
            clauses.push("DELETE #members :remove".to_owned());
            request = request
                .expression_attribute_names("#members", schema::MEMBERS)
                .expression_attribute_values(":remove", users);
        }
        clauses.push(format!("ADD {}", additions.join(", ")));
        let result = request
            .update_expression(clauses.join(" "))
            .condition_expression(condition)
            .send()
            .await;
        match result {
            Ok(output) => access_after(output).map(Some),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(None)
            }
            Err(err) => Err(store_error("UpdateItem", &err)),
        }
    }

    /// The change as a consistent read of the space item and an `UpdateItem` writing the
    /// members it computes, on the condition that they are still the ones read (a
    /// concurrent change is redone on top, never lost); the link access is set as the
    /// change says, like [`Self::update_access_in_place`] does.
    async fn update_access_read_first(
        &self,
        pk: &str,
        change: &AccessChange,
    ) -> Result<Option<SpaceAccess>, StoreError> {
        for attempt in 0..MAX_TRIES {
            if attempt > 0 {
                tokio::time::sleep(pause(attempt)).await;
            }
            let Some(meta) = self.get_item(pk, schema::META_SK).await? else {
                return Ok(None);
            };
            let next = change.applied_to(&get_access(&meta)?);
            let mut request = self
                .client()
                .update_item()
                .table_name(self.table())
                .set_key(Some(item::key(pk, schema::META_SK)))
                .expression_attribute_names("#pk", schema::PK)
                .expression_attribute_names("#members", schema::MEMBERS)
                .return_values(ReturnValue::AllNew);
            let mut sets = Vec::new();
            let mut remove_members = false;
            match string_set(&next.members) {
                Some(members) => {
                    sets.push("#members = :members");
                    request = request.expression_attribute_values(":members", members);
                }
                None => remove_members = true,
            }
            if let Some(link) = change.link {
                sets.push("#link = :link");
                request = request
                    .expression_attribute_names("#link", schema::LINK)
                    .expression_attribute_values(":link", s(link.as_str()));
            }
            let mut update = Vec::new();
            if !sets.is_empty() {
                update.push(format!("SET {}", sets.join(", ")));
            }
            if remove_members {
                update.push("REMOVE #members".to_owned());
            }
            update.push("ADD #av :one".to_owned());
            request = request
                .expression_attribute_names("#av", schema::ACCESS_VERSION)
                .expression_attribute_values(":one", n(1));
            // No access change landed since the read: the count of changes is the one read
            // (a number compares exactly, where sets may not).
            let condition = match meta.get(schema::ACCESS_VERSION) {
                Some(seen) => {
                    request = request.expression_attribute_values(":seen", seen.clone());
                    "attribute_exists(#pk) AND #av = :seen"
                }
                None => "attribute_exists(#pk) AND attribute_not_exists(#av)",
            };
            let result = request
                .update_expression(update.join(" "))
                .condition_expression(condition)
                .send()
                .await;
            match result {
                Ok(output) => return access_after(output).map(Some),
                // The members changed since the read (or the space is gone): read again.
                Err(err)
                    if err
                        .as_service_error()
                        .is_some_and(|e| e.is_conditional_check_failed_exception()) => {}
                Err(err) => return Err(store_error("UpdateItem", &err)),
            }
        }
        tracing::warn!(
            tries = MAX_TRIES,
            "a space's members changed during each try of an access change"
        );
        Err(StoreError::Unavailable(format!(
            "the space's access changed during each of {MAX_TRIES} tries; retry"
        )))
    }
}

/// The access an `UpdateItem` with `ALL_NEW` left.
fn access_after(output: UpdateItemOutput) -> Result<SpaceAccess, StoreError> {
    let meta = output.attributes.ok_or_else(|| {
        StoreError::Unavailable("UpdateItem answered without the updated item".into())
    })?;
    get_access(&meta)
}

/// A jittered pause before try `attempt` (1, 2, ...): below 20, 40, 80 ... ms.
fn pause(attempt: u32) -> Duration {
    Duration::from_millis(10)
        .saturating_mul(1 << attempt.min(6))
        .mul_f64(rand::random::<f64>())
}

fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
