//! Who may sync what, through the Lambda handlers as deployed with `AuthMode` jwt: API
//! Gateway HTTP API (payload 2.0) events carrying the JWT authorizer's verified claims
//! (`requestContext.authorizer.jwt.claims.sub`) for users alice (A), bob (B) and carol
//! (C), and WebSocket `$connect` events carrying the Lambda authorizer's context
//! (`requestContext.authorizer.user`), on DynamoDB (moto).
//!
//! A stranger cannot push into a space, pull it, change its members, open a poke socket
//! on it or learn it exists: every answer is the one an unknown space gets. A member uses
//! the space but cannot push or pull as another user's client group, nor change who has
//! access. Every refusal leaves the space, its access, its client groups and its
//! connections as they were.

use lambda_handlers::auth::AuthMode;
use lambda_handlers::connections::ConnectionTable;
use lambda_handlers::websocket::WebSocketRoutes;
use lambda_handlers::{HttpFunction, bootstrap};
use serde_json::{Value, json};
use std::sync::Arc;
use support::{http_event, http_event_as, ws_connect_as, ws_event};
use sync_core::cookie::CookieKeys;
use sync_core::poke::NoPoker;
use sync_core::store::PushSnapshot;
use sync_core::{Route, SpaceId, Store};
use test_support::LocalDynamo;

// Shared with the template tests, of which this binary uses only the event builders.
#[allow(dead_code)]
mod support;

const A: &str = "alice";
const B: &str = "bob";
const C: &str = "carol";

struct Deployment {
    _dynamo: LocalDynamo,
    store: Arc<dyn Store>,
    connections: ConnectionTable,
    spaces: HttpFunction,
    push: HttpFunction,
    pull: HttpFunction,
    connect: WebSocketRoutes,
}

/// The functions wired as their `main`s wire them with `AUTH_MODE=jwt`.
async fn deployment(max_sockets: usize) -> Deployment {
    let dynamo = LocalDynamo::start().await;
    let client = dynamo.client().await;
    let table = dynamo.fresh_table(&client, "cross-user").await;
    let jwt = AuthMode::Jwt;
    let spaces = HttpFunction::new(
        bootstrap::sync_service(client.clone(), table.clone(), Arc::new(NoPoker), jwt),
        &[Route::CreateSpace, Route::SpaceExists, Route::SpaceAccess],
    )
    .with_auth(jwt);
    let push = HttpFunction::new(
        bootstrap::sync_service(client.clone(), table.clone(), Arc::new(NoPoker), jwt),
        &[Route::Push],
    )
    .with_auth(jwt);
    let keys = CookieKeys::from_secret_text(&CookieKeys::generate_secret_text()).unwrap();
    let pull = HttpFunction::new(
        bootstrap::pull_service(client.clone(), table.clone(), keys, jwt),
        &[Route::Pull],
    )
    .with_auth(jwt);
    let connections = ConnectionTable::new(client.clone(), table.clone());
    let connect = WebSocketRoutes::new(
        bootstrap::sync_service(client.clone(), table.clone(), Arc::new(NoPoker), jwt),
        connections.clone(),
    )
    .with_auth(jwt)
    .with_max_sockets_per_space(max_sockets);
    Deployment {
        store: Arc::new(store_dynamodb::DynamoStore::new(client, table)),
        _dynamo: dynamo,
        connections,
        spaces,
        push,
        pull,
        connect,
    }
}

/// An answer: status and JSON body.
type Answer = (u16, Value);

async fn call(
    f: &HttpFunction,
    user: &str,
    route: &str,
    space: Option<&str>,
    body: Value,
) -> Answer {
    let path = format!("/api/replicache/{route}");
    let resp = f
        .handle(http_event_as(Some(user), &path, space, &body.to_string()))
        .await;
    let bytes: &[u8] = resp.body().as_ref();
    (
        resp.status().as_u16(),
        serde_json::from_slice(bytes).expect("a JSON body"),
    )
}

fn push_body(group: &str, client: &str, id: u64) -> Value {
    json!({"pushVersion": 1, "clientGroupID": group, "profileID": "p", "schemaVersion": "",
        "mutations": [{"clientID": client, "id": id, "name": "increment", "args": 1,
                       "timestamp": 1.0}]})
}

fn pull_body(group: &str) -> Value {
    json!({"pullVersion": 1, "clientGroupID": group, "profileID": "p", "schemaVersion": "",
        "cookie": null})
}

impl Deployment {
    async fn create(&self, user: &str, body: Value) -> SpaceId {
        let (status, answer) = call(&self.spaces, user, "createSpace", None, body).await;
        assert_eq!(status, 200, "{answer}");
        SpaceId::parse(answer["spaceID"].as_str().unwrap()).unwrap()
    }

    async fn push(
        &self,
        user: &str,
        space: &SpaceId,
        group: &str,
        client: &str,
        id: u64,
    ) -> Answer {
        call(
            &self.push,
            user,
            "push",
            Some(space.as_str()),
            push_body(group, client, id),
        )
        .await
    }

    async fn pull(&self, user: &str, space: &SpaceId, group: &str) -> Answer {
        call(
            &self.pull,
            user,
            "pull",
            Some(space.as_str()),
            pull_body(group),
        )
        .await
    }

    async fn access(&self, user: &str, space: &SpaceId, body: Value) -> Answer {
        call(
            &self.spaces,
            user,
            "spaceAccess",
            Some(space.as_str()),
            body,
        )
        .await
    }

    async fn exists(&self, user: &str, space: &SpaceId) -> Answer {
        call(
            &self.spaces,
            user,
            "spaceExists",
            None,
            json!({"spaceID": space.as_str()}),
        )
        .await
    }

    async fn connect(&self, user: &str, space: &SpaceId, connection: &str) -> Answer {
        let resp = self
            .connect
            .connect(&ws_connect_as(user, connection, Some(space.as_str())))
            .await;
        let body = match &resp.body {
            Some(lambda_http::aws_lambda_events::encodings::Body::Text(t)) => {
                serde_json::from_str(t).unwrap()
            }
            other => panic!("a text body, not {other:?}"),
        };
        (u16::try_from(resp.status_code).unwrap(), body)
    }

    /// Everything a refusal must leave as it was: the space's version, access and
    /// entries, the client groups and clients in play, and the poke connections.
    async fn state(&self, space: &SpaceId) -> State {
        let clients: Vec<String> = ["a1", "b1", "c1"].map(str::to_owned).into();
        let mut groups = Vec::new();
        for group in ["gA", "gB", "gC"] {
            groups.push(
                self.store
                    .push_snapshot(space, group, &clients)
                    .await
                    .unwrap(),
            );
        }
        let mut connections = self.connections.list(space).await.unwrap();
        connections.sort();
        State {
            version: self.store.space_version(space).await.unwrap(),
            entries: self.store.scan_entries(space, "", 1000).await.unwrap(),
            groups,
            connections,
        }
    }
}

#[derive(Debug, PartialEq)]
struct State {
    version: Option<u64>,
    entries: Vec<(String, Value)>,
    /// The version, access, clients and group owner, per group.
    groups: Vec<Option<PushSnapshot>>,
    connections: Vec<String>,
}

fn count_of(pulled: &Value) -> Option<i64> {
    pulled["patch"]
        .as_array()?
        .iter()
        .find(|op| op["key"] == "count")
        .and_then(|op| op["value"].as_i64())
}

#[tokio::test]
async fn strangers_learn_nothing_members_sync_and_groups_stay_their_owners() {
    let d = deployment(100).await;

    // A creates a space (members-only: signed in, the default), pushes, connects.
    let s = d.create(A, json!({})).await;
    assert_eq!(d.push(A, &s, "gA", "a1", 1).await, (200, json!({})));
    let (status, pulled) = d.pull(A, &s, "gA").await;
    assert_eq!((status, count_of(&pulled)), (200, Some(1)), "{pulled}");
    assert_eq!(d.connect(A, &s, "conn-a").await, (200, json!({})));
    assert_eq!(
        d.connections.user_of("conn-a").await.unwrap().as_deref(),
        Some(A)
    );
    let (status, access) = d.access(A, &s, json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(
        access,
        json!({"owner": A, "members": [], "link": "members"})
    );
    assert_eq!(d.exists(A, &s).await, (200, json!({"spaceExists": true})));

    // B, a stranger: every answer is the one an unknown space gets, and nothing changes.
    let unknown = SpaceId::generate();
    let before = d.state(&s).await;
    for (what, on_s, on_unknown) in [
        (
            "push into A's group",
            d.push(B, &s, "gA", "b1", 1).await,
            d.push(B, &unknown, "gA", "b1", 1).await,
        ),
        (
            "push with its own group",
            d.push(B, &s, "gB", "b1", 1).await,
            d.push(B, &unknown, "gB", "b1", 1).await,
        ),
        (
            "pull",
            d.pull(B, &s, "gB").await,
            d.pull(B, &unknown, "gB").await,
        ),
        (
            "pull as A's group",
            d.pull(B, &s, "gA").await,
            d.pull(B, &unknown, "gA").await,
        ),
        (
            "read the members",
            d.access(B, &s, json!({})).await,
            d.access(B, &unknown, json!({})).await,
        ),
        (
            "add itself",
            d.access(B, &s, json!({"add": [B]})).await,
            d.access(B, &unknown, json!({"add": [B]})).await,
        ),
        (
            "open the space to anyone",
            d.access(B, &s, json!({"link": "open"})).await,
            d.access(B, &unknown, json!({"link": "open"})).await,
        ),
        (
            "open a poke socket",
            d.connect(B, &s, "conn-b").await,
            d.connect(B, &unknown, "conn-b").await,
        ),
    ] {
        assert_eq!(on_s.0, 404, "B: {what}: {}", on_s.1);
        assert_eq!(on_s, on_unknown, "B: {what}: differs from an unknown space");
    }
    assert_eq!(d.exists(B, &s).await, (200, json!({"spaceExists": false})));
    assert_eq!(
        d.exists(B, &unknown).await,
        (200, json!({"spaceExists": false}))
    );
    // Choosing A's space's ID for a new space says only that it is taken, as for any
    // taken ID (the chooser could not have it anyway) and creates nothing.
    let (status, _) = call(
        &d.spaces,
        B,
        "createSpace",
        None,
        json!({"spaceID": s.as_str()}),
    )
    .await;
    assert_eq!(status, 409);
    assert_eq!(d.state(&s).await, before, "the stranger changed something");
    assert_eq!(d.connections.user_of("conn-b").await.unwrap(), None);

    // A adds B. B is a member now: it syncs with its own group, and sees A's data.
    let (status, access) = d.access(A, &s, json!({"add": [B]})).await;
    assert_eq!(status, 200, "{access}");
    assert_eq!(access["members"], json!([B]));
    assert_eq!(d.exists(B, &s).await, (200, json!({"spaceExists": true})));
    assert_eq!(d.push(B, &s, "gB", "b1", 1).await, (200, json!({})));
    let (status, pulled) = d.pull(B, &s, "gB").await;
    assert_eq!((status, count_of(&pulled)), (200, Some(2)), "{pulled}");
    assert_eq!(d.connect(B, &s, "conn-b").await, (200, json!({})));
    assert_eq!(
        d.connections.user_of("conn-b").await.unwrap().as_deref(),
        Some(B)
    );
    let (status, read) = d.access(B, &s, json!({})).await;
    assert_eq!((status, read["owner"].clone()), (200, json!(A)));

    // But B may not push or pull as A's client group, nor change who has access.
    let before = d.state(&s).await;
    for (what, answer) in [
        ("push into A's group", d.push(B, &s, "gA", "b1", 2).await),
        (
            "push as A's client into A's group",
            d.push(B, &s, "gA", "a1", 2).await,
        ),
        ("pull as A's group", d.pull(B, &s, "gA").await),
        ("add C", d.access(B, &s, json!({"add": [C]})).await),
        (
            "remove A's members",
            d.access(B, &s, json!({"remove": [B]})).await,
        ),
        (
            "open the space",
            d.access(B, &s, json!({"link": "open"})).await,
        ),
    ] {
        assert_eq!(answer.0, 403, "B (member): {what}: {}", answer.1);
        assert_eq!(answer.1["error"], json!("Forbidden"), "{what}");
    }
    assert_eq!(
        d.state(&s).await,
        before,
        "the member's refusals changed something"
    );
    // A's group is A's still: A's next mutation is applied, not taken for B's.
    assert_eq!(d.push(A, &s, "gA", "a1", 2).await, (200, json!({})));
    let (_, pulled) = d.pull(A, &s, "gA").await;
    assert_eq!(count_of(&pulled), Some(3));
    assert_eq!(pulled["lastMutationIDChanges"], json!({"a1": 2}));

    // C is still a stranger.
    assert_eq!(d.pull(C, &s, "gC").await.0, 404);
    assert_eq!(d.connect(C, &s, "conn-c").await.0, 404);
    assert_eq!(d.exists(C, &s).await.1, json!({"spaceExists": false}));

    // A removes B: B is a stranger again.
    let (status, _) = d.access(A, &s, json!({"remove": [B]})).await;
    assert_eq!(status, 200);
    assert_eq!(d.pull(B, &s, "gB").await.0, 404);
    assert_eq!(d.exists(B, &s).await.1, json!({"spaceExists": false}));
}

#[tokio::test]
async fn anyone_with_the_link_syncs_an_open_space_as_in_the_tutorial() {
    let d = deployment(100).await;
    let open = d.create(A, json!({"link": "open"})).await;
    assert_eq!(d.push(A, &open, "gA", "a1", 1).await, (200, json!({})));
    // C, who is no member, syncs with its own group and opens a poke socket.
    assert_eq!(d.exists(C, &open).await.1, json!({"spaceExists": true}));
    assert_eq!(d.push(C, &open, "gC", "c1", 1).await, (200, json!({})));
    let (status, pulled) = d.pull(C, &open, "gC").await;
    assert_eq!((status, count_of(&pulled)), (200, Some(2)));
    assert_eq!(d.connect(C, &open, "conn-c").await.0, 200);
    // But not as A's group, and it may not change who has access.
    let before = d.state(&open).await;
    assert_eq!(d.push(C, &open, "gA", "c1", 2).await.0, 403);
    assert_eq!(d.pull(C, &open, "gA").await.0, 403);
    assert_eq!(d.access(C, &open, json!({"link": "members"})).await.0, 403);
    assert_eq!(d.state(&open).await, before);
    // Its owner closes it: C is a stranger from then on.
    assert_eq!(d.access(A, &open, json!({"link": "members"})).await.0, 200);
    assert_eq!(d.pull(C, &open, "gC").await.0, 404);
}

#[tokio::test]
async fn requests_without_verified_claims_are_401_and_change_nothing() {
    let d = deployment(100).await;
    let s = d.create(A, json!({})).await;
    let before = d.state(&s).await;
    // The authorizer stops these at API Gateway; should one get through (a route wired
    // without it), the function answers 401 itself, with the JSON the client expects.
    for (f, route, space, body) in [
        (&d.push, "push", Some(s.as_str()), push_body("gA", "a1", 1)),
        (&d.pull, "pull", Some(s.as_str()), pull_body("gA")),
        (&d.spaces, "createSpace", None, json!({})),
        (
            &d.spaces,
            "spaceExists",
            None,
            json!({"spaceID": s.as_str()}),
        ),
        (
            &d.spaces,
            "spaceAccess",
            Some(s.as_str()),
            json!({"add": [B]}),
        ),
    ] {
        let path = format!("/api/replicache/{route}");
        let resp = f.handle(http_event(&path, space, &body.to_string())).await;
        assert_eq!(resp.status(), 401, "{route}");
        assert_eq!(resp.headers()["content-type"], "application/json");
        let bytes: &[u8] = resp.body().as_ref();
        let answer: Value = serde_json::from_slice(bytes).unwrap();
        assert_eq!(answer["error"], json!("Unauthorized"), "{route}");
    }
    let resp = d
        .connect
        .connect(&ws_event("$connect", "conn-x", Some(s.as_str())))
        .await;
    assert_eq!(resp.status_code, 401);
    assert_eq!(d.state(&s).await, before);
}

#[tokio::test]
async fn sockets_per_space_are_capped() {
    let d = deployment(2).await;
    let s = d.create(A, json!({})).await;
    let other = d.create(A, json!({})).await;
    assert_eq!(d.connect(A, &s, "s-1").await.0, 200);
    assert_eq!(d.connect(A, &s, "s-2").await.0, 200);
    let before = d.state(&s).await;
    let (status, answer) = d.connect(A, &s, "s-3").await;
    assert_eq!(status, 429, "{answer}");
    assert_eq!(answer["error"], json!("TooManyRequests"));
    assert_eq!(d.state(&s).await, before, "the refused socket was stored");
    assert_eq!(d.connections.user_of("s-3").await.unwrap(), None);
    // Another space has its own room; a closed socket frees its place.
    assert_eq!(d.connect(A, &other, "o-1").await.0, 200);
    let resp = lambda_handlers::websocket::disconnect(
        &d.connections,
        &ws_event("$disconnect", "s-1", None),
    )
    .await;
    assert_eq!(resp.status_code, 200);
    assert_eq!(d.connect(A, &s, "s-3").await.0, 200);
}
