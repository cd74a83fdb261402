//! The load generator: N simulated clients, each on its own keep-alive connection, each
//! pushing one `increment` (its own client ID, mutation IDs 1, 2, 3...) then pulling from
//! its last cookie, as fast as the server answers. It drives our local server (release
//! build, default SQLite store, protocol v1) and the reference server
//! (`replicache-express@0.1.5`, pg-mem, protocol v0: see `benchmarks::wire`) in the same
//! run, one after the other for each load level, with the same code.
//!
//!   loadgen [--local-server target/release/local-server]
//!           [--reference functions/benchmarks/reference] [--seconds 5]
//!           [--out load.md] [--out-writers writers.md]
//!
//! Conflicts (push retries) of our server are read from its log lines (`conflicts=` of
//! each `push` line); the reference server retries inside its database transaction and
//! does not report it.

use benchmarks::http::Connection;
use benchmarks::report::{Section, Table, arg, machine};
use benchmarks::servers::{self, Server};
use benchmarks::stats::{Samples, ms};
use benchmarks::wire::{self, Protocol};
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt as _, BufReader};

/// A server under load.
struct Target {
    name: &'static str,
    protocol: Protocol,
    server: Server,
    /// Conflicts our server logged so far (always zero for the reference).
    conflicts: Arc<AtomicU64>,
}

/// What one load level measured on one server.
#[derive(Default)]
struct Outcome {
    pushes: u64,
    pulls: u64,
    errors: u64,
    /// Non-200 answers by status; 0 stands for a failed connection.
    error_statuses: BTreeMap<u16, u64>,
    push_latency: Samples,
    pull_latency: Samples,
    seconds: f64,
    conflicts: u64,
}

impl Outcome {
    fn error(&mut self, status: u16) {
        self.errors += 1;
        *self.error_statuses.entry(status).or_default() += 1;
    }

    fn errors_cell(&self) -> String {
        if self.errors == 0 {
            return "0".to_owned();
        }
        let by_status: Vec<String> = self
            .error_statuses
            .iter()
            .map(|(status, n)| match status {
                0 => format!("{n} connection"),
                s => format!("{n} HTTP {s}"),
            })
            .collect();
        by_status.join(", ")
    }

    fn pushes_per_sec(&self) -> f64 {
        self.pushes as f64 / self.seconds
    }
}

/// One simulated client until `deadline`.
async fn client(
    addr: SocketAddr,
    protocol: Protocol,
    space: String,
    client_id: String,
    deadline: Instant,
    with_pull: bool,
) -> Outcome {
    let mut out = Outcome::default();
    let push_path = format!("/api/replicache/push?spaceID={space}");
    let pull_path = format!("/api/replicache/pull?spaceID={space}");
    let mut conn = Connection::open(addr).await.expect("connect to the server");
    let mut cookie = Value::Null;
    let mut id = 1;
    while Instant::now() < deadline {
        let t = Instant::now();
        match conn
            .post(&push_path, wire::push_increment(protocol, &client_id, id))
            .await
        {
            Ok((200, _)) => {
                out.push_latency.push(t.elapsed());
                out.pushes += 1;
                id += 1;
            }
            Ok((status, _)) => out.error(status),
            Err(_) => {
                out.error(0);
                conn = Connection::open(addr)
                    .await
                    .expect("reconnect to the server");
                continue;
            }
        }
        if !with_pull {
            continue;
        }
        let t = Instant::now();
        match conn
            .post(&pull_path, wire::pull(protocol, &client_id, &cookie))
            .await
        {
            Ok((200, body)) => {
                out.pull_latency.push(t.elapsed());
                out.pulls += 1;
                if let Ok(answer) = serde_json::from_slice::<Value>(&body)
                    && let Some(c) = answer.get("cookie")
                {
                    cookie = c.clone();
                }
            }
            Ok((status, _)) => out.error(status),
            Err(_) => {
                out.error(0);
                conn = Connection::open(addr)
                    .await
                    .expect("reconnect to the server");
            }
        }
    }
    out
}

/// `clients` clients spread round-robin over `spaces` new spaces, for `seconds`.
async fn run_level(
    target: &Target,
    tag: &str,
    clients: usize,
    spaces: usize,
    seconds: f64,
    with_pull: bool,
) -> Outcome {
    // The reference server takes space IDs of at most 10 characters.
    let names: Vec<String> = (0..spaces).map(|i| format!("{tag}s{i}")).collect();
    let mut conn = Connection::open(target.server.addr)
        .await
        .expect("connect to the server");
    for name in &names {
        let body = serde_json::json!({ "spaceID": name })
            .to_string()
            .into_bytes();
        let (status, answer) = conn
            .post("/api/replicache/createSpace", body)
            .await
            .expect("createSpace");
        assert_eq!(
            status,
            200,
            "{}: createSpace {name}: {}",
            target.name,
            String::from_utf8_lossy(&answer)
        );
    }
    let conflicts_before = target.conflicts.load(Ordering::Relaxed);
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(seconds);
    let tasks: Vec<_> = (0..clients)
        .map(|i| {
            tokio::spawn(client(
                target.server.addr,
                target.protocol,
                names[i % spaces].clone(),
                format!("{tag}c{i}"),
                deadline,
                with_pull,
            ))
        })
        .collect();
    let mut total = Outcome::default();
    for task in tasks {
        let o = task.await.expect("a client task");
        total.pushes += o.pushes;
        total.pulls += o.pulls;
        total.errors += o.errors;
        for (status, n) in o.error_statuses {
            *total.error_statuses.entry(status).or_default() += n;
        }
        total.push_latency.extend(o.push_latency);
        total.pull_latency.extend(o.pull_latency);
    }
    total.seconds = started.elapsed().as_secs_f64();
    // Log lines arrive a moment after the answers.
    tokio::time::sleep(Duration::from_millis(200)).await;
    total.conflicts = target.conflicts.load(Ordering::Relaxed) - conflicts_before;
    total
}

/// Sums the `conflicts` field of our server's `push` log lines (JSON lines on stderr).
fn count_conflicts(server: &mut Server) -> Arc<AtomicU64> {
    let conflicts = Arc::new(AtomicU64::new(0));
    if let Some(stderr) = server.child.stderr.take() {
        let conflicts = conflicts.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(n) = field_u64(&line, "\"conflicts\":") {
                    conflicts.fetch_add(n, Ordering::Relaxed);
                }
            }
        });
    }
    conflicts
}

fn field_u64(line: &str, key: &str) -> Option<u64> {
    let rest = &line[line.find(key)? + key.len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

fn ratio_cell(ours: f64, reference: f64) -> String {
    if reference == 0.0 {
        "n/a".to_owned()
    } else {
        format!("{:.1}x", ours / reference)
    }
}

#[tokio::main]
async fn main() {
    let bin = PathBuf::from(arg(
        "--local-server",
        "target/release/local-server".to_owned(),
    ));
    let reference_dir = PathBuf::from(arg(
        "--reference",
        "functions/benchmarks/reference".to_owned(),
    ));
    let seconds: f64 = arg("--seconds", 5.0);
    let out = arg("--out", String::new());
    let out_writers = arg("--out-writers", String::new());
    let command = benchmarks::report::command();
    let load_at_start = machine();

    let mut ours = servers::local_server(&bin, None)
        .await
        .expect("start the local server");
    let ours_conflicts = count_conflicts(&mut ours);
    // The reference keeps its data in memory; the same server with its SQLite file on
    // tmpfs shows what our disk writes cost.
    let mut ours_tmpfs = servers::local_server(&bin, Some(std::path::Path::new("/dev/shm")))
        .await
        .expect("start the local server on tmpfs");
    let ours_tmpfs_conflicts = count_conflicts(&mut ours_tmpfs);
    let reference = servers::reference_server(&reference_dir)
        .await
        .expect("start the reference server (npm ci in functions/benchmarks/reference?)");
    let targets = [
        Target {
            name: "ours (local-server, SQLite)",
            protocol: Protocol::V1,
            server: ours,
            conflicts: ours_conflicts,
        },
        Target {
            name: "ours, SQLite file on tmpfs",
            protocol: Protocol::V1,
            server: ours_tmpfs,
            conflicts: ours_tmpfs_conflicts,
        },
        Target {
            name: "reference (replicache-express, pg-mem)",
            protocol: Protocol::V0,
            server: reference,
            conflicts: Arc::new(AtomicU64::new(0)),
        },
    ];

    // Warm-up (Node's JIT, SQLite's page cache, connection setup), not measured.
    for target in &targets {
        run_level(target, "wu", 8, 1, seconds.min(2.0), true).await;
    }

    let levels: [(&str, usize, usize); 4] = [
        ("1 client, one space", 1, 1),
        ("8 clients, one space", 8, 1),
        ("32 clients, one space", 32, 1),
        ("32 clients, 32 spaces", 32, 32),
    ];
    let mut detail = Table::new(&[
        "load",
        "server",
        "protocol",
        "pushes/s",
        "push p50 (ms)",
        "push p99 (ms)",
        "pull p50 (ms)",
        "pull p99 (ms)",
        "errors",
        "push conflicts",
    ]);
    let mut summary = Table::new(&[
        "load",
        "our server",
        "pushes/s, ours / reference",
        "push p99, reference / ours",
        "target (>= 10x and <= 1/10)",
    ]);
    for (i, (label, clients, spaces)) in levels.iter().enumerate() {
        let mut results: Vec<Option<Outcome>> = targets.iter().map(|_| None).collect();
        // Alternate the order, so that no server always runs first on a level.
        let mut order: Vec<usize> = (0..targets.len()).collect();
        if i % 2 == 1 {
            order.reverse();
        }
        for t in order {
            let target = &targets[t];
            let o = run_level(target, &format!("l{i}"), *clients, *spaces, seconds, true).await;
            eprintln!(
                "{label} / {}: {:.0} pushes/s, errors {}",
                target.name,
                o.pushes_per_sec(),
                o.errors
            );
            results[t] = Some(o);
        }
        let results: Vec<Outcome> = results.into_iter().flatten().collect();
        let reference = results.last().expect("the reference ran");
        for (target, o) in targets.iter().zip(&results) {
            detail.row(vec![
                (*label).to_owned(),
                target.name.to_owned(),
                target.protocol.name().to_owned(),
                format!("{:.0}", o.pushes_per_sec()),
                ms(o.push_latency.p50()),
                ms(o.push_latency.p99()),
                ms(o.pull_latency.p50()),
                ms(o.pull_latency.p99()),
                o.errors_cell(),
                if target.protocol == Protocol::V1 {
                    o.conflicts.to_string()
                } else {
                    "not reported".to_owned()
                },
            ]);
            if target.protocol == Protocol::V0 {
                continue;
            }
            let speed = o.pushes_per_sec() / reference.pushes_per_sec().max(f64::MIN_POSITIVE);
            let p99_ratio = reference.push_latency.p99().as_secs_f64()
                / o.push_latency.p99().as_secs_f64().max(f64::MIN_POSITIVE);
            summary.row(vec![
                (*label).to_owned(),
                target.name.to_owned(),
                ratio_cell(o.pushes_per_sec(), reference.pushes_per_sec()),
                ratio_cell(
                    reference.push_latency.p99().as_secs_f64(),
                    o.push_latency.p99().as_secs_f64(),
                ),
                if speed >= 10.0 && p99_ratio >= 10.0 {
                    "met".to_owned()
                } else {
                    "missed".to_owned()
                },
            ]);
        }
    }
    let mut section = Section::new(&command);
    section.para(&format!(
        "Machine: {load_at_start}. Each level runs {seconds} s per server, the servers one \
         after the other (the order alternates by level); every client does push (one increment) then pull, on its own \
         keep-alive connection. The load generator shares the 2 cores with the server under \
         test."
    ));
    section.table(&summary);
    section.table(&detail);
    section.write((!out.is_empty()).then_some(out.as_str()));

    // Push-only writers on one space, our server: does throughput hold up, are retries
    // bounded?
    let mut writers = Table::new(&[
        "writers",
        "pushes/s",
        "push p50 (ms)",
        "push p99 (ms)",
        "errors",
        "conflicts (retries)",
        "retries per push",
    ]);
    for (i, n) in [1usize, 2, 4, 8, 16, 32].into_iter().enumerate() {
        let o = run_level(&targets[0], &format!("w{i}"), n, 1, seconds, false).await;
        writers.row(vec![
            n.to_string(),
            format!("{:.0}", o.pushes_per_sec()),
            ms(o.push_latency.p50()),
            ms(o.push_latency.p99()),
            o.errors_cell(),
            o.conflicts.to_string(),
            format!("{:.3}", o.conflicts as f64 / o.pushes.max(1) as f64),
        ]);
    }
    let mut section = Section::new(&command);
    section.para(&format!(
        "Our local server (SQLite), push only, one space, {seconds} s per level; conflicts \
         from the server's `push` log lines."
    ));
    section.table(&writers);
    section.write((!out_writers.is_empty()).then_some(out_writers.as_str()));
}
