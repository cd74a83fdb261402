//! Every pull is one consistent snapshot, under real concurrency.
//!
//! Six clients of one client group push their own `increment`s in parallel while readers
//! pull: one of the group from a null cookie, two of the group from their own cookies
//! (applying each patch to their state, as the Replicache client does; one of them asks
//! each server in turn), and one of another group from a null cookie. Each increment adds
//! 1 to `count` and advances its client's lastMutationID in the same commit, so in any
//! consistent snapshot `count` equals the sum of the group's lastMutationIDs. Every answer is checked for that, and for cookies,
//! counts and lastMutationIDs that never go back for one reader; violations are counted
//! (not stopped at) and must be zero at the end.
//!
//! The amount of work is fixed (`N` increments per writer, `SNAPSHOT_INCREMENTS` overrides
//! every configuration's default): a slow machine makes a run longer, never different in
//! what it asserts. Configurations: SQLite in process; DynamoDB (moto) in process; DynamoDB
//! behind three `local-server` processes, the clients spread over them.

mod common;

use axum::body::Bytes;
use axum::http::{Method, Request, StatusCode, header};
use common::TestServer;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use local_server::config::AllowedOrigins;
use rand::Rng as _;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use store_dynamodb::DynamoStore;
use store_sqlite::SqliteStore;
use test_support::LocalDynamo;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};

/// Clients of the group pushing at once.
const WRITERS: usize = 6;
/// A push is resent at most this many times before the test gives up on the server.
const MAX_RESENDS: u32 = 200;
/// Violations whose details are kept for the report.
const KEPT_VIOLATIONS: usize = 20;

/// Increments per writer: `SNAPSHOT_INCREMENTS` when set, else `default`.
fn increments(default: u64) -> u64 {
    match std::env::var("SNAPSHOT_INCREMENTS") {
        Ok(raw) if !raw.trim().is_empty() => raw
            .trim()
            .parse()
            .expect("SNAPSHOT_INCREMENTS is a positive number"),
        _ => default,
    }
}

fn unique(tag: &str) -> String {
    format!("{tag}-{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff)
}

// ---------------------------------------------------------------------------------------
// HTTP: one keep-alive connection per server per task.

struct Conn {
    addr: SocketAddr,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Conn {
    fn new(addr: SocketAddr) -> Self {
        Self { addr, sender: None }
    }

    /// POSTs `body` as JSON; `Err` when the connection failed (it is reopened next time).
    async fn post(&mut self, path: &str, body: Bytes) -> Result<(StatusCode, Bytes), String> {
        let result = self.try_post(path, body).await;
        if result.is_err() {
            self.sender = None;
        }
        result
    }

    async fn try_post(&mut self, path: &str, body: Bytes) -> Result<(StatusCode, Bytes), String> {
        if self.sender.as_ref().is_none_or(SendRequest::is_closed) {
            let stream = tokio::net::TcpStream::connect(self.addr)
                .await
                .map_err(|e| format!("connect {}: {e}", self.addr))?;
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| format!("handshake {}: {e}", self.addr))?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            self.sender = Some(sender);
        }
        let sender = self.sender.as_mut().unwrap_or_else(|| unreachable!());
        sender
            .ready()
            .await
            .map_err(|e| format!("connection to {}: {e}", self.addr))?;
        let request = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header(header::HOST, self.addr.to_string())
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(body))
            .map_err(|e| e.to_string())?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("request to {}: {e}", self.addr))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("response body from {}: {e}", self.addr))?
            .to_bytes();
        Ok((status, body))
    }
}

// ---------------------------------------------------------------------------------------
// What a run counts.

#[derive(Default)]
struct Tally {
    /// Pushes answered 200.
    pushes: AtomicU64,
    /// Pushes sent again after a non-200 answer or a failed connection.
    resent: AtomicU64,
    /// Pulls answered 200 (each one checked).
    pulls: AtomicU64,
    /// Pulls answered otherwise (retried, as the client does).
    failed_pulls: AtomicU64,
    violations: AtomicU64,
    kept: Mutex<Vec<String>>,
    /// The first few non-200 answers, for the report.
    failures: Mutex<Vec<String>>,
}

impl Tally {
    fn violation(&self, message: String) {
        self.violations.fetch_add(1, Ordering::Relaxed);
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        if kept.len() < KEPT_VIOLATIONS {
            kept.push(message);
        }
    }

    fn failure(&self, message: String) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if failures.len() < 5 {
            failures.push(message);
        }
    }
}

struct Scenario {
    space: String,
    group: String,
    other_group: String,
    writers: Vec<String>,
    n: u64,
    tally: Tally,
    writers_left: AtomicUsize,
    writers_done: AtomicBool,
}

impl Scenario {
    fn new(space: String, n: u64) -> Self {
        Self {
            space,
            group: unique("g"),
            other_group: unique("g2"),
            writers: (0..WRITERS).map(|i| unique(&format!("w{i}"))).collect(),
            n,
            tally: Tally::default(),
            writers_left: AtomicUsize::new(WRITERS),
            writers_done: AtomicBool::new(false),
        }
    }

    fn push_path(&self) -> String {
        format!("/api/replicache/push?spaceID={}", self.space)
    }

    fn pull_path(&self) -> String {
        format!("/api/replicache/pull?spaceID={}", self.space)
    }

    fn pull_body(&self, group: &str, cookie: &Value) -> Bytes {
        let body = json!({"pullVersion": 1, "clientGroupID": group, "profileID": "p",
            "schemaVersion": "", "cookie": cookie});
        Bytes::from(serde_json::to_vec(&body).unwrap())
    }
}

// ---------------------------------------------------------------------------------------
// Writers.

/// Pushes mutations 1..=N of `client`, a few at a time, each push resent until it is
/// answered 200.
async fn writer(scenario: Arc<Scenario>, client: String, addr: SocketAddr) {
    let mut conn = Conn::new(addr);
    let path = scenario.push_path();
    let mut next = 1;
    while next <= scenario.n {
        let batch = rand::rng().random_range(1..=4u64);
        let last = (next + batch - 1).min(scenario.n);
        let mutations: Vec<Value> = (next..=last)
            .map(|id| {
                json!({"clientID": client, "id": id, "name": "increment", "args": 1,
                    "timestamp": 0})
            })
            .collect();
        let body = json!({"pushVersion": 1, "clientGroupID": scenario.group,
            "profileID": "p", "schemaVersion": "", "mutations": mutations});
        let body = Bytes::from(serde_json::to_vec(&body).unwrap());
        let mut resends = 0;
        loop {
            let outcome = conn.post(&path, body.clone()).await;
            match outcome {
                Ok((StatusCode::OK, answer)) => {
                    let answer: Value = serde_json::from_slice(&answer).unwrap_or(Value::Null);
                    if answer.get("error").is_some() || !answer.is_object() {
                        scenario.tally.violation(format!(
                            "push of {client} {next}..={last} answered 200 with {answer}"
                        ));
                    }
                    scenario.tally.pushes.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                other => {
                    let what = match other {
                        Ok((status, answer)) => {
                            format!("push {status}: {}", String::from_utf8_lossy(&answer))
                        }
                        Err(e) => format!("push: {e}"),
                    };
                    scenario.tally.failure(what.clone());
                    resends += 1;
                    assert!(
                        resends <= MAX_RESENDS,
                        "push of {client} {next}..={last} failed {resends} times; last: {what}"
                    );
                    scenario.tally.resent.fetch_add(1, Ordering::Relaxed);
                    // The client backs off from 30 ms; a shorter pause keeps the pressure on.
                    let pause = 5u64 << resends.min(6);
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                }
            }
        }
        next = last + 1;
    }
    if scenario.writers_left.fetch_sub(1, Ordering::AcqRel) == 1 {
        scenario.writers_done.store(true, Ordering::Release);
    }
}

// ---------------------------------------------------------------------------------------
// Readers.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReaderKind {
    /// Group G, cookie null every time.
    FromNull,
    /// Group G, its own cookie and state.
    Incremental,
    /// Group G2 (no clients), cookie null every time.
    OtherGroup,
}

/// A reader's view of the space, as a Replicache client keeps it.
#[derive(Default)]
struct View {
    cookie: Value,
    order: Option<u64>,
    entries: BTreeMap<String, Value>,
    lmids: BTreeMap<String, u64>,
}

impl View {
    fn count(&self) -> u64 {
        self.entries
            .get("count")
            .map_or(0, |v| v.as_u64().unwrap_or(u64::MAX))
    }

    fn lmid_sum(&self) -> u64 {
        self.lmids.values().sum()
    }
}

fn cookie_order(cookie: &Value) -> Option<u64> {
    match cookie {
        Value::Object(o) => o.get("order").and_then(Value::as_u64),
        Value::Number(n) => n.as_u64(),
        _ => None,
    }
}

/// Pulls until the writers are done, then once more; every answer is checked. `addrs`
/// are used in turn, one pull each.
async fn reader(scenario: Arc<Scenario>, kind: ReaderKind, name: String, addrs: Vec<SocketAddr>) {
    let mut conns: Vec<Conn> = addrs.into_iter().map(Conn::new).collect();
    let group = match kind {
        ReaderKind::OtherGroup => scenario.other_group.clone(),
        ReaderKind::FromNull | ReaderKind::Incremental => scenario.group.clone(),
    };
    let path = scenario.pull_path();
    let mut view = View::default();
    let mut pulls = 0usize;
    let mut failures = 0u32;
    loop {
        // Read before pulling: a pull that starts after the last push's answer sees it all.
        let last = scenario.writers_done.load(Ordering::Acquire);
        let request_cookie = match kind {
            ReaderKind::Incremental => view.cookie.clone(),
            ReaderKind::FromNull | ReaderKind::OtherGroup => Value::Null,
        };
        let index = pulls % conns.len();
        let conn = &mut conns[index];
        pulls += 1;
        let addr = conn.addr;
        match conn
            .post(&path, scenario.pull_body(&group, &request_cookie))
            .await
        {
            Ok((StatusCode::OK, body)) => {
                failures = 0;
                scenario.tally.pulls.fetch_add(1, Ordering::Relaxed);
                let answer: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                check_pull(&scenario, kind, &name, addr, &mut view, answer);
            }
            other => {
                scenario.tally.failed_pulls.fetch_add(1, Ordering::Relaxed);
                let what = match other {
                    Ok((status, body)) => {
                        format!("pull {status}: {}", String::from_utf8_lossy(&body))
                    }
                    Err(e) => format!("pull: {e}"),
                };
                scenario.tally.failure(what.clone());
                failures += 1;
                assert!(
                    failures <= MAX_RESENDS,
                    "{name}: {failures} pulls failed in a row; last: {what}"
                );
                tokio::time::sleep(Duration::from_millis(5u64 << failures.min(6))).await;
                continue;
            }
        }
        if last {
            break;
        }
    }
    // The last pull started after every push was answered: the view is complete.
    let expected = WRITERS as u64 * scenario.n;
    match kind {
        ReaderKind::FromNull | ReaderKind::Incremental => {
            let complete = view.count() == expected
                && view.lmids.len() == WRITERS
                && view.lmids.values().all(|&l| l == scenario.n);
            if !complete {
                scenario.tally.violation(format!(
                    "{name}: after the writers finished, count {} and lmids {:?} \
                     (expected {expected}, each {})",
                    view.count(),
                    view.lmids,
                    scenario.n
                ));
            }
        }
        ReaderKind::OtherGroup => {
            if view.count() != expected {
                scenario.tally.violation(format!(
                    "{name}: after the writers finished, count {} (expected {expected})",
                    view.count()
                ));
            }
        }
    }
}

/// Checks one pull answer against the reader's view and applies it.
fn check_pull(
    scenario: &Scenario,
    kind: ReaderKind,
    name: &str,
    addr: SocketAddr,
    view: &mut View,
    answer: Value,
) {
    let tally = &scenario.tally;
    let fail = |what: String| tally.violation(format!("{name} via {addr}: {what}"));
    let Some(answer) = answer.as_object() else {
        return fail(format!("the answer is not an object: {answer}"));
    };
    let cookie = answer.get("cookie").cloned().unwrap_or(Value::Null);
    let Some(order) = cookie_order(&cookie) else {
        return fail(format!(
            "no usable cookie in {}",
            Value::Object(answer.clone())
        ));
    };
    let (Some(Value::Object(changes)), Some(Value::Array(patch))) =
        (answer.get("lastMutationIDChanges"), answer.get("patch"))
    else {
        return fail(format!(
            "not a pull response: {}",
            Value::Object(answer.clone())
        ));
    };
    let mut lmid_changes = BTreeMap::new();
    for (client, lmid) in changes {
        let Some(lmid) = lmid.as_u64() else {
            return fail(format!("lastMutationID of {client} is {lmid}"));
        };
        let ours = kind != ReaderKind::OtherGroup && scenario.writers.contains(client);
        if !ours {
            fail(format!(
                "lastMutationIDChanges of group {} names client {client}",
                if kind == ReaderKind::OtherGroup {
                    "G2"
                } else {
                    "G"
                }
            ));
        }
        if lmid > scenario.n {
            fail(format!(
                "{client} has lastMutationID {lmid} > {}",
                scenario.n
            ));
        }
        lmid_changes.insert(client.clone(), lmid);
    }

    if let Some(previous) = view.order {
        if order < previous {
            fail(format!("cookie order went back from {previous} to {order}"));
            // The client rejects such an answer.
            return;
        }
        if kind == ReaderKind::Incremental && order == previous {
            // Same cookie: the client ignores the answer, so it must carry nothing.
            if !patch.is_empty() || !lmid_changes.is_empty() {
                fail(format!(
                    "cookie {order} unchanged but the answer carries changes: patch {} ops, \
                     lmids {lmid_changes:?}",
                    patch.len()
                ));
            }
            return;
        }
    }

    let before_count = view.count();
    let before_lmids = view.lmids.clone();
    let reset = kind != ReaderKind::Incremental;
    if reset {
        if patch.first().and_then(|op| op.get("op")) != Some(&json!("clear")) {
            fail(format!(
                "a pull from a null cookie does not start with clear: {:?}",
                patch.first()
            ));
        }
        view.entries.clear();
        view.lmids.clear();
    }
    for (i, op) in patch.iter().enumerate() {
        let key = op.get("key").and_then(Value::as_str);
        match (op.get("op").and_then(Value::as_str), key) {
            (Some("clear"), _) => {
                if i != 0 {
                    fail(format!("clear at position {i} of the patch"));
                }
                view.entries.clear();
            }
            (Some("put"), Some(key)) => {
                let value = op.get("value").cloned().unwrap_or(Value::Null);
                view.entries.insert(key.to_owned(), value);
            }
            (Some("del"), Some(key)) => {
                view.entries.remove(key);
            }
            _ => fail(format!("patch operation {op}")),
        }
    }
    view.lmids.extend(lmid_changes);
    view.cookie = cookie;
    view.order = Some(order);

    let count = view.count();
    let count_value = view.entries.get("count").cloned();
    if count_value.as_ref().is_some_and(|v| v.as_u64().is_none()) {
        fail(format!("count is {count_value:?}"));
    }
    if kind != ReaderKind::OtherGroup && count != view.lmid_sum() {
        fail(format!(
            "cookie {order}: count {count} != sum of lastMutationIDs {} ({:?})",
            view.lmid_sum(),
            view.lmids
        ));
    }
    if count > WRITERS as u64 * scenario.n {
        fail(format!("cookie {order}: count {count} above the total"));
    }
    if count < before_count {
        fail(format!(
            "cookie {order}: count went back from {before_count} to {count}"
        ));
    }
    for (client, before) in &before_lmids {
        let now = view.lmids.get(client).copied().unwrap_or(0);
        if now < *before {
            fail(format!(
                "cookie {order}: lastMutationID of {client} went back from {before} to {now}"
            ));
        }
    }
}

// ---------------------------------------------------------------------------------------
// A run.

struct Report {
    elapsed: Duration,
    pushes: u64,
    resent: u64,
    pulls: u64,
    failed_pulls: u64,
    violations: u64,
    kept: Vec<String>,
    failures: Vec<String>,
}

impl Report {
    fn print(&self, label: &str, n: u64) {
        println!(
            "[{label}] {WRITERS} writers x {n} increments: {} pushes, {} resent, {} pulls \
             ({} failed and retried), {} violations, {:.2?}",
            self.pushes, self.resent, self.pulls, self.failed_pulls, self.violations, self.elapsed
        );
        for failure in &self.failures {
            println!("[{label}]   non-200: {failure}");
        }
        for violation in &self.kept {
            println!("[{label}]   violation: {violation}");
        }
    }

    fn assert_clean(&self, label: &str) {
        assert_eq!(
            self.violations,
            0,
            "[{label}] snapshot violations; the first:\n{}",
            self.kept.join("\n")
        );
    }
}

/// Writers `i` use `servers[i % len]`; of the readers, one of each kind is pinned to a
/// server in turn, and a second incremental reader goes to every server in turn.
async fn run(servers: &[SocketAddr], n: u64) -> Report {
    assert!(n > 0);
    let created = common::post_json(servers[0], "/api/replicache/createSpace", &json!({})).await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.text());
    let space = created.json()["spaceID"].as_str().unwrap().to_owned();
    let scenario = Arc::new(Scenario::new(space, n));
    let started = Instant::now();
    let mut tasks = Vec::new();
    let readers = [
        (ReaderKind::FromNull, "null-reader"),
        (ReaderKind::Incremental, "cookie-reader"),
        (ReaderKind::OtherGroup, "other-group-reader"),
    ];
    for (i, (kind, name)) in readers.into_iter().enumerate() {
        let addr = servers[i % servers.len()];
        tasks.push(tokio::spawn(reader(
            scenario.clone(),
            kind,
            name.to_owned(),
            vec![addr],
        )));
    }
    tasks.push(tokio::spawn(reader(
        scenario.clone(),
        ReaderKind::Incremental,
        "roaming-cookie-reader".to_owned(),
        servers.to_vec(),
    )));
    for (i, client) in scenario.writers.iter().enumerate() {
        let addr = servers[i % servers.len()];
        tasks.push(tokio::spawn(writer(scenario.clone(), client.clone(), addr)));
    }
    for task in tasks {
        task.await.expect("a writer or reader panicked");
    }
    let elapsed = started.elapsed();

    // Every server, from a null cookie, sees all of it.
    for &addr in servers {
        let reply = common::post_json(
            addr,
            &scenario.pull_path(),
            &json!({"pullVersion": 1, "clientGroupID": scenario.group, "profileID": "p",
                "schemaVersion": "", "cookie": null}),
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        let answer = reply.json();
        let patch = answer["patch"].as_array().unwrap();
        let count = patch
            .iter()
            .find(|op| op["op"] == "put" && op["key"] == "count")
            .map(|op| op["value"].clone());
        assert_eq!(
            count,
            Some(json!(WRITERS as u64 * n)),
            "final count via {addr}: {answer}"
        );
        let expected: Map<String, Value> = scenario
            .writers
            .iter()
            .map(|c| (c.clone(), json!(n)))
            .collect();
        assert_eq!(
            answer["lastMutationIDChanges"],
            Value::Object(expected),
            "final lastMutationIDs via {addr}"
        );
    }

    let tally = &scenario.tally;
    Report {
        elapsed,
        pushes: tally.pushes.load(Ordering::Relaxed),
        resent: tally.resent.load(Ordering::Relaxed),
        pulls: tally.pulls.load(Ordering::Relaxed),
        failed_pulls: tally.failed_pulls.load(Ordering::Relaxed),
        violations: tally.violations.load(Ordering::Relaxed),
        kept: tally.kept.lock().unwrap().clone(),
        failures: tally.failures.lock().unwrap().clone(),
    }
}

// ---------------------------------------------------------------------------------------
// Configurations.

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_one_server_pulls_are_snapshots() {
    let label = "sqlite, 1 server";
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("snapshot.sqlite3")).unwrap();
    let server = TestServer::start_with(Arc::new(store), AllowedOrigins::Any).await;
    let n = increments(1000);
    let report = run(&[server.addr], n).await;
    report.print(label, n);
    server.stop().await;
    report.assert_clean(label);
}

#[tokio::test(flavor = "multi_thread")]
async fn dynamodb_one_server_pulls_are_snapshots() {
    let label = "dynamodb, 1 server";
    let dynamo = LocalDynamo::start().await;
    let client = dynamo.client().await;
    let table = dynamo.fresh_table(&client, "snapshot").await;
    let store = DynamoStore::new(client, table);
    let server = TestServer::start_with(Arc::new(store.clone()), AllowedOrigins::Any).await;
    let n = increments(60);
    let report = run(&[server.addr], n).await;
    report.print(label, n);
    let (snapshots, redos) = store.pull_stats().counts();
    println!(
        "[{label}] pull snapshots {snapshots}, reads redone {redos} (redo ratio {:.3})",
        redos as f64 / snapshots.max(1) as f64
    );
    server.stop().await;
    report.assert_clean(label);
}

/// The server processes of the multi-process configuration.
const PROCESSES: usize = 3;

struct Process {
    child: Child,
    addr: SocketAddr,
    log: std::path::PathBuf,
}

/// Starts the `local-server` binary on a free port, on DynamoDB table `table`.
async fn start_process(endpoint: &str, table: &str, dir: &Path, index: usize) -> Process {
    // One data directory, so one cookie secret (the first process creates it), as the
    // instances of one deployment share theirs.
    let data_dir = dir.join("data");
    let log = dir.join(format!("server-{index}.log"));
    let log_file = std::fs::File::create(&log).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_local-server"))
        .env("PORT", "0")
        .env("HOST", "127.0.0.1")
        .env("DATA_DIR", &data_dir)
        .env_remove("COOKIE_SECRET_FILE")
        .env("CLIENT_DIR", dir.join("no-client"))
        .env("DYNAMODB_ENDPOINT", endpoint)
        .env("TABLE_NAME", table)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .env("AWS_REGION", "us-east-1")
        // The pull's redo messages are counted from the log.
        .env("RUST_LOG", "warn,store_dynamodb::pull=debug")
        .env("LOG_FORMAT", "text")
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log_file))
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await
        .expect("the banner is printed")
        .unwrap()
        .unwrap_or_else(|| {
            panic!(
                "server {index} exited: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            )
        });
    let addr = first
        .strip_prefix("Serving http://")
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("banner: {first}"))
        .parse()
        .unwrap();
    // The rest of stdout (the banner) is read so that the pipe never fills.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Process { child, addr, log }
}

async fn stop_process(mut process: Process) -> String {
    if let Some(pid) = process.child.id() {
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await;
    }
    let stopped = tokio::time::timeout(Duration::from_secs(10), process.child.wait()).await;
    if stopped.is_err() {
        let _ = process.child.kill().await;
    }
    std::fs::read_to_string(&process.log).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn dynamodb_three_processes_pulls_are_snapshots() {
    let label = "dynamodb, 3 processes";
    let dynamo = LocalDynamo::start().await;
    let client = dynamo.client().await;
    let table = dynamo.fresh_table(&client, "snapshot-multi").await;
    let dir = tempfile::tempdir().unwrap();
    let mut processes = Vec::new();
    for index in 0..PROCESSES {
        processes.push(start_process(dynamo.endpoint(), &table, dir.path(), index).await);
    }
    let servers: Vec<SocketAddr> = processes.iter().map(|p| p.addr).collect();
    let n = increments(50);
    let report = run(&servers, n).await;
    report.print(label, n);
    let mut redos = 0;
    let mut warnings = Vec::new();
    for process in processes {
        let log = stop_process(process).await;
        redos += log
            .lines()
            .filter(|l| l.contains("a commit landed during the pull's read"))
            .count();
        warnings.extend(
            log.lines()
                .filter(|l| l.contains("WARN") || l.contains("ERROR"))
                .map(str::to_owned),
        );
    }
    println!(
        "[{label}] reads redone (from the servers' logs) {redos}, over {} pulls answered \
         (redo ratio {:.3})",
        report.pulls,
        redos as f64 / report.pulls.max(1) as f64
    );
    for warning in warnings.iter().take(10) {
        println!("[{label}]   server log: {warning}");
    }
    report.assert_clean(label);
}

/// The checks are not vacuous: answers that are torn, go back or leak another group's
/// clients are all counted.
#[test]
fn the_checks_catch_bad_answers() {
    let scenario = Scenario::new("s".into(), 10);
    let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
    let [a, b] = [&scenario.writers[0], &scenario.writers[1]];
    let answer = |order: u64, lmids: Value, patch: Value| {
        json!({"cookie": {"order": order, "sig": "x"}, "lastMutationIDChanges": lmids,
            "patch": patch})
    };
    let violations = || scenario.tally.violations.load(Ordering::Relaxed);
    let check = |kind, view: &mut View, answer| {
        check_pull(&scenario, kind, "test", addr, view, answer);
    };
    let clear_and_count =
        |count: u64| json!([{"op": "clear"}, {"op": "put", "key": "count", "value": count}]);

    let mut null = View::default();
    check(
        ReaderKind::FromNull,
        &mut null,
        answer(3, json!({a: 2, b: 1}), clear_and_count(3)),
    );
    assert_eq!(violations(), 0, "a consistent answer passes");
    check(
        ReaderKind::FromNull,
        &mut null,
        answer(4, json!({a: 3, b: 1}), clear_and_count(3)),
    );
    assert_eq!(violations(), 1, "an LMID without its increment");
    check(
        ReaderKind::FromNull,
        &mut null,
        answer(2, json!({a: 3, b: 1}), clear_and_count(4)),
    );
    assert_eq!(violations(), 2, "a cookie going back");
    check(
        ReaderKind::FromNull,
        &mut null,
        answer(5, json!({a: 1, b: 1}), clear_and_count(2)),
    );
    assert_eq!(violations(), 4, "count and an LMID going back");
    check(
        ReaderKind::FromNull,
        &mut null,
        answer(
            6,
            json!({a: 2}),
            json!([{"op": "put", "key": "count", "value": 2}]),
        ),
    );
    assert_eq!(
        violations(),
        6,
        "no clear; b's LMID and the count going back"
    );

    let mut incremental = View::default();
    check(
        ReaderKind::Incremental,
        &mut incremental,
        answer(3, json!({a: 2, b: 1}), clear_and_count(3)),
    );
    check(
        ReaderKind::Incremental,
        &mut incremental,
        answer(
            5,
            json!({b: 2}),
            json!([{"op": "put", "key": "count", "value": 4}]),
        ),
    );
    assert_eq!(violations(), 6, "incremental answers merge");
    assert_eq!(incremental.lmid_sum(), 4);
    check(
        ReaderKind::Incremental,
        &mut incremental,
        answer(5, json!({b: 3}), json!([])),
    );
    assert_eq!(violations(), 7, "changes under an unchanged cookie");
    check(
        ReaderKind::Incremental,
        &mut incremental,
        answer(6, json!({a: 3}), json!([{"op": "del", "key": "count"}])),
    );
    assert_eq!(violations(), 9, "a deleted count: torn, and going back");

    let mut other = View::default();
    check(
        ReaderKind::OtherGroup,
        &mut other,
        answer(3, json!({a: 2}), clear_and_count(2)),
    );
    assert_eq!(violations(), 10, "another group's client");
    assert_eq!(scenario.tally.kept.lock().unwrap().len(), 10);
}
