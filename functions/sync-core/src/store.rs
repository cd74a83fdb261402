//! The storage contract of the per-space version strategy.
//!
//! A space has one version counter. Every commit moves it from `v` to a larger value, only
//! if it is still `v`, and stamps every entry and client record it writes with the new
//! version. Each protocol step is one call, and each adapter owns the consistency of its
//! call: the push's snapshot ([`Store::push_snapshot`]), a mutator's reads, the commit, and
//! the pull's change set at one version ([`Store::pull_snapshot`]). The engine does the
//! rest.

use crate::auth::{AccessChange, SpaceAccess};
use crate::changed_entries::ChangedEntries;
use crate::ids::SpaceId;
use crate::json_text::JsonText;
use serde_json::Value;
use std::collections::HashMap;

pub type Version = u64;

/// A storage failure. Nothing was half-applied.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Temporary: the request may be retried.
    #[error("storage is unavailable: {0}")]
    Unavailable(String),
    /// Temporary: another request's write was being applied to an item this read needs
    /// (DynamoDB cancels a transactional read that meets a commit in flight). To a push
    /// this is a lost race like a failed commit condition: it retries from a fresh
    /// snapshot.
    #[error("storage is busy with a concurrent write: {0}")]
    Busy(String),
    /// Temporary: the store sheds load.
    #[error("storage is throttling requests: {0}")]
    Throttled(String),
    /// Permanent: what is stored cannot be read back.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// Permanent: the store refused this request and will refuse it the same way again
    /// (a limit of the store the engine did not know of, a validation error).
    #[error("storage refused the request: {0}")]
    Rejected(String),
}

impl StoreError {
    /// Whether the same call may succeed later. Retrying a permanent error only repeats it.
    pub fn is_temporary(&self) -> bool {
        matches!(
            self,
            StoreError::Unavailable(_) | StoreError::Throttled(_) | StoreError::Busy(_)
        )
    }
}

/// Size limits of one commit and one entry. The engine splits a push into several commits
/// and refuses oversized values so that an adapter never sees a write it cannot take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreLimits {
    /// Entry and client writes in one commit (the space-version update is extra); a
    /// client without a record yet counts twice (its record and its group membership,
    /// [`Commit::new_clients`]).
    pub max_writes_per_commit: usize,
    /// Bytes of keys and values in one commit.
    pub max_commit_bytes: usize,
    /// Bytes of one entry's key plus its JSON value.
    pub max_entry_bytes: usize,
    /// Bytes of one entry key.
    pub max_key_bytes: usize,
    /// Nesting depth of one stored value, so that it parses back (JSON parsers, ours
    /// included, refuse documents nested deeper than 128 levels).
    pub max_value_depth: usize,
}

impl StoreLimits {
    /// DynamoDB's: 100 actions and 4 MB per `TransactWriteItems` (one action is the
    /// version update, one may be a client-group record) and 400 KB per item, with room
    /// kept for attribute names and the other attributes. Every adapter uses the same
    /// limits so that a push behaves the same on every store.
    pub const DYNAMODB: StoreLimits = StoreLimits {
        max_writes_per_commit: 98,
        max_commit_bytes: 3_500_000,
        max_entry_bytes: 390_000,
        max_key_bytes: 1_000,
        max_value_depth: 100,
    };
}

/// What a client record says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRecord {
    pub client_group_id: String,
    pub last_mutation_id: u64,
}

/// The state a push starts from, read consistently at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct PushSnapshot {
    pub version: Version,
    /// The requested clients that exist, in any group (a client of another group is
    /// refused: its record may then say only its group).
    pub clients: HashMap<String, ClientRecord>,
    /// The owner of the client group when the group exists.
    pub group_owner: Option<String>,
    /// Who may use the space.
    pub access: SpaceAccess,
}

/// How creating a space went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    Yes,
    /// A space with this ID exists already; nothing was written.
    Exists,
    /// The owner has as many spaces as the limit allows; nothing was written.
    OwnerAtLimit,
}

/// Everything one commit writes, stamped with `next_version`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Commit {
    pub expected_version: Version,
    pub next_version: Version,
    /// Each key at most once; `None` deletes (a soft delete a pull reports as `del`).
    pub entries: Vec<(String, Option<Value>)>,
    /// Client ID -> new record; each client at most once.
    pub clients: Vec<(String, ClientRecord)>,
    /// The clients of `clients` that had no record in the push's snapshot: a store that
    /// keys client records by group records here which group each client belongs to.
    pub new_clients: Vec<String>,
    /// A client group seen for the first time: (group ID, owner).
    pub new_group: Option<(String, String)>,
    /// Raises the space's tombstone floor to this version (garbage collection's commit,
    /// before it removes the tombstones at or below it; see [`PullSnapshot::tombstone_floor`]).
    /// A floor never goes down: a lower one leaves it as it is.
    pub tombstone_floor: Option<Version>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitOutcome {
    Committed,
    /// The space version was no longer `expected_version` (or the space is gone); nothing
    /// was written.
    Conflict,
}

/// One entry changed since a pull's cookie, owned (a pull holds them in one buffer:
/// [`ChangedEntries`]).
#[derive(Debug, Clone, PartialEq)]
pub struct EntryChange {
    pub key: String,
    /// The stored text; `None` when the entry was deleted.
    pub value: Option<JsonText>,
}

/// What a pull answers from: a space's version and, as of exactly that version, every
/// entry (deleted ones included) and every LMID of the requesting group's clients changed
/// since the pull's cookie.
#[derive(Debug, Clone, PartialEq)]
pub struct PullSnapshot {
    pub version: Version,
    /// In key order.
    pub entries: ChangedEntries,
    /// In client ID order.
    pub client_lmids: Vec<(String, u64)>,
    /// Who may use the space.
    pub access: SpaceAccess,
    /// The owner of the requesting client group, when the group exists.
    pub group_owner: Option<String>,
    /// Deletions stamped at or below this version may have been removed by garbage
    /// collection: a pull whose cookie is below it cannot learn them and gets a reset.
    pub tombstone_floor: Version,
}

impl PullSnapshot {
    /// A snapshot with nothing changed at `version`.
    pub fn unchanged(version: Version, access: SpaceAccess, group_owner: Option<String>) -> Self {
        Self {
            version,
            entries: ChangedEntries::new(),
            client_lmids: Vec::new(),
            access,
            group_owner,
            tombstone_floor: 0,
        }
    }
}

/// What garbage collection may remove, as times in epoch milliseconds: each store stamps
/// every entry and client record a commit writes with the time of the commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GarbageCutoffs {
    /// Deleted entries whose delete is older than this.
    pub tombstones_before_ms: u64,
    /// Client records last written (by a push of theirs) before this.
    pub clients_idle_before_ms: u64,
}

/// Deleted entries and idle clients of one space that garbage collection may remove.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Garbage {
    /// The space version when this was read.
    pub version: Version,
    /// The space's tombstone floor when this was read.
    pub tombstone_floor: Version,
    /// Deleted entries older than the cutoff: (key, the version of their delete).
    pub tombstones: Vec<(String, Version)>,
    /// Clients idle since before the cutoff: (client group ID, client ID).
    pub idle_clients: Vec<(String, String)>,
}

impl Garbage {
    pub fn is_empty(&self) -> bool {
        self.tombstones.is_empty() && self.idle_clients.is_empty()
    }
}

/// What a [`Store::purge`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    pub tombstones: u64,
    pub clients: u64,
}

/// One page of [`Store::list_spaces`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpacePage {
    pub spaces: Vec<SpaceId>,
    /// Where the next page starts (the store's own notation); `None` after the last page.
    pub next: Option<String>,
}

#[async_trait::async_trait]
pub trait Store: Send + Sync {
    fn limits(&self) -> StoreLimits {
        StoreLimits::DYNAMODB
    }

    /// Creates the space at version 0, open to anyone and owned by nobody (the tutorial's
    /// mode). `Ok(false)` when it exists already.
    async fn create_space(&self, space: &SpaceId) -> Result<bool, StoreError> {
        let created = self
            .create_space_for(space, &SpaceAccess::legacy(), None)
            .await?;
        Ok(created == Created::Yes)
    }

    /// Creates the space at version 0 with `access`, unless it exists or (with
    /// `owner_limit`) its owner already owns that many spaces. Spaces owned by
    /// [`crate::auth::ANONYMOUS`] are not counted.
    async fn create_space_for(
        &self,
        space: &SpaceId,
        access: &SpaceAccess,
        owner_limit: Option<usize>,
    ) -> Result<Created, StoreError>;

    /// Who may use the space, read consistently; `None` for an unknown space.
    async fn space_access(&self, space: &SpaceId) -> Result<Option<SpaceAccess>, StoreError>;

    /// Applies `change` to the space's access atomically (the members never exceed
    /// [`crate::auth::MAX_MEMBERS`]: the engine checks before). The access after it;
    /// `None` for an unknown space.
    async fn change_access(
        &self,
        space: &SpaceId,
        change: &AccessChange,
    ) -> Result<Option<SpaceAccess>, StoreError>;

    /// The space version, read consistently; `None` for an unknown space.
    async fn space_version(&self, space: &SpaceId) -> Result<Option<Version>, StoreError>;

    /// The space version and access, the named clients' records and the group's owner, in
    /// one consistent read. `None` for an unknown space.
    async fn push_snapshot(
        &self,
        space: &SpaceId,
        client_group_id: &str,
        client_ids: &[String],
    ) -> Result<Option<PushSnapshot>, StoreError>;

    /// [`Store::push_snapshot`] and, in the same consistent read, the live values of
    /// `entry_keys` (`None` = absent or deleted): the keys a push expects its mutators to
    /// read, so that the push needs one round trip fewer. Keys are within
    /// [`StoreLimits::max_key_bytes`]. A store may return fewer entries than asked (the
    /// mutators read the others themselves): the default returns none, for stores whose
    /// reads cost no round trip.
    async fn push_snapshot_with_entries(
        &self,
        space: &SpaceId,
        client_group_id: &str,
        client_ids: &[String],
        entry_keys: &[String],
    ) -> Result<Option<(PushSnapshot, HashMap<String, Option<Value>>)>, StoreError> {
        let _ = entry_keys;
        Ok(self
            .push_snapshot(space, client_group_id, client_ids)
            .await?
            .map(|snapshot| (snapshot, HashMap::new())))
    }

    /// The live (not deleted) value of one entry, never older than the last commit whose
    /// version a preceding [`Store::push_snapshot`] saw (a commit still being applied must
    /// not show through as the value before it).
    async fn get_entry(&self, space: &SpaceId, key: &str) -> Result<Option<Value>, StoreError>;

    /// Live entries whose key starts with `prefix`, in key order, at most `limit`.
    ///
    /// Unlike [`Store::get_entry`], this need not be atomic with respect to a commit in
    /// flight: an adapter whose range reads are read-committed (DynamoDB's `Query`) may
    /// return part of a commit that is still being applied. A push built on such a scan is
    /// still committed only if the space version has not moved, but that check protects
    /// only what was read consistently (the snapshot and `get_entry`), not the scanned
    /// values.
    async fn scan_entries(
        &self,
        space: &SpaceId,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<(String, Value)>, StoreError>;

    /// Applies `commit` atomically if the space version is still `expected_version`.
    async fn commit(&self, space: &SpaceId, commit: &Commit) -> Result<CommitOutcome, StoreError>;

    /// The space as of one version: its version `v`, and every entry and every LMID of
    /// `client_group_id`'s clients stamped in `(since, v]`, all of them as they were at `v`
    /// and not one of them later; with the space's access and the group's owner. `None`
    /// for an unknown space.
    ///
    /// Rows keep only their latest value, so bounding a range read by a version read
    /// earlier is not enough (a row overwritten meanwhile drops out): an adapter reads the
    /// version and the rows in one snapshot, or reads with no upper bound and redoes the
    /// read when a commit landed in between.
    async fn pull_snapshot(
        &self,
        space: &SpaceId,
        client_group_id: &str,
        since: Version,
    ) -> Result<Option<PullSnapshot>, StoreError>;

    /// Garbage collection: the IDs of spaces, a page (about `limit`) at a time, starting
    /// where `after` (a previous page's `next`) says. A page may be empty and still have a
    /// `next`.
    async fn list_spaces(&self, after: Option<&str>, limit: usize)
    -> Result<SpacePage, StoreError>;

    /// Garbage collection: the space's deleted entries and idle clients older than
    /// `cutoffs`, with its version and tombstone floor. Need not be one snapshot: what it
    /// finds is only removed by [`Store::purge`] under conditions. `None` for an unknown
    /// space.
    async fn find_garbage(
        &self,
        space: &SpaceId,
        cutoffs: &GarbageCutoffs,
    ) -> Result<Option<Garbage>, StoreError>;

    /// Garbage collection: removes each of `tombstones` that is still the delete stamped
    /// with that version (a key written again since stays), and each of `idle_clients`
    /// still last written before `clients_idle_before_ms` (a client that pushed since
    /// stays). The engine purges tombstones only at or below the space's tombstone floor.
    async fn purge(
        &self,
        space: &SpaceId,
        tombstones: &[(String, Version)],
        idle_clients: &[(String, String)],
        clients_idle_before_ms: u64,
    ) -> Result<Purged, StoreError>;

    /// Where the last garbage collection run stopped, when it stopped at its deadline
    /// before the end of the spaces: the next run goes on from there.
    async fn gc_resume_point(&self) -> Result<Option<GcResumePoint>, StoreError>;

    /// Records where a run stopped; `None` when it reached the end (the next one starts
    /// from the first space).
    async fn set_gc_resume_point(&self, point: Option<&GcResumePoint>) -> Result<(), StoreError>;
}

/// Where a garbage collection run stopped: in the page of spaces listed after
/// `page_after` (a [`SpacePage::next`], `None` for the first page), after finishing
/// `last_space`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcResumePoint {
    pub page_after: Option<String>,
    pub last_space: SpaceId,
}

/// Now, in epoch milliseconds: what stores stamp on the records a commit writes.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
