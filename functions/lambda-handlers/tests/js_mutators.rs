//! The push function with JavaScript mutators, driven by API Gateway HTTP API events of the
//! real shape on DynamoDB (moto): misbehaving JavaScript mutators (an endless loop, an
//! endless allocation, a thrown error, a rejected promise) each fail only their own
//! mutation in a push that also carries valid ones; and the push function as its binary
//! builds it runs the app's JavaScript (`sumItems` exists only there).

#[allow(dead_code)]
mod support;

use js_mutators::{Config, JsMutators, Limits};
use lambda_handlers::functions::{self, Function, Ready};
use lambda_handlers::{HttpFunction, config};
use lambda_http::Body;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use support::http_event;
use sync_core::poke::NoPoker;
use sync_core::{Route, SpaceId, Store, SyncService};
use test_support::LocalDynamo;

const MISBEHAVING_JS: &str = r#"
export function makeMutators() {
  return {
    async put(tx, { key, value }) { await tx.set(key, value); },
    async spin(tx) { await tx.set('spin', 1); for (;;) {} },
    async hog(tx) { await tx.set('hog', 1); const a = []; for (;;) a.push(new Array(100000).fill(1)); },
    async throws(tx) { await tx.set('throws', 1); throw new Error('refused'); },
    async rejects(tx) { await tx.set('rejects', 1); return Promise.reject(new Error('no')); },
  };
}
"#;

const ROUTES: &[Route] = &[Route::Push, Route::Pull];

fn json_of(resp: &lambda_http::Response<Body>) -> Value {
    let bytes: &[u8] = resp.body().as_ref();
    serde_json::from_slice(bytes).expect("a JSON body")
}

fn push_body(mutations: &[(&str, Value)]) -> String {
    let mutations: Vec<Value> = mutations
        .iter()
        .enumerate()
        .map(|(i, (name, args))| {
            json!({"clientID": "c", "id": i + 1, "name": name, "args": args, "timestamp": 1.0})
        })
        .collect();
    json!({"pushVersion": 1, "clientGroupID": "g", "profileID": "p", "schemaVersion": "",
           "mutations": mutations})
    .to_string()
}

/// The space's state and client `c`'s LMID, from a first pull through the function.
async fn pulled(f: &HttpFunction, space: &SpaceId) -> (Value, Value) {
    let pull = json!({"pullVersion": 1, "clientGroupID": "g", "profileID": "p",
                      "schemaVersion": "", "cookie": null});
    let resp = f
        .handle(http_event(
            "/api/replicache/pull",
            Some(space.as_str()),
            &pull.to_string(),
        ))
        .await;
    assert_eq!(resp.status(), 200);
    let body = json_of(&resp);
    let mut state = serde_json::Map::new();
    for op in body["patch"].as_array().expect("a patch") {
        if op["op"] == "put" {
            state.insert(
                op["key"].as_str().expect("a key").to_owned(),
                op["value"].clone(),
            );
        }
    }
    (
        Value::Object(state),
        body["lastMutationIDChanges"]["c"].clone(),
    )
}

#[tokio::test]
async fn misbehaving_javascript_mutators_fail_only_their_own_mutation() {
    let dynamo = LocalDynamo::start().await;
    let client = dynamo.client().await;
    let table = dynamo.fresh_table(&client, "js-push").await;
    let store: Arc<dyn Store> = Arc::new(store_dynamodb::DynamoStore::new(client, table));
    let config = Config {
        limits: Limits {
            time: Duration::from_millis(200),
            memory_bytes: 16 * 1024 * 1024,
        },
        threads: 1,
    };
    let js = JsMutators::load(MISBEHAVING_JS, config).expect("the module loads");
    let svc = SyncService::new(store.clone(), Arc::new(js.registry()), Arc::new(NoPoker));
    let f = HttpFunction::new(Arc::new(svc), ROUTES);
    let space = SpaceId::parse("jspush").expect("a space id");
    store.create_space(&space).await.expect("create space");

    let mutations = [
        ("put", json!({"key": "a", "value": 1})),
        ("spin", Value::Null),
        ("put", json!({"key": "b", "value": 2})),
        ("hog", Value::Null),
        ("put", json!({"key": "c", "value": 3})),
        ("throws", Value::Null),
        ("put", json!({"key": "d", "value": 4})),
        ("rejects", Value::Null),
        ("put", json!({"key": "e", "value": "😀"})),
    ];
    let resp = f
        .handle(http_event(
            "/api/replicache/push",
            Some(space.as_str()),
            &push_body(&mutations),
        ))
        .await;
    assert_eq!((resp.status().as_u16(), json_of(&resp)), (200, json!({})));
    let (state, lmid) = pulled(&f, &space).await;
    assert_eq!(lmid, json!(9));
    assert_eq!(state, json!({"a": 1, "b": 2, "c": 3, "d": 4, "e": "😀"}));
}

#[tokio::test]
async fn the_push_function_runs_the_apps_javascript_mutators() {
    let dynamo = LocalDynamo::start().await;
    let client = dynamo.client().await;
    let table = dynamo.fresh_table(&client, "js-app").await;
    let store = store_dynamodb::DynamoStore::new(client, table.clone());
    let space = SpaceId::parse("jsapp").expect("a space id");
    store.create_space(&space).await.expect("create space");
    let env = [
        (config::TABLE_NAME, table.as_str()),
        (config::DYNAMODB_ENDPOINT, dynamo.endpoint()),
        (config::AUTH_MODE, "none"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let (ready, _) = config::scoped(env, functions::start(Function::Push, |_| {})).await;
    let Ok(Ready::Http(push)) = ready else {
        panic!("the push function serves HTTP");
    };
    let mutations = [
        ("increment", json!(2)),
        ("setItem", json!({"key": "a", "value": 0.1})),
        ("setItem", json!({"key": "b", "value": 0.2})),
        ("sumItems", Value::Null),
        ("increment", json!("two")),
    ];
    let resp = push
        .handle(http_event(
            "/api/replicache/push",
            Some(space.as_str()),
            &push_body(&mutations),
        ))
        .await;
    assert_eq!(resp.status(), 200);
    let snapshot = store
        .scan_entries(&space, "", 100)
        .await
        .expect("read the space");
    let state: serde_json::Map<String, Value> = snapshot.into_iter().collect();
    assert_eq!(
        Value::Object(state),
        json!({"count": 2, "item/a": 0.1, "item/b": 0.2, "sum": 0.30000000000000004})
    );
}
