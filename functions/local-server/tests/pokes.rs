//! The poke WebSocket: refusals before the upgrade, pokes after committed pushes only.

mod common;

use axum::http::StatusCode;
use common::{TestServer, push_body, space_id};
use futures::{SinkExt as _, StreamExt as _};
use local_server::config::AllowedOrigins;
use std::sync::Arc;
use std::time::Duration;
use store_sqlite::SqliteStore;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

async fn connect(server: &TestServer, space: &str) -> Socket {
    let (socket, response) = connect_async(server.ws_url(&format!("?spaceID={space}")))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    socket
}

/// The next text frame within `wait`, if any.
async fn next_text(socket: &mut Socket, wait: Duration) -> Option<String> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let frame = tokio::time::timeout_at(deadline, socket.next())
            .await
            .ok()??;
        match frame.unwrap() {
            Message::Text(text) => return Some(text.to_string()),
            Message::Close(_) => return None,
            _ => continue,
        }
    }
}

async fn refused(server: &TestServer, query: &str) -> (StatusCode, serde_json::Value) {
    match connect_async(server.ws_url(query)).await {
        Err(tungstenite::Error::Http(response)) => {
            let body = response.body().clone().unwrap_or_default();
            (response.status(), serde_json::from_slice(&body).unwrap())
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn refuses_bad_or_unknown_spaces_before_upgrading() {
    let server = TestServer::start().await;
    let (status, body) = refused(&server, "?spaceID=unknown").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"], "SpaceNotFound");
    let (status, body) = refused(&server, "").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "InvalidSpaceID");
    let (status, body) = refused(&server, "?spaceID=not%20valid").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "InvalidSpaceID");
}

#[tokio::test]
async fn origins_outside_the_allowed_list_cannot_open_sockets() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
    let origins = AllowedOrigins::List(vec!["http://app.test".parse().unwrap()]);
    let server = TestServer::start_with(Arc::new(SqliteStore::in_memory().unwrap()), origins).await;
    let space = server.create_space().await;
    let with_origin = |origin: &str| {
        let mut request = server
            .ws_url(&format!("?spaceID={space}"))
            .into_client_request()
            .unwrap();
        request
            .headers_mut()
            .insert("origin", origin.parse().unwrap());
        request
    };
    match connect_async(with_origin("http://evil.test")).await {
        Err(tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), StatusCode::FORBIDDEN)
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    let (_socket, response) = connect_async(with_origin("http://app.test")).await.unwrap();
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    // No Origin at all (not a browser): allowed.
    connect(&server, &space).await;
}

#[tokio::test]
async fn a_plain_get_on_the_poke_path_is_a_json_error() {
    let server = TestServer::start().await;
    let space = server.create_space().await;
    let reply = server
        .request(
            axum::http::Method::GET,
            &format!("/api/replicache/poke?spaceID={space}"),
            &[],
            "",
        )
        .await;
    assert!(reply.status.is_client_error(), "{}", reply.status);
    assert_eq!(reply.json()["error"], "UpgradeRequired");
}

#[tokio::test]
async fn pokes_follow_committed_pushes_only() {
    let server = TestServer::start().await;
    let space = server.create_space().await;
    let other_space = server.create_space().await;
    let mut socket = connect(&server, &space).await;
    let mut bystander = connect(&server, &other_space).await;
    assert_eq!(server.hub.connection_count(&space_id(&space)), 1);

    let push_path = format!("/api/replicache/push?spaceID={space}");
    let pushed = server.post(&push_path, &push_body("g1", "c1", 1..=2)).await;
    assert_eq!(pushed.status, StatusCode::OK);
    assert_eq!(
        next_text(&mut socket, Duration::from_secs(5))
            .await
            .as_deref(),
        Some("poke")
    );
    assert_eq!(
        next_text(&mut bystander, Duration::from_millis(200)).await,
        None,
        "another space's socket stays quiet"
    );

    // The same mutations again are all duplicates: nothing commits, nobody is poked.
    let again = server.post(&push_path, &push_body("g1", "c1", 1..=2)).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(
        next_text(&mut socket, Duration::from_millis(300)).await,
        None
    );

    // Keep-alives are answered.
    socket.send(Message::Text("ping".into())).await.unwrap();
    assert_eq!(
        next_text(&mut socket, Duration::from_secs(5))
            .await
            .as_deref(),
        Some("pong")
    );
}

#[tokio::test]
async fn closed_sockets_leave_the_hub_and_do_not_block_pushes() {
    let server = TestServer::start().await;
    let space = server.create_space().await;
    let id = space_id(&space);
    let mut socket = connect(&server, &space).await;
    // A socket that is never read from.
    let _idle = connect(&server, &space).await;
    assert_eq!(server.hub.connection_count(&id), 2);
    socket.close(None).await.unwrap();
    drop(socket);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while server.hub.connection_count(&id) != 1 {
        assert!(tokio::time::Instant::now() < deadline, "socket not removed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let push_path = format!("/api/replicache/push?spaceID={space}");
    for id in 1..=50 {
        let reply = tokio::time::timeout(
            Duration::from_secs(5),
            server.post(&push_path, &push_body("g1", "c1", id..=id)),
        )
        .await
        .expect("a push never waits for a socket");
        assert_eq!(reply.status, StatusCode::OK);
    }
}

#[tokio::test]
async fn shutdown_closes_poke_sockets() {
    let server = TestServer::start().await;
    let space = server.create_space().await;
    let mut socket = connect(&server, &space).await;
    let stopping = tokio::spawn(server.stop());
    let frame = tokio::time::timeout(Duration::from_secs(5), socket.next())
        .await
        .expect("the socket is closed promptly");
    assert!(
        matches!(frame, Some(Ok(Message::Close(_))) | None),
        "{frame:?}"
    );
    tokio::time::timeout(Duration::from_secs(5), stopping)
        .await
        .expect("the server stops")
        .unwrap();
}
