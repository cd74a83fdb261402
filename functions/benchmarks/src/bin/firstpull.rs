//! First pulls of a large space, beside the reference server: N clients, each on its own
//! keep-alive connection, each pulling a space of `--entries` entries from a null cookie
//! (a new client's first pull) as fast as the server answers. The space is filled first
//! through each server's own push (`setItem`, the values of `benchmarks::wire::set_items`);
//! our local server (release build, SQLite file) speaks protocol v1, the reference
//! (`replicache-express@0.1.5`, pg-mem) v0.
//!
//!   firstpull [--local-server target/release/local-server]
//!             [--reference functions/benchmarks/reference] [--entries 10000]
//!             [--clients 8] [--seconds 5] [--out first-pull.md]
//!             [--baseline-server PATH --baseline-name NAME]
//!
//! `--baseline-server` adds another build of the local server to the same run (say, of an
//! earlier commit), named `NAME` in the table.

use benchmarks::http::Connection;
use benchmarks::report::{Section, Table, arg, machine};
use benchmarks::servers;
use benchmarks::stats::{Samples, ms};
use benchmarks::wire::{self, Protocol};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Mutations per seeding push: under the reference's 100 KB body limit (express.json).
const SEED_BATCH: u64 = 400;

/// Fills space `space` with `entries` items through pushes of `setItem`.
async fn seed(addr: SocketAddr, protocol: Protocol, space: &str, entries: u64) {
    let mut conn = Connection::open(addr).await.expect("connect");
    let (status, answer) = conn
        .post(
            "/api/replicache/createSpace",
            json!({ "spaceID": space }).to_string().into_bytes(),
        )
        .await
        .expect("createSpace");
    assert_eq!(
        status,
        200,
        "createSpace: {}",
        String::from_utf8_lossy(&answer)
    );
    let path = format!("/api/replicache/push?spaceID={space}");
    let mut next = 1;
    while next <= entries {
        let n = SEED_BATCH.min(entries - next + 1);
        let mutations = wire::set_items("seed", next, n);
        let body = match protocol {
            Protocol::V1 => wire::push_v1("seed", mutations),
            Protocol::V0 => json!({"pushVersion": 0, "clientID": "seed", "profileID": "bench",
                "schemaVersion": "", "mutations": mutations})
            .to_string()
            .into_bytes(),
        };
        let (status, answer) = conn.post(&path, body).await.expect("seeding push");
        assert_eq!(
            status,
            200,
            "seeding push: {}",
            String::from_utf8_lossy(&answer)
        );
        next += n;
    }
}

#[derive(Default)]
struct Outcome {
    pulls: u64,
    errors: u64,
    latency: Samples,
    /// Bytes of the last answer.
    body_bytes: usize,
    /// Entries the last answer put.
    puts: usize,
    seconds: f64,
}

async fn client(
    addr: SocketAddr,
    protocol: Protocol,
    space: String,
    client_id: String,
    deadline: Instant,
) -> Outcome {
    let mut out = Outcome::default();
    let path = format!("/api/replicache/pull?spaceID={space}");
    let mut conn = Connection::open(addr).await.expect("connect");
    while Instant::now() < deadline {
        let t = Instant::now();
        match conn
            .post(&path, wire::pull(protocol, &client_id, &Value::Null))
            .await
        {
            Ok((200, body)) => {
                out.latency.push(t.elapsed());
                out.pulls += 1;
                out.body_bytes = body.len();
            }
            Ok(_) => out.errors += 1,
            Err(_) => {
                out.errors += 1;
                conn = Connection::open(addr).await.expect("reconnect");
            }
        }
    }
    // One answer checked: every entry was there.
    if let Ok((200, body)) = conn
        .post(&path, wire::pull(protocol, &client_id, &Value::Null))
        .await
        && let Ok(answer) = serde_json::from_slice::<Value>(&body)
    {
        out.puts = answer["patch"]
            .as_array()
            .map_or(0, |p| p.iter().filter(|op| op["op"] == "put").count());
    }
    out
}

async fn run(
    addr: SocketAddr,
    protocol: Protocol,
    space: &str,
    clients: usize,
    seconds: f64,
) -> Outcome {
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(seconds);
    let tasks: Vec<_> = (0..clients)
        .map(|i| {
            tokio::spawn(client(
                addr,
                protocol,
                space.to_owned(),
                format!("fp{i}"),
                deadline,
            ))
        })
        .collect();
    let mut total = Outcome::default();
    for task in tasks {
        let o = task.await.expect("a client task");
        total.pulls += o.pulls;
        total.errors += o.errors;
        total.latency.extend(o.latency);
        total.body_bytes = total.body_bytes.max(o.body_bytes);
        total.puts = total.puts.max(o.puts);
    }
    total.seconds = started.elapsed().as_secs_f64();
    total
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
    let entries: u64 = arg("--entries", 10_000);
    let clients: usize = arg("--clients", 8);
    let seconds: f64 = arg("--seconds", 5.0);
    let out = arg("--out", String::new());
    let command = benchmarks::report::command();
    let load_at_start = machine();

    let mut ours = servers::local_server(&bin, None)
        .await
        .expect("start the local server");
    ours.drain_stderr();
    let reference = servers::reference_server(&reference_dir)
        .await
        .expect("start the reference server (npm ci in functions/benchmarks/reference?)");
    let baseline_bin = arg("--baseline-server", String::new());
    let baseline_name = arg("--baseline-name", "ours, baseline build".to_owned());
    let mut baseline = None;
    if !baseline_bin.is_empty() {
        let mut server = servers::local_server(std::path::Path::new(&baseline_bin), None)
            .await
            .expect("start the baseline local server");
        server.drain_stderr();
        baseline = Some(server);
    }
    let mut targets = vec![(
        "ours (local-server, SQLite)".to_owned(),
        Protocol::V1,
        ours.addr,
    )];
    if let Some(server) = &baseline {
        targets.push((baseline_name, Protocol::V1, server.addr));
    }
    // The reference last: the ratio is ours (the first row) over it.
    targets.push((
        "reference (replicache-express, pg-mem)".to_owned(),
        Protocol::V0,
        reference.addr,
    ));
    // The reference takes space IDs of at most 10 characters.
    let space = "first";
    for (name, protocol, addr) in &targets {
        let t = Instant::now();
        seed(*addr, *protocol, space, entries).await;
        eprintln!("{name}: {entries} entries pushed in {:.1?}", t.elapsed());
        // Warm-up (Node's JIT, SQLite's page cache), not measured.
        run(*addr, *protocol, space, clients, seconds.min(2.0)).await;
    }

    let mut table = Table::new(&[
        "server",
        "protocol",
        "pulls/s",
        "pull p50 (ms)",
        "pull p99 (ms)",
        "entries per answer",
        "bytes per answer",
        "errors",
    ]);
    let mut rates = Vec::new();
    for (name, protocol, addr) in &targets {
        let o = run(*addr, *protocol, space, clients, seconds).await;
        let rate = o.pulls as f64 / o.seconds;
        eprintln!("{name}: {rate:.1} pulls/s, errors {}", o.errors);
        rates.push(rate);
        table.row(vec![
            name.clone(),
            protocol.name().to_owned(),
            format!("{rate:.1}"),
            ms(o.latency.p50()),
            ms(o.latency.p99()),
            o.puts.to_string(),
            o.body_bytes.to_string(),
            o.errors.to_string(),
        ]);
    }
    let reference_rate = rates.last().copied().unwrap_or_default();
    let ratio = rates[0] / reference_rate.max(f64::MIN_POSITIVE);
    let mut section = Section::new(&command);
    section.para(&format!(
        "Machine: {load_at_start}. A space of {entries} entries (filled through each server's \
         own pushes of `setItem`), then {clients} clients, each on its own keep-alive \
         connection, each pulling it from a null cookie as fast as the server answers, \
         {seconds} s per server, one server after the other (no gzip: the load generator \
         sends no Accept-Encoding). Ours / reference: {ratio:.1}x the pulls/s."
    ));
    section.table(&table);
    section.write((!out.is_empty()).then_some(out.as_str()));
}
