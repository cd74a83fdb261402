//! What only a file-backed store can show: data outlives the connection, and the file
//! refuses what it cannot hold.

use rusqlite::Connection;
use serde_json::{Value, json};
use std::path::Path;
use store_sqlite::{SCHEMA_VERSION, SqliteError, SqliteStore};
use sync_core::SpaceId;
use sync_core::auth::{AccessChange, LinkAccess, SpaceAccess};
use sync_core::store::{
    ClientRecord, Commit, CommitOutcome, Created, EntryChange, GarbageCutoffs, Store, now_ms,
};

fn space(name: &str) -> SpaceId {
    SpaceId::parse(name).unwrap()
}

fn commit(expected: u64, entries: Vec<(&str, Option<Value>)>) -> Commit {
    Commit {
        expected_version: expected,
        next_version: expected + 1,
        entries: entries
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
        clients: vec![(
            "c1".to_owned(),
            ClientRecord {
                client_group_id: "g1".to_owned(),
                last_mutation_id: expected + 1,
            },
        )],
        new_group: (expected == 0).then(|| ("g1".to_owned(), "alice".to_owned())),
        new_clients: (expected == 0)
            .then(|| "c1".to_owned())
            .into_iter()
            .collect(),
        tombstone_floor: None,
    }
}

#[tokio::test]
async fn data_survives_closing_and_reopening_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sync.db");
    let s = space("persisted");
    let tricky = json!({"f": 0.1, "big": 1.7976931348623157e308, "tiny": 5e-324, "neg": -0.0,
        "i": -9007199254740991_i64, "u": 18446744073709551615_u64, "text": "héllo 🌍 \u{0} \"q\"",
        "nested": [[], {}, [null, true, {"a": [1, 2.5]}]]});
    {
        let store = SqliteStore::open(&path).unwrap();
        assert!(store.create_space(&s).await.unwrap());
        let first = commit(
            0,
            vec![("a", Some(tricky.clone())), ("gone", Some(json!(1)))],
        );
        assert_eq!(
            store.commit(&s, &first).await.unwrap(),
            CommitOutcome::Committed
        );
        let second = commit(1, vec![("gone", None), ("ключ/🔑", Some(json!("v")))]);
        assert_eq!(
            store.commit(&s, &second).await.unwrap(),
            CommitOutcome::Committed
        );
    }

    let store = SqliteStore::open(&path).unwrap();
    assert!(
        !store.create_space(&s).await.unwrap(),
        "the space is still there"
    );
    assert_eq!(store.space_version(&s).await.unwrap(), Some(2));
    assert_eq!(
        store.get_entry(&s, "a").await.unwrap(),
        Some(tricky.clone())
    );
    assert_eq!(store.get_entry(&s, "gone").await.unwrap(), None);
    let snapshot = store
        .push_snapshot(&s, "g1", &["c1".to_owned(), "c2".to_owned()])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(snapshot.version, 2);
    assert_eq!(snapshot.group_owner.as_deref(), Some("alice"));
    assert_eq!(snapshot.clients.len(), 1);
    assert_eq!(snapshot.clients["c1"].last_mutation_id, 2);

    let changes = store.pull_snapshot(&s, "g1", 0).await.unwrap().unwrap();
    assert_eq!(changes.version, 2);
    assert_eq!(
        changes.entries,
        vec![
            EntryChange {
                key: "a".into(),
                value: Some(tricky.into())
            },
            EntryChange {
                key: "gone".into(),
                value: None
            },
            EntryChange {
                key: "ключ/🔑".into(),
                value: Some(json!("v").into())
            },
        ]
    );
    assert_eq!(changes.client_lmids, vec![("c1".to_owned(), 2)]);

    // The reopened file keeps working as before.
    assert_eq!(
        store.commit(&s, &commit(1, vec![])).await.unwrap(),
        CommitOutcome::Conflict
    );
    assert_eq!(
        store
            .commit(&s, &commit(2, vec![("a", None)]))
            .await
            .unwrap(),
        CommitOutcome::Committed
    );
}

#[tokio::test]
async fn two_stores_on_one_file_see_each_others_commits() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    let a = SqliteStore::open(&path).unwrap();
    let b = SqliteStore::open(&path).unwrap();
    let s = space("shared");
    assert!(a.create_space(&s).await.unwrap());
    assert!(!b.create_space(&s).await.unwrap());
    let c = commit(0, vec![("k", Some(json!([1, 2, 3])))]);
    assert_eq!(a.commit(&s, &c).await.unwrap(), CommitOutcome::Committed);
    // The same commit from the other connection lost the race.
    assert_eq!(b.commit(&s, &c).await.unwrap(), CommitOutcome::Conflict);
    assert_eq!(b.get_entry(&s, "k").await.unwrap(), Some(json!([1, 2, 3])));
}

#[test]
fn opening_a_path_in_a_missing_directory_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = SqliteStore::open(dir.path().join("missing").join("sync.db")).unwrap_err();
    assert!(matches!(err, SqliteError::Open { .. }), "{err}");
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("future.db");
    drop(SqliteStore::open(&path).unwrap());
    for newer in [SCHEMA_VERSION + 1, 99] {
        set_schema_version(&path, newer);
        let err = SqliteStore::open(&path).unwrap_err();
        assert!(
            matches!(err, SqliteError::SchemaTooNew { found, .. } if found == newer),
            "{err}"
        );
        assert_eq!(schema_version(&path), newer, "the file is left alone");
    }
    set_schema_version(&path, -1);
    let err = SqliteStore::open(&path).unwrap_err();
    assert!(
        matches!(err, SqliteError::SchemaUnknown { found: -1 }),
        "{err}"
    );
}

/// The schema of version 1, as the first release created it.
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

/// A file as the first release left it, at `user_version`: space `old` at version 2 (an
/// entry written at 1, one written and one deleted at 2; clients of two groups) and the
/// empty space `old-empty`.
fn write_v1_file(path: &Path, user_version: i64) {
    let conn = Connection::open(path).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    conn.execute_batch(SCHEMA_V1).unwrap();
    conn.execute_batch(
        r#"
        INSERT INTO spaces (id, version) VALUES ('old', 2), ('old-empty', 0);
        INSERT INTO entries (space, key, value, version, deleted) VALUES
            ('old', 'a', '{"x":[1,2.5],"t":"héllo"}', 1, 0),
            ('old', 'b', '"v"', 2, 0),
            ('old', 'gone', NULL, 2, 1);
        INSERT INTO clients (space, client_id, client_group_id, last_mutation_id, version)
        VALUES ('old', 'c1', 'g1', 3, 2), ('old', 'c2', 'g2', 1, 1);
        INSERT INTO groups (space, group_id, owner) VALUES ('old', 'g1', 'alice'), ('old', 'g2', '');
        "#,
    )
    .unwrap();
    conn.pragma_update(None, "user_version", user_version)
        .unwrap();
}

fn schema_version(path: &Path) -> i64 {
    Connection::open(path)
        .unwrap()
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .unwrap()
}

fn set_schema_version(path: &Path, version: i64) {
    Connection::open(path)
        .unwrap()
        .pragma_update(None, "user_version", version)
        .unwrap();
}

/// Every table and index, as SQLite records it.
fn schema_of(path: &Path) -> Vec<(String, String, Option<String>)> {
    let conn = Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare("SELECT type, name, sql FROM sqlite_schema ORDER BY type, name")
        .unwrap();
    stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn columns_of_spaces(path: &Path) -> Vec<String> {
    let conn = Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare("SELECT name FROM pragma_table_info('spaces')")
        .unwrap();
    stmt.query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// What [`write_v1_file`] wrote, read back through the store.
async fn assert_v1_data_intact(store: &SqliteStore) {
    let old = space("old");
    let a = json!({"x": [1, 2.5], "t": "héllo"});
    assert_eq!(store.space_version(&old).await.unwrap(), Some(2));
    assert_eq!(
        store.space_version(&space("old-empty")).await.unwrap(),
        Some(0)
    );
    for s in ["old", "old-empty"] {
        assert_eq!(
            store.space_access(&space(s)).await.unwrap(),
            Some(SpaceAccess::legacy()),
            "{s}: open to anyone, owned by nobody"
        );
    }
    assert_eq!(store.get_entry(&old, "a").await.unwrap(), Some(a.clone()));
    assert_eq!(store.get_entry(&old, "gone").await.unwrap(), None);
    assert_eq!(
        store.scan_entries(&old, "", 10).await.unwrap(),
        vec![("a".to_owned(), a.clone()), ("b".to_owned(), json!("v"))]
    );

    let push = store
        .push_snapshot(
            &old,
            "g1",
            &["c1".to_owned(), "c2".to_owned(), "c3".to_owned()],
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(push.version, 2);
    assert_eq!(push.access, SpaceAccess::legacy());
    assert_eq!(push.group_owner.as_deref(), Some("alice"));
    assert_eq!(push.clients.len(), 2);
    assert_eq!(push.clients["c1"].last_mutation_id, 3);
    assert_eq!(push.clients["c2"].client_group_id, "g2");

    let pull = store.pull_snapshot(&old, "g1", 0).await.unwrap().unwrap();
    assert_eq!(pull.version, 2);
    assert_eq!(pull.access, SpaceAccess::legacy());
    assert_eq!(pull.group_owner.as_deref(), Some("alice"));
    // A pull answers the stored text as it is: this file's text was written by hand, its
    // keys out of the order the server writes them in.
    assert_eq!(
        pull.entries.iter().next().and_then(|e| e.value),
        Some(r#"{"x":[1,2.5],"t":"héllo"}"#)
    );
    let entries: Vec<(&str, Option<serde_json::Value>)> = pull
        .entries
        .iter()
        .map(|e| (e.key, e.value.map(|v| serde_json::from_str(v).unwrap())))
        .collect();
    assert_eq!(
        entries,
        vec![
            ("a", Some(a.clone())),
            ("b", Some(json!("v"))),
            ("gone", None)
        ]
    );
    assert_eq!(pull.client_lmids, vec![("c1".to_owned(), 3)]);
    let since_1 = store.pull_snapshot(&old, "g2", 1).await.unwrap().unwrap();
    assert_eq!(since_1.entries.len(), 2, "b and gone");
    assert_eq!(since_1.client_lmids, vec![], "c2 last changed at 1");
    assert_eq!(since_1.group_owner.as_deref(), Some(""));
}

#[tokio::test]
async fn a_version_1_file_is_migrated_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1.db");
    write_v1_file(&path, 1);

    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(schema_version(&path), SCHEMA_VERSION);
    assert_v1_data_intact(&store).await;

    // Rows from before count as written at the migration: garbage collection ages them
    // from then, never as written at the epoch.
    let old = space("old");
    let hour = 3_600_000;
    let at = |offset: i64| now_ms().saturating_add_signed(offset);
    let young = GarbageCutoffs {
        tombstones_before_ms: at(-hour),
        clients_idle_before_ms: at(-hour),
    };
    let garbage = store.find_garbage(&old, &young).await.unwrap().unwrap();
    assert!(garbage.is_empty(), "{garbage:?}");
    let later = GarbageCutoffs {
        tombstones_before_ms: at(hour),
        clients_idle_before_ms: at(hour),
    };
    let garbage = store.find_garbage(&old, &later).await.unwrap().unwrap();
    assert_eq!(garbage.tombstones, [("gone".to_owned(), 2)]);
    assert_eq!(garbage.idle_clients.len(), 2);

    // The migrated space keeps working, access included.
    assert!(!store.create_space(&old).await.unwrap(), "still there");
    assert_eq!(
        store
            .commit(&old, &commit(2, vec![("b", None)]))
            .await
            .unwrap(),
        CommitOutcome::Committed
    );
    let change = AccessChange {
        add: ["bob".to_owned()].into(),
        remove: Default::default(),
        link: Some(LinkAccess::Members),
    };
    let changed = store.change_access(&old, &change).await.unwrap().unwrap();
    assert_eq!(changed.members, ["bob".to_owned()].into());
    // Legacy spaces count against nobody's limit.
    let mine = SpaceAccess::new("carol", LinkAccess::Members);
    assert_eq!(
        store
            .create_space_for(&space("new"), &mine, Some(1))
            .await
            .unwrap(),
        Created::Yes
    );
    assert_eq!(
        store
            .create_space_for(&space("newer"), &mine, Some(1))
            .await
            .unwrap(),
        Created::OwnerAtLimit
    );
    drop(store);

    // Reopening does not migrate again, and the file now has the schema of a new one.
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.space_access(&old).await.unwrap(), Some(changed));
    assert_eq!(store.space_version(&old).await.unwrap(), Some(3));
    assert_eq!(store.space_access(&space("new")).await.unwrap(), Some(mine));
    drop(store);
    let fresh = dir.path().join("fresh.db");
    drop(SqliteStore::open(&fresh).unwrap());
    assert_eq!(schema_of(&path), schema_of(&fresh));
}

#[tokio::test]
async fn a_version_1_file_whose_version_was_never_recorded_is_migrated() {
    // The first release created the tables, then set the version: a crash in between
    // left its tables at version 0.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v0.db");
    write_v1_file(&path, 0);
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(schema_version(&path), SCHEMA_VERSION);
    assert_v1_data_intact(&store).await;
}

#[tokio::test]
async fn a_failed_migration_leaves_the_file_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1.db");
    write_v1_file(&path, 1);
    // A table in the way of the migration's own.
    Connection::open(&path)
        .unwrap()
        .execute_batch("CREATE TABLE space_members (unrelated TEXT)")
        .unwrap();

    let err = SqliteStore::open(&path).unwrap_err();
    assert!(
        matches!(err, SqliteError::Migrate { from: 1, to: 2, .. }),
        "{err}"
    );
    assert_eq!(schema_version(&path), 1);
    assert_eq!(
        columns_of_spaces(&path),
        ["id", "version"],
        "no column added"
    );

    // Out of the way, the migration goes through.
    Connection::open(&path)
        .unwrap()
        .execute_batch("DROP TABLE space_members")
        .unwrap();
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(
        columns_of_spaces(&path),
        ["id", "version", "owner", "link", "tombstone_floor"]
    );
    assert_v1_data_intact(&store).await;
}

#[tokio::test]
async fn stores_opening_a_version_1_file_at_once_migrate_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1.db");
    write_v1_file(&path, 1);
    let openers: Vec<_> = (0..4)
        .map(|_| {
            let path = path.clone();
            std::thread::spawn(move || SqliteStore::open(path))
        })
        .collect();
    let stores: Vec<SqliteStore> = openers
        .into_iter()
        .map(|t| t.join().unwrap().unwrap())
        .collect();
    assert_eq!(schema_version(&path), SCHEMA_VERSION);
    for store in &stores {
        assert_v1_data_intact(store).await;
    }
}
