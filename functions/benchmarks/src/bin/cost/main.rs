//! The cost of an operation, measured: COST.md's figures.
//!
//!   cost --endpoint http://127.0.0.1:PORT [--prices functions/benchmarks/prices.json]
//!        [--runs 30] [--big-runs 5] [--clients 4] [--out cost.md]
//!
//! `--endpoint` is the DynamoDB stand-in (`dynamodb-emulator`), which answers capacity by
//! DynamoDB's rules and counts it. The parent creates the table and a space of 10,000
//! entries, then runs the child (this binary with `--child`) once without a CPU limit and
//! once per Lambda memory size under a CPU quota of memory/1,769 of a core (a cgroup's
//! CPU bandwidth: v1 `cpu.cfs_quota_us`, or v2 `cpu.max`), as Lambda allots CPU. The
//! child drives the functions' handler code (see `measure`); the parent prices what it
//! measured (`benchmarks::price`, prices from `prices.json`) and prints COST.md's section.

mod doc;
mod measure;

use benchmarks::price::Prices;
use benchmarks::report::{arg, flag};
use benchmarks::wire;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use store_dynamodb::DynamoStore;
use sync_core::api::ApiRequest;
use sync_core::mutators::app;
use sync_core::poke::NoPoker;
use sync_core::{SpaceId, Store, SyncService};

/// Lambda's memory sizes compared.
pub const MEMORY_SIZES: [u32; 4] = [128, 256, 512, 1024];
/// Memory that gets one vCPU's worth of CPU (Lambda's documentation).
pub const ONE_VCPU_MB: f64 = 1769.0;
/// The quota's period (the cgroup default).
const PERIOD_US: u64 = 100_000;
const BIG_SPACE_ENTRIES: u64 = 10_000;

fn main() {
    if flag("--child") {
        child();
    } else {
        parent();
    }
}

fn endpoint() -> String {
    let endpoint = arg(
        "--endpoint",
        std::env::var("DYNAMODB_ENDPOINT").unwrap_or_default(),
    );
    assert!(
        !endpoint.is_empty(),
        "--endpoint names the DynamoDB stand-in (dynamodb-emulator)"
    );
    endpoint
}

fn child() {
    // Into the quota before any thread starts: the runtime's threads inherit it.
    let cgroup: String = arg("--cgroup", String::new());
    if !cgroup.is_empty() {
        std::fs::write(
            Path::new(&cgroup).join("cgroup.procs"),
            std::process::id().to_string(),
        )
        .unwrap_or_else(|e| panic!("cannot join the cgroup {cgroup}: {e}"));
    }
    let settings = measure::Settings {
        endpoint: endpoint(),
        table: arg("--table", String::new()),
        big_space: arg("--big-space", String::new()),
        runs: arg("--runs", 30),
        big_runs: arg("--big-runs", 5),
        clients: arg("--clients", 4),
        tag: arg("--tag", String::new()),
    };
    println!("{}", measure::run(&settings));
}

/// A cgroup whose CPU bandwidth is `share` of one core; removed when dropped.
struct CpuQuota {
    dir: PathBuf,
}

impl CpuQuota {
    /// `None` when no cgroup CPU controller is writable here.
    fn new(name: &str, share: f64) -> Option<CpuQuota> {
        let quota = ((PERIOD_US as f64) * share).round().max(1000.0) as u64;
        // cgroup v2 with the cpu controller enabled at the root.
        let v2 = Path::new("/sys/fs/cgroup");
        let controllers =
            std::fs::read_to_string(v2.join("cgroup.controllers")).unwrap_or_default();
        if controllers.split_whitespace().any(|c| c == "cpu") {
            let dir = v2.join(name);
            if std::fs::create_dir(&dir).is_ok() {
                if std::fs::write(dir.join("cpu.max"), format!("{quota} {PERIOD_US}")).is_ok() {
                    return Some(CpuQuota { dir });
                }
                let _ = std::fs::remove_dir(&dir);
            }
        }
        // cgroup v1's cpu hierarchy.
        let dir = Path::new("/sys/fs/cgroup/cpu").join(name);
        if std::fs::create_dir(&dir).is_ok() {
            let ok = std::fs::write(dir.join("cpu.cfs_period_us"), PERIOD_US.to_string()).is_ok()
                && std::fs::write(dir.join("cpu.cfs_quota_us"), quota.to_string()).is_ok();
            if ok {
                return Some(CpuQuota { dir });
            }
            let _ = std::fs::remove_dir(&dir);
        }
        None
    }
}

impl Drop for CpuQuota {
    fn drop(&mut self) {
        // The child has exited: the cgroup is empty.
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// Runs the child; its report.
fn run_child(args: &[String], cgroup: Option<&CpuQuota>) -> Value {
    let exe = std::env::current_exe().expect("this binary's path");
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("--child").args(args);
    if let Some(q) = cgroup {
        cmd.arg("--cgroup").arg(&q.dir);
    }
    let out = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .output()
        .expect("run the measuring process");
    assert!(
        out.status.success(),
        "the measuring process failed: {}",
        out.status
    );
    serde_json::from_slice(&out.stdout).expect("the measuring process's JSON report")
}

/// Fills `space` with `entries` items through the engine (pushes of `setItem`), paced for
/// the stand-in's per-partition write throughput (a push refused for it is retried).
async fn seed(svc: &SyncService, store: &DynamoStore, space: &SpaceId, entries: u64) {
    let client = "seed";
    // A few hundred write units a push: well under the 1,000 a second of one partition.
    let per_push = 150;
    let mut next = 1;
    let mut refusals = 0;
    while next <= entries {
        let n = per_push.min(entries - next + 1);
        let body = wire::push_v1(client, wire::set_items(client, next, n));
        let response = svc
            .handle(ApiRequest {
                method: "POST",
                path: "/api/replicache/push",
                space_id: Some(space.as_str()),
                body: &body,
                accepts_gzip: false,
                user: "",
            })
            .await;
        // Refusals in a row: the partition's budget refills within a second.
        if response.status == 503 && refusals < 30 {
            refusals += 1;
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        } else {
            refusals = 0;
            assert_eq!(
                response.status,
                200,
                "a seeding push failed: {:?}",
                response.json_body()
            );
        }
        let snap = store
            .push_snapshot(space, &format!("g-{client}"), &[client.to_owned()])
            .await
            .expect("snapshot")
            .expect("the space exists");
        next = snap.clients.get(client).map_or(0, |c| c.last_mutation_id) + 1;
    }
}

fn parent() {
    let endpoint = endpoint();
    let prices_path: String = arg("--prices", "functions/benchmarks/prices.json".to_owned());
    let prices_text = std::fs::read_to_string(&prices_path)
        .unwrap_or_else(|e| panic!("cannot read the prices {prices_path}: {e}"));
    let prices =
        Prices::parse(&prices_text).unwrap_or_else(|e| panic!("the prices {prices_path}: {e}"));
    let runs: usize = arg("--runs", 30);
    let big_runs: usize = arg("--big-runs", 5);
    let clients: usize = arg("--clients", 4);
    let out: String = arg("--out", String::new());
    let tag = format!("{:08x}", rand::random::<u32>());

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let (table, big_space) = runtime.block_on(async {
        let client = store_dynamodb::local_client(&endpoint).await;
        let table = format!("cost-{tag}");
        store_dynamodb::create_table(&client, &table)
            .await
            .expect("create the table");
        let store = Arc::new(DynamoStore::new(client, table.clone()));
        let svc = SyncService::new(store.clone(), Arc::new(app::registry()), Arc::new(NoPoker));
        let space = SpaceId::parse(&format!("big-{tag}")).expect("a space ID");
        assert!(store.create_space(&space).await.expect("create the space"));
        seed(&svc, &store, &space, BIG_SPACE_ENTRIES).await;
        eprintln!("cost: seeded {BIG_SPACE_ENTRIES} entries");
        (table, space.as_str().to_owned())
    });
    let args = |label: &str| -> Vec<String> {
        [
            "--endpoint",
            &endpoint,
            "--table",
            &table,
            "--big-space",
            &big_space,
            "--runs",
            &runs.to_string(),
            "--big-runs",
            &big_runs.to_string(),
            "--clients",
            &clients.to_string(),
            "--tag",
            &format!("{tag}-{label}"),
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect()
    };
    eprintln!("cost: measuring without a CPU limit");
    let unlimited = run_child(&args("free"), None);
    let mut by_memory = Vec::new();
    let mut quota_worked = true;
    for memory in MEMORY_SIZES {
        let quota = CpuQuota::new(
            &format!("cost-{tag}-{memory}"),
            f64::from(memory) / ONE_VCPU_MB,
        );
        quota_worked &= quota.is_some();
        eprintln!(
            "cost: measuring at {memory} MB ({})",
            if quota.is_some() {
                "CPU quota"
            } else {
                "no CPU quota available"
            }
        );
        let report = run_child(&args(&format!("m{memory}")), quota.as_ref());
        by_memory.push((memory, report));
    }
    let measured = doc::Measured {
        unlimited,
        by_memory,
        quota_worked,
        clients,
        runs,
        big_runs,
        entries: BIG_SPACE_ENTRIES,
    };
    let section =
        doc::render(&measured, &prices, &prices_path).unwrap_or_else(|e| panic!("pricing: {e}"));
    if out.is_empty() {
        print!("{section}");
    } else {
        std::fs::write(&out, section).unwrap_or_else(|e| panic!("cannot write {out}: {e}"));
    }
}
