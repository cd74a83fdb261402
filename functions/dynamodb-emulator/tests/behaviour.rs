//! What the emulator is for, beyond answering like DynamoDB: requests that overlap in
//! time, transaction conflicts, consumed capacity and per-partition throughput. Each test
//! asserts counts and outcomes, never durations.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, Get, KeySchemaElement, KeyType, Put,
    ReturnConsumedCapacity, ScalarAttributeType, TransactGetItem, TransactWriteItem,
};
use dynamodb_emulator::{Config, Emulator};
use std::sync::Arc;
use std::time::Duration;
use sync_core::api::{ApiRequest, ApiResponse};
use sync_core::mutators::app;
use sync_core::poke::NoPoker;
use sync_core::{SpaceId, SyncService};

const TABLE: &str = "items";

/// A client that reports every error as it comes: no retries.
async fn client(emulator: &Emulator) -> Client {
    let base = store_dynamodb::local_client(emulator.endpoint()).await;
    Client::from_conf(
        base.config()
            .to_builder()
            .retry_config(RetryConfig::disabled())
            .build(),
    )
}

/// A table keyed by `pk` alone, with no index.
async fn table(client: &Client) {
    client
        .create_table()
        .table_name(TABLE)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("definition"),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(KeyType::Hash)
                .build()
                .expect("key"),
        )
        .send()
        .await
        .expect("create the table");
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

/// A put of `{pk, data}` whose size is `bytes`: DynamoDB counts the lengths of attribute
/// names and of string values.
fn put(pk: &str, bytes: usize) -> Put {
    let data = bytes - "pk".len() - pk.len() - "data".len();
    Put::builder()
        .table_name(TABLE)
        .item("pk", s(pk))
        .item("data", s(&"x".repeat(data)))
        .build()
        .expect("put")
}

fn reasons(err: &TransactWriteItemsError) -> Vec<String> {
    match err {
        TransactWriteItemsError::TransactionCanceledException(e) => e
            .cancellation_reasons()
            .iter()
            .map(|r| r.code().unwrap_or("").to_owned())
            .collect(),
        other => panic!("not a cancellation: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_overlap_in_time() {
    const N: usize = 16;
    let emulator = Emulator::start(Config {
        latency: Duration::from_millis(200),
        jitter: Duration::ZERO,
        ..Config::instant()
    })
    .await
    .expect("start");
    let client = client(&emulator).await;
    table(&client).await;
    emulator.reset_stats();
    let gets = (0..N).map(|i| {
        let client = client.clone();
        tokio::spawn(async move {
            client
                .get_item()
                .table_name(TABLE)
                .key("pk", s(&format!("k{i}")))
                .send()
                .await
        })
    });
    for get in futures::future::join_all(gets).await {
        get.expect("task").expect("get");
    }
    let stats = emulator.stats();
    assert_eq!(stats.requests.get("GetItem"), Some(&(N as u64)));
    // All were in flight at once: each waits its latency without holding anything.
    assert_eq!(stats.max_in_flight, N, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_transactions_one_is_cancelled_with_nothing_applied() {
    let emulator = Emulator::start(Config {
        latency: Duration::from_millis(300),
        jitter: Duration::ZERO,
        ..Config::instant()
    })
    .await
    .expect("start");
    let client = client(&emulator).await;
    table(&client).await;
    // Both write the shared item; each also writes an item of its own.
    let transaction = |own: &'static str| {
        client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(put("shared", 100)).build())
            .transact_items(TransactWriteItem::builder().put(put(own, 100)).build())
            .send()
    };
    let (a, b) = tokio::join!(transaction("a"), transaction("b"));
    let (winner, loser, result) = match (a, b) {
        (Ok(_), Err(e)) => ("a", "b", e),
        (Err(e), Ok(_)) => ("b", "a", e),
        other => panic!("exactly one must commit: {other:?}"),
    };
    let err = result.into_service_error();
    assert_eq!(reasons(&err), ["TransactionConflict", "None"], "{err:?}");
    let exists = |pk: &'static str| {
        let client = client.clone();
        async move {
            client
                .get_item()
                .table_name(TABLE)
                .key("pk", s(pk))
                .consistent_read(true)
                .send()
                .await
                .expect("get")
                .item
                .is_some()
        }
    };
    assert!(exists(winner).await, "the winner's own item is written");
    assert!(
        !exists(loser).await,
        "nothing of the cancelled transaction is"
    );
    let stats = emulator.stats();
    assert_eq!(stats.transactions_committed, 1);
    assert_eq!(stats.transaction_conflicts, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_condition_cancels_the_transaction() {
    let emulator = Emulator::start(Config::instant()).await.expect("start");
    let client = client(&emulator).await;
    table(&client).await;
    let conditional = Put::builder()
        .table_name(TABLE)
        .item("pk", s("c"))
        .condition_expression("attribute_exists(pk)")
        .build()
        .expect("put");
    let err = client
        .transact_write_items()
        .transact_items(TransactWriteItem::builder().put(put("d", 100)).build())
        .transact_items(TransactWriteItem::builder().put(conditional).build())
        .send()
        .await
        .expect_err("the condition fails")
        .into_service_error();
    assert_eq!(reasons(&err), ["None", "ConditionalCheckFailed"]);
    let d = client
        .get_item()
        .table_name(TABLE)
        .key("pk", s("d"))
        .send()
        .await
        .expect("get");
    assert!(d.item.is_none());
    // A single conditional write fails on its own.
    let err = client
        .put_item()
        .table_name(TABLE)
        .item("pk", s("e"))
        .condition_expression("attribute_exists(pk)")
        .send()
        .await
        .expect_err("the condition fails")
        .into_service_error();
    assert!(err.is_conditional_check_failed_exception(), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumed_capacity_follows_the_unit_rules() {
    let emulator = Emulator::start(Config::instant()).await.expect("start");
    let client = client(&emulator).await;
    table(&client).await;
    let total = |c: Option<&aws_sdk_dynamodb::types::ConsumedCapacity>| {
        c.and_then(|c| c.capacity_units).expect("consumed capacity")
    };
    // 1,500 bytes: 2 write units (1 KB each, rounded up), 1 strongly consistent read unit
    // (4 KB), half that eventually consistent.
    let put_1500 = put("a", 1500);
    let out = client
        .put_item()
        .table_name(TABLE)
        .set_item(Some(put_1500.item.clone()))
        .return_consumed_capacity(ReturnConsumedCapacity::Total)
        .send()
        .await
        .expect("put");
    assert_eq!(total(out.consumed_capacity()), 2.0);
    let get = |consistent: bool| {
        client
            .get_item()
            .table_name(TABLE)
            .key("pk", s("a"))
            .consistent_read(consistent)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
    };
    assert_eq!(
        total(get(true).await.expect("get").consumed_capacity()),
        1.0
    );
    assert_eq!(
        total(get(false).await.expect("get").consumed_capacity()),
        0.5
    );
    // 9,000 bytes: 3 read units of 4 KB.
    client
        .put_item()
        .table_name(TABLE)
        .set_item(Some(put("b", 9000).item))
        .send()
        .await
        .expect("put");
    let out = client
        .get_item()
        .table_name(TABLE)
        .key("pk", s("b"))
        .consistent_read(true)
        .return_consumed_capacity(ReturnConsumedCapacity::Total)
        .send()
        .await
        .expect("get");
    assert_eq!(total(out.consumed_capacity()), 3.0);
    // Transactions: two units per 1 KB written, two per 4 KB read (prepare and commit).
    let out = client
        .transact_write_items()
        .transact_items(TransactWriteItem::builder().put(put("c", 1500)).build())
        .transact_items(TransactWriteItem::builder().put(put("d", 500)).build())
        .return_consumed_capacity(ReturnConsumedCapacity::Total)
        .send()
        .await
        .expect("transaction");
    let consumed = &out.consumed_capacity()[0];
    assert_eq!(consumed.capacity_units, Some(6.0));
    assert_eq!(consumed.write_capacity_units, Some(6.0));
    let get_of = |pk: &str| {
        TransactGetItem::builder()
            .get(
                Get::builder()
                    .table_name(TABLE)
                    .key("pk", s(pk))
                    .build()
                    .expect("get"),
            )
            .build()
    };
    let out = client
        .transact_get_items()
        .transact_items(get_of("b"))
        .transact_items(get_of("c"))
        .transact_items(get_of("missing"))
        .return_consumed_capacity(ReturnConsumedCapacity::Total)
        .send()
        .await
        .expect("transactional read");
    // 9,000 bytes: 2 × 3; 1,500 bytes: 2 × 1; a missing item: 2 × 1.
    assert_eq!(out.consumed_capacity()[0].read_capacity_units, Some(10.0));
    let stats = emulator.stats();
    assert_eq!(stats.write_units, 2.0 + 9.0 + 6.0);
    assert_eq!(stats.read_units, 1.0 + 0.5 + 3.0 + 10.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hot_partition_is_throttled() {
    const TRIES: usize = 10;
    let emulator = Emulator::start(Config {
        partition_wcu: 5.0,
        ..Config::instant()
    })
    .await
    .expect("start");
    let client = client(&emulator).await;
    table(&client).await;
    let mut passed = 0;
    let mut throttled = 0;
    for _ in 0..TRIES {
        match client
            .put_item()
            .table_name(TABLE)
            .set_item(Some(put("hot", 100).item))
            .send()
            .await
        {
            Ok(_) => passed += 1,
            Err(e) => {
                let e = e.into_service_error();
                assert!(e.is_provisioned_throughput_exceeded_exception(), "{e:?}");
                throttled += 1;
            }
        }
    }
    // A second's worth of units (5) passes at once; the bucket refills at 5 a second,
    // so the rest of the burst is refused (one more may pass on a slow machine).
    assert!((5..=6).contains(&passed), "{passed} passed");
    assert_eq!(passed + throttled, TRIES);
    assert_eq!(emulator.stats().throttled, throttled as u64);
    // Another partition has a throughput of its own.
    client
        .put_item()
        .table_name(TABLE)
        .set_item(Some(put("cold", 100).item))
        .send()
        .await
        .expect("another partition");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdk_scans_every_item_once_across_pages_and_segments() {
    const ITEMS: usize = 25;
    let emulator = Emulator::start(Config::instant()).await.expect("start");
    let client = client(&emulator).await;
    table(&client).await;
    for i in 0..ITEMS {
        client
            .put_item()
            .table_name(TABLE)
            .set_item(Some(put(&format!("k{i:02}"), 100).item))
            .send()
            .await
            .expect("put");
    }
    let key_of = |item: &std::collections::HashMap<String, AttributeValue>| {
        item.get("pk")
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default()
    };
    // The SDK's paginator follows LastEvaluatedKey until it is absent.
    let mut pages = client
        .scan()
        .table_name(TABLE)
        .limit(4)
        .return_consumed_capacity(ReturnConsumedCapacity::Total)
        .into_paginator()
        .send();
    let mut seen = Vec::new();
    let mut count = 0;
    while let Some(page) = pages.next().await {
        let page = page.expect("a page");
        assert!(page.scanned_count <= 4, "{page:?}");
        // 4 items of 100 bytes: one unit of 4 KB, halved (eventually consistent).
        assert_eq!(
            page.consumed_capacity().and_then(|c| c.capacity_units),
            Some(0.5)
        );
        seen.extend(page.items().iter().map(key_of));
        count += 1;
    }
    assert_eq!(count, ITEMS.div_ceil(4));
    let distinct: std::collections::BTreeSet<&String> = seen.iter().collect();
    assert_eq!((seen.len(), distinct.len()), (ITEMS, ITEMS), "{seen:?}");
    // Three segments, each paged by hand: together every item, each once.
    let mut union = Vec::new();
    for segment in 0..3 {
        let mut start = None;
        loop {
            let out = client
                .scan()
                .table_name(TABLE)
                .segment(segment)
                .total_segments(3)
                .limit(3)
                .filter_expression("begins_with(pk, :k)")
                .expression_attribute_values(":k", s("k"))
                .set_exclusive_start_key(start)
                .send()
                .await
                .expect("a segment's page");
            union.extend(out.items().iter().map(key_of));
            start = out.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
    }
    union.sort();
    let mut all = seen.clone();
    all.sort();
    assert_eq!(union, all);
    let err = client
        .scan()
        .table_name(TABLE)
        .segment(3)
        .total_segments(3)
        .send()
        .await
        .expect_err("segment out of range")
        .into_service_error();
    assert_eq!(err.meta().code(), Some("ValidationException"), "{err:?}");
    let err = client
        .scan()
        .table_name("missing")
        .send()
        .await
        .expect_err("no such table")
        .into_service_error();
    assert!(err.is_resource_not_found_exception(), "{err:?}");
}

async fn call(service: &SyncService, route: &str, space: Option<&str>, body: &[u8]) -> ApiResponse {
    service
        .handle(ApiRequest {
            method: "POST",
            path: &format!("/api/replicache/{route}"),
            space_id: space,
            body,
            accepts_gzip: false,
            user: "",
        })
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_counts_the_capacity_it_is_told() {
    let emulator = Emulator::start(Config::instant()).await.expect("start");
    let client = store_dynamodb::local_client(emulator.endpoint()).await;
    store_dynamodb::create_table(&client, "sync")
        .await
        .expect("create the table");
    let store = Arc::new(store_dynamodb::DynamoStore::new(client, "sync"));
    emulator.reset_stats();
    let space = SpaceId::generate();
    let service = SyncService::new(store.clone(), Arc::new(app::registry()), Arc::new(NoPoker));
    let created = call(
        &service,
        "createSpace",
        None,
        format!(r#"{{"spaceID":"{space}"}}"#).as_bytes(),
    )
    .await;
    assert_eq!(
        created.status,
        200,
        "{}",
        String::from_utf8_lossy(&created.body)
    );
    for id in 1..=3 {
        let push = serde_json::json!({
            "pushVersion": 1, "clientGroupID": "g", "profileID": "p", "schemaVersion": "1",
            "mutations": [{"clientID": "c", "id": id, "name": "increment", "args": 1,
                           "timestamp": 1.0}],
        });
        let answer = call(
            &service,
            "push",
            Some(space.as_str()),
            push.to_string().as_bytes(),
        )
        .await;
        assert_eq!(
            answer.status,
            200,
            "{}",
            String::from_utf8_lossy(&answer.body)
        );
    }
    let seen = store.capacity_stats();
    let served = emulator.stats();
    assert!(seen.write_units > 0.0 && seen.read_units > 0.0, "{seen:?}");
    // Nothing was refused, so every unit the emulator charged came back in an answer.
    assert_eq!(seen.write_units, served.write_units, "{seen:?} {served:?}");
    assert_eq!(seen.read_units, served.read_units, "{seen:?} {served:?}");
    assert_eq!(seen.requests, served.requests.values().sum::<u64>());
}
