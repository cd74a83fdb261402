//! Cold start: the size of each release binary, and the time from process start to the
//! first handled request, for the local server and for the Lambda functions.
//!
//!   coldstart [--bin-dir target/release] [--lambda-dir target/lambda] [--runs 5]
//!             [--out coldstart.md]
//!
//! The Lambda binaries are started the way Lambda starts them: with
//! `AWS_LAMBDA_RUNTIME_API` pointing at a runtime API. Here that API is a minimal local
//! emulation written for this benchmark (below): it hands the process one API Gateway
//! HTTP API event on `GET /2018-06-01/runtime/invocation/next` and takes the answer on
//! `POST .../invocation/{id}/response`. The functions talk to DynamoDB at
//! `DYNAMODB_ENDPOINT` (moto, started here or given). What this does not include: the
//! Lambda service's own work before the process starts (download and unpack of the
//! package, the microVM), which no local run can measure.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use benchmarks::http::Connection;
use benchmarks::report::{Section, Table, arg, machine};
use benchmarks::servers;
use benchmarks::stats::{Samples, ms};
use benchmarks::wire::{self, Protocol};
use serde_json::{Value, json};
use std::path::{Path as FsPath, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use sync_core::{SpaceId, Store};
use test_support::LocalDynamo;
use tokio::sync::mpsc;

/// What the emulated runtime API saw of one invocation.
#[derive(Debug)]
enum Seen {
    /// The function asked for its first event: its initialization is done.
    Next(Instant),
    /// The function answered the event.
    Response(Instant, Value),
    Error(String),
}

#[derive(Clone)]
struct RuntimeApi {
    event: Arc<Mutex<Option<Value>>>,
    seen: mpsc::UnboundedSender<Seen>,
}

async fn next_invocation(State(api): State<RuntimeApi>) -> Response {
    let _ = api.seen.send(Seen::Next(Instant::now()));
    let event = api.event.lock().map(|mut e| e.take()).unwrap_or(None);
    let Some(event) = event else {
        // Only one event per process: later polls wait until the process is killed.
        std::future::pending::<()>().await;
        return StatusCode::NO_CONTENT.into_response();
    };
    let mut headers = HeaderMap::new();
    let deadline = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() + 30_000);
    for (name, value) in [
        (
            "lambda-runtime-aws-request-id",
            "bench-request-1".to_owned(),
        ),
        ("lambda-runtime-deadline-ms", deadline.to_string()),
        (
            "lambda-runtime-invoked-function-arn",
            "arn:aws:lambda:us-east-1:123456789012:function:bench".to_owned(),
        ),
        (
            "lambda-runtime-trace-id",
            "Root=1-5759e988-bd862e3fe1be46a994272793".to_owned(),
        ),
        ("content-type", "application/json".to_owned()),
    ] {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    }
    (headers, event.to_string()).into_response()
}

async fn invocation_response(
    State(api): State<RuntimeApi>,
    Path(_id): Path<String>,
    body: axum::body::Bytes,
) -> StatusCode {
    let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let _ = api.seen.send(Seen::Response(Instant::now(), value));
    StatusCode::ACCEPTED
}

async fn invocation_error(State(api): State<RuntimeApi>, body: axum::body::Bytes) -> StatusCode {
    let _ = api
        .seen
        .send(Seen::Error(String::from_utf8_lossy(&body).into_owned()));
    StatusCode::ACCEPTED
}

/// An API Gateway HTTP API (payload 2.0) event for `route` of `space`.
fn http_event(route: &str, space: &SpaceId, body: &[u8]) -> Value {
    let path = format!("/api/replicache/{route}");
    json!({
        "version": "2.0",
        "routeKey": format!("POST {path}"),
        "rawPath": path,
        "rawQueryString": format!("spaceID={space}"),
        "headers": {"content-type": "application/json", "host": "abc123.execute-api.us-east-1.amazonaws.com"},
        "queryStringParameters": {"spaceID": space.as_str()},
        "requestContext": {
            "accountId": "123456789012", "apiId": "abc123",
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com", "domainPrefix": "abc123",
            "http": {"method": "POST", "path": path, "protocol": "HTTP/1.1",
                     "sourceIp": "203.0.113.7", "userAgent": "bench"},
            "requestId": "bench", "routeKey": format!("POST {path}"), "stage": "$default",
            "time": "27/Nov/2026:08:00:00 +0000", "timeEpoch": 1795766400000u64
        },
        "body": String::from_utf8_lossy(body),
        "isBase64Encoded": false
    })
}

/// One cold start of a Lambda binary: (spawn to init done, spawn to answer posted).
async fn lambda_cold_start(
    bin: &FsPath,
    event: Value,
    endpoint: &str,
    table: &str,
) -> (Duration, Duration) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let api = RuntimeApi {
        event: Arc::new(Mutex::new(Some(event))),
        seen: tx,
    };
    let app = Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next_invocation))
        .route(
            "/2018-06-01/runtime/invocation/{id}/response",
            post(invocation_response),
        )
        .route(
            "/2018-06-01/runtime/invocation/{id}/error",
            post(invocation_error),
        )
        .route("/2018-06-01/runtime/init/error", post(invocation_error))
        .with_state(api);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the runtime API emulation");
    let addr = listener.local_addr().expect("its address");
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let started = Instant::now();
    let mut child = tokio::process::Command::new(bin)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "bench")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "bench")
        .env("AWS_REGION", "us-east-1")
        .env("TABLE_NAME", table)
        .env("DYNAMODB_ENDPOINT", endpoint)
        .env("AWS_ACCESS_KEY_ID", "local")
        .env("AWS_SECRET_ACCESS_KEY", "local")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
    let mut init = None;
    let answered = loop {
        match tokio::time::timeout(Duration::from_secs(30), rx.recv()).await {
            Ok(Some(Seen::Next(at))) => {
                init.get_or_insert(at - started);
            }
            Ok(Some(Seen::Response(at, value))) => {
                assert_eq!(
                    value["statusCode"],
                    json!(200),
                    "{} answered {value}",
                    bin.display()
                );
                break at - started;
            }
            Ok(Some(Seen::Error(e))) => panic!("{} reported an error: {e}", bin.display()),
            Ok(None) | Err(_) => panic!("{} did not answer within 30 s", bin.display()),
        }
    };
    let _ = child.kill().await;
    server.abort();
    (init.unwrap_or(answered), answered)
}

/// One cold start of the local server: spawn to the first answered request.
async fn local_server_cold_start(bin: &FsPath) -> Duration {
    let started = Instant::now();
    let mut server = servers::local_server(bin, None)
        .await
        .expect("start the local server");
    server.drain_stderr();
    loop {
        if let Ok(mut conn) = Connection::open(server.addr).await
            && let Ok((200, _)) = conn
                .post(
                    "/api/replicache/spaceExists",
                    br#"{"spaceID":"x"}"#.to_vec(),
                )
                .await
        {
            return started.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn size_mb(path: &FsPath) -> Option<f64> {
    std::fs::metadata(path)
        .ok()
        .map(|m| m.len() as f64 / 1_000_000.0)
}

#[tokio::main]
async fn main() {
    let bin_dir = PathBuf::from(arg("--bin-dir", "target/release".to_owned()));
    let runs: usize = arg("--runs", 5);
    let out = arg("--out", String::new());
    let command = benchmarks::report::command();

    // `cargo lambda build --release` (what SAM's rust-cargolambda deploys) builds with its
    // own settings on top of the release profile (`panic = "abort"`, a CPU target), into
    // target/lambda/<function>/bootstrap: measured beside the plain build when present.
    let lambda_dir = PathBuf::from(arg("--lambda-dir", "target/lambda".to_owned()));
    let mut sizes = Table::new(&[
        "binary",
        "cargo build --release (MB)",
        "cargo lambda build --release (MB)",
        "target <= 10 MB",
    ]);
    // Every Lambda function (lambda-handlers' src/bin/), then the local server.
    let lambda_binaries = lambda_handlers::permissions::FUNCTIONS
        .iter()
        .map(|f| f.binary);
    for name in lambda_binaries.chain(["local-server"]) {
        let path = bin_dir.join(name);
        // A build of some binaries only (another profile, say) is measured as far as it goes.
        let Some(size) = size_mb(&path) else {
            eprintln!("{} is not built: skipped", path.display());
            continue;
        };
        let is_lambda = name != "local-server";
        let deployed = if is_lambda {
            size_mb(&lambda_dir.join(name).join("bootstrap"))
        } else {
            None
        };
        sizes.row(vec![
            if is_lambda {
                format!("`{name}` (Lambda)")
            } else {
                format!("`{name}`")
            },
            format!("{size:.2}"),
            deployed.map_or_else(|| "-".to_owned(), |d| format!("{d:.2}")),
            match (is_lambda, deployed.unwrap_or(size) <= 10.0) {
                (false, _) => "n/a".to_owned(),
                (true, true) => "met".to_owned(),
                (true, false) => "missed".to_owned(),
            },
        ]);
    }

    let dynamo = LocalDynamo::start().await;
    let client = dynamo.client().await;
    let table = dynamo.fresh_table(&client, "coldstart").await;
    let store = store_dynamodb::DynamoStore::new(client, table.clone());
    let space = SpaceId::parse("coldstart").expect("a valid space id");
    store.create_space(&space).await.expect("create the space");

    let mut times = Table::new(&[
        "process",
        "first request",
        "start to ready, median (ms)",
        "start to first answer, median (ms)",
        "min / max (ms)",
    ]);
    let local_bin = bin_dir.join("local-server");
    let mut local = Samples::new();
    for _ in 0..runs {
        if local_bin.exists() {
            local.push(local_server_cold_start(&local_bin).await);
        }
    }
    if !local.is_empty() {
        times.row(vec![
            "`local-server` (SQLite, new data directory)".to_owned(),
            "POST spaceExists".to_owned(),
            "-".to_owned(),
            ms(local.median()),
            format!("{} / {}", ms(local.quantile(0.0)), ms(local.quantile(1.0))),
        ]);
    }
    let cases: [(&str, &str, Vec<u8>); 2] = [
        (
            "pull",
            "pull, null cookie",
            wire::pull(Protocol::V1, "cold", &Value::Null),
        ),
        ("push", "push of 1 increment", Vec::new()),
    ];
    for (name, label, body) in cases {
        if !bin_dir.join(name).exists() {
            continue;
        }
        let mut init = Samples::new();
        let mut answer = Samples::new();
        for run in 0..runs {
            let body = if name == "push" {
                // A new client each run, so that every push applies a mutation.
                wire::push_increment(Protocol::V1, &format!("cold{run}"), 1)
            } else {
                body.clone()
            };
            let event = http_event(name, &space, &body);
            let (i, a) =
                lambda_cold_start(&bin_dir.join(name), event, dynamo.endpoint(), &table).await;
            init.push(i);
            answer.push(a);
        }
        times.row(vec![
            format!("`{name}` Lambda (runtime API emulation, DynamoDB on moto)"),
            label.to_owned(),
            ms(init.median()),
            ms(answer.median()),
            format!(
                "{} / {}",
                ms(answer.quantile(0.0)),
                ms(answer.quantile(1.0))
            ),
        ]);
    }

    let mut section = Section::new(&command);
    section.para(&format!(
        "Machine: {}. {runs} starts each. \"Ready\" is the function's first poll for an \
         event (its initialization done); \"first answer\" is the answer to the first event \
         posted back, including its DynamoDB requests to moto on this machine.",
        machine()
    ));
    section.table(&sizes);
    section.table(&times);
    section.write((!out.is_empty()).then_some(out.as_str()));
}
