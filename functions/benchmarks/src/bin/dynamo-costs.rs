//! DynamoDB cost per operation, counted by the code, against a real DynamoDB-compatible
//! server (moto): requests by operation (`store_dynamodb::RequestCounter`), sequential
//! round trips on the critical path (`benchmarks::timeline`), bytes of the pull answers;
//! how an incremental pull's cost grows with the space's size; and push throughput on one
//! space from 1 to 32 concurrent writers, with the conflicts (retries) counted.
//!
//!   DYNAMODB_ENDPOINT=http://127.0.0.1:PORT dynamo-costs [--max-entries 100000]
//!       [--writer-seconds 3] [--out costs.md] [--out-scale scale.md] [--out-writers w.md]
//!
//! run.sh starts moto through `moto_bench.py` (test-support's serialized moto, with
//! transactions that do not copy the whole table) and passes its endpoint; without
//! `DYNAMODB_ENDPOINT`, test-support starts its serialized moto, which is fine for small
//! `--max-entries` only.

use aws_sdk_dynamodb::Client;
use benchmarks::report::{Section, Table, arg, machine};
use benchmarks::stats::{Samples, ms, ratio};
use benchmarks::timeline::{Timeline, describe_rounds, rounds};
use benchmarks::wire;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::Read as _;
use std::sync::Arc;
use std::time::{Duration, Instant};
use store_dynamodb::{DynamoStore, RequestCounter};
use sync_core::api::ApiRequest;
use sync_core::engine::{self, PushConfig};
use sync_core::mutators::app;
use sync_core::poke::NoPoker;
use sync_core::protocol::{self, Parsed};
use sync_core::{SpaceId, Store, SyncService};
use test_support::LocalDynamo;

/// The measured store, its service, and what its client sent.
struct Bench {
    store: Arc<DynamoStore>,
    svc: SyncService,
    counter: RequestCounter,
    timeline: Timeline,
}

/// What one operation cost.
struct Cost {
    requests: BTreeMap<String, u64>,
    rounds: Vec<Vec<String>>,
    elapsed: Duration,
    status: u16,
    /// Bytes of the answer as sent (gzip when accepted) and uncompressed.
    wire_bytes: usize,
    json_bytes: usize,
    body: Value,
}

impl Cost {
    fn total(&self) -> u64 {
        self.requests.values().sum()
    }

    fn by_operation(&self) -> String {
        self.requests
            .iter()
            .map(|(op, n)| format!("{op} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl Bench {
    /// The store and service over a new table. Every measured space gets a table of its
    /// own: moto's costs grow with a table's size, DynamoDB's do not.
    async fn on_new_table(&self, dynamo: &LocalDynamo, client: &Client) -> Bench {
        let table = dynamo.fresh_table(client, "bench").await;
        let store = Arc::new(DynamoStore::new(client.clone(), table));
        Bench {
            svc: service(store.clone()),
            store,
            counter: self.counter.clone(),
            timeline: self.timeline.clone(),
        }
    }

    async fn request(&self, route: &str, space: &SpaceId, body: &[u8], gzip: bool) -> Cost {
        self.counter.reset();
        self.timeline.take();
        let started = Instant::now();
        let response = self
            .svc
            .handle(ApiRequest {
                method: "POST",
                path: &format!("/api/replicache/{route}"),
                space_id: Some(space.as_str()),
                body,
                accepts_gzip: gzip,
                user: "",
            })
            .await;
        let elapsed = started.elapsed();
        let spans = self.timeline.take();
        let requests = self.counter.snapshot();
        assert_eq!(
            spans.len() as u64,
            requests.values().sum::<u64>(),
            "the timeline and the counter disagree"
        );
        let json = if response.gzipped {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(response.body.as_slice())
                .read_to_end(&mut out)
                .expect("a gzip answer decodes");
            out
        } else {
            response.body.clone()
        };
        let cost = Cost {
            requests,
            rounds: rounds(&spans),
            elapsed,
            status: response.status,
            wire_bytes: response.body.len(),
            json_bytes: json.len(),
            body: serde_json::from_slice(&json).unwrap_or(Value::Null),
        };
        assert_eq!(cost.status, 200, "{route} failed: {}", cost.body);
        cost
    }

    async fn push(&self, space: &SpaceId, body: &[u8]) -> Cost {
        self.request("push", space, body, false).await
    }

    async fn pull(&self, space: &SpaceId, client: &str, cookie: &Value) -> Cost {
        let body = wire::pull(wire::Protocol::V1, client, cookie);
        self.request("pull", space, &body, true).await
    }

    /// Fills `space` with `entries` items through the engine (pushes of `setItem`), as
    /// an app would; returns the time it took.
    async fn seed(&self, space: &SpaceId, entries: u64) -> Duration {
        let started = Instant::now();
        let client = format!("seed-{space}");
        // Two commits' worth per request keeps each push well inside its commit budget.
        let per_push = 1_900;
        let mut next = 1;
        while next <= entries {
            let n = per_push.min(entries - next + 1);
            let body = wire::push_v1(&client, wire::set_items(&client, next, n));
            let response = self
                .svc
                .handle(ApiRequest {
                    method: "POST",
                    path: "/api/replicache/push",
                    space_id: Some(space.as_str()),
                    body: &body,
                    accepts_gzip: false,
                    user: "",
                })
                .await;
            assert_eq!(response.status, 200, "seeding push failed");
            // A push may stop early (commit budget); continue from what was processed.
            let lmid = self.lmid(space, &client).await;
            assert!(lmid >= next, "a seeding push made no progress");
            next = lmid + 1;
        }
        started.elapsed()
    }

    async fn lmid(&self, space: &SpaceId, client: &str) -> u64 {
        let snap = self
            .store
            .push_snapshot(space, &format!("g-{client}"), &[client.to_owned()])
            .await
            .expect("snapshot")
            .expect("space exists");
        snap.clients.get(client).map_or(0, |c| c.last_mutation_id)
    }
}

async fn new_space(store: &DynamoStore, name: &str) -> SpaceId {
    let space = SpaceId::parse(&format!("{name}-{:08x}", rand::random::<u32>())).expect("id");
    assert!(store.create_space(&space).await.expect("create space"));
    space
}

fn kb(bytes: usize) -> String {
    if bytes >= 10_000 {
        format!("{:.0} KB", bytes as f64 / 1000.0)
    } else {
        format!("{bytes} B")
    }
}

#[tokio::main]
async fn main() {
    let max_entries: u64 = arg("--max-entries", 100_000);
    let writer_seconds: f64 = arg("--writer-seconds", 3.0);
    let out = arg("--out", String::new());
    let out_scale = arg("--out-scale", String::new());
    let out_writers = arg("--out-writers", String::new());
    let command = benchmarks::report::command();

    let dynamo = LocalDynamo::start().await;
    let counter = RequestCounter::new();
    let timeline = Timeline::new();
    let counted = store_dynamodb::local_client_with_counter(dynamo.endpoint(), &counter).await;
    let client = Client::from_conf(
        counted
            .config()
            .to_builder()
            .interceptor(timeline.clone())
            .build(),
    );
    let table = dynamo.fresh_table(&client, "bench").await;
    let store = Arc::new(DynamoStore::new(client.clone(), table));
    let bench = Bench {
        svc: service(store.clone()),
        store: store.clone(),
        counter,
        timeline,
    };

    // ---------------------------------------------------------------- pushes
    let mut pushes = Table::new(&[
        "operation",
        "requests",
        "by operation",
        "sequential round trips",
        "critical path",
        "moto time (ms)",
    ]);
    let mut row = |label: &str, c: &Cost| {
        pushes.row(vec![
            label.to_owned(),
            c.total().to_string(),
            c.by_operation(),
            c.rounds.len().to_string(),
            describe_rounds(&c.rounds),
            ms(c.elapsed),
        ]);
    };
    let space = new_space(&store, "push").await;
    let first = bench
        .push(&space, &wire::push_increment(wire::Protocol::V1, "c1", 1))
        .await;
    row("push of 1 increment, new client group", &first);
    let again = bench
        .push(&space, &wire::push_increment(wire::Protocol::V1, "c1", 2))
        .await;
    row("push of 1 increment, known client", &again);
    let dup = bench
        .push(&space, &wire::push_increment(wire::Protocol::V1, "c1", 2))
        .await;
    row("push of 1 duplicate (already applied)", &dup);
    let mut next_id = 3;
    for n in [10u64, 100, 1_000] {
        let c = bench
            .push(
                &space,
                &wire::push_v1("c1", wire::increments("c1", next_id, n)),
            )
            .await;
        next_id += n;
        row(&format!("push of {n} increments"), &c);
    }
    for n in [10u64, 100, 1_000] {
        let client = format!("set{n}");
        let c = bench
            .push(
                &space,
                &wire::push_v1(&client, wire::set_items(&client, 1, n)),
            )
            .await;
        row(&format!("push of {n} setItem (distinct keys)"), &c);
    }

    // ---------------------------------------------------------------- pulls and scale
    let mut sizes: Vec<u64> = [1_000u64, 10_000, 100_000]
        .into_iter()
        .filter(|n| *n <= max_entries)
        .collect();
    if sizes.is_empty() {
        sizes.push(max_entries);
    }
    let mut pulls = Table::new(&[
        "operation",
        "requests",
        "by operation",
        "sequential round trips",
        "answer (gzip / JSON)",
        "moto time (ms)",
    ]);
    let mut scale = Table::new(&[
        "entries in the space",
        "seeding time (s)",
        "incremental pull: requests",
        "round trips",
        "answer bytes (JSON)",
        "moto time, median of 5 (ms)",
        "time vs smallest",
    ]);
    let mut smallest: Option<f64> = None;
    let mut seeding_total = Duration::ZERO;
    for &entries in &sizes {
        let bench = bench.on_new_table(&dynamo, &client).await;
        let space = new_space(&bench.store, &format!("s{entries}")).await;
        let seeded = bench.seed(&space, entries).await;
        seeding_total += seeded;
        eprintln!("seeded {entries} entries in {seeded:?}");
        let reader = "reader";
        // The first pull is measured on the 10k space only: on moto, reading a whole
        // big space costs minutes and says nothing new. Elsewhere the reader starts from
        // the version the seeding left (a cookie means the same for every group).
        let cookie = if entries == 10_000 || sizes.len() == 1 {
            let full = bench.pull(&space, reader, &Value::Null).await;
            let patch_len = full.body["patch"].as_array().map_or(0, Vec::len);
            assert_eq!(patch_len as u64, entries + 1, "clear + one put per entry");
            pulls.row(vec![
                format!("first pull (cookie null), {entries} entries"),
                full.total().to_string(),
                full.by_operation(),
                full.rounds.len().to_string(),
                format!("{} / {}", kb(full.wire_bytes), kb(full.json_bytes)),
                ms(full.elapsed),
            ]);
            full.body["cookie"].clone()
        } else {
            let version = bench
                .store
                .space_version(&space)
                .await
                .expect("read the space version")
                .expect("the space exists");
            json!(version)
        };
        // One change by another client: an existing key gets a new value.
        let writer = "writer";
        let change = json!([{"clientID": writer, "id": 1, "name": "setItem", "timestamp": 1.0,
                             "args": {"key": "k0000001", "value": {"title": "changed"}}}]);
        let body = wire::push_v1(writer, change.as_array().cloned().unwrap_or_default());
        bench.push(&space, &body).await;
        let mut times = Samples::new();
        let mut last = None;
        for _ in 0..5 {
            let c = bench.pull(&space, reader, &cookie).await;
            times.push(c.elapsed);
            last = Some(c);
        }
        let inc = last.expect("five pulls ran");
        assert_eq!(inc.body["patch"].as_array().map_or(0, Vec::len), 1);
        let median = times.median().as_secs_f64();
        let base = *smallest.get_or_insert(median);
        scale.row(vec![
            entries.to_string(),
            format!("{:.1}", seeded.as_secs_f64()),
            format!("{} ({})", inc.total(), inc.by_operation()),
            inc.rounds.len().to_string(),
            inc.json_bytes.to_string(),
            ms(times.median()),
            ratio(median, base),
        ]);
        pulls.row(vec![
            format!("incremental pull after one change, {entries} entries"),
            inc.total().to_string(),
            inc.by_operation(),
            inc.rounds.len().to_string(),
            format!("{} / {}", kb(inc.wire_bytes), kb(inc.json_bytes)),
            ms(times.median()),
        ]);
        if entries == sizes[0] {
            let same = bench.pull(&space, reader, &inc.body["cookie"]).await;
            pulls.row(vec![
                format!("pull with nothing changed, {entries} entries"),
                same.total().to_string(),
                same.by_operation(),
                same.rounds.len().to_string(),
                format!("{} / {}", kb(same.wire_bytes), kb(same.json_bytes)),
                ms(same.elapsed),
            ]);
        }
    }

    let mut costs = Section::new(&command);
    costs.para(&format!(
        "Machine: {}. DynamoDB: moto (serialized, see run.sh) on the same machine; \
         counts are exact, moto times are only indicative.",
        machine()
    ));
    costs.table(&pushes);
    costs.table(&pulls);
    costs.write(non_empty(&out));

    let mut scale_section = Section::new(&command);
    scale_section.para(&format!(
        "Seeding: {:.0} s in all, through the engine (pushes of 1,900 `setItem` each).",
        seeding_total.as_secs_f64()
    ));
    scale_section.table(&scale);
    scale_section.write(non_empty(&out_scale));

    // ---------------------------------------------------------------- concurrent writers
    let bench = bench.on_new_table(&dynamo, &client).await;
    let writers = concurrent_writers(&bench, writer_seconds).await;
    let mut w = Section::new(&command);
    let config = PushConfig::default();
    w.para(&format!(
        "Each writer is its own client pushing one increment at a time to one space for \
         {writer_seconds} s, through `engine::push` on the DynamoDB store (moto). A conflict \
         is a commit that lost the race and was retried from a fresh snapshot \
         (`PushConfig::default()`: retries for up to {:?}, at most {} attempts, waiting \
         {:?}); a push that runs out of them gives up (HTTP 503 for the client).",
        config.retry_budget, config.max_attempts, config.backoff
    ));
    w.table(&writers);
    w.write(non_empty(&out_writers));
}

fn service(store: Arc<DynamoStore>) -> SyncService {
    SyncService::new(store, Arc::new(app::registry()), Arc::new(NoPoker))
}

fn non_empty(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

/// Push throughput on one space with 1 to 32 concurrent writers.
async fn concurrent_writers(bench: &Bench, seconds: f64) -> Table {
    let mut table = Table::new(&[
        "writers",
        "pushes/s",
        "p50 (ms)",
        "p99 (ms)",
        "conflicts (retries)",
        "retries per applied push (mean) / most in one push",
        "gave up (Contended)",
        "DynamoDB requests per push",
    ]);
    let registry = Arc::new(app::registry());
    let config = PushConfig::default();
    for writers in [1usize, 2, 4, 8, 16, 32] {
        let space = new_space(&bench.store, &format!("w{writers}")).await;
        bench.counter.reset();
        let deadline = Instant::now() + Duration::from_secs_f64(seconds);
        let started = Instant::now();
        let tasks: Vec<_> = (0..writers)
            .map(|w| {
                let store = bench.store.clone();
                let registry = registry.clone();
                let config = config.clone();
                let space = space.clone();
                tokio::spawn(async move {
                    let client = format!("w{w}");
                    let mut latencies = Samples::new();
                    let (mut conflicts, mut max_conflicts, mut gave_up) = (0u64, 0u32, 0u64);
                    let mut id = 1;
                    while Instant::now() < deadline {
                        let body = wire::push_increment(wire::Protocol::V1, &client, id);
                        let Ok(Parsed::Supported(req)) = protocol::parse_push(&body) else {
                            panic!("our own push body parses");
                        };
                        let t = Instant::now();
                        match engine::push(store.as_ref(), &registry, &config, &space, "", &req)
                            .await
                        {
                            Ok(outcome) => {
                                latencies.push(t.elapsed());
                                conflicts += u64::from(outcome.conflicts);
                                max_conflicts = max_conflicts.max(outcome.conflicts);
                                id += 1;
                            }
                            Err(engine::push::PushFailure {
                                error: engine::push::PushError::Contended { conflicts: c },
                                ..
                            }) => {
                                conflicts += u64::from(c);
                                gave_up += 1;
                            }
                            Err(e) => panic!("push failed: {e}"),
                        }
                    }
                    (latencies, conflicts, max_conflicts, gave_up, id - 1)
                })
            })
            .collect();
        let mut latencies = Samples::new();
        let (mut conflicts, mut max_conflicts, mut gave_up, mut applied) = (0u64, 0u32, 0u64, 0u64);
        for task in tasks {
            let (l, c, m, g, a) = task.await.expect("a writer task");
            latencies.extend(l);
            conflicts += c;
            max_conflicts = max_conflicts.max(m);
            gave_up += g;
            applied += a;
        }
        let elapsed = started.elapsed().as_secs_f64();
        // Every applied increment is in the count: nothing lost, nothing applied twice.
        let count = bench
            .store
            .get_entry(&space, app::COUNT_KEY)
            .await
            .expect("read the count");
        assert_eq!(count, Some(json!(applied)), "lost or doubled increments");
        let requests = bench.counter.total();
        table.row(vec![
            writers.to_string(),
            format!("{:.0}", applied as f64 / elapsed),
            ms(latencies.p50()),
            ms(latencies.p99()),
            conflicts.to_string(),
            format!(
                "{:.2} / {max_conflicts}",
                conflicts as f64 / applied.max(1) as f64
            ),
            gave_up.to_string(),
            format!("{:.1}", requests as f64 / applied.max(1) as f64),
        ]);
        eprintln!("{writers} writers: {applied} pushes, {conflicts} conflicts");
    }
    table
}
