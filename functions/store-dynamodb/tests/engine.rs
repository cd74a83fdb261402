//! The engine (push and pull from sync-core) over the adapter and a real server: batch
//! splitting, and what each operation costs in DynamoDB requests.

mod support;

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use store_dynamodb::schema;
use sync_core::cookie::CookieKeys;
use sync_core::engine::{PushConfig, pull, push, push_until};
use sync_core::mutators::app::registry;
use sync_core::protocol::{Cookie, Mutation, PatchOp, PullRequest, PullResponse, PushRequest};
use sync_core::{SpaceId, Store};

const GROUP: &str = "group1";
const CLIENT: &str = "client1";

fn push_request(mutations: Vec<Mutation>) -> PushRequest {
    PushRequest {
        client_group_id: GROUP.into(),
        profile_id: Some("profile1".into()),
        schema_version: "1".into(),
        mutations,
    }
}

fn mutation(id: u64, name: &str, args: Value) -> Mutation {
    Mutation {
        client_id: CLIENT.into(),
        id,
        name: name.into(),
        args,
        defect: None,
    }
}

fn increments(ids: std::ops::RangeInclusive<u64>) -> Vec<Mutation> {
    ids.map(|id| mutation(id, "increment", json!(1))).collect()
}

async fn pull_from(store: &dyn Store, space: &SpaceId, cookie: Cookie) -> PullResponse {
    let req = PullRequest {
        client_group_id: GROUP.into(),
        profile_id: Some("profile1".into()),
        schema_version: "1".into(),
        cookie,
    };
    pull(store, &keys(), space, "", &req).await.expect("pull")
}

fn keys() -> CookieKeys {
    CookieKeys::from_secret_text("dynamodb-engine-test-secret-0123456789").expect("a valid secret")
}

/// A cookie this server signed (one it handed out before the data went back).
fn genuine(space: &SpaceId, order: u64) -> Cookie {
    Cookie::Signed {
        order,
        sig: keys().sign(space, order).sig,
    }
}

fn expect_counts(what: &str, counts: BTreeMap<String, u64>, expected: &[(&str, u64)]) {
    println!("{what}: {counts:?}");
    let expected: BTreeMap<String, u64> = expected
        .iter()
        .map(|(k, v)| ((*k).to_owned(), *v))
        .collect();
    assert_eq!(counts, expected, "requests of {what}");
}

#[tokio::test]
async fn push_of_250_writes_splits_into_commits() {
    let f = support::fixture("bigpush").await;
    let space = SpaceId::generate();
    assert!(f.store.create_space(&space).await.unwrap());
    let mutations: Vec<Mutation> = (1..=250)
        .map(|id| {
            mutation(
                id,
                "setItem",
                json!({"key": format!("k{id:03}"), "value": id}),
            )
        })
        .collect();
    f.counter.reset();
    let outcome = push(
        &f.store,
        &registry(),
        &PushConfig::default(),
        &space,
        "",
        &push_request(mutations),
    )
    .await
    .expect("push");
    println!(
        "push of 250 setItem: {outcome:?}, requests {:?}",
        f.counter.snapshot()
    );
    assert_eq!(outcome.processed, 250);
    assert_eq!(outcome.failed, 0);
    assert!(!outcome.truncated);
    // 98 writes per commit, one of them the client's LMID: 97 + 97 + 56 entries.
    assert_eq!(outcome.commits, 3);
    assert_eq!(f.counter.snapshot()["TransactWriteItems"], 3);
    assert_eq!(f.store.space_version(&space).await.unwrap(), Some(3));

    let resp = pull_from(&f.store, &space, Cookie::Null).await;
    assert_eq!(resp.cookie.order, 3);
    assert_eq!(resp.last_mutation_id_changes[CLIENT], 250);
    assert_eq!(resp.patch.to_ops().first(), Some(&PatchOp::Clear));
    let puts: BTreeMap<String, Value> = resp
        .patch
        .to_ops()
        .into_iter()
        .filter_map(|op| match op {
            PatchOp::Put { key, value } => Some((key, value.to_value().unwrap())),
            _ => None,
        })
        .collect();
    assert_eq!(puts.len(), 250);
    assert_eq!(puts["item/k001"], json!(1));
    assert_eq!(puts["item/k250"], json!(250));

    // Pushing the same mutations again is a no-op: all are duplicates.
    let again: Vec<Mutation> = (1..=250)
        .map(|id| {
            mutation(
                id,
                "setItem",
                json!({"key": format!("k{id:03}"), "value": 0}),
            )
        })
        .collect();
    let outcome = push(
        &f.store,
        &registry(),
        &PushConfig::default(),
        &space,
        "",
        &push_request(again),
    )
    .await
    .unwrap();
    assert_eq!((outcome.processed, outcome.commits), (0, 0));
    assert_eq!(f.store.space_version(&space).await.unwrap(), Some(3));
}

#[tokio::test]
async fn concurrent_pushes_of_the_same_mutations_apply_once() {
    let f = support::fixture("racepush").await;
    let space = SpaceId::generate();
    assert!(f.store.create_space(&space).await.unwrap());
    // Several tabs of one group push the same pending mutations at once.
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let store = f.store.clone();
            let space = space.clone();
            tokio::spawn(async move {
                push(
                    &store,
                    &registry(),
                    &PushConfig::default(),
                    &space,
                    "",
                    &push_request(increments(1..=10)),
                )
                .await
                .expect("push")
            })
        })
        .collect();
    let mut processed = 0;
    for task in tasks {
        processed += task.await.unwrap().processed;
    }
    assert_eq!(
        processed, 10,
        "each mutation is processed by exactly one push"
    );
    assert_eq!(
        f.store.get_entry(&space, "count").await.unwrap(),
        Some(json!(10))
    );
}

#[tokio::test]
async fn requests_per_operation() {
    let f = support::fixture("requests").await;
    let store = &f.store;
    let space = SpaceId::generate();
    let mutators = registry();
    let config = PushConfig::default();
    assert!(store.create_space(&space).await.unwrap());

    f.counter.reset();
    let outcome = push(
        store,
        &mutators,
        &config,
        &space,
        "",
        &push_request(increments(1..=1)),
    )
    .await
    .unwrap();
    assert_eq!((outcome.processed, outcome.commits), (1, 1));
    expect_counts(
        "push of one increment (new client and group)",
        f.counter.snapshot(),
        // The snapshot and the read of `count` (transactional: it must not see `count`
        // before a commit the snapshot already saw), then the commit.
        &[("TransactGetItems", 2), ("TransactWriteItems", 1)],
    );

    assert_eq!(outcome.read_keys, ["count"]);

    // The next push reads what this one read with its snapshot (the service remembers
    // it per space): two round trips.
    f.counter.reset();
    let hinted = push_until(
        store,
        &mutators,
        &config,
        &space,
        "",
        &push_request(increments(2..=2)),
        None,
        &outcome.read_keys,
    )
    .await
    .unwrap();
    assert_eq!((hinted.processed, hinted.commits), (1, 1));
    expect_counts(
        "push of one increment, reading `count` with the snapshot",
        f.counter.snapshot(),
        &[("TransactGetItems", 1), ("TransactWriteItems", 1)],
    );

    f.counter.reset();
    let outcome = push(
        store,
        &mutators,
        &config,
        &space,
        "",
        &push_request(increments(3..=102)),
    )
    .await
    .unwrap();
    assert_eq!((outcome.processed, outcome.commits), (100, 1));
    expect_counts(
        "push of 100 increments",
        f.counter.snapshot(),
        // The snapshot and the read of `count` (transactional: it must not see `count`
        // before a commit the snapshot already saw), then the commit.
        &[("TransactGetItems", 2), ("TransactWriteItems", 1)],
    );

    f.counter.reset();
    let first = pull_from(store, &space, Cookie::Null).await;
    assert_eq!(first.cookie.order, 3);
    expect_counts(
        "first pull (null cookie)",
        f.counter.snapshot(),
        // The space item (version, access) with the group's item (its owner), then the
        // changed entries and the group's changed clients, at once.
        &[("BatchGetItem", 1), ("Query", 2)],
    );

    f.counter.reset();
    let same = pull_from(store, &space, Cookie::Version(first.cookie.order)).await;
    assert!(same.patch.is_empty() && same.last_mutation_id_changes.is_empty());
    expect_counts(
        "pull with nothing changed",
        f.counter.snapshot(),
        &[("BatchGetItem", 1)],
    );

    push(
        store,
        &mutators,
        &config,
        &space,
        "",
        &push_request(increments(103..=103)),
    )
    .await
    .unwrap();
    f.counter.reset();
    let next = pull_from(store, &space, Cookie::Version(first.cookie.order)).await;
    assert_eq!(next.cookie.order, 4);
    assert_eq!(
        next.patch,
        vec![PatchOp::Put {
            key: "count".into(),
            value: json!(103).into()
        }]
    );
    assert_eq!(next.last_mutation_id_changes[CLIENT], 103);
    expect_counts(
        "incremental pull after one change",
        f.counter.snapshot(),
        &[("BatchGetItem", 1), ("Query", 2)],
    );

    f.counter.reset();
    let duplicate = push(
        store,
        &mutators,
        &config,
        &space,
        "",
        &push_request(increments(1..=103)),
    )
    .await
    .unwrap();
    assert_eq!((duplicate.processed, duplicate.commits), (0, 0));
    expect_counts(
        "push of only duplicates",
        f.counter.snapshot(),
        &[("TransactGetItems", 1)],
    );

    f.counter.reset();
    let reset = pull_from(store, &space, genuine(&space, 1_000)).await;
    assert_eq!(reset.cookie.order, 1_001);
    assert_eq!(reset.patch.to_ops().first(), Some(&PatchOp::Clear));
    expect_counts(
        "pull with a genuine cookie from the future (after a restore)",
        f.counter.snapshot(),
        // The version (nothing to query above the cookie), a full read, the raise, and the
        // full read at the raised version.
        &[("BatchGetItem", 3), ("UpdateItem", 1), ("Query", 4)],
    );
}

/// Sets the space item as commit `version` leaves it, naming `items` as that commit's
/// writes, while the entries it names still show the previous commit.
async fn put_landing_head(f: &support::Fixture, space: &SpaceId, version: u64, items: &[&str]) {
    let list = items
        .iter()
        .map(|sk| AttributeValue::S((*sk).into()))
        .collect();
    f.store
        .client()
        .update_item()
        .table_name(f.store.table())
        .key(schema::PK, AttributeValue::S(format!("space#{space}")))
        .key(schema::SK, AttributeValue::S(schema::META_SK.into()))
        .update_expression("SET #hv = :v, #hi = :items, #hiv = :v")
        .expression_attribute_names("#hv", schema::HEAD_VERSION)
        .expression_attribute_names("#hi", schema::HEAD_ITEMS)
        .expression_attribute_names("#hiv", schema::HEAD_ITEMS_VERSION)
        .expression_attribute_values(":v", AttributeValue::N(version.to_string()))
        .expression_attribute_values(":items", AttributeValue::L(list))
        .send()
        .await
        .unwrap();
}

/// Lands the entry `count` at `version` after a pause, as the rest of a commit would.
fn land_count_later(
    f: &support::Fixture,
    space: &SpaceId,
    value: u64,
    version: u64,
) -> tokio::task::JoinHandle<()> {
    let store = f.store.clone();
    let space = space.clone();
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(40)).await;
        store
            .client()
            .put_item()
            .table_name(store.table())
            .item(schema::PK, AttributeValue::S(format!("space#{space}")))
            .item(schema::SK, AttributeValue::S("e#count".into()))
            .item(schema::VERSION, AttributeValue::N(version.to_string()))
            .item(schema::DELETED, AttributeValue::Bool(false))
            .item(schema::VALUE, AttributeValue::S(value.to_string()))
            .send()
            .await
            .unwrap();
    })
}

#[tokio::test]
async fn pulls_never_answer_a_commit_in_part() {
    let f = support::fixture("inpart").await;
    let space = SpaceId::generate();
    assert!(f.store.create_space(&space).await.unwrap());
    let outcome = push(
        &f.store,
        &registry(),
        &PushConfig::default(),
        &space,
        "",
        &push_request(increments(1..=1)),
    )
    .await
    .unwrap();
    assert_eq!(outcome.commits, 1);

    // Commit 2 has reached the space item only: an incremental pull waits for `count`.
    put_landing_head(&f, &space, 2, &["e#count"]).await;
    let landing = land_count_later(&f, &space, 2, 2);
    let next = pull_from(&f.store, &space, Cookie::Version(1)).await;
    landing.await.unwrap();
    assert_eq!(next.cookie.order, 2);
    assert_eq!(
        next.patch,
        vec![PatchOp::Put {
            key: "count".into(),
            value: json!(2).into()
        }]
    );

    // Commit 3 likewise, and a cookie from the future raises the version past it: the
    // reset still waits for commit 3, which the raise did not replace.
    put_landing_head(&f, &space, 3, &["e#count"]).await;
    let landing = land_count_later(&f, &space, 3, 3);
    let reset = pull_from(&f.store, &space, genuine(&space, 40)).await;
    landing.await.unwrap();
    assert_eq!(reset.cookie.order, 41);
    assert_eq!(
        reset.patch,
        vec![
            PatchOp::Clear,
            PatchOp::Put {
                key: "count".into(),
                value: json!(3).into()
            }
        ]
    );
}
