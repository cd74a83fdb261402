//! Cases on the adapter contract itself.

use crate::new_space;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use sync_core::json_text::JsonText;
use sync_core::store::{ClientRecord, Commit, CommitOutcome, EntryChange, Store};

fn client(group: &str, lmid: u64) -> ClientRecord {
    ClientRecord {
        client_group_id: group.to_owned(),
        last_mutation_id: lmid,
    }
}

fn commit(from: u64, entries: Vec<(&str, Option<Value>)>) -> Commit {
    Commit {
        expected_version: from,
        next_version: from + 1,
        entries: entries
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
        ..Commit::default()
    }
}

async fn must_commit(store: &dyn Store, space: &sync_core::SpaceId, c: &Commit) {
    assert_eq!(
        store.commit(space, c).await.expect("commit"),
        CommitOutcome::Committed
    );
}

pub async fn spaces(store: Arc<dyn Store>) {
    let space = new_space(store.as_ref(), "spaces").await;
    assert!(
        !store.create_space(&space).await.unwrap(),
        "creating an existing space must report false"
    );
    assert_eq!(store.space_version(&space).await.unwrap(), Some(0));
    let unknown = crate::fresh_space("unknown");
    assert_eq!(store.space_version(&unknown).await.unwrap(), None);
    assert_eq!(store.push_snapshot(&unknown, "g", &[]).await.unwrap(), None);
    let c = commit(0, vec![("k", Some(json!(1)))]);
    assert_eq!(
        store.commit(&unknown, &c).await.unwrap(),
        CommitOutcome::Conflict,
        "a commit to an unknown space must not create it"
    );
    assert_eq!(store.space_version(&unknown).await.unwrap(), None);
}

pub async fn commit_and_snapshot(store: Arc<dyn Store>) {
    let space = new_space(store.as_ref(), "snap").await;
    let ids = vec!["c1".to_owned(), "c2".to_owned(), "c3".to_owned()];
    let snap = store
        .push_snapshot(&space, "g1", &ids)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(snap.version, 0);
    assert!(snap.clients.is_empty());
    assert_eq!(snap.group_owner, None);

    let mut c = commit(
        0,
        vec![("a", Some(json!({"x": 1}))), ("b", Some(json!("two")))],
    );
    c.clients = vec![
        ("c1".into(), client("g1", 3)),
        ("c2".into(), client("g2", 7)),
    ];
    c.new_clients = vec!["c1".into(), "c2".into()];
    c.new_group = Some(("g1".into(), "alice".into()));
    must_commit(store.as_ref(), &space, &c).await;

    let snap = store
        .push_snapshot(&space, "g1", &ids)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(snap.version, 1);
    assert_eq!(snap.clients.len(), 2, "only existing clients are returned");
    assert_eq!(snap.clients["c1"], client("g1", 3));
    assert_eq!(
        snap.clients["c2"].client_group_id, "g2",
        "clients of any group are returned (another group's may say only its group)"
    );
    let theirs = store
        .push_snapshot(&space, "g2", &ids)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(theirs.clients["c2"], client("g2", 7));
    assert_eq!(theirs.clients["c1"].client_group_id, "g1");
    assert_eq!(snap.group_owner.as_deref(), Some("alice"));
    let other = store
        .push_snapshot(&space, "g2", &[])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(other.group_owner, None);
    assert_eq!(
        store.get_entry(&space, "a").await.unwrap(),
        Some(json!({"x": 1}))
    );

    // A later commit overwrites the client and can raise the version by more than one.
    let mut c = commit(1, vec![]);
    c.next_version = 10;
    c.clients = vec![("c1".into(), client("g1", 4))];
    must_commit(store.as_ref(), &space, &c).await;
    let snap = store
        .push_snapshot(&space, "g1", &ids)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(snap.version, 10);
    assert_eq!(snap.clients["c1"].last_mutation_id, 4);
}

pub async fn conflicts_write_nothing(store: Arc<dyn Store>) {
    let space = new_space(store.as_ref(), "conflict").await;
    must_commit(
        store.as_ref(),
        &space,
        &commit(0, vec![("k", Some(json!(1)))]),
    )
    .await;
    let mut stale = commit(0, vec![("k", Some(json!(2))), ("other", Some(json!(3)))]);
    stale.clients = vec![("c1".into(), client("g", 1))];
    stale.new_group = Some(("g".into(), "".into()));
    assert_eq!(
        store.commit(&space, &stale).await.unwrap(),
        CommitOutcome::Conflict
    );
    assert_eq!(store.space_version(&space).await.unwrap(), Some(1));
    assert_eq!(store.get_entry(&space, "k").await.unwrap(), Some(json!(1)));
    assert_eq!(store.get_entry(&space, "other").await.unwrap(), None);
    let snap = store
        .push_snapshot(&space, "g", &["c1".to_owned()])
        .await
        .unwrap()
        .unwrap();
    assert!(
        snap.clients.is_empty(),
        "a conflicting commit wrote a client"
    );
    assert_eq!(snap.group_owner, None, "a conflicting commit wrote a group");
}

pub async fn pull_snapshot_since(store: Arc<dyn Store>) {
    let space = new_space(store.as_ref(), "changes").await;
    let mut c1 = commit(0, vec![("a", Some(json!(1))), ("b", Some(json!(2)))]);
    c1.clients = vec![
        ("mine".into(), client("g", 1)),
        ("theirs".into(), client("h", 1)),
    ];
    must_commit(store.as_ref(), &space, &c1).await;
    let mut c2 = commit(1, vec![("b", None), ("c", Some(json!(3)))]);
    c2.clients = vec![("mine".into(), client("g", 2))];
    must_commit(store.as_ref(), &space, &c2).await;
    must_commit(
        store.as_ref(),
        &space,
        &commit(2, vec![("d", Some(json!(4)))]),
    )
    .await;

    let snap = |group: &'static str, since| {
        let store = store.clone();
        let space = space.clone();
        async move {
            store
                .pull_snapshot(&space, group, since)
                .await
                .unwrap()
                .expect("the space exists")
        }
    };
    let all = snap("g", 0).await;
    assert_eq!(all.version, 3);
    let keys: Vec<_> = all.entries.iter().map(|e| e.key).collect();
    assert_eq!(keys, ["a", "b", "c", "d"], "every entry, in key order");
    assert_eq!(
        all.client_lmids,
        vec![("mine".to_owned(), 2)],
        "other groups' clients leak"
    );

    // Since 1: b deleted, c put, d put, mine's lmid.
    let mid = snap("g", 1).await;
    assert_eq!(
        mid.entries,
        vec![
            EntryChange {
                key: "b".into(),
                value: None
            },
            EntryChange {
                key: "c".into(),
                value: Some(json!(3).into())
            },
            EntryChange {
                key: "d".into(),
                value: Some(json!(4).into())
            },
        ]
    );
    assert_eq!(mid.client_lmids, vec![("mine".to_owned(), 2)]);
    for since in [3, 4, 1_000] {
        let none = snap("g", since).await;
        assert_eq!(none.version, 3, "since {since}");
        assert!(none.entries.is_empty() && none.client_lmids.is_empty());
    }
    let theirs = snap("h", 0).await;
    assert_eq!(theirs.client_lmids, vec![("theirs".to_owned(), 1)]);
    let unknown = crate::fresh_space("unknown");
    assert_eq!(store.pull_snapshot(&unknown, "g", 0).await.unwrap(), None);
}

pub async fn reads_skip_deleted(store: Arc<dyn Store>) {
    let space = new_space(store.as_ref(), "scan").await;
    let c = commit(
        0,
        vec![
            ("todo/1", Some(json!(1))),
            ("todo/2", Some(json!(2))),
            ("todo/3", Some(json!(3))),
            ("todx", Some(json!("x"))),
            ("a", Some(json!("a"))),
        ],
    );
    must_commit(store.as_ref(), &space, &c).await;
    must_commit(store.as_ref(), &space, &commit(1, vec![("todo/2", None)])).await;
    assert_eq!(store.get_entry(&space, "todo/2").await.unwrap(), None);
    assert_eq!(store.get_entry(&space, "missing").await.unwrap(), None);
    let todos = store.scan_entries(&space, "todo/", 10).await.unwrap();
    assert_eq!(
        todos,
        vec![
            ("todo/1".to_owned(), json!(1)),
            ("todo/3".to_owned(), json!(3))
        ]
    );
    let first = store.scan_entries(&space, "todo/", 1).await.unwrap();
    assert_eq!(first, vec![("todo/1".to_owned(), json!(1))]);
    let everything = store.scan_entries(&space, "", 100).await.unwrap();
    assert_eq!(everything.len(), 4);
}

pub async fn values_round_trip(store: Arc<dyn Store>) {
    let space = new_space(store.as_ref(), "values").await;
    let values = vec![
        ("float", json!(0.1)),
        ("big", json!(1.7976931348623157e308)),
        ("tiny", json!(5e-324)),
        ("negative", json!(-12345.678)),
        ("int", json!(9007199254740991u64)),
        ("null", Value::Null),
        ("bool", json!(false)),
        (
            "unicode ключ 🔑",
            json!("значение ✓ \u{0000} \"quoted\" \\"),
        ),
        (
            "nested",
            json!({"a": [1, {"b": null}, "c"], "d": {"e": 1.5}}),
        ),
        ("empty", json!("")),
    ];
    let c = commit(
        0,
        values.iter().map(|(k, v)| (*k, Some(v.clone()))).collect(),
    );
    must_commit(store.as_ref(), &space, &c).await;
    for (key, value) in &values {
        assert_eq!(
            store.get_entry(&space, key).await.unwrap().as_ref(),
            Some(value),
            "value of {key:?} did not round-trip (a null value is live, not deleted)"
        );
    }
    let changes = store
        .pull_snapshot(&space, "g", 0)
        .await
        .unwrap()
        .expect("the space exists");
    assert_eq!(changes.entries.len(), values.len());
    for e in changes.entries.to_vec() {
        let expected = values.iter().find(|(k, _)| *k == e.key).map(|(_, v)| v);
        // The text the pull answers is exactly what the value serializes to.
        let expected = expected.map(JsonText::from_value);
        assert_eq!(e.value, expected, "{:?}", e.key);
    }
}

pub async fn concurrent_commits_one_winner(store: Arc<dyn Store>) {
    let space = new_space(store.as_ref(), "race").await;
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            let space = space.clone();
            tokio::spawn(async move {
                let c = commit(0, vec![("winner", Some(json!(i)))]);
                (i, store.commit(&space, &c).await.unwrap())
            })
        })
        .collect();
    let results = futures::future::join_all(tasks).await;
    let winners: Vec<i32> = results
        .into_iter()
        .map(|r| r.unwrap())
        .filter(|(_, outcome)| *outcome == CommitOutcome::Committed)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(winners.len(), 1, "exactly one racing commit must win");
    assert_eq!(store.space_version(&space).await.unwrap(), Some(1));
    assert_eq!(
        store.get_entry(&space, "winner").await.unwrap(),
        Some(json!(winners[0]))
    );
}

/// After every commit, a pull snapshot from every earlier version is exactly what changed
/// since then, as a reference model of the commits says (version-only commits included).
pub async fn pull_snapshot_after_each_commit(store: Arc<dyn Store>) {
    let space = new_space(store.as_ref(), "head").await;
    let mut c1 = commit(0, vec![("a", Some(json!(1))), ("b", Some(json!(2)))]);
    c1.clients = vec![
        ("mine".into(), client("g", 1)),
        ("theirs".into(), client("h", 1)),
    ];
    c1.new_group = Some(("g".into(), "".into()));
    let mut c2 = commit(1, vec![("b", None), ("c", Some(json!(3)))]);
    c2.clients = vec![("mine".into(), client("g", 2))];
    // A version-only commit (how a pull moves past a genuine cookie from the future).
    let mut raise = commit(2, vec![]);
    raise.next_version = 7;
    let c3 = commit(7, vec![("a", Some(json!("again")))]);
    // key -> (value, version); client -> (group, lmid, version)
    let mut entries: BTreeMap<String, (Option<Value>, u64)> = BTreeMap::new();
    let mut clients: BTreeMap<String, (String, u64, u64)> = BTreeMap::new();
    for c in [&c1, &c2, &raise, &c3] {
        must_commit(store.as_ref(), &space, c).await;
        let version = c.next_version;
        for (key, value) in &c.entries {
            entries.insert(key.clone(), (value.clone(), version));
        }
        for (id, rec) in &c.clients {
            clients.insert(
                id.clone(),
                (rec.client_group_id.clone(), rec.last_mutation_id, version),
            );
        }
        for since in 0..=version + 1 {
            for group in ["g", "h"] {
                let snap = store
                    .pull_snapshot(&space, group, since)
                    .await
                    .unwrap()
                    .expect("the space exists");
                let expected_entries: Vec<EntryChange> = entries
                    .iter()
                    .filter(|(_, (_, v))| *v > since)
                    .map(|(key, (value, _))| EntryChange {
                        key: key.clone(),
                        value: value.as_ref().map(JsonText::from_value),
                    })
                    .collect();
                let expected_lmids: Vec<(String, u64)> = clients
                    .iter()
                    .filter(|(_, (g, _, v))| g == group && *v > since)
                    .map(|(id, (_, lmid, _))| (id.clone(), *lmid))
                    .collect();
                let context = format!("since {since} for {group} after version {version}");
                assert_eq!(snap.version, version, "{context}");
                assert_eq!(snap.entries, expected_entries, "{context}");
                assert_eq!(snap.client_lmids, expected_lmids, "{context}");
            }
        }
    }
}
