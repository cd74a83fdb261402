//! The adapter against a real DynamoDB-compatible server (moto): items, conditions,
//! the version index, paging.

mod support;

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Value, json};
use store_dynamodb::schema;
use sync_core::SpaceId;
use sync_core::store::{
    ClientRecord, Commit, CommitOutcome, EntryChange, PullSnapshot, Store, StoreError, StoreLimits,
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

async fn snap(store: &dyn Store, space: &SpaceId, group: &str, since: u64) -> PullSnapshot {
    store
        .pull_snapshot(space, group, since)
        .await
        .unwrap()
        .expect("the space exists")
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

    let all = snap(store, &s, "g", 0).await;
    assert_eq!(all.version, 3);
    assert_eq!(
        all.entries,
        vec![
            EntryChange {
                key: "a".into(),
                value: Some(json!(1).into())
            },
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
                value: Some(Value::Null.into())
            },
        ]
    );
    assert_eq!(all.client_lmids, vec![("mine".to_owned(), 2)]);

    let mid = snap(store, &s, "g", 1).await;
    let keys: Vec<_> = mid.entries.iter().map(|e| e.key).collect();
    assert_eq!(keys, ["b", "c", "d"]);
    assert_eq!(
        mid.entries.to_vec()[0].value,
        None,
        "a deletion is reported"
    );
    assert_eq!(mid.client_lmids, vec![("mine".to_owned(), 2)]);

    let last = snap(store, &s, "g", 2).await;
    assert_eq!(last.entries.len(), 1);
    assert!(last.client_lmids.is_empty());

    let theirs = snap(store, &s, "h", 0).await;
    assert_eq!(theirs.client_lmids, vec![("theirs".to_owned(), 5)]);
    let nobody = snap(store, &s, "unknown-group", 0).await;
    assert!(nobody.client_lmids.is_empty());

    f.counter.reset();
    let empty = snap(store, &s, "g", 3).await;
    assert!(empty.entries.is_empty() && empty.client_lmids.is_empty());
    assert_eq!(
        f.counter.snapshot(),
        [("BatchGetItem".to_owned(), 1)].into(),
        "nothing changed since the cookie: the space and group items alone"
    );
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
    committed(&f.store, &s, &commit(0, &[])).await;
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
        f.store.pull_snapshot(&s, "g", 0).await,
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
    let changes = snap(store, &s, "g", 0).await;
    let keys: Vec<String> = changes.entries.iter().map(|e| e.key.to_owned()).collect();
    expected.sort();
    assert_eq!(keys, expected);
    for e in changes.entries.to_vec() {
        assert_eq!(
            e.value.as_ref().unwrap().to_value().unwrap()["key"],
            json!(e.key)
        );
    }
    let queries = f.counter.snapshot()["Query"];
    assert!(
        queries >= 2,
        "expected several pages, got {queries} queries"
    );

    // From a cookie inside the data too.
    let tail = snap(store, &s, "g", 3).await;
    assert_eq!(tail.entries.len(), 50);
    assert!(tail.entries.iter().all(|e| e.key.starts_with("big/3/")));
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
    let changes = snap(store, &s, "g", 0).await;
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
    // The space and group items plus 151 distinct clients, each with its membership:
    // 304 items, 25 a request.
    assert_eq!(f.counter.snapshot()["TransactGetItems"], 13);
    // The first request (the space's version) alone and answered before any other is
    // sent; the other 12 at once: two round trips.
    let in_flight = f.counter.in_flight_at_sends("TransactGetItems");
    assert_eq!(in_flight.len(), 13);
    assert_eq!(in_flight[..2], [0, 0], "{in_flight:?}");
    assert!(in_flight[2..].iter().all(|n| *n > 0), "{in_flight:?}");
}

/// Writes an item of space `s` directly, as a commit landing on it would.
async fn put_raw(
    store: &store_dynamodb::DynamoStore,
    s: &SpaceId,
    sk: &str,
    attrs: &[(&str, AttributeValue)],
) {
    let mut request = store
        .client()
        .put_item()
        .table_name(store.table())
        .item(schema::PK, AttributeValue::S(format!("space#{s}")))
        .item(schema::SK, AttributeValue::S(sk.into()));
    for (name, value) in attrs {
        request = request.item(*name, value.clone());
    }
    request.send().await.unwrap();
}

fn num(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// An entry item as a commit at `version` writes it.
async fn put_entry(
    store: &store_dynamodb::DynamoStore,
    s: &SpaceId,
    key: &str,
    value: Value,
    version: u64,
) {
    let sk = format!("{}{key}", schema::ENTRY_PREFIX);
    put_raw(
        store,
        s,
        &sk,
        &[
            (schema::VERSION, num(version)),
            (schema::DELETED, AttributeValue::Bool(false)),
            (schema::VALUE, AttributeValue::S(value.to_string())),
        ],
    )
    .await;
}

/// The space item as commit `version` leaves it, naming `items` as that commit's writes.
async fn put_head(store: &store_dynamodb::DynamoStore, s: &SpaceId, version: u64, items: &[&str]) {
    let list = items
        .iter()
        .map(|sk| AttributeValue::S((*sk).into()))
        .collect();
    put_raw(
        store,
        s,
        schema::META_SK,
        &[
            (schema::HEAD_VERSION, num(version)),
            (schema::HEAD_ITEMS, AttributeValue::L(list)),
            (schema::HEAD_ITEMS_VERSION, num(version)),
            (schema::CREATED_AT, num(0)),
        ],
    )
    .await;
}

/// The space item's head attributes, read raw.
async fn head_of(store: &store_dynamodb::DynamoStore, s: &SpaceId) -> (u64, Vec<String>, u64) {
    let meta = store
        .client()
        .get_item()
        .table_name(store.table())
        .key(schema::PK, AttributeValue::S(format!("space#{s}")))
        .key(schema::SK, AttributeValue::S(schema::META_SK.into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    let n = |name: &str| match meta.get(name) {
        Some(AttributeValue::N(v)) => v.parse().unwrap(),
        _ => 0,
    };
    let mut items: Vec<String> = match meta.get(schema::HEAD_ITEMS) {
        Some(AttributeValue::L(list)) => list.iter().map(|v| v.as_s().unwrap().clone()).collect(),
        _ => Vec::new(),
    };
    items.sort();
    (
        n(schema::HEAD_VERSION),
        items,
        n(schema::HEAD_ITEMS_VERSION),
    )
}

#[tokio::test]
async fn commits_name_their_items_on_the_space_item() {
    let f = support::fixture("headitems").await;
    let store = &f.store;
    let s = space();
    assert!(store.create_space(&s).await.unwrap());
    assert_eq!(head_of(store, &s).await, (0, vec![], 0));

    let mut c = commit(0, &[("a", Some(json!(1))), ("gone", None)]);
    c.clients = vec![("c1".into(), client("g", 1))];
    c.new_group = Some(("g".into(), "".into()));
    committed(store, &s, &c).await;
    assert_eq!(
        head_of(store, &s).await,
        (1, vec!["c#g#c1".into(), "e#a".into(), "e#gone".into()], 1),
        "entries and clients, not the group"
    );

    // A version-only commit writes no item: the head items stay those of commit 1, which
    // may still be landing.
    let raise = Commit {
        expected_version: 1,
        next_version: 9,
        ..Commit::default()
    };
    committed(store, &s, &raise).await;
    assert_eq!(
        head_of(store, &s).await,
        (9, vec!["c#g#c1".into(), "e#a".into(), "e#gone".into()], 1)
    );

    // A settled head costs the pull nothing beyond the space and group items and its
    // two queries (the entries, the group's clients; sent together).
    committed(store, &s, &commit(9, &[("a", Some(json!(2)))])).await;
    f.counter.reset();
    let changes = snap(store, &s, "g", 1).await;
    assert_eq!(
        changes.entries,
        vec![EntryChange {
            key: "a".into(),
            value: Some(json!(2).into())
        }]
    );
    assert_eq!(
        f.counter.snapshot(),
        [("BatchGetItem".to_owned(), 1), ("Query".to_owned(), 2)].into()
    );

    // An entry read is one transactional read.
    f.counter.reset();
    assert_eq!(store.get_entry(&s, "a").await.unwrap(), Some(json!(2)));
    assert_eq!(store.get_entry(&s, "gone").await.unwrap(), None);
    assert_eq!(store.get_entry(&s, "never").await.unwrap(), None);
    assert_eq!(
        f.counter.snapshot(),
        [("TransactGetItems".to_owned(), 3)].into()
    );
}

#[tokio::test]
async fn pull_waits_for_the_head_commit_to_land_on_its_items() {
    let f = support::fixture("landing").await;
    let store = &f.store;
    let s = space();
    assert!(store.create_space(&s).await.unwrap());
    let mut c = commit(0, &[("a", Some(json!(1)))]);
    c.clients = vec![("c1".into(), client("g", 1))];
    committed(store, &s, &c).await;

    // Commit 2 (a := 2, new entry b, c1's LMID 2) has reached the space item and c1, not
    // yet the entries: a range read now sees c1 at 2 but a still at 1 and no b.
    put_head(store, &s, 2, &["e#a", "e#b", "c#g#c1"]).await;
    put_raw(
        store,
        &s,
        "c#g#c1",
        &[
            (schema::CLIENT_GROUP_ID, AttributeValue::S("g".into())),
            (schema::LAST_MUTATION_ID, num(2)),
            (schema::CLIENT_VERSION, num(2)),
        ],
    )
    .await;
    let landing = {
        let store = store.clone();
        let s = s.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(60)).await;
            put_entry(&store, &s, "a", json!(2), 2).await;
            put_entry(&store, &s, "b", json!("new"), 2).await;
        })
    };
    let changes = snap(store, &s, "g", 1).await;
    landing.await.unwrap();
    assert_eq!(changes.version, 2);
    assert_eq!(
        changes.entries,
        vec![
            EntryChange {
                key: "a".into(),
                value: Some(json!(2).into())
            },
            EntryChange {
                key: "b".into(),
                value: Some(json!("new").into())
            },
        ]
    );
    assert_eq!(changes.client_lmids, vec![("c1".to_owned(), 2)]);
    assert!(
        f.counter.snapshot()["BatchGetItem"] >= 2,
        "the space and group items, then a and b"
    );

    // From scratch, the query's stale `a` (version 1) is replaced too.
    let all = snap(store, &s, "g", 0).await;
    assert_eq!(all, changes);
    // Another group gets the entries, never c1's LMID.
    let other = snap(store, &s, "h", 1).await;
    assert_eq!(other.entries, changes.entries);
    assert!(other.client_lmids.is_empty());
}

#[tokio::test]
async fn pull_redoes_a_read_overtaken_by_a_commit_and_gives_up_on_a_commit_that_never_lands() {
    let f = support::fixture("neverlands").await;
    let store = &f.store;
    let s = space();
    assert!(store.create_space(&s).await.unwrap());
    committed(store, &s, &commit(0, &[("a", Some(json!(1)))])).await;

    // Head 2 names `a`, which already shows commit 3: every read is overtaken (here for
    // good, as no space item ever shows 3): bounded redos, then a temporary error.
    put_head(store, &s, 2, &["e#a"]).await;
    put_entry(store, &s, "a", json!(3), 3).await;
    let (_, redos_before) = store.pull_stats().counts();
    let started = std::time::Instant::now();
    let err = store.pull_snapshot(&s, "g", 1).await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err}");
    let (_, redos_after) = store.pull_stats().counts();
    assert!(redos_after > redos_before, "the read was redone");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(3),
        "gave up after {:?}",
        started.elapsed()
    );

    // Head 4 names `b`, which never shows commit 4: a temporary error, soon.
    put_head(store, &s, 4, &["e#b"]).await;
    put_entry(store, &s, "a", json!(1), 1).await;
    put_entry(store, &s, "b", json!("old"), 1).await;
    let started = std::time::Instant::now();
    let err = store.pull_snapshot(&s, "g", 1).await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "gave up after {:?}",
        started.elapsed()
    );
    // Nothing to wait for when the cookie is the head already.
    let none = snap(store, &s, "g", 4).await;
    assert_eq!((none.version, none.entries.len()), (4, 0));
}

#[tokio::test]
async fn gc_starts_over_from_a_resume_point_it_cannot_use() {
    let f = support::fixture("gcresume").await;
    let store = &f.store;
    let s = space();
    assert!(store.create_space(&s).await.unwrap());
    let unusable = sync_core::store::GcResumePoint {
        page_after: Some("not a scan position".into()),
        last_space: s.clone(),
    };
    store.set_gc_resume_point(Some(&unusable)).await.unwrap();
    // Every run would fail alike on that cursor: the run starts over and covers the store.
    for _ in 0..2 {
        let report = sync_core::gc::collect(store, &sync_core::gc::GcPolicy::DEFAULT, 0, None)
            .await
            .expect("a run despite the unusable point");
        assert!(!report.resumed && !report.incomplete, "{report:?}");
        assert_eq!(report.spaces, 1, "{report:?}");
        assert_eq!(store.gc_resume_point().await.unwrap(), None);
    }
}
