//! Push latency with 0, 100 and 1,000 poke connections in the space.
//!
//!   poke-latency [--local-server target/release/local-server] [--pushes 30] [--out pokes.md]
//!
//! - Local server: real WebSocket connections to `/api/replicache/poke?spaceID=`, pushes
//!   over HTTP; measured: the push's HTTP round trip, and the time from sending the push
//!   until every connection has received its `poke` frame.
//! - Lambda path: the push function's code in process (`SyncService` with the DynamoDB
//!   store and `poker::ApiGatewayPoker`), connection records in moto
//!   (`connections::ConnectionTable`), PostToConnection to the Management API stand-in.
//!   The push answers after its fan-out, so its latency includes the pokes.

use apigw_management_standin::Standin;
use aws_sdk_apigatewaymanagement::config::{BehaviorVersion, Credentials, Region};
use benchmarks::http::Connection;
use benchmarks::report::{Section, Table, arg, machine};
use benchmarks::servers;
use benchmarks::stats::{Samples, ms};
use benchmarks::wire::{self, Protocol};
use futures::StreamExt as _;
use lambda_handlers::connections::ConnectionTable;
use lambda_handlers::poker::ApiGatewayPoker;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use store_dynamodb::{DynamoStore, RequestCounter};
use sync_core::api::ApiRequest;
use sync_core::mutators::app;
use sync_core::{SpaceId, Store, SyncService};
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

async fn lambda_rows(pushes: u64, table: &mut Table) {
    let dynamo = LocalDynamo::start().await;
    let counter = RequestCounter::new();
    let client = store_dynamodb::local_client_with_counter(dynamo.endpoint(), &counter).await;
    let table_name = dynamo.fresh_table(&client, "pokes").await;
    let standin = Standin::start().await.expect("start the stand-in");
    let store: Arc<dyn Store> = Arc::new(DynamoStore::new(client.clone(), table_name.clone()));
    let connections = ConnectionTable::new(client, table_name);
    let poker = Arc::new(ApiGatewayPoker::new(
        connections.clone(),
        management_client(&standin.endpoint()),
    ));
    let svc = SyncService::new(store.clone(), Arc::new(app::registry()), poker);
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
        let mut latency = Samples::new();
        counter.reset();
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
            latency.push(t.elapsed());
        }
        let posts = standin.total_posts() - posts_before;
        assert_eq!(
            posts as u64,
            pushes * n as u64,
            "every connection poked once per push"
        );
        let requests = counter.snapshot();
        let per_push = requests
            .iter()
            .map(|(op, k)| format!("{op} {:.0}", *k as f64 / pushes as f64))
            .collect::<Vec<_>>()
            .join(", ");
        table.row(vec![
            "Lambda path (moto + Management API stand-in)".to_owned(),
            n.to_string(),
            ms(latency.p50()),
            ms(latency.p99()),
            "included in the push".to_owned(),
            format!("{per_push}; PostToConnection {n}"),
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
    lambda_rows(pushes, &mut table).await;
    let mut section = Section::new(&command);
    section.para(&format!(
        "Machine: {machine}. {pushes} sequential pushes of one increment per row, one client."
    ));
    section.table(&table);
    section.write((!out.is_empty()).then_some(out.as_str()));
}
