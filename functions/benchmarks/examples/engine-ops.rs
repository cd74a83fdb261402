//! The engine's operations of `benches/engine.rs`, without criterion: one operation
//! repeated `n` times after its setup, for counting instructions under valgrind, where a
//! count does not depend on the load of the machine (wall time on 2 shared cores does).
//!
//!   engine-ops <operation> <n>         operations: see OPERATIONS
//!
//! Instructions per operation are the difference between two runs that differ only in
//! `n` (the setup is the same), divided by the difference in `n`:
//!
//!   valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null \
//!     target/<profile>/examples/engine-ops push 10     # and push 110
//!
//! `functions/benchmarks/engine-instructions.sh` does that for every operation and every
//! build profile it is given. It prints the wall time per operation too (informative
//! only, natively: not under valgrind).

use benchmarks::wire;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Instant;
use sync_core::api::ApiRequest;
use sync_core::memory_store::MemoryStore;
use sync_core::mutators::app;
use sync_core::poke::NoPoker;
use sync_core::{ApiResponse, SpaceId, Store, SyncService};

/// (name, what it does): the rows of the table.
const OPERATIONS: &[(&str, &str)] = &[
    ("push", "push 1 increment (memory store)"),
    (
        "pull-first-10k",
        "first pull of 10k entries, null cookie (memory store)",
    ),
    (
        "pull-first-10k-gzip",
        "the same, answered gzipped (as to a browser: Accept-Encoding gzip)",
    ),
    (
        "pull-first-10k-sqlite",
        "first pull of 10k entries, null cookie (SQLite in memory)",
    ),
    (
        "pull-incremental-1k",
        "incremental pull after one change, 1000 entries (memory store)",
    ),
    (
        "pull-incremental-1k-sqlite",
        "incremental pull after one change, 1000 entries (SQLite in memory)",
    ),
    (
        "pull-incremental-10k-sqlite",
        "incremental pull after one change, 10000 entries (SQLite in memory)",
    ),
];

fn service(store: Arc<dyn Store>) -> SyncService {
    SyncService::new(store, Arc::new(app::registry()), Arc::new(NoPoker))
}

async fn call(
    svc: &SyncService,
    route: &str,
    space: &SpaceId,
    body: &[u8],
    accepts_gzip: bool,
) -> ApiResponse {
    let response = svc
        .handle(ApiRequest {
            method: "POST",
            path: &format!("/api/replicache/{route}"),
            space_id: Some(space.as_str()),
            body,
            accepts_gzip,
            user: "",
        })
        .await;
    assert_eq!(response.status, 200, "{route} failed");
    response
}

/// A space of `entries` items, a reader's cookie taken after them, then one change by
/// another client: as `seeded` in benches/engine.rs.
async fn seeded(store: Arc<dyn Store>, entries: u64) -> (SyncService, SpaceId, Value) {
    let svc = service(store.clone());
    let space = SpaceId::parse(&format!("bench{entries}")).expect("a valid space id");
    store.create_space(&space).await.expect("create space");
    let mut next = 1;
    while next <= entries {
        let n = 1_900.min(entries - next + 1);
        let body = wire::push_v1("seed", wire::set_items("seed", next, n));
        call(&svc, "push", &space, &body, false).await;
        next += n;
    }
    let body = wire::pull(wire::Protocol::V1, "reader", &Value::Null);
    let full = call(&svc, "pull", &space, &body, false).await;
    let cookie = full.json_body().expect("a JSON pull answer")["cookie"].clone();
    let change = vec![json!({"clientID": "writer", "id": 1, "name": "setItem",
        "timestamp": 1.0, "args": {"key": "k0000001", "value": {"title": "changed"}}})];
    call(
        &svc,
        "push",
        &space,
        &wire::push_v1("writer", change),
        false,
    )
    .await;
    (svc, space, cookie)
}

fn sqlite() -> Arc<dyn Store> {
    Arc::new(store_sqlite::SqliteStore::in_memory().expect("SQLite in memory"))
}

async fn run(operation: &str, n: u64) {
    let started;
    match operation {
        "push" => {
            let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
            let svc = service(store.clone());
            let space = SpaceId::parse("push").expect("a valid space id");
            store.create_space(&space).await.expect("create space");
            // Bodies made beforehand, as criterion's iter_batched does.
            let bodies: Vec<Vec<u8>> = (1..=n)
                .map(|id| wire::push_increment(wire::Protocol::V1, "c1", id))
                .collect();
            started = Instant::now();
            for body in &bodies {
                call(&svc, "push", &space, body, false).await;
            }
        }
        "pull-first-10k" | "pull-first-10k-gzip" | "pull-first-10k-sqlite" => {
            let store = if operation.ends_with("sqlite") {
                sqlite()
            } else {
                Arc::new(MemoryStore::new())
            };
            let (svc, space, _) = seeded(store, 10_000).await;
            let body = wire::pull(wire::Protocol::V1, "reader", &Value::Null);
            let gzip = operation.ends_with("gzip");
            started = Instant::now();
            for _ in 0..n {
                let r = call(&svc, "pull", &space, &body, gzip).await;
                assert_eq!(r.gzipped, gzip);
            }
        }
        "pull-incremental-1k" | "pull-incremental-1k-sqlite" | "pull-incremental-10k-sqlite" => {
            let store = if operation.ends_with("sqlite") {
                sqlite()
            } else {
                Arc::new(MemoryStore::new())
            };
            let entries = if operation.contains("10k") {
                10_000
            } else {
                1_000
            };
            let (svc, space, cookie) = seeded(store, entries).await;
            let body = wire::pull(wire::Protocol::V1, "reader", &cookie);
            started = Instant::now();
            for _ in 0..n {
                call(&svc, "pull", &space, &body, false).await;
            }
        }
        other => {
            eprintln!("unknown operation {other}; one of:");
            for (name, what) in OPERATIONS {
                eprintln!("  {name:30} {what}");
            }
            std::process::exit(2);
        }
    }
    let per_op = started.elapsed().as_nanos() as f64 / n.max(1) as f64;
    println!("{operation}\t{n}\t{per_op:.0} ns/op");
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--list") {
        for (name, what) in OPERATIONS {
            println!("{name}\t{what}");
        }
        return;
    }
    let (Some(operation), Some(n)) = (args.first(), args.get(1).and_then(|n| n.parse().ok()))
    else {
        eprintln!("usage: engine-ops <operation> <n> | engine-ops --list");
        std::process::exit(2);
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    rt.block_on(run(operation, n));
}
