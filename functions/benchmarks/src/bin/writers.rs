//! Contended writers in separate processes: W writers (1, 2, 8, 32), each a process of
//! its own with its own `DynamoStore` and `SyncService` (as a push Lambda instance has),
//! push one `increment` at a time to one shared space for S seconds, through the service's
//! `handle` with a push body of the wire's shape. The parent aggregates what the children
//! report and checks that the space's count equals the pushes applied.
//!
//!   writers --endpoint http://127.0.0.1:PORT --label emulator [--seconds 10]
//!       [--levels 1,2,8,32] [--policy default] [--out writers.md]
//!
//! `--endpoint` defaults to `DYNAMODB_ENDPOINT`. Each child prints one JSON line
//! ([`Report`]) on stdout; the parent prints a markdown section.

use benchmarks::report::{Section, Table, arg, machine};
use benchmarks::stats::{Samples, ms};
use benchmarks::wire;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use store_dynamodb::{DynamoStore, RequestCounter};
use sync_core::api::ApiRequest;
use sync_core::auth::AccessPolicy;
use sync_core::engine::PushConfig;
use sync_core::engine::push::Backoff;
use sync_core::mutators::app;
use sync_core::poke::NoPoker;
use sync_core::{SpaceId, Store, SyncService};
use tracing::Level;
use tracing::field::{Field, Visit};
use tracing::subscriber::Interest;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

/// Time the children have to start before they all begin: a base, and more per process
/// (32 of them start on 2 cores).
const START_DELAY: Duration = Duration::from_millis(2000);
const START_DELAY_PER_WRITER: Duration = Duration::from_millis(100);
/// Tries of a refused push after the run, so that the count check sees it settled.
const SETTLE_TRIES: u32 = 50;

fn main() {
    if std::env::args().any(|a| a == "--child") {
        child();
    } else {
        parent();
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

fn endpoint() -> String {
    let endpoint = arg(
        "--endpoint",
        std::env::var("DYNAMODB_ENDPOINT").unwrap_or_default(),
    );
    assert!(
        !endpoint.is_empty(),
        "--endpoint or DYNAMODB_ENDPOINT names the DynamoDB-compatible server"
    );
    endpoint
}

fn epoch_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

// ------------------------------------------------------------------------------ the child

/// What one child reports.
#[derive(Debug, Default)]
struct Report {
    /// Latency of each applied push, in microseconds.
    latencies_us: Vec<u64>,
    applied: u64,
    /// Pushes applied after the run to settle a refused one (not in the throughput).
    settled: u64,
    /// Commits retried by the engine, from the service's `request` records.
    retries: u64,
    /// Refused pushes, by status and error code (`503 Contended`).
    refused: BTreeMap<String, u64>,
    read_units: f64,
    write_units: f64,
    requests: u64,
    transact_writes: u64,
    seconds: f64,
}

impl Report {
    fn to_json(&self) -> Value {
        json!({
            "latencies_us": self.latencies_us, "applied": self.applied, "settled": self.settled,
            "retries": self.retries, "refused": self.refused, "read_units": self.read_units,
            "write_units": self.write_units, "requests": self.requests,
            "transact_writes": self.transact_writes, "seconds": self.seconds,
        })
    }

    fn from_json(v: &Value) -> Option<Report> {
        Some(Report {
            latencies_us: v["latencies_us"]
                .as_array()?
                .iter()
                .filter_map(Value::as_u64)
                .collect(),
            applied: v["applied"].as_u64()?,
            settled: v["settled"].as_u64()?,
            retries: v["retries"].as_u64()?,
            refused: v["refused"]
                .as_object()?
                .iter()
                .filter_map(|(k, n)| Some((k.clone(), n.as_u64()?)))
                .collect(),
            read_units: v["read_units"].as_f64()?,
            write_units: v["write_units"].as_f64()?,
            requests: v["requests"].as_u64()?,
            transact_writes: v["transact_writes"].as_u64()?,
            seconds: v["seconds"].as_f64()?,
        })
    }
}

/// Adds up the `conflicts` of the service's `request` records (set for pushes only): the
/// engine's retries of applied pushes, which the answer (`{}`) does not carry.
struct PushRetries(Arc<AtomicU64>);

impl<S: tracing::Subscriber> Layer<S> for PushRetries {
    // Only the service's own records: the SDK's many debug records are never built.
    fn register_callsite(&self, meta: &'static tracing::Metadata<'static>) -> Interest {
        if meta.is_event() && meta.target().starts_with("sync_core") && *meta.level() <= Level::INFO
        {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        #[derive(Default)]
        struct Fields {
            push: bool,
            conflicts: u64,
        }
        impl Visit for Fields {
            fn record_u64(&mut self, field: &Field, value: u64) {
                if field.name() == "conflicts" {
                    self.conflicts = value;
                }
            }
            fn record_str(&mut self, field: &Field, value: &str) {
                self.push |= field.name() == "message" && value == "request";
            }
            fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
                self.push |= field.name() == "message" && format!("{value:?}") == "request";
            }
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        if fields.push {
            self.0.fetch_add(fields.conflicts, Ordering::Relaxed);
        }
    }
}

fn child() {
    let retries = Arc::new(AtomicU64::new(0));
    let subscriber = tracing_subscriber::registry().with(PushRetries(retries.clone()));
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
    let endpoint = endpoint();
    let table: String = arg("--table", String::new());
    let space: String = arg("--space", String::new());
    let client_id: String = arg("--client", String::new());
    let seconds: f64 = arg("--seconds", 10.0);
    let start_at: u64 = arg("--start-at", 0);
    let report = runtime().block_on(async {
        let counter = RequestCounter::new();
        let client = store_dynamodb::local_client_with_counter(&endpoint, &counter).await;
        // As the push function builds it (`lambda_handlers::bootstrap`), with anonymous
        // access, keeping a handle on the store for its counters.
        let store = Arc::new(DynamoStore::new(client, table));
        let service = SyncService::new(store.clone(), Arc::new(app::registry()), Arc::new(NoPoker))
            .with_access_policy(AccessPolicy::anonymous())
            .with_push_config(retry_policy(&arg("--policy", "default".to_owned())));
        let space_id = SpaceId::parse(&space).expect("a valid space ID");
        // Connections open and the space's existence known before the clock starts.
        store
            .space_version(&space_id)
            .await
            .expect("read the space");
        let wait = start_at.saturating_sub(epoch_ms());
        tokio::time::sleep(Duration::from_millis(wait)).await;
        let baseline = store.capacity_stats();
        let baseline_writes = transact_writes(&counter);
        let push = |id: u64| {
            let body = wire::push_increment(wire::Protocol::V1, &client_id, id);
            let service = &service;
            let space = space.as_str();
            async move {
                let t = Instant::now();
                let answer = service
                    .handle(ApiRequest {
                        method: "POST",
                        path: "/api/replicache/push",
                        space_id: Some(space),
                        body: &body,
                        accepts_gzip: false,
                        user: "",
                    })
                    .await;
                let error = answer
                    .json_body()
                    .and_then(|b| b.get("error").and_then(Value::as_str).map(str::to_owned));
                let refusal = match (answer.status, error) {
                    (200, None) => None,
                    (status, error) => Some(format!("{status} {}", error.unwrap_or_default())),
                };
                (refusal, t.elapsed())
            }
        };
        let mut report = Report::default();
        let started = Instant::now();
        let deadline = started + Duration::from_secs_f64(seconds);
        let mut id = 1;
        let mut pending = false;
        while Instant::now() < deadline {
            let (refusal, took) = push(id).await;
            if let Some(refusal) = refusal {
                *report.refused.entry(refusal).or_default() += 1;
                pending = true;
            } else {
                report.latencies_us.push(took.as_micros() as u64);
                report.applied += 1;
                id += 1;
                pending = false;
            }
        }
        report.seconds = started.elapsed().as_secs_f64();
        let used = store.capacity_stats();
        report.read_units = used.read_units - baseline.read_units;
        report.write_units = used.write_units - baseline.write_units;
        report.requests = used.requests - baseline.requests;
        report.transact_writes = transact_writes(&counter) - baseline_writes;
        report.retries = retries.load(Ordering::Relaxed);
        // A refused push may be retried by its client: settle it, so that the count
        // check knows whether it was applied.
        let mut tries = 0;
        while pending && tries < SETTLE_TRIES {
            let (refusal, _) = push(id).await;
            pending = refusal.is_some();
            report.settled += u64::from(!pending);
            tries += 1;
        }
        report
    });
    println!("{}", report.to_json());
}

fn transact_writes(counter: &RequestCounter) -> u64 {
    counter
        .snapshot()
        .get("TransactWriteItems")
        .copied()
        .unwrap_or(0)
}

/// The push's retry policy a writer runs with (`--policy`), to compare the options:
/// - `default`: `PushConfig::default()`;
/// - `exponential`: the policy before: at most 12 attempts, a jittered wait of up to 4 ms
///   doubling to 250 ms, no entries read with the snapshot;
/// - `attempt:F`: the default with waits of up to F times the lost attempt's duration;
/// - `no-prefetch`: the default without entries read with the snapshot.
fn retry_policy(name: &str) -> PushConfig {
    let default = PushConfig::default();
    match name.split_once(':') {
        None if name == "default" => default,
        None if name == "exponential" => PushConfig {
            max_attempts: 12,
            backoff: Backoff::Exponential {
                base: Duration::from_millis(4),
                max: Duration::from_millis(250),
            },
            prefetch: false,
            ..default
        },
        None if name == "no-prefetch" => PushConfig {
            prefetch: false,
            ..default
        },
        Some(("attempt", factor)) => PushConfig {
            backoff: Backoff::AttemptTime {
                factor: factor.parse().expect("--policy attempt:F: F a number"),
                max: Duration::from_millis(250),
            },
            ..default
        },
        _ => panic!("--policy: default, exponential, no-prefetch or attempt:F, not {name}"),
    }
}

// ------------------------------------------------------------------------------ the parent

fn parent() {
    let endpoint = endpoint();
    let label: String = arg("--label", "DynamoDB-compatible server".to_owned());
    let seconds: f64 = arg("--seconds", 10.0);
    let levels: String = arg("--levels", "1,2,8,32".to_owned());
    let out: String = arg("--out", String::new());
    let policy: String = arg("--policy", "default".to_owned());
    // Refuse a bad policy before starting any process.
    retry_policy(&policy);
    let levels: Vec<usize> = levels
        .split(',')
        .map(|l| {
            l.trim()
                .parse()
                .expect("--levels: numbers separated by commas")
        })
        .collect();
    let exe = std::env::current_exe().expect("this binary's path");
    let rt = runtime();
    let (store, table) = rt.block_on(async {
        let client = store_dynamodb::local_client(&endpoint).await;
        let table = format!("writers-{:08x}", rand::random::<u32>());
        store_dynamodb::create_table(&client, &table)
            .await
            .expect("create the table");
        (DynamoStore::new(client, table.clone()), table)
    });
    let mut t = Table::new(&[
        "writers (processes)",
        "pushes/s",
        "p50 (ms)",
        "p99 (ms)",
        "retries per applied push",
        "RCU per applied push",
        "WCU per applied push",
        "DynamoDB requests per applied push",
        "commit attempts per applied push",
        "pushes refused",
        "throttled / write conflicts / read conflicts (emulator)",
        "count = pushes applied",
    ]);
    for &writers in &levels {
        let space = rt.block_on(async {
            let space = SpaceId::parse(&format!("writers{writers}-{:08x}", rand::random::<u32>()))
                .expect("a space ID");
            assert!(store.create_space(&space).await.expect("create the space"));
            space
        });
        let before = emulator_stats(&endpoint);
        let start_at =
            epoch_ms() + (START_DELAY + START_DELAY_PER_WRITER * writers as u32).as_millis() as u64;
        let children: Vec<_> = (0..writers)
            .map(|w| {
                std::process::Command::new(&exe)
                    .args(["--child", "--endpoint", &endpoint, "--table", &table])
                    .args(["--space", space.as_str(), "--client", &format!("w{w}")])
                    .args(["--seconds", &seconds.to_string()])
                    .args(["--start-at", &start_at.to_string()])
                    .args(["--policy", policy.as_str()])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::inherit())
                    .spawn()
                    .expect("start a writer process")
            })
            .collect();
        let reports: Vec<Report> = children
            .into_iter()
            .map(|c| {
                let out = c.wait_with_output().expect("a writer's output");
                assert!(out.status.success(), "a writer failed: {}", out.status);
                let line = String::from_utf8_lossy(&out.stdout);
                let v: Value = serde_json::from_str(line.trim()).expect("a writer's report");
                Report::from_json(&v).expect("a writer's report of the right shape")
            })
            .collect();
        let mut latencies = Samples::new();
        for r in &reports {
            for us in &r.latencies_us {
                latencies.push(Duration::from_micros(*us));
            }
        }
        let sum = |f: fn(&Report) -> f64| reports.iter().map(f).sum::<f64>();
        let applied = sum(|r| r.applied as f64);
        let settled = sum(|r| r.settled as f64);
        let elapsed = reports.iter().map(|r| r.seconds).fold(0.0, f64::max);
        let mut refused: BTreeMap<String, u64> = BTreeMap::new();
        for r in &reports {
            for (why, n) in &r.refused {
                *refused.entry(why.clone()).or_default() += n;
            }
        }
        let seen = emulator_counts(before.as_ref(), emulator_stats(&endpoint).as_ref());
        let count = rt
            .block_on(store.get_entry(&space, app::COUNT_KEY))
            .expect("read the count");
        let expected = (applied + settled) as u64;
        let count_ok = count == Some(json!(expected));
        let per = |x: f64| format!("{:.2}", x / applied.max(1.0));
        t.row(vec![
            writers.to_string(),
            format!("{:.0}", applied / elapsed.max(f64::MIN_POSITIVE)),
            ms(latencies.p50()),
            ms(latencies.p99()),
            per(sum(|r| r.retries as f64)),
            per(sum(|r| r.read_units)),
            per(sum(|r| r.write_units)),
            per(sum(|r| r.requests as f64)),
            per(sum(|r| r.transact_writes as f64)),
            if refused.is_empty() {
                "0".to_owned()
            } else {
                refused
                    .iter()
                    .map(|(why, n)| format!("{n} ({})", why.trim()))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
            seen,
            format!(
                "{} = {expected}: {}",
                count.as_ref().map_or("none".to_owned(), Value::to_string),
                if count_ok { "yes" } else { "NO" }
            ),
        ]);
        eprintln!(
            "{label}, {writers} writers: {applied} applied (+{settled} settled), refused {refused:?}, count {count:?}"
        );
        assert!(
            count_ok,
            "the count ({count:?}) is not the pushes applied ({expected}): lost or doubled"
        );
    }
    // The endpoint's port changes from run to run: the command is shown without it.
    let mut section = Section::new(&format!(
        "target/release/writers --endpoint URL --seconds {seconds} --policy {policy} --levels {}",
        levels
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(",")
    ));
    section.para(&format!(
        "{label}: each writer is a process of its own with its own `DynamoStore` and \
         `SyncService` (as a push Lambda instance), one client group pushing one \
         `increment` at a time to one shared space for {seconds} s through the service's \
         `handle`. Retries are the engine's commits that lost a race (from the service's \
         `push` records); capacity units are what the store's requests were told they \
         consumed (`DynamoStore::capacity_stats`); requests count every try; a commit \
         attempt is a `TransactWriteItems`. A refused push (status in parentheses) is \
         tried again by its writer. The last column checks the space's count against the \
         pushes applied. {}",
        machine()
    ));
    section.table(&t);
    section.write((!out.is_empty()).then_some(out.as_str()));
}

/// The emulator's counters (`GET /emulator/stats`), or `None` from another server.
fn emulator_stats(endpoint: &str) -> Option<Value> {
    use std::io::{Read, Write};
    let addr = endpoint.strip_prefix("http://")?.trim_end_matches('/');
    let mut stream = std::net::TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let request =
        format!("GET /emulator/stats HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    let (head, body) = answer.split_once("\r\n\r\n")?;
    if !head.starts_with("HTTP/1.1 200") {
        return None;
    }
    serde_json::from_str(body).ok()
}

/// What the emulator counted between two readings: requests refused for throughput,
/// write transactions cancelled by a conflict, transactional reads cancelled by one.
fn emulator_counts(before: Option<&Value>, after: Option<&Value>) -> String {
    let (Some(before), Some(after)) = (before, after) else {
        return "n/a".to_owned();
    };
    let delta = |k: &str| {
        after[k]
            .as_u64()
            .unwrap_or(0)
            .saturating_sub(before[k].as_u64().unwrap_or(0))
    };
    format!(
        "{} / {} / {}",
        delta("throttled"),
        delta("transactionConflicts"),
        delta("readConflicts")
    )
}
