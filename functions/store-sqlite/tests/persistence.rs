//! What only a file-backed store can show: data outlives the connection, and the file
//! refuses what it cannot hold.

use serde_json::{Value, json};
use store_sqlite::{SqliteError, SqliteStore};
use sync_core::SpaceId;
use sync_core::store::{ClientRecord, Commit, CommitOutcome, EntryChange, Store};

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
                value: Some(tricky)
            },
            EntryChange {
                key: "gone".into(),
                value: None
            },
            EntryChange {
                key: "ключ/🔑".into(),
                value: Some(json!("v"))
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
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    let err = SqliteStore::open(&path).unwrap_err();
    assert!(
        matches!(err, SqliteError::SchemaTooNew { found: 99, .. }),
        "{err}"
    );
}
