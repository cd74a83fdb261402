//! Writers of one space racing as Lambda instances do: each its own `DynamoStore` (its own
//! SDK client) and `SyncService`, all pushing at once to the stand-in, whose requests
//! overlap and whose transactions conflict as DynamoDB's do. Every push must be answered
//! 200 (a contended space slows its pushes, never refuses them) and the count must be
//! exactly the pushes made: nothing lost, nothing applied twice.

use dynamodb_emulator::{Config, Emulator};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use store_dynamodb::DynamoStore;
use sync_core::api::ApiRequest;
use sync_core::auth::AccessPolicy;
use sync_core::mutators::app;
use sync_core::poke::NoPoker;
use sync_core::{SpaceId, Store as _, SyncService};

const WRITERS: u64 = 16;
const PUSHES_EACH: u64 = 10;

fn push_body(writer: u64, id: u64) -> Vec<u8> {
    json!({"pushVersion": 1, "clientGroupID": format!("g{writer}"), "profileID": "p",
           "schemaVersion": "", "mutations": [{"clientID": format!("c{writer}"), "id": id,
           "name": "increment", "args": 1, "timestamp": id as f64}]})
    .to_string()
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writers_of_one_space_in_separate_instances_are_all_applied_once() {
    let emulator = Emulator::start(Config {
        latency: Duration::from_millis(5),
        jitter: Duration::from_millis(2),
        ..Config::instant()
    })
    .await
    .expect("start the emulator");
    let setup = store_dynamodb::local_client(emulator.endpoint()).await;
    let table = format!("contended-{:016x}", rand::random::<u64>());
    store_dynamodb::create_table(&setup, &table)
        .await
        .expect("create the table");
    let space = SpaceId::parse("contended").expect("a space ID");
    assert!(
        DynamoStore::new(setup, table.clone())
            .create_space(&space)
            .await
            .expect("create the space")
    );

    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let endpoint = emulator.endpoint().to_owned();
            let table = table.clone();
            tokio::spawn(async move {
                let client = store_dynamodb::local_client(&endpoint).await;
                let service = SyncService::new(
                    Arc::new(DynamoStore::new(client, table)),
                    Arc::new(app::registry()),
                    Arc::new(NoPoker),
                )
                .with_access_policy(AccessPolicy::anonymous());
                let mut refused = Vec::new();
                for id in 1..=PUSHES_EACH {
                    let body = push_body(w, id);
                    let answer = service
                        .handle(ApiRequest {
                            method: "POST",
                            path: "/api/replicache/push",
                            space_id: Some("contended"),
                            body: &body,
                            accepts_gzip: false,
                            user: "",
                        })
                        .await;
                    if answer.status != 200 {
                        refused.push(answer.status);
                    }
                }
                refused
            })
        })
        .collect();
    for writer in writers {
        let refused = writer.await.expect("a writer");
        assert!(refused.is_empty(), "pushes refused: {refused:?}");
    }

    let reader = store_dynamodb::local_client(emulator.endpoint()).await;
    let count = DynamoStore::new(reader, table)
        .get_entry(&space, "count")
        .await
        .expect("read the count");
    assert_eq!(count, Some(json!(WRITERS * PUSHES_EACH)));
    // The writers did race: some commit or snapshot read met another's transaction.
    let stats = emulator.stats();
    assert!(
        stats.transaction_conflicts + stats.read_conflicts > 0,
        "{stats:?}"
    );
}
