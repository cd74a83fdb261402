//! Retries by the SDK, against a real server (moto) behind a fault-injecting proxy (see
//! `support::proxy`): what passes is retried until it does, a commit keeps its token
//! across tries, what cannot pass is not retried, and what keeps failing is reported
//! after a bounded number of tries, quickly. The request counter counts every try.

mod support;

use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use serde_json::json;
use std::time::{Duration, Instant};
use store_dynamodb::retries::MAX_ATTEMPTS;
use store_dynamodb::{DynamoStore, RequestCounter, schema};
use support::proxy::{Fault, FaultProxy};
use sync_core::SpaceId;
use sync_core::store::{Commit, CommitOutcome, Store, StoreError};
use test_support::LocalDynamo;

/// A store whose requests go through `proxy`, and the counter of its requests.
struct Setup {
    _dynamo: LocalDynamo,
    proxy: FaultProxy,
    store: DynamoStore,
    counter: RequestCounter,
}

async fn setup(tag: &str) -> Setup {
    let dynamo = LocalDynamo::start().await;
    let proxy = FaultProxy::start(dynamo.endpoint()).await;
    let counter = RequestCounter::new();
    let client = store_dynamodb::local_client_with_counter(proxy.endpoint(), &counter).await;
    let table = support::table_name(tag);
    store_dynamodb::create_table(&client, &table)
        .await
        .expect("create table");
    counter.reset();
    proxy.forget_requests();
    Setup {
        _dynamo: dynamo,
        proxy,
        store: DynamoStore::new(client, table),
        counter,
    }
}

impl Setup {
    /// A space at version 0.
    async fn space(&self) -> SpaceId {
        let space = SpaceId::generate();
        assert!(self.store.create_space(&space).await.unwrap());
        space
    }

    fn count(&self, operation: &str) -> u64 {
        self.counter
            .snapshot()
            .get(operation)
            .copied()
            .unwrap_or_default()
    }

    fn reset(&self) {
        self.counter.reset();
        self.proxy.forget_requests();
    }
}

fn put(from: u64, key: &str, value: serde_json::Value) -> Commit {
    Commit {
        expected_version: from,
        next_version: from + 1,
        entries: vec![(key.to_owned(), Some(value))],
        ..Commit::default()
    }
}

/// The `ClientRequestToken` of each `TransactWriteItems` the proxy received.
fn tokens(proxy: &FaultProxy) -> Vec<String> {
    proxy
        .requests("TransactWriteItems")
        .iter()
        .map(|r| {
            r.body["ClientRequestToken"]
                .as_str()
                .expect("every commit carries a token")
                .to_owned()
        })
        .collect()
}

#[tokio::test]
async fn transient_failures_are_retried_until_they_pass() {
    let s = setup("transient").await;
    let space = s.space().await;

    // Two 500s, then the real answer.
    s.reset();
    s.proxy.fail("GetItem", Fault::ServerError, 2);
    assert_eq!(s.store.space_version(&space).await.unwrap(), Some(0));
    assert_eq!(s.count("GetItem"), 3, "every try is counted");
    let faulted: Vec<bool> = s
        .proxy
        .requests("GetItem")
        .iter()
        .map(|r| r.faulted)
        .collect();
    assert_eq!(faulted, [true, true, false]);

    // Throttling passes too: a commit, then a pull whose Query is throttled once.
    s.proxy.fail("TransactWriteItems", Fault::Throttling, 1);
    assert_eq!(
        s.store
            .commit(&space, &put(0, "a", json!(1)))
            .await
            .unwrap(),
        CommitOutcome::Committed
    );
    s.reset();
    s.proxy.fail("Query", Fault::Throttling, 1);
    let pulled = s
        .store
        .pull_snapshot(&space, "g", 0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((pulled.version, pulled.entries.len()), (1, 1));
    // The entries' and the group's clients' queries, and the throttled one again.
    assert_eq!(s.count("Query"), 3);
}

#[tokio::test]
async fn a_retried_commit_keeps_its_token() {
    let s = setup("token").await;
    let space = s.space().await;

    s.reset();
    s.proxy.fail("TransactWriteItems", Fault::ServerError, 2);
    assert_eq!(
        s.store
            .commit(&space, &put(0, "a", json!(1)))
            .await
            .unwrap(),
        CommitOutcome::Committed
    );
    let first = tokens(&s.proxy);
    assert_eq!(first.len(), 3);
    assert!(!first[0].is_empty());
    assert!(
        first.iter().all(|t| *t == first[0]),
        "one token for every try of a commit: {first:?}"
    );
    // The tries are the same request, byte for byte in what they ask.
    let bodies: Vec<_> = s
        .proxy
        .requests("TransactWriteItems")
        .into_iter()
        .map(|r| r.body)
        .collect();
    assert!(bodies.iter().all(|b| *b == bodies[0]));
    assert_eq!(
        s.store.get_entry(&space, "a").await.unwrap(),
        Some(json!(1))
    );

    // An earlier try still running: retried, with the same token again.
    s.reset();
    s.proxy.fail("TransactWriteItems", Fault::InProgress, 1);
    assert_eq!(
        s.store
            .commit(&space, &put(1, "a", json!(2)))
            .await
            .unwrap(),
        CommitOutcome::Committed
    );
    let second = tokens(&s.proxy);
    assert_eq!(second.len(), 2);
    assert_eq!(second[0], second[1]);
    assert_ne!(second[0], first[0], "each commit has a token of its own");
}

#[tokio::test]
async fn permanent_refusals_are_not_retried() {
    let s = setup("refusals").await;
    let space = s.space().await;

    s.reset();
    s.proxy.fail_always("GetItem", Fault::Validation);
    let err = s.store.space_version(&space).await.unwrap_err();
    assert!(matches!(err, StoreError::Rejected(_)), "{err}");
    assert!(!err.is_temporary());
    assert!(
        err.to_string().contains("ValidationException"),
        "the code is reported: {err}"
    );
    assert_eq!(s.count("GetItem"), 1);
    s.proxy.heal();

    // A commit cancelled for a reason other than a conflict or load.
    s.reset();
    s.proxy.fail_always(
        "TransactWriteItems",
        Fault::Cancelled(&["None", "ValidationError"]),
    );
    let err = s
        .store
        .commit(&space, &put(0, "a", json!(1)))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Rejected(_)), "{err}");
    assert_eq!(s.count("TransactWriteItems"), 1);
    s.proxy.heal();

    // A real refusal from the server: the table does not exist.
    let missing = DynamoStore::new(s.store.client().clone(), "no-such-table");
    s.reset();
    let err = missing.space_version(&space).await.unwrap_err();
    assert!(matches!(err, StoreError::Rejected(_)), "{err}");
    assert!(
        err.to_string().contains("ResourceNotFoundException"),
        "{err}"
    );
    assert_eq!(s.count("GetItem"), 1);
}

#[tokio::test]
async fn commit_conflicts_are_left_to_the_engine() {
    let s = setup("conflicts").await;
    let space = s.space().await;
    let commit = put(0, "a", json!(1));

    // Cancellations that mean the version moved, or is moving: one request each.
    for reasons in [
        &["ConditionalCheckFailed", "None"][..],
        &["TransactionConflict", "None"][..],
    ] {
        s.reset();
        s.proxy
            .fail("TransactWriteItems", Fault::Cancelled(reasons), 1);
        assert_eq!(
            s.store.commit(&space, &commit).await.unwrap(),
            CommitOutcome::Conflict,
            "{reasons:?}"
        );
        assert_eq!(s.count("TransactWriteItems"), 1, "{reasons:?}");
    }

    // The real thing: a stale commit.
    assert_eq!(
        s.store.commit(&space, &commit).await.unwrap(),
        CommitOutcome::Committed
    );
    s.reset();
    assert_eq!(
        s.store.commit(&space, &commit).await.unwrap(),
        CommitOutcome::Conflict
    );
    assert_eq!(s.count("TransactWriteItems"), 1);
    // And a stale version-only commit.
    let raise = Commit {
        expected_version: 0,
        next_version: 5,
        ..Commit::default()
    };
    s.reset();
    assert_eq!(
        s.store.commit(&space, &raise).await.unwrap(),
        CommitOutcome::Conflict
    );
    assert_eq!(s.count("UpdateItem"), 1);
}

#[tokio::test]
async fn reads_cancelled_by_a_commit_in_flight_are_retried() {
    let s = setup("inflight").await;
    let space = s.space().await;
    assert_eq!(
        s.store
            .commit(&space, &put(0, "a", json!("v")))
            .await
            .unwrap(),
        CommitOutcome::Committed
    );

    s.reset();
    s.proxy.fail(
        "TransactGetItems",
        Fault::Cancelled(&["None", "TransactionConflict"]),
        2,
    );
    assert_eq!(
        s.store.get_entry(&space, "a").await.unwrap(),
        Some(json!("v"))
    );
    assert_eq!(s.count("TransactGetItems"), 3);

    // Cancelled by load: retried as throttling.
    s.reset();
    s.proxy.fail(
        "TransactGetItems",
        Fault::Cancelled(&["ThrottlingError"]),
        1,
    );
    assert!(
        s.store
            .push_snapshot(&space, "g", &[])
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(s.count("TransactGetItems"), 2);

    // A commit that never lands: after the bounded tries, a temporary error that says
    // the space is busy (a push retries it as a lost race).
    s.reset();
    s.proxy.fail_always(
        "TransactGetItems",
        Fault::Cancelled(&["TransactionConflict"]),
    );
    let err = s.store.get_entry(&space, "a").await.unwrap_err();
    assert!(matches!(err, StoreError::Busy(_)), "{err}");
    assert!(err.is_temporary());
    assert_eq!(s.count("TransactGetItems"), u64::from(MAX_ATTEMPTS));
}

#[tokio::test]
async fn a_store_that_stays_throttled_is_reported_after_bounded_tries_quickly() {
    let s = setup("throttled").await;
    let space = s.space().await;

    s.reset();
    s.proxy.fail_always("GetItem", Fault::Throttling);
    let started = Instant::now();
    let err = s.store.space_version(&space).await.unwrap_err();
    let took = started.elapsed();
    assert!(matches!(err, StoreError::Throttled(_)), "{err}");
    assert!(err.is_temporary());
    assert_eq!(s.count("GetItem"), u64::from(MAX_ATTEMPTS));
    assert!(took < Duration::from_secs(2), "gave up after {took:?}");

    // A commit cancelled by load, every time.
    s.reset();
    s.proxy.fail_always(
        "TransactWriteItems",
        Fault::Cancelled(&["None", "ThrottlingError"]),
    );
    let started = Instant::now();
    let err = s
        .store
        .commit(&space, &put(0, "a", json!(1)))
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert!(matches!(err, StoreError::Throttled(_)), "{err}");
    assert_eq!(s.count("TransactWriteItems"), u64::from(MAX_ATTEMPTS));
    assert!(took < Duration::from_secs(2), "gave up after {took:?}");

    // A server that keeps failing: unavailable, as quickly.
    s.reset();
    s.proxy.fail_always("Query", Fault::ServerError);
    let started = Instant::now();
    let err = s.store.scan_entries(&space, "", 10).await.unwrap_err();
    let took = started.elapsed();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err}");
    assert_eq!(s.count("Query"), u64::from(MAX_ATTEMPTS));
    assert!(took < Duration::from_secs(2), "gave up after {took:?}");
}

#[tokio::test]
async fn unreachable_server_is_retried_then_unavailable() {
    // A port nobody listens on: every try fails to connect.
    let port = test_support::free_port();
    let counter = RequestCounter::new();
    let client =
        store_dynamodb::local_client_with_counter(&format!("http://127.0.0.1:{port}"), &counter)
            .await;
    let store = DynamoStore::new(client, "nowhere");
    let err = store.space_version(&SpaceId::generate()).await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err}");
    assert_eq!(counter.snapshot()["GetItem"], u64::from(MAX_ATTEMPTS));
}

/// The connection table (lambda-handlers) sends `BatchWriteItem`, `Query` and `GetItem`
/// on the same clients: any caller of them is retried, not only the store.
#[tokio::test]
async fn every_caller_of_these_clients_is_retried() {
    let s = setup("callers").await;
    let client = s.store.client();
    let table = s.store.table();
    let item = [
        (schema::PK, AttributeValue::S("space#x".into())),
        (schema::SK, AttributeValue::S("ws#c1".into())),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let write = WriteRequest::builder()
        .put_request(PutRequest::builder().set_item(Some(item)).build().unwrap())
        .build();

    s.proxy.fail("BatchWriteItem", Fault::ServerError, 1);
    s.proxy.fail("Query", Fault::Throttling, 1);
    client
        .batch_write_item()
        .request_items(table, vec![write])
        .send()
        .await
        .expect("retried past the 500");
    let listed = client
        .query()
        .table_name(table)
        .key_condition_expression("#pk = :pk")
        .expression_attribute_names("#pk", schema::PK)
        .expression_attribute_values(":pk", AttributeValue::S("space#x".into()))
        .send()
        .await
        .expect("retried past the throttling");
    assert_eq!(listed.items().len(), 1);
    assert_eq!(s.count("BatchWriteItem"), 2);
    assert_eq!(s.count("Query"), 2);
}
