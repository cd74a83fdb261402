//! A mutator knows which mutation it runs: the client's ID and the mutation's ID, as
//! Replicache's `tx.clientID` and `tx.mutationID` tell the client's own mutators.

use serde_json::{Value, json};
use store_conformance::{mutation, new_space, pull_from, push_request};
use sync_core::engine::{self, PushConfig};
use sync_core::memory_store::MemoryStore;
use sync_core::mutators::{MutationError, Mutator, Registry};
use sync_core::protocol::{Cookie, PatchOp};
use sync_core::tx::Tx;

/// Writes `who/<clientID>` = the mutation's ID.
struct RecordIdentity;

#[async_trait::async_trait]
impl Mutator for RecordIdentity {
    async fn run(&self, tx: &mut Tx<'_>, _args: &Value) -> Result<(), MutationError> {
        let client = tx
            .client_id()
            .ok_or_else(|| MutationError::Rejected("no client".into()))?
            .to_owned();
        let id = tx
            .mutation_id()
            .ok_or_else(|| MutationError::Rejected("no mutation ID".into()))?;
        tx.put(&format!("who/{client}"), json!(id))
    }
}

#[tokio::test]
async fn each_mutation_runs_with_its_client_and_id() {
    let store = MemoryStore::new();
    let space = new_space(&store, "identity").await;
    let registry = Registry::new().with("record", RecordIdentity);
    let req = push_request(
        "g",
        vec![
            mutation("c1", 1, "record", Value::Null),
            mutation("c2", 1, "record", Value::Null),
            mutation("c1", 2, "record", Value::Null),
        ],
    );
    engine::push(&store, &registry, &PushConfig::default(), &space, "", &req)
        .await
        .unwrap();
    let full = pull_from(&store, &space, "g", Cookie::Null).await;
    let puts: Vec<(String, String)> = full
        .patch
        .to_ops()
        .into_iter()
        .filter_map(|op| match op {
            PatchOp::Put { key, value } => Some((key, serde_json::to_string(&value).unwrap())),
            _ => None,
        })
        .collect();
    assert_eq!(
        puts,
        [
            ("who/c1".to_owned(), "2".to_owned()),
            ("who/c2".to_owned(), "1".to_owned())
        ]
    );
}
