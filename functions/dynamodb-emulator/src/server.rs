//! The HTTP side: DynamoDB's JSON 1.0 protocol (`POST /`, `X-Amz-Target:
//! DynamoDB_20120810.<Operation>`, `application/x-amz-json-1.0`), each request on its own
//! task, so that requests overlap in time as they do against the service.
//!
//! Each request takes the configured latency (plus jitter), spent waiting without any
//! lock held. A non-transactional request is applied halfway through it, at one instant
//! under the state's lock. A `TransactWriteItems` is prepared the moment it arrives (its
//! items held from then on), and commits at the end of its latency, just before it
//! answers (see [`crate::txn`]).

use crate::error::ApiError;
use crate::state::State;
use crate::{Config, ops, scan, txn};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode, header};
use serde_json::{Value as Json, json};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub const TARGET_PREFIX: &str = "DynamoDB_20120810.";
const CONTENT_TYPE: &str = "application/x-amz-json-1.0";

pub struct Inner {
    pub config: Config,
    pub state: Mutex<State>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    request_ids: AtomicU64,
}

impl Inner {
    pub fn new(config: Config, state: State) -> Inner {
        Inner {
            config,
            state: Mutex::new(state),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            request_ids: AtomicU64::new(1),
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, State> {
        // A panic under the lock leaves no half-applied write: every operation computes
        // first and writes last.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight.load(Ordering::Relaxed)
    }

    pub fn reset_max_in_flight(&self) {
        self.max_in_flight
            .store(self.in_flight.load(Ordering::Relaxed), Ordering::Relaxed);
    }

    /// This request's round trip: the latency plus a uniform draw of the jitter.
    fn delay(&self) -> Duration {
        let jitter = self.config.jitter.as_secs_f64();
        let extra = if jitter > 0.0 {
            rand::random::<f64>() * jitter
        } else {
            0.0
        };
        self.config.latency + Duration::from_secs_f64(extra)
    }
}

async fn pause(d: Duration) {
    if !d.is_zero() {
        tokio::time::sleep(d).await;
    }
}

/// One HTTP request.
pub async fn handle(
    inner: Arc<Inner>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let path = request.uri().path().to_owned();
    let method = request.method().clone();
    let target = request
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = match request.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => return Ok(respond(400, json!({"message": "unreadable body"}))),
    };
    match (method, path.as_str(), target) {
        (Method::GET, "/emulator/stats", _) => {
            let mut stats = inner.lock().stats.clone();
            stats.max_in_flight = inner.max_in_flight();
            Ok(respond(200, stats.to_json()))
        }
        (Method::POST, "/emulator/reset", _) => {
            inner.lock().stats = Default::default();
            inner.reset_max_in_flight();
            Ok(respond(200, json!({})))
        }
        (Method::POST, _, Some(target)) => {
            let now = inner.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            inner.max_in_flight.fetch_max(now, Ordering::SeqCst);
            let op = target.strip_prefix(TARGET_PREFIX).unwrap_or("").to_owned();
            let result = operation(&inner, &op, &body).await;
            inner.in_flight.fetch_sub(1, Ordering::SeqCst);
            let id = inner.request_ids.fetch_add(1, Ordering::Relaxed);
            let mut response = match result {
                Ok(out) => respond(200, out),
                Err(e) => respond(e.status, e.body()),
            };
            if let Ok(v) = format!("EMULATOR{id:024}").parse() {
                response.headers_mut().insert("x-amzn-requestid", v);
            }
            Ok(response)
        }
        _ => {
            let e = ApiError::new("UnknownOperationException", "missing X-Amz-Target");
            Ok(respond(400, e.body()))
        }
    }
}

fn respond(status: u16, body: Json) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(CONTENT_TYPE),
    );
    response
}

/// The parsed form of a non-transactional write or read.
enum Parsed {
    Get(ops::GetReq),
    Write(ops::WriteReq),
    Query(ops::QueryReq),
    Scan(scan::ScanReq),
    BatchGet(ops::BatchGetReq),
    BatchWrite(ops::BatchWriteReq),
    TransactGet(txn::TransactGetReq),
    Table(Json),
}

async fn operation(inner: &Arc<Inner>, op: &str, body: &Bytes) -> Result<Json, ApiError> {
    inner
        .lock()
        .stats
        .requests
        .entry(op.to_owned())
        .and_modify(|n| *n += 1)
        .or_insert(1);
    let delay = inner.delay();
    let body: Json = if body.is_empty() {
        json!({})
    } else {
        match serde_json::from_slice(body) {
            Ok(b) => b,
            Err(_) => {
                pause(delay).await;
                return Err(ApiError::serialization(
                    "Start of structure or map found where not expected.",
                ));
            }
        }
    };
    if op == "TransactWriteItems" {
        return transact_write(inner, &body, delay).await;
    }
    let parsed = match op {
        "GetItem" => ops::parse_get(&body).map(Parsed::Get),
        "PutItem" => ops::parse_put(&body).map(Parsed::Write),
        "UpdateItem" => ops::parse_update(&body).map(Parsed::Write),
        "DeleteItem" => ops::parse_delete(&body).map(Parsed::Write),
        "Query" => ops::parse_query(&body).map(Parsed::Query),
        "Scan" => scan::parse_scan(&body).map(Parsed::Scan),
        "BatchGetItem" => ops::parse_batch_get(&body).map(Parsed::BatchGet),
        "BatchWriteItem" => ops::parse_batch_write(&body).map(Parsed::BatchWrite),
        "TransactGetItems" => txn::parse_transact_get(&body).map(Parsed::TransactGet),
        "CreateTable" | "DescribeTable" | "DeleteTable" | "ListTables" | "UpdateTimeToLive"
        | "DescribeTimeToLive" => Ok(Parsed::Table(body)),
        other => Err(ApiError::new(
            "UnknownOperationException",
            format!("the emulator does not implement {other}"),
        )),
    };
    let before = delay / 2;
    pause(before).await;
    let result = parsed.and_then(|parsed| {
        let now = Instant::now();
        let mut st = inner.lock();
        match parsed {
            Parsed::Get(r) => ops::get_item(&mut st, now, &r),
            Parsed::Write(r) => ops::write_item(&mut st, now, &r),
            Parsed::Query(r) => ops::query(&mut st, now, &r),
            Parsed::Scan(r) => scan::scan(&mut st, now, &r),
            Parsed::BatchGet(r) => ops::batch_get(&mut st, now, &r),
            Parsed::BatchWrite(r) => ops::batch_write(&mut st, now, &r),
            Parsed::TransactGet(r) => txn::transact_get(&mut st, now, &r),
            Parsed::Table(body) => match op {
                "CreateTable" => ops::create_table(&mut st, &body, epoch_seconds()),
                "DescribeTable" => ops::describe_table(&st, &body),
                "DeleteTable" => ops::delete_table(&mut st, &body),
                "ListTables" => ops::list_tables(&st, &body),
                "UpdateTimeToLive" => ops::update_time_to_live(&mut st, &body),
                _ => ops::describe_time_to_live(&st, &body),
            },
        }
    });
    pause(delay - before).await;
    result
}

async fn transact_write(
    inner: &Arc<Inner>,
    body: &Json,
    delay: Duration,
) -> Result<Json, ApiError> {
    let prepared = txn::parse_transact_write(body).and_then(|req| {
        let mut st = inner.lock();
        txn::prepare(&mut st, Instant::now(), &req)
    });
    match prepared {
        Err(e) => {
            pause(delay).await;
            Err(e)
        }
        Ok(txn::Prepared::Answered(out)) => {
            pause(delay).await;
            Ok(out)
        }
        Ok(txn::Prepared::Held(id)) => {
            // On a task of its own: the transaction commits and lets go of its items even
            // if the client stops waiting for the answer.
            let inner = inner.clone();
            let flight = tokio::spawn(async move {
                pause(delay).await;
                let mut st = inner.lock();
                txn::commit(&mut st, Instant::now(), id)
            });
            flight
                .await
                .map_err(|_| ApiError::new("InternalServerError", "the transaction's task failed"))
        }
    }
}

fn epoch_seconds() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}
