//! The embedded adapter of [`sync_core::Store`]: one SQLite file (or an in-memory
//! database), for local runs and tests.
//!
//! Tables:
//! - `spaces(id, version, owner, link)`: one row per space, its version counter and who
//!   may use it (`owner` is `""` for spaces created without sign-in, `link` is `open` or
//!   `members`); a partial index on `owner` (signed-in owners only) counts a user's spaces;
//! - `space_members(space, user)`: one row per member of a space;
//! - `entries(space, key, value, version, deleted)`: values as JSON text, soft-deleted so
//!   that a pull can report `del`; indexed on `(space, version)` for pulls;
//! - `clients(space, client_id, client_group_id, last_mutation_id, version)`: indexed on
//!   `(space, client_group_id, version)`, which is exactly what a pull asks for;
//! - `groups(space, group_id, owner)`.
//!
//! Entries and clients record when the commit that wrote them ran (`written_at`, epoch
//! ms), and each space the version at or below which garbage collection may have removed
//! deletes (`tombstone_floor`); see [`sync_core::gc`].
//!
//! Members are rows rather than a JSON array on `spaces`: the primary key keeps each
//! member once, an access change writes only the members it adds or removes, and nothing
//! but values is stored as JSON that a reader must parse (and could find corrupt).
//!
//! rusqlite is blocking, so every call runs on tokio's blocking pool, with the single
//! connection behind a mutex. One connection serializes all access, which also makes every
//! read trivially consistent; the transactions are still there so that the file stays
//! correct if another process opens it too.
//!
//! The schema has a version (`PRAGMA user_version`); opening an older file migrates it in
//! place, in one transaction, and a newer one is refused.

mod error;

pub use error::SqliteError;

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use sync_core::SpaceId;
use sync_core::auth::{ANONYMOUS, AccessChange, LinkAccess, SpaceAccess};
use sync_core::changed_entries::ChangedEntries;
use sync_core::store::{
    ClientRecord, Commit, CommitOutcome, Created, Garbage, GarbageCutoffs, GcResumePoint,
    PullSnapshot, Purged, PushSnapshot, SpacePage, Store, StoreError, Version, now_ms,
};

/// How long a statement waits for a lock held by another connection before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The schema this build writes: the number of [`MIGRATIONS`].
pub const SCHEMA_VERSION: i64 = 4;

/// `MIGRATIONS[n]` takes a file from schema version `n` to `n + 1`. Never edit a step once
/// released (files out there are at every version): add one and bump [`SCHEMA_VERSION`].
const MIGRATIONS: [&str; SCHEMA_VERSION as usize] = [SCHEMA_V1, V1_TO_V2, V2_TO_V3, V3_TO_V4];

/// Version 0 -> 1: the first schema. `IF NOT EXISTS` because version 0 is also a
/// version-1 file whose version was never recorded (the first release created the tables
/// and then set the version, in two steps).
const SCHEMA_V1: &str = "
CREATE TABLE IF NOT EXISTS spaces (
    id      TEXT    NOT NULL PRIMARY KEY,
    version INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS entries (
    space   TEXT    NOT NULL,
    key     TEXT    NOT NULL,
    value   TEXT,
    version INTEGER NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (space, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS entries_by_version ON entries (space, version);

CREATE TABLE IF NOT EXISTS clients (
    space            TEXT    NOT NULL,
    client_id        TEXT    NOT NULL,
    client_group_id  TEXT    NOT NULL,
    last_mutation_id INTEGER NOT NULL,
    version          INTEGER NOT NULL,
    PRIMARY KEY (space, client_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS clients_by_group_version
    ON clients (space, client_group_id, version);

CREATE TABLE IF NOT EXISTS groups (
    space    TEXT NOT NULL,
    group_id TEXT NOT NULL,
    owner    TEXT NOT NULL,
    PRIMARY KEY (space, group_id)
) WITHOUT ROWID;
";

/// Version 1 -> 2: who may use each space. Spaces stored before are what
/// [`SpaceAccess::legacy`] says: owned by nobody (`""`), open to anyone with the link.
const V1_TO_V2: &str = "
ALTER TABLE spaces ADD COLUMN owner TEXT NOT NULL DEFAULT '';
ALTER TABLE spaces ADD COLUMN link TEXT NOT NULL DEFAULT 'open'
    CHECK (link IN ('open', 'members'));
CREATE INDEX spaces_by_owner ON spaces (owner) WHERE owner <> '';

CREATE TABLE space_members (
    space TEXT NOT NULL,
    user  TEXT NOT NULL,
    PRIMARY KEY (space, user)
) WITHOUT ROWID;
";

/// Version 2 -> 3: what garbage collection needs. Rows written before count as written
/// when the file was migrated, so they age from then.
const V2_TO_V3: &str = "
ALTER TABLE spaces ADD COLUMN tombstone_floor INTEGER NOT NULL DEFAULT 0;
ALTER TABLE entries ADD COLUMN written_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE clients ADD COLUMN written_at INTEGER NOT NULL DEFAULT 0;
UPDATE entries SET written_at = CAST(strftime('%s', 'now') AS INTEGER) * 1000;
UPDATE clients SET written_at = CAST(strftime('%s', 'now') AS INTEGER) * 1000;
CREATE INDEX entries_tombstones ON entries (space, written_at) WHERE deleted = 1;
CREATE INDEX clients_by_written_at ON clients (space, written_at);
";

/// Version 3 -> 4: where a garbage collection run stopped at its deadline (one row at
/// most).
const V3_TO_V4: &str = "
CREATE TABLE gc_resume (
    only_row   INTEGER NOT NULL PRIMARY KEY CHECK (only_row = 1),
    page_after TEXT,
    last_space TEXT NOT NULL
);
";

/// A pull's reads. A first pull reads every entry of the space: walking the primary key
/// gives them in key order. A later pull reads only what changed since its cookie, through
/// the version index (walking the primary key there reads the whole space to find a few
/// rows: an incremental pull would cost as much as a first one), and sorts the few it
/// finds. A pull reads only its own group's clients, through their index. `INDEXED BY`
/// makes the plan explicit: without it, SQLite prefers the primary key's order to a sort.
const ALL_ENTRIES: &str = "SELECT key, value, deleted FROM entries
    WHERE space = ?1 AND version > ?2 ORDER BY key";
const ENTRIES_CHANGED_SINCE: &str = "SELECT key, value, deleted FROM entries
    INDEXED BY entries_by_version WHERE space = ?1 AND version > ?2";
const GROUP_CLIENTS_CHANGED_SINCE: &str = "SELECT client_id, last_mutation_id FROM clients
    INDEXED BY clients_by_group_version
    WHERE space = ?1 AND client_group_id = ?2 AND version > ?3";

/// How many spaces `?1` owns, counting at most `?2`. The `owner <> ''` term matches the
/// partial index's condition, which lets SQLite use it.
const COUNT_OWNED: &str = "SELECT COUNT(*) FROM (
    SELECT 1 FROM spaces WHERE owner = ?1 AND owner <> '' LIMIT ?2
)";

/// A [`Store`] on SQLite. Cheap to clone; clones share the connection.
#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path` and its schema. The parent
    /// directory must exist.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, SqliteError> {
        let path = path.as_ref();
        let conn = Connection::open(path).map_err(|source| SqliteError::Open {
            path: path.to_owned(),
            source,
        })?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // WAL lets readers in other processes (a shell, a backup) work beside the server;
        // with WAL, `synchronous = NORMAL` is durable across crashes of the process, which
        // is what a local server needs.
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(SqliteError::JournalMode(mode));
        }
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        Self::init(conn)
    }

    /// A private database that lives as long as this store (and its clones).
    pub fn in_memory() -> Result<Self, SqliteError> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(mut conn: Connection) -> Result<Self, SqliteError> {
        migrate(&mut conn)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Runs `f` with the connection on the blocking pool.
    async fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, SqliteError> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        let result = tokio::task::spawn_blocking(move || {
            // A panic while the lock was held unwound through rusqlite's `Transaction`,
            // which rolls back on drop, so the connection is still sound: keep using it.
            let mut guard = conn.lock().unwrap_or_else(PoisonError::into_inner);
            f(&mut guard)
        })
        .await
        .map_err(SqliteError::from)
        .and_then(|r| r);
        result.map_err(|e| {
            tracing::warn!(error = %e, "sqlite store call failed");
            e.into()
        })
    }
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    async fn create_space_for(
        &self,
        space: &SpaceId,
        access: &SpaceAccess,
        owner_limit: Option<usize>,
    ) -> Result<Created, StoreError> {
        let space = space.as_str().to_owned();
        let access = access.clone();
        self.run(move |conn| {
            // IMMEDIATE: the existence check, the count and the insert hold the write lock
            // throughout, so two creations cannot both pass the limit.
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let exists = tx
                .prepare_cached("SELECT 1 FROM spaces WHERE id = ?1")?
                .exists(params![space])?;
            if exists {
                return Ok(Created::Exists);
            }
            if let Some(limit) = owner_limit
                && access.owner != ANONYMOUS
            {
                let limit = i64::try_from(limit).unwrap_or(i64::MAX);
                let owned: i64 = tx
                    .prepare_cached(COUNT_OWNED)?
                    .query_row(params![access.owner, limit], |row| row.get(0))?;
                if owned >= limit {
                    return Ok(Created::OwnerAtLimit);
                }
            }
            tx.prepare_cached(
                "INSERT INTO spaces (id, version, owner, link) VALUES (?1, 0, ?2, ?3)",
            )?
            .execute(params![space, access.owner, access.link.as_str()])?;
            add_members(&tx, &space, &access.members)?;
            tx.commit()?;
            Ok(Created::Yes)
        })
        .await
    }

    async fn space_access(&self, space: &SpaceId) -> Result<Option<SpaceAccess>, StoreError> {
        let space = space.as_str().to_owned();
        self.run(move |conn| {
            // The space row and its members in one snapshot.
            let tx = conn.transaction()?;
            let access = read_space(&tx, &space)?.map(|(_, access)| access);
            tx.commit()?;
            Ok(access)
        })
        .await
    }

    async fn change_access(
        &self,
        space: &SpaceId,
        change: &AccessChange,
    ) -> Result<Option<SpaceAccess>, StoreError> {
        let space = space.as_str().to_owned();
        let change = change.clone();
        self.run(move |conn| {
            // IMMEDIATE: read, change and write back with no other writer in between.
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let Some((_, before)) = read_space(&tx, &space)? else {
                return Ok(None);
            };
            let after = change.applied_to(&before);
            if after.link != before.link {
                tx.prepare_cached("UPDATE spaces SET link = ?2 WHERE id = ?1")?
                    .execute(params![space, after.link.as_str()])?;
            }
            {
                let mut stmt =
                    tx.prepare_cached("DELETE FROM space_members WHERE space = ?1 AND user = ?2")?;
                for user in before.members.difference(&after.members) {
                    stmt.execute(params![space, user])?;
                }
            }
            add_members(&tx, &space, after.members.difference(&before.members))?;
            tx.commit()?;
            Ok(Some(after))
        })
        .await
    }

    async fn space_version(&self, space: &SpaceId) -> Result<Option<Version>, StoreError> {
        let space = space.as_str().to_owned();
        self.run(move |conn| read_version(conn, &space)).await
    }

    async fn push_snapshot(
        &self,
        space: &SpaceId,
        client_group_id: &str,
        client_ids: &[String],
    ) -> Result<Option<PushSnapshot>, StoreError> {
        let space = space.as_str().to_owned();
        let group = client_group_id.to_owned();
        let client_ids = client_ids.to_vec();
        self.run(move |conn| {
            let tx = conn.transaction()?;
            let Some((version, access)) = read_space(&tx, &space)? else {
                return Ok(None);
            };
            let mut clients = HashMap::with_capacity(client_ids.len());
            {
                let mut stmt = tx.prepare_cached(
                    "SELECT client_group_id, last_mutation_id FROM clients
                     WHERE space = ?1 AND client_id = ?2",
                )?;
                for id in client_ids {
                    let row = stmt
                        .query_row(params![space, id], |row| {
                            Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
                        })
                        .optional()?;
                    if let Some((client_group_id, lmid)) = row {
                        let record = ClientRecord {
                            client_group_id,
                            last_mutation_id: from_db(lmid, "last_mutation_id")?,
                        };
                        clients.insert(id, record);
                    }
                }
            }
            let group_owner = read_group_owner(&tx, &space, &group)?;
            tx.commit()?;
            Ok(Some(PushSnapshot {
                version,
                clients,
                group_owner,
                access,
            }))
        })
        .await
    }

    async fn get_entry(&self, space: &SpaceId, key: &str) -> Result<Option<Value>, StoreError> {
        let space = space.as_str().to_owned();
        let key = key.to_owned();
        self.run(move |conn| {
            let text = conn
                .prepare_cached(
                    "SELECT value FROM entries WHERE space = ?1 AND key = ?2 AND deleted = 0",
                )?
                .query_row(params![space, key], |row| row.get::<_, Option<String>>(0))
                .optional()?
                .flatten();
            text.map(|t| parse_value(&t)).transpose()
        })
        .await
    }

    async fn scan_entries(
        &self,
        space: &SpaceId,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<(String, Value)>, StoreError> {
        let space = space.as_str().to_owned();
        let prefix = prefix.to_owned();
        self.run(move |conn| {
            // Keys compare bytewise (SQLite's BINARY collation), which for UTF-8 is the
            // code-point order of Rust strings: the keys with the prefix form one run
            // starting at the prefix itself.
            let mut stmt = conn.prepare_cached(
                "SELECT key, value FROM entries
                 WHERE space = ?1 AND key >= ?2 AND deleted = 0
                 ORDER BY key",
            )?;
            let mut rows = stmt.query(params![space, prefix])?;
            let mut out = Vec::new();
            while out.len() < limit {
                let Some(row) = rows.next()? else { break };
                let key: String = row.get(0)?;
                if !key.starts_with(prefix.as_str()) {
                    break;
                }
                let text: Option<String> = row.get(1)?;
                let text = text.ok_or(SqliteError::MissingValue)?;
                out.push((key, parse_value(&text)?));
            }
            Ok(out)
        })
        .await
    }

    async fn commit(&self, space: &SpaceId, commit: &Commit) -> Result<CommitOutcome, StoreError> {
        let space = space.as_str().to_owned();
        let commit = commit.clone();
        self.run(move |conn| {
            // IMMEDIATE takes the write lock up front, so the version check and the writes
            // cannot interleave with another writer.
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if !apply_commit(&tx, &space, &commit)? {
                // Dropping `tx` rolls back; nothing was written anyway.
                return Ok(CommitOutcome::Conflict);
            }
            tx.commit()?;
            Ok(CommitOutcome::Committed)
        })
        .await
    }

    async fn pull_snapshot(
        &self,
        space: &SpaceId,
        client_group_id: &str,
        since: Version,
    ) -> Result<Option<PullSnapshot>, StoreError> {
        let space = space.as_str().to_owned();
        let group = client_group_id.to_owned();
        self.run(move |conn| {
            // One read transaction: the version, the access and the rows are of one
            // snapshot (with WAL, also against writers in other processes).
            let tx = conn.transaction()?;
            let Some((version, access)) = read_space(&tx, &space)? else {
                return Ok(None);
            };
            let since = to_db(since, "since")?;
            let mut entries = ChangedEntries::new();
            {
                let mut stmt = tx.prepare_cached(if since == 0 {
                    ALL_ENTRIES
                } else {
                    ENTRIES_CHANGED_SINCE
                })?;
                let mut rows = stmt.query(params![space, since])?;
                while let Some(row) = rows.next()? {
                    // Borrowed from the row, copied once into the pull's buffer.
                    let key = row.get_ref(0)?.as_str().map_err(rusqlite::Error::from)?;
                    let deleted: bool = row.get(2)?;
                    let value = if deleted {
                        None
                    } else {
                        let text = row
                            .get_ref(1)?
                            .as_str_or_null()
                            .map_err(rusqlite::Error::from)?;
                        Some(text.ok_or(SqliteError::MissingValue)?)
                    };
                    // As stored: a pull passes the text through, unparsed.
                    entries
                        .push_stored(key, value)
                        .map_err(SqliteError::DecodeValue)?;
                }
            }
            if since > 0 {
                // The few changed entries, found in version order.
                entries.sort_by_key();
            }
            let mut client_lmids = Vec::new();
            {
                let mut stmt = tx.prepare_cached(GROUP_CLIENTS_CHANGED_SINCE)?;
                let mut rows = stmt.query(params![space, group, since])?;
                while let Some(row) = rows.next()? {
                    let id: String = row.get(0)?;
                    let lmid = from_db(row.get(1)?, "last_mutation_id")?;
                    client_lmids.push((id, lmid));
                }
            }
            client_lmids.sort();
            let group_owner = read_group_owner(&tx, &space, &group)?;
            let tombstone_floor = read_floor(&tx, &space)?;
            tx.commit()?;
            Ok(Some(PullSnapshot {
                version,
                entries,
                client_lmids,
                access,
                group_owner,
                tombstone_floor,
            }))
        })
        .await
    }

    async fn list_spaces(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<SpacePage, StoreError> {
        let after = after.unwrap_or("").to_owned();
        self.run(move |conn| {
            let limit_db = i64::try_from(limit).unwrap_or(i64::MAX);
            let ids = conn
                .prepare_cached("SELECT id FROM spaces WHERE id > ?1 ORDER BY id LIMIT ?2")?
                .query_map(params![after, limit_db], |row| row.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()?;
            let next = (ids.len() == limit).then(|| ids.last().cloned()).flatten();
            // IDs were validated when their spaces were created.
            let spaces = ids
                .into_iter()
                .filter_map(|id| SpaceId::parse(&id).ok())
                .collect();
            Ok(SpacePage { spaces, next })
        })
        .await
    }

    async fn find_garbage(
        &self,
        space: &SpaceId,
        cutoffs: &GarbageCutoffs,
    ) -> Result<Option<Garbage>, StoreError> {
        let space = space.as_str().to_owned();
        let cutoffs = *cutoffs;
        self.run(move |conn| {
            let tx = conn.transaction()?;
            let Some(version) = read_version(&tx, &space)? else {
                return Ok(None);
            };
            let tombstone_floor = read_floor(&tx, &space)?;
            let before = to_db(cutoffs.tombstones_before_ms, "cutoff")?;
            let tombstones = tx
                .prepare_cached(
                    "SELECT key, version FROM entries
                     WHERE space = ?1 AND deleted = 1 AND written_at < ?2",
                )?
                .query_map(params![space, before], |row| {
                    Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
                })?
                .map(|row| {
                    let (key, v) = row?;
                    Ok((key, from_db(v, "version")?))
                })
                .collect::<Result<Vec<_>, SqliteError>>()?;
            let idle_before = to_db(cutoffs.clients_idle_before_ms, "cutoff")?;
            let idle_clients = tx
                .prepare_cached(
                    "SELECT client_group_id, client_id FROM clients
                     WHERE space = ?1 AND written_at < ?2",
                )?
                .query_map(params![space, idle_before], |row| {
                    Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            tx.commit()?;
            Ok(Some(Garbage {
                version,
                tombstone_floor,
                tombstones,
                idle_clients,
            }))
        })
        .await
    }

    async fn purge(
        &self,
        space: &SpaceId,
        tombstones: &[(String, Version)],
        idle_clients: &[(String, String)],
        clients_idle_before_ms: u64,
    ) -> Result<Purged, StoreError> {
        let space = space.as_str().to_owned();
        let tombstones = tombstones.to_vec();
        let idle_clients = idle_clients.to_vec();
        self.run(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut purged = Purged::default();
            {
                let mut stmt = tx.prepare_cached(
                    "DELETE FROM entries
                     WHERE space = ?1 AND key = ?2 AND version = ?3 AND deleted = 1",
                )?;
                for (key, version) in &tombstones {
                    let removed = stmt.execute(params![space, key, to_db(*version, "version")?])?;
                    purged.tombstones += removed as u64;
                }
            }
            {
                let before = to_db(clients_idle_before_ms, "cutoff")?;
                let mut stmt = tx.prepare_cached(
                    "DELETE FROM clients
                     WHERE space = ?1 AND client_id = ?2 AND client_group_id = ?3
                       AND written_at < ?4",
                )?;
                for (group, id) in &idle_clients {
                    purged.clients += stmt.execute(params![space, id, group, before])? as u64;
                }
            }
            tx.commit()?;
            Ok(purged)
        })
        .await
    }

    async fn gc_resume_point(&self) -> Result<Option<GcResumePoint>, StoreError> {
        self.run(|conn| {
            let row: Option<(Option<String>, String)> = conn
                .query_row(
                    "SELECT page_after, last_space FROM gc_resume WHERE only_row = 1",
                    [],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .optional()?;
            // A space ID that no longer parses (a file edited by hand) only means the run
            // starts over.
            Ok(row.and_then(|(page_after, last)| {
                SpaceId::parse(&last).ok().map(|last_space| GcResumePoint {
                    page_after,
                    last_space,
                })
            }))
        })
        .await
    }

    async fn set_gc_resume_point(&self, point: Option<&GcResumePoint>) -> Result<(), StoreError> {
        let point = point.map(|p| (p.page_after.clone(), p.last_space.as_str().to_owned()));
        self.run(move |conn| {
            match point {
                Some((page_after, last_space)) => conn.execute(
                    "INSERT INTO gc_resume (only_row, page_after, last_space) VALUES (1, ?1, ?2)
                     ON CONFLICT (only_row) DO UPDATE
                     SET page_after = excluded.page_after, last_space = excluded.last_space",
                    params![page_after, last_space],
                )?,
                None => conn.execute("DELETE FROM gc_resume", [])?,
            };
            Ok(())
        })
        .await
    }
}

/// The version check and every write of one commit. `false` (and nothing written) when
/// the space is gone or its version is no longer the expected one.
fn apply_commit(tx: &Transaction<'_>, space: &str, commit: &Commit) -> Result<bool, SqliteError> {
    let expected = to_db(commit.expected_version, "expected_version")?;
    let next = to_db(commit.next_version, "next_version")?;
    let bumped = tx
        .prepare_cached("UPDATE spaces SET version = ?3 WHERE id = ?1 AND version = ?2")?
        .execute(params![space, expected, next])?;
    if bumped != 1 {
        return Ok(false);
    }
    if let Some(floor) = commit.tombstone_floor {
        tx.prepare_cached(
            "UPDATE spaces SET tombstone_floor = max(tombstone_floor, ?2) WHERE id = ?1",
        )?
        .execute(params![space, to_db(floor, "tombstone_floor")?])?;
    }
    let at = to_db(now_ms(), "written_at")?;
    {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO entries (space, key, value, version, deleted, written_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (space, key) DO UPDATE SET
                 value = excluded.value, version = excluded.version,
                 deleted = excluded.deleted, written_at = excluded.written_at",
        )?;
        for (key, value) in &commit.entries {
            let text = value
                .as_ref()
                .map(serde_json::to_string)
                .transpose()
                .map_err(SqliteError::EncodeValue)?;
            let deleted = text.is_none();
            stmt.execute(params![space, key, text, next, deleted, at])?;
        }
    }
    {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO clients
                 (space, client_id, client_group_id, last_mutation_id, version, written_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (space, client_id) DO UPDATE SET
                 client_group_id = excluded.client_group_id,
                 last_mutation_id = excluded.last_mutation_id,
                 version = excluded.version,
                 written_at = excluded.written_at",
        )?;
        for (id, record) in &commit.clients {
            let lmid = to_db(record.last_mutation_id, "last_mutation_id")?;
            stmt.execute(params![space, id, record.client_group_id, lmid, next, at])?;
        }
    }
    if let Some((group, owner)) = &commit.new_group {
        // A group's first owner stays its owner.
        tx.prepare_cached(
            "INSERT INTO groups (space, group_id, owner) VALUES (?1, ?2, ?3)
             ON CONFLICT (space, group_id) DO NOTHING",
        )?
        .execute(params![space, group, owner])?;
    }
    Ok(true)
}

/// Brings the file's schema to [`SCHEMA_VERSION`], all steps in one transaction: a failed
/// migration leaves the file as it was.
fn migrate(conn: &mut Connection) -> Result<(), SqliteError> {
    if checked_schema_version(conn)? == SCHEMA_VERSION {
        return Ok(());
    }
    // IMMEDIATE: a second process opening the same file waits for the lock, then finds the
    // file migrated (hence the second look at the version).
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found = checked_schema_version(&tx)?;
    for (from, step) in (found..).zip(&MIGRATIONS[found as usize..]) {
        tx.execute_batch(step)
            .map_err(|source| SqliteError::Migrate {
                from,
                to: from + 1,
                source,
            })?;
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.commit()?;
    if found > 0 {
        tracing::info!(
            from = found,
            to = SCHEMA_VERSION,
            "migrated the database schema"
        );
    }
    Ok(())
}

/// The file's schema version, if this build can open it.
fn checked_schema_version(conn: &Connection) -> Result<i64, SqliteError> {
    let found: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if found < 0 {
        return Err(SqliteError::SchemaUnknown { found });
    }
    if found > SCHEMA_VERSION {
        return Err(SqliteError::SchemaTooNew {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    Ok(found)
}

/// The space's version and access (one row and its members: call within a transaction).
fn read_space(
    conn: &Connection,
    space: &str,
) -> Result<Option<(Version, SpaceAccess)>, SqliteError> {
    let row = conn
        .prepare_cached("SELECT version, owner, link FROM spaces WHERE id = ?1")?
        .query_row(params![space], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
            ))
        })
        .optional()?;
    let Some((version, owner, link)) = row else {
        return Ok(None);
    };
    let link = LinkAccess::parse(&link).ok_or(SqliteError::UnknownLink(link))?;
    let members = conn
        .prepare_cached("SELECT user FROM space_members WHERE space = ?1")?
        .query_map(params![space], |row| row.get::<_, String>(0))?
        .collect::<Result<BTreeSet<_>, _>>()?;
    let access = SpaceAccess {
        owner,
        members,
        link,
    };
    Ok(Some((from_db(version, "version")?, access)))
}

fn add_members<'a>(
    tx: &Transaction<'_>,
    space: &str,
    users: impl IntoIterator<Item = &'a String>,
) -> Result<(), SqliteError> {
    let mut stmt = tx.prepare_cached(
        "INSERT INTO space_members (space, user) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
    )?;
    for user in users {
        stmt.execute(params![space, user])?;
    }
    Ok(())
}

fn read_group_owner(
    conn: &Connection,
    space: &str,
    group: &str,
) -> Result<Option<String>, SqliteError> {
    Ok(conn
        .prepare_cached("SELECT owner FROM groups WHERE space = ?1 AND group_id = ?2")?
        .query_row(params![space, group], |row| row.get::<_, String>(0))
        .optional()?)
}

fn read_floor(conn: &Connection, space: &str) -> Result<Version, SqliteError> {
    let floor = conn
        .prepare_cached("SELECT tombstone_floor FROM spaces WHERE id = ?1")?
        .query_row(params![space], |row| row.get::<_, i64>(0))
        .optional()?
        .unwrap_or(0);
    from_db(floor, "tombstone_floor")
}

fn read_version(conn: &Connection, space: &str) -> Result<Option<Version>, SqliteError> {
    conn.prepare_cached("SELECT version FROM spaces WHERE id = ?1")?
        .query_row(params![space], |row| row.get::<_, i64>(0))
        .optional()?
        .map(|v| from_db(v, "version"))
        .transpose()
}

fn parse_value(text: &str) -> Result<Value, SqliteError> {
    serde_json::from_str(text).map_err(SqliteError::DecodeValue)
}

/// SQLite integers are signed 64-bit; versions and mutation IDs stay far below 2^63.
fn to_db(n: u64, what: &'static str) -> Result<i64, SqliteError> {
    i64::try_from(n).map_err(|_| SqliteError::OutOfRange { what })
}

fn from_db(n: i64, what: &'static str) -> Result<u64, SqliteError> {
    u64::try_from(n).map_err(|_| SqliteError::OutOfRange { what })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The steps of `sql`'s plan, as `EXPLAIN QUERY PLAN` describes them.
    fn plan(sql: &str, params: impl rusqlite::Params) -> Vec<String> {
        let store = SqliteStore::in_memory().unwrap();
        let conn = store.conn.lock().unwrap();
        conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap()
            .query_map(params, |row| row.get::<_, String>(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn counting_an_owners_spaces_uses_the_owner_index() {
        let plan = plan(COUNT_OWNED, params!["alice", 10]);
        assert!(
            plan.iter().any(|step| step.contains("spaces_by_owner")),
            "{plan:?}"
        );
    }

    #[test]
    fn a_pull_reads_only_what_it_answers() {
        // A first pull walks the space in key order: no sort.
        let first = plan(ALL_ENTRIES, params!["s", 0]);
        assert!(
            first.iter().any(|step| step.contains("PRIMARY KEY")),
            "{first:?}"
        );
        assert!(
            !first.iter().any(|step| step.contains("TEMP B-TREE")),
            "{first:?}"
        );
        // A later pull seeks the versions after its cookie: not a walk of the space.
        let later = plan(ENTRIES_CHANGED_SINCE, params!["s", 7]);
        assert!(
            later
                .iter()
                .any(|step| step.contains("entries_by_version (space=? AND version>?)")),
            "{later:?}"
        );
        // The group's own clients, never the whole space's.
        let clients = plan(GROUP_CLIENTS_CHANGED_SINCE, params!["s", "g", 7]);
        assert!(
            clients.iter().any(|step| step.contains(
                "clients_by_group_version (space=? AND client_group_id=? AND version>?)"
            )),
            "{clients:?}"
        );
    }
}
