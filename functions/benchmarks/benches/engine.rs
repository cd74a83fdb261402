//! Engine CPU per operation, in process, through `SyncService::handle` (JSON in, engine,
//! JSON out) on the in-memory store: a push of one mutation, a first pull of 10k entries
//! (null cookie), and an incremental pull after one change at three space sizes, on the
//! in-memory store and on SQLite in memory (the local server's store, without the disk).
//!
//!   cargo bench -p benchmarks --bench engine
//!
//! Sample sizes are small so that the whole run takes a few minutes on 2 cores.

use benchmarks::wire;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use sync_core::api::ApiRequest;
use sync_core::memory_store::MemoryStore;
use sync_core::mutators::app;
use sync_core::poke::NoPoker;
use sync_core::{ApiResponse, SpaceId, Store, SyncService};

fn service(store: Arc<dyn Store>) -> SyncService {
    SyncService::new(store, Arc::new(app::registry()), Arc::new(NoPoker))
}

async fn call(svc: &SyncService, route: &str, space: &SpaceId, body: &[u8]) -> ApiResponse {
    let response = svc
        .handle(ApiRequest {
            method: "POST",
            path: &format!("/api/replicache/{route}"),
            space_id: Some(space.as_str()),
            body,
            accepts_gzip: false,
            user: "",
        })
        .await;
    assert_eq!(response.status, 200, "{route} failed");
    response
}

/// A space of `entries` items (through the engine), a reader's cookie taken after them,
/// then one change by another client: the state an incremental pull starts from.
async fn seeded(store: Arc<dyn Store>, entries: u64) -> (SyncService, SpaceId, Value) {
    let svc = service(store.clone());
    let space = SpaceId::parse(&format!("bench{entries}")).expect("a valid space id");
    store.create_space(&space).await.expect("create space");
    let mut next = 1;
    while next <= entries {
        let n = 1_900.min(entries - next + 1);
        call(
            &svc,
            "push",
            &space,
            &wire::push_v1("seed", wire::set_items("seed", next, n)),
        )
        .await;
        next += n;
    }
    let full = call(
        &svc,
        "pull",
        &space,
        &wire::pull(wire::Protocol::V1, "reader", &Value::Null),
    )
    .await;
    let cookie = full.json_body().expect("a JSON pull answer")["cookie"].clone();
    let change = vec![json!({"clientID": "writer", "id": 1, "name": "setItem",
        "timestamp": 1.0, "args": {"key": "k0000001", "value": {"title": "changed"}}})];
    call(&svc, "push", &space, &wire::push_v1("writer", change)).await;
    (svc, space, cookie)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

fn push_one(c: &mut Criterion) {
    let rt = runtime();
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let svc = service(store.clone());
    let space = SpaceId::parse("push").expect("a valid space id");
    rt.block_on(store.create_space(&space))
        .expect("create space");
    let mut id = 0;
    c.bench_function("push 1 increment (memory store)", |b| {
        b.to_async(&rt).iter_batched(
            || {
                id += 1;
                wire::push_increment(wire::Protocol::V1, "c1", id)
            },
            |body| {
                let svc = &svc;
                let space = &space;
                async move { call(svc, "push", space, &body).await }
            },
            BatchSize::SmallInput,
        );
    });
}

fn first_pull(c: &mut Criterion) {
    let rt = runtime();
    let (svc, space, _) = rt.block_on(seeded(Arc::new(MemoryStore::new()), 10_000));
    let body = wire::pull(wire::Protocol::V1, "reader", &Value::Null);
    let mut group = c.benchmark_group("first pull");
    group.sample_size(20);
    group.bench_function("10k entries, null cookie (memory store)", |b| {
        b.to_async(&rt).iter(|| call(&svc, "pull", &space, &body));
    });
    group.finish();
}

fn incremental_pull(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("incremental pull after one change");
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(3));
    for entries in [1_000u64, 10_000, 100_000] {
        let stores: [(&str, Arc<dyn Store>); 2] = [
            ("memory store", Arc::new(MemoryStore::new())),
            (
                "SQLite in memory",
                Arc::new(store_sqlite::SqliteStore::in_memory().expect("SQLite in memory")),
            ),
        ];
        for (name, store) in stores {
            let (svc, space, cookie) = rt.block_on(seeded(store, entries));
            let body = wire::pull(wire::Protocol::V1, "reader", &cookie);
            group.bench_function(format!("{entries} entries ({name})"), |b| {
                b.to_async(&rt).iter(|| call(&svc, "pull", &space, &body));
            });
        }
    }
    group.finish();
}

criterion_group! {
    name = engine;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = push_one, first_pull, incremental_pull
}
criterion_main!(engine);
