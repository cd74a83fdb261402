//! Building clients from the environment. This binary holds a single test because it
//! changes process-wide environment variables.

mod support;

use std::sync::Arc;
use store_dynamodb::{DynamoStore, RequestCounter, client_from_env, table_name_from_env};
use sync_core::{SpaceId, Store};

#[tokio::test(flavor = "current_thread")]
async fn clients_from_the_environment() {
    let dynamo = test_support::LocalDynamo::start().await;
    let table = support::table_name("config");
    // SAFETY: the only test of this binary, on a single-threaded runtime; nothing else
    // reads the environment concurrently.
    unsafe {
        std::env::remove_var("TABLE_NAME");
    }
    assert!(table_name_from_env().is_err());
    unsafe {
        std::env::set_var("DYNAMODB_ENDPOINT", dynamo.endpoint());
        std::env::set_var("TABLE_NAME", &table);
        std::env::remove_var("AWS_ACCESS_KEY_ID");
        std::env::remove_var("AWS_PROFILE");
        // The environment cannot turn the store's retries off.
        std::env::set_var("AWS_MAX_ATTEMPTS", "1");
    }
    assert_eq!(table_name_from_env().unwrap(), table);

    let client = client_from_env().await;
    assert_retries(&client);
    store_dynamodb::create_table(&client, &table).await.unwrap();

    // A counted copy of a client shares its configuration.
    let counter = RequestCounter::new();
    let counted = store_dynamodb::with_counter(&client, &counter);
    assert_retries(&counted);
    let store: Arc<dyn Store> = Arc::new(DynamoStore::new(counted, table));
    let space = SpaceId::generate();
    assert!(store.create_space(&space).await.unwrap());
    assert_eq!(store.space_version(&space).await.unwrap(), Some(0));
    assert_eq!(counter.total(), 2);
    assert_eq!(counter.snapshot()["PutItem"], 1);
    counter.reset();
    assert_eq!(counter.total(), 0);
}

/// `client` retries as `store_dynamodb::retries` says, with its classifier.
fn assert_retries(client: &aws_sdk_dynamodb::Client) {
    use aws_smithy_runtime_api::client::retries::classifiers::ClassifyRetry as _;
    let config = client.config();
    let retries = config.retry_config().expect("a retry configuration");
    assert_eq!(retries, &store_dynamodb::retries::retry_config());
    assert_eq!(
        retries.max_attempts(),
        store_dynamodb::retries::MAX_ATTEMPTS
    );
    assert!(
        config
            .retry_classifiers()
            .any(|c| c.name() == "DynamoDB transactions"),
        "the transaction classifier is registered"
    );
}
