//! Engine behaviour on the in-memory store that the conformance suite does not reach:
//! rollback of a failed mutator's partial writes, reads through the overlay, the commit
//! budget, authorization and contention.

use serde_json::{Value, json};
use store_conformance::{ScriptedCommits, mutation, new_space, pull_from, push_request};
use sync_core::engine::push::{PushError, PushFailure};
use sync_core::engine::{self, PushConfig};
use sync_core::memory_store::MemoryStore;
use sync_core::mutators::{MutationError, Mutator, Registry, app};
use sync_core::protocol::{Cookie, PatchOp};
use sync_core::store::CommitOutcome;
use sync_core::tx::Tx;

/// Writes two keys, then fails: none of it may be kept.
struct WriteThenFail;

#[async_trait::async_trait]
impl Mutator for WriteThenFail {
    async fn run(&self, tx: &mut Tx<'_>, _args: &Value) -> Result<(), MutationError> {
        tx.put("count", json!(999))?;
        tx.put("partial", json!(true))?;
        Err(MutationError::Rejected("business rule".into()))
    }
}

/// Records what a scan sees after its own writes, under `seen`.
struct ScanSnapshot;

#[async_trait::async_trait]
impl Mutator for ScanSnapshot {
    async fn run(&self, tx: &mut Tx<'_>, _args: &Value) -> Result<(), MutationError> {
        tx.put("item/b2", json!("mine"))?;
        tx.del("item/a").await?;
        let seen: Vec<String> = tx
            .scan("item/", 10)
            .await?
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        tx.put("seen", json!(seen))
    }
}

fn registry() -> Registry {
    app::registry()
        .with("writeThenFail", WriteThenFail)
        .with("scanSnapshot", ScanSnapshot)
}

fn put_value(patch: &[PatchOp], key: &str) -> Option<Value> {
    patch.iter().find_map(|op| match op {
        PatchOp::Put { key: k, value } if k == key => Some(value.clone()),
        _ => None,
    })
}

#[tokio::test]
async fn failed_mutator_keeps_none_of_its_writes_but_neighbours_keep_theirs() {
    let store = MemoryStore::new();
    let space = new_space(&store, "rollback").await;
    let req = push_request(
        "g",
        vec![
            mutation("c", 1, "increment", json!(1)),
            mutation("c", 2, "writeThenFail", Value::Null),
            mutation("c", 3, "increment", json!(1)),
        ],
    );
    let outcome = engine::push(
        &store,
        &registry(),
        &PushConfig::default(),
        &space,
        "",
        &req,
    )
    .await
    .unwrap();
    assert_eq!(
        (outcome.processed, outcome.failed, outcome.commits),
        (3, 1, 1)
    );
    let full = pull_from(&store, &space, "g", Cookie::Null).await;
    assert_eq!(put_value(&full.patch, "count"), Some(json!(2)));
    assert_eq!(put_value(&full.patch, "partial"), None);
    assert_eq!(full.last_mutation_id_changes, [("c".into(), 3)].into());
}

#[tokio::test]
async fn scan_sees_committed_batched_and_own_writes() {
    let store = MemoryStore::new();
    let space = new_space(&store, "scan").await;
    let setup = push_request(
        "g",
        vec![
            mutation("c", 1, "setItem", json!({"key": "a", "value": 1})),
            mutation("c", 2, "setItem", json!({"key": "c", "value": 3})),
        ],
    );
    let config = PushConfig::default();
    engine::push(&store, &registry(), &config, &space, "", &setup)
        .await
        .unwrap();
    // b1 is batched in the same commit as the scan; b2 and the delete of a are the
    // scanning mutation's own.
    let req = push_request(
        "g",
        vec![
            mutation("c", 3, "setItem", json!({"key": "b1", "value": 2})),
            mutation("c", 4, "scanSnapshot", Value::Null),
        ],
    );
    engine::push(&store, &registry(), &config, &space, "", &req)
        .await
        .unwrap();
    let full = pull_from(&store, &space, "g", Cookie::Null).await;
    assert_eq!(
        put_value(&full.patch, "seen"),
        Some(json!(["item/b1", "item/b2", "item/c"]))
    );
}

#[tokio::test]
async fn commit_budget_leaves_the_rest_for_the_next_push() {
    let store = MemoryStore::new();
    let space = new_space(&store, "budget").await;
    let config = PushConfig {
        max_commits_per_push: 2,
        ..PushConfig::default()
    };
    let req = push_request(
        "g",
        (1..=300)
            .map(|i| {
                mutation(
                    "c",
                    i,
                    "setItem",
                    json!({"key": format!("k{i}"), "value": i}),
                )
            })
            .collect(),
    );
    let first = engine::push(&store, &registry(), &config, &space, "", &req)
        .await
        .unwrap();
    assert!(first.truncated);
    assert_eq!(first.commits, 2);
    assert!(first.processed < 300);
    let mut total = first.processed;
    for _ in 0..10 {
        let next = engine::push(&store, &registry(), &config, &space, "", &req)
            .await
            .unwrap();
        total += next.processed;
        if !next.truncated {
            break;
        }
    }
    assert_eq!(
        total, 300,
        "every mutation processed exactly once across pushes"
    );
    let full = pull_from(&store, &space, "g", Cookie::Null).await;
    assert_eq!(full.last_mutation_id_changes, [("c".into(), 300)].into());
    assert_eq!(full.patch.len(), 301);
}

#[tokio::test]
async fn clients_and_groups_are_checked() {
    let store = MemoryStore::new();
    let space = new_space(&store, "auth").await;
    let config = PushConfig::default();
    let req = push_request("g1", vec![mutation("c1", 1, "increment", json!(1))]);
    engine::push(&store, &registry(), &config, &space, "alice", &req)
        .await
        .unwrap();

    // c1 belongs to g1: another group may not push for it.
    let req = push_request("g2", vec![mutation("c1", 2, "increment", json!(1))]);
    let err = engine::push(&store, &registry(), &config, &space, "alice", &req).await;
    assert!(matches!(
        err,
        Err(PushFailure {
            error: PushError::ClientInOtherGroup { .. },
            committed: 0
        })
    ));
    // g1 belongs to alice.
    let req = push_request("g1", vec![mutation("c2", 1, "increment", json!(1))]);
    let err = engine::push(&store, &registry(), &config, &space, "mallory", &req).await;
    assert!(matches!(
        err,
        Err(PushFailure {
            error: PushError::GroupOwnedByOtherUser,
            committed: 0
        })
    ));
    let full = pull_from(&store, &space, "g1", Cookie::Null).await;
    assert_eq!(put_value(&full.patch, "count"), Some(json!(1)));
}

#[tokio::test]
async fn contention_is_retried_a_bounded_number_of_times() {
    let store = ScriptedCommits::new(MemoryStore::new(), |_| Some(Ok(CommitOutcome::Conflict)));
    let space = new_space(&store, "contended").await;
    let config = PushConfig {
        max_attempts: 5,
        ..PushConfig::default()
    };
    let req = push_request("g", vec![mutation("c", 1, "increment", json!(1))]);
    let err = engine::push(&store, &registry(), &config, &space, "", &req).await;
    assert!(matches!(
        err,
        Err(PushFailure {
            error: PushError::Contended { conflicts: 5 },
            committed: 0
        })
    ));
    assert_eq!(store.commits(), 5);
}
