//! The Lambda poke path end to end, locally: WebSocket `$connect`/`$disconnect` events of
//! the real shape, connection records in a real DynamoDB-compatible server (moto), and
//! PostToConnection against the Management API stand-in (which answers 410 for closed
//! connections, as API Gateway does).

use apigw_management_standin::Standin;
use aws_sdk_apigatewaymanagement::config::{BehaviorVersion, Credentials, Region};
use lambda_handlers::connections::ConnectionTable;
use lambda_handlers::poker::{ApiGatewayPoker, FanOut};
use lambda_handlers::websocket::{WebSocketRoutes, keep_alive};
use serde_json::json;
use std::sync::Arc;
use support::ws_event;
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
        .build();
    aws_sdk_apigatewaymanagement::Client::from_conf(config)
}

struct World {
    _dynamo: LocalDynamo,
    standin: Standin,
    store: Arc<dyn Store>,
    connections: ConnectionTable,
    routes: WebSocketRoutes,
    poker: Arc<ApiGatewayPoker>,
}

async fn world() -> World {
    let dynamo = LocalDynamo::start().await;
    let client = dynamo.client().await;
    let table = dynamo.fresh_table(&client, "pokes").await;
    let standin = Standin::start().await.expect("stand-in");
    let store: Arc<dyn Store> = Arc::new(store_dynamodb::DynamoStore::new(
        client.clone(),
        table.clone(),
    ));
    let connections = ConnectionTable::new(client, table);
    let poker = Arc::new(ApiGatewayPoker::new(
        connections.clone(),
        management_client(&standin.endpoint()),
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
        store,
        connections,
        poker,
    }
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

    // A committed push pokes after the commit: a pull made on receipt sees the change.
    let svc = SyncService::new(w.store.clone(), Arc::new(app::registry()), w.poker.clone());
    assert_eq!(push_increment(&svc, &space, "c1", 1).await, 200);
    assert_eq!(w.standin.messages("live="), vec![b"poke".to_vec()]);
    assert_eq!(w.store.space_version(&space).await.unwrap(), Some(1));
    // The dead connection answered 410 and is gone from the table.
    assert_eq!(w.standin.posts("dead="), 1);
    assert_eq!(w.connections.list(&space).await.unwrap(), ["live="]);

    // A push of duplicates commits nothing and pokes nobody.
    assert_eq!(push_increment(&svc, &space, "c1", 1).await, 200);
    assert_eq!(w.standin.messages("live=").len(), 1);

    assert_eq!(
        keep_alive(&ws_event("$default", "live=", None)).status_code,
        200
    );
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
    let summary = w.poker.fan_out(&space).await;
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
