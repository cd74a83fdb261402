//! Per-mutation overhead of a JavaScript mutator: a push of one `increment`, and of ten,
//! through `SyncService::handle` on the in-memory store, with the JavaScript `increment`
//! of `client/src/mutators.js` beside the Rust `Increment`, measured side by side.
//!
//!   cargo bench -p js-mutators --bench overhead

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use sync_core::api::ApiRequest;
use sync_core::memory_store::MemoryStore;
use sync_core::mutators::app;
use sync_core::poke::NoPoker;
use sync_core::{Registry, SpaceId, Store, SyncService};

fn push_body(first_id: u64, count: u64) -> Vec<u8> {
    let mutations: Vec<Value> = (first_id..first_id + count)
        .map(|id| {
            json!({"clientID": "c1", "id": id, "name": "increment", "args": 1,
                   "timestamp": id as f64})
        })
        .collect();
    json!({"pushVersion": 1, "clientGroupID": "g", "profileID": "bench", "schemaVersion": "",
           "mutations": mutations})
    .to_string()
    .into_bytes()
}

fn bench_push(c: &mut Criterion, rt: &tokio::runtime::Runtime, label: &str, mutators: Registry) {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let svc = SyncService::new(store.clone(), Arc::new(mutators), Arc::new(NoPoker));
    let space = SpaceId::parse("bench").expect("a space id");
    rt.block_on(store.create_space(&space))
        .expect("create space");
    for per_push in [1u64, 10] {
        let mut next = 1;
        c.bench_function(&format!("push {per_push} increment ({label})"), |b| {
            b.to_async(rt).iter_batched(
                || {
                    let body = push_body(next, per_push);
                    next += per_push;
                    body
                },
                |body| {
                    let (svc, space) = (&svc, &space);
                    async move {
                        let response = svc
                            .handle(ApiRequest {
                                method: "POST",
                                path: "/api/replicache/push",
                                space_id: Some(space.as_str()),
                                body: &body,
                                accepts_gzip: false,
                                user: "",
                            })
                            .await;
                        assert_eq!(response.status, 200);
                    }
                },
                BatchSize::SmallInput,
            );
        });
    }
}

fn overhead(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    bench_push(c, &rt, "Rust", app::registry());
    let js = js_mutators::JsMutators::load(js_mutators::app::SOURCE, Default::default())
        .expect("the app's mutators load");
    bench_push(c, &rt, "JavaScript", js.registry());
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = overhead
}
criterion_main!(benches);
