//! Garbage collection's reads and removals (see [`sync_core::gc`]).
//!
//! Spaces are listed by a `Scan` of the table for space items; a space's garbage is read
//! by two `Query`s of its partition (eventually consistent: what they find is only removed
//! under conditions that the item is still what was found). Removals are conditional
//! `DeleteItem`s, a few at a time: a deleted entry only while it is still the delete of
//! that version, a client only while it is still idle. A run reads the whole table once
//! and more (every item of every space); schedule it accordingly (daily, say).

use crate::errors::store_error;
use crate::item::{self, Item, get_n, get_s, n, s};
use crate::schema::{self, space_pk};
use crate::store::DynamoStore;
use aws_sdk_dynamodb::types::AttributeValue;
use futures::future::try_join_all;
use sync_core::SpaceId;
use sync_core::store::{
    Garbage, GarbageCutoffs, GcResumePoint, Purged, SpacePage, StoreError, Version,
};

/// What every space's partition key starts with.
const SPACE_PREFIX: &str = "space#";
/// Removals in flight at once for one space.
const PURGE_CONCURRENCY: usize = 8;

impl DynamoStore {
    pub(crate) async fn list_space_page(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<SpacePage, StoreError> {
        let start = after.map(decode_cursor).transpose()?;
        let output = self
            .client()
            .scan()
            .table_name(self.table())
            // Only spaces: users' items (`user#<id>`) are no space.
            .filter_expression("#sk = :meta AND begins_with(#pk, :space)")
            .projection_expression("#pk")
            .expression_attribute_names("#pk", schema::PK)
            .expression_attribute_names("#sk", schema::SK)
            .expression_attribute_values(":meta", s(schema::META_SK))
            .expression_attribute_values(":space", s(SPACE_PREFIX))
            // Items read per page, before the filter: several per space.
            .limit(i32::try_from(limit.saturating_mul(64)).unwrap_or(i32::MAX))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|err| store_error("Scan", &err))?;
        let mut spaces = Vec::new();
        for found in output.items() {
            let pk = get_s(found, schema::PK)?;
            let Some(id) = pk.strip_prefix(SPACE_PREFIX) else {
                continue;
            };
            match SpaceId::parse(id) {
                Ok(space) => spaces.push(space),
                // Every stored space ID was validated when created.
                Err(_) => tracing::warn!("a space item with an invalid ID was skipped"),
            }
        }
        let next = match output.last_evaluated_key {
            Some(key) if !key.is_empty() => Some(encode_cursor(&key)?),
            _ => None,
        };
        Ok(SpacePage { spaces, next })
    }

    /// Where the last run stopped (see [`schema::GC_RESUME_PK`]). An item that does not
    /// read as one (written by another tool) only means the run starts over.
    pub(crate) async fn read_gc_resume_point(&self) -> Result<Option<GcResumePoint>, StoreError> {
        let Some(found) = self.get_item(schema::GC_RESUME_PK, schema::META_SK).await? else {
            return Ok(None);
        };
        let page_after = match found.get(schema::GC_PAGE_AFTER) {
            Some(AttributeValue::S(cursor)) => Some(cursor.clone()),
            _ => None,
        };
        let last_space = get_s(&found, schema::GC_LAST_SPACE)
            .ok()
            .and_then(|id| SpaceId::parse(id).ok());
        if last_space.is_none() {
            tracing::warn!("the garbage collector's resume point is unreadable: starting over");
        }
        Ok(last_space.map(|last_space| GcResumePoint {
            page_after,
            last_space,
        }))
    }

    pub(crate) async fn write_gc_resume_point(
        &self,
        point: Option<&GcResumePoint>,
    ) -> Result<(), StoreError> {
        let key = item::key(schema::GC_RESUME_PK, schema::META_SK);
        let Some(point) = point else {
            self.client()
                .delete_item()
                .table_name(self.table())
                .set_key(Some(key))
                .send()
                .await
                .map_err(|err| store_error("DeleteItem", &err))?;
            return Ok(());
        };
        // An update, not a put: the collector's permissions are those of the requests it
        // already sends.
        let mut request = self
            .client()
            .update_item()
            .table_name(self.table())
            .set_key(Some(key))
            .expression_attribute_names("#last", schema::GC_LAST_SPACE)
            .expression_attribute_names("#page", schema::GC_PAGE_AFTER)
            .expression_attribute_values(":last", s(point.last_space.as_str()));
        request = match &point.page_after {
            Some(cursor) => request
                .update_expression("SET #last = :last, #page = :page")
                .expression_attribute_values(":page", s(cursor)),
            None => request.update_expression("SET #last = :last REMOVE #page"),
        };
        request
            .send()
            .await
            .map_err(|err| store_error("UpdateItem", &err))?;
        Ok(())
    }

    pub(crate) async fn read_garbage(
        &self,
        space: &SpaceId,
        cutoffs: &GarbageCutoffs,
    ) -> Result<Option<Garbage>, StoreError> {
        let pk = space_pk(space.as_str());
        let Some(meta) = self.get_item(&pk, schema::META_SK).await? else {
            return Ok(None);
        };
        let version = get_n(&meta, schema::HEAD_VERSION)?;
        let tombstone_floor = match meta.get(schema::TOMBSTONE_FLOOR) {
            Some(_) => get_n(&meta, schema::TOMBSTONE_FLOOR)?,
            None => 0,
        };
        // The space's tombstones and its idle clients, read at once.
        let tombstone_values = [
            (":true", AttributeValue::Bool(true)),
            (":cutoff", n(cutoffs.tombstones_before_ms)),
        ];
        let client_values = [(":cutoff", n(cutoffs.clients_idle_before_ms))];
        let (tombstones, idle_clients) = tokio::join!(
            self.query_all(
                &pk,
                schema::ENTRY_PREFIX,
                "#del = :true AND #at < :cutoff",
                &[("#del", schema::DELETED), ("#v", schema::VERSION)],
                &tombstone_values,
                "#sk, #v",
            ),
            self.query_all(
                &pk,
                schema::CLIENT_PREFIX,
                "#at < :cutoff",
                &[("#g", schema::CLIENT_GROUP_ID)],
                &client_values,
                "#sk, #g",
            )
        );
        let tombstones = tombstones?
            .iter()
            .map(|found| {
                let sk = get_s(found, schema::SK)?;
                let key = sk.strip_prefix(schema::ENTRY_PREFIX).unwrap_or(sk);
                Ok((key.to_owned(), get_n(found, schema::VERSION)?))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let idle_clients = idle_clients?
            .iter()
            .map(|found| {
                let sk = get_s(found, schema::SK)?;
                let (group, id) = schema::parse_client_sk(sk).ok_or_else(|| {
                    StoreError::Corrupt("a client's sort key lacks its group".into())
                })?;
                Ok((group.to_owned(), id.to_owned()))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(Some(Garbage {
            version,
            tombstone_floor,
            tombstones,
            idle_clients,
        }))
    }

    /// Every item of the partition whose sort key starts with `prefix` and that passes
    /// `filter` (`#at` is the write time), with the attributes `projection` names.
    async fn query_all(
        &self,
        pk: &str,
        prefix: &str,
        filter: &str,
        names: &[(&str, &str)],
        values: &[(&str, AttributeValue)],
        projection: &str,
    ) -> Result<Vec<Item>, StoreError> {
        let mut found = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let mut request = self
                .client()
                .query()
                .table_name(self.table())
                .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
                .filter_expression(filter)
                .projection_expression(projection)
                .expression_attribute_names("#pk", schema::PK)
                .expression_attribute_names("#sk", schema::SK)
                .expression_attribute_names("#at", schema::WRITTEN_AT)
                .expression_attribute_values(":pk", s(pk))
                .expression_attribute_values(":prefix", s(prefix))
                .set_exclusive_start_key(start.take());
            for (name, attribute) in names {
                request = request.expression_attribute_names(*name, *attribute);
            }
            for (name, value) in values {
                request = request.expression_attribute_values(*name, value.clone());
            }
            let output = self.query_page(request).await?;
            found.extend(output.items.unwrap_or_default());
            match output.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(found),
            }
        }
    }

    pub(crate) async fn remove_garbage(
        &self,
        space: &SpaceId,
        tombstones: &[(String, Version)],
        idle_clients: &[(String, String)],
        clients_idle_before_ms: u64,
    ) -> Result<Purged, StoreError> {
        let pk = space_pk(space.as_str());
        let mut purged = Purged::default();
        for chunk in tombstones.chunks(PURGE_CONCURRENCY) {
            let removals = chunk
                .iter()
                .map(|(key, version)| self.remove_tombstone(&pk, key, *version));
            purged.tombstones += count(try_join_all(removals).await?);
        }
        for chunk in idle_clients.chunks(PURGE_CONCURRENCY) {
            let removals = chunk
                .iter()
                .map(|(group, id)| self.remove_client(&pk, group, id, clients_idle_before_ms));
            purged.clients += count(try_join_all(removals).await?);
        }
        Ok(purged)
    }

    /// Removes a deleted entry if it is still the delete of `version`.
    async fn remove_tombstone(
        &self,
        pk: &str,
        key: &str,
        version: Version,
    ) -> Result<bool, StoreError> {
        self.delete_if(
            pk,
            schema::entry_sk(key),
            "#del = :true AND #v = :v",
            &[("#del", schema::DELETED), ("#v", schema::VERSION)],
            &[(":true", AttributeValue::Bool(true)), (":v", n(version))],
        )
        .await
    }

    /// Removes an idle client's record, then its membership (a client that pushes again
    /// is a new client of its group, whose push is answered `ClientStateNotFound`).
    async fn remove_client(
        &self,
        pk: &str,
        group: &str,
        id: &str,
        idle_before_ms: u64,
    ) -> Result<bool, StoreError> {
        let removed = self
            .delete_if(
                pk,
                schema::client_sk(group, id),
                "#g = :g AND #at < :cutoff",
                &[("#g", schema::CLIENT_GROUP_ID), ("#at", schema::WRITTEN_AT)],
                &[(":g", s(group)), (":cutoff", n(idle_before_ms))],
            )
            .await?;
        if removed {
            self.delete_if(
                pk,
                schema::member_sk(id),
                "#g = :g",
                &[("#g", schema::CLIENT_GROUP_ID)],
                &[(":g", s(group))],
            )
            .await?;
        }
        Ok(removed)
    }

    /// Deletes the item if `condition` holds; `false` when it no longer does.
    async fn delete_if(
        &self,
        pk: &str,
        sk: String,
        condition: &str,
        names: &[(&str, &str)],
        values: &[(&str, AttributeValue)],
    ) -> Result<bool, StoreError> {
        let mut request = self
            .client()
            .delete_item()
            .table_name(self.table())
            .set_key(Some(item::key(pk, sk)))
            .condition_expression(condition);
        for (name, attribute) in names {
            request = request.expression_attribute_names(*name, *attribute);
        }
        for (name, value) in values {
            request = request.expression_attribute_values(*name, value.clone());
        }
        match request.send().await {
            Ok(_) => Ok(true),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(err) => Err(store_error("DeleteItem", &err)),
        }
    }
}

/// How many of the removals took place.
fn count(removed: Vec<bool>) -> u64 {
    removed.into_iter().map(u64::from).sum()
}

/// A scan's position as text: the JSON of its key's two strings.
fn encode_cursor(key: &Item) -> Result<String, StoreError> {
    let pk = get_s(key, schema::PK)?;
    let sk = get_s(key, schema::SK)?;
    serde_json::to_string(&[pk, sk])
        .map_err(|e| StoreError::Rejected(format!("cannot encode a scan position: {e}")))
}

fn decode_cursor(text: &str) -> Result<Item, StoreError> {
    let [pk, sk]: [String; 2] = serde_json::from_str(text)
        .map_err(|_| StoreError::Rejected("not a scan position of this store".into()))?;
    Ok(item::key(&pk, sk))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_other_text() {
        let key = item::key("space#a\"b", "meta");
        let text = encode_cursor(&key).unwrap();
        assert_eq!(decode_cursor(&text).unwrap(), key);
        assert!(decode_cursor("[1]").is_err());
        assert!(decode_cursor("space#x").is_err());
    }
}
