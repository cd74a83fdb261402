//! The DynamoDB store's behavioural suites (the ones its tests run against moto) against
//! the emulator, at zero latency: everything the product relies on must hold here too.

use dynamodb_emulator::{Config, Emulator};
use std::sync::Arc;
use store_conformance::model::{model_cases, run_model_test, runtime};
use store_dynamodb::DynamoStore;

async fn store_on(emulator: &Emulator, tag: &str) -> DynamoStore {
    let client = store_dynamodb::local_client(emulator.endpoint()).await;
    let table = format!("sync-{tag}-{:016x}", rand::random::<u64>());
    store_dynamodb::create_table(&client, &table)
        .await
        .expect("create the table");
    DynamoStore::new(client, table)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance() {
    let emulator = Emulator::start(Config::instant())
        .await
        .expect("start the emulator");
    let store = store_on(&emulator, "conformance").await;
    store_conformance::run_all(Arc::new(store)).await;
    let stats = emulator.stats();
    // The suite's racing commits met as they do on DynamoDB: through conditions and
    // transaction conflicts, never a write lost.
    assert!(stats.transactions_committed > 0, "{stats:?}");
}

/// Fewer cases than against moto: the suite above already covers the store's contract,
/// and the crate's tests stay quick on a 2-core machine (`PROPTEST_CASES` raises it).
#[test]
fn dynamo_store_matches_the_model() {
    let rt = runtime();
    let (emulator, store) = rt.block_on(async {
        let emulator = Emulator::start(Config::instant())
            .await
            .expect("start the emulator");
        let store = store_on(&emulator, "model").await;
        (emulator, store)
    });
    run_model_test(&rt, Arc::new(store), model_cases(8));
    drop(emulator);
}
