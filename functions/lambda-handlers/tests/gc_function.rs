//! The garbage collector's function against moto: what a run removes and what it keeps,
//! its answer and metrics line, a run stopped at its deadline, a store error failing the
//! invocation, and its policy read from the environment.
//!
//! The policy is in whole days and the records' times are the real clock's, so the runs
//! here are given a `now` days ahead (`gc::run_gc`) rather than waiting.

#[allow(dead_code)]
mod support;

use lambda_handlers::config;
use lambda_handlers::emf::{self, EmfWriter};
use lambda_handlers::functions::{self, Function};
use lambda_handlers::gc::{self, GcFunction};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use store_conformance::{mutation, new_space, push_request};
use store_dynamodb::DynamoStore;
use sync_core::SpaceId;
use sync_core::engine::{self, PushConfig, PushOutcome};
use sync_core::gc::GcPolicy;
use sync_core::mutators::app;
use sync_core::store::{GarbageCutoffs, Store, now_ms};
use test_support::LocalDynamo;

const DAY_MS: u64 = 86_400_000;

async fn push(
    store: &dyn Store,
    space: &SpaceId,
    group: &str,
    mutations: Vec<sync_core::protocol::Mutation>,
) -> PushOutcome {
    engine::push(
        store,
        &app::registry(),
        &PushConfig::default(),
        space,
        "",
        &push_request(group, mutations),
    )
    .await
    .expect("push")
}

/// Client `client` of group `g-<client>` sets `key` and deletes it: a tombstone and a
/// client record, both written now.
async fn set_then_delete(store: &dyn Store, space: &SpaceId, client: &str, key: &str) {
    let set = mutation(client, 1, "setItem", json!({"key": key, "value": 1}));
    let delete = mutation(client, 2, "deleteItem", json!({"key": key}));
    push(store, space, &format!("g-{client}"), vec![set, delete]).await;
}

/// Cutoffs past every record: what is left is all the garbage there could be.
const EVERYTHING: GarbageCutoffs = GarbageCutoffs {
    tombstones_before_ms: u64::MAX,
    clients_idle_before_ms: u64::MAX,
};

#[tokio::test]
async fn a_run_removes_old_deletes_and_idle_clients_and_keeps_younger_ones() {
    let dynamo = LocalDynamo::start().await;
    let client = dynamo.client().await;
    let table = dynamo.fresh_table(&client, "gc").await;
    let store: Arc<dyn Store> = Arc::new(DynamoStore::new(client.clone(), table.clone()));
    let space = new_space(store.as_ref(), "gc").await;

    set_then_delete(store.as_ref(), &space, "old", "a").await;
    // Records' times are milliseconds: keep the two generations apart.
    tokio::time::sleep(Duration::from_millis(30)).await;
    let between = now_ms();
    tokio::time::sleep(Duration::from_millis(30)).await;
    set_then_delete(store.as_ref(), &space, "young", "b").await;

    // Two days' retention, as of two days after `between`: the old records are just
    // over it, the young ones just under.
    let policy = GcPolicy {
        tombstone_retention: Duration::from_secs(2 * 86_400),
        client_idle: Duration::from_secs(2 * 86_400),
    };
    let report = gc::run_gc(store.as_ref(), &policy, between + 2 * DAY_MS, None)
        .await
        .expect("a run");
    assert_eq!(
        (
            report.spaces,
            report.tombstones_removed,
            report.clients_removed,
            report.floors_raised,
            report.spaces_deferred,
            report.spaces_failed,
            report.incomplete
        ),
        (1, 1, 1, 1, 0, 0, false),
        "{report:?}"
    );
    let left = store
        .find_garbage(&space, &EVERYTHING)
        .await
        .expect("find_garbage")
        .expect("the space");
    let tombstones: Vec<&str> = left.tombstones.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(tombstones, ["item/b"], "the young delete stays");
    assert_eq!(
        left.idle_clients,
        [("g-young".to_owned(), "young".to_owned())],
        "the young client stays"
    );
    // The removed client's next push is ahead of what the server knows of it.
    let again = mutation("old", 3, "setItem", json!({"key": "c", "value": 1}));
    assert!(
        push(store.as_ref(), &space, "g-old", vec![again])
            .await
            .client_state_not_found
    );

    // The same run again: nothing more to remove.
    let report = gc::run_gc(store.as_ref(), &policy, between + 2 * DAY_MS, None)
        .await
        .expect("a second run");
    assert_eq!(
        (report.tombstones_removed, report.clients_removed),
        (0, 0),
        "{report:?}"
    );
}

#[tokio::test]
async fn the_handler_answers_its_report_and_writes_its_metrics() {
    let dynamo = LocalDynamo::start().await;
    let client = dynamo.client().await;
    let table = dynamo.fresh_table(&client, "gc-handler").await;
    let store: Arc<dyn Store> = Arc::new(DynamoStore::new(client.clone(), table.clone()));
    let space = new_space(store.as_ref(), "gc-handler").await;
    set_then_delete(store.as_ref(), &space, "c", "a").await;

    let out = Arc::new(Mutex::new(Vec::<u8>::new()));
    let function =
        GcFunction::new(store.clone(), GcPolicy::DEFAULT).with_emf(EmfWriter::to(out.clone()));
    // As of now, under the default policy, everything is too young.
    let answer = function
        .handle(&support::scheduled_event(), now_ms() + 900_000)
        .await
        .expect("a run");
    assert_eq!(
        answer,
        json!({"spaces": 1, "tombstonesRemoved": 0, "clientsRemoved": 0,
               "floorsRaised": 0, "spacesDeferred": 0, "spacesFailed": 0,
               "incomplete": false, "resumed": false})
    );
    let text = String::from_utf8(out.lock().unwrap().clone()).unwrap();
    let line: Value = serde_json::from_str(text.trim_end()).expect("one EMF line");
    assert_eq!(line[emf::dimension::FUNCTION], emf::dimension::GC);
    assert_eq!(line[emf::metric::SPACES_COLLECTED], 1.0);
    assert_eq!(line[emf::metric::GC_INCOMPLETE], 0.0);
    assert!(!text.contains(space.as_str()), "no space ID in the metrics");
    assert!(
        store
            .find_garbage(&space, &EVERYTHING)
            .await
            .unwrap()
            .unwrap()
            .tombstones
            .len()
            == 1
    );

    // Less than the margin left before the deadline: the run finishes one space (every
    // run moves on) and stops, saying so; the next run goes on from there.
    new_space(store.as_ref(), "gc-handler").await;
    let answer = function
        .handle(&support::scheduled_event(), now_ms() + 5_000)
        .await
        .expect("a run");
    assert_eq!(
        (&answer["spaces"], &answer["incomplete"], &answer["resumed"]),
        (&json!(1), &json!(true), &json!(false)),
        "{answer}"
    );
    let answer = function
        .handle(&support::scheduled_event(), now_ms() + 900_000)
        .await
        .expect("a run");
    assert_eq!(
        (&answer["spaces"], &answer["incomplete"], &answer["resumed"]),
        (&json!(1), &json!(false), &json!(true)),
        "{answer}"
    );

    // A store error that stops the run (listing the spaces of a table that does not
    // exist) fails the invocation.
    let missing = GcFunction::new(
        Arc::new(DynamoStore::new(client, format!("{table}-missing"))),
        GcPolicy::DEFAULT,
    );
    assert!(
        missing
            .handle(&support::scheduled_event(), now_ms() + 900_000)
            .await
            .is_err()
    );
}

fn env(vars: &[(&str, &str)]) -> BTreeMap<String, String> {
    vars.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[tokio::test]
async fn the_policy_is_read_from_the_environment() {
    let (policy, read) = config::scoped(env(&[]), async { config::gc_policy() }).await;
    assert_eq!(policy.expect("the defaults"), GcPolicy::DEFAULT);
    assert!(
        read.contains(config::TOMBSTONE_RETENTION_DAYS) && read.contains(config::CLIENT_IDLE_DAYS)
    );

    let (policy, _) = config::scoped(
        env(&[
            (config::TOMBSTONE_RETENTION_DAYS, "7"),
            (config::CLIENT_IDLE_DAYS, " 90 "),
        ]),
        async { config::gc_policy() },
    )
    .await;
    assert_eq!(
        policy.expect("a policy"),
        GcPolicy {
            tombstone_retention: Duration::from_secs(7 * 86_400),
            client_idle: Duration::from_secs(90 * 86_400),
        }
    );

    for name in [config::TOMBSTONE_RETENTION_DAYS, config::CLIENT_IDLE_DAYS] {
        for bad in [
            "0",
            "-1",
            "1.5",
            "thirty",
            "99999999999999999999",
            "999999999999999999",
        ] {
            let (policy, _) =
                config::scoped(env(&[(name, bad)]), async { config::gc_policy() }).await;
            let error = policy.expect_err(bad).to_string();
            assert!(
                error.contains(name) && error.contains(bad),
                "{name}={bad}: {error}"
            );
        }
    }
}

#[tokio::test]
async fn a_bad_policy_fails_the_cold_start_naming_the_variable() {
    let dynamo = LocalDynamo::start().await;
    let vars = env(&[
        (config::TABLE_NAME, "gc-cold-start"),
        (config::DYNAMODB_ENDPOINT, dynamo.endpoint()),
        (config::CLIENT_IDLE_DAYS, "0"),
    ]);
    let (ready, _) = config::scoped(vars, functions::start(Function::Gc, |_| {})).await;
    let error = ready.err().expect("a failed cold start").to_string();
    assert!(error.contains(config::CLIENT_IDLE_DAYS), "{error}");
    assert_eq!(Function::Gc.entry(), functions::Entry::Schedule);
}
