//! The sync API over real HTTP, on the SQLite in-memory store.

mod common;

use axum::http::{Method, StatusCode, header};
use common::{TestServer, pull_body, push_body};
use local_server::config::AllowedOrigins;
use serde_json::json;
use std::io::Read as _;
use std::sync::Arc;
use store_sqlite::SqliteStore;
use sync_core::api::MAX_BODY_BYTES;

#[tokio::test]
async fn create_exists_push_pull_round_trip() {
    let server = TestServer::start().await;
    let space = server.create_space().await;
    assert_eq!(space.len(), 22);

    let exists = server
        .post("/api/replicache/spaceExists", &json!({ "spaceID": space }))
        .await;
    assert_eq!(exists.status, StatusCode::OK);
    assert_eq!(exists.json(), json!({ "spaceExists": true }));
    let missing = server
        .post("/api/replicache/spaceExists", &json!({ "spaceID": "nope" }))
        .await;
    assert_eq!(missing.json(), json!({ "spaceExists": false }));

    let chosen = server
        .post(
            "/api/replicache/createSpace",
            &json!({ "spaceID": "my-space" }),
        )
        .await;
    assert_eq!(chosen.json(), json!({ "spaceID": "my-space" }));
    let again = server
        .post(
            "/api/replicache/createSpace",
            &json!({ "spaceID": "my-space" }),
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.json()["error"], "SpaceExists");

    let push_path = format!("/api/replicache/push?spaceID={space}");
    let pull_path = format!("/api/replicache/pull?spaceID={space}");
    let pushed = server.post(&push_path, &push_body("g1", "c1", 1..=3)).await;
    assert_eq!(pushed.status, StatusCode::OK);
    assert_eq!(pushed.json(), json!({}));

    let pulled = server.post(&pull_path, &pull_body("g1", json!(null))).await;
    assert_eq!(pulled.status, StatusCode::OK);
    let mut body = pulled.json();
    let cookie = body["cookie"].clone();
    assert_eq!(cookie["order"], 1, "a signed cookie at the version");
    assert!(cookie["sig"].as_str().is_some_and(|s| !s.is_empty()));
    body["cookie"] = json!(1);
    assert_eq!(
        body,
        json!({"cookie": 1, "lastMutationIDChanges": {"c1": 3},
            "patch": [{"op": "clear"}, {"op": "put", "key": "count", "value": 3}]})
    );

    // Another group sees the data but not c1's mutation IDs.
    let other = server.post(&pull_path, &pull_body("g2", json!(null))).await;
    assert_eq!(other.json()["lastMutationIDChanges"], json!({}));

    // Nothing changed since the cookie, whether it comes back signed or as the bare
    // number earlier servers handed out.
    for sent in [cookie.clone(), json!(1)] {
        let same = server.post(&pull_path, &pull_body("g1", sent)).await;
        assert_eq!(
            same.json(),
            json!({"cookie": cookie, "lastMutationIDChanges": {}, "patch": []})
        );
    }
}

#[tokio::test]
async fn the_space_id_query_parameter_is_url_decoded() {
    let server = TestServer::start().await;
    server
        .post(
            "/api/replicache/createSpace",
            &json!({ "spaceID": "a_b-c" }),
        )
        .await;
    let pulled = server
        .post(
            "/api/replicache/pull?spaceID=a%5Fb%2Dc",
            &pull_body("g1", json!(null)),
        )
        .await;
    assert_eq!(pulled.status, StatusCode::OK);
    assert_eq!(pulled.json()["cookie"]["order"], 0);
}

#[tokio::test]
async fn large_pulls_are_gzipped_when_the_client_accepts_it() {
    let server = TestServer::start().await;
    let space = server.create_space().await;
    let big = "x".repeat(4000);
    let push = json!({"pushVersion": 1, "clientGroupID": "g1", "profileID": "p",
        "schemaVersion": "1", "mutations": [{"clientID": "c1", "id": 1, "name": "setItem",
        "args": {"key": "k", "value": big}, "timestamp": 1}]});
    let pushed = server
        .post(&format!("/api/replicache/push?spaceID={space}"), &push)
        .await;
    assert_eq!(pushed.status, StatusCode::OK);

    let reply = server
        .request(
            Method::POST,
            &format!("/api/replicache/pull?spaceID={space}"),
            &[
                ("content-type", "application/json"),
                ("accept-encoding", "gzip, deflate, br"),
            ],
            serde_json::to_vec(&pull_body("g1", json!(null))).unwrap(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.headers[header::CONTENT_ENCODING], "gzip");
    assert_eq!(reply.headers[header::CONTENT_TYPE], "application/json");
    let mut text = String::new();
    flate2::read::GzDecoder::new(&reply.body[..])
        .read_to_string(&mut text)
        .unwrap();
    let body: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        body["patch"][1],
        json!({"op": "put", "key": "item/k", "value": big})
    );

    // Without Accept-Encoding the same pull is plain JSON.
    let plain = server
        .post(
            &format!("/api/replicache/pull?spaceID={space}"),
            &pull_body("g1", json!(null)),
        )
        .await;
    assert!(plain.headers.get(header::CONTENT_ENCODING).is_none());
    assert_eq!(plain.json(), body);
}

#[tokio::test]
async fn malformed_requests_get_json_errors() {
    let server = TestServer::start().await;
    let space = server.create_space().await;
    let push_path = format!("/api/replicache/push?spaceID={space}");

    let bad_json = server
        .request(
            Method::POST,
            &push_path,
            &[("content-type", "application/json")],
            "{not json",
        )
        .await;
    assert_eq!(bad_json.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad_json.json()["error"], "BadRequest");

    let unknown_space = server
        .post(
            "/api/replicache/push?spaceID=unknown",
            &push_body("g1", "c1", 1..=1),
        )
        .await;
    assert_eq!(unknown_space.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown_space.json()["error"], "SpaceNotFound");

    let no_space = server
        .post("/api/replicache/pull", &pull_body("g1", json!(null)))
        .await;
    assert_eq!(no_space.status, StatusCode::BAD_REQUEST);
    assert_eq!(no_space.json()["error"], "InvalidSpaceID");

    let duplicate_param = server
        .post(
            &format!("/api/replicache/pull?spaceID={space}&spaceID=x"),
            &pull_body("g1", json!(null)),
        )
        .await;
    assert_eq!(duplicate_param.status, StatusCode::BAD_REQUEST);
    assert_eq!(duplicate_param.json()["error"], "BadRequest");

    let wrong_method = server.request(Method::GET, &push_path, &[], "").await;
    assert_eq!(wrong_method.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(wrong_method.json()["error"], "MethodNotAllowed");

    let unknown_route = server.post("/api/replicache/nothing", &json!({})).await;
    assert_eq!(unknown_route.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown_route.json()["error"], "NotFound");

    let old_protocol = server
        .post(
            &push_path,
            &json!({"pushVersion": 0, "clientID": "c", "mutations": []}),
        )
        .await;
    assert_eq!(old_protocol.status, StatusCode::OK);
    assert_eq!(
        old_protocol.json(),
        json!({"error": "VersionNotSupported", "versionType": "push"})
    );
}

/// POSTs `len` spaces with `Transfer-Encoding: chunked` (no `Content-Length`) on a raw
/// connection; the status and JSON body of the answer.
async fn chunked_push(
    addr: std::net::SocketAddr,
    path: &str,
    len: usize,
) -> (u16, serde_json::Value) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n\
         transfer-encoding: chunked\r\nconnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b' '; 1024 * 1024];
    let mut sent = 0;
    // The server may answer and stop reading before the end: a failed write ends the body.
    while sent < len {
        let frame = [format!("{:x}\r\n", chunk.len()).as_bytes(), &chunk, b"\r\n"].concat();
        if stream.write_all(&frame).await.is_err() {
            break;
        }
        sent += chunk.len();
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    let text = String::from_utf8_lossy(&answer);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    (
        status,
        serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
    )
}

#[tokio::test]
async fn oversized_bodies_get_a_json_413() {
    let server = TestServer::start().await;
    let space = server.create_space().await;
    let path = format!("/api/replicache/push?spaceID={space}");
    let headers = [("content-type", "application/json")];

    // Just over the limit: sync-core reads it and refuses it.
    let over = server
        .request(
            Method::POST,
            &path,
            &headers,
            vec![b' '; MAX_BODY_BYTES + 1],
        )
        .await;
    assert_eq!(over.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(over.json()["error"], "PayloadTooLarge");
    // The limit, machine-readably: a client splits its pushes by it.
    assert_eq!(over.json()["maxBytes"], json!(MAX_BODY_BYTES));

    // Far beyond: refused before it is read.
    let far = server
        .request(
            Method::POST,
            &path,
            &headers,
            vec![b' '; 4 * MAX_BODY_BYTES],
        )
        .await;
    assert_eq!(far.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(far.json()["error"], "PayloadTooLarge");
    assert_eq!(far.json()["maxBytes"], json!(MAX_BODY_BYTES));

    // Chunked, so of no declared size, and far beyond: the same answer.
    let (status, chunked) = chunked_push(server.addr, &path, 4 * MAX_BODY_BYTES).await;
    assert_eq!(status, 413, "{chunked}");
    assert_eq!(chunked["error"], "PayloadTooLarge");
    assert_eq!(chunked["maxBytes"], json!(MAX_BODY_BYTES));
    let undeclared = format!("request body exceeds the {MAX_BODY_BYTES}-byte limit");
    assert_eq!(chunked["message"], json!(undeclared));

    // The server is still fine.
    let ok = server.post(&path, &push_body("g1", "c1", 1..=1)).await;
    assert_eq!(ok.status, StatusCode::OK);
}

#[tokio::test]
async fn cors_preflight_and_headers() {
    let server = TestServer::start().await;
    let preflight = server
        .request(
            Method::OPTIONS,
            "/api/replicache/push?spaceID=x",
            &[
                ("origin", "http://localhost:5173"),
                ("access-control-request-method", "POST"),
                (
                    "access-control-request-headers",
                    "content-type,authorization,x-replicache-requestid",
                ),
            ],
            "",
        )
        .await;
    assert_eq!(preflight.status, StatusCode::OK);
    assert_eq!(preflight.headers["access-control-allow-origin"], "*");
    let allowed = preflight.headers["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    for h in ["content-type", "authorization", "x-replicache-requestid"] {
        assert!(allowed.contains(h), "{allowed}");
    }
    assert!(
        preflight.headers["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("POST")
    );
}

#[tokio::test]
async fn cors_with_a_list_of_origins() {
    let origins = AllowedOrigins::List(vec!["http://app.test".parse().unwrap()]);
    let server = TestServer::start_with(Arc::new(SqliteStore::in_memory().unwrap()), origins).await;
    let ask = |origin: &'static str| {
        let server = &server;
        async move {
            server
                .request(
                    Method::POST,
                    "/api/replicache/spaceExists",
                    &[("origin", origin), ("content-type", "application/json")],
                    r#"{"spaceID":"x"}"#,
                )
                .await
        }
    };
    let allowed = ask("http://app.test").await;
    assert_eq!(
        allowed.headers["access-control-allow-origin"],
        "http://app.test"
    );
    let refused = ask("http://evil.test").await;
    assert!(refused.headers.get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn the_root_says_when_the_web_client_is_not_built() {
    let server = TestServer::start().await;
    let root = server.request(Method::GET, "/", &[], "").await;
    assert_eq!(root.status, StatusCode::OK);
    assert!(root.text().contains("not built"));
}
