//! The embedded adapter of [`sync_core::Store`]: one SQLite file (or an in-memory
//! database), for local runs and tests.
//!
//! Tables:
//! - `spaces(id, version)`: one row per space, its version counter;
//! - `entries(space, key, value, version, deleted)`: values as JSON text, soft-deleted so
//!   that a pull can report `del`; indexed on `(space, version)` for pulls;
//! - `clients(space, client_id, client_group_id, last_mutation_id, version)`: indexed on
//!   `(space, client_group_id, version)`, which is exactly what a pull asks for;
//! - `groups(space, group_id, owner)`.
//!
//! rusqlite is blocking, so every call runs on tokio's blocking pool, with the single
//! connection behind a mutex. One connection serializes all access, which also makes every
//! read trivially consistent; the transactions are still there so that the file stays
//! correct if another process opens it too.

mod error;

pub use error::SqliteError;

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use serde_json::Value;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use sync_core::SpaceId;
use sync_core::store::{
    ClientRecord, Commit, CommitOutcome, EntryChange, PullSnapshot, PushSnapshot, Store,
    StoreError, Version,
};

/// How long a statement waits for a lock held by another connection before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Bumped whenever the schema changes, so that a future version can migrate old files.
const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
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

    fn init(conn: Connection) -> Result<Self, SqliteError> {
        let found: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
        if found > SCHEMA_VERSION {
            return Err(SqliteError::SchemaTooNew {
                found,
                supported: SCHEMA_VERSION,
            });
        }
        conn.execute_batch(SCHEMA)?;
        conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
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
    async fn create_space(&self, space: &SpaceId) -> Result<bool, StoreError> {
        let space = space.as_str().to_owned();
        self.run(move |conn| {
            let inserted = conn
                .prepare_cached(
                    "INSERT INTO spaces (id, version) VALUES (?1, 0) ON CONFLICT (id) DO NOTHING",
                )?
                .execute(params![space])?;
            Ok(inserted == 1)
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
            let Some(version) = read_version(&tx, &space)? else {
                return Ok(None);
            };
            let mut clients = std::collections::HashMap::with_capacity(client_ids.len());
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
            let group_owner = tx
                .prepare_cached("SELECT owner FROM groups WHERE space = ?1 AND group_id = ?2")?
                .query_row(params![space, group], |row| row.get::<_, String>(0))
                .optional()?;
            tx.commit()?;
            Ok(Some(PushSnapshot {
                version,
                clients,
                group_owner,
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
            // One read transaction: the version and the rows are of one snapshot (with
            // WAL, also against writers in other processes).
            let tx = conn.transaction()?;
            let Some(version) = read_version(&tx, &space)? else {
                return Ok(None);
            };
            let since = to_db(since, "since")?;
            let mut entries = Vec::new();
            {
                let mut stmt = tx.prepare_cached(
                    "SELECT key, value, deleted FROM entries
                     WHERE space = ?1 AND version > ?2
                     ORDER BY key",
                )?;
                let mut rows = stmt.query(params![space, since])?;
                while let Some(row) = rows.next()? {
                    let key: String = row.get(0)?;
                    let deleted: bool = row.get(2)?;
                    let value = if deleted {
                        None
                    } else {
                        let text: Option<String> = row.get(1)?;
                        Some(parse_value(&text.ok_or(SqliteError::MissingValue)?)?)
                    };
                    entries.push(EntryChange { key, value });
                }
            }
            let mut client_lmids = Vec::new();
            {
                let mut stmt = tx.prepare_cached(
                    "SELECT client_id, last_mutation_id FROM clients
                     WHERE space = ?1 AND client_group_id = ?2 AND version > ?3
                     ORDER BY client_id",
                )?;
                let mut rows = stmt.query(params![space, group, since])?;
                while let Some(row) = rows.next()? {
                    let id: String = row.get(0)?;
                    let lmid = from_db(row.get(1)?, "last_mutation_id")?;
                    client_lmids.push((id, lmid));
                }
            }
            tx.commit()?;
            Ok(Some(PullSnapshot {
                version,
                entries,
                client_lmids,
            }))
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
    {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO entries (space, key, value, version, deleted)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (space, key) DO UPDATE SET
                 value = excluded.value, version = excluded.version, deleted = excluded.deleted",
        )?;
        for (key, value) in &commit.entries {
            let text = value
                .as_ref()
                .map(serde_json::to_string)
                .transpose()
                .map_err(SqliteError::EncodeValue)?;
            let deleted = text.is_none();
            stmt.execute(params![space, key, text, next, deleted])?;
        }
    }
    {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO clients (space, client_id, client_group_id, last_mutation_id, version)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (space, client_id) DO UPDATE SET
                 client_group_id = excluded.client_group_id,
                 last_mutation_id = excluded.last_mutation_id,
                 version = excluded.version",
        )?;
        for (id, record) in &commit.clients {
            let lmid = to_db(record.last_mutation_id, "last_mutation_id")?;
            stmt.execute(params![space, id, record.client_group_id, lmid, next])?;
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
