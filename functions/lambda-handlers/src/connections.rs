//! Poke connections of the WebSocket API, kept in the sync table beside the space:
//! `pk=space#<id>, sk=ws#<connectionId>` lists a space's connections with one Query, and
//! a reverse item `pk=conn#<connectionId>, sk=meta` tells `$disconnect` which space the
//! connection belonged to. Both keep the user who opened the connection (`user`, absent
//! for anonymous ones). Both carry a TTL: API Gateway closes every connection within
//! two hours, and a `$disconnect` that never ran must not leave records forever.
//!
//! Calls are retried by the client, one of `store_dynamodb`'s (see
//! `store_dynamodb::retries`): throttling, 5xx, timeouts and dropped connections are
//! retried there, with the store's bounds. `BatchWriteItem`'s unprocessed items are an
//! answer, not an error, so resubmitting them stays here.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{BuildError, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, PutRequest, Select, WriteRequest};
use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use sync_core::SpaceId;
use sync_core::auth::ANONYMOUS;

/// API Gateway's maximum connection duration.
pub const CONNECTION_TTL: Duration = Duration::from_secs(2 * 60 * 60);

use store_dynamodb::schema::{PK, SK, TTL_ATTRIBUTE as TTL};

const SPACE_ID: &str = "spaceID";
/// The user who opened the connection (absent for anonymous connections).
const USER: &str = "user";

#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    #[error("DynamoDB request failed: {0}")]
    Dynamo(String),
    #[error("DynamoDB did not process every write; retry")]
    Unprocessed,
}

/// The SDK's final error of `operation`, in one line: codes and messages, never the
/// items sent.
fn dynamo_err<E>(operation: &str, e: &SdkError<E>) -> ConnectionError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    ConnectionError::Dynamo(store_dynamodb::describe(operation, e))
}

fn invalid_request(e: BuildError) -> ConnectionError {
    ConnectionError::Dynamo(format!("invalid DynamoDB request: {e}"))
}

#[derive(Clone)]
pub struct ConnectionTable {
    client: Client,
    table: String,
}

fn space_pk(space: &SpaceId) -> AttributeValue {
    AttributeValue::S(format!("space#{space}"))
}

fn forward_sk(connection_id: &str) -> AttributeValue {
    AttributeValue::S(format!("ws#{connection_id}"))
}

fn reverse_key(connection_id: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([
        (
            PK.to_owned(),
            AttributeValue::S(format!("conn#{connection_id}")),
        ),
        (SK.to_owned(), AttributeValue::S("meta".to_owned())),
    ])
}

fn epoch_secs(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl ConnectionTable {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// Records `connection_id` as an anonymous poke subscriber of `space`.
    pub async fn add(&self, space: &SpaceId, connection_id: &str) -> Result<(), ConnectionError> {
        self.add_for_user(space, connection_id, ANONYMOUS).await
    }

    /// Records `connection_id` as a poke subscriber of `space`, opened by `user` (kept on
    /// both records; [`ANONYMOUS`] is not written). One BatchWriteItem.
    pub async fn add_for_user(
        &self,
        space: &SpaceId,
        connection_id: &str,
        user: &str,
    ) -> Result<(), ConnectionError> {
        let expires = AttributeValue::N(epoch_secs(SystemTime::now() + CONNECTION_TTL).to_string());
        let mut forward = HashMap::from([
            (PK.to_owned(), space_pk(space)),
            (SK.to_owned(), forward_sk(connection_id)),
            (TTL.to_owned(), expires.clone()),
        ]);
        let mut reverse = reverse_key(connection_id);
        reverse.insert(SPACE_ID.to_owned(), AttributeValue::S(space.to_string()));
        reverse.insert(TTL.to_owned(), expires);
        if user != ANONYMOUS {
            for item in [&mut forward, &mut reverse] {
                item.insert(USER.to_owned(), AttributeValue::S(user.to_owned()));
            }
        }
        let puts = [forward, reverse]
            .into_iter()
            .map(|item| {
                let put = PutRequest::builder()
                    .set_item(Some(item))
                    .build()
                    .map_err(invalid_request)?;
                Ok(WriteRequest::builder().put_request(put).build())
            })
            .collect::<Result<Vec<_>, ConnectionError>>()?;
        self.batch_write(puts).await
    }

    /// Forgets a connection (on `$disconnect`); returns the space it belonged to.
    pub async fn remove(&self, connection_id: &str) -> Result<Option<SpaceId>, ConnectionError> {
        let item = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(reverse_key(connection_id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| dynamo_err("GetItem", &e))?
            .item;
        let space = item
            .as_ref()
            .and_then(|i| i.get(SPACE_ID))
            .and_then(|v| v.as_s().ok())
            .and_then(|s| SpaceId::parse(s).ok());
        match &space {
            Some(space) => self.remove_from_space(space, connection_id).await?,
            None => self.delete_keys(vec![reverse_key(connection_id)]).await?,
        }
        Ok(space)
    }

    /// Deletes both records of a connection known to belong to `space`.
    pub async fn remove_from_space(
        &self,
        space: &SpaceId,
        connection_id: &str,
    ) -> Result<(), ConnectionError> {
        let forward = HashMap::from([
            (PK.to_owned(), space_pk(space)),
            (SK.to_owned(), forward_sk(connection_id)),
        ]);
        self.delete_keys(vec![forward, reverse_key(connection_id)])
            .await
    }

    /// The user who opened `connection_id` (read consistently): `None` for an unknown
    /// connection, [`ANONYMOUS`] for one opened without sign-in.
    pub async fn user_of(&self, connection_id: &str) -> Result<Option<String>, ConnectionError> {
        let item = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(reverse_key(connection_id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| dynamo_err("GetItem", &e))?
            .item;
        Ok(item.map(|item| {
            item.get(USER)
                .and_then(|v| v.as_s().ok())
                .cloned()
                .unwrap_or_else(|| ANONYMOUS.to_owned())
        }))
    }

    /// How many live connections `space` has, counted up to `up_to` (the count stops
    /// there): Query with `Select=COUNT` on the space's connection records, which reads
    /// keys only and returns no items, page after page until `up_to` is reached.
    pub async fn count_live(
        &self,
        space: &SpaceId,
        up_to: usize,
    ) -> Result<usize, ConnectionError> {
        let now = AttributeValue::N(epoch_secs(SystemTime::now()).to_string());
        let mut count = 0usize;
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#pk = :pk AND begins_with(#sk, :ws)")
                .filter_expression("attribute_not_exists(#ttl) OR #ttl > :now")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#sk", SK)
                .expression_attribute_names("#ttl", TTL)
                .expression_attribute_values(":pk", space_pk(space))
                .expression_attribute_values(":ws", AttributeValue::S("ws#".into()))
                .expression_attribute_values(":now", now.clone())
                .select(Select::Count)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| dynamo_err("Query", &e))?;
            count += usize::try_from(page.count).unwrap_or(0);
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() && count < up_to => start = Some(key),
                _ => return Ok(count),
            }
        }
    }

    /// The live connection IDs of `space`. Records past their TTL are skipped: DynamoDB
    /// deletes expired items only eventually.
    pub async fn list(&self, space: &SpaceId) -> Result<Vec<String>, ConnectionError> {
        let now = epoch_secs(SystemTime::now());
        let mut ids = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#pk = :pk AND begins_with(#sk, :ws)")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#sk", SK)
                .expression_attribute_values(":pk", space_pk(space))
                .expression_attribute_values(":ws", AttributeValue::S("ws#".into()))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| dynamo_err("Query", &e))?;
            for item in page.items() {
                let live = item
                    .get(TTL)
                    .and_then(|v| v.as_n().ok())
                    .and_then(|n| n.parse::<u64>().ok())
                    .is_none_or(|expires| expires > now);
                let id = item
                    .get(SK)
                    .and_then(|v| v.as_s().ok())
                    .and_then(|sk| sk.strip_prefix("ws#"));
                if let (true, Some(id)) = (live, id) {
                    ids.push(id.to_owned());
                }
            }
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(ids),
            }
        }
    }

    async fn delete_keys(
        &self,
        keys: Vec<HashMap<String, AttributeValue>>,
    ) -> Result<(), ConnectionError> {
        let deletes = keys
            .into_iter()
            .map(|key| {
                Ok(WriteRequest::builder()
                    .delete_request(
                        DeleteRequest::builder()
                            .set_key(Some(key))
                            .build()
                            .map_err(invalid_request)?,
                    )
                    .build())
            })
            .collect::<Result<Vec<_>, ConnectionError>>()?;
        self.batch_write(deletes).await
    }

    /// One BatchWriteItem, resubmitting unprocessed writes a few times.
    async fn batch_write(&self, mut writes: Vec<WriteRequest>) -> Result<(), ConnectionError> {
        for attempt in 0..5u32 {
            if writes.is_empty() {
                return Ok(());
            }
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(20 << attempt)).await;
            }
            let out = self
                .client
                .batch_write_item()
                .request_items(&self.table, writes)
                .send()
                .await
                .map_err(|e| dynamo_err("BatchWriteItem", &e))?;
            writes = out
                .unprocessed_items
                .and_then(|mut m| m.remove(&self.table))
                .unwrap_or_default();
        }
        if writes.is_empty() {
            Ok(())
        } else {
            Err(ConnectionError::Unprocessed)
        }
    }
}
