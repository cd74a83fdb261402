//! The adapter against a real DynamoDB-compatible server (moto): items, conditions,
//! the version index, paging.

mod support;

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Value, json};
use store_dynamodb::schema;
use sync_core::SpaceId;
use sync_core::store::{
    ClientRecord, Commit, CommitOutcome, EntryChange, Store, StoreError, StoreLimits,
};

fn space() -> SpaceId {
    SpaceId::generate()
}

fn client(group: &str, lmid: u64) -> ClientRecord {
    ClientRecord {
        client_group_id: group.to_owned(),
        last_mutation_id: lmid,
    }
}

fn commit(from: u64, entries: &[(&str, Option<Value>)]) -> Commit {
    Commit {
        expected_version: from,
        next_version: from + 1,
        entries: entries
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect(),
        ..Commit::default()
    }
}

async fn committed(store: &dyn Store, space: &SpaceId, c: &Commit) {
    assert_eq!(
        store.commit(space, c).await.unwrap(),
        CommitOutcome::Committed
    );
}

#[tokio::test]
async fn create_and_exists() {
    let f = support::fixture("basics").await;
    let s = space();
    assert_eq!(f.store.space_version(&s).await.unwrap(), None);
    assert_eq!(f.store.push_snapshot(&s, "g", &[]).await.unwrap(), None);
    assert!(f.store.create_space(&s).await.unwrap());
    assert!(!f.store.create_space(&s).await.unwrap());
    assert_eq!(f.store.space_version(&s).await.unwrap(), Some(0));
    assert_eq!(f.store.limits(), StoreLimits::DYNAMODB);

    // The space item keeps its counter out of the version index.
    let meta = f
        .store
        .client()
        .get_item()
        .table_name(f.store.table())
        .key(schema::PK, AttributeValue::S(format!("space#{s}")))
        .key(schema::SK, AttributeValue::S(schema::META_SK.into()))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    assert!(meta.contains_key(schema::HEAD_VERSION));
    assert!(meta.contains_key(schema::CREATED_AT));
    assert!(!meta.contains_key(schema::VERSION));
}

#[tokio::test]
async fn table_creation_is_idempotent_and_enables_expiry() {
    let f = support::fixture("table").await;
    let client = f.store.client();
    store_dynamodb::create_table(client, f.store.table())
        .await
        .expect("an existing table is fine");
    let table = client
        .describe_table()
        .table_name(f.store.table())
        .send()
        .await
        .unwrap()
        .table
        .unwrap();
    let index = &table.local_secondary_indexes()[0];
    assert_eq!(index.index_name(), Some(schema::VERSION_INDEX));
    let ttl = client
        .describe_time_to_live()
        .table_name(f.store.table())
        .send()
        .await
        .unwrap();
    assert_eq!(
        ttl.time_to_live_description()
            .and_then(|d| d.attribute_name()),
        Some(schema::TTL_ATTRIBUTE)
    );
}

#[tokio::test]
async fn commit_and_conflict() {
    let f = support::fixture("commit").await;
    let store = &f.store;
    let s = space();
    assert!(store.create_space(&s).await.unwrap());

    let mut first = commit(0, &[("a", Some(json!({"n": 1}))), ("b", Some(json!(2)))]);
    first.clients = vec![("c1".into(), client("g", 4))];
    first.new_group = Some(("g".into(), "alice".into()));
    committed(store, &s, &first).await;

    // A stale commit (same base) writes nothing at all.
    let mut stale = commit(0, &[("a", Some(json!("stale"))), ("z", Some(json!(0)))]);
    stale.clients = vec![("c2".into(), client("g", 9))];
    assert_eq!(
        store.commit(&s, &stale).await.unwrap(),
        CommitOutcome::Conflict
    );
    assert_eq!(store.space_version(&s).await.unwrap(), Some(1));
    assert_eq!(
        store.get_entry(&s, "a").await.unwrap(),
        Some(json!({"n": 1}))
    );
    assert_eq!(store.get_entry(&s, "z").await.unwrap(), None);

    // Claiming a group that exists conflicts, even with the right version.
    let mut claim = commit(1, &[("c", Some(json!(3)))]);
    claim.new_group = Some(("g".into(), "mallory".into()));
    assert_eq!(
        store.commit(&s, &claim).await.unwrap(),
        CommitOutcome::Conflict
    );
    assert_eq!(store.get_entry(&s, "c").await.unwrap(), None);

    let ids = vec!["c1".to_owned(), "c2".to_owned()];
    let snap = store.push_snapshot(&s, "g", &ids).await.unwrap().unwrap();
    assert_eq!(snap.version, 1);
    assert_eq!(snap.group_owner.as_deref(), Some("alice"));
    assert_eq!(snap.clients.len(), 1);
    assert_eq!(snap.clients["c1"], client("g", 4));

    // A version-only commit (how a pull raises the version past a cookie).
    let raise = Commit {
        expected_version: 1,
        next_version: 50,
        ..Commit::default()
    };
    committed(store, &s, &raise).await;
    assert_eq!(store.space_version(&s).await.unwrap(), Some(50));
    assert_eq!(
        store.commit(&s, &raise).await.unwrap(),
        CommitOutcome::Conflict
    );

    // Commits never create a space.
    let unknown = space();
    assert_eq!(
        store.commit(&unknown, &raise).await.unwrap(),
        CommitOutcome::Conflict
    );
    assert_eq!(
        store
            .commit(&unknown, &commit(0, &[("k", None)]))
            .await
            .unwrap(),
        CommitOutcome::Conflict
    );
    assert_eq!(store.space_version(&unknown).await.unwrap(), None);
}

#[tokio::test]
async fn changes_ranges_deletions_and_groups() {
    let f = support::fixture("changes").await;
    let store = &f.store;
    let s = space();
    assert!(store.create_space(&s).await.unwrap());

    let mut v1 = commit(0, &[("a", Some(json!(1))), ("b", Some(json!(2)))]);
    v1.clients = vec![
        ("mine".into(), client("g", 1)),
        ("theirs".into(), client("h", 5)),
    ];
    committed(store, &s, &v1).await;
    let mut v2 = commit(1, &[("b", None), ("c", Some(json!(3)))]);
    v2.clients = vec![("mine".into(), client("g", 2))];
    committed(store, &s, &v2).await;
    committed(store, &s, &commit(2, &[("d", Some(Value::Null))])).await;

    let all = store.changes(&s, "g", 0, 3).await.unwrap();
    assert_eq!(
        all.entries,
        vec![
            EntryChange {
                key: "a".into(),
                value: Some(json!(1))
            },
            EntryChange {
                key: "b".into(),
                value: None
            },
            EntryChange {
                key: "c".into(),
                value: Some(json!(3))
            },
            EntryChange {
                key: "d".into(),
                value: Some(Value::Null)
            },
        ]
    );
    assert_eq!(all.client_lmids, vec![("mine".to_owned(), 2)]);

    let mid = store.changes(&s, "g", 1, 2).await.unwrap();
    let keys: Vec<_> = mid.entries.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, ["b", "c"], "d (version 3) is above the bound");
    assert_eq!(mid.entries[0].value, None, "a deletion is reported");
    assert_eq!(mid.client_lmids, vec![("mine".to_owned(), 2)]);

    let last = store.changes(&s, "g", 2, 3).await.unwrap();
    assert_eq!(last.entries.len(), 1);
    assert!(last.client_lmids.is_empty());

    let theirs = store.changes(&s, "h", 0, 3).await.unwrap();
    assert_eq!(theirs.client_lmids, vec![("theirs".to_owned(), 5)]);
    let nobody = store.changes(&s, "unknown-group", 0, 3).await.unwrap();
    assert!(nobody.client_lmids.is_empty());

    f.counter.reset();
    let empty = store.changes(&s, "g", 3, 3).await.unwrap();
    assert!(empty.entries.is_empty() && empty.client_lmids.is_empty());
    assert_eq!(f.counter.total(), 0, "an empty range costs no request");
}

#[tokio::test]
async fn scan_with_prefix_and_deleted_entries() {
    let f = support::fixture("scan").await;
    let store = &f.store;
    let s = space();
    assert!(store.create_space(&s).await.unwrap());
    committed(
        store,
        &s,
        &commit(
            0,
            &[
                ("todo/1", Some(json!(1))),
                ("todo/2", Some(json!(2))),
                ("todo/3", Some(json!(3))),
                ("todx", Some(json!("x"))),
                ("a", Some(json!("a"))),
            ],
        ),
    )
    .await;
    committed(store, &s, &commit(1, &[("todo/2", None), ("todo/1", None)])).await;

    assert_eq!(store.get_entry(&s, "todo/2").await.unwrap(), None);
    assert_eq!(
        store.scan_entries(&s, "todo/", 10).await.unwrap(),
        vec![("todo/3".to_owned(), json!(3))]
    );
    let everything = store.scan_entries(&s, "", 100).await.unwrap();
    let keys: Vec<_> = everything.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["a", "todo/3", "todx"], "key order, deleted skipped");
    assert_eq!(store.scan_entries(&s, "", 1).await.unwrap().len(), 1);
    assert!(store.scan_entries(&s, "", 0).await.unwrap().is_empty());
    assert!(store.scan_entries(&s, "zzz", 5).await.unwrap().is_empty());
}

#[tokio::test]
async fn scan_pages_past_many_deleted_entries() {
    let f = support::fixture("scanpages").await;
    let store = &f.store;
    let s = space();
    assert!(store.create_space(&s).await.unwrap());
    let keys: Vec<String> = (0..60).map(|i| format!("k/{i:03}")).collect();
    let puts: Vec<(&str, Option<Value>)> =
        keys.iter().map(|k| (k.as_str(), Some(json!(k)))).collect();
    committed(store, &s, &commit(0, &puts)).await;
    // Delete the first 50: a scan for 3 must read past them.
    let dels: Vec<(&str, Option<Value>)> = keys[..50].iter().map(|k| (k.as_str(), None)).collect();
    committed(store, &s, &commit(1, &dels)).await;
    f.counter.reset();
    let found = store.scan_entries(&s, "k/", 3).await.unwrap();
    assert_eq!(
        found,
        vec![
            ("k/050".to_owned(), json!("k/050")),
            ("k/051".to_owned(), json!("k/051")),
            ("k/052".to_owned(), json!("k/052")),
        ]
    );
    assert!(f.counter.snapshot()["Query"] > 1, "several pages were read");
}

#[tokio::test]
async fn corrupt_values_are_reported() {
    let f = support::fixture("corrupt").await;
    let s = space();
    assert!(f.store.create_space(&s).await.unwrap());
    f.store
        .client()
        .put_item()
        .table_name(f.store.table())
        .item(schema::PK, AttributeValue::S(format!("space#{s}")))
        .item(schema::SK, AttributeValue::S("e#bad".into()))
        .item(schema::VALUE, AttributeValue::S("{secret".into()))
        .item(schema::VERSION, AttributeValue::N("1".into()))
        .item(schema::DELETED, AttributeValue::Bool(false))
        .send()
        .await
        .unwrap();
    let err = f.store.get_entry(&s, "bad").await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err}");
    assert!(
        !err.to_string().contains("secret"),
        "no stored data in errors"
    );
    assert!(matches!(
        f.store.changes(&s, "g", 0, 1).await,
        Err(StoreError::Corrupt(_))
    ));
}

#[tokio::test]
async fn changes_follow_pages_past_one_megabyte() {
    let f = support::fixture("paging").await;
    let store = &f.store;
    let s = space();
    assert!(store.create_space(&s).await.unwrap());
    // 4 commits x 50 entries x ~8 KB = ~1.6 MB, more than one 1 MB page.
    let filler = "x".repeat(8_000);
    let mut expected = Vec::new();
    for version in 0..4u64 {
        let entries: Vec<(String, Option<Value>)> = (0..50)
            .map(|i| {
                let key = format!("big/{version}/{i:02}");
                (key.clone(), Some(json!({"key": key, "filler": filler})))
            })
            .collect();
        expected.extend(entries.iter().map(|(k, _)| k.clone()));
        let c = Commit {
            expected_version: version,
            next_version: version + 1,
            entries,
            ..Commit::default()
        };
        committed(store, &s, &c).await;
    }
    f.counter.reset();
    let changes = store.changes(&s, "g", 0, 4).await.unwrap();
    let keys: Vec<String> = changes.entries.iter().map(|e| e.key.clone()).collect();
    expected.sort();
    assert_eq!(keys, expected);
    for e in &changes.entries {
        assert_eq!(e.value.as_ref().unwrap()["key"], json!(e.key));
    }
    let queries = f.counter.snapshot()["Query"];
    assert!(
        queries >= 2,
        "expected several pages, got {queries} queries"
    );

    // A range inside the data pages too, and stops at its bound.
    let tail = store.changes(&s, "g", 2, 3).await.unwrap();
    assert_eq!(tail.entries.len(), 50);
    assert!(tail.entries.iter().all(|e| e.key.starts_with("big/2/")));
}

#[tokio::test]
async fn values_and_keys_round_trip() {
    let f = support::fixture("values").await;
    let store = &f.store;
    let s = space();
    assert!(store.create_space(&s).await.unwrap());
    let values = [
        ("float", json!(0.1)),
        ("big", json!(1.7976931348623157e308)),
        ("tiny", json!(5e-324)),
        ("int", json!(9007199254740991u64)),
        ("null", Value::Null),
        ("ключ 🔑 #e#", json!("значение ✓ \u{0000} \"q\" \\")),
        ("nested", json!({"a": [1, {"b": null}], "d": {"e": 1.5}})),
        ("empty", json!("")),
    ];
    let entries: Vec<(&str, Option<Value>)> =
        values.iter().map(|(k, v)| (*k, Some(v.clone()))).collect();
    committed(store, &s, &commit(0, &entries)).await;
    for (k, v) in &values {
        assert_eq!(
            store.get_entry(&s, k).await.unwrap().as_ref(),
            Some(v),
            "{k}"
        );
    }
    let changes = store.changes(&s, "g", 0, 1).await.unwrap();
    assert_eq!(changes.entries.len(), values.len());
}

#[tokio::test]
async fn snapshot_of_many_clients_spans_chunks() {
    let f = support::fixture("snapchunks").await;
    let store = &f.store;
    let s = space();
    assert!(store.create_space(&s).await.unwrap());
    let ids: Vec<String> = (0..150).map(|i| format!("client{i:03}")).collect();
    for (n, chunk) in ids.chunks(90).enumerate() {
        let n = n as u64;
        let c = Commit {
            expected_version: n,
            next_version: n + 1,
            clients: chunk
                .iter()
                .map(|id| (id.clone(), client("g", 7)))
                .collect(),
            new_group: (n == 0).then(|| ("g".to_owned(), "u".to_owned())),
            ..Commit::default()
        };
        committed(store, &s, &c).await;
    }
    let mut asked = ids.clone();
    asked.push("client-missing".into());
    asked.push(ids[0].clone()); // a duplicate is harmless
    f.counter.reset();
    let snap = store.push_snapshot(&s, "g", &asked).await.unwrap().unwrap();
    assert_eq!(snap.version, 2);
    assert_eq!(snap.clients.len(), 150);
    assert!(snap.clients.values().all(|c| *c == client("g", 7)));
    assert_eq!(snap.group_owner.as_deref(), Some("u"));
    // The space and group items plus 151 distinct clients, 25 items a request.
    assert_eq!(f.counter.snapshot()["TransactGetItems"], 7);
}

#[tokio::test]
async fn unreachable_server_is_retried_then_unavailable() {
    // A port nobody listens on: every try fails to connect.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let counter = store_dynamodb::RequestCounter::new();
    let client =
        store_dynamodb::local_client_with_counter(&format!("http://127.0.0.1:{port}"), &counter)
            .await;
    let policy = store_dynamodb::RetryPolicy {
        max_attempts: 3,
        base_delay: std::time::Duration::from_millis(1),
        max_delay: std::time::Duration::from_millis(5),
    };
    let store = store_dynamodb::DynamoStore::new(client, "nowhere").with_retry_policy(policy);
    let err = store.space_version(&space()).await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err}");
    assert_eq!(counter.snapshot()["GetItem"], 3);
}
