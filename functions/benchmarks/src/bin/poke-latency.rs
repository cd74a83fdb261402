//! Push latency with 0, 100 and 1,000 poke connections in the space, and how long the
//! pokes take to arrive.
//!
//!   poke-latency [--local-server target/release/local-server] [--pushes 30]
//!                [--stream-poll-ms 250] [--out pokes.md]
//!
//! - Local server: real WebSocket connections to `/api/replicache/poke?spaceID=`, pushes
//!   over HTTP; measured: the push's HTTP round trip, and the time from sending the push
//!   until every connection has received its `poke` frame. The push answers after its
//!   commit; the fan-out runs in a task of its own.
//! - Lambda path: the push function's code in process (`bootstrap::push_service` on the
//!   DynamoDB store, no poker: it answers after its commit), in moto with the table's stream enabled
//!   (KEYS_ONLY, as the template has it); the poke function's code
//!   (`poke_stream::handle` with `poker::ApiGatewayPoker`, connection records in moto,
//!   PostToConnection to the Management API stand-in) fed from that stream by
//!   [`EmulatedMapping`], a local stand-in for Lambda's event source mapping. Measured:
//!   the push's latency, and the time from its answer (its commit is done by then) until
//!   every connection has its poke.

use apigw_management_standin::Standin;
use aws_sdk_apigatewaymanagement::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_dynamodb::types::{StreamSpecification, StreamViewType};
use benchmarks::http::Connection;
use benchmarks::report::{Section, Table, arg, machine};
use benchmarks::servers;
use benchmarks::stats::{Samples, ms};
use benchmarks::wire::{self, Protocol};
use futures::StreamExt as _;
use lambda_handlers::connections::ConnectionTable;
use lambda_handlers::poke_stream;
use lambda_handlers::poker::ApiGatewayPoker;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use store_dynamodb::{DynamoStore, RequestCounter};
use sync_core::api::ApiRequest;
use sync_core::{SpaceId, Store};
use test_support::LocalDynamo;
use tokio_tungstenite::tungstenite::Message;

const CONNECTION_COUNTS: [usize; 3] = [0, 100, 1_000];

/// Opens `n` poke sockets on `space`; each counts the pokes it receives into `received`.
async fn open_sockets(
    addr: std::net::SocketAddr,
    space: &str,
    n: usize,
    received: Arc<AtomicU64>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let url = format!("ws://{addr}/api/replicache/poke?spaceID={space}");
    let mut tasks = Vec::with_capacity(n);
    for _ in 0..n {
        let (socket, _) = tokio_tungstenite::connect_async(&url)
            .await
            .expect("open a poke socket");
        let received = received.clone();
        tasks.push(tokio::spawn(async move {
            let (_write, mut read) = socket.split();
            while let Some(Ok(message)) = read.next().await {
                if matches!(&message, Message::Text(t) if t.as_str() == "poke") {
                    received.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    tasks
}

async fn local_server_rows(bin: &std::path::Path, pushes: u64, table: &mut Table) {
    let mut server = servers::local_server_with(bin, None, &[("RUST_LOG", "warn")])
        .await
        .expect("start the local server");
    server.drain_stderr();
    let mut conn = Connection::open(server.addr).await.expect("connect");
    for (i, &n) in CONNECTION_COUNTS.iter().enumerate() {
        let space = format!("pokes{i}");
        let body = serde_json::json!({ "spaceID": space })
            .to_string()
            .into_bytes();
        let (status, _) = conn
            .post("/api/replicache/createSpace", body)
            .await
            .expect("createSpace");
        assert_eq!(status, 200);
        let received = Arc::new(AtomicU64::new(0));
        let sockets = open_sockets(server.addr, &space, n, received.clone()).await;
        let path = format!("/api/replicache/push?spaceID={space}");
        let mut push_latency = Samples::new();
        let mut delivered = Samples::new();
        for id in 1..=pushes {
            let t = Instant::now();
            let (status, _) = conn
                .post(&path, wire::push_increment(Protocol::V1, "pusher", id))
                .await
                .expect("push");
            assert_eq!(status, 200);
            push_latency.push(t.elapsed());
            // Wait for every socket's poke before the next push, so that none coalesce.
            let want = id * n as u64;
            let limit = Instant::now() + Duration::from_secs(10);
            while received.load(Ordering::Relaxed) < want {
                assert!(Instant::now() < limit, "pokes missing after 10 s");
                tokio::task::yield_now().await;
            }
            delivered.push(t.elapsed());
        }
        table.row(vec![
            "local server (WebSocket hub)".to_owned(),
            n.to_string(),
            ms(push_latency.p50()),
            ms(push_latency.p99()),
            if n == 0 {
                "-".to_owned()
            } else {
                format!("{} / {}", ms(delivered.p50()), ms(delivered.p99()))
            },
            "-".to_owned(),
        ]);
        for s in sockets {
            s.abort();
        }
    }
}

fn management_client(endpoint: &str) -> aws_sdk_apigatewaymanagement::Client {
    let config = aws_sdk_apigatewaymanagement::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("local", "local", None, None, "bench"))
        .endpoint_url(endpoint)
        .build();
    aws_sdk_apigatewaymanagement::Client::from_conf(config)
}

fn streams_client(endpoint: &str) -> aws_sdk_dynamodbstreams::Client {
    use aws_sdk_dynamodbstreams::config::{BehaviorVersion, Credentials, Region};
    let config = aws_sdk_dynamodbstreams::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("local", "local", None, None, "bench"))
        .endpoint_url(endpoint)
        .build();
    aws_sdk_dynamodbstreams::Client::from_conf(config)
}

/// Turns on the table's stream as the template declares it; its ARN.
async fn enable_stream(client: &aws_sdk_dynamodb::Client, table: &str) -> String {
    client
        .update_table()
        .table_name(table)
        .stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::from(poke_stream::STREAM_VIEW_TYPE))
                .build()
                .expect("a stream specification"),
        )
        .send()
        .await
        .expect("enable the table's stream");
    client
        .describe_table()
        .table_name(table)
        .send()
        .await
        .expect("describe the table")
        .table()
        .and_then(|t| t.latest_stream_arn())
        .expect("the table's stream ARN")
        .to_owned()
}

/// The template's mapping settings that the emulation honours.
const BATCH_SIZE: i32 = 100;
const MAXIMUM_RETRY_ATTEMPTS: usize = 3;

/// An EMULATION of Lambda's event source mapping for a DynamoDB stream, as its
/// documentation describes it (it is not Lambda's code, and runs in this process): poll
/// the stream's shard with GetRecords (at `poll` intervals while it is idle, Lambda's
/// documented base rate being 4 polls a second, and again at once after records), keep
/// the records that the mapping's filter (`poke_stream::FILTER_PATTERN`, the template's)
/// lets through, invoke the function with up to `BatchSize` of them as one event, and,
/// when the function reports failed records, invoke it again from the first of them, up
/// to `MaximumRetryAttempts` times. The records are converted to the JSON of a Lambda
/// stream event and parsed as the poke function parses its event.
struct EmulatedMapping {
    task: tokio::task::JoinHandle<()>,
    /// Modifications of space items (commits) the function was invoked with and did not
    /// report, in all; the filter also lets through a new space's record, which pokes
    /// nobody and is not counted.
    handled: Arc<AtomicU64>,
}

impl EmulatedMapping {
    async fn start(
        streams: aws_sdk_dynamodbstreams::Client,
        stream_arn: String,
        poker: Arc<ApiGatewayPoker>,
        poll: Duration,
    ) -> EmulatedMapping {
        let shard = streams
            .describe_stream()
            .stream_arn(&stream_arn)
            .send()
            .await
            .expect("DescribeStream")
            .stream_description()
            .and_then(|d| d.shards().first())
            .and_then(|s| s.shard_id())
            .expect("a shard")
            .to_owned();
        // StartingPosition LATEST.
        let mut iterator = streams
            .get_shard_iterator()
            .stream_arn(&stream_arn)
            .shard_id(shard)
            .shard_iterator_type(aws_sdk_dynamodbstreams::types::ShardIteratorType::Latest)
            .send()
            .await
            .expect("GetShardIterator")
            .shard_iterator()
            .expect("a shard iterator")
            .to_owned();
        let handled = Arc::new(AtomicU64::new(0));
        let counted = handled.clone();
        let pattern: Value = serde_json::from_str(poke_stream::FILTER_PATTERN).unwrap();
        let task = tokio::spawn(async move {
            loop {
                let page = streams
                    .get_records()
                    .shard_iterator(&iterator)
                    .limit(BATCH_SIZE)
                    .send()
                    .await
                    .expect("GetRecords");
                iterator = page
                    .next_shard_iterator()
                    .expect("the shard stays open")
                    .to_owned();
                if page.records().is_empty() {
                    tokio::time::sleep(poll).await;
                    continue;
                }
                let batch: Vec<Value> = page
                    .records()
                    .iter()
                    .map(|r| event_record(r, &stream_arn))
                    .filter(|r| poke_stream::matches_filter(&pattern, r))
                    .collect();
                if !batch.is_empty() {
                    invoke(&poker, batch, &counted).await;
                }
            }
        });
        EmulatedMapping { task, handled }
    }
}

impl Drop for EmulatedMapping {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Invokes the poke function's handler with `batch`, then again from the first record it
/// reports, up to the retry limit.
async fn invoke(poker: &ApiGatewayPoker, mut batch: Vec<Value>, handled: &AtomicU64) {
    for _ in 0..=MAXIMUM_RETRY_ATTEMPTS {
        let event = serde_json::from_value(json!({ "Records": batch })).expect("a stream event");
        let response = poke_stream::handle(poker, &event)
            .await
            .expect("a reportable answer");
        let first_failed = response
            .batch_item_failures
            .first()
            .and_then(|f| f.item_identifier.clone());
        let commits = |records: &[Value]| {
            records
                .iter()
                .filter(|r| r["eventName"] == poke_stream::POKED_EVENT)
                .count() as u64
        };
        let Some(sequence) = first_failed else {
            handled.fetch_add(commits(&batch), Ordering::Relaxed);
            return;
        };
        let at = batch
            .iter()
            .position(|r| r["dynamodb"]["SequenceNumber"] == sequence.as_str())
            .expect("a reported record is of the batch");
        handled.fetch_add(commits(&batch[..at]), Ordering::Relaxed);
        batch.drain(..at);
    }
    eprintln!("poke-latency: records given up after {MAXIMUM_RETRY_ATTEMPTS} retries");
}

/// A record of the DynamoDB Streams API as Lambda puts it into a function's event.
fn event_record(record: &aws_sdk_dynamodbstreams::types::Record, stream_arn: &str) -> Value {
    use aws_sdk_dynamodbstreams::types::AttributeValue;
    let change = record.dynamodb().expect("the change");
    let keys: serde_json::Map<String, Value> = change
        .keys()
        .into_iter()
        .flatten()
        .map(|(name, value)| {
            let value = match value {
                AttributeValue::S(s) => json!({ "S": s }),
                AttributeValue::N(n) => json!({ "N": n }),
                other => panic!("key {name}: {other:?} is no key type of the table"),
            };
            (name.clone(), value)
        })
        .collect();
    json!({
        "eventID": record.event_id(),
        "eventName": record.event_name().map(|n| n.as_str()),
        "eventVersion": record.event_version(),
        "eventSource": record.event_source(),
        "awsRegion": record.aws_region(),
        "dynamodb": {
            "ApproximateCreationDateTime": change.approximate_creation_date_time().map(|t| t.secs()),
            "Keys": keys,
            "SequenceNumber": change.sequence_number(),
            "SizeBytes": change.size_bytes(),
            "StreamViewType": change.stream_view_type().map(|t| t.as_str()),
        },
        "eventSourceARN": stream_arn,
    })
}

async fn lambda_rows(pushes: u64, poll: Duration, table: &mut Table) {
    let dynamo = LocalDynamo::start().await;
    let push_counter = RequestCounter::new();
    let push_client =
        store_dynamodb::local_client_with_counter(dynamo.endpoint(), &push_counter).await;
    let table_name = dynamo.fresh_table(&push_client, "pokes").await;
    let stream_arn = enable_stream(&push_client, &table_name).await;
    let standin = Standin::start().await.expect("start the stand-in");
    let store: Arc<dyn Store> = Arc::new(DynamoStore::new(push_client.clone(), table_name.clone()));
    // The push function's service as its binary builds it (no poker).
    let svc = lambda_handlers::bootstrap::push_service(
        push_client,
        table_name.clone(),
        lambda_handlers::auth::AuthMode::None,
    );
    // The poke function, with its own client, fed by the emulated mapping.
    let poke_counter = RequestCounter::new();
    let poke_client =
        store_dynamodb::local_client_with_counter(dynamo.endpoint(), &poke_counter).await;
    let connections = ConnectionTable::new(poke_client, table_name);
    let poker = Arc::new(ApiGatewayPoker::new(
        connections.clone(),
        management_client(&standin.endpoint()),
    ));
    let mapping =
        EmulatedMapping::start(streams_client(dynamo.endpoint()), stream_arn, poker, poll).await;
    for (i, &n) in CONNECTION_COUNTS.iter().enumerate() {
        let space = SpaceId::parse(&format!("pokes{i}")).expect("a valid space id");
        store.create_space(&space).await.expect("create space");
        for c in 0..n {
            let id = format!("conn{i}x{c}");
            connections
                .add(&space, &id)
                .await
                .expect("add a connection");
            standin.open(&id);
        }
        let posts_before = standin.total_posts();
        let handled_before = mapping.handled.load(Ordering::Relaxed);
        let mut latency = Samples::new();
        let mut delivered = Samples::new();
        push_counter.reset();
        poke_counter.reset();
        for id in 1..=pushes {
            let body = wire::push_increment(Protocol::V1, "pusher", id);
            let t = Instant::now();
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
            let answered = Instant::now();
            latency.push(answered - t);
            // Every connection's poke (with none: the poke function's run over the
            // push's record), before the next push, so that none coalesce.
            let want_posts = posts_before + id as usize * n;
            let want_handled = handled_before + id;
            let limit = answered + Duration::from_secs(30);
            while standin.total_posts() < want_posts
                || mapping.handled.load(Ordering::Relaxed) < want_handled
            {
                assert!(Instant::now() < limit, "pokes missing after 30 s");
                tokio::time::sleep(Duration::from_micros(200)).await;
            }
            delivered.push(answered.elapsed());
        }
        let posts = standin.total_posts() - posts_before;
        assert_eq!(
            posts as u64,
            pushes * n as u64,
            "every connection poked once per push"
        );
        let per_push = |counter: &RequestCounter| {
            counter
                .snapshot()
                .iter()
                .map(|(op, k)| format!("{op} {:.0}", *k as f64 / pushes as f64))
                .collect::<Vec<_>>()
                .join(", ")
        };
        table.row(vec![
            "Lambda path: push, then the stream to the poke function".to_owned(),
            n.to_string(),
            ms(latency.p50()),
            ms(latency.p99()),
            format!("{} / {}", ms(delivered.p50()), ms(delivered.p99())),
            format!(
                "push: {}; poke function: {}, PostToConnection {n}",
                per_push(&push_counter),
                per_push(&poke_counter)
            ),
        ]);
    }
}

#[tokio::main]
async fn main() {
    let bin = PathBuf::from(arg(
        "--local-server",
        "target/release/local-server".to_owned(),
    ));
    let pushes: u64 = arg("--pushes", 30);
    let poll = Duration::from_millis(arg("--stream-poll-ms", 250));
    let out = arg("--out", String::new());
    let command = benchmarks::report::command();
    let mut table = Table::new(&[
        "path",
        "connections in the space",
        "push p50 (ms)",
        "push p99 (ms)",
        "all pokes delivered, p50 / p99 (ms)",
        "requests per push",
    ]);
    let machine = machine();
    local_server_rows(&bin, pushes, &mut table).await;
    lambda_rows(pushes, poll, &mut table).await;
    let mut section = Section::new(&command);
    section.para(&format!(
        "Machine: {machine}. {pushes} sequential pushes of one increment per row, one client. \
         Pokes delivered: local server, from sending the push; Lambda path, from the push's \
         answer (its commit is done by then) until every connection has its poke, through \
         the table's stream (moto), read by an emulation of Lambda's event source mapping \
         polling every {} ms while idle (Lambda's documented base rate is 4 polls a second), \
         and the poke function's handler; with no connection, until that handler has run.",
        poll.as_millis()
    ));
    section.table(&table);
    section.write((!out.is_empty()).then_some(out.as_str()));
}
