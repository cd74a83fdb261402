//! Engine behaviour on the in-memory store that the conformance suite does not reach:
//! rollback of a failed mutator's partial writes, reads through the overlay, the commit
//! budget, authorization and contention.

use serde_json::{Value, json};
use std::time::{Duration, Instant};
use store_conformance::{ScriptedStore, mutation, new_space, pull_from, push_request, try_pull_as};
use sync_core::Store as _;
use sync_core::engine::pull::PullError;
use sync_core::engine::push::{Backoff, PushError, PushFailure};
use sync_core::engine::{self, PushConfig};
use sync_core::memory_store::MemoryStore;
use sync_core::mutators::{MutationError, Mutator, Registry, app};
use sync_core::protocol::{Cookie, Patch, PatchOp};
use sync_core::store::{CommitOutcome, StoreError};
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

fn put_value(patch: &Patch, key: &str) -> Option<Value> {
    patch.to_ops().into_iter().find_map(|op| match op {
        PatchOp::Put { key: k, value } if k == key => Some(value.to_value().unwrap()),
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
    // And only alice pulls with it.
    let full = try_pull_as(&store, &space, "alice", "g1", Cookie::Null)
        .await
        .unwrap();
    assert_eq!(put_value(&full.patch, "count"), Some(json!(1)));
    let refused = try_pull_as(&store, &space, "mallory", "g1", Cookie::Null).await;
    assert!(
        matches!(refused, Err(PullError::GroupOwnedByOtherUser)),
        "{refused:?}"
    );
}

#[tokio::test]
async fn contention_is_retried_a_bounded_number_of_times() {
    let store = ScriptedStore::new(MemoryStore::new())
        .with_commits(|_, _| Some(Ok(CommitOutcome::Conflict)));
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

#[tokio::test]
async fn contention_is_retried_until_the_retry_budget_is_spent() {
    let store = ScriptedStore::new(MemoryStore::new())
        .with_commits(|_, _| Some(Ok(CommitOutcome::Conflict)));
    let space = new_space(&store, "contended-budget").await;
    let config = PushConfig {
        retry_budget: Duration::from_millis(50),
        backoff: Backoff::AttemptTime {
            factor: 1.0,
            max: Duration::from_millis(250),
        },
        ..PushConfig::default()
    };
    let req = push_request("g", vec![mutation("c", 1, "increment", json!(1))]);
    let err = engine::push(&store, &registry(), &config, &space, "", &req).await;
    let Err(PushFailure {
        error: PushError::Contended { conflicts },
        committed: 0,
    }) = err
    else {
        panic!("{err:?}");
    };
    // Ended by the budget, not by the attempts (1,000 by default), and every attempt
    // was a commit that lost.
    assert!(
        conflicts > 1 && conflicts < config.max_attempts,
        "{conflicts}"
    );
    assert_eq!(store.commits(), conflicts as usize);
}

#[tokio::test]
async fn with_a_deadline_a_contended_push_retries_until_it_not_until_the_budget() {
    // Conflicts for the first 30 commits, then the store lets commits through.
    let store = ScriptedStore::new(MemoryStore::new())
        .with_commits(|n, _| (n < 30).then_some(Ok(CommitOutcome::Conflict)));
    let space = new_space(&store, "contended-deadline").await;
    let config = PushConfig {
        // Spent before the first retry: only the deadline keeps the push going.
        retry_budget: Duration::ZERO,
        ..PushConfig::default()
    };
    let req = push_request("g", vec![mutation("c", 1, "increment", json!(1))]);
    let deadline = Instant::now() + Duration::from_secs(20);
    let outcome = engine::push::push_until(
        &store,
        &registry(),
        &config,
        &space,
        "",
        &req,
        Some(deadline),
        &[],
    )
    .await
    .unwrap();
    assert_eq!((outcome.conflicts, outcome.commits), (30, 1));
}

#[tokio::test]
async fn a_read_that_meets_a_commit_in_flight_is_retried_as_a_lost_race() {
    // The mutator's read of `count` is cancelled three times (a commit of another
    // request is landing on it), then passes.
    let busy_left = std::sync::atomic::AtomicUsize::new(3);
    let store = ScriptedStore::new(MemoryStore::new()).with_reads(move |_| {
        busy_left
            .fetch_update(
                std::sync::atomic::Ordering::SeqCst,
                std::sync::atomic::Ordering::SeqCst,
                |n| n.checked_sub(1),
            )
            .ok()
            .map(|_| Err(StoreError::Busy("a commit is in flight".into())))
    });
    let space = new_space(&store, "busy").await;
    let req = push_request("g", vec![mutation("c", 1, "increment", json!(2))]);
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
        (outcome.conflicts, outcome.commits, outcome.failed),
        (3, 1, 0)
    );
    let full = pull_from(&store, &space, "g", Cookie::Null).await;
    assert_eq!(put_value(&full.patch, "count"), Some(json!(2)));
}

#[tokio::test]
async fn a_refused_read_of_the_remembered_entries_does_not_refuse_the_push() {
    let store = ScriptedStore::new(MemoryStore::new()).refusing_entries_with_snapshot();
    let space = new_space(&store, "big-reads").await;
    let req = push_request("g", vec![mutation("c", 1, "increment", json!(5))]);
    let remembered = ["count".to_owned(), "big".to_owned()];
    let outcome = engine::push::push_until(
        &store,
        &registry(),
        &PushConfig::default(),
        &space,
        "",
        &req,
        Some(Instant::now() + Duration::from_secs(20)),
        &remembered,
    )
    .await
    .unwrap();
    assert_eq!(
        (outcome.processed, outcome.failed, outcome.commits),
        (1, 0, 1)
    );
    let full = pull_from(&store, &space, "g", Cookie::Null).await;
    assert_eq!(put_value(&full.patch, "count"), Some(json!(5)));
}

#[tokio::test]
async fn a_commit_the_store_refuses_fails_only_the_mutation_that_caused_it() {
    // Refuses, deterministically, every commit that writes `item/refused` and every read
    // of it: a limit of the store the engine did not know of.
    let refused = || StoreError::Rejected("this key is refused".into());
    let store = ScriptedStore::new(MemoryStore::new())
        .with_commits(move |_, commit| {
            commit
                .entries
                .iter()
                .any(|(k, _)| k == "item/refused")
                .then(|| Err(refused()))
        })
        .with_reads(move |key| (key == "item/refused").then(|| Err(refused())));
    let space = new_space(&store, "refused").await;
    let req = push_request(
        "g",
        vec![
            mutation("c", 1, "setItem", json!({"key": "a", "value": 1})),
            mutation("c", 2, "setItem", json!({"key": "refused", "value": 2})),
            mutation("d", 1, "setItem", json!({"key": "b", "value": 3})),
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
    .expect("the push succeeds");
    assert_eq!((outcome.processed, outcome.failed), (4, 1), "{outcome:?}");
    let full = pull_from(&store, &space, "g", Cookie::Null).await;
    assert_eq!(put_value(&full.patch, "item/a"), Some(json!(1)));
    assert_eq!(put_value(&full.patch, "item/b"), Some(json!(3)));
    assert_eq!(put_value(&full.patch, "count"), Some(json!(1)));
    assert_eq!(put_value(&full.patch, "item/refused"), None);
    assert_eq!(
        full.last_mutation_id_changes,
        [("c".to_owned(), 3), ("d".to_owned(), 1)].into()
    );

    // A read the store refuses is the mutation's permanent failure too.
    let req = push_request(
        "g",
        vec![
            mutation("c", 4, "deleteItem", json!({"key": "refused"})),
            mutation("c", 5, "increment", json!(1)),
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
    .expect("the push succeeds");
    assert_eq!((outcome.processed, outcome.failed), (2, 1));
    let full = pull_from(&store, &space, "g", Cookie::Null).await;
    assert_eq!(put_value(&full.patch, "count"), Some(json!(2)));
    assert_eq!(full.last_mutation_id_changes[&"c".to_owned()], 5);
}

#[tokio::test]
async fn a_push_past_its_deadline_answers_with_what_it_committed() {
    let store = MemoryStore::new();
    let space = new_space(&store, "deadline").await;
    let past = std::time::Instant::now();
    let req = push_request("g", vec![mutation("c", 1, "increment", json!(1))]);
    let refused = engine::push_until(
        &store,
        &registry(),
        &PushConfig::default(),
        &space,
        "",
        &req,
        Some(past),
        &[],
    )
    .await
    .unwrap_err();
    assert!(matches!(refused.error, PushError::DeadlineExceeded));
    assert_eq!(refused.committed, 0);
    assert_eq!(store.space_version(&space).await.unwrap(), Some(0));

    // A push of three commits' worth whose deadline passes during its first commit: it
    // closes the batch it holds and stops (the client pushes the rest).
    let config = PushConfig {
        max_commits_per_push: 20,
        ..PushConfig::default()
    };
    let big: Vec<_> = (1..=250)
        .map(|i| {
            mutation(
                "c",
                i,
                "setItem",
                json!({"key": format!("k{i}"), "value": i}),
            )
        })
        .collect();
    // Every call takes 500 ms: the snapshot ends at 500 ms, the first commit starts then
    // (before the deadline, at 750 ms) and ends at 1,000 ms, after it.
    let slow = ScriptedStore::new(MemoryStore::new()).with_delay(Duration::from_millis(500));
    let space = new_space(&slow, "deadline2").await;
    let deadline = std::time::Instant::now() + Duration::from_millis(750);
    let outcome = engine::push_until(
        &slow,
        &registry(),
        &config,
        &space,
        "",
        &push_request("g", big),
        Some(deadline),
        &[],
    )
    .await
    .expect("answers with what it committed");
    assert!(outcome.truncated, "{outcome:?}");
    assert_eq!(outcome.commits, 2, "{outcome:?}");
    assert!(outcome.processed < 250, "{outcome:?}");
    let full = pull_from(&slow, &space, "g", Cookie::Null).await;
    assert_eq!(
        full.last_mutation_id_changes[&"c".to_owned()],
        outcome.processed as u64
    );
}

#[tokio::test]
async fn a_request_not_done_by_its_deadline_is_answered_503() {
    let store = std::sync::Arc::new(
        ScriptedStore::new(MemoryStore::new()).with_delay(Duration::from_millis(1_000)),
    );
    let space = new_space(store.as_ref(), "timeout").await;
    let svc = sync_core::SyncService::new(
        store.clone(),
        std::sync::Arc::new(registry()),
        std::sync::Arc::new(sync_core::poke::NoPoker),
    )
    .with_request_timeout(std::time::Duration::from_millis(100));
    let body = json!({"pushVersion":1,"clientGroupID":"g","mutations":
        [{"clientID":"c","id":1,"name":"increment","args":1}]})
    .to_string();
    let started = std::time::Instant::now();
    let resp = svc
        .handle(sync_core::ApiRequest {
            method: "POST",
            path: "/api/replicache/push",
            space_id: Some(space.as_str()),
            body: body.as_bytes(),
            accepts_gzip: false,
            user: "",
        })
        .await;
    assert!(started.elapsed() < Duration::from_millis(900));
    assert_eq!(resp.status, 503);
    assert_eq!(
        resp.json_body().unwrap()["error"],
        json!("DeadlineExceeded")
    );
}

#[tokio::test]
async fn a_push_naming_more_clients_than_the_cap_is_processed_in_parts() {
    let store = MemoryStore::new();
    let space = new_space(&store, "clients").await;
    let config = PushConfig {
        max_clients_per_push: 3,
        ..PushConfig::default()
    };
    let mutations: Vec<_> = (0..5)
        .map(|i| mutation(&format!("c{i}"), 1, "increment", json!(1)))
        .collect();
    let req = push_request("g", mutations);
    let first = engine::push(&store, &registry(), &config, &space, "", &req)
        .await
        .unwrap();
    assert_eq!((first.processed, first.truncated), (3, true), "{first:?}");
    // The client sends what is still pending (here: everything again): the rest goes in.
    let second = engine::push(&store, &registry(), &config, &space, "", &req)
        .await
        .unwrap();
    assert_eq!(
        second.processed, 0,
        "the first three clients fill the cap again"
    );
    let rest = push_request(
        "g",
        (3..5)
            .map(|i| mutation(&format!("c{i}"), 1, "increment", json!(1)))
            .collect(),
    );
    let third = engine::push(&store, &registry(), &config, &space, "", &rest)
        .await
        .unwrap();
    assert_eq!((third.processed, third.truncated), (2, false));
    let full = pull_from(&store, &space, "g", Cookie::Null).await;
    assert_eq!(put_value(&full.patch, "count"), Some(json!(5)));
}

#[tokio::test]
async fn a_push_reads_what_the_space_s_last_push_read_with_its_snapshot() {
    let store = MemoryStore::new();
    let space = new_space(&store, "prefetch").await;
    let config = PushConfig::default();
    let first = push_request("g", vec![mutation("c", 1, "increment", json!(1))]);
    let outcome = engine::push(&store, &registry(), &config, &space, "", &first)
        .await
        .unwrap();
    assert_eq!(outcome.read_keys, ["count"]);
    // The next push reads `count` with its snapshot and computes on it (the DynamoDB
    // adapter's request counts show the round trip saved).
    let second = push_request("g", vec![mutation("c", 2, "increment", json!(1))]);
    let hinted = engine::push_until(
        &store,
        &registry(),
        &config,
        &space,
        "",
        &second,
        None,
        &outcome.read_keys,
    )
    .await
    .unwrap();
    assert_eq!(
        (hinted.processed, hinted.read_keys.clone()),
        (1, vec!["count".to_owned()])
    );
    let full = pull_from(&store, &space, "g", Cookie::Null).await;
    assert_eq!(put_value(&full.patch, "count"), Some(json!(2)));
}
