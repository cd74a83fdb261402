//! The `tx` a JavaScript mutator gets on the server: Replicache's WriteTransaction
//! surface, reads that see the mutation's own writes, scans in UTF-8 key order, values
//! that cross as JSON exactly; and how storage errors and bad modules are reported.

mod common;

use common::*;
use js_mutators::{JsMutators, LoadError};
use serde_json::{Value, json};
use std::sync::Arc;
use store_conformance::ScriptedStore;
use sync_core::Store;
use sync_core::memory_store::MemoryStore;
use sync_core::store::StoreError;

const SURFACE_JS: &str = r#"
export function makeMutators() {
  return {
    async put(tx, { key, value }) { await tx.put(key, value); },
    async surface(tx) {
      const out = { reason: tx.reason, location: tx.location };
      await tx.set('p/b', 0.1 + 0.2);
      await tx.set('p/\uE000', 1e300);
      await tx.set('p/😀', -0);
      await tx.set('p/a', 'héllo 😀');
      out.readOwn = await tx.get('p/b');
      out.has = [await tx.has('p/a'), await tx.has('p/none')];
      out.missing = (await tx.get('p/none')) === undefined;
      out.delOld = await tx.del('p/old');
      out.delNone = await tx.del('p/none');
      out.keys = await tx.scan({ prefix: 'p/' }).keys().toArray();
      out.values = await tx.scan({ prefix: 'p/' }).toArray();
      out.entries = [];
      for await (const e of tx.scan({ prefix: 'p/' }).entries()) out.entries.push(e);
      out.iterated = [];
      for await (const v of tx.scan({ prefix: 'p/' })) out.iterated.push(v);
      out.all = (await tx.scan().keys().toArray()).length;
      out.limited = await tx.scan({ prefix: 'p/', limit: 2 }).keys().toArray();
      out.from = await tx.scan({ prefix: 'p/', start: { key: 'p/b', exclusive: true } }).keys().toArray();
      out.clientID = tx.clientID;
      out.mutationID = tx.mutationID;
      await tx.set('out', out);
    },
    async notJson(tx) { await tx.set('x', { n: NaN }); },
    async tooLongKey(tx) { await tx.set('k'.repeat(100000), 1); },
    async readsRefused(tx) {
      try { await tx.get('refused'); } catch (e) { /* swallowed: still a failure */ }
      await tx.set('after', 1);
    },
  };
}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tx_is_replicaches_write_transaction() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let js = load(SURFACE_JS, 1);
    let svc = service(store.clone(), js.registry());
    let space = new_space(store.as_ref(), "surface").await;
    let seeded = [
        ("put", json!({"key": "p/old", "value": 1})),
        ("put", json!({"key": "q", "value": 1})),
    ];
    assert_eq!(push(&svc, &space, 1, &seeded).await, 200);
    assert_eq!(
        push(&svc, &space, 3, &[("surface", Value::Null)]).await,
        200
    );
    let out = state(store.as_ref(), &space).await["out"].clone();
    // UTF-8 order: U+E000 (EE 80 80) before U+1F600 (F0 9F 98 80), unlike UTF-16's.
    let keys = json!(["p/a", "p/b", "p/\u{E000}", "p/😀"]);
    let values = json!(["héllo 😀", 0.30000000000000004, 1e300, 0]);
    assert_eq!(out["reason"], "authoritative");
    assert_eq!(out["location"], "server");
    assert_eq!(out["readOwn"], json!(0.30000000000000004));
    assert_eq!(out["has"], json!([true, false]));
    assert_eq!(out["missing"], json!(true));
    assert_eq!(
        (&out["delOld"], &out["delNone"]),
        (&json!(true), &json!(false))
    );
    assert_eq!(out["keys"], keys);
    assert_eq!(out["values"], values);
    assert_eq!(out["iterated"], values);
    let entries: Vec<Value> = (0..4).map(|i| json!([keys[i], values[i]])).collect();
    assert_eq!(out["entries"], Value::Array(entries));
    assert_eq!(out["all"], json!(5), "p/* and q");
    assert_eq!(out["limited"], json!(["p/a", "p/b"]));
    assert_eq!(out["from"], json!(["p/\u{E000}", "p/😀"]));
    // The mutation this ran as: client `c`'s mutation 3.
    assert_eq!(out["clientID"], "c");
    assert_eq!(out["mutationID"], json!(3));
    let stored = state(store.as_ref(), &space).await;
    assert_eq!(stored["p/b"].as_f64(), Some(0.1 + 0.2));
    assert_eq!(stored["p/\u{E000}"].as_f64(), Some(1e300));
    assert!(!stored.contains_key("p/old"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_json_cannot_carry_and_keys_the_store_refuses_fail_the_mutation() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let js = load(SURFACE_JS, 1);
    let svc = service(store.clone(), js.registry());
    let space = new_space(store.as_ref(), "refusals").await;
    let pushed = [
        ("notJson", Value::Null),
        ("tooLongKey", Value::Null),
        ("put", json!({"key": "ok", "value": 1})),
    ];
    assert_eq!(push(&svc, &space, 1, &pushed).await, 200);
    assert_eq!(lmid(&svc, &space).await, 3);
    let stored = state(store.as_ref(), &space).await;
    assert_eq!(stored.keys().collect::<Vec<_>>(), ["ok"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_temporary_store_error_during_a_read_aborts_the_push_even_if_caught() {
    let scripted = ScriptedStore::new(MemoryStore::new())
        .with_reads(|key| (key == "refused").then(|| Err(StoreError::Unavailable("down".into()))));
    let store: Arc<dyn Store> = Arc::new(scripted);
    let js = load(SURFACE_JS, 1);
    let svc = service(store.clone(), js.registry());
    let space = new_space(store.as_ref(), "temporary").await;
    let pushed = [
        ("put", json!({"key": "before", "value": 1})),
        ("readsRefused", Value::Null),
    ];
    let status = push(&svc, &space, 1, &pushed).await;
    assert!(status >= 500, "a temporary error is the push's: {status}");
    assert_eq!(lmid(&svc, &space).await, 0, "nothing advanced");
    assert!(state(store.as_ref(), &space).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_store_error_during_a_read_fails_only_that_mutation() {
    let scripted = ScriptedStore::new(MemoryStore::new())
        .with_reads(|key| (key == "refused").then(|| Err(StoreError::Rejected("no".into()))));
    let store: Arc<dyn Store> = Arc::new(scripted);
    let js = load(SURFACE_JS, 1);
    let svc = service(store.clone(), js.registry());
    let space = new_space(store.as_ref(), "permanent").await;
    let pushed = [
        ("readsRefused", Value::Null),
        ("put", json!({"key": "ok", "value": 1})),
    ];
    assert_eq!(push(&svc, &space, 1, &pushed).await, 200);
    assert_eq!(lmid(&svc, &space).await, 2);
    let stored = state(store.as_ref(), &space).await;
    assert_eq!(
        stored.keys().collect::<Vec<_>>(),
        ["ok"],
        "`after` was not kept"
    );
}

#[test]
fn a_module_that_does_not_load_is_an_error() {
    let config = test_config(1);
    for source in [
        "export function makeMutators( {",
        "export const notIt = 1;",
        "throw new Error('at load');",
    ] {
        match JsMutators::load(source, config) {
            Err(LoadError::Module(_)) => {}
            Err(e) => panic!("{source}: unexpected {e}"),
            Ok(_) => panic!("{source}: loaded"),
        }
    }
}

#[test]
fn the_apps_module_loads_with_its_mutators() {
    let js = JsMutators::load(js_mutators::app::SOURCE, test_config(1)).expect("load");
    assert_eq!(
        js.names(),
        [
            "clearItems",
            "deleteItem",
            "increment",
            "setItem",
            "sumItems"
        ]
    );
    let registry = js_mutators::app::registry().expect("the product's registry");
    let mut names: Vec<_> = registry.names().collect();
    names.sort();
    assert_eq!(
        names,
        [
            "clearItems",
            "deleteItem",
            "increment",
            "setItem",
            "sumItems"
        ]
    );
}
