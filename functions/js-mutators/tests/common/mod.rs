//! What the tests of this crate share: a service over a store with JavaScript mutators,
//! pushes and pulls through it, and the space's state read back from the store.
#![allow(dead_code)]

use js_mutators::{Config, JsMutators, Limits};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use sync_core::api::ApiRequest;
use sync_core::poke::NoPoker;
use sync_core::{ApiResponse, Registry, SpaceId, Store, SyncService};

/// A module of mutators that misbehave, one way each, beside one that works.
pub const BOUNDS_JS: &str = r#"
export function makeMutators() {
  return {
    async put(tx, { key, value }) { await tx.set(key, value); },
    async spin(tx) { await tx.set('spin', 1); for (;;) {} },
    async hog(tx) {
      await tx.set('hog', 1);
      const all = [];
      for (;;) all.push(new Array(100000).fill(all.length));
    },
    async throws(tx) { await tx.set('throws', 1); throw new Error('refused'); },
    async rejects(tx) { await tx.set('rejects', 1); return Promise.reject(new TypeError('no')); },
    async recurses(tx) { await tx.set('recurses', 1); const f = (n) => f(n + 1) + 1; return f(0); },
    async hangs(tx) { await tx.set('hangs', 1); await new Promise(() => {}); },
    async throwsValue(tx) { await tx.set('throwsValue', 1); throw { secret: 'data' }; },
  };
}
"#;

/// Limits small enough for the bounds to be hit quickly in a debug build.
pub fn test_config(threads: usize) -> Config {
    Config {
        limits: Limits {
            time: Duration::from_millis(200),
            memory_bytes: 16 * 1024 * 1024,
        },
        threads,
    }
}

pub fn load(source: &str, threads: usize) -> JsMutators {
    JsMutators::load(source, test_config(threads)).expect("the module loads")
}

pub fn service(store: Arc<dyn Store>, mutators: Registry) -> SyncService {
    SyncService::new(store, Arc::new(mutators), Arc::new(NoPoker))
}

pub async fn call(svc: &SyncService, route: &str, space: &SpaceId, body: &Value) -> ApiResponse {
    let body = body.to_string();
    svc.handle(ApiRequest {
        method: "POST",
        path: &format!("/api/replicache/{route}"),
        space_id: Some(space.as_str()),
        body: body.as_bytes(),
        accepts_gzip: false,
        user: "",
    })
    .await
}

/// A push by client `c` of `mutations` (name, args), numbered from `first_id`; its status.
pub async fn push(
    svc: &SyncService,
    space: &SpaceId,
    first_id: u64,
    mutations: &[(&str, Value)],
) -> u16 {
    let mutations: Vec<Value> = mutations
        .iter()
        .enumerate()
        .map(|(i, (name, args))| {
            json!({"clientID": "c", "id": first_id + i as u64, "name": name, "args": args,
                   "timestamp": 1.0})
        })
        .collect();
    let body = json!({"pushVersion": 1, "clientGroupID": "g", "profileID": "p",
        "schemaVersion": "", "mutations": mutations});
    call(svc, "push", space, &body).await.status
}

/// Client `c`'s last mutation ID as a first pull reports it (0 when it has none).
pub async fn lmid(svc: &SyncService, space: &SpaceId) -> u64 {
    let body = json!({"pullVersion": 1, "clientGroupID": "g", "profileID": "p",
        "schemaVersion": "", "cookie": null});
    let response = call(svc, "pull", space, &body).await;
    assert_eq!(response.status, 200, "pull");
    let body = response.json_body().expect("a JSON pull answer");
    body["lastMutationIDChanges"]["c"].as_u64().unwrap_or(0)
}

/// Every live entry of the space.
pub async fn state(store: &dyn Store, space: &SpaceId) -> BTreeMap<String, Value> {
    store
        .scan_entries(space, "", usize::MAX)
        .await
        .expect("scan the space")
        .into_iter()
        .collect()
}

pub async fn new_space(store: &dyn Store, name: &str) -> SpaceId {
    let space = SpaceId::parse(name).expect("a valid space id");
    store.create_space(&space).await.expect("create space");
    space
}
