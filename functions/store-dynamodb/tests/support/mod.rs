//! Fixtures of the adapter's tests: a real DynamoDB-compatible server (see
//! `test_support::LocalDynamo`) and a fresh table per test.

#![allow(dead_code)] // each test binary uses a different part of this module

pub mod proxy;

use store_dynamodb::{DynamoStore, RequestCounter};
use test_support::LocalDynamo;

/// A table name no other test uses.
pub fn table_name(tag: &str) -> String {
    format!("sync-{tag}-{:016x}", rand::random::<u64>())
}

/// A store over a fresh table, the server handle (keep it alive) and a counter of the
/// store's requests.
pub struct Fixture {
    pub dynamo: LocalDynamo,
    pub store: DynamoStore,
    pub counter: RequestCounter,
}

pub async fn fixture(tag: &str) -> Fixture {
    let dynamo = LocalDynamo::start().await;
    let counter = RequestCounter::new();
    let client = store_dynamodb::local_client_with_counter(dynamo.endpoint(), &counter).await;
    let table = table_name(tag);
    store_dynamodb::create_table(&client, &table)
        .await
        .expect("create table");
    counter.reset();
    Fixture {
        dynamo,
        store: DynamoStore::new(client, table),
        counter,
    }
}
