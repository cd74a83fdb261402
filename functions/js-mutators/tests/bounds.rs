//! An endless loop, an endless allocation, a thrown error, a rejected promise (and deep
//! recursion, a promise that never settles, a thrown non-Error) each fail only their own
//! mutation, in a push that also carries valid ones, on every store: their LMIDs advance,
//! none of their writes are kept, the valid mutations around them apply, and the engine
//! (one thread, so the same one throughout) runs the next push.

mod common;

use common::*;
use serde_json::{Value, json};
use std::sync::Arc;
use sync_core::Store;
use sync_core::memory_store::MemoryStore;

const BAD: [&str; 8] = [
    "spin",
    "hog",
    "throws",
    "rejects",
    "recurses",
    "hangs",
    "throwsValue",
    "nope",
];

async fn scenario(store: Arc<dyn Store>) {
    let js = load(BOUNDS_JS, 1);
    let svc = service(store.clone(), js.registry());
    let space = new_space(
        store.as_ref(),
        &format!("bounds{:08x}", rand::random::<u32>()),
    )
    .await;

    // put k0, bad, put k1, bad, ..., put k8
    let mut mutations: Vec<(&str, Value)> = Vec::new();
    for (i, bad) in BAD.iter().enumerate() {
        mutations.push(("put", json!({"key": format!("k{i}"), "value": i})));
        mutations.push((bad, Value::Null));
    }
    mutations.push(("put", json!({"key": "k8", "value": [0.1, "😀"]})));
    assert_eq!(push(&svc, &space, 1, &mutations).await, 200);
    assert_eq!(lmid(&svc, &space).await, mutations.len() as u64);
    let mut expected: std::collections::BTreeMap<String, Value> =
        (0..8).map(|i| (format!("k{i}"), json!(i))).collect();
    expected.insert("k8".into(), json!([0.1, "😀"]));
    assert_eq!(state(store.as_ref(), &space).await, expected);

    // The engine that ran out of memory and time still runs mutations.
    let next = mutations.len() as u64 + 1;
    assert_eq!(
        push(
            &svc,
            &space,
            next,
            &[("put", json!({"key": "after", "value": true}))]
        )
        .await,
        200
    );
    assert_eq!(lmid(&svc, &space).await, next);
    assert_eq!(state(store.as_ref(), &space).await["after"], json!(true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_stay_within_their_mutation_on_the_memory_store() {
    scenario(Arc::new(MemoryStore::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_stay_within_their_mutation_on_sqlite() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = store_sqlite::SqliteStore::open(dir.path().join("bounds.db")).expect("open SQLite");
    scenario(Arc::new(store)).await;
}

#[tokio::test(flavor = "current_thread")]
async fn failures_stay_within_their_mutation_on_dynamodb() {
    let dynamo = test_support::LocalDynamo::start().await;
    let client = dynamo.client().await;
    let table = dynamo.fresh_table(&client, "js-bounds").await;
    scenario(Arc::new(store_dynamodb::DynamoStore::new(client, table))).await;
}
