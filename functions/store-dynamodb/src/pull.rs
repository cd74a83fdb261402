//! A pull's snapshot on DynamoDB: the space as of one version, from a consistent
//! `BatchGetItem` of the space item (version, access) and the client group's item (its
//! owner), then, at once, a consistent `Query` of the version index (the entries) and one
//! of the group's clients (their common sort-key prefix: never another group's).
//!
//! DynamoDB has no read snapshot across items. Each item a `BatchGetItem` reads is read
//! as a `GetItem` would be, serializable with a transaction, but a `Query` is only
//! read-committed: it reads item by item while commits land. So the snapshot is checked,
//! not assumed:
//! - the `Query` has no upper bound: a row newer than the version read means a commit
//!   landed meanwhile, and the read is redone (a bounded number of times), never answered
//!   without that row;
//! - the space item names the items its last commit wrote; any the `Query` saw from before
//!   that commit (it had not landed on them yet) are read again until they show it.
//!
//! Every row the `Query` returns at or below the version is then the row as of that
//! version: a later commit would have given it a larger version.

use crate::item::{Item, entry_text, get_access, get_head_items, get_n, get_s, n, s};
use crate::schema::{self, space_pk};
use crate::store::DynamoStore;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use sync_core::SpaceId;
use sync_core::auth::SpaceAccess;
use sync_core::store::{PullSnapshot, StoreError, Version};

/// Reads of the whole snapshot before a pull gives up with a temporary error. Each redo
/// means another commit landed during the read; a space committing faster than a pull can
/// read it is rare and passes.
const MAX_READS: u32 = 10;
/// Ceiling of the jittered pause before a redo (doubling from 2 ms).
const MAX_REDO_PAUSE: Duration = Duration::from_millis(64);

/// Pauses between checks of the last commit's items that a pull found not yet applied:
/// 315 ms in all. A commit lands on all its items within milliseconds; past that, the
/// pull fails with a temporary error and the client retries it.
const HEAD_SETTLE_DELAYS: [Duration; 6] = [
    Duration::from_millis(5),
    Duration::from_millis(10),
    Duration::from_millis(20),
    Duration::from_millis(40),
    Duration::from_millis(80),
    Duration::from_millis(160),
];

/// How the adapter's pulls went: how often a read had to be redone because a commit
/// landed during it.
#[derive(Debug, Default)]
pub struct PullStats {
    snapshots: AtomicU64,
    redos: AtomicU64,
}

impl PullStats {
    /// Snapshots answered, and reads redone on the way.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.snapshots.load(Ordering::Relaxed),
            self.redos.load(Ordering::Relaxed),
        )
    }
}

/// What a read of the snapshot starts from: the space item, the access it records, and
/// the group's owner.
struct Head {
    meta: Item,
    access: SpaceAccess,
    group_owner: Option<String>,
}

/// What one read of the snapshot found.
enum Read {
    Snapshot(PullSnapshot),
    /// A commit landed during the read.
    Overtaken,
}

pub(crate) async fn pull_snapshot(
    store: &DynamoStore,
    space: &SpaceId,
    client_group_id: &str,
    since: Version,
) -> Result<Option<PullSnapshot>, StoreError> {
    let pk = space_pk(space.as_str());
    for read in 0..MAX_READS {
        if read > 0 {
            store.pull_stats().redos.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(space_id = %space, read, "a commit landed during the pull's read; reading again");
            tokio::time::sleep(redo_pause(read)).await;
        }
        // The space item and the group's item together, in one request: the pull stays at
        // one request when nothing changed, two otherwise. The space item is read as a
        // consistent `GetItem` reads it (serializable with a commit), which is all the
        // checks below rely on. The two items are not read as one snapshot, and need not
        // be: a group's owner is written once, by the group's first commit, and never
        // changes, so this read finds the owner or, while that first commit is still
        // landing, no owner yet, the answer a pull an instant earlier would get. What the
        // group's clients push is guarded by the push's own transactional snapshot.
        let sks = [
            schema::META_SK.to_owned(),
            schema::group_sk(client_group_id),
        ];
        let mut items = store.batch_get(&pk, &sks).await?.into_iter();
        let (Some(Some(meta)), Some(group)) = (items.next(), items.next()) else {
            return Ok(None);
        };
        let head = Head {
            access: get_access(&meta)?,
            group_owner: group
                .map(|group| get_s(&group, schema::OWNER).map(str::to_owned))
                .transpose()?,
            meta,
        };
        match read_once(store, &pk, &head, client_group_id, since).await? {
            Read::Snapshot(snapshot) => {
                store.pull_stats().snapshots.fetch_add(1, Ordering::Relaxed);
                return Ok(Some(snapshot));
            }
            Read::Overtaken => {}
        }
    }
    tracing::warn!(space_id = %space, reads = MAX_READS,
        "every read of the pull was overtaken by a commit");
    Err(StoreError::Unavailable(format!(
        "the space changed during each of {MAX_READS} reads; retry"
    )))
}

fn redo_pause(read: u32) -> Duration {
    let ceiling = Duration::from_millis(2)
        .saturating_mul(1 << read.min(8))
        .min(MAX_REDO_PAUSE);
    ceiling.mul_f64(rand::random::<f64>())
}

async fn read_once(
    store: &DynamoStore,
    pk: &str,
    head: &Head,
    client_group_id: &str,
    since: Version,
) -> Result<Read, StoreError> {
    let meta = &head.meta;
    let version = get_n(meta, schema::HEAD_VERSION)?;
    let tombstone_floor = match meta.get(schema::TOMBSTONE_FLOOR) {
        Some(_) => get_n(meta, schema::TOMBSTONE_FLOOR)?,
        None => 0,
    };
    let unchanged = || PullSnapshot {
        tombstone_floor,
        ..PullSnapshot::unchanged(version, head.access.clone(), head.group_owner.clone())
    };
    if since >= version {
        // Nothing to read: whatever is stamped above `since` is above `version` too.
        return Ok(Read::Snapshot(unchanged()));
    }
    let group_prefix = schema::group_clients_prefix(client_group_id);
    let (entries, clients) = tokio::join!(
        changed_items(store, pk, since, version),
        changed_clients(store, pk, &group_prefix, since, version)
    );
    let (Some(mut items), Some(clients)) = (entries?, clients?) else {
        return Ok(Read::Overtaken);
    };
    items.extend(clients);
    // The `Query` may have read some of the last commit's items before that commit landed
    // on them: it saw them as they were before, or not at all.
    let head_version = match meta.get(schema::HEAD_ITEMS_VERSION) {
        Some(_) => get_n(meta, schema::HEAD_ITEMS_VERSION)?,
        None => version,
    };
    let mut unseen: Vec<String> = if head_version > since {
        get_head_items(meta)?
            .into_iter()
            // Its entries and this group's clients: another group's are none of this
            // pull's business.
            .filter(|sk| sk.starts_with(schema::ENTRY_PREFIX) || sk.starts_with(&group_prefix))
            .filter(|sk| {
                items.get(sk.as_str()).is_none_or(|item| {
                    get_n(item, schema::version_attribute(sk)).ok() != Some(head_version)
                })
            })
            .collect()
    } else {
        Vec::new()
    };
    unseen.sort();
    unseen.dedup();
    if !unseen.is_empty() {
        match await_head_items(store, pk, unseen, head_version).await? {
            Some(landed) => items.extend(landed),
            None => return Ok(Read::Overtaken),
        }
    }
    snapshot_of(unchanged(), items.into_values(), client_group_id).map(Read::Snapshot)
}

/// The entry items stamped above `since`, by sort key; `None` when one is stamped above
/// `version` (a commit landed during the read).
async fn changed_items(
    store: &DynamoStore,
    pk: &str,
    since: Version,
    version: Version,
) -> Result<Option<BTreeMap<String, Item>>, StoreError> {
    // No upper bound: a row overwritten after `version` must be seen, not dropped.
    let query = || {
        store
            .client()
            .query()
            .table_name(store.table())
            .index_name(schema::VERSION_INDEX)
            .consistent_read(true)
            .key_condition_expression("#pk = :pk AND #v > :since")
            .expression_attribute_names("#pk", schema::PK)
            .expression_attribute_names("#v", schema::VERSION)
            .expression_attribute_values(":pk", s(pk))
            .expression_attribute_values(":since", n(since))
    };
    stamped_between(store, query, schema::VERSION, since, version).await
}

/// The group's client items (sort keys starting with `prefix`) stamped above `since`, by
/// sort key; `None` when one is stamped above `version`. A group has a client per tab
/// that ever pushed, so this is a page, rarely more.
async fn changed_clients(
    store: &DynamoStore,
    pk: &str,
    prefix: &str,
    since: Version,
    version: Version,
) -> Result<Option<BTreeMap<String, Item>>, StoreError> {
    let query = || {
        store
            .client()
            .query()
            .table_name(store.table())
            .consistent_read(true)
            .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
            .expression_attribute_names("#pk", schema::PK)
            .expression_attribute_names("#sk", schema::SK)
            .expression_attribute_values(":pk", s(pk))
            .expression_attribute_values(":prefix", s(prefix))
    };
    stamped_between(store, query, schema::CLIENT_VERSION, since, version).await
}

/// Every page of `query`: the items whose `stamp` is above `since`, by sort key; `None`
/// as soon as one is above `version`.
async fn stamped_between(
    store: &DynamoStore,
    query: impl Fn() -> QueryFluentBuilder,
    stamp: &str,
    since: Version,
    version: Version,
) -> Result<Option<BTreeMap<String, Item>>, StoreError> {
    let mut items = BTreeMap::new();
    let mut start: Option<Item> = None;
    loop {
        let output = store
            .query_page(query().set_exclusive_start_key(start.take()))
            .await?;
        for found in output.items.unwrap_or_default() {
            let stamped = get_n(&found, stamp)?;
            if stamped > version {
                return Ok(None);
            }
            if stamped > since {
                items.insert(get_s(&found, schema::SK)?.to_owned(), found);
            }
        }
        match output.last_evaluated_key {
            Some(key) if !key.is_empty() => start = Some(key),
            _ => return Ok(Some(items)),
        }
    }
}

/// Reads the items `sks` of the commit `version` until each shows that commit, and
/// returns them; `None` when one already shows a later commit (the snapshot is overtaken).
/// Each item of a consistent `BatchGetItem` is read serializably with the commit, so an
/// item below `version` is one the commit has not reached yet: it is read again after a
/// short pause, and [`StoreError::Unavailable`] ends the wait (the client retries its
/// pull).
async fn await_head_items(
    store: &DynamoStore,
    pk: &str,
    mut sks: Vec<String>,
    version: Version,
) -> Result<Option<Vec<(String, Item)>>, StoreError> {
    let mut landed = Vec::new();
    let mut pauses = HEAD_SETTLE_DELAYS.iter();
    loop {
        // All at once: a large commit names up to ~98 items, one `BatchGetItem` takes 100
        // (and a pull sends no other kind of read than it and its `Query`).
        let found = store.batch_get(pk, &sks).await?;
        let mut pending = Vec::new();
        for (sk, item) in sks.into_iter().zip(found) {
            match item {
                Some(item) => match get_n(&item, schema::version_attribute(&sk))? {
                    v if v == version => landed.push((sk, item)),
                    v if v > version => return Ok(None),
                    _ => pending.push(sk),
                },
                // The commit creates it and has not reached it yet.
                None => pending.push(sk),
            }
        }
        sks = pending;
        if sks.is_empty() {
            return Ok(Some(landed));
        }
        let Some(pause) = pauses.next() else {
            tracing::warn!(
                pending = sks.len(),
                version,
                "the last commit did not land on all its items in time"
            );
            return Err(StoreError::Unavailable(format!(
                "commit {version} is still being applied to {} items",
                sks.len()
            )));
        };
        tokio::time::sleep(*pause).await;
    }
}

/// `snapshot` with what a pull sends of `items`: entries, and the LMIDs of
/// `client_group_id`'s clients.
fn snapshot_of(
    mut snapshot: PullSnapshot,
    items: impl Iterator<Item = Item>,
    client_group_id: &str,
) -> Result<PullSnapshot, StoreError> {
    for found in items {
        let sk = get_s(&found, schema::SK)?;
        if let Some(key) = sk.strip_prefix(schema::ENTRY_PREFIX) {
            // The value's text as it is, unparsed, copied once into the pull's buffer.
            snapshot.entries.push(key, entry_text(&found)?);
        } else if let Some((group, client_id)) = schema::parse_client_sk(sk) {
            // Another group's LMIDs must never reach this group (none was read: checked
            // anyway, it costs nothing).
            if group == client_group_id
                && get_s(&found, schema::CLIENT_GROUP_ID)? == client_group_id
            {
                let lmid = get_n(&found, schema::LAST_MUTATION_ID)?;
                snapshot.client_lmids.push((client_id.to_owned(), lmid));
            }
        }
    }
    // Items come in sort-key order (a `BTreeMap` by sort key): entries (`e#`) by key,
    // clients (`c#`) by ID; the sorts only check that (a sorted run is one pass).
    snapshot.entries.sort_by_key();
    snapshot.client_lmids.sort();
    Ok(snapshot)
}
