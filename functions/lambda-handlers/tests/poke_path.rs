//! The Lambda poke path end to end, locally: WebSocket `$connect`/`$disconnect` events of
//! the real shape, connection records in a real DynamoDB-compatible server (moto), the
//! poke function's handler fed DynamoDB stream events of the documented shape, and
//! PostToConnection against the Management API stand-in (which answers 410 for closed
//! connections, as API Gateway does), behind a front that fails chosen connections.

use apigw_management_standin::Standin;
use aws_sdk_apigatewaymanagement::config::retry::RetryConfig;
use aws_sdk_apigatewaymanagement::config::{BehaviorVersion, Credentials, Region};
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures::StreamExt as _;
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::rt::TokioExecutor;
use lambda_handlers::connections::ConnectionTable;
use lambda_handlers::functions::{self, Function, Ready};
use lambda_handlers::poke_stream::{self, BatchSummary};
use lambda_handlers::poker::{ApiGatewayPoker, FanOut};
use lambda_handlers::websocket::WebSocketRoutes;
use lambda_handlers::{HttpFunction, config};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::{http_event, space_item_change, stream_event, stream_record, ws_event};
use sync_core::api::ApiRequest;
use sync_core::mutators::app;
use sync_core::poke::NoPoker;
use sync_core::{SpaceId, Store, SyncService};
use test_support::LocalDynamo;

// Shared with the template tests, of which this binary uses only the event builders.
#[allow(dead_code)]
mod support;

fn management_client(endpoint: &str) -> aws_sdk_apigatewaymanagement::Client {
    let config = aws_sdk_apigatewaymanagement::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "stand-in"))
        .endpoint_url(endpoint)
        // The SDK retries a 500 as in production, only sooner.
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(2)
                .with_initial_backoff(Duration::from_millis(5)),
        )
        .build();
    aws_sdk_apigatewaymanagement::Client::from_conf(config)
}

/// A Management API in front of the stand-in: PostToConnection to a connection named in
/// `failing` is answered 500 (InternalServerErrorException) and counted; every other
/// request goes on to the stand-in unchanged.
struct FailingFront {
    endpoint: String,
    failing: Arc<Mutex<BTreeSet<String>>>,
    failed_posts: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Clone)]
struct FrontState {
    standin: String,
    failing: Arc<Mutex<BTreeSet<String>>>,
    failed_posts: Arc<Mutex<Vec<String>>>,
    client: HttpClient<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
}

impl FailingFront {
    async fn start(standin: &Standin) -> FailingFront {
        let failing = Arc::new(Mutex::new(BTreeSet::new()));
        let failed_posts = Arc::new(Mutex::new(Vec::new()));
        let state = FrontState {
            standin: standin.endpoint(),
            failing: failing.clone(),
            failed_posts: failed_posts.clone(),
            client: HttpClient::builder(TokioExecutor::new()).build_http(),
        };
        let app = axum::Router::new().fallback(front).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        FailingFront {
            endpoint,
            failing,
            failed_posts,
            task,
        }
    }

    fn fail(&self, connection_id: &str) {
        self.failing
            .lock()
            .unwrap()
            .insert(connection_id.to_owned());
    }

    fn failed_posts(&self, connection_id: &str) -> usize {
        let posts = self.failed_posts.lock().unwrap();
        posts.iter().filter(|id| *id == connection_id).count()
    }
}

impl Drop for FailingFront {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn front(State(state): State<FrontState>, request: Request) -> Response {
    let path = request.uri().path().to_owned();
    let connection = path.strip_prefix("/@connections/").map(str::to_owned);
    if let Some(id) = connection
        && request.method() == "POST"
        && state.failing.lock().unwrap().contains(&id)
    {
        state.failed_posts.lock().unwrap().push(id);
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            [
                ("x-amzn-errortype", "InternalServerErrorException"),
                ("content-type", "application/json"),
            ],
            r#"{"message":"Internal server error"}"#,
        )
            .into_response();
    }
    let (parts, body) = request.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    let mut forwarded = hyper::Request::builder()
        .method(parts.method)
        .uri(format!("{}{}", state.standin, parts.uri))
        .body(Full::new(body))
        .unwrap();
    *forwarded.headers_mut() = parts.headers;
    let answer = state.client.request(forwarded).await.unwrap();
    let (parts, body) = answer.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Response::from_parts(parts, Body::from(body))
}

struct World {
    _dynamo: LocalDynamo,
    standin: Standin,
    front: FailingFront,
    store: Arc<dyn Store>,
    table: String,
    connections: ConnectionTable,
    routes: WebSocketRoutes,
    poker: Arc<ApiGatewayPoker>,
}

async fn world() -> World {
    let dynamo = LocalDynamo::start().await;
    let client = dynamo.client().await;
    let table = dynamo.fresh_table(&client, "pokes").await;
    let standin = Standin::start().await.expect("stand-in");
    let front = FailingFront::start(&standin).await;
    let store: Arc<dyn Store> = Arc::new(store_dynamodb::DynamoStore::new(
        client.clone(),
        table.clone(),
    ));
    let connections = ConnectionTable::new(client, table.clone());
    let poker = Arc::new(ApiGatewayPoker::new(
        connections.clone(),
        management_client(&front.endpoint),
    ));
    let service = Arc::new(SyncService::new(
        store.clone(),
        Arc::new(app::registry()),
        Arc::new(NoPoker),
    ));
    World {
        routes: WebSocketRoutes::new(service, connections.clone()),
        _dynamo: dynamo,
        standin,
        front,
        store,
        table,
        connections,
        poker,
    }
}

impl World {
    /// A new space with `open` connections, which the stand-in serves, and `gone` ones,
    /// which it answers 410 for.
    async fn space_with(&self, open: &[&str], gone: &[&str]) -> SpaceId {
        let space = SpaceId::generate();
        assert!(self.store.create_space(&space).await.unwrap());
        for id in open {
            self.connections.add(&space, id).await.unwrap();
            self.standin.open(id);
        }
        for id in gone {
            self.connections.add(&space, id).await.unwrap();
        }
        space
    }

    fn change(&self, space: &SpaceId, sequence: &str) -> serde_json::Value {
        space_item_change(&self.table, space.as_str(), sequence)
    }
}

fn failed_records(
    response: &aws_lambda_events::event::streams::DynamoDbEventResponse,
) -> Vec<&str> {
    response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_deref().expect("an item identifier"))
        .collect()
}

async fn push_increment(svc: &SyncService, space: &SpaceId, client: &str, id: u64) -> u16 {
    let body = json!({"pushVersion":1,"clientGroupID":format!("g-{client}"),"mutations":
        [{"clientID":client,"id":id,"name":"increment","args":1,"timestamp":1.0}]})
    .to_string();
    svc.handle(ApiRequest {
        method: "POST",
        path: "/api/replicache/push",
        space_id: Some(space.as_str()),
        body: body.as_bytes(),
        accepts_gzip: false,
        user: "",
    })
    .await
    .status
}

#[tokio::test]
async fn connect_poke_gone_and_disconnect() {
    let w = world().await;
    let space = SpaceId::generate();
    assert!(w.store.create_space(&space).await.unwrap());

    // Refusals: missing, invalid and unknown spaces.
    assert_eq!(
        w.routes
            .connect(&ws_event("$connect", "c0", None))
            .await
            .status_code,
        400
    );
    assert_eq!(
        w.routes
            .connect(&ws_event("$connect", "c0", Some("../x")))
            .await
            .status_code,
        400
    );
    assert_eq!(
        w.routes
            .connect(&ws_event("$connect", "c0", Some("unknown")))
            .await
            .status_code,
        404
    );
    assert!(w.connections.list(&space).await.unwrap().is_empty());

    for id in ["live=", "dead="] {
        let resp = w
            .routes
            .connect(&ws_event("$connect", id, Some(space.as_str())))
            .await;
        assert_eq!(resp.status_code, 200);
    }
    let mut listed = w.connections.list(&space).await.unwrap();
    listed.sort();
    assert_eq!(listed, ["dead=", "live="]);
    w.standin.open("live=");

    // A committed push answers without poking anybody; the stream's record of its commit
    // (a modification of the space item) pokes, after the commit: a pull made on receipt
    // sees the change.
    let svc = SyncService::new(
        w.store.clone(),
        Arc::new(app::registry()),
        Arc::new(NoPoker),
    );
    assert_eq!(push_increment(&svc, &space, "c1", 1).await, 200);
    assert_eq!(w.standin.total_posts(), 0);
    assert_eq!(w.store.space_version(&space).await.unwrap(), Some(1));
    let response = poke_stream::handle(&w.poker, &stream_event(vec![w.change(&space, "10")]))
        .await
        .unwrap();
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(w.standin.messages("live="), vec![b"poke".to_vec()]);
    // The dead connection answered 410 and is gone from the table.
    assert_eq!(w.standin.posts("dead="), 1);
    assert_eq!(w.connections.list(&space).await.unwrap(), ["live="]);

    // A push of duplicates commits nothing: the space item is unchanged, so its stream
    // has nothing to poke with.
    assert_eq!(push_increment(&svc, &space, "c1", 1).await, 200);
    assert_eq!(w.store.space_version(&space).await.unwrap(), Some(1));

    assert_eq!(
        w.routes
            .disconnect(&ws_event("$disconnect", "live=", None))
            .await
            .status_code,
        200
    );
    assert!(w.connections.list(&space).await.unwrap().is_empty());
    // A disconnect for a connection we never stored is harmless.
    assert_eq!(
        w.routes
            .disconnect(&ws_event("$disconnect", "never", None))
            .await
            .status_code,
        200
    );
}

#[tokio::test]
async fn fan_out_reaches_every_connection_and_only_its_space() {
    let w = world().await;
    let space = SpaceId::generate();
    let other = SpaceId::generate();
    for s in [&space, &other] {
        w.store.create_space(s).await.unwrap();
    }
    for i in 0..150 {
        let id = format!("conn-{i}");
        w.connections.add(&space, &id).await.unwrap();
        if i % 3 != 0 {
            w.standin.open(&id);
        }
    }
    w.connections.add(&other, "elsewhere").await.unwrap();
    w.standin.open("elsewhere");
    let summary = w.poker.fan_out(&space).await.unwrap();
    assert_eq!(
        summary,
        FanOut {
            delivered: 100,
            gone: 50,
            failed: 0
        }
    );
    assert_eq!(w.connections.list(&space).await.unwrap().len(), 100);
    assert_eq!(w.standin.posts("elsewhere"), 0);
    assert_eq!(w.standin.total_posts(), 150);
}

#[tokio::test]
async fn a_batch_pokes_each_space_once_and_reports_the_spaces_not_poked() {
    let w = world().await;
    let a = w.space_with(&["a-open"], &["a-gone"]).await;
    let b = w.space_with(&["b-1", "b-2"], &[]).await;
    let c = w.space_with(&["c-open", "c-failing"], &[]).await;
    w.front.fail("c-failing");
    let quiet = w.space_with(&[], &[]).await;
    // Several records of a space (one per commit), a space without connections, and
    // records the function skips: a new space (INSERT), an entry, a connection's record.
    let event = stream_event(vec![
        w.change(&a, "101"),
        w.change(&b, "102"),
        w.change(&a, "103"),
        w.change(&c, "104"),
        stream_record(&w.table, "INSERT", &format!("space#{a}"), "meta", "105"),
        stream_record(&w.table, "MODIFY", &format!("space#{b}"), "e#count", "106"),
        stream_record(&w.table, "MODIFY", "conn#a-open", "meta", "107"),
        w.change(&b, "108"),
        w.change(&c, "109"),
        w.change(&quiet, "110"),
    ]);
    let (response, summary) = poke_stream::handle_with_summary(&w.poker, &event)
        .await
        .unwrap();
    // One poke per connection, whatever the number of records of its space.
    for id in ["a-open", "b-1", "b-2", "c-open"] {
        assert_eq!(w.standin.messages(id), [b"poke".to_vec()], "{id}");
    }
    // The gone connection is removed; the failing one stays (it may come back).
    assert_eq!(w.standin.posts("a-gone"), 1);
    assert_eq!(w.connections.list(&a).await.unwrap(), ["a-open"]);
    assert!(w.front.failed_posts("c-failing") >= 1);
    let mut listed = w.connections.list(&c).await.unwrap();
    listed.sort();
    assert_eq!(listed, ["c-failing", "c-open"]);
    // Only the records of the space not poked completely are reported: the stream
    // delivers them again.
    assert_eq!(failed_records(&response), ["104", "109"]);
    assert_eq!(
        summary,
        BatchSummary {
            records: 10,
            skipped: 3,
            spaces: 4,
            delivered: 4,
            gone: 1,
            failed_posts: 1,
            unlisted_spaces: 0,
        }
    );
    // As Lambda answers the function: the JSON of ReportBatchItemFailures.
    assert_eq!(
        serde_json::to_value(&response).unwrap(),
        json!({"batchItemFailures": [{"itemIdentifier": "104"}, {"itemIdentifier": "109"}]})
    );

    // The retry (from the first failed record on) once the connection works again:
    // everything of the space poked again, nothing reported.
    w.front.failing.lock().unwrap().clear();
    let retry = stream_event(vec![
        w.change(&c, "104"),
        stream_record(&w.table, "INSERT", &format!("space#{a}"), "meta", "105"),
        w.change(&b, "108"),
        w.change(&c, "109"),
    ]);
    let response = poke_stream::handle(&w.poker, &retry).await.unwrap();
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(w.standin.messages("c-failing"), [b"poke".to_vec()]);
    assert_eq!(w.standin.messages("c-open").len(), 2);
    assert_eq!(w.standin.messages("b-1").len(), 2);
}

#[tokio::test]
async fn spaces_whose_connections_cannot_be_listed_are_reported() {
    let w = world().await;
    let a = w.space_with(&["a-open"], &[]).await;
    let b = w.space_with(&["b-open"], &[]).await;
    // A poker whose table does not exist: every Query fails.
    let client = w._dynamo.client().await;
    let broken = ApiGatewayPoker::new(
        ConnectionTable::new(client, format!("{}-missing", w.table)),
        management_client(&w.front.endpoint),
    );
    let event = stream_event(vec![
        w.change(&a, "201"),
        stream_record(
            &w.table,
            "REMOVE",
            &format!("space#{b}"),
            "ws#b-open",
            "202",
        ),
        w.change(&b, "203"),
        w.change(&a, "204"),
    ]);
    let (response, summary) = poke_stream::handle_with_summary(&broken, &event)
        .await
        .unwrap();
    assert_eq!(failed_records(&response), ["201", "203", "204"]);
    assert_eq!(
        (summary.spaces, summary.unlisted_spaces, summary.skipped),
        (2, 2, 1)
    );
    assert_eq!(w.standin.total_posts(), 0);
    // A failed record without a sequence number cannot be reported: the whole batch
    // fails (Lambda splits and retries it).
    let mut record = w.change(&a, "205");
    record["dynamodb"]
        .as_object_mut()
        .unwrap()
        .remove("SequenceNumber");
    let error = poke_stream::handle(&broken, &stream_event(vec![record]))
        .await
        .expect_err("an unreportable failure");
    assert_eq!(error.space, a);
    // An empty batch pokes nobody.
    let response = poke_stream::handle(&w.poker, &stream_event(vec![]))
        .await
        .unwrap();
    assert!(response.batch_item_failures.is_empty());
}

/// The push function as its binary builds it (`functions::start`), on `table`.
async fn push_function(w: &World) -> HttpFunction {
    let env = [
        (config::TABLE_NAME, w.table.as_str()),
        (config::DYNAMODB_ENDPOINT, w._dynamo.endpoint()),
        (config::AUTH_MODE, "none"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let (ready, _) = config::scoped(env, functions::start(Function::Push, |_| {})).await;
    match ready.expect("the push function's cold start") {
        Ready::Http(function) => function,
        _ => panic!("the push function serves HTTP"),
    }
}

fn push_body(client: &str, id: u64) -> String {
    json!({"pushVersion":1,"clientGroupID":format!("g-{client}"),"mutations":
        [{"clientID":client,"id":id,"name":"increment","args":1,"timestamp":1.0}]})
    .to_string()
}

#[tokio::test]
async fn a_push_answers_without_posting_to_any_of_its_thousand_connections() {
    let w = world().await;
    let space = w.space_with(&[], &[]).await;
    futures::stream::iter(0..1_000)
        .for_each_concurrent(16, |i| {
            let (w, space) = (&w, &space);
            async move {
                let id = format!("k{i}");
                w.connections.add(space, &id).await.unwrap();
                w.standin.open(&id);
            }
        })
        .await;
    let push = push_function(&w).await;
    let answer = push
        .handle(http_event(
            "/api/replicache/push",
            Some(space.as_str()),
            &push_body("c1", 1),
        ))
        .await;
    assert_eq!(answer.status(), 200);
    // Committed, and not one PostToConnection: no connection is on the push's path.
    assert_eq!(w.store.space_version(&space).await.unwrap(), Some(1));
    assert_eq!(w.standin.total_posts(), 0);
    // The commit's record pokes all of them, from the poke function.
    let (response, summary) =
        poke_stream::handle_with_summary(&w.poker, &stream_event(vec![w.change(&space, "1")]))
            .await
            .unwrap();
    assert!(response.batch_item_failures.is_empty());
    assert_eq!((summary.delivered, summary.failed_posts), (1_000, 0));
    assert_eq!(w.standin.total_posts(), 1_000);
}

/// The table's stream in moto, turned on as the template declares it (KEYS_ONLY) and read
/// as Lambda's event source mapping reads it: the shard's records (GetShardIterator,
/// GetRecords) as the records of a Lambda event, those the template's filter lets through.
struct TableStream {
    client: aws_sdk_dynamodbstreams::Client,
    arn: String,
}

impl TableStream {
    async fn enable(dynamo: &LocalDynamo, table: &str) -> TableStream {
        use aws_sdk_dynamodb::types::{StreamSpecification, StreamViewType};
        let client = dynamo.client().await;
        client
            .update_table()
            .table_name(table)
            .stream_specification(
                StreamSpecification::builder()
                    .stream_enabled(true)
                    .stream_view_type(StreamViewType::from(poke_stream::STREAM_VIEW_TYPE))
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .expect("turn on the table's stream");
        let arn = client
            .describe_table()
            .table_name(table)
            .send()
            .await
            .unwrap()
            .table()
            .and_then(|t| t.latest_stream_arn())
            .expect("the table's stream")
            .to_owned();
        let config = aws_sdk_dynamodbstreams::Config::builder()
            .behavior_version(aws_sdk_dynamodbstreams::config::BehaviorVersion::latest())
            .region(aws_sdk_dynamodbstreams::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_dynamodbstreams::config::Credentials::new(
                "test", "test", None, None, "moto",
            ))
            .endpoint_url(dynamo.endpoint())
            .build();
        TableStream {
            client: aws_sdk_dynamodbstreams::Client::from_conf(config),
            arn,
        }
    }

    /// The records from sequence number `at` on (where Lambda resumes after a reported
    /// failure), or from the shard's start.
    async fn records(&self, at: Option<&str>) -> Vec<Value> {
        use aws_sdk_dynamodbstreams::types::ShardIteratorType;
        let shard = self
            .client
            .describe_stream()
            .stream_arn(&self.arn)
            .send()
            .await
            .unwrap()
            .stream_description()
            .and_then(|d| d.shards().first())
            .and_then(|s| s.shard_id())
            .expect("a shard")
            .to_owned();
        let request = self
            .client
            .get_shard_iterator()
            .stream_arn(&self.arn)
            .shard_id(shard);
        let request = match at {
            Some(sequence) => request
                .shard_iterator_type(ShardIteratorType::AtSequenceNumber)
                .sequence_number(sequence),
            None => request.shard_iterator_type(ShardIteratorType::TrimHorizon),
        };
        let mut iterator = request
            .send()
            .await
            .unwrap()
            .shard_iterator()
            .map(str::to_owned);
        let pattern: Value = serde_json::from_str(poke_stream::FILTER_PATTERN).unwrap();
        let mut records = Vec::new();
        while let Some(it) = iterator {
            let page = self
                .client
                .get_records()
                .shard_iterator(it)
                .send()
                .await
                .unwrap();
            if page.records().is_empty() {
                break;
            }
            records.extend(
                page.records()
                    .iter()
                    .map(|r| self.event_record(r))
                    .filter(|r| poke_stream::matches_filter(&pattern, r)),
            );
            iterator = page.next_shard_iterator().map(str::to_owned);
        }
        records
    }

    /// A record of the DynamoDB Streams API as Lambda puts it into a function's event.
    fn event_record(&self, record: &aws_sdk_dynamodbstreams::types::Record) -> Value {
        use aws_sdk_dynamodbstreams::types::AttributeValue;
        let change = record.dynamodb().expect("the change");
        let keys: serde_json::Map<String, Value> = change
            .keys()
            .into_iter()
            .flatten()
            .map(|(name, value)| match value {
                AttributeValue::S(s) => (name.clone(), json!({ "S": s })),
                other => panic!("key {name}: {other:?}: the table's keys are strings"),
            })
            .collect();
        json!({
            "eventID": record.event_id(),
            "eventName": record.event_name().map(|n| n.as_str()),
            "eventVersion": record.event_version(),
            "eventSource": record.event_source(),
            "awsRegion": record.aws_region(),
            "dynamodb": {
                "ApproximateCreationDateTime":
                    change.approximate_creation_date_time().map(|t| t.secs()),
                "Keys": keys,
                "SequenceNumber": change.sequence_number(),
                "SizeBytes": change.size_bytes(),
                "StreamViewType": change.stream_view_type().map(|t| t.as_str()),
            },
            "eventSourceARN": self.arn,
        })
    }
}

#[tokio::test]
async fn a_committed_push_whose_poke_failed_is_poked_when_the_stream_delivers_it_again() {
    let w = world().await;
    let stream = TableStream::enable(&w._dynamo, &w.table).await;
    let space = w.space_with(&["steady", "flaky"], &[]).await;
    w.front.fail("flaky");
    let push = push_function(&w).await;
    let answer = push
        .handle(http_event(
            "/api/replicache/push",
            Some(space.as_str()),
            &push_body("c1", 1),
        ))
        .await;
    assert_eq!(answer.status(), 200);
    assert_eq!(w.standin.total_posts(), 0);

    // What the mapping hands over: the space item's changes only (its creation and the
    // commit), not the entry, the client or the connections the same writes made.
    let records = stream.records(None).await;
    let names: Vec<&str> = records
        .iter()
        .map(|r| r["eventName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["INSERT", "MODIFY"], "{records:#?}");
    let commit = records[1]["dynamodb"]["SequenceNumber"]
        .as_str()
        .unwrap()
        .to_owned();

    // A post failing otherwise than 410 (500, after the SDK's retry): the commit's record
    // is reported by its sequence number; the other connection has its poke.
    let (response, summary) = poke_stream::handle_with_summary(&w.poker, &stream_event(records))
        .await
        .unwrap();
    assert_eq!(failed_records(&response), [commit.as_str()]);
    assert_eq!(
        (summary.skipped, summary.delivered, summary.failed_posts),
        (1, 1, 1)
    );
    assert_eq!(w.standin.messages("steady").len(), 1);
    assert!(w.standin.messages("flaky").is_empty());
    assert!(w.front.failed_posts("flaky") >= 1);

    // Lambda resumes the shard at the lowest sequence number reported: the commit's
    // record comes again, and this time every connection has its poke.
    w.front.failing.lock().unwrap().clear();
    let again = stream.records(Some(&commit)).await;
    assert_eq!(again.len(), 1, "{again:#?}");
    assert_eq!(again[0]["dynamodb"]["SequenceNumber"], commit.as_str());
    let response = poke_stream::handle(&w.poker, &stream_event(again))
        .await
        .unwrap();
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(w.standin.messages("flaky"), [b"poke".to_vec()]);
    assert_eq!(w.standin.messages("steady").len(), 2);
}
