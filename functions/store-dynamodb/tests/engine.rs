//! The engine (push and pull from sync-core) over the adapter and a real server: batch
//! splitting, and what each operation costs in DynamoDB requests.

mod support;

use serde_json::{Value, json};
use std::collections::BTreeMap;
use sync_core::engine::{PushConfig, pull, push};
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
    pull(store, space, &req).await.expect("pull")
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
    assert_eq!(resp.cookie, 3);
    assert_eq!(resp.last_mutation_id_changes[CLIENT], 250);
    assert_eq!(resp.patch.first(), Some(&PatchOp::Clear));
    let puts: BTreeMap<&str, &Value> = resp
        .patch
        .iter()
        .filter_map(|op| match op {
            PatchOp::Put { key, value } => Some((key.as_str(), value)),
            _ => None,
        })
        .collect();
    assert_eq!(puts.len(), 250);
    assert_eq!(puts["item/k001"], &json!(1));
    assert_eq!(puts["item/k250"], &json!(250));

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
        &[
            ("GetItem", 1),
            ("TransactGetItems", 1),
            ("TransactWriteItems", 1),
        ],
    );

    f.counter.reset();
    let outcome = push(
        store,
        &mutators,
        &config,
        &space,
        "",
        &push_request(increments(2..=101)),
    )
    .await
    .unwrap();
    assert_eq!((outcome.processed, outcome.commits), (100, 1));
    expect_counts(
        "push of 100 increments",
        f.counter.snapshot(),
        &[
            ("GetItem", 1),
            ("TransactGetItems", 1),
            ("TransactWriteItems", 1),
        ],
    );

    f.counter.reset();
    let first = pull_from(store, &space, Cookie::Null).await;
    assert_eq!(first.cookie, 2);
    expect_counts(
        "first pull (null cookie)",
        f.counter.snapshot(),
        &[("GetItem", 1), ("Query", 1)],
    );

    f.counter.reset();
    let same = pull_from(store, &space, Cookie::Version(first.cookie)).await;
    assert!(same.patch.is_empty() && same.last_mutation_id_changes.is_empty());
    expect_counts(
        "pull with nothing changed",
        f.counter.snapshot(),
        &[("GetItem", 1)],
    );

    push(
        store,
        &mutators,
        &config,
        &space,
        "",
        &push_request(increments(102..=102)),
    )
    .await
    .unwrap();
    f.counter.reset();
    let next = pull_from(store, &space, Cookie::Version(first.cookie)).await;
    assert_eq!(next.cookie, 3);
    assert_eq!(
        next.patch,
        vec![PatchOp::Put {
            key: "count".into(),
            value: json!(102)
        }]
    );
    assert_eq!(next.last_mutation_id_changes[CLIENT], 102);
    expect_counts(
        "incremental pull after one change",
        f.counter.snapshot(),
        &[("GetItem", 1), ("Query", 1)],
    );

    f.counter.reset();
    let duplicate = push(
        store,
        &mutators,
        &config,
        &space,
        "",
        &push_request(increments(1..=102)),
    )
    .await
    .unwrap();
    assert_eq!((duplicate.processed, duplicate.commits), (0, 0));
    expect_counts(
        "push of only duplicates",
        f.counter.snapshot(),
        &[("TransactGetItems", 1)],
    );
}
