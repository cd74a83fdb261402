//! A fault-injecting HTTP proxy on 127.0.0.1 in front of the DynamoDB-compatible server:
//! it answers the requests of an operation (by `X-Amz-Target`) with a fault of DynamoDB's
//! shape as told, forwards the others, and keeps every request it received, so that a
//! test sees what the SDK sent on each try.

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode, header};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use std::convert::Infallible;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::net::{TcpListener, TcpStream};

/// How DynamoDB answers, faked.
#[derive(Debug, Clone)]
pub enum Fault {
    /// HTTP 500 `InternalServerError`.
    ServerError,
    /// HTTP 400 `ThrottlingException`.
    Throttling,
    /// HTTP 400 `ValidationException`.
    Validation,
    /// HTTP 400 `TransactionCanceledException` with these reasons, one per item.
    Cancelled(&'static [&'static str]),
    /// HTTP 400 `TransactionInProgressException`.
    InProgress,
}

impl Fault {
    fn response(&self) -> Response<Full<Bytes>> {
        let (status, code, message) = match self {
            Fault::ServerError => (500, "InternalServerError", "injected failure"),
            Fault::Throttling => (400, "ThrottlingException", "injected throttling"),
            Fault::Validation => (400, "ValidationException", "injected refusal"),
            Fault::Cancelled(_) => (
                400,
                "TransactionCanceledException",
                "Transaction cancelled, please refer cancellation reasons for specific reasons",
            ),
            Fault::InProgress => (
                400,
                "TransactionInProgressException",
                "the transaction is in progress",
            ),
        };
        let mut body = json!({
            "__type": format!("com.amazonaws.dynamodb.v20120810#{code}"),
            "message": message,
        });
        if let Fault::Cancelled(reasons) = self {
            body["CancellationReasons"] = reasons.iter().map(|c| json!({"Code": c})).collect();
        }
        Response::builder()
            .status(status)
            .header(header::CONTENT_TYPE, "application/x-amz-json-1.0")
            .body(Full::new(Bytes::from(body.to_string())))
            .expect("a valid response")
    }
}

/// One request the proxy received.
#[derive(Debug, Clone)]
pub struct Seen {
    /// The operation, e.g. `GetItem`.
    pub operation: String,
    /// The request body (DynamoDB's JSON).
    pub body: Value,
    /// Whether the proxy answered it with a fault instead of forwarding it.
    pub faulted: bool,
}

struct Rule {
    operation: &'static str,
    fault: Fault,
    /// Requests still to fail; `None` for all of them.
    remaining: Option<u32>,
}

#[derive(Default)]
struct State {
    rules: Vec<Rule>,
    seen: Vec<Seen>,
}

pub struct FaultProxy {
    endpoint: String,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// A proxy forwarding to `upstream` (`http://host:port`).
    pub async fn start(upstream: &str) -> FaultProxy {
        let upstream = upstream
            .strip_prefix("http://")
            .expect("an http:// endpoint")
            .trim_end_matches('/')
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let endpoint = format!("http://{}", listener.local_addr().expect("address"));
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let state = shared.clone();
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        handle(request, state.clone(), upstream.clone())
                    });
                    // A client closing its connection midway is not the proxy's concern.
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        FaultProxy {
            endpoint,
            state,
            task,
        }
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Answers the next `times` requests of `operation` with `fault`.
    pub fn fail(&self, operation: &'static str, fault: Fault, times: u32) {
        self.add(operation, fault, Some(times));
    }

    /// Answers every request of `operation` with `fault`, until [`FaultProxy::heal`].
    pub fn fail_always(&self, operation: &'static str, fault: Fault) {
        self.add(operation, fault, None);
    }

    /// Forwards everything again.
    pub fn heal(&self) {
        self.lock().rules.clear();
    }

    /// The requests of `operation` received so far, in order.
    pub fn requests(&self, operation: &str) -> Vec<Seen> {
        self.lock()
            .seen
            .iter()
            .filter(|s| s.operation == operation)
            .cloned()
            .collect()
    }

    pub fn forget_requests(&self) {
        self.lock().seen.clear();
    }

    fn add(&self, operation: &'static str, fault: Fault, remaining: Option<u32>) {
        self.lock().rules.push(Rule {
            operation,
            fault,
            remaining,
        });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle(
    request: Request<Incoming>,
    state: Arc<Mutex<State>>,
    upstream: String,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = request.into_parts();
    let body = match body.collect().await {
        Ok(body) => body.to_bytes(),
        Err(e) => return Ok(bad_gateway(&format!("reading the request: {e}"))),
    };
    let operation = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.rsplit('.').next())
        .unwrap_or("unknown")
        .to_owned();
    let fault = {
        let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
        let fault = state
            .rules
            .iter_mut()
            .find(|r| r.operation == operation && r.remaining != Some(0))
            .map(|rule| {
                if let Some(n) = &mut rule.remaining {
                    *n -= 1;
                }
                rule.fault.clone()
            });
        state.seen.push(Seen {
            operation,
            body: serde_json::from_slice(&body).unwrap_or(Value::Null),
            faulted: fault.is_some(),
        });
        fault
    };
    if let Some(fault) = fault {
        return Ok(fault.response());
    }
    Ok(
        forward(Request::from_parts(parts, Full::new(body)), &upstream)
            .await
            .unwrap_or_else(|e| bad_gateway(&e)),
    )
}

/// Sends `request` to `upstream` on a connection of its own and returns the answer.
async fn forward(
    request: Request<Full<Bytes>>,
    upstream: &str,
) -> Result<Response<Full<Bytes>>, String> {
    let stream = TcpStream::connect(upstream)
        .await
        .map_err(|e| format!("connecting: {e}"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("sending: {e}"))?;
    let (mut parts, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|e| format!("reading the answer: {e}"))?
        .to_bytes();
    // The upstream connection is this request's alone; the client's stays open.
    parts.headers.remove(header::CONNECTION);
    parts.headers.remove("keep-alive");
    parts.headers.remove(header::TRANSFER_ENCODING);
    parts.headers.remove(header::CONTENT_LENGTH);
    Ok(Response::from_parts(parts, Full::new(body)))
}

fn bad_gateway(reason: &str) -> Response<Full<Bytes>> {
    Response::builder()
        .status(StatusCode::BAD_GATEWAY)
        .body(Full::new(Bytes::from(format!("proxy: {reason}"))))
        .expect("a valid response")
}
