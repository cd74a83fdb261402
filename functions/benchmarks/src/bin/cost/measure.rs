//! The child process: the Lambda functions' handler code, built as their binaries build
//! it on Lambda (EMF metrics on, JSON logs at `info`), driven with events of the real
//! shape against the DynamoDB stand-in, each invocation measured: wall time, CPU time,
//! capacity units (the stand-in's counters), bytes in and out, bytes of log lines.

use apigw_management_standin::Standin;
use aws_sdk_apigatewaymanagement::config::{BehaviorVersion, Credentials, Region};
use benchmarks::wire::{self, Protocol};
use lambda_handlers::HttpFunction;
use lambda_handlers::auth::AuthMode;
use lambda_handlers::connections::ConnectionTable;
use lambda_handlers::emf::{EmfMetrics, EmfWriter};
use lambda_handlers::poke_stream;
use lambda_handlers::poker::ApiGatewayPoker;
use lambda_handlers::websocket::WebSocketRoutes;
use lambda_http::aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use lambda_http::{Body, Request};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use store_dynamodb::DynamoStore;
use sync_core::cookie::CookieKeys;
use sync_core::mutators::app;
use sync_core::poke::NoPoker;
use sync_core::{Registry, Route, SpaceId, Store, SyncService};
use tracing::Instrument as _;
use tracing_subscriber::EnvFilter;

/// The operations measured, by name (the keys of the child's report).
pub const PUSH: &str = "push";
pub const PULL: &str = "incremental pull";
pub const POKE: &str = "poke fan-out";
pub const FIRST_PULL: &str = "first pull, 10,000 entries";
pub const CONNECT: &str = "ws $connect";
pub const DISCONNECT: &str = "ws $disconnect";

/// Any cookie secret: the pull function signs its cookies with the deployment's.
const COOKIE_SECRET: &str = "cost-benchmark-cookie-key-0123456789abcdefghijklmnopqrstuvwxyz";

/// Counts the bytes written through it (log lines, EMF lines).
#[derive(Clone, Default)]
struct ByteCount(Arc<AtomicU64>);

impl ByteCount {
    fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl Write for ByteCount {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.fetch_add(buf.len() as u64, Ordering::Relaxed);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One invocation's figures.
#[derive(Debug, Clone, Default)]
struct Sample {
    wall: Duration,
    cpu: Duration,
    read_units: f64,
    write_units: f64,
    dynamo_requests: u64,
    log_bytes: u64,
    emf_bytes: u64,
    request_bytes: usize,
    response_bytes: usize,
    ws_messages: u64,
    ws_message_bytes: usize,
}

/// CPU time of this process so far, all threads (the scheduler's nanoseconds).
fn cpu_time() -> Duration {
    let mut ns = 0u64;
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        for task in tasks.flatten() {
            let text = std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
            ns += text
                .split_whitespace()
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    Duration::from_nanos(ns)
}

/// The process's peak resident memory, in MB (`VmHWM`).
fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// The stand-in's counters: (read units, write units, requests).
fn emulator_units(endpoint: &str) -> (f64, f64, u64) {
    use std::io::Read;
    let fetch = || -> Option<Value> {
        let addr = endpoint.strip_prefix("http://")?.trim_end_matches('/');
        let mut stream = std::net::TcpStream::connect(addr).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        let request =
            format!("GET /emulator/stats HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).ok()?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).ok()?;
        let (_, body) = answer.split_once("\r\n\r\n")?;
        serde_json::from_str(body).ok()
    };
    let stats =
        fetch().expect("the DynamoDB stand-in's /emulator/stats (is --endpoint the stand-in?)");
    let requests = stats["requests"]
        .as_object()
        .map_or(0, |m| m.values().filter_map(Value::as_u64).sum());
    (
        stats["readUnits"].as_f64().unwrap_or(0.0),
        stats["writeUnits"].as_f64().unwrap_or(0.0),
        requests,
    )
}

/// An HTTP API (payload format 2.0) event as API Gateway sends it to the function.
fn http_event(path: &str, space: &str, body: &[u8]) -> Request {
    let headers = [
        ("accept-encoding", "gzip, deflate, br, zstd"),
        ("x-replicache-requestid", "c1-s1-0"),
        ("user-agent", "Mozilla/5.0"),
    ];
    let event = test_support::http_api::post_event(
        path,
        Some(space),
        &String::from_utf8_lossy(body),
        &headers,
    );
    lambda_http::request::from_str(&event.to_string()).expect("a valid HTTP API v2 event")
}

/// A `$connect` or `$disconnect` event of the WebSocket API.
fn ws_event(route: &str, connection_id: &str, space: &str) -> ApiGatewayWebsocketProxyRequest {
    let event_type = if route == "$connect" {
        "CONNECT"
    } else {
        "DISCONNECT"
    };
    serde_json::from_value(json!({
        "headers": {"Host": "ws123.execute-api.us-east-1.amazonaws.com"},
        "multiValueHeaders": {},
        "queryStringParameters": {"spaceID": space},
        "multiValueQueryStringParameters": {"spaceID": [space]},
        "requestContext": {
            "routeKey": route,
            "eventType": event_type,
            "extendedRequestId": "ABCDEFG=",
            "requestTime": "30/Nov/2026:08:00:00 +0000",
            "messageDirection": "IN",
            "stage": "prod",
            "connectedAt": 1_795_766_400_000u64,
            "requestTimeEpoch": 1_795_766_400_000u64,
            "identity": {"sourceIp": "203.0.113.7"},
            "requestId": "ABCDEFG=",
            "domainName": "ws123.execute-api.us-east-1.amazonaws.com",
            "connectionId": connection_id,
            "apiId": "ws123"
        },
        "isBase64Encoded": false
    }))
    .expect("a WebSocket event")
}

/// A table-stream record of a commit (a modification of the space item), as the event
/// source mapping hands it to the poke function (KEYS_ONLY).
fn stream_event(space: &SpaceId, sequence: u64) -> aws_lambda_events::event::dynamodb::Event {
    serde_json::from_value(json!({"Records": [{
        "eventID": format!("e{sequence}"),
        "eventName": poke_stream::POKED_EVENT,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": {
            "ApproximateCreationDateTime": 1_795_766_400,
            "Keys": {
                "pk": {"S": store_dynamodb::schema::space_pk(space.as_str())},
                "sk": {"S": "meta"}
            },
            "SequenceNumber": format!("{:021}", sequence),
            "SizeBytes": 60,
            "StreamViewType": poke_stream::STREAM_VIEW_TYPE
        },
        "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/2026-11-30T00:00:00.000"
    }]}))
    .expect("a stream event")
}

fn management_client(endpoint: &str) -> aws_sdk_apigatewaymanagement::Client {
    let config = aws_sdk_apigatewaymanagement::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("local", "local", None, None, "cost"))
        .endpoint_url(endpoint)
        .build();
    aws_sdk_apigatewaymanagement::Client::from_conf(config)
}

/// Bytes of a response body as API Gateway receives it from Lambda (binary bodies travel
/// base64-encoded).
fn response_bytes(body: &Body) -> usize {
    match body {
        Body::Empty => 0,
        Body::Text(t) => t.len(),
        Body::Binary(b) => b.len().div_ceil(3) * 4,
        _ => 0,
    }
}

/// An HTTP function as its binary builds it on Lambda (`lambda_handlers::bootstrap`): the
/// DynamoDB store, `mutators`, EMF metrics with the store's capacity, the `none` auth mode.
fn http_function(
    client: aws_sdk_dynamodb::Client,
    table: &str,
    route: &'static [Route],
    mutators: Registry,
    keys: Option<CookieKeys>,
    emf: &ByteCount,
) -> HttpFunction {
    let store = DynamoStore::new(client, table.to_owned());
    let writer = EmfWriter::to(Arc::new(Mutex::new(emf.clone())));
    let mut service = SyncService::new(
        Arc::new(store.clone()),
        Arc::new(mutators),
        Arc::new(NoPoker),
    )
    .with_access_policy(AuthMode::None.access_policy())
    .with_metrics(Arc::new(EmfMetrics::new(writer).with_capacity_of(store)));
    if let Some(keys) = keys {
        service = service.with_cookie_keys(keys);
    }
    HttpFunction::new(Arc::new(service), route)
}

/// What the child measures and prints (one JSON object).
pub struct Settings {
    pub endpoint: String,
    pub table: String,
    /// The space of 10,000 entries (seeded by the parent).
    pub big_space: String,
    pub runs: usize,
    pub big_runs: usize,
    /// Connections of the counter space (each poked once per push).
    pub clients: usize,
    /// A prefix unique to this child for the names it creates.
    pub tag: String,
}

struct Meter {
    endpoint: String,
    logs: ByteCount,
    emf: ByteCount,
    invocation: u64,
}

impl Meter {
    /// Runs `f` as one Lambda invocation (in the runtime's span with a request ID, as the
    /// log lines carry it) and measures it. `f` answers (request bytes, response bytes,
    /// WebSocket messages sent and their bytes).
    async fn invoke<F>(&mut self, f: F) -> Sample
    where
        F: std::future::Future<Output = (usize, usize, u64, usize)>,
    {
        self.invocation += 1;
        let span = tracing::info_span!(
            "Lambda runtime invoke",
            requestId = %format!("0f3c2b9e-5d7a-4c1e-9a8b-{:012x}", self.invocation)
        );
        let (r0, w0, q0) = emulator_units(&self.endpoint);
        let (l0, e0) = (self.logs.get(), self.emf.get());
        let cpu0 = cpu_time();
        let t = Instant::now();
        let (request_bytes, response_bytes, ws_messages, ws_message_bytes) =
            f.instrument(span).await;
        let wall = t.elapsed();
        let cpu = cpu_time().saturating_sub(cpu0);
        let (r1, w1, q1) = emulator_units(&self.endpoint);
        Sample {
            wall,
            cpu,
            read_units: r1 - r0,
            write_units: w1 - w0,
            dynamo_requests: q1 - q0,
            log_bytes: self.logs.get() - l0,
            emf_bytes: self.emf.get() - e0,
            request_bytes,
            response_bytes,
            ws_messages,
            ws_message_bytes,
        }
    }
}

pub fn run(settings: &Settings) -> Value {
    let logs = ByteCount::default();
    let log_writer = logs.clone();
    // The functions' own subscriber (`logging::init`) at the template's default level.
    let subscriber =
        lambda_handlers::logging::subscriber(EnvFilter::new("info"), move || log_writer.clone());
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
    // As `#[tokio::main]` builds it on Lambda, which shows a function two CPUs at these
    // sizes.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let report = runtime.block_on(measure(settings, logs));
    let mut report = report;
    report["peak_rss_mb"] = json!(peak_rss_mb());
    report
}

async fn measure(s: &Settings, logs: ByteCount) -> Value {
    let emf = ByteCount::default();
    let mut meter = Meter {
        endpoint: s.endpoint.clone(),
        logs,
        emf: emf.clone(),
        invocation: 0,
    };
    // Each function has its own client, as each Lambda function has.
    let client = || store_dynamodb::local_client(&s.endpoint);
    let keys = CookieKeys::from_secret_text(COOKIE_SECRET).expect("cookie keys");
    // The push function runs the app's JavaScript mutators (`increment` among them); the
    // pull function needs none but builds the Rust registry.
    let push = http_function(
        client().await,
        &s.table,
        &[Route::Push],
        js_mutators::app::registry_or_panic(),
        None,
        &emf,
    );
    let pull = http_function(
        client().await,
        &s.table,
        &[Route::Pull],
        app::registry(),
        Some(keys),
        &emf,
    );
    let standin = Standin::start()
        .await
        .expect("start the Management API stand-in");
    let poke_connections = ConnectionTable::new(client().await, s.table.clone());
    let poker = ApiGatewayPoker::new(
        poke_connections.clone(),
        management_client(&standin.endpoint()),
    );
    let poke_emf = EmfWriter::to(Arc::new(Mutex::new(emf.clone())));
    let ws_client = client().await;
    let ws = WebSocketRoutes::new(
        lambda_handlers::bootstrap::sync_service(
            ws_client.clone(),
            s.table.clone(),
            Arc::new(NoPoker),
            AuthMode::None,
        ),
        ConnectionTable::new(ws_client, s.table.clone()),
    );

    // The counter space and its connected clients.
    let setup_store = DynamoStore::new(client().await, s.table.clone());
    let space = SpaceId::parse(&format!("counter-{}", s.tag)).expect("a space ID");
    assert!(
        setup_store
            .create_space(&space)
            .await
            .expect("create the space")
    );
    let connection_ids: Vec<String> = (0..s.clients).map(|c| format!("{}-c{c}", s.tag)).collect();
    for id in &connection_ids {
        poke_connections
            .add(&space, id)
            .await
            .expect("add a connection");
        standin.open(id);
    }

    let pusher = format!("{}-pusher", s.tag);
    let puller = format!("{}-puller", s.tag);
    let mut cookie = Value::Null;
    let mut samples: BTreeMap<&'static str, Vec<Sample>> = BTreeMap::new();
    // Run 0 warms the instance up (connections, first allocations) and is left out.
    for run in 0..=s.runs {
        let keep = run > 0;
        let body = wire::push_increment(Protocol::V1, &pusher, run as u64 + 1);
        let sample = meter
            .invoke(async {
                let answer = push
                    .handle(http_event("/api/replicache/push", space.as_str(), &body))
                    .await;
                assert_eq!(answer.status(), 200, "a push failed");
                (body.len(), response_bytes(answer.body()), 0, 0)
            })
            .await;
        if keep {
            samples.entry(PUSH).or_default().push(sample);
        }

        let event = stream_event(&space, run as u64 + 1);
        let sample = meter
            .invoke(async {
                let before = standin.total_posts();
                let (answer, summary) = poke_stream::handle_with_summary(&poker, &event)
                    .await
                    .expect("a reportable answer");
                poke_emf.poke_batch(&summary);
                assert!(answer.batch_item_failures.is_empty(), "a poke failed");
                let posts = standin.total_posts() - before;
                assert_eq!(posts, s.clients, "one poke per connection");
                let bytes = lambda_handlers::poker::POKE_MESSAGE.len();
                (0, 0, posts as u64, bytes)
            })
            .await;
        if keep {
            samples.entry(POKE).or_default().push(sample);
        }

        let body = wire::pull(Protocol::V1, &puller, &cookie);
        let mut next_cookie = Value::Null;
        let sample = meter
            .invoke(async {
                let answer = pull
                    .handle(http_event("/api/replicache/pull", space.as_str(), &body))
                    .await;
                assert_eq!(answer.status(), 200, "a pull failed");
                next_cookie = pull_cookie(answer.body());
                (body.len(), response_bytes(answer.body()), 0, 0)
            })
            .await;
        cookie = next_cookie;
        // The first pull of the counter space had no cookie: not an incremental one.
        if keep {
            samples.entry(PULL).or_default().push(sample);
        }

        let connection = format!("{}-ws{run}", s.tag);
        let sample = meter
            .invoke(async {
                let answer = ws
                    .connect(&ws_event("$connect", &connection, space.as_str()))
                    .await;
                assert_eq!(answer.status_code, 200, "a $connect was refused");
                (0, 0, 0, 0)
            })
            .await;
        if keep {
            samples.entry(CONNECT).or_default().push(sample);
        }
        let sample = meter
            .invoke(async {
                let answer = ws
                    .disconnect(&ws_event("$disconnect", &connection, space.as_str()))
                    .await;
                assert_eq!(answer.status_code, 200, "a $disconnect failed");
                (0, 0, 0, 0)
            })
            .await;
        if keep {
            samples.entry(DISCONNECT).or_default().push(sample);
        }
    }

    for run in 0..=s.big_runs {
        let client = format!("{}-first{run}", s.tag);
        let body = wire::pull(Protocol::V1, &client, &Value::Null);
        let sample = meter
            .invoke(async {
                let answer = pull
                    .handle(http_event("/api/replicache/pull", &s.big_space, &body))
                    .await;
                assert_eq!(answer.status(), 200, "a first pull failed");
                (body.len(), response_bytes(answer.body()), 0, 0)
            })
            .await;
        if run > 0 {
            samples.entry(FIRST_PULL).or_default().push(sample);
        }
    }

    let ops: serde_json::Map<String, Value> = samples
        .iter()
        .map(|(name, list)| ((*name).to_owned(), summarize(list)))
        .collect();
    json!({ "ops": ops })
}

/// The cookie of a pull answer (gzipped or not).
fn pull_cookie(body: &Body) -> Value {
    let bytes: Vec<u8> = match body {
        Body::Text(t) => t.as_bytes().to_vec(),
        Body::Binary(b) => {
            use std::io::Read;
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(b.as_slice())
                .read_to_end(&mut out)
                .expect("a gzip body");
            out
        }
        _ => Vec::new(),
    };
    let answer: Value = serde_json::from_slice(&bytes).expect("a JSON pull answer");
    answer["cookie"].clone()
}

fn summarize(list: &[Sample]) -> Value {
    let n = list.len().max(1) as f64;
    let mean = |f: &dyn Fn(&Sample) -> f64| list.iter().map(f).sum::<f64>() / n;
    let mut walls: Vec<f64> = list.iter().map(|s| s.wall.as_secs_f64() * 1000.0).collect();
    walls.sort_by(f64::total_cmp);
    let median = walls.get(walls.len() / 2).copied().unwrap_or(0.0);
    let p90 = walls
        .get(((walls.len() as f64 * 0.9) as usize).min(walls.len().saturating_sub(1)))
        .copied()
        .unwrap_or(0.0);
    json!({
        "n": list.len(),
        "wall_ms_median": median,
        "wall_ms_p90": p90,
        "wall_ms_mean": mean(&|s| s.wall.as_secs_f64() * 1000.0),
        "billed_ms_mean": mean(&|s| benchmarks::price::billed_ms(s.wall) as f64),
        "cpu_ms_mean": mean(&|s| s.cpu.as_secs_f64() * 1000.0),
        "read_units": mean(&|s| s.read_units),
        "write_units": mean(&|s| s.write_units),
        "dynamo_requests": mean(&|s| s.dynamo_requests as f64),
        "log_bytes": mean(&|s| s.log_bytes as f64),
        "emf_bytes": mean(&|s| s.emf_bytes as f64),
        "request_bytes": list.iter().map(|s| s.request_bytes).max().unwrap_or(0),
        "response_bytes": list.iter().map(|s| s.response_bytes).max().unwrap_or(0),
        "ws_messages": mean(&|s| s.ws_messages as f64),
        "ws_message_bytes": list.iter().map(|s| s.ws_message_bytes).max().unwrap_or(0),
    })
}
