//! An honest emulation of the API Gateway Management API's connection resource, as
//! documented for `@connections`, for tests and benchmarks that cannot reach AWS:
//!
//! - `POST /@connections/{connectionId}` (PostToConnection): 200 and the body is
//!   delivered; 410 GoneException when the connection is not open; 413
//!   PayloadTooLargeException above 128 KB; 403 ForbiddenException without a SigV4
//!   `Authorization` header.
//! - `GET /@connections/{connectionId}` (GetConnection): 200 with `connectedAt`, or 410.
//! - `DELETE /@connections/{connectionId}` (DeleteConnection): 204, or 410.
//!
//! Errors carry the `x-amzn-errortype` header and a `{"message": ...}` body like the real
//! service, so the SDK maps them to its typed errors. Which connections are open is set
//! by the test through [`Standin`].

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::task::JoinHandle;

/// API Gateway's WebSocket message size limit.
pub const MAX_MESSAGE_BYTES: usize = 128 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum StandinError {
    #[error("could not bind the stand-in: {0}")]
    Bind(#[from] std::io::Error),
}

#[derive(Default)]
struct Connections {
    /// Open connections and the messages each received, in order.
    open: HashMap<String, Vec<Vec<u8>>>,
    /// PostToConnection calls answered, by connection ID (open or not).
    posts: HashMap<String, usize>,
}

#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Connections>>);

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Connections> {
        // A panic while holding the lock cannot leave the map half-written.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A running stand-in on 127.0.0.1; stops when dropped.
pub struct Standin {
    addr: SocketAddr,
    shared: Shared,
    task: JoinHandle<()>,
}

impl Standin {
    /// Starts on a free port of 127.0.0.1.
    pub async fn start() -> Result<Self, StandinError> {
        Self::start_on("127.0.0.1:0".parse().expect("a literal address")).await
    }

    pub async fn start_on(addr: SocketAddr) -> Result<Self, StandinError> {
        let shared = Shared::default();
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let app = router(shared.clone());
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "management stand-in stopped");
            }
        });
        Ok(Self { addr, shared, task })
    }

    /// The endpoint to give the SDK (the real one ends in the stage path; the stand-in
    /// serves at its root).
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn open(&self, connection_id: &str) {
        self.shared
            .lock()
            .open
            .entry(connection_id.to_owned())
            .or_default();
    }

    pub fn close(&self, connection_id: &str) {
        self.shared.lock().open.remove(connection_id);
    }

    /// Messages delivered to an open connection.
    pub fn messages(&self, connection_id: &str) -> Vec<Vec<u8>> {
        self.shared
            .lock()
            .open
            .get(connection_id)
            .cloned()
            .unwrap_or_default()
    }

    /// PostToConnection calls made for a connection, whatever the answer.
    pub fn posts(&self, connection_id: &str) -> usize {
        self.shared
            .lock()
            .posts
            .get(connection_id)
            .copied()
            .unwrap_or(0)
    }

    pub fn total_posts(&self) -> usize {
        self.shared.lock().posts.values().sum()
    }
}

impl Drop for Standin {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn router(shared: Shared) -> Router {
    Router::new()
        .route(
            "/@connections/{connection_id}",
            post(post_to_connection)
                .get(get_connection)
                .delete(delete_connection),
        )
        .with_state(shared)
}

fn aws_error(status: StatusCode, error_type: &str, message: &str) -> Response {
    (
        status,
        [
            ("x-amzn-errortype", error_type),
            (header::CONTENT_TYPE.as_str(), "application/json"),
        ],
        serde_json::json!({ "message": message }).to_string(),
    )
        .into_response()
}

fn gone() -> Response {
    aws_error(StatusCode::GONE, "GoneException", "")
}

fn signed(headers: &HeaderMap) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("AWS4-HMAC-SHA256"))
}

async fn post_to_connection(
    State(shared): State<Shared>,
    Path(connection_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !signed(&headers) {
        return aws_error(StatusCode::FORBIDDEN, "ForbiddenException", "Forbidden");
    }
    let mut state = shared.lock();
    *state.posts.entry(connection_id.clone()).or_default() += 1;
    if body.len() > MAX_MESSAGE_BYTES {
        return aws_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PayloadTooLargeException",
            "Message too long",
        );
    }
    match state.open.get_mut(&connection_id) {
        Some(messages) => {
            messages.push(body.to_vec());
            StatusCode::OK.into_response()
        }
        None => gone(),
    }
}

async fn get_connection(
    State(shared): State<Shared>,
    Path(connection_id): Path<String>,
) -> Response {
    if shared.lock().open.contains_key(&connection_id) {
        let body = serde_json::json!({
            "connectedAt": "2026-01-01T00:00:00Z",
            "lastActiveAt": "2026-01-01T00:00:00Z",
            "identity": { "sourceIp": "127.0.0.1", "userAgent": "stand-in" },
        });
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response()
    } else {
        gone()
    }
}

async fn delete_connection(
    State(shared): State<Shared>,
    Path(connection_id): Path<String>,
) -> Response {
    if shared.lock().open.remove(&connection_id).is_some() {
        StatusCode::NO_CONTENT.into_response()
    } else {
        gone()
    }
}
