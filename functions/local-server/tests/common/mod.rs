//! A server on an ephemeral loopback port, and a small HTTP client for it.
#![allow(dead_code)]

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use local_server::config::AllowedOrigins;
use local_server::poke_hub::PokeHub;
use local_server::routes::{self, AppOptions};
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::Arc;
use store_sqlite::SqliteStore;
use sync_core::Store;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub struct TestServer {
    pub addr: SocketAddr,
    pub hub: Arc<PokeHub>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(
            Arc::new(SqliteStore::in_memory().unwrap()),
            AllowedOrigins::Any,
        )
        .await
    }

    pub async fn start_with(store: Arc<dyn Store>, allowed_origins: AllowedOrigins) -> Self {
        Self::start_with_options(store, test_options(allowed_origins)).await
    }

    pub async fn start_with_options(store: Arc<dyn Store>, options: AppOptions) -> Self {
        let hub = PokeHub::new();
        let app = routes::app(store, hub.clone(), &options);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let closing = hub.clone();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                    closing.close_all();
                })
                .await
                .unwrap();
        });
        Self {
            addr,
            hub,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
    }

    pub fn ws_url(&self, query: &str) -> String {
        format!("ws://{}/api/replicache/poke{query}", self.addr)
    }

    pub async fn request(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Reply {
        request(self.addr, method, path, headers, body).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Reply {
        post_json(self.addr, path, body).await
    }

    pub async fn create_space(&self) -> String {
        let reply = self
            .post("/api/replicache/createSpace", &serde_json::json!({}))
            .await;
        assert_eq!(reply.status, StatusCode::OK);
        reply.json()["spaceID"].as_str().unwrap().to_owned()
    }
}

/// The options of a test server: no auth, no web client, a random cookie key.
pub fn test_options(allowed_origins: AllowedOrigins) -> AppOptions {
    AppOptions::new(
        allowed_origins,
        "/nonexistent/client/dist".into(),
        sync_core::cookie::CookieKeys::random(),
    )
}

/// One request on a fresh HTTP/1.1 connection.
pub async fn request(
    addr: SocketAddr,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Reply {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    // The connection may end in an error when the server refuses a body unread.
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, addr.to_string());
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let request = builder.body(Full::new(body.into())).unwrap();
    let response = sender.send_request(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

pub async fn post_json(addr: SocketAddr, path: &str, body: &Value) -> Reply {
    request(
        addr,
        Method::POST,
        path,
        &[("content-type", "application/json")],
        serde_json::to_vec(body).unwrap(),
    )
    .await
}

pub fn space_id(raw: &str) -> sync_core::SpaceId {
    sync_core::SpaceId::parse(raw).unwrap()
}

#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    /// The body as JSON, also asserting the content type says so.
    pub fn json(&self) -> Value {
        assert_eq!(
            self.headers
                .get(header::CONTENT_TYPE)
                .map(|v| v.to_str().unwrap()),
            Some("application/json"),
            "status {}",
            self.status
        );
        serde_json::from_slice(&self.body).unwrap()
    }

    pub fn text(&self) -> String {
        String::from_utf8(self.body.to_vec()).unwrap()
    }
}

pub fn push_body(group: &str, client: &str, ids: std::ops::RangeInclusive<u64>) -> Value {
    let mutations: Vec<Value> = ids
        .map(|id| {
            serde_json::json!({"clientID": client, "id": id, "name": "increment", "args": 1,
                "timestamp": 1.5})
        })
        .collect();
    serde_json::json!({"pushVersion": 1, "clientGroupID": group, "profileID": "p",
        "schemaVersion": "1", "mutations": mutations})
}

pub fn pull_body(group: &str, cookie: Value) -> Value {
    serde_json::json!({"pullVersion": 1, "clientGroupID": group, "profileID": "p",
        "schemaVersion": "1", "cookie": cookie})
}
